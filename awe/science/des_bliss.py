"""BLISS zeropoints of a DES exposure (``BLISS-expCalib_Y3apass.py``), as pure functions.

Detections are cut (FLUX_PSF > 1000, FLAGS <= 3, star-like), matched within 1" to the
reference stars (nearest), and per CCD the zeropoint is the 3-sigma, 3-iteration clipped
mean of delta = m_inst - m_ref - 25 kept in (-40, -10), m_inst = -2.5 log10 FLUX_PSF + 25.
Its error is std/sqrt(N); fewer than 3 stars gives -999. The exposure's rules then apply:
a CCD with fewer than 4 clipped stars or rms > 0.3 takes the all-CCD value; a CCD 0.15 or
more from the median is flagged -1000; if 20 % or more are flagged, all become -9999.
As in BLISS the stored ZP has the sign of delta: calibrated mag = -2.5 log10 flux - ZP.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

NO_STARS = -999.0
OUTLIER = -1000.0
BAD_EXPOSURE = -9999.0
MAG_ZEROPOINT = 25.0


@dataclass
class Zeropoint:
    """One CCD's (or the whole exposure's) zeropoint."""

    zp: float
    error: float
    rms: float
    stars: int  # matched stars in (-40, -10)
    clipped: int  # stars left after clipping
    flag: int = 0  # 0 good; 1 replaced by the all-CCD value; -1000 / -9999 as above

    def as_row(self) -> dict[str, float]:
        return asdict(self)


def select_stars(
    flux_psf: np.ndarray, flags: np.ndarray, class_star: np.ndarray, spread_model: np.ndarray
) -> np.ndarray:
    """The BLISS cuts: FLUX_PSF > 1000, FLAGS <= 3, CLASS_STAR > 0.8, SPREAD_MODEL < 0.01."""
    return (flux_psf > 1000) & (flags <= 3) & (class_star > 0.8) & (spread_model < 0.01)


def deltas(flux_psf: np.ndarray, ref_mag: np.ndarray) -> np.ndarray:
    """delta = m_inst - m_ref - 25, kept in (-40, -10)."""
    delta = -2.5 * np.log10(flux_psf) + MAG_ZEROPOINT - ref_mag - MAG_ZEROPOINT
    return delta[(delta > -40) & (delta < -10)]


def clipped_zeropoint(delta: np.ndarray, sigma: float = 3.0, iterations: int = 3) -> Zeropoint:
    """The clipped mean of ``delta`` (centred on the mean), its error std/sqrt(N)."""
    delta = np.asarray(delta, float)
    if delta.size < 3:
        return Zeropoint(NO_STARS, NO_STARS, NO_STARS, int(delta.size), int(delta.size))
    kept = delta
    for _ in range(iterations):
        mean, std = kept.mean(), kept.std()
        new = kept[np.abs(kept - mean) <= sigma * std] if std > 0 else kept
        if new.size == kept.size or new.size < 3:
            kept = new if new.size >= 3 else kept
            break
        kept = new
    std = float(kept.std())
    return Zeropoint(
        float(kept.mean()), std / float(np.sqrt(kept.size)), std, int(delta.size), int(kept.size)
    )


def exposure_zeropoints(per_ccd: dict[int, Zeropoint], all_ccds: Zeropoint) -> dict[int, Zeropoint]:
    """Apply the exposure's outlier rules to every CCD's zeropoint."""
    out: dict[int, Zeropoint] = {}
    for ccd, zp in per_ccd.items():
        if zp.zp != NO_STARS and (zp.clipped < 4 or zp.rms > 0.3):
            zp = Zeropoint(all_ccds.zp, all_ccds.error, all_ccds.rms, zp.stars, zp.clipped, 1)
        out[ccd] = zp
    good = [z.zp for z in out.values() if z.zp > NO_STARS]
    if not good:
        return out
    median = float(np.median(good))
    flagged = 0
    for ccd, zp in out.items():
        if zp.zp > NO_STARS and abs(zp.zp - median) >= 0.15:
            out[ccd] = Zeropoint(OUTLIER, zp.error, zp.rms, zp.stars, zp.clipped, int(OUTLIER))
        if out[ccd].zp == OUTLIER:
            flagged += 1
    if flagged >= 0.2 * len(out):
        out = {
            ccd: Zeropoint(BAD_EXPOSURE, z.error, z.rms, z.stars, z.clipped, int(BAD_EXPOSURE))
            for ccd, z in out.items()
        }
    return out
