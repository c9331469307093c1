"""Fringes: the interference pattern thin CCDs show in red filters, from science frames.

Each bias-subtracted, flat-fielded science frame is divided by its sky level (the median of
its unmasked pixels) and 1 subtracted, so what remains is fringes (a fraction of the sky),
sources and noise. Sources are masked (``awe.science.flat.source_mask``); the fringe frame
is the median over the dithered frames, where the fringes stay put and the sources move.
It is subtracted from a reduced frame scaled by that frame's sky.

The amplitude is measured without the noise: the frames are split in two halves, and the
covariance of the two half-means over the chip is the variance of the pattern alone (the
noise of the halves is independent). ``amplitude`` is sqrt(2) times that rms: the
amplitude of a single cosine with the same rms, as a fraction of the sky.
"""

from __future__ import annotations

import numpy as np

from awe.science.flat import level, source_mask


def fringe_frame(
    stack: np.ndarray, threshold: float = 3.0, grow: int = 2
) -> tuple[np.ndarray, float, list[float]]:
    """(fringe frame as a fraction of the sky, amplitude, sky levels) from a stack of
    bias-subtracted, flat-fielded science frames (modified in place)."""
    if len(stack) < 2:
        raise ValueError("a fringe frame needs at least 2 dithered science frames")
    skies = []
    for plane in stack:
        mask = source_mask(plane, threshold, grow)
        plane[mask] = np.nan
        sky = level(plane)
        if sky <= 0:
            raise ValueError(f"a science frame has no sky (level {sky:.2f} ADU)")
        skies.append(sky)
        plane /= plane.dtype.type(sky)
        plane -= plane.dtype.type(1.0)
    half = len(stack) // 2
    with np.errstate(all="ignore"):
        first = np.nanmean(stack[:half], axis=0)
        second = np.nanmean(stack[half:], axis=0)
        both = np.isfinite(first) & np.isfinite(second)
        a = first[both] - first[both].mean()
        b = second[both] - second[both].mean()
        variance = float(np.mean(a.astype(np.float64) * b))
        pattern = np.nanmedian(stack, axis=0)
    pattern = np.where(np.isfinite(pattern), pattern, 0.0).astype(np.float32)
    amplitude = float(np.sqrt(2 * max(variance, 0.0)))
    return pattern, amplitude, skies
