"""Coaddition of regridded frames: the weighted mean on their common grid, optionally
clipped, with its weight (the sum of the weights), and a PNG preview.

Regridded frames are cutouts of one grid (see :mod:`awe.science.regrid`), so each is added
into the canvas at its offset: no resampling here. The clipped mean rejects, pixel by
pixel, values further than ``clip`` times the expected noise (from the weights, scaled by
the scatter the frames actually show) from the median of the frames, then averages again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class Coadded:
    image: np.ndarray
    weight: np.ndarray
    offset: tuple[int, int]  # grid pixel of the canvas's (0, 0)
    rejected: int = 0


def canvas(offsets: Sequence[tuple[int, int]], shapes: Sequence[tuple[int, int]]):
    """(offset, shape) of the smallest canvas holding every cutout."""
    x0 = min(o[0] for o in offsets)
    y0 = min(o[1] for o in offsets)
    x1 = max(o[0] + s[1] for o, s in zip(offsets, shapes, strict=True))
    y1 = max(o[1] + s[0] for o, s in zip(offsets, shapes, strict=True))
    return (x0, y0), (y1 - y0, x1 - x0)


def coadd(
    images: Sequence[np.ndarray],
    weights: Sequence[np.ndarray],
    offsets: Sequence[tuple[int, int]],
    *,
    clip: float | None = None,
) -> Coadded:
    """Weighted mean of cutouts placed at their grid offsets (optionally ``clip``-sigma
    clipped); zero where no frame has weight."""
    if not images:
        raise ValueError("nothing to coadd: no regridded frames")
    origin, shape = canvas(offsets, [i.shape for i in images])
    total = np.zeros(shape, np.float64)
    weight_sum = np.zeros(shape, np.float64)
    places = []
    for image, weight, offset in zip(images, weights, offsets, strict=True):
        place = (
            slice(offset[1] - origin[1], offset[1] - origin[1] + image.shape[0]),
            slice(offset[0] - origin[0], offset[0] - origin[0] + image.shape[1]),
        )
        places.append(place)
        total[place] += image * weight
        weight_sum[place] += weight
    rejected = 0
    if clip:
        total, weight_sum, rejected = _clipped(images, weights, places, shape, clip)
    mean = np.zeros(shape, np.float32)  # divided only where covered, straight into float32
    np.divide(total, weight_sum, out=mean, where=weight_sum > 0, casting="unsafe")
    return Coadded(
        image=mean,
        weight=weight_sum.astype(np.float32),
        offset=origin,
        rejected=rejected,
    )


def _clipped(images, weights, places, shape, clip: float):
    stack = np.full((len(images), *shape), np.nan, np.float32)
    stack_w = np.zeros((len(images), *shape), np.float32)
    for k, (image, weight, place) in enumerate(zip(images, weights, places, strict=True)):
        stack[k][place] = np.where(weight > 0, image, np.nan)
        stack_w[k][place] = weight
    median = np.nanmedian(stack, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        normalised = (stack - median) * np.sqrt(stack_w)  # in units of relative sigma
        finite = np.isfinite(normalised)
        scatter = 1.4826 * np.median(np.abs(normalised[finite])) if finite.any() else 1.0
        bad = finite & (np.abs(normalised) > clip * scatter)
    stack_w[bad] = 0.0
    good = np.isfinite(stack) & (stack_w > 0)
    total = np.where(good, stack * stack_w, 0.0).sum(axis=0, dtype=np.float64)
    return total, stack_w.sum(axis=0, dtype=np.float64), int(bad.sum())


def preview_png(image: np.ndarray, weight: np.ndarray, path, size: int = 1024) -> None:
    """An 8-bit PNG of the image, asinh stretched between the 0.5 and 99.8 percentiles of
    its covered pixels, at most ``size`` pixels on a side, north up."""
    from astropy.visualization import AsinhStretch, PercentileInterval
    from PIL import Image

    covered = weight > 0
    values = image[covered] if covered.any() else image.ravel()
    low, high = PercentileInterval(99.3).get_limits(values)
    span = high - low if high > low else 1.0
    linear = np.clip(np.nan_to_num((image - low) / span), 0.0, 1.0)
    scaled = AsinhStretch(0.05)(linear, clip=True)
    scaled[~covered] = 0
    picture = Image.fromarray((scaled[::-1] * 255).astype(np.uint8), mode="L")
    picture.thumbnail((size, size))
    picture.save(path)
