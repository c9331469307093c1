"""Registering a run (POGS' load_run_details): its filters and its model-library files.

``DIR/filters.dat`` lists ``name lambda_eff filter_id fit?`` (a ``#`` line first); every
``filter_id`` must be a known MAGPHYS filter number, else nothing is written. The library
files in ``DIR`` (``starformhist_bc03_z*.npz``, ``infrared_dl07_z*.npz``) are recorded with
md5 and size, paired by redshift, as create_file_details did.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select

from awe.db.database import Database
from awe.db.pogs import PogsFilter, PogsRun, PogsRunFile
from awe.errors import AweError
from awe.wu.library import file_details

LIBRARY_FILE = re.compile(r"^(starformhist_bc03|infrared_dl07)_z(\d+\.\d{4})\.npz$")


class RunError(AweError):
    """A run cannot be registered or used."""


def read_filters_dat(path: Path) -> list[tuple[str, float, int, bool]]:
    if not path.is_file():
        raise RunError(
            f"{path} is missing: a run folder needs filters.dat "
            f"(lines 'name lambda_eff filter_id fit?')"
        )
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split()
        try:
            rows.append((fields[0], float(fields[1]), int(fields[2]), fields[3] == "1"))
        except (IndexError, ValueError):
            raise RunError(
                f"{path}, line {number}: {line!r} is not 'name lambda_eff filter_id fit?'"
            ) from None
    return rows


def library_files(folder: Path) -> list[tuple[Path, str, Decimal]]:
    """(path, 'sfh' or 'ir', redshift) of the library files, checked to pair up."""
    found = []
    for path in sorted(folder.glob("*.npz")):
        match = LIBRARY_FILE.match(path.name)
        if match:
            kind = "sfh" if match.group(1).startswith("starformhist") else "ir"
            found.append((path, kind, Decimal(match.group(2))))
    sfh = {z for _, k, z in found if k == "sfh"}
    ir = {z for _, k, z in found if k == "ir"}
    if sfh != ir:
        raise RunError(
            f"{folder}: library files do not pair up by redshift: SFH at "
            f"{sorted(map(str, sfh - ir))} and IR at {sorted(map(str, ir - sfh))} "
            f"have no partner"
        )
    return found


def register_run(
    database: Database,
    run_id: int,
    folder: str | Path,
    description: str,
    fpops_est: float,
    cobblestone: float,
) -> PogsRun:
    """Insert the run, its filters and its library files in one transaction."""
    folder = Path(folder).expanduser().resolve()
    rows = read_filters_dat(folder / "filters.dat")
    files = library_files(folder)
    details = [(p, k, z, *file_details(p)) for p, k, z in files]

    def write(session) -> PogsRun:
        if session.get(PogsRun, run_id) is not None:
            raise RunError(f"run {run_id} exists already; choose a new run id")
        run = PogsRun(
            run_id=run_id,
            short_description=description[:255],
            long_description=description,
            directory=str(folder),
            fpops_est=fpops_est,
            cobblestone_factor=cobblestone,
        )
        for name, _, number, _ in rows:
            found = session.scalar(select(PogsFilter).where(PogsFilter.filter_number == number))
            if found is None:
                raise RunError(
                    f"filters.dat names filter_id {number} ({name}), which is no "
                    f"known filter number; nothing was registered"
                )
            run.filters.append(found)
        for path, kind, z, md5, size in details:
            run.files.append(
                PogsRunFile(name=path.name, file_type=kind, redshift=z, md5=md5, size=size)
            )
        session.add(run)
        session.flush()
        return run

    return database.run(write)


def run_filters(database: Database, run_id: int) -> list[PogsFilter]:
    """The run's filters in eff_lambda order (the order of every flux list)."""
    with database.session() as session:
        run = session.get(PogsRun, run_id)
        if run is None:
            raise RunError(f"no run {run_id}; register it with `awe wu register-run`")
        return list(run.filters)


def library_paths(database: Database, run_id: int, rounded: str) -> tuple[Path, Path]:
    """The SFH and IR library files of the run at one grid redshift."""
    with database.session() as session:
        run = session.get(PogsRun, run_id)
        names = {f.file_type: f.name for f in run.files if f.redshift == Decimal(rounded)}
        folder = Path(run.directory)
    if set(names) != {"sfh", "ir"}:
        raise RunError(
            f"run {run_id} has no model library at z = {rounded}; build one with "
            f"`awe wu build-library`"
        )
    return folder / names["sfh"], folder / names["ir"]
