"""One simulated CCD: its hidden hardware and the pixels of one exposure. All numpy, no loop
over pixels (loops run over amplifiers, and over the few saturated stars' bleed trails).

The hardware of a chip is fixed for a night and drawn from the seed: per amplifier the true
gain (nominal +- ``gain_rms``), read noise and bias level; the bias column pattern; the
pixel response (chip sensitivity, 1% pixel-to-pixel variation, cold pixels); hot pixels.
Illumination adds the optics' vignetting (and the dome lamp's gradient in dome flats).

An exposure, in order: the expected signal (sky, fringes, stars, in nominal ADU), times
the flat and the nominal gain, gives electrons; Poisson noise; cosmic rays; saturation at
full well with charge bleeding along columns; the non-linearity of the response, when the
plan sets ``nonlinearity`` (per amplifier ``beta``: measured electrons are
``e * (1 - beta * e / full_well)``); division by the true gain; then the bias
(level drifting per exposure, column pattern, a row ramp and row wave shared with the
overscan), hot pixels and read noise; digitised to 16-bit unsigned integers.

The truth flat is therefore ``response * vignetting * nominal_gain / true_gain``: dividing
(raw - bias) by it gives back the signal in nominal ADU, in which the zeropoints are given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from awe.data.instruments import Chip, Instrument
from awe.data.sim_sky import data_origin, field_radius_pixels, focal_plane

ADC_MAX = 65535
READOUT_SECONDS = 30.0  # cosmic rays also arrive while the chip is read out
FRINGE_WAVES = 5


def rng_for(seed: int, *keys: int) -> np.random.Generator:
    """An independent, reproducible random stream for (seed, keys...)."""
    return np.random.default_rng([seed, *keys])


@dataclass
class AmplifierTruth:
    name: str
    gain: float  # true electrons per ADU
    read_noise: float  # electrons
    bias_level: float  # ADU, before the per-exposure drift
    full_well: float  # electrons

    @property
    def read_noise_adu(self) -> float:
        return self.read_noise / self.gain


class ChipModel:
    """The hidden, true properties of one chip for one simulated night."""

    def __init__(self, instrument: Instrument, chip: Chip, seed: int) -> None:
        self.instrument, self.chip, self.seed = instrument, chip, seed
        plan = instrument.simulation
        rng = rng_for(seed, 1, chip.number)
        detector = instrument.detector
        self.shape = detector.shape
        self.x0, self.y0, self.nx, self.ny = data_origin(instrument)
        self.amplifiers = [
            AmplifierTruth(
                name=amp.name,
                gain=amp.gain * (1 + plan["gain_rms"] * rng.standard_normal()),
                read_noise=amp.read_noise * (1 + 0.05 * rng.standard_normal()),
                bias_level=amp.bias_level + 20.0 * rng.standard_normal(),
                full_well=amp.saturation * amp.gain,
            )
            for amp in detector.amplifiers
        ]
        # Which amplifier reads each raw column (columns outside every section: the first).
        self.amp_of_column = np.zeros(self.shape[1], dtype=np.intp)
        for index, amp in enumerate(detector.amplifiers):
            for section in (amp.data, amp.overscan, amp.prescan):
                if section is not None:
                    self.amp_of_column[section.x1 - 1 : section.x2] = index
        self.data_amp = self.amp_of_column[self.x0 : self.x0 + self.nx]
        self.column_pattern = plan["bias_column_rms_adu"] * rng.standard_normal(self.shape[1])

        pixel = 1 + plan["pixel_response_rms"] * rng.standard_normal((self.ny, self.nx))
        sensitivity = 1 + plan["chip_response_rms"] * rng.standard_normal()
        self.cold = self._pick(rng, plan["cold_pixel_fraction"])
        self.cold_response = rng.uniform(0.05, 0.5, self.cold[0].size)
        pixel[self.cold] = self.cold_response
        self.hot = self._pick(rng, plan["hot_pixel_fraction"])
        self.hot_level = rng.uniform(300.0, 3000.0, self.hot[0].size)  # ADU in every read-out

        u, v = focal_plane(instrument, chip)
        radius = field_radius_pixels(instrument)
        self.vignetting = 1 - plan["vignetting"] * (u**2 + v**2) / radius**2
        self.dome_illumination = 1 + plan["dome_gradient"] * u / radius
        gains = np.array([a.gain for a in self.amplifiers])
        nominal = np.array([a.gain for a in detector.amplifiers])
        self.response = sensitivity * pixel * self.vignetting  # electrons per nominal e-
        self.flat = self.response * (nominal / gains)[self.data_amp]
        self.nominal_gain = nominal[self.data_amp]
        # Non-linearity (off unless the plan asks): a stream of its own, so the draws
        # above, and every truth made without it, stay the same.
        strength = float(plan.get("nonlinearity", 0.0))
        self.nonlinearity = (
            strength * rng_for(seed, 7, chip.number).uniform(0.5, 1.5, len(self.amplifiers))
            if strength
            else np.zeros(len(self.amplifiers))
        )

    def _pick(self, rng: np.random.Generator, fraction: float) -> tuple[np.ndarray, np.ndarray]:
        """Distinct random data pixels, as (rows, columns) in data-section coordinates."""
        count = rng.binomial(self.nx * self.ny, fraction)
        flat_index = rng.choice(self.nx * self.ny, size=count, replace=False)
        return np.unravel_index(np.sort(flat_index), (self.ny, self.nx))

    def truth(self) -> dict[str, Any]:
        """The chip's hardware as the truth file records it (pixels 0-based, raw image)."""
        return {
            "amplifiers": [
                {
                    "name": a.name,
                    "gain": a.gain,
                    "read_noise_e": a.read_noise,
                    "read_noise_adu": a.read_noise_adu,
                    "bias_level": a.bias_level,
                    "full_well_e": a.full_well,
                    **({"nonlinearity": float(beta)} if beta else {}),
                }
                for a, beta in zip(self.amplifiers, self.nonlinearity, strict=True)
            ],
            "hot_pixels": _pixel_list(self.hot, self.x0, self.y0, self.hot_level),
            "cold_pixels": _pixel_list(self.cold, self.x0, self.y0, self.cold_response),
        }

    def overscan_corrected_bias(self) -> np.ndarray:
        """The true master bias after a per-row overscan correction (ADU, data section,
        float32): each amplifier's fixed column pattern minus the median of its overscan
        columns (the row structure and the levels go with the overscan). Hot pixels'
        dark signal is not in it."""
        detector = self.instrument.detector
        offset = np.array(
            [np.median(self.column_pattern[a.overscan.slices[1]]) for a in detector.amplifiers]
        )
        row = self.column_pattern[self.x0 : self.x0 + self.nx] - offset[self.data_amp]
        return np.broadcast_to(row, (self.ny, self.nx)).astype(np.float32)

    def row_pattern(self, row_wave_phase: float) -> np.ndarray:
        """The bias structure along rows (a column vector, ADU): a ramp at the start of
        the read-out, fixed, and a slow wave whose phase changes from one exposure to the
        next (``row_wave_phase`` in each exposure's truth)."""
        rows = np.arange(self.shape[0])[:, None]
        ramp_adu = self.instrument.simulation["bias_row_ramp_adu"]
        ramp = ramp_adu * np.exp(-rows / max(3.0, 30.0 * self.instrument.scale))
        wave = 0.5 * np.sin(2 * np.pi * rows / max(8.0, self.shape[0] / 3) + row_wave_phase)
        return ramp + wave

    def bias(self, levels: np.ndarray, row_wave_phase: float) -> np.ndarray:
        """The noiseless raw bias of one exposure (float64, the full raw layout): the
        amplifiers' ``levels`` (the exposure's truth ``bias_level``), the column and row
        patterns, and the hot pixels."""
        image = np.asarray(levels, dtype=np.float64)[self.amp_of_column] + self.column_pattern
        image = image[None, :] + self.row_pattern(row_wave_phase)
        data = image[self.y0 : self.y0 + self.ny, self.x0 : self.x0 + self.nx]
        data[self.hot] += self.hot_level
        return image

    # ---- one exposure ---------------------------------------------------------------------
    def expose(
        self,
        rng: np.random.Generator,
        *,
        signal: np.ndarray | None,
        exposure_time: float,
        stars: Stars | None = None,
        row_wave_phase: float = 0.0,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """A raw chip image (uint16, the full raw layout) and this exposure's chip truth.

        ``signal`` is the expected light per data pixel in nominal ADU before the flat
        (None: a bias); ``stars`` are added to it."""
        plan = self.instrument.simulation
        truth: dict[str, Any] = {}
        gains = np.array([a.gain for a in self.amplifiers])
        electrons = np.zeros((self.ny, self.nx), dtype=np.float32)
        if signal is not None or stars is not None:
            light = np.zeros((self.ny, self.nx)) if signal is None else np.array(signal, float)
            if stars is not None:
                stars.render(light, self.x0, self.y0)
            # nominal ADU -> electrons: the light the pixel responds to, times the nominal
            # gain; read out with the true gain, (raw - bias) / flat is the light again.
            expected = np.clip(light * self.response * self.nominal_gain, 0, None)
            electrons = shot_noise(rng, expected)
        rays = cosmic_rays(rng, electrons, plan["cosmic_rays_per_pixel_per_s"], exposure_time)
        truth["cosmic_rays"] = [[int(x) + self.x0, int(y) + self.y0] for x, y in rays]
        full_well = np.array([a.full_well for a in self.amplifiers])[self.data_amp]
        truth["saturated_pixels"] = bleed(electrons, full_well)
        if self.nonlinearity.any():  # the response falls behind: e * (1 - beta e / full well)
            beta = self.nonlinearity[self.data_amp].astype(np.float32)
            electrons *= 1 - beta * electrons / full_well.astype(np.float32)

        drift = plan["bias_drift_rms_adu"] * rng.standard_normal(len(self.amplifiers))
        levels = np.array([a.bias_level for a in self.amplifiers]) + drift
        truth["bias_level"] = [float(v) for v in levels]
        noise = np.array([a.read_noise_adu for a in self.amplifiers])[self.amp_of_column]
        image = rng.standard_normal(self.shape, dtype=np.float32)
        image *= noise.astype(np.float32)
        image += (levels[self.amp_of_column] + self.column_pattern).astype(np.float32)
        image += self.row_pattern(row_wave_phase).astype(np.float32)
        data = image[self.y0 : self.y0 + self.ny, self.x0 : self.x0 + self.nx]
        electrons /= gains[self.data_amp].astype(np.float32)
        data += electrons
        data[self.hot] += self.hot_level.astype(np.float32)
        np.rint(image, out=image)
        np.clip(image, 0, ADC_MAX, out=image)
        return image.astype(np.uint16), truth


#: Above this many electrons a Gaussian with the Poisson mean and variance replaces the
#: Poisson draw: its skewness (1/sqrt(N) < 3%) is invisible, and it is four times faster.
GAUSSIAN_ABOVE = 1000.0


def shot_noise(rng: np.random.Generator, expected: np.ndarray) -> np.ndarray:
    """Photon (shot) noise on expected electron counts, as float32 electrons."""
    electrons = rng.standard_normal(expected.shape, dtype=np.float32)
    electrons *= np.sqrt(expected, dtype=np.float32)
    electrons += expected.astype(np.float32)
    low = expected < GAUSSIAN_ABOVE
    if low.any():
        electrons[low] = rng.poisson(expected[low])
    return electrons


def _pixel_list(index, x0: int, y0: int, values: np.ndarray) -> list[list[float]]:
    rows, cols = index
    return [
        [int(c) + x0, int(r) + y0, round(float(v), 4)]
        for r, c, v in zip(rows, cols, values, strict=True)
    ]


def cosmic_rays(
    rng: np.random.Generator, electrons: np.ndarray, rate: float, exposure_time: float
) -> list[tuple[float, float]]:
    """Add cosmic-ray tracks (1-6 pixels, 600-6000 e- per pixel) in place; their starts."""
    ny, nx = electrons.shape
    count = rng.poisson(rate * nx * ny * (exposure_time + READOUT_SECONDS))
    if count == 0:
        return []
    x0, y0 = rng.uniform(0, nx, count), rng.uniform(0, ny, count)
    length = rng.integers(1, 7, count)
    angle = rng.uniform(0, 2 * np.pi, count)
    step = np.arange(6)[None, :]
    xs = np.floor(x0[:, None] + step * np.cos(angle)[:, None]).astype(int)
    ys = np.floor(y0[:, None] + step * np.sin(angle)[:, None]).astype(int)
    keep = (step < length[:, None]) & (xs >= 0) & (xs < nx) & (ys >= 0) & (ys < ny)
    deposit = rng.uniform(600, 6000, xs.shape)
    np.add.at(electrons, (ys[keep], xs[keep]), deposit[keep])
    return list(zip(x0.tolist(), y0.tolist(), strict=True))


def bleed(electrons: np.ndarray, full_well: np.ndarray) -> int:
    """Clip at full well; the charge above it spills up and down the column, filling
    neighbours to full well (a bleed trail). Returns the number of saturated pixels."""
    over = electrons > full_well
    if not over.any():
        return 0
    columns = np.flatnonzero(over.any(axis=0))
    for column in columns:  # only the few columns a saturated star or cosmic ray touches
        values = electrons[:, column]
        well = full_well[column]
        excess = float(np.clip(values - well, 0, None).sum())
        hit = np.flatnonzero(values > well)
        values[hit] = well
        spread = int(math.ceil(excess / well / 2))  # pixels filled on each side
        low, high = max(0, hit.min() - spread), min(values.size, hit.max() + spread + 1)
        values[low:high] = np.maximum(values[low:high], well)
    return int((electrons >= full_well[None, :]).sum())


#: Stamp radius in FWHM by flux (nominal ADU): faint stars are lost in the noise beyond a few
#: FWHM, while the wings of saturating stars must show. Each stamp is normalised to the
#: star's flux, so the truncation moves at most ~1% of a faint star's light inwards.
STAMP_TIERS = ((2e4, 3.0), (2e6, 6.0), (math.inf, 20.0))


@dataclass
class Stars:
    """Stars to draw: positions in raw-image pixels (0-based) and fluxes in nominal ADU,
    each a Moffat profile ``(1 + r^2/alpha^2)^-beta`` with the exposure's FWHM."""

    x: np.ndarray
    y: np.ndarray
    flux: np.ndarray
    fwhm: float  # pixels
    beta: float

    @property
    def alpha(self) -> float:
        return self.fwhm / (2 * math.sqrt(2 ** (1 / self.beta) - 1))

    def stamp_radius(self) -> np.ndarray:
        """Each star's stamp radius in pixels (see :data:`STAMP_TIERS`)."""
        limits = np.array([limit for limit, _ in STAMP_TIERS])
        factors = np.array([factor for _, factor in STAMP_TIERS])
        return np.ceil(factors[np.searchsorted(limits, self.flux)] * self.fwhm).astype(int)

    def render(self, image: np.ndarray, x0: int, y0: int) -> None:
        """Add the stars to a data-section image whose pixel (0, 0) is raw pixel (x0, y0):
        one vectorised pass per stamp size."""
        radii = self.stamp_radius()
        for radius in np.unique(radii):
            chosen = radii == radius
            self._stamp(image, self.x[chosen] - x0, self.y[chosen] - y0, self.flux[chosen], radius)

    def _stamp(self, image: np.ndarray, x, y, flux, radius: int) -> None:
        ny, nx = image.shape
        steps = np.arange(-radius, radius + 1)
        cx, cy = np.rint(x).astype(int), np.rint(y).astype(int)
        dx = (cx - x).astype(np.float32)[:, None, None] + steps[None, None, :]
        dy = (cy - y).astype(np.float32)[:, None, None] + steps[None, :, None]
        profile = (1 + (dx * dx + dy * dy) / np.float32(self.alpha**2)) ** np.float32(-self.beta)
        profile *= (flux / profile.sum(axis=(1, 2), dtype=np.float64)).astype(np.float32)[
            :, None, None
        ]
        # Flat pixel indices; only stamps that cross the image edge need a mask.
        index = (cy * nx + cx)[:, None, None] + (steps[:, None] * nx + steps[None, :])[None]
        edge = (cx < radius) | (cx >= nx - radius) | (cy < radius) | (cy >= ny - radius)
        weights = profile[~edge].ravel()
        index_all = index[~edge].ravel()
        if edge.any():
            xs = cx[edge, None, None] + steps[None, None, :]
            ys = cy[edge, None, None] + steps[None, :, None]
            inside = (xs >= 0) & (xs < nx) & (ys >= 0) & (ys < ny)
            weights = np.concatenate([weights, profile[edge][inside]])
            index_all = np.concatenate([index_all, index[edge][inside]])
        # bincount sums repeated indices like np.add.at, an order of magnitude faster.
        image += np.bincount(index_all, weights=weights, minlength=nx * ny).reshape(ny, nx)


def fringe_pattern(instrument: Instrument, chip: Chip, seed: int, filter_index: int) -> np.ndarray:
    """A fringe pattern over the data section with zero mean and unit peak-to-mean
    amplitude: a few interfering waves of 20-80 pixels, continuous across chips because it
    is drawn in focal-plane coordinates."""
    rng = rng_for(seed, 5, filter_index)
    u, v = focal_plane(instrument, chip)
    pattern = np.zeros(np.broadcast_shapes(u.shape, v.shape))
    for _ in range(FRINGE_WAVES):
        wavelength = rng.uniform(20.0, 80.0)
        angle = rng.uniform(0, np.pi)
        phase = rng.uniform(0, 2 * np.pi)
        pattern += np.cos(2 * np.pi * (u * np.cos(angle) + v * np.sin(angle)) / wavelength + phase)
    return pattern / FRINGE_WAVES
