"""Work units in and results out: what FitSED tasks receive, and POGS' validator and
assimilator over the fit files a job committed.

Validation (quorum 2): the two results of a work unit are compared line by line (comment
lines equal, numbers within 1e-4 relative); a mismatch marks the area INVALID, so the next
``dpu.run('FitSED', ...)`` issues it again. Assimilation stores each pixel's medians in
``pogs_pixel_result``, marks the area DONE with the job id, and a galaxy PROCESSED when all
its areas are.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import select

from awe.db.database import Database
from awe.db.models import utcnow
from awe.db.pogs import (
    AreaState,
    GalaxyStatus,
    PogsArea,
    PogsGalaxy,
    PogsPixelResult,
    PogsRegister,
)
from awe.science.sed import compare_fit_texts, parse_fit
from awe.science.workunits import rounded_redshift
from awe.wu.runs import library_paths, run_filters

VALIDATION_RTOL = 1e-4


def workunit_inputs(
    database: Database, run_id: int, galaxy: str | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """Every work unit of the run waiting for a fit, highest galaxy priority first."""
    filters = run_filters(database, run_id)
    query = (
        select(PogsArea, PogsGalaxy)
        .join(PogsGalaxy, PogsArea.galaxy_id == PogsGalaxy.galaxy_id)
        .outerjoin(PogsRegister, PogsGalaxy.register_id == PogsRegister.register_id)
        .where(PogsGalaxy.run_id == run_id, PogsArea.state != AreaState.DONE.value)
        .order_by(PogsGalaxy.priority.desc(), PogsRegister.register_time, PogsArea.area_id)
    )
    if galaxy:
        query = query.where(PogsGalaxy.name == galaxy)
    out = []
    with database.session() as session:
        rows = session.execute(query.limit(limit) if limit else query).all()
        for area, gal in rows:
            pixels = session.scalars(
                select(PogsPixelResult).where(PogsPixelResult.area_id == area.area_id)
            ).all()
            out.append(
                {
                    "name": area.workunit_name,
                    "observations": area.observations,
                    "redshift": str(gal.redshift),
                    "galaxy": gal.name,
                    "rounded": rounded_redshift(float(gal.redshift)),
                    "pixels": {
                        "dimensions": [gal.dimension_x, gal.dimension_y],
                        "xy": {f"pix{p.pxresult_id}": [p.x, p.y] for p in pixels},
                    },
                }
            )
    for wu in out:
        wu["sfh"], wu["ir"] = (str(p) for p in library_paths(database, run_id, wu["rounded"]))
        wu["description"] = {
            "filters": [f.name for f in filters],
            "eff_lambda": [f.eff_lambda for f in filters],
            "redshift": wu["redshift"],
            "pixels": wu["pixels"],
        }
    return out


def assimilate(
    database: Database, job_id: int, results: list[tuple[int, str, Path]], log=print
) -> dict:
    """Validate and store a FitSED job's fit files: (area id, work unit key, path) each, as
    :func:`awe.wu_results.fit_results` reads them."""
    if not results:
        raise ValueError(f"job {job_id} has no finished FitSED task with a fit file")
    by_area: dict[int, list[tuple[str, Path]]] = defaultdict(list)
    for area_id, workunit, path in results:
        by_area[area_id].append((workunit, Path(path)))
    summary = {"assimilated": [], "invalid": {}}
    for area_id, results in by_area.items():
        texts = [p.read_text() for _, p in results]
        quorum = len({w for w, _ in results})
        if quorum >= 2:
            problems = compare_fit_texts(texts[0], texts[1], VALIDATION_RTOL)
            if problems:
                _set_area(database, area_id, AreaState.INVALID, job_id)
                summary["invalid"][area_id] = problems[:5]
                log(f"area {area_id}: results disagree ({problems[0]}); it will be reissued")
                continue
        _store(database, area_id, parse_fit(texts[0]), job_id)
        summary["assimilated"].append(area_id)
    return summary


def _set_area(database: Database, area_id: int, state: AreaState, job_id: int) -> None:
    def write(session) -> None:
        area = session.get(PogsArea, area_id)
        area.state, area.workunit_id, area.update_time = state.value, job_id, utcnow()

    database.run(write)


def _store(database: Database, area_id: int, values: dict, job_id: int) -> None:
    def write(session) -> None:
        area = session.get(PogsArea, area_id)
        for pixel, percentiles in values.items():
            row = session.get(PogsPixelResult, int(pixel.removeprefix("pix")))
            row.workunit_id = job_id
            for column, numbers in percentiles.items():
                setattr(row, column, numbers[2])  # the median, as POGS' assimilator keeps
        area.state, area.workunit_id, area.update_time = AreaState.DONE.value, job_id, utcnow()
        session.flush()
        galaxy = session.get(PogsGalaxy, area.galaxy_id)
        galaxy.pixels_processed = sum(a.pixels for a in galaxy.areas if a.state == "DONE")
        if all(a.state == AreaState.DONE.value for a in galaxy.areas):
            galaxy.status_id = GalaxyStatus.PROCESSED

    database.run(write)
