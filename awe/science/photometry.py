"""Photometric calibration from standard fields: zeropoints per chip and the extinction.

The model (the one Astro-WISE's Photcat/Photom fit) is, for a star of catalogue magnitude
``m`` measured with ``flux`` ADU in ``t`` seconds at airmass ``X``::

    m = -2.5 log10(flux / t) + ZP - k X

``ZP`` is the magnitude giving 1 ADU/s above the atmosphere (per chip: each chip has its
own sensitivity) and ``k`` the extinction in mag/airmass (one per filter and night: the
atmosphere is the same for every chip). Each standard-field frame gives one "effective
zeropoint" ``ZP - k X``: a clipped, weighted mean of ``m - m_inst`` over its standard
stars. The frames of several airmasses then give ``k`` and every chip's ``ZP`` in one
linear least-squares fit; with a single airmass ``k`` must be given (the nominal one).

Fluxes are total fluxes: measured in an aperture of :data:`APERTURE_FWHM` FWHM (good
signal to noise) and corrected to :data:`TOTAL_FWHM` FWHM (FWHM as sep's sources give it,
twice the half-light radius: for a Moffat beta=3 star 4 of them are 5 true FWHM, outside
which 0.14 % of its light falls) by the median flux ratio of the bright, clean stars:
the curve of growth measured on the frame itself (:func:`aperture_correction`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Aperture radius in FWHM of the measurement, and of the "total" flux it is corrected to.
APERTURE_FWHM = 2.0
TOTAL_FWHM = 4.0
#: The smallest airmass range that constrains the extinction.
MIN_AIRMASS_RANGE = 0.2


class PhotometryError(ValueError):
    """Too few standard stars, or airmasses that cannot constrain the extinction."""


@dataclass(frozen=True)
class FrameZeropoint:
    """The effective zeropoint ``ZP - k X`` of one standard-field frame."""

    value: float
    error: float
    n_stars: int
    rms: float  # scatter of the stars used (mag)


@dataclass(frozen=True)
class PhotometricSolution:
    """Zeropoints per chip (ZP, its error) and the extinction, with the fit's scatter."""

    zeropoints: dict[str, tuple[float, float]]
    extinction: float
    extinction_error: float | None  # None when the extinction was given, not fitted
    rms: float  # scatter of the frames' effective zeropoints about the fit (mag)
    n_frames: int


def instrumental_magnitudes(
    flux: np.ndarray, fluxerr: np.ndarray, exposure_time: float
) -> tuple[np.ndarray, np.ndarray]:
    """``-2.5 log10(flux / t)`` and its error; NaN for non-positive fluxes."""
    flux = np.asarray(flux, float)
    good = flux > 0
    mag = np.full(flux.shape, np.nan)
    err = np.full(flux.shape, np.nan)
    mag[good] = -2.5 * np.log10(flux[good] / exposure_time)
    err[good] = 2.5 / np.log(10) * np.asarray(fluxerr, float)[good] / flux[good]
    return mag, err


def point_like(peak: np.ndarray, flux: np.ndarray, low: float = 0.8, high: float = 1.25):
    """Sources whose peak-to-flux ratio is the stars' usual one: a saturated star has a
    flat top (a low ratio), a cosmic ray or hot pixel on a star a spike (a high one)."""
    ratio = np.asarray(peak, float) / np.asarray(flux, float)
    typical = np.nanmedian(ratio[np.isfinite(ratio) & (ratio > 0)])
    return (ratio > low * typical) & (ratio < high * typical)


def aperture_correction(
    x: np.ndarray,
    y: np.ndarray,
    flux_small: np.ndarray,
    flux_large: np.ndarray,
    usable: np.ndarray,
    isolation: float,
    min_stars: int = 1,
) -> tuple[float, int]:
    """The factor from small-aperture to total flux: ``sum(flux_large) / sum(flux_small)``
    over the ``usable`` (bright, clean) sources that have no other source within
    ``isolation`` pixels (a neighbour in the large aperture would add its light)."""
    from scipy.spatial import cKDTree

    points = np.column_stack([x, y])
    if len(points) > 1:
        distance, _ = cKDTree(points).query(points, k=2)
        alone = distance[:, 1] > isolation
    else:
        alone = np.ones(len(points), bool)
    chosen = np.asarray(usable, bool) & alone
    small, large = np.asarray(flux_small, float)[chosen], np.asarray(flux_large, float)[chosen]
    good = np.isfinite(small) & np.isfinite(large) & (small > 0)
    if good.sum() < min_stars:
        raise PhotometryError(
            f"only {good.sum()} bright isolated stars for the aperture correction (need "
            f"{min_stars}): a longer exposure of the standard field would give more"
        )
    # flux-weighted: the brightest stars, least disturbed by the sky's noise, count most
    return float(large[good].sum() / small[good].sum()), int(good.sum())


def frame_zeropoint(
    instrumental: np.ndarray,
    instrumental_error: np.ndarray,
    reference: np.ndarray,
    *,
    clip: float = 3.0,
    floor: float = 0.005,
    min_stars: int = 5,
) -> FrameZeropoint:
    """The weighted mean of ``reference - instrumental`` over the matched stars, with
    outliers (blends, variables, mismatches) clipped at ``clip`` times a robust scatter.
    ``floor`` (mag) is added in quadrature to each star's error, so that a handful of very
    bright stars do not decide alone."""
    difference = np.asarray(reference, float) - np.asarray(instrumental, float)
    error = np.hypot(np.asarray(instrumental_error, float), floor)
    use = np.isfinite(difference) & np.isfinite(error)
    if use.sum() < min_stars:
        raise PhotometryError(
            f"only {int(use.sum())} standard stars measured (need {min_stars}): is this a "
            "standard field, and is the exposure long enough?"
        )
    for _ in range(5):
        centre = np.median(difference[use])
        spread = max(1.4826 * np.median(np.abs(difference[use] - centre)), floor)
        keep = use & (np.abs(difference - centre) <= clip * np.maximum(spread, error))
        if keep.sum() < min_stars or (keep == use).all():
            break
        use = keep
    w = 1.0 / error[use] ** 2
    value = float(np.sum(w * difference[use]) / np.sum(w))
    rms = float(np.sqrt(np.mean((difference[use] - value) ** 2)))
    n = int(use.sum())
    # the larger of the formal error and the scatter's error of the mean, with the
    # uncertainty of the frame's aperture correction (about 0.01 mag) beside it
    formal = float(1.0 / np.sqrt(np.sum(w)))
    return FrameZeropoint(value, float(np.hypot(max(formal, rms / np.sqrt(n)), 0.01)), n, rms)


def solve_photometry(
    effective: Sequence[float],
    errors: Sequence[float],
    airmass: Sequence[float],
    chips: Sequence[str],
    *,
    extinction: float | None = None,
    min_airmass_range: float = MIN_AIRMASS_RANGE,
    clip: float = 3.0,
) -> PhotometricSolution:
    """Fit ``effective_i = ZP[chip_i] - k * airmass_i`` by weighted least squares: one
    zeropoint per chip and one extinction ``k`` shared by all (or ``extinction`` given);
    frames off by more than ``clip`` sigma are left out (``n_frames`` counts those used)."""
    y = np.asarray(effective, float)
    sigma = np.asarray(errors, float)
    x = np.asarray(airmass, float)
    names = sorted(set(chips))
    column = np.array([names.index(c) for c in chips])
    if y.size == 0:
        raise PhotometryError("no standard-field frames to fit")
    fit_k = extinction is None
    if fit_k and np.ptp(x) < min_airmass_range:
        raise PhotometryError(
            f"the standard fields span airmass {x.min():.2f} to {x.max():.2f}: too little "
            f"(need {min_airmass_range}) to fit the extinction; observe the field again "
            "lower in the sky, or give the extinction (ext=)"
        )
    design = np.zeros((y.size, len(names) + fit_k))
    design[np.arange(y.size), column] = 1.0
    target = y.copy()
    if fit_k:
        design[:, -1] = -x
    else:
        target += extinction * x
    if y.size < design.shape[1]:
        raise PhotometryError(
            f"{y.size} frames for {design.shape[1]} unknowns: every chip needs a frame"
        )
    use = np.ones(y.size, bool)
    for attempt in range(4):  # a frame off by more than 3 sigma (a bad match) is dropped
        weighted = design[use] / sigma[use, None]
        params, *_ = np.linalg.lstsq(weighted, target[use] / sigma[use], rcond=None)
        residual = target - design @ params
        spread = 1.4826 * np.median(np.abs(residual[use]))
        keep = np.abs(residual) <= clip * np.maximum(spread, sigma)
        every_chip = np.bincount(column[keep], minlength=len(names)).min() > 0
        if attempt == 3 or (keep == use).all() or keep.sum() <= design.shape[1] or not every_chip:
            break
        use = keep
    covariance = np.linalg.pinv(weighted.T @ weighted)
    dof = int(use.sum()) - design.shape[1]
    rms = float(np.sqrt(np.mean(residual[use] ** 2)))
    # errors scaled by the reduced chi^2 when the frames scatter more than their errors say
    chi2 = float(np.sum((residual[use] / sigma[use]) ** 2))
    scale = max(1.0, chi2 / dof) if dof > 0 else 1.0
    errors_out = np.sqrt(np.diag(covariance) * scale)
    zeropoints = {n: (float(params[i]), float(errors_out[i])) for i, n in enumerate(names)}
    return PhotometricSolution(
        zeropoints=zeropoints,
        extinction=float(params[-1]) if fit_k else float(extinction),
        extinction_error=float(errors_out[-1]) if fit_k else None,
        rms=rms,
        n_frames=int(use.sum()),
    )
