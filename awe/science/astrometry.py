"""Astrometric calibration of one CCD against a reference catalogue.

1. Sources (pixels) and reference stars (sky) meet in pixel space through the frame's
   first-guess WCS (the telescope's pointing: off by arcseconds, and without distortion).
2. The shift between the two is the peak of the histogram of all source-star offsets
   within ``search_radius``: robust to missing and spurious stars on either side.
3. After the shift, each source is paired with the nearest star within ``match_radius``
   (one-to-one), and a TAN-SIP WCS is fitted to the pairs (astropy's
   ``fit_wcs_from_points``); residuals beyond 3 sigma are clipped and the pairing done
   again with the new solution, a few times.

The SIP degree drops with the number of pairs (degree 3 needs many stars), so a sparse
chip gets a stable plain TAN rather than an overfitted polynomial. The result carries the
rms of the residuals (arcsec, both axes together) and the number of stars used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ITERATIONS = 4


@dataclass
class Solution:
    """A fitted WCS and how well it fits."""

    wcs: object  # astropy.wcs.WCS
    rms_arcsec: float
    n_stars: int
    shift_pixels: tuple[float, float]
    sip_degree: int | None
    source_index: np.ndarray  # the pairs used: indices into the sources ...
    reference_index: np.ndarray  # ... and into the reference stars


class AstrometryError(ValueError):
    """Too few stars to solve, with what was found."""


def sip_degree_for(n_pairs: int, wanted: int | None) -> int | None:
    """The highest SIP degree up to ``wanted`` that ``n_pairs`` constrain well."""
    for degree, needed in ((3, 60), (2, 25)):
        if wanted is not None and degree <= wanted and n_pairs >= needed:
            return degree
    return None


def offset_peak(
    x: np.ndarray, y: np.ndarray, ref_x: np.ndarray, ref_y: np.ndarray, search_radius: float
) -> tuple[float, float, int]:
    """The (dx, dy) from sources to stars most pairs agree on, and how many agree."""
    from scipy.spatial import cKDTree

    tree = cKDTree(np.column_stack([ref_x, ref_y]))
    pairs = tree.query_ball_point(np.column_stack([x, y]), search_radius)
    dx = np.concatenate([ref_x[p] - xi for xi, p in zip(x, pairs, strict=True)] or [[]])
    dy = np.concatenate([ref_y[p] - yi for yi, p in zip(y, pairs, strict=True)] or [[]])
    if dx.size == 0:
        return 0.0, 0.0, 0
    bins = np.arange(-search_radius, search_radius + 2.0, 2.0)
    counts, xedges, yedges = np.histogram2d(dx, dy, bins=[bins, bins])
    i, j = np.unravel_index(np.argmax(counts), counts.shape)
    cx, cy = (xedges[i] + xedges[i + 1]) / 2, (yedges[j] + yedges[j + 1]) / 2
    near = np.hypot(dx - cx, dy - cy) < 3.0
    return float(np.median(dx[near])), float(np.median(dy[near])), int(near.sum())


def pair_up(
    x: np.ndarray, y: np.ndarray, ref_x: np.ndarray, ref_y: np.ndarray, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one nearest pairs within ``radius`` (a star claimed twice keeps the nearer)."""
    from scipy.spatial import cKDTree

    if len(ref_x) == 0 or len(x) == 0:
        return np.empty(0, int), np.empty(0, int)
    distance, nearest = cKDTree(np.column_stack([ref_x, ref_y])).query(
        np.column_stack([x, y]), distance_upper_bound=radius
    )
    found = np.flatnonzero(np.isfinite(distance))
    order = found[np.argsort(distance[found])]
    _, first = np.unique(nearest[order], return_index=True)
    chosen = np.sort(order[first])
    return chosen, nearest[chosen]


def solve(
    x: np.ndarray,
    y: np.ndarray,
    ref_ra: np.ndarray,
    ref_dec: np.ndarray,
    guess: object,
    *,
    search_radius: float = 200.0,
    match_radius: float = 3.0,
    sip_degree: int | None = 3,
    min_stars: int = 5,
    shape: tuple[int, int] | None = None,
) -> Solution:
    """Fit a WCS for sources at pixels (x, y) (0-based) given reference stars and a
    first-guess WCS; radii in pixels. With the image ``shape`` only the stars that can
    fall on it (within the search radius) are considered."""
    from astropy.coordinates import SkyCoord
    from astropy.wcs.utils import fit_wcs_from_points

    ref_x, ref_y = guess.all_world2pix(ref_ra, ref_dec, 0)
    if shape is not None:
        on = (ref_x > -search_radius) & (ref_x < shape[1] + search_radius)
        on &= (ref_y > -search_radius) & (ref_y < shape[0] + search_radius)
        ref_ra, ref_dec, ref_x, ref_y = ref_ra[on], ref_dec[on], ref_x[on], ref_y[on]
    dx, dy, agreeing = offset_peak(x, y, ref_x, ref_y, search_radius)
    if agreeing < min_stars:
        raise AstrometryError(
            f"only {agreeing} sources agree on a shift to the {len(ref_ra)} reference stars "
            f"(need {min_stars}); is the pointing in the header right, and the catalogue "
            f"the right one for this field?"
        )
    wcs, radius = guess, match_radius
    shifted_x, shifted_y = x + dx, y + dy
    keep = np.ones(len(x), bool)
    for _ in range(ITERATIONS):
        pairs_s, pairs_r = pair_up(shifted_x[keep], shifted_y[keep], ref_x, ref_y, radius)
        pairs_s = np.flatnonzero(keep)[pairs_s]
        if pairs_s.size < min_stars:
            raise AstrometryError(f"only {pairs_s.size} sources pair with reference stars")
        degree = sip_degree_for(pairs_s.size, sip_degree)
        stars = SkyCoord(ref_ra[pairs_r], ref_dec[pairs_r], unit="deg")
        wcs = fit_wcs_from_points(
            (x[pairs_s], y[pairs_s]), stars, proj_point="center", sip_degree=degree
        )
        separation = residuals_arcsec(
            wcs, x[pairs_s], y[pairs_s], ref_ra[pairs_r], ref_dec[pairs_r]
        )
        rms = float(np.sqrt(np.mean(separation**2)))
        # next pass: positions through the new solution, outliers dropped
        ref_x, ref_y = wcs.all_world2pix(ref_ra, ref_dec, 0)
        shifted_x, shifted_y = x, y
        pixel_scale = proj_plane_scale_arcsec(wcs)
        radius = max(3 * rms / pixel_scale, 1.0)
        outliers = pairs_s[separation > max(3 * rms, 1e-3)]
        keep[outliers] = False
    return Solution(
        wcs=wcs,
        rms_arcsec=rms,
        n_stars=int(pairs_s.size),
        shift_pixels=(dx, dy),
        sip_degree=degree,
        source_index=pairs_s,
        reference_index=pairs_r,
    )


def residuals_arcsec(wcs, x, y, ra, dec) -> np.ndarray:
    """Angular distance (arcsec) between the WCS position of each pixel and its star."""
    fit_ra, fit_dec = wcs.all_pix2world(x, y, 0)
    return angular_distance_arcsec(fit_ra, fit_dec, ra, dec)


def angular_distance_arcsec(ra1, dec1, ra2, dec2) -> np.ndarray:
    ra1, dec1, ra2, dec2 = (np.radians(np.asarray(v, float)) for v in (ra1, dec1, ra2, dec2))
    h = np.sin((dec2 - dec1) / 2) ** 2 + np.cos(dec1) * np.cos(dec2) * np.sin((ra2 - ra1) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(h, 0, 1)))) * 3600.0


def proj_plane_scale_arcsec(wcs) -> float:
    from astropy.wcs.utils import proj_plane_pixel_scales

    return float(np.mean(proj_plane_pixel_scales(wcs.celestial))) * 3600.0
