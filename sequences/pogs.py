"""POGS work units on the DPU: RegisterGalaxy checks a galaxy's cube against its run and
registers it, Fits2WU cuts registered galaxies into work units (both recorded when their
products are committed, ``C=1``); FitSED fits one work unit per task; PogsMaps turns the
fit files into parameter maps (FITS, one plane per parameter and statistic, and PNG
previews).

``dpu.run('RegisterGalaxy', f='POGS_NGC1.fits', z='0.03', g='NGC1', r=1, C=1)`` and
``dpu.run('Fits2WU', C=1)`` do what ``awe wu register-galaxy`` and ``awe wu fits2wu`` do,
the file work in a task on the DPU and the rows at commit.

``dpu.run('FitSED>PogsMaps', r=1, C=1)`` fits every work unit of run 1 not fitted yet,
highest galaxy priority first (tasks are queued in that order, so the local pool and Slurm
start them in that order); ``q=2`` runs each unit twice for validation. Then
``awe wu assimilate JOBID`` (or :func:`awe.wu.assimilate.assimilate`) validates, stores the
medians in ``pogs_pixel_result`` and updates area and galaxy states.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from awe.sequence import NoInputs, Option, SelectionContext, TaskContext, Unit, file_input, sequence

OPTIONS = [
    Option("r", "run", int, required=True, help="POGS run id"),
    Option("g", "galaxy", str, help="one galaxy by name (default: every pending one)"),
    Option(
        "q", "quorum", int, 1, help="results per work unit: 2 validates them against each other"
    ),
    Option("n", "limit", int, 0, help="at most this many work units (0: all)"),
]
#: Pairs per tile and pixels per block of the fit (memory: 16 bytes x their product x 2).
PARAMETERS = {
    "FitSED.process_params.CHUNK_PAIRS": 2048,
    "FitSED.process_params.BLOCK_PIXELS": 64,
}


def select_workunits(options: Mapping[str, Any], context: SelectionContext) -> list[Unit]:
    """Work units not fitted yet, by galaxy priority, then registration, then area."""
    from awe.wu.assimilate import workunit_inputs

    units = []
    for wu in workunit_inputs(
        context.database, options["run"], options.get("galaxy"), options.get("limit") or None
    ):
        inputs = (
            file_input(wu["observations"]),
            file_input(wu["sfh"]),
            file_input(wu["ir"]),
            wu["description"],
        )
        for copy in range(1, max(1, options.get("quorum") or 1) + 1):
            key = wu["name"] if options.get("quorum", 1) <= 1 else f"{wu['name']}#{copy}"
            units.append(Unit(key=key, inputs=inputs))
    if not units:
        raise NoInputs(
            f"no work unit of run {options['run']} waits to be fitted "
            f"(make some with `awe wu fits2wu`)"
        )
    return units


@sequence(
    options=OPTIONS,
    parameters=PARAMETERS,
    fan_out="workunit",
    select=select_workunits,
    estimate=5.0,
)
def FitSED(task: TaskContext) -> None:
    """MAGPHYS fit of every pixel of one work unit, vectorised over pixels and models."""
    import numpy as np

    from awe.science import sed, workunits
    from awe.wu.library import load_library

    observations, sfh, ir, description = task.unit.inputs
    with open(observations["path"]) as handle:
        header, names, flux, sigma = workunits.parse_observations(handle.read())
    library = load_library(sfh["path"], ir["path"])
    if list(library.filters) != description["filters"]:
        raise ValueError(
            f"the library's filters {library.filters} are not the run's {description['filters']}"
        )
    z = float(description["redshift"])
    models = sed.Models(library.sfh_flux, library.sfh, library.ir_flux, library.ir)
    optical = sed.optical_mask(description["eff_lambda"], z)
    task.log.info(
        "Fitting %d pixels of %s against %d SFH x %d IR models",
        len(names),
        task.unit.key,
        len(library.sfh_flux),
        len(library.ir_flux),
    )
    fits = sed.fit_pixels(
        flux,
        sigma,
        optical,
        models,
        chunk=int(task.parameters["FitSED.process_params.CHUNK_PAIRS"]),
        block=int(task.parameters["FitSED.process_params.BLOCK_PIXELS"]),
    )
    blocks = [
        sed.format_fit(n, library.filters, f, s, fit, z)
        for n, f, s, fit in zip(names, flux, sigma, fits, strict=True)
    ]
    path = task.work_dir / f"{task.unit.key.replace('#', '_')}.fit"
    path.write_text("".join(blocks))
    task.log.info("Best chi2 per pixel: median %.2f", float(np.median([f.best_chi2 for f in fits])))
    task.add_product(
        path,
        "SEDFitFile",
        instrument="POGS",
        object=header["galaxy"],
        results={
            "workunit": task.unit.key,
            "area_id": header["area_id"],
            "galaxy_id": header["galaxy_id"],
            "pixels": description["pixels"],
        },
    )


@sequence(fan_out="global", estimate=5.0)
def PogsMaps(task: TaskContext) -> None:
    """FITS maps of the fitted parameters (planes: parameter x statistic) and PNG previews."""
    from awe.wu.maps import write_maps

    fits = [p for p in task.upstream if p.kind == "SEDFitFile"]
    for galaxy, products in write_maps(fits, task.work_dir).items():
        for path, kind in products:
            task.add_product(path, kind, instrument="POGS", object=galaxy)
            task.log.info("Wrote %s", path.name)


REGISTER_OPTIONS = [
    Option("f", "file", str, required=True, help="FITS cube: a layer per filter, named MAGPHYSN"),
    Option("z", "redshift", str, required=True, help="redshift (below 0.125)"),
    Option("g", "galaxy", str, required=True, help="galaxy name"),
    Option("t", "type", str, "", help="Hubble type"),
    Option("s", "sigma", str, "0.1", help="sigma: a fraction of the flux, or an S/N cube"),
    Option("y", "priority", int, 0, help="fits2wu converts higher priorities first"),
    Option("r", "run", int, required=True, help="POGS run id"),
    Option("T", "tags", str, "", help="tags, comma-separated"),
]


def select_registration(options: Mapping[str, Any], context: SelectionContext) -> list[Unit]:
    """The galaxy checked against its run (files, redshift, sigma, filter names) before
    anything is submitted; its cube (and S/N cube) travel to the DPU."""
    from awe.wu.galaxies import check_registration

    tags = [t.strip() for t in (options.get("tags") or "").split(",") if t.strip()]
    checked = check_registration(
        context.database,
        options["file"],
        options["redshift"],
        options["galaxy"],
        options.get("type") or "",
        options.get("sigma"),
        options.get("priority") or 0,
        options["run"],
        tags,
    )
    files = [file_input(checked.path)]
    if checked.sigma_file is not None:
        files.append(file_input(checked.sigma_file))
    description = {"values": checked.values, "run_filters": checked.run_filters}
    return [Unit(key=checked.values["galaxy_name"], inputs=(description, *files))]


@sequence(options=REGISTER_OPTIONS, select=select_registration, estimate=2.0)
def RegisterGalaxy(task: TaskContext) -> None:
    """Register a galaxy's FITS cube for fits2wu (recorded when committed, C=1)."""
    from awe.wu.galaxies import check_layers, layer_names

    description, *files = task.unit.inputs
    values = dict(description["values"])
    copies = []
    for ref in files:  # the DPU's copies: checked again, then products
        path = Path(ref["path"])
        check_layers(path, layer_names(path), description["run_filters"])
        copies.append(shutil.copyfile(path, task.work_dir / (ref.get("name") or path.name)))
    values["snr_sha256"] = files[1]["sha256"] if len(files) > 1 else None
    if len(copies) > 1:
        task.add_product(
            copies[1], "GalaxySNRCube", instrument="POGS", object=values["galaxy_name"]
        )
    task.add_product(
        copies[0], "GalaxyCube", instrument="POGS", object=values["galaxy_name"], results=values
    )
    task.log.info(
        "Checked %s against run %s; the registration is recorded when committed (C=1)",
        values["galaxy_name"],
        values["run_id"],
    )


FITS2WU_OPTIONS = [
    Option("i", "register", int, help="one registration by id (default: all pending)"),
    Option("t", "threshold", int, 1000, help="nothing while this many results wait"),
    Option("w", "high_water_mark", int, 400, help="results to add beyond the threshold"),
    Option("q", "quorum", int, 1, help="results per work unit"),
    Option("h", "row_height", int, 7, help="rows of an area band"),
    Option("m", "min_pixels", str, "15", help="pixels per area, comma-separated, cycled"),
]


def _settings(options: Mapping[str, Any]):
    from awe.wu.fits2wu import Settings

    try:
        minimum = tuple(int(v) for v in str(options.get("min_pixels") or "15").split(","))
    except ValueError:
        raise ValueError(
            f"min_pixels={options.get('min_pixels')!r}: give whole numbers, e.g. '15' or '15,21'"
        ) from None
    return Settings(
        minimum,
        int(options.get("row_height") or 7),
        int(options.get("threshold") if options.get("threshold") is not None else 1000),
        int(options.get("high_water_mark") if options.get("high_water_mark") is not None else 400),
        int(options.get("quorum") or 1),
    )


def select_registrations(options: Mapping[str, Any], context: SelectionContext) -> list[Unit]:
    """The pending registrations in POGS' order and how many results to add, as one task."""
    from dataclasses import asdict

    from awe.wu.fits2wu import conversion_job, conversion_target, pending, waiting_results

    settings = _settings(options)
    target = conversion_target(context.database, settings, options.get("register"))
    if target == 0:
        waiting = waiting_results(context.database, settings.quorum)
        raise NoInputs(
            f"{waiting} results are waiting (threshold {settings.threshold}): nothing to convert"
        )
    jobs, files = [], []
    for rid in pending(context.database, options.get("register")):
        job = conversion_job(context.database, rid)
        files.append(file_input(job.pop("filename")))
        job["file"] = len(files) - 1
        snr = job.pop("sigma_filename")
        if snr:
            files.append(file_input(snr))
        job["snr"] = len(files) - 1 if snr else None
        jobs.append(job)
    if not jobs:
        raise NoInputs(
            "no registration waits for fits2wu (register a galaxy with RegisterGalaxy, C=1)"
        )
    header = {"settings": asdict(settings), "target": target, "jobs": jobs}
    return [Unit(inputs=(header, *files))]


@sequence(options=FITS2WU_OPTIONS, select=select_registrations, estimate=10.0)
def Fits2WU(task: TaskContext) -> None:
    """Cut registered galaxies into work units (recorded when committed, C=1)."""
    from awe.wu.fits2wu import Settings, plans

    header, *files = task.unit.inputs
    settings = Settings(
        **{
            **header["settings"],
            "min_pixels_per_file": tuple(header["settings"]["min_pixels_per_file"]),
        }
    )
    jobs = [
        {
            **job,
            "filename": files[job["file"]]["path"],
            "sigma_filename": None if job["snr"] is None else files[job["snr"]]["path"],
        }
        for job in header["jobs"]
    ]
    for plan in plans(jobs, settings, header["target"]):
        meta = plan.meta
        path = plan.save(task.work_dir / f"{meta['name']}_register{meta['register_id']}.npz")
        results = {"register_id": meta["register_id"], "workunits": len(plan.counts)}
        if meta.get("error"):
            task.log.warning("Registration %s: %s", meta["register_id"], meta["error"])
            results["error"] = meta["error"]
        else:
            task.log.info(
                "Registration %s: %s in %d work units of %d pixels",
                meta["register_id"],
                meta["name"],
                len(plan.counts),
                int(plan.counts.sum()),
            )
        task.add_product(
            path, "WorkUnitPlan", instrument="POGS", object=meta["name"], results=results
        )
