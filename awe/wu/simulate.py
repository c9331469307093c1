"""A simulated galaxy made of known library models, for tests and the demo.

Every pixel of an exponential disc holds one energy-balanced pair of the run's library at
the galaxy's redshift, scaled to a stellar mass that falls off with radius; fluxes get
Gaussian noise of ``noise`` x flux, and the file is written as POGS expects (one layer per
filter named by MAGPHYSN). The truth (pair, mass, SFR, Ldust per pixel) goes beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from awe.science.sed import allowed_pairs
from awe.wu.library import Library


def simulate_galaxy(
    library: Library,
    path: Path,
    shape: tuple[int, int] = (12, 16),
    log_mass_centre: float = 8.5,
    scale_length: float = 4.0,
    noise: float = 0.1,
    seed: int = 0,
    filters: Sequence[str] | None = None,
) -> Path:
    """Write the FITS cube to ``path`` and the truth to ``path`` with ``.truth.npz``."""
    from astropy.io import fits

    rng = np.random.default_rng(seed)
    i_sfh, i_ir = allowed_pairs(library.sfh["fmu_sfh"], library.ir["fmu_ir"])
    ny, nx = shape
    y, x = np.mgrid[0:ny, 0:nx]
    radius = np.hypot(x - (nx - 1) / 2, (y - (ny - 1) / 2) * 1.5)
    mass = 10 ** (log_mass_centre - radius / scale_length / np.log(10))
    pick = rng.integers(0, i_sfh.size, size=shape)
    s, r = i_sfh[pick], i_ir[pick]
    ldust = library.sfh["ldust"][s]
    model = (library.sfh_flux[s] + ldust[..., None] * library.ir_flux[r]) * mass[..., None]
    observed = model * (1 + noise * rng.standard_normal(model.shape))
    observed = np.where(observed > 0, observed, np.nan).astype(np.float32)
    names = list(filters or library.filters)
    hdul = fits.HDUList([fits.PrimaryHDU()])
    hdul[0].header["POGSZ"] = library.redshift
    for name in names:
        layer = fits.ImageHDU(observed[..., library.filters.index(name)])
        layer.header["MAGPHYSN"] = name
        hdul.append(layer)
    path.parent.mkdir(parents=True, exist_ok=True)
    hdul.writeto(path, overwrite=True)
    np.savez(
        path.with_suffix(".truth.npz"),
        m=mass,
        sfr=mass * library.sfh["sfr"][s],
        ldust=mass * ldust,
        i_sfh=s,
        i_ir=r,
    )
    return path
