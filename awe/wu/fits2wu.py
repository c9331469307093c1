"""fits2wu: registered galaxies become areas, pixel rows and observations files.

Galaxies go by priority (highest first), then registration time. ``threshold`` and
``high_water_mark`` decide how many are converted: nothing while at least ``threshold``
results wait to be computed, else galaxies (whole ones, so it may overshoot) until
``threshold - waiting + high_water_mark`` results were added; a work unit is ``quorum``
results. Each area's observations file goes to ``DATA_ROOT/pogs/<galaxy>/``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import func, select

from awe.db.database import Database
from awe.db.models import utcnow
from awe.db.pogs import (
    AreaState,
    PogsArea,
    PogsGalaxy,
    PogsPixelResult,
    PogsRegister,
    PogsRun,
)
from awe.science import workunits
from awe.wu.galaxies import GalaxyError, layer_names


@dataclass(frozen=True)
class Settings:
    """POGS' work-generation settings (its pogs.settings values as defaults)."""

    min_pixels_per_file: tuple[int, ...] = (15,)
    row_height: int = 7
    threshold: int = 1000
    high_water_mark: int = 400
    quorum: int = 1


def waiting_results(database: Database, quorum: int) -> int:
    with database.session() as session:
        areas = session.scalar(
            select(func.count()).select_from(PogsArea).where(PogsArea.state != AreaState.DONE.value)
        )
    return int(areas) * quorum


def pending(database: Database, register_id: int | None = None) -> list[int]:
    """Registrations not converted yet, in POGS' order (priority desc, registration time)."""
    query = select(PogsRegister.register_id).where(PogsRegister.create_time.is_(None))
    if register_id is not None:
        query = query.where(PogsRegister.register_id == register_id)
    query = query.order_by(
        PogsRegister.priority.desc(), PogsRegister.register_time, PogsRegister.register_id
    )
    with database.session() as session:
        return list(session.scalars(query))


def fits2wu(
    database: Database,
    data_root: str | Path,
    settings: Settings = Settings(),
    register_id: int | None = None,
    log=print,
) -> list[int]:
    """Convert registrations into work units; the galaxy ids made."""
    target = (
        None
        if register_id is not None
        else workunits.results_to_add(
            waiting_results(database, settings.quorum), settings.threshold, settings.high_water_mark
        )
    )
    if target == 0:
        log(
            f"{waiting_results(database, settings.quorum)} results are waiting (threshold "
            f"{settings.threshold}); nothing to do"
        )
        return []
    made, added = [], 0
    for rid in pending(database, register_id):
        if target is not None and added >= target:
            break
        try:
            galaxy_id, areas = convert(database, Path(data_root), rid, settings)
        except GalaxyError as err:
            _mark(database, rid, str(err))
            log(f"registration {rid}: {err}")
            continue
        made.append(galaxy_id)
        added += areas * settings.quorum
        log(f"registration {rid}: galaxy {galaxy_id}, {areas} work units")
    return made


def _mark(database: Database, register_id: int, error: str | None) -> None:
    def write(session) -> None:
        row = session.get(PogsRegister, register_id)
        row.create_time, row.error = utcnow(), error

    database.run(write)


def read_cube(path: str | Path, names: Sequence[str]) -> tuple[np.ndarray, dict]:
    """[band, y, x] float32 in the order of ``names`` (NaN where the file lacks a band)."""
    from astropy.io import fits

    layers = layer_names(Path(path))
    with fits.open(path) as hdul:
        images = [h.data for h in hdul if h.data is not None and h.data.ndim == 2]
        header = dict(hdul[0].header)
        shape = images[0].shape
        cube = np.full((len(names), *shape), np.nan, dtype=np.float32)
        for index, name in enumerate(names):
            if name in layers:
                cube[index] = images[layers.index(name)]
    return cube, header


def convert(database: Database, data_root: Path, register_id: int, settings: Settings):
    """One registration into a galaxy, its areas and pixels; (galaxy id, work units)."""
    with database.session() as session:
        reg = session.get(PogsRegister, register_id)
        run = session.get(PogsRun, reg.run_id)
        filters = list(run.filters)
        reg_values = {
            c: getattr(reg, c)
            for c in (
                "galaxy_name",
                "redshift",
                "galaxy_type",
                "sigma",
                "filename",
                "sigma_filename",
                "priority",
                "run_id",
            )
        }
    names = [f.name for f in filters]
    flux, header = read_cube(reg_values["filename"], names)
    snr = (
        read_cube(reg_values["sigma_filename"], names)[0] if reg_values["sigma_filename"] else None
    )
    sigma_fraction = float(reg_values["sigma"] if reg_values["sigma"] is not None else 0.1)
    sigma = np.stack(
        [
            flux[b] * np.float32(sigma_fraction)
            if snr is None or np.all(np.isnan(snr[b]))
            else flux[b] / snr[b]
            for b in range(len(names))
        ]
    )
    optical = np.array([f.optical for f in filters])
    other = np.array([f.ultraviolet or f.infrared for f in filters])
    mask = workunits.accepted(flux, optical, other)
    areas = workunits.cut_areas(mask, settings.row_height, settings.min_pixels_per_file)
    present = ~np.all(np.isnan(flux), axis=(1, 2))
    run_bands = (
        int(sum(f.ultraviolet for f in filters)),
        int(sum(f.infrared for f in filters)),
        int(optical.sum()),
    )
    file_bands = (
        int((present & np.array([f.ultraviolet for f in filters])).sum()),
        int((present & np.array([f.infrared for f in filters])).sum()),
        int((present & optical).sum()),
    )
    credit_factor, fpops_factor = workunits.credit_scaling(run_bands, file_bands)
    credit_per_pixel = run.cobblestone_factor * credit_factor
    fpops_per_pixel = run.fpops_est * fpops_factor
    folder = data_root / "pogs" / reg_values["galaxy_name"]
    folder.mkdir(parents=True, exist_ok=True)
    redshift = str(reg_values["redshift"])

    def write(session) -> tuple[int, int]:
        galaxy = PogsGalaxy(
            run_id=reg_values["run_id"],
            register_id=register_id,
            name=reg_values["galaxy_name"],
            dimension_x=flux.shape[2],
            dimension_y=flux.shape[1],
            dimension_z=len(names),
            redshift=reg_values["redshift"],
            sigma=reg_values["sigma"],
            galaxy_type=reg_values["galaxy_type"],
            priority=reg_values["priority"],
            ra_cent=_float(header.get("RA_CENT", header.get("CRVAL1"))),
            dec_cent=_float(header.get("DEC_CENT", header.get("CRVAL2"))),
            credit_per_pixel=credit_per_pixel,
            fpops_per_pixel=fpops_per_pixel,
        )
        session.add(galaxy)
        session.flush()
        for area in areas:
            row = PogsArea(
                galaxy_id=galaxy.galaxy_id,
                top_x=area.top_x,
                top_y=area.top_y,
                bottom_x=area.bottom_x,
                bottom_y=area.bottom_y,
                workunit_name="",
                observations="",
                pixels=len(area.pixels),
                credit=0.0,
                fpops_est=0.0,
                fpops_bound=0.0,
            )
            session.add(row)
            session.flush()
            pixels = [
                PogsPixelResult(area_id=row.area_id, galaxy_id=galaxy.galaxy_id, x=x, y=y)
                for x, y in area.pixels
            ]
            session.add_all(pixels)
            session.flush()
            name = f"{galaxy.name}_area{row.area_id}"
            estimate, bound, credit = workunits.workunit_cost(
                len(pixels), fpops_per_pixel, credit_per_pixel
            )
            text = workunits.observations_text(
                {
                    "galaxy": galaxy.name,
                    "run_id": galaxy.run_id,
                    "galaxy_id": galaxy.galaxy_id,
                    "area_id": row.area_id,
                    "pixels": len(pixels),
                    "top_x": area.top_x,
                    "top_y": area.top_y,
                    "bottom_x": area.bottom_x,
                    "bottom_y": area.bottom_y,
                },
                [p.pxresult_id for p in pixels],
                redshift,
                [
                    [(flux[b, y, x], sigma[b, y, x]) for b in range(len(names))]
                    for x, y in area.pixels
                ],
            )
            path = folder / f"{name}.obs"
            path.write_text(text)
            row.workunit_name, row.observations = name, str(path)
            row.credit, row.fpops_est, row.fpops_bound = credit, estimate, bound
        galaxy.pixel_count = sum(len(a.pixels) for a in areas)
        reg = session.get(PogsRegister, register_id)
        reg.create_time = utcnow()
        return galaxy.galaxy_id, len(areas)

    return database.run(write)


def _float(value) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None
