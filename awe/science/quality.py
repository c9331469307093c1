"""Quality checks of master calibrations, with Astro-WISE's parameters.

Each check compares one number with its limit and returns a :class:`Check`; the sequence
logs every check with value and limit, and sets a quality flag on the product when one
fails. The bias checks are Astro-WISE's BiasFrame checks (defaults in parentheses):

- ``MAXIMUM_ABS_MEAN`` (10 ADU): the mean of an overscan-corrected master bias is near 0;
- ``MAXIMUM_STDEV`` (10 ADU): its standard deviation (clipped) is small;
- ``MAXIMUM_STDEV_DIFFERENCE`` (10 ADU): it differs little from that of the previous
  master bias of the chip;
- ``MAXIMUM_SUBWIN_FLATNESS`` (1e5): the spread (max - min) of the means of sub-windows;
- ``MAXIMUM_SUBWIN_STDEV`` (1e5): the largest standard deviation of a sub-window.

Flats are checked the same way on their normalised image: the standard deviation, and
the sub-window flatness of the master flat.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SUBWINDOWS = (4, 4)  # rows x columns of sub-windows a frame is cut into


@dataclass(frozen=True)
class Check:
    """One quality check: its name, the measured value and the limit it must not pass."""

    name: str
    value: float
    limit: float

    @property
    def passed(self) -> bool:
        return bool(np.isfinite(self.value)) and self.value <= self.limit

    def describe(self) -> str:
        verdict = "ok" if self.passed else "FAILED"
        return f"{self.name}: {self.value:.4g} (limit {self.limit:.4g}) {verdict}"


#: Statistics of a whole chip use a regular grid of at most about this many pixels: the
#: numbers are the same to a fraction of a percent, at a fraction of the cost.
SAMPLE_PIXELS = 1 << 20


def sample(image: np.ndarray, pixels: int = SAMPLE_PIXELS) -> np.ndarray:
    """``image`` itself when small, else a regular grid of about ``pixels`` of its pixels."""
    step = 1
    while image.size // (step * step) > pixels:
        step += 1
    return image if step == 1 else image[::step, ::step]


def clipped_stats(image: np.ndarray, sigma: float = 3.0) -> tuple[float, float]:
    """(mean, standard deviation) after ``sigma`` clipping, over finite pixels (of a
    regular grid of about a million pixels on big chips)."""
    from astropy.stats import sigma_clipped_stats

    mean, _median, std = sigma_clipped_stats(sample(image), sigma=sigma, maxiters=5)
    return float(mean), float(std)


def subwindow_stats(image: np.ndarray, grid: tuple[int, int] = SUBWINDOWS) -> tuple[float, float]:
    """(max - min of the sub-window means, largest sub-window standard deviation); means
    and deviations are 3-sigma clipped so single hot pixels do not decide."""
    ny, nx = image.shape
    ys = np.linspace(0, ny, grid[0] + 1).astype(int)
    xs = np.linspace(0, nx, grid[1] + 1).astype(int)
    means, stdevs = [], []
    for y0, y1 in zip(ys[:-1], ys[1:], strict=True):
        for x0, x1 in zip(xs[:-1], xs[1:], strict=True):
            mean, std = clipped_stats(image[y0:y1, x0:x1])
            means.append(mean)
            stdevs.append(std)
    return float(max(means) - min(means)), float(max(stdevs))


def bias_checks(
    bias: np.ndarray,
    limits: dict[str, float],
    previous_stdev: float | None = None,
    overscan_corrected: bool = True,
) -> list[Check]:
    """Astro-WISE's BiasFrame checks; ``limits`` by parameter name. The mean is checked
    only when the overscan was subtracted (otherwise it is the bias level itself), the
    stdev difference only when there is a previous master bias."""
    mean, std = clipped_stats(bias)
    flatness, window_std = subwindow_stats(bias)
    checks = []
    if overscan_corrected:
        checks.append(Check("MAXIMUM_ABS_MEAN", abs(mean), limits["MAXIMUM_ABS_MEAN"]))
    checks.append(Check("MAXIMUM_STDEV", std, limits["MAXIMUM_STDEV"]))
    if previous_stdev is not None:
        checks.append(
            Check(
                "MAXIMUM_STDEV_DIFFERENCE",
                abs(std - previous_stdev),
                limits["MAXIMUM_STDEV_DIFFERENCE"],
            )
        )
    checks.append(Check("MAXIMUM_SUBWIN_FLATNESS", flatness, limits["MAXIMUM_SUBWIN_FLATNESS"]))
    checks.append(Check("MAXIMUM_SUBWIN_STDEV", window_std, limits["MAXIMUM_SUBWIN_STDEV"]))
    return checks


def flat_checks(flat: np.ndarray, limits: dict[str, float]) -> list[Check]:
    """Checks of a normalised flat: its clipped standard deviation and the spread of its
    sub-window means (large-scale structure)."""
    _mean, std = clipped_stats(flat)
    flatness, _window_std = subwindow_stats(flat)
    return [
        Check("MAXIMUM_STDEV", std, limits["MAXIMUM_STDEV"]),
        Check("MAXIMUM_SUBWIN_FLATNESS", flatness, limits["MAXIMUM_SUBWIN_FLATNESS"]),
    ]


@dataclass(frozen=True)
class FrameStatistics:
    """QuickCheck's numbers for one raw frame (on its overscan-corrected data section)."""

    mean: float
    median: float
    rms: float
    saturated_fraction: float


def frame_statistics(data: np.ndarray, raw_data: np.ndarray, saturation: float) -> FrameStatistics:
    """Mean, median, rms (3-sigma clipped) of ``data``; the fraction of ``raw_data``
    (the same pixels as read out) at or above ``saturation``."""
    from astropy.stats import sigma_clipped_stats

    mean, median, std = sigma_clipped_stats(data, sigma=3.0, maxiters=5)
    saturated = float(np.count_nonzero(raw_data >= saturation)) / max(1, raw_data.size)
    return FrameStatistics(float(mean), float(median), float(std), saturated)
