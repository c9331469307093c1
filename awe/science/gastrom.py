"""Global astrometry: one solution over all chips and dithers of a pointing set.

A per-chip solution (:mod:`awe.science.astrometry`) knows only the reference stars on its
own chip; with few of them it must stay a plain TAN and the distortion it cannot model
remains. Here every frame starts from its per-chip WCS and all frames are corrected
together, in one linear least-squares fit in a common tangent plane (arcsec about the
centre of the set):

* each frame gets a shift (the telescope moved between dithers);
* each chip gets linear terms (scale, rotation, shear) and a distortion polynomial of
  degree 2..``distortion_degree`` in its own pixel coordinates, shared by all exposures
  (the optics and the chip did not change); every dither of a chip starts from the same
  per-chip WCS, moved to its pointing (:func:`common_start`);
* the constraints are the reference stars (source = star) and the overlaps: a source seen
  on two frames is one point of the sky (source on frame f = source on frame g), which
  ties the dithers together and pools their stars for every chip's distortion.

Outliers beyond 3 sigma are clipped and the matching done again, a few times. Each
frame's corrected mapping is then written as a TAN-SIP WCS fitted to a dense grid of its
pixels (the grid is exact, so a degree-3 SIP represents it to milli-arcseconds).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from awe.science.astrometry import pair_up

ITERATIONS = 3


@dataclass
class Frame:
    """One chip of one exposure: its sources (0-based pixels), per-chip WCS and chip."""

    x: np.ndarray
    y: np.ndarray
    wcs: object  # astropy.wcs.WCS, the per-chip solution to start from
    chip: str
    shape: tuple[int, int]  # (ny, nx)


@dataclass
class GlobalSolution:
    """The corrected WCS of every frame (in the order given) and how well they fit."""

    wcs: list
    rms_reference_arcsec: float
    rms_overlap_arcsec: float
    n_reference: int
    n_overlap: int


class GlobalAstrometryError(ValueError):
    """Too few constraints for the global solution."""


def gnomonic(ra, dec, ra0: float, dec0: float) -> tuple[np.ndarray, np.ndarray]:
    """Standard coordinates (xi, eta) in arcsec of (ra, dec) about (ra0, dec0)."""
    ra, dec = np.radians(np.asarray(ra, float)), np.radians(np.asarray(dec, float))
    a0, d0 = np.radians(ra0), np.radians(dec0)
    cos_c = np.sin(d0) * np.sin(dec) + np.cos(d0) * np.cos(dec) * np.cos(ra - a0)
    xi = np.cos(dec) * np.sin(ra - a0) / cos_c
    eta = (np.cos(d0) * np.sin(dec) - np.sin(d0) * np.cos(dec) * np.cos(ra - a0)) / cos_c
    return np.degrees(xi) * 3600.0, np.degrees(eta) * 3600.0


def inverse_gnomonic(xi, eta, ra0: float, dec0: float) -> tuple[np.ndarray, np.ndarray]:
    """(ra, dec) in degrees of standard coordinates (xi, eta) in arcsec."""
    x = np.radians(np.asarray(xi, float) / 3600.0)
    y = np.radians(np.asarray(eta, float) / 3600.0)
    a0, d0 = np.radians(ra0), np.radians(dec0)
    denominator = np.cos(d0) - y * np.sin(d0)
    ra = a0 + np.arctan2(x, denominator)
    dec = np.arctan2(np.sin(d0) + y * np.cos(d0), np.hypot(x, denominator))
    return np.degrees(ra) % 360.0, np.degrees(dec)


def _normalised(frame: Frame, x, y) -> tuple[np.ndarray, np.ndarray]:
    ny, nx = frame.shape
    half = max(nx, ny) / 2.0
    return (np.asarray(x, float) - nx / 2.0) / half, (np.asarray(y, float) - ny / 2.0) / half


def _powers(degree: int) -> list[tuple[int, int]]:
    return [(a, n - a) for n in range(2, degree + 1) for a in range(n, -1, -1)]


def distortion_degree_for(n_sources: int) -> int:
    """The polynomial degree a chip's sources (over all its dithers) constrain: higher
    terms fitted to a few dozen stars follow their centroid noise, not the optics."""
    for degree, needed in ((3, 300), (2, 120)):
        if n_sources >= needed:
            return degree
    return 1


class _Model:
    """Column layout of the fit: a shift per frame, then per chip its linear terms and
    distortion (both shared by the exposures: the chip did not change between dithers)."""

    def __init__(self, frames: Sequence[Frame], degree: int) -> None:
        self.frames = frames
        self.powers = [(1, 0), (0, 1), *_powers(degree)]
        self.chips = sorted({f.chip for f in frames})
        self.n_frame_columns = len(frames)
        self.size = self.n_frame_columns + len(self.powers) * len(self.chips)

    def basis(self, index: int, x, y) -> np.ndarray:
        """Rows of the design matrix for points (x, y) of frame ``index``."""
        frame = self.frames[index]
        u, v = _normalised(frame, x, y)
        rows = np.zeros((u.size, self.size))
        rows[:, index] = 1.0
        start = self.n_frame_columns + len(self.powers) * self.chips.index(frame.chip)
        for k, (a, b) in enumerate(self.powers):
            rows[:, start + k] = u**a * v**b
        return rows


def common_start(frames: Sequence[Frame]) -> list[Frame]:
    """Each frame with its chip's best per-chip WCS (the frame with most sources), moved on
    the sky to where the frame's own solution puts the chip's centre: the dithers of a chip
    then start from one shape, and the fit needs only a shift per frame."""
    import copy

    best: dict[str, Frame] = {}
    for frame in frames:
        if frame.chip not in best or frame.x.size > best[frame.chip].x.size:
            best[frame.chip] = frame
    out = []
    for frame in frames:
        model = best[frame.chip]
        centre = [[frame.shape[1] / 2, frame.shape[0] / 2]]
        own = frame.wcs.all_pix2world(centre, 0)[0]
        shape_of = model.wcs.all_pix2world(centre, 0)[0]
        wcs = copy.deepcopy(model.wcs)
        wcs.wcs.crval = wcs.wcs.crval + (own - shape_of)
        wcs.wcs.set()
        out.append(Frame(x=frame.x, y=frame.y, wcs=wcs, chip=frame.chip, shape=frame.shape))
    return out


def solve_global(
    frames: Sequence[Frame],
    ref_ra: np.ndarray,
    ref_dec: np.ndarray,
    *,
    match_radius_arcsec: float = 1.0,
    distortion_degree: int | None = None,
    overlap_weight: float = 1.0,
    min_references: int = 10,
) -> GlobalSolution:
    """Correct every frame's WCS together from reference stars and overlaps (see the
    module docstring); ``ref_ra``, ``ref_dec`` in degrees. Without ``distortion_degree``
    it follows the sources per chip (:func:`distortion_degree_for`)."""
    if not frames:
        raise GlobalAstrometryError("no frames to solve")
    frames = common_start(frames)
    if distortion_degree is None:
        per_chip: dict[str, int] = {}
        for frame in frames:
            per_chip[frame.chip] = per_chip.get(frame.chip, 0) + frame.x.size
        distortion_degree = distortion_degree_for(min(per_chip.values()))
    centres = np.array(
        [f.wcs.all_pix2world([[f.shape[1] / 2, f.shape[0] / 2]], 0)[0] for f in frames]
    )
    ra0, dec0 = float(np.median(centres[:, 0])), float(np.median(centres[:, 1]))
    ref_xi, ref_eta = gnomonic(ref_ra, ref_dec, ra0, dec0)
    model = _Model(frames, distortion_degree)
    start = []  # each frame's sources in the tangent plane through its per-chip WCS
    for frame in frames:
        ra, dec = frame.wcs.all_pix2world(frame.x, frame.y, 0)
        start.append(gnomonic(ra, dec, ra0, dec0))
    params = np.zeros((model.size, 2))
    for _ in range(ITERATIONS):
        now = [_apply(model, params, i, f.x, f.y, start[i]) for i, f in enumerate(frames)]
        rows, targets, kinds = [], [], []
        for i, frame in enumerate(frames):  # reference stars
            src, ref = pair_up(now[i][0], now[i][1], ref_xi, ref_eta, match_radius_arcsec)
            if src.size:
                rows.append(model.basis(i, frame.x[src], frame.y[src]))
                targets.append(np.column_stack([ref_xi[ref], ref_eta[ref]]) - _stack(start[i], src))
                kinds.append(np.zeros(src.size, bool))
        for i in range(len(frames)):  # overlaps: the same source on two frames
            for j in range(i + 1, len(frames)):
                a, b = pair_up(now[i][0], now[i][1], now[j][0], now[j][1], match_radius_arcsec)
                if a.size:
                    row = model.basis(i, frames[i].x[a], frames[i].y[a])
                    row -= model.basis(j, frames[j].x[b], frames[j].y[b])
                    rows.append(row * overlap_weight)
                    targets.append((_stack(start[j], b) - _stack(start[i], a)) * overlap_weight)
                    kinds.append(np.ones(a.size, bool))
        n_reference = sum(int((~k).sum()) for k in kinds)
        if n_reference < max(min_references, 3 * len(frames)):
            raise GlobalAstrometryError(
                f"only {n_reference} reference-star matches for {len(frames)} frames: the "
                "per-chip solutions must be close (run with fewer frames, or check them)"
            )
        design, target, overlap = np.vstack(rows), np.vstack(targets), np.concatenate(kinds)
        keep = np.ones(len(target), bool)
        for _clip in range(3):
            params, *_ = np.linalg.lstsq(design[keep], target[keep], rcond=None)
            residual = np.hypot(*(target - design @ params).T)
            sigma = np.sqrt(np.mean(residual[keep] ** 2))
            new_keep = residual <= max(3 * sigma, 1e-3)
            if (new_keep == keep).all():
                break
            keep = new_keep
    residual = np.hypot(*(target - design @ params).T)
    rms_ref = float(np.sqrt(np.mean(residual[keep & ~overlap] ** 2)))
    rms_overlap = (
        float(np.sqrt(np.mean(residual[keep & overlap] ** 2)) / overlap_weight)
        if (keep & overlap).any()
        else float("nan")
    )
    solved = [_to_wcs(model, params, i, ra0, dec0) for i in range(len(frames))]
    return GlobalSolution(
        wcs=solved,
        rms_reference_arcsec=rms_ref,
        rms_overlap_arcsec=rms_overlap,
        n_reference=int((keep & ~overlap).sum()),
        n_overlap=int((keep & overlap).sum()),
    )


def _stack(points: tuple[np.ndarray, np.ndarray], index: np.ndarray) -> np.ndarray:
    return np.column_stack([points[0][index], points[1][index]])


def _apply(model: _Model, params: np.ndarray, index: int, x, y, start) -> tuple:
    correction = model.basis(index, x, y) @ params
    return start[0] + correction[:, 0], start[1] + correction[:, 1]


def _to_wcs(model: _Model, params: np.ndarray, index: int, ra0: float, dec0: float):
    """The corrected mapping of one frame as a TAN-SIP WCS, fitted on a 24 x 24 grid."""
    from astropy.coordinates import SkyCoord
    from astropy.wcs.utils import fit_wcs_from_points

    frame = model.frames[index]
    ny, nx = frame.shape
    yy, xx = np.mgrid[0 : ny - 1 : 24j, 0 : nx - 1 : 24j]
    x, y = xx.ravel(), yy.ravel()
    ra, dec = frame.wcs.all_pix2world(x, y, 0)
    xi, eta = _apply(model, params, index, x, y, gnomonic(ra, dec, ra0, dec0))
    ra, dec = inverse_gnomonic(xi, eta, ra0, dec0)
    return fit_wcs_from_points(
        (x, y), SkyCoord(ra, dec, unit="deg"), proj_point="center", sip_degree=3
    )
