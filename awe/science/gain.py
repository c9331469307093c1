"""Gain by photon transfer, and the linearity of the response, from pairs of flats.

Two flats taken with the same exposure time have the same illumination pattern, so their
difference (the second scaled to the first's level) holds only noise: twice the variance
of one frame, ``signal / gain + read_noise**2`` in ADU**2. Pairs at several levels give
the photon transfer curve, variance against signal, whose slope is 1/gain (e-/ADU). The
mean signal against exposure time gives the linearity: a quadratic fit
``signal = a t + b t**2`` and the coefficient ``b / a**2`` (per ADU; 0 for a linear
detector, negative when the response falls behind at high signal).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TransferPoint:
    """One pair of flats: exposure time, mean signal (ADU) and per-frame variance (ADU^2)."""

    exposure_time: float
    signal: float
    variance: float


def pair_point(first: np.ndarray, second: np.ndarray, exposure_time: float) -> TransferPoint:
    """The photon-transfer point of two bias-free flats of one amplifier."""
    from astropy.stats import sigma_clipped_stats

    level_1 = float(np.median(first))
    level_2 = float(np.median(second))
    if level_1 <= 0 or level_2 <= 0:
        raise ValueError(f"flats without signal (levels {level_1:.1f}, {level_2:.1f} ADU)")
    difference = first - second * np.float32(level_1 / level_2)
    _mean, _median, std = sigma_clipped_stats(difference, sigma=5.0, maxiters=5)
    return TransferPoint(float(exposure_time), 0.5 * (level_1 + level_2), 0.5 * float(std) ** 2)


@dataclass(frozen=True)
class GainFit:
    gain: float  # e-/ADU
    read_noise_adu: float  # from the intercept; noisy, for information
    linearity: float  # b / a**2 of signal = a t + b t**2 (per ADU)
    nonlinearity_at_max: float  # fractional deviation from linear at the highest signal
    points: int


def fit_gain(points: Sequence[TransferPoint], maximum_signal: float | None = None) -> GainFit:
    """Fit the linearity, then the photon transfer curve (variance = signal/gain + rn^2).

    With three or more exposure times the signal is first linearised with the fitted
    quadratic (``m = m_lin + k m_lin**2``, so ``var_lin = var / (1 + 2 k m_lin)**2``): a
    response that falls behind also compresses the noise, which would bias the gain high.
    Points above ``maximum_signal`` are left out of the gain fit."""
    if len(points) < 1:
        raise ValueError("photon transfer needs at least one pair of flats")
    signal = np.array([p.signal for p in points])
    variance = np.array([p.variance for p in points])
    times = np.array([p.exposure_time for p in points])
    linearity, deviation = 0.0, 0.0
    if np.unique(times).size >= 3:
        design = np.vstack([times, times**2]).T
        (a, b), *_ = np.linalg.lstsq(design, signal, rcond=None)
        linearity = float(b / a**2)
        deviation = float(b * times.max() / a)
    if linearity:
        linear = linearize(signal, linearity)
        variance = variance / (1 + 2 * linearity * linear) ** 2
        signal = linear
    use = signal <= maximum_signal if maximum_signal else np.ones(signal.size, bool)
    if not use.any():
        use = signal == signal.min()
    if signal[use].max() > 1.5 * signal[use].min():  # levels far enough apart for a line
        slope, intercept = np.polyfit(signal[use], variance[use], 1)
    else:  # one level: the read noise is negligible against the shot noise of a flat
        slope, intercept = float(np.mean(variance[use] / signal[use])), 0.0
    if slope <= 0:
        raise ValueError("the variance does not grow with the signal: not flats of one lamp")
    read_noise = float(np.sqrt(intercept)) if intercept > 0 else 0.0
    return GainFit(float(1.0 / slope), read_noise, linearity, deviation, len(points))


def linearize(observed: np.ndarray, coefficient: float) -> np.ndarray:
    """Undo a quadratic non-linearity ``observed = true (1 + c true)`` (ADU): the root
    ``2 m / (1 + sqrt(1 + 4 c m))``, which stays exact as ``c`` goes to 0. Keeps the
    input's float type (float32 images stay float32)."""
    if coefficient == 0:
        return observed
    root = np.sqrt(np.clip(1 + 4 * coefficient * observed, 0, None))
    return 2 * observed / (1 + root)
