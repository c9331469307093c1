"""Reduce one raw CCD image: overscan, bias, flat, fringes, bad pixels, cosmic rays, weight.

The order is Astro-WISE's ReduceTask: per amplifier the overscan level is subtracted and
the image trimmed to its data section (:mod:`awe.science.overscan`, the same methods the
calibration sequences use); the master bias (trimmed, overscan corrected) is
subtracted and the result divided by the master flat; a fringe frame, scaled to this
exposure by least squares on the sky pixels, is subtracted. Pixels that are hot, cold,
saturated (with their bleed trails) or hit by a cosmic ray (astroscrappy's L.A.Cosmic) get
weight 0. The weight is the relative inverse variance: for a sky-limited exposure the
variance of a flat-fielded pixel is proportional to 1/flat, so the weight is the flat
normalised to median 1, times the masks (Astro-WISE's WeightFrame).

Everything is whole-array numpy in float32 (the precision raw 16-bit data carries), so a
full 2k x 4k chip reduces in a fraction of a second before the cosmic-ray search.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from awe.science.flat import apply_flat
from awe.science.overscan import DEFAULT_METHOD, Region, correct, trimmed_box

#: Rows in the running mean of the smoothed overscan methods (6-9). Narrower than the
#: calibration default (9): a science frame's row structure is followed more closely, and
#: with 9 rows the residual row noise lets a spurious source through on the test night.
OVERSCAN_SMOOTH_ROWS = 5

#: Bits of the reduced frame's flag image (0 is a good pixel).
FLAG_HOT, FLAG_COLD, FLAG_SATURATED, FLAG_COSMIC, FLAG_FLAT = 1, 2, 4, 8, 16


@dataclass
class Reduced:
    """A reduced CCD: image (ADU, sky kept), weight, flag bits, and what was done."""

    image: np.ndarray
    weight: np.ndarray
    flags: np.ndarray
    stats: dict[str, float] = field(default_factory=dict)


def fringe_scale(image: np.ndarray, fringe: np.ndarray, usable: np.ndarray) -> float:
    """Least-squares amplitude of ``fringe`` in ``image`` over usable pixels, with stars
    and other outliers clipped at 3 sigma (three passes)."""
    residual = image - np.median(image[usable])
    keep = usable.copy()
    scale = 0.0
    for _ in range(3):
        f, r = fringe[keep], residual[keep]
        denominator = float(np.dot(f, f))
        if denominator == 0:
            return 0.0
        scale = float(np.dot(f, r)) / denominator
        misfit = residual - scale * fringe
        sigma = 1.4826 * np.median(np.abs(misfit[keep]))
        keep = usable & (np.abs(misfit) < 3 * sigma)
    return scale


def reduce_ccd(
    raw: np.ndarray,
    amplifiers: Sequence[Region],
    *,
    bias: np.ndarray | None,
    flat: np.ndarray | None,
    fringe: np.ndarray | None = None,
    hot: np.ndarray | None = None,
    cold: np.ndarray | None = None,
    saturation: float = 65535.0,
    gain: float = 1.0,
    read_noise: float = 0.0,
    overscan: int = DEFAULT_METHOD,
    cosmics: bool = True,
    cosmic_sigma: float = 4.5,
    cosmic_iterations: int = 4,
) -> Reduced:
    """Reduce a raw CCD (the full raw layout, any integer or float type).

    ``overscan`` is an Astro-WISE ``OVERSCAN_CORRECTION`` method of
    :mod:`awe.science.overscan` (the one the master bias was made with).
    ``bias`` and ``flat`` are trimmed to the data section; ``hot``/``cold`` are masks with 1
    good and 0 bad. ``gain`` (e-/ADU) and ``read_noise`` (e-) are for the cosmic-ray
    search (``cosmic_sigma`` and ``cosmic_iterations`` are L.A.Cosmic's ``sigclip`` and
    ``niter``). Returns the image in ADU with the sky kept (sky subtraction belongs to source
    extraction and coaddition)."""
    image = correct(raw, amplifiers, overscan, smooth=OVERSCAN_SMOOTH_ROWS)
    trimmed_raw = raw[trimmed_box(amplifiers)]
    stats: dict[str, float] = {}
    _check_shape("bias", bias, image.shape)
    _check_shape("flat", flat, image.shape)
    if bias is not None:
        image -= bias.astype(np.float32, copy=False)
    # flags are set in place (ufuncs with where=), each mask made once: the arithmetic of
    # a full chip is a few passes over memory, and every extra pass shows
    flags = np.zeros(image.shape, dtype=np.uint8)
    if flat is not None:
        flat = flat.astype(np.float32, copy=False)
        np.bitwise_or(flags, FLAG_FLAT, out=flags, where=apply_flat(image, flat))
    counts = {}
    for name, mask, bit in (("hot", hot, FLAG_HOT), ("cold", cold, FLAG_COLD)):
        _check_shape(name, mask, image.shape)
        counts[name] = 0.0
        if mask is not None:
            defect = mask == 0
            np.bitwise_or(flags, bit, out=flags, where=defect)
            counts[name] = float(np.count_nonzero(defect))
    saturated = saturated_pixels(trimmed_raw, saturation)
    np.bitwise_or(flags, FLAG_SATURATED, out=flags, where=saturated)
    bad = flags != 0
    if fringe is not None:
        _check_shape("fringe", fringe, image.shape)
        fringe = fringe.astype(np.float32, copy=False)
        scale = fringe_scale(image, fringe, ~bad)
        image -= np.float32(scale) * fringe
        stats["fringe_scale"] = scale
    if cosmics:
        hits = cosmic_rays(
            image, bad, gain, read_noise, saturation, cosmic_sigma, cosmic_iterations
        )
        stats["cosmic_pixels"] = float(np.count_nonzero(hits))
        hits &= ~bad
        np.bitwise_or(flags, FLAG_COSMIC, out=flags, where=hits)
        bad |= hits
    weight = relative_weight(flat, image.shape)
    np.copyto(weight, np.float32(0.0), where=bad)
    good = ~bad
    stats.update(
        {
            "sky_median": _sampled_median(image, good),
            "hot_pixels": counts["hot"],
            "cold_pixels": counts["cold"],
            "saturated_pixels": float(np.count_nonzero(saturated)),
            "bad_fraction": float(np.count_nonzero(bad)) / bad.size,
        }
    )
    return Reduced(image=image, weight=weight, flags=flags, stats=stats)


def _check_shape(name: str, array: np.ndarray | None, shape: tuple[int, ...]) -> None:
    if array is not None and array.shape != shape:
        raise ValueError(
            f"the {name} frame has shape {array.shape} but the trimmed science image has "
            f"{shape}; use a {name} of the same instrument, chip and binning"
        )


def saturated_pixels(trimmed_raw: np.ndarray, saturation: float) -> np.ndarray:
    """Pixels at or above the saturation level in the raw data, grown by one pixel along
    the columns (the edges of a bleed trail are not quite full)."""
    saturated = trimmed_raw >= saturation
    if not saturated.any():
        return saturated
    grown = saturated.copy()
    grown[1:] |= saturated[:-1]
    grown[:-1] |= saturated[1:]
    return grown


def cosmic_rays(
    image: np.ndarray,
    bad: np.ndarray,
    gain: float,
    read_noise: float,
    saturation: float,
    sigma: float = 4.5,
    iterations: int = 4,
) -> np.ndarray:
    """L.A.Cosmic (van Dokkum 2001): astroscrappy's mask, computed only where a cosmic ray
    can be (:mod:`awe.science.cosmics`); True where a cosmic ray hit."""
    from awe.science.cosmics import detect_cosmics

    hits = detect_cosmics(
        image,
        bad,
        sigclip=sigma,
        gain=gain,
        readnoise=read_noise,
        satlevel=saturation,
        niter=iterations,
    )
    # Grow by one pixel: the faint ends of a track escape the detection but still bias
    # photometry and can be detected as sources.
    ys, xs = np.nonzero(hits)
    ny, nx = hits.shape
    grown = hits.copy()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            grown[np.clip(ys + dy, 0, ny - 1), np.clip(xs + dx, 0, nx - 1)] = True
    return grown


def relative_weight(flat: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    """The flat normalised to median 1 (the relative inverse variance of a sky-limited
    pixel), or ones without a flat."""
    if flat is None:
        return np.ones(shape, dtype=np.float32)
    norm = _sampled_median(flat, lambda values: values > 0)
    weight = flat * np.float32(1.0 / norm if norm > 0 else 1.0)
    np.maximum(weight, 0, out=weight)
    return weight.astype(np.float32, copy=False)


def _sampled_median(
    values: np.ndarray,
    usable: np.ndarray | Callable[[np.ndarray], np.ndarray],
    step: int = 4,
) -> float:
    """The median of the usable values on every ``step``-th row and column: a million
    pixels of a 2k x 4k chip pin it down to far below its noise, at 1/16 of the cost.
    ``usable`` is a mask, or a test of the values (then made on the sample only)."""

    def keep(part: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
        return usable(part) if callable(usable) else usable[rows, cols]

    every = slice(None, None, step)
    sample = values[every, every][keep(values[every, every], every, every)]
    if sample.size < 1000:
        sample = values[keep(values, slice(None), slice(None))]
    return float(np.median(sample)) if sample.size else float("nan")
