"""Flat fields: normalising and stacking flats, and the master flat.

A flat is the chip's relative response: its level is meaningless, so each raw flat is
divided by its median before stacking and the stack by its own median afterwards (1.0 is
the typical pixel). The master flat takes its small scales (pixel to pixel) from the dome
flat, whose lamp is bright and even on small scales but not lit like the sky, and its large
scales from the twilight (or night-sky) flat, which is lit by the sky itself: the dome flat
times the smoothed ratio of the two, as Astro-WISE's MasterFlatFrame combines them.

Smoothing is robust and cheap: the image is cut into ``scale`` x ``scale`` boxes, the median
of each box is taken (stars, cosmic rays and cold pixels do not move a median), and the
box medians are interpolated back bilinearly, extrapolated linearly at the edges.
"""

from __future__ import annotations

import numpy as np

from awe.science.combine import Combined, clipped_mean, normalised

DEFAULT_SMOOTHING = 64  # pixels: the box of the large-scale smoothing


#: Flat levels are medians of a regular grid of one pixel in LEVEL_STEP x LEVEL_STEP: half a
#: million pixels of a 2k x 4k chip give the level to ~1e-4, at a sixteenth of the cost.
LEVEL_STEP = 4
LEVEL_MIN_PIXELS = 65536


def level(image: np.ndarray, good: np.ndarray | None = None) -> float:
    """The typical value of a flat: the median of a regular grid of its pixels (all
    pixels of a small image; only ``good`` pixels when given)."""
    if good is not None:
        values = image[good]
    elif image.ndim == 2 and image.size >= LEVEL_STEP**2 * LEVEL_MIN_PIXELS:
        values = image[::LEVEL_STEP, ::LEVEL_STEP]
    else:
        values = image
    if not np.isfinite(values.sum(dtype=np.float64)):  # one cheap pass finds NaN or inf
        values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError("the flat has no finite pixel to take its level from")
    return float(np.median(values))


def apply_flat(image: np.ndarray, flat: np.ndarray, minimum: float = 0.0) -> np.ndarray:
    """Flat-field ``image`` (a float array, in place): divided by ``flat`` where the flat
    is above ``minimum``, 0 where it is not (dead or vignetted pixels, which no division
    could rescue). Returns the mask of those bad-flat pixels, for the caller's flags."""
    bad = ~(flat > minimum)
    if not bad.any():  # the usual case: a plain division, twice as fast as one with where=
        image /= flat
        return bad
    np.divide(image, flat, out=image, where=~bad)
    image[bad] = 0.0
    return bad


def combine_flats(stack: np.ndarray, sigma: float = 3.0) -> tuple[Combined, list[float]]:
    """Normalise each flat of ``stack`` by its median (in place), take the clipped mean,
    and normalise the result to a median of 1. Returns it and the input levels."""
    levels = [level(plane) for plane in stack]
    normalised(stack, levels)
    combined = clipped_mean(stack, sigma)
    combined.image /= combined.image.dtype.type(level(combined.image))
    return combined, levels


def box_medians(image: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median of each ``scale`` x ``scale`` box (the last boxes take the remainder), with
    the box centres along rows and columns."""
    ny, nx = image.shape
    scale = max(1, int(scale))
    edges_y = _edges(ny, scale)
    edges_x = _edges(nx, scale)
    medians = np.empty((len(edges_y) - 1, len(edges_x) - 1), dtype=np.float64)
    for i, (y0, y1) in enumerate(zip(edges_y[:-1], edges_y[1:], strict=True)):
        strip = image[y0:y1]
        for j, (x0, x1) in enumerate(zip(edges_x[:-1], edges_x[1:], strict=True)):
            medians[i, j] = np.nanmedian(strip[:, x0:x1])
    centres_y = 0.5 * (edges_y[:-1] + edges_y[1:]) - 0.5
    centres_x = 0.5 * (edges_x[:-1] + edges_x[1:]) - 0.5
    return medians, centres_y, centres_x


def _edges(n: int, scale: int) -> np.ndarray:
    count = max(1, round(n / scale))
    return np.round(np.linspace(0, n, count + 1)).astype(int)


def interpolation_matrix(n: int, centres: np.ndarray) -> np.ndarray:
    """(n, len(centres)) weights that interpolate values at ``centres`` linearly to the
    pixels 0..n-1, extrapolating linearly beyond the first and last centre."""
    m = len(centres)
    weights = np.zeros((n, m))
    if m == 1:
        weights[:, 0] = 1.0
        return weights
    x = np.arange(n, dtype=np.float64)
    left = np.clip(np.searchsorted(centres, x, side="right") - 1, 0, m - 2)
    t = (x - centres[left]) / (centres[left + 1] - centres[left])
    rows = np.arange(n)
    weights[rows, left] = 1 - t
    weights[rows, left + 1] = t
    return weights


def large_scale(image: np.ndarray, scale: int = DEFAULT_SMOOTHING) -> np.ndarray:
    """The image smoothed on ``scale`` pixels (box medians, bilinear interpolation)."""
    medians, centres_y, centres_x = box_medians(image, scale)
    if not np.isfinite(medians).all():
        fill = np.nanmedian(medians)
        medians = np.where(np.isfinite(medians), medians, fill)
    wy = interpolation_matrix(image.shape[0], centres_y)
    wx = interpolation_matrix(image.shape[1], centres_x)
    return (wy @ medians @ wx.T).astype(np.float32)


def master_flat(
    dome: np.ndarray, sky: np.ndarray, scale: int = DEFAULT_SMOOTHING
) -> tuple[np.ndarray, np.ndarray]:
    """The master flat (median 1) from a normalised dome flat (small scales) and a
    normalised twilight or night-sky flat (large scales), and the large-scale correction
    applied to the dome flat."""
    if dome.shape != sky.shape:
        raise ValueError(f"dome flat {dome.shape} and sky flat {sky.shape} differ in shape")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(dome > 0, sky / dome, np.nan)
    correction = large_scale(ratio, scale)
    flat = dome * correction
    flat /= flat.dtype.type(level(flat))
    return flat.astype(np.float32), correction


def shape_rms(measured: np.ndarray, truth: np.ndarray, good: np.ndarray | None = None) -> float:
    """Relative rms difference of two flats after scaling each to median 1."""
    m = measured / level(measured, good)
    t = truth / level(truth, good)
    difference = (m / t - 1)[good] if good is not None else m / t - 1
    return float(np.sqrt(np.mean(difference**2)))


def source_mask(image: np.ndarray, threshold: float = 3.0, grow: int = 2) -> np.ndarray:
    """True where a source (star, galaxy, cosmic ray) is: pixels more than ``threshold``
    robust standard deviations above the smooth background, grown by ``grow`` pixels so
    the wings go too. A threshold segmentation, vectorised: the growth is ``grow`` rounds
    of shifting the mask by one pixel in the four directions."""
    background = large_scale(image, DEFAULT_SMOOTHING)
    residual = image - background
    finite = residual[np.isfinite(residual)]
    sigma = 1.4826 * float(np.median(np.abs(finite - np.median(finite))))
    mask = residual > threshold * sigma
    for _ in range(max(0, int(grow))):
        grown = mask.copy()
        grown[1:] |= mask[:-1]
        grown[:-1] |= mask[1:]
        grown[:, 1:] |= mask[:, :-1]
        grown[:, :-1] |= mask[:, 1:]
        mask = grown
    return mask


def night_sky_flat(
    stack: np.ndarray, threshold: float = 3.0, grow: int = 2
) -> tuple[np.ndarray, list[float], float]:
    """A flat from dithered science frames (bias-subtracted; modified in place): sources
    masked in each, each divided by its median sky, the median of the unmasked values per
    pixel, normalised to median 1. Returns it, the sky levels, and the masked fraction."""
    levels = []
    masked = 0
    for plane in stack:
        mask = source_mask(plane, threshold, grow)
        masked += int(mask.sum())
        plane[mask] = np.nan
        sky = level(plane)
        levels.append(sky)
        plane /= plane.dtype.type(sky)
    with np.errstate(all="ignore"):
        combined = np.nanmedian(stack, axis=0)
    fill = level(combined)
    combined = np.where(np.isfinite(combined), combined, fill).astype(np.float32)
    combined /= combined.dtype.type(level(combined))
    return combined, levels, masked / stack.size
