"""Sigma-clipped mean of a stack of frames: the combine behind every master calibration.

For each pixel, the values of the N frames are compared with their median; a value
further than ``sigma`` standard deviations (of the N values, about their mean) from the
median is rejected, and the rest are averaged. That is one pass of astropy's
``sigma_clip(cenfunc=median, stdfunc=std)``, which is what ccdproc's ``combine(...,
sigma_clip=True)`` does, so the two agree to rounding.

Speed: the median of a small stack along its first axis is the slow part with numpy
(``np.median(stack, axis=0)`` sorts millions of strided 10-element slices). Here the N
planes are sorted as whole planes by a sorting network (Batcher's odd-even merge sort:
elementwise ``minimum``/``maximum`` of planes, 32 exchanges for N = 10), in blocks of rows
that fit the CPU cache, so every operation is a long vectorised loop and memory beyond
the stack stays a few blocks.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

#: Rows of the stack handled at once: N planes of this many rows stay in cache.
BLOCK_PIXELS = 1 << 15


@dataclass
class Combined:
    """A combined image and what the clipping did."""

    image: np.ndarray
    rejected: int  # values rejected over the whole stack
    count: int  # frames combined

    @property
    def rejected_fraction(self) -> float:
        return self.rejected / max(1, self.image.size * self.count)


@functools.lru_cache(maxsize=64)
def sorting_network(n: int) -> tuple[tuple[int, int], ...]:
    """Compare-exchange pairs (i < j) of Batcher's odd-even merge sort for ``n`` items."""
    pairs: list[tuple[int, int]] = []
    p = 1
    while p < n:
        k = p
        while k >= 1:
            for j in range(k % p, n - k, 2 * k):
                for i in range(min(k, n - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return tuple(pairs)


def sort_planes(planes: list[np.ndarray]) -> list[np.ndarray]:
    """Sort a list of equal-shape arrays elementwise (in place: the arrays are reused)."""
    spare = np.empty_like(planes[0])
    for i, j in sorting_network(len(planes)):
        low, high = planes[i], planes[j]
        np.minimum(low, high, out=spare)
        np.maximum(low, high, out=high)
        planes[i], spare = spare, low
    return planes


def median_of_planes(planes: list[np.ndarray]) -> np.ndarray:
    """Elementwise median of equal-shape arrays (the arrays are reordered in place)."""
    ordered = sort_planes(planes)
    n = len(ordered)
    if n % 2:
        return ordered[n // 2].copy()
    return 0.5 * (ordered[n // 2 - 1] + ordered[n // 2])


def clipped_mean(
    stack: np.ndarray, sigma: float = 3.0, block_pixels: int = BLOCK_PIXELS
) -> Combined:
    """Sigma-clipped mean over the first axis of ``stack`` (N, ny, nx); see the module
    docstring. The result has the stack's float dtype (float32 stays float32)."""
    stack = np.asarray(stack)
    if stack.ndim != 3:
        raise ValueError(f"a stack is (frames, rows, columns); got shape {stack.shape}")
    n = stack.shape[0]
    if n == 0:
        raise ValueError("cannot combine an empty stack")
    if not np.issubdtype(stack.dtype, np.floating):
        stack = stack.astype(np.float32)
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    out = np.empty(stack.shape[1:], dtype=stack.dtype)
    rows = max(1, block_pixels // max(1, stack.shape[2]))
    rejected = 0
    for start in range(0, stack.shape[1], rows):
        block = stack[:, start : start + rows]
        out[start : start + rows], dropped = _clipped_block(block, sigma)
        rejected += dropped
    return Combined(image=out, rejected=rejected, count=n)


def _clipped_block(block: np.ndarray, sigma: float) -> tuple[np.ndarray, int]:
    n = block.shape[0]
    dtype = block.dtype
    total = block.sum(axis=0)
    if n == 1:
        return total, 0
    mean = total / dtype.type(n)
    variance = np.zeros_like(mean)
    for plane in block:
        deviation = plane - mean
        deviation *= deviation
        variance += deviation
    variance /= dtype.type(n)
    limit = np.sqrt(variance)
    limit *= dtype.type(sigma)
    centre = median_of_planes([plane.copy() for plane in block])
    low = centre - limit
    high = centre + limit
    kept_sum = np.zeros_like(mean)
    kept = np.zeros(mean.shape, dtype=np.int16)
    for plane in block:
        keep = (plane >= low) & (plane <= high)
        kept_sum += np.where(keep, plane, dtype.type(0))
        kept += keep
    # The values nearest the median always survive (their deviation is below one sigma),
    # so ``kept`` is at least 1 everywhere.
    return kept_sum / kept, int(n * kept.size - kept.sum(dtype=np.int64))


def normalised(stack: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Divide each frame of ``stack`` by its scale, in place (flats by their level)."""
    for plane, scale in zip(stack, np.asarray(scales, dtype=np.float64), strict=True):
        if not np.isfinite(scale) or scale == 0:
            raise ValueError(f"cannot normalise a frame by {scale}")
        plane /= plane.dtype.type(scale)
    return stack
