"""DES-style detrending of one raw DECam CCD, as pure functions over arrays.

The order is the DES single-epoch one: overscan (:mod:`awe.science.overscan`, the per-row
median, method 5) and crosstalk (``DECam_crosstalk``), then
bias, bad-pixel mask, linearity, gain and flat with a weight plane (``pixcorrect_im``),
then the bleed-trail (``mkbleedmask``) and cosmic-ray (``immask``) masks and the
compressed sky (``sky_compress``). Images are float32 over the CCD's data section; masks
carry the DES bit values below, so a catalogue's FLAGS and a mask read the same way.

Nothing here imports the rest of AWE.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from awe.science.flat import apply_flat
from awe.science.gain import linearize
from awe.science.overscan import Region

# DES mask bits (the BADPIX_* values of the DESDM pipeline).
BADPIX_BPM = 1
BADPIX_SATURATE = 2
BADPIX_INTERP = 4
BADPIX_CRAY = 16
BADPIX_TRAIL = 64
BADPIX_EDGEBLEED = 128
BADPIX_EDGE = 512


@dataclass(frozen=True)
class AmpLayout:
    """One amplifier: its data and overscan columns and rows in the raw image (0-based
    slices), where its data lands in the trimmed image, and on which side it reads out."""

    name: str
    data: tuple[slice, slice]
    overscan: tuple[slice, slice]
    trimmed_columns: slice
    reads_left: bool  # its overscan lies left of its data

    def region(self) -> Region:
        """The amplifier as an :class:`awe.science.overscan.Region` (for the overscan)."""
        return Region(data=self.data, overscan=self.overscan)


def crosstalk_correct(
    image: np.ndarray, amps: Sequence[AmpLayout], matrix: Mapping[str, Mapping[str, float]]
) -> np.ndarray:
    """Remove crosstalk: ``matrix[victim][source]`` is the fraction of the source
    amplifier's signal that appears in the victim, mirrored about the CCD centre (the two
    amplifiers read out from opposite sides). Works on the overscan-corrected image."""
    by_name = {a.name: a for a in amps}
    out = image.copy()
    for victim, sources in matrix.items():
        for source, coefficient in sources.items():
            if coefficient:
                mirrored = image[:, by_name[source].trimmed_columns][:, ::-1]
                out[:, by_name[victim].trimmed_columns] -= np.float32(coefficient) * mirrored
    return out


def detrend(
    image: np.ndarray,
    *,
    bias: np.ndarray,
    flat: np.ndarray,
    bpm: np.ndarray,
    gain: np.ndarray,
    linearity: float = 0.0,
    saturation: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """``pixcorrect``: the image in electrons, flat-fielded, and its mask.

    ``gain`` and ``saturation`` are per pixel (from each pixel's amplifier), saturation in
    ADU above the overscan. Bad pixels of the BPM and saturated pixels are flagged; their
    values stay (the weight plane ignores them)."""
    mask = np.where(bpm, BADPIX_BPM, 0).astype(np.int32)
    mask[image >= saturation] |= BADPIX_SATURATE
    corrected = linearize(image - bias, linearity)
    science = (corrected * gain).astype(np.float32, copy=False)
    mask[apply_flat(science, flat, minimum=0.05)] |= BADPIX_BPM
    return science, mask


def weight_plane(
    science: np.ndarray, sky: float, read_noise_e: np.ndarray, flat: np.ndarray, mask: np.ndarray
) -> np.ndarray:
    """Inverse variance per pixel (electrons^-2) of the sky-dominated image: Poisson sky and
    read noise through the flat; 0 on masked pixels. Sources' own noise is left out, as
    DES's weight plane does, so bright stars do not down-weight themselves."""
    variance = (max(sky, 0.0) * flat + read_noise_e**2) / np.clip(flat, 0.05, None) ** 2
    weight = (1.0 / variance).astype(np.float32)
    weight[mask != 0] = 0
    return weight


def bleed_mask(mask: np.ndarray, grow_rows: int = 2, grow_columns: int = 1) -> np.ndarray:
    """``mkbleedmask``: saturated pixels and the column trails they bleed along, grown a
    little; trails that reach the CCD's top or bottom edge are EDGEBLEED too."""
    saturated = (mask & BADPIX_SATURATE) != 0
    trail = saturated.copy()
    for shift in range(1, grow_rows + 1):
        trail[shift:] |= saturated[:-shift]
        trail[:-shift] |= saturated[shift:]
    for shift in range(1, grow_columns + 1):
        trail[:, shift:] |= saturated[:, :-shift]
        trail[:, :-shift] |= saturated[:, shift:]
    out = mask.copy()
    out[trail & ~saturated] |= BADPIX_TRAIL
    for edge in (0, -1):
        columns = np.flatnonzero(saturated[edge])
        if columns.size:
            out[:, columns] |= np.where(trail[:, columns], BADPIX_EDGEBLEED, 0).astype(np.int32)
    return out


def cosmic_ray_mask(
    science: np.ndarray, mask: np.ndarray, noise: float, threshold: float = 8.0, sharpness=2.0
) -> np.ndarray:
    """``immask`` cosmic rays: pixels far above their neighbourhood and sharper than any
    star could be (a star's peak is at most ~``sharpness`` times its 4 neighbours' mean
    above the local sky for seeing > 2 pixels FWHM); they and their 8 neighbours are
    flagged CRAY."""
    padded = np.pad(science, 1, mode="edge")
    neighbours = (padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:]) / 4
    local = np.median(
        np.stack([padded[:-2, :-2], padded[:-2, 2:], padded[2:, :-2], padded[2:, 2:]]), axis=0
    )
    excess = science - local
    hit = (excess > threshold * noise) & (excess > sharpness * (neighbours - local) + 3 * noise)
    hit &= (mask & BADPIX_SATURATE) == 0
    grown = hit.copy()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            grown |= np.roll(np.roll(hit, dy, axis=0), dx, axis=1)
    out = mask.copy()
    out[grown] |= BADPIX_CRAY
    return out


def sky_compress(science: np.ndarray, mask: np.ndarray, block: int = 128) -> np.ndarray:
    """``sky_compress``: the median of the unmasked pixels of each ``block``-square (NaN
    where a block is all masked). Partial blocks at the edges are dropped."""
    ny, nx = (s // block for s in science.shape)
    if ny == 0 or nx == 0:
        raise ValueError(f"a {science.shape} image holds no {block}-pixel block")
    cut = np.where(
        mask[: ny * block, : nx * block] == 0, science[: ny * block, : nx * block], np.nan
    )
    blocks = cut.reshape(ny, block, nx, block).transpose(0, 2, 1, 3).reshape(ny, nx, -1)
    return np.nanmedian(blocks, axis=2)
