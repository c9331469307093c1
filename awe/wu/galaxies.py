"""Registering a galaxy for work-unit generation (POGS' register_fits_file).

The FITS file has one image layer per filter, each named by its ``MAGPHYSN`` header card
(a run filter name). ``sigma`` is either a fraction of the flux (POGS' default 0.1) or an
S/N cube laid out the same way. Redshifts follow POGS: one exactly on an x.xx5 boundary
moves down by 1e-4, and z >= 0.125 (beyond the model grid) is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from awe.db.database import Database
from awe.db.pogs import PogsRun
from awe.db.pogs_records import record_registration
from awe.errors import AweError
from awe.science.workunits import fix_redshift, rounded_redshift

DEFAULT_SIGMA = Decimal("0.10")


class GalaxyError(AweError):
    """A galaxy cannot be registered or converted."""


def layer_names(path: Path) -> list[str]:
    """The ``MAGPHYSN`` of every image layer; a layer without one is an error."""
    from astropy.io import fits

    names = []
    with fits.open(path) as hdul:
        for index, hdu in enumerate(hdul):
            if hdu.data is None or getattr(hdu.data, "ndim", 0) != 2:
                continue
            name = hdu.header.get("MAGPHYSN")
            if not name:
                raise GalaxyError(
                    f"{path}: layer {index} has no MAGPHYSN header card naming "
                    f"its filter (e.g. MAGPHYSN = 'SDSSr')"
                )
            names.append(str(name).strip())
    if not names:
        raise GalaxyError(f"{path} holds no 2-D image layers")
    return names


def check_layers(path: Path, names: Sequence[str], run_filters: Sequence[str]) -> None:
    unknown = [n for n in names if n not in run_filters]
    if unknown:
        raise GalaxyError(
            f"{path}: layer(s) {', '.join(unknown)} are not filters of the run "
            f"(its filters: {', '.join(run_filters)})"
        )


@dataclass(frozen=True)
class Registration:
    """A galaxy checked against its run, ready to be recorded."""

    values: dict[str, Any]  # pogs_records.REGISTRATION_KEYS and tags
    path: Path
    sigma_file: Path | None
    run_filters: list[str]


def check_registration(
    database: Database,
    filename: str | Path,
    redshift: str | float,
    name: str,
    galaxy_type: str,
    sigma_or_snr: str | float | None,
    priority: int,
    run_id: int,
    tags: Sequence[str] = (),
) -> Registration:
    """Everything ``register-galaxy`` checks before it records: the files, POGS' redshift
    rules, sigma (a fraction or an S/N cube), the run and the layers' filter names."""
    path = Path(filename).expanduser().resolve()
    if not path.is_file():
        raise GalaxyError(f"no FITS file {path}")
    try:
        z = Decimal(fix_redshift(str(redshift)))
    except InvalidOperation:
        raise GalaxyError(f"redshift {redshift!r} is not a number") from None
    if rounded_redshift(float(z)) is None:
        raise GalaxyError(f"redshift {z} is beyond the model grid (POGS fits z < 0.125)")
    if z < Decimal("0.005"):
        raise GalaxyError(f"redshift {z} is below the model grid's first step (0.01 +- 0.005)")
    sigma, sigma_file = DEFAULT_SIGMA, None
    if sigma_or_snr not in (None, ""):
        try:
            sigma = Decimal(str(sigma_or_snr))
        except InvalidOperation:
            sigma_file = Path(str(sigma_or_snr)).expanduser().resolve()
            if not sigma_file.is_file():
                raise GalaxyError(
                    f"sigma {sigma_or_snr!r} is neither a fraction (e.g. 0.1) nor an S/N FITS file"
                ) from None
            sigma = None
    with database.session() as session:
        run = session.get(PogsRun, run_id)
        if run is None:
            raise GalaxyError(f"no run {run_id}; register it first with `awe wu register-run`")
        run_names = [f.name for f in run.filters]
    check_layers(path, layer_names(path), run_names)
    if sigma_file is not None:
        check_layers(sigma_file, layer_names(sigma_file), run_names)
    values = {
        "galaxy_name": name,
        "redshift": str(z),
        "galaxy_type": galaxy_type,
        "sigma": None if sigma is None else str(sigma),
        "priority": int(priority),
        "run_id": int(run_id),
        "tags": list(tags),
    }
    return Registration(values, path, sigma_file, run_names)


def register_galaxy(database: Database, *args: Any, **kwargs: Any) -> int:
    """Check the file against the run (the arguments of :func:`check_registration`) and
    record the registration; its id."""
    checked = check_registration(database, *args, **kwargs)
    sigma_file = str(checked.sigma_file) if checked.sigma_file else None
    return database.run(
        lambda session: record_registration(session, checked.values, str(checked.path), sigma_file)
    )
