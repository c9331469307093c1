"""Overscan correction and trimming, per amplifier, with Astro-WISE's method numbers.

Astro-WISE's ``OVERSCAN_CORRECTION`` process parameter (the ``oc`` option) picks how the
bias level of each read-out is taken from its prescan or overscan strip before the strip
is cut away. Its default, 6, is the per-row correction; 0 leaves the bias level in (the
master bias then holds it, Astro-WISE's "MB0" type). The numbers AWE implements:

====  ==========================================================================
 0    no correction
 1    median of the prescan (one value per amplifier)
 2    median of the overscan (one value per amplifier)
 3    mean of the prescan and overscan medians
 4    per row: median of the prescan row
 5    per row: median of the overscan row
 6    per row: median of the overscan row, smoothed along the columns with a
      running mean over ``smooth`` rows (default): follows row structure without
      adding the noise of a few overscan pixels to every row
 7    per row: mean of the prescan and overscan row medians, smoothed as in 6
 8    per row: clipped mean of the overscan row (3 sigma), smoothed as in 6
 9    per row: median of the overscan row, smoothed with a running median
10    a straight line fitted to the per-row overscan medians along the columns
====  ==========================================================================

All methods are vectorised over rows; loops run over amplifiers only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

METHODS: dict[int, str] = {
    0: "no overscan correction",
    1: "median of the prescan",
    2: "median of the overscan",
    3: "mean of the prescan and overscan medians",
    4: "per-row median of the prescan",
    5: "per-row median of the overscan",
    6: "per-row median of the overscan, smoothed over rows",
    7: "per-row mean of prescan and overscan medians, smoothed over rows",
    8: "per-row clipped mean of the overscan, smoothed over rows",
    9: "per-row median of the overscan, running median over rows",
    10: "straight line fitted to the per-row overscan medians",
}
DEFAULT_METHOD = 6
DEFAULT_SMOOTH = 9  # rows in the running mean of methods 6-9


class OverscanError(ValueError):
    """An overscan method that cannot be applied to this layout."""


@dataclass(frozen=True)
class Region:
    """One amplifier's part of a raw image, as numpy slices (rows, columns)."""

    data: tuple[slice, slice]
    overscan: tuple[slice, slice]
    prescan: tuple[slice, slice] | None = None


def describe(method: int) -> str:
    """The method's name; an unknown number is an error listing the valid ones."""
    if method not in METHODS:
        choices = ", ".join(f"{k} ({v})" for k, v in METHODS.items())
        raise OverscanError(f"overscan method {method!r} unknown; choose one of {choices}")
    return METHODS[method]


def overscan_level(
    raw: np.ndarray, region: Region, method: int = DEFAULT_METHOD, smooth: int = DEFAULT_SMOOTH
) -> np.ndarray:
    """The bias level to subtract from the amplifier's data section: a column vector (one
    value per data row) that broadcasts over the section."""
    describe(method)
    rows = region.data[0]
    count = len(range(*rows.indices(raw.shape[0])))
    if method == 0:
        return np.zeros((count, 1), dtype=np.float32)
    needs_prescan = method in (1, 3, 4, 7)
    if needs_prescan and region.prescan is None:
        raise OverscanError(
            f"overscan method {method} ({METHODS[method]}) needs a prescan, and this "
            f"detector has none; use method 2, 5 or 6"
        )
    over = raw[rows, region.overscan[1]].astype(np.float32)
    pre = raw[rows, region.prescan[1]].astype(np.float32) if needs_prescan else None
    if method == 1:
        value = np.full(count, np.median(pre), dtype=np.float32)
    elif method == 2:
        value = np.full(count, np.median(over), dtype=np.float32)
    elif method == 3:
        value = np.full(count, 0.5 * (np.median(pre) + np.median(over)), dtype=np.float32)
    elif method == 4:
        value = np.median(pre, axis=1)
    elif method == 5:
        value = np.median(over, axis=1)
    elif method == 6:
        value = running_mean(np.median(over, axis=1), smooth)
    elif method == 7:
        both = 0.5 * (np.median(pre, axis=1) + np.median(over, axis=1))
        value = running_mean(both, smooth)
    elif method == 8:
        value = running_mean(_clipped_row_mean(over, 3.0), smooth)
    elif method == 9:
        value = running_median(np.median(over, axis=1), smooth)
    else:
        medians = np.median(over, axis=1)
        x = np.arange(count, dtype=np.float64)
        slope, intercept = np.polyfit(x, medians, 1)
        value = intercept + slope * x
    return np.asarray(value, dtype=np.float32)[:, None]


def correct(
    raw: np.ndarray,
    regions: Sequence[Region],
    method: int = DEFAULT_METHOD,
    smooth: int = DEFAULT_SMOOTH,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Overscan-correct each amplifier and trim to the data sections (float32).

    The trimmed image spans the bounding box of the data sections (they are contiguous
    for every instrument AWE knows); ``out`` may be a preallocated float32 array of that
    shape (e.g. one plane of a stack), so no temporary full image is made."""
    box = trimmed_box(regions)
    shape = (box[0].stop - box[0].start, box[1].stop - box[1].start)
    if out is None:
        out = np.empty(shape, dtype=np.float32)
    elif out.shape != shape:
        raise ValueError(f"out has shape {out.shape}, the trimmed image {shape}")
    for region in regions:
        target = (
            slice(region.data[0].start - box[0].start, region.data[0].stop - box[0].start),
            slice(region.data[1].start - box[1].start, region.data[1].stop - box[1].start),
        )
        section = out[target]
        section[...] = raw[region.data]  # one casting copy, then in-place float32 work
        section -= overscan_level(raw, region, method, smooth)
    return out


def trimmed_box(regions: Sequence[Region]) -> tuple[slice, slice]:
    """The bounding box of the data sections: the trimmed image's place in the raw one."""
    y0 = min(r.data[0].start for r in regions)
    y1 = max(r.data[0].stop for r in regions)
    x0 = min(r.data[1].start for r in regions)
    x1 = max(r.data[1].stop for r in regions)
    return slice(y0, y1), slice(x0, x1)


def running_mean(values: np.ndarray, width: int) -> np.ndarray:
    """Mean over a centred window of ``width`` (odd) values; the window shrinks at the ends
    so the ends are not pulled towards zero."""
    values = np.asarray(values, dtype=np.float64)
    width = max(1, int(width) | 1)
    if width == 1 or values.size < 2:
        return values
    half = width // 2
    cumulative = np.concatenate([[0.0], np.cumsum(values)])
    index = np.arange(values.size)
    low = np.clip(index - half, 0, values.size)
    high = np.clip(index + half + 1, 0, values.size)
    return (cumulative[high] - cumulative[low]) / (high - low)


def running_median(values: np.ndarray, width: int) -> np.ndarray:
    """Median over a centred window of ``width`` values (edge values repeated)."""
    from numpy.lib.stride_tricks import sliding_window_view

    values = np.asarray(values, dtype=np.float64)
    width = max(1, int(width) | 1)
    if width == 1:
        return values
    padded = np.pad(values, width // 2, mode="edge")
    return np.median(sliding_window_view(padded, width), axis=1)


def _clipped_row_mean(block: np.ndarray, sigma: float) -> np.ndarray:
    centre = np.median(block, axis=1, keepdims=True)
    spread = np.std(block, axis=1, keepdims=True)
    keep = np.abs(block - centre) <= sigma * spread
    return (block * keep).sum(axis=1) / np.maximum(keep.sum(axis=1), 1)
