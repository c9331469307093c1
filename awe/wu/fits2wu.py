"""fits2wu: registered galaxies become areas, pixel rows and observations files.

Galaxies go by priority (highest first), then registration time. ``threshold`` and
``high_water_mark`` decide how many are converted: nothing while at least ``threshold``
results wait to be computed, else galaxies (whole ones, so it may overshoot) until
``threshold - waiting + high_water_mark`` results were added; a work unit is ``quorum``
results. Each area's observations file goes to ``DATA_ROOT/pogs/<galaxy>/``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import func, select

from awe.db.database import Database
from awe.db.pogs import AreaState, PogsArea, PogsRegister, PogsRun
from awe.db.pogs_records import GalaxyPlan, record_galaxy
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
    target = conversion_target(database, settings, register_id)
    if target == 0:
        log(
            f"{waiting_results(database, settings.quorum)} results are waiting (threshold "
            f"{settings.threshold}); nothing to do"
        )
        return []
    jobs = [conversion_job(database, rid) for rid in pending(database, register_id)]
    made = []
    for plan in plans(jobs, settings, target):
        folder = Path(data_root) / "pogs" / plan.meta["name"]
        galaxy_id, areas = database.run(
            lambda session, p=plan, f=folder: record_galaxy(session, p, f)
        )
        rid = plan.meta["register_id"]
        if plan.meta.get("error"):
            log(f"registration {rid}: {plan.meta['error']}")
            continue
        made.append(galaxy_id)
        log(f"registration {rid}: galaxy {galaxy_id}, {areas} work units")
    return made


def conversion_target(database: Database, settings: Settings, register_id: int | None):
    """How many results to add (None: no limit, one registration asked for by id)."""
    if register_id is not None:
        return None
    waiting = waiting_results(database, settings.quorum)
    return workunits.results_to_add(waiting, settings.threshold, settings.high_water_mark)


def conversion_job(database: Database, register_id: int) -> dict:
    """What converting a registration needs to know, JSON-able: the registration, its
    run's filters (eff_lambda order, with their UV/optical/IR flags) and credit."""
    with database.session() as session:
        reg = session.get(PogsRegister, register_id)
        run = session.get(PogsRun, reg.run_id)
        return {
            "register_id": register_id,
            "name": reg.galaxy_name,
            "run_id": reg.run_id,
            "redshift": str(reg.redshift),
            "sigma": None if reg.sigma is None else str(reg.sigma),
            "galaxy_type": reg.galaxy_type,
            "priority": reg.priority,
            "filename": reg.filename,
            "sigma_filename": reg.sigma_filename,
            "filters": [
                {
                    "name": f.name,
                    "optical": bool(f.optical),
                    "ultraviolet": bool(f.ultraviolet),
                    "infrared": bool(f.infrared),
                }
                for f in run.filters
            ],
            "cobblestone_factor": run.cobblestone_factor,
            "fpops_est": run.fpops_est,
        }


def plans(jobs: Sequence[dict], settings: Settings, target: int | None) -> Iterator[GalaxyPlan]:
    """The plans of ``jobs`` in their order (POGS': priority, then registration), whole
    galaxies until ``target`` results were added (None: all); a galaxy that cannot be
    read is a plan with its error, so its registration is marked."""
    added = 0
    for job in jobs:
        if target is not None and added >= target:
            return
        try:
            plan = plan_galaxy(job, settings)
        except GalaxyError as err:
            plan = GalaxyPlan(
                {"register_id": job["register_id"], "name": job["name"], "error": str(err)}
            )
        added += len(plan.counts) * settings.quorum
        yield plan


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


def plan_galaxy(job: dict, settings: Settings) -> GalaxyPlan:
    """A registration's galaxy cut into areas (``job`` from :func:`conversion_job`, its
    file names where this process finds them): accepted pixels, POGS' areas, each
    pixel's fluxes and sigmas (float32 as in the file), credit and FLOP estimates."""
    filters = job["filters"]
    names = [f["name"] for f in filters]
    flux, header = read_cube(job["filename"], names)
    snr = read_cube(job["sigma_filename"], names)[0] if job["sigma_filename"] else None
    sigma_fraction = float(job["sigma"] if job["sigma"] is not None else 0.1)
    sigma = np.stack(
        [
            flux[b] * np.float32(sigma_fraction)
            if snr is None or np.all(np.isnan(snr[b]))
            else flux[b] / snr[b]
            for b in range(len(names))
        ]
    )
    optical = np.array([f["optical"] for f in filters])
    ultraviolet = np.array([f["ultraviolet"] for f in filters])
    infrared = np.array([f["infrared"] for f in filters])
    mask = workunits.accepted(flux, optical, ultraviolet | infrared)
    areas = workunits.cut_areas(mask, settings.row_height, settings.min_pixels_per_file)
    present = ~np.all(np.isnan(flux), axis=(1, 2))
    run_bands = (int(ultraviolet.sum()), int(infrared.sum()), int(optical.sum()))
    file_bands = (
        int((present & ultraviolet).sum()),
        int((present & infrared).sum()),
        int((present & optical).sum()),
    )
    credit_factor, fpops_factor = workunits.credit_scaling(run_bands, file_bands)
    xy = np.array([p for area in areas for p in area.pixels], dtype=np.int64).reshape(-1, 2)
    meta = {
        key: job[key]
        for key in ("register_id", "name", "run_id", "redshift", "sigma", "galaxy_type", "priority")
    }
    meta.update(
        dimension_x=flux.shape[2],
        dimension_y=flux.shape[1],
        dimension_z=len(names),
        ra_cent=_float(header.get("RA_CENT", header.get("CRVAL1"))),
        dec_cent=_float(header.get("DEC_CENT", header.get("CRVAL2"))),
        credit_per_pixel=job["cobblestone_factor"] * credit_factor,
        fpops_per_pixel=job["fpops_est"] * fpops_factor,
    )
    return GalaxyPlan(
        meta,
        boxes=np.array(
            [(a.top_x, a.top_y, a.bottom_x, a.bottom_y) for a in areas], dtype=np.int64
        ).reshape(-1, 4),
        counts=np.array([len(a.pixels) for a in areas], dtype=np.int64),
        xy=xy,
        flux=flux[:, xy[:, 1], xy[:, 0]].T.copy(),
        sigma=sigma[:, xy[:, 1], xy[:, 0]].T.copy(),
    )


def _float(value) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None
