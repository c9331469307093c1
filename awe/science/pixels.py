"""Bad-pixel maps: hot pixels from a master bias, cold pixels from a master dome flat.

Maps are uint8 images of the trimmed chip, 1 for a good pixel and 0 for a bad one, as
Astro-WISE's HotPixelMap and ColdPixelMap. Thresholds are parameters of the sequences:

- hot: a pixel of the master bias more than ``threshold`` (robust) standard deviations
  above the median of the bias, where the standard deviation is that of the bias after
  3-sigma clipping (its read noise and fixed pattern, not the hot pixels themselves);
- cold: a pixel of the dome flat, divided by its own large-scale shape, below ``low`` or
  above ``high`` (Astro-WISE calls every pixel that "deviates substantially from the other
  pixels" in the flat cold, bright ones included).
"""

from __future__ import annotations

import numpy as np

from awe.science.flat import DEFAULT_SMOOTHING, large_scale


def robust_background(image: np.ndarray, sigma: float = 3.0) -> tuple[float, float]:
    """(median, standard deviation) of ``image`` after iterative ``sigma`` clipping (on a
    regular grid of about a million pixels of a big chip)."""
    from astropy.stats import sigma_clipped_stats

    from awe.science.quality import sample

    _mean, median, std = sigma_clipped_stats(sample(image), sigma=sigma, maxiters=10)
    return float(median), float(std)


def hot_pixel_map(bias: np.ndarray, threshold: float = 10.0) -> tuple[np.ndarray, dict]:
    """Map of hot pixels in a master bias (1 good, 0 hot) and the numbers behind it."""
    median, std = robust_background(bias)
    limit = median + threshold * std
    good = (bias <= limit).astype(np.uint8)
    return good, {
        "median": median,
        "stdev": std,
        "limit": limit,
        "bad": int(good.size - good.sum()),
    }


def cold_pixel_map(
    flat: np.ndarray, low: float = 0.8, high: float = 1.2, scale: int = DEFAULT_SMOOTHING
) -> tuple[np.ndarray, dict]:
    """Map of cold (and unusually bright) pixels in a normalised dome flat."""
    if not 0 < low < 1 < high:
        raise ValueError(f"thresholds must satisfy 0 < low < 1 < high; got {low}, {high}")
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = flat / large_scale(flat, scale)
    good = ((relative >= low) & (relative <= high)).astype(np.uint8)
    return good, {"low": low, "high": high, "bad": int(good.size - good.sum())}
