"""POGS work units on the DPU: FitSED fits one work unit per task; PogsMaps turns the fit
files into parameter maps (FITS, one plane per parameter and statistic, and PNG previews).

``dpu.run('FitSED>PogsMaps', r=1, C=1)`` fits every work unit of run 1 not fitted yet,
highest galaxy priority first (tasks are queued in that order, so the local pool and Slurm
start them in that order); ``q=2`` runs each unit twice for validation. Then
``awe wu assimilate JOBID`` (or :func:`awe.wu.assimilate.assimilate`) validates, stores the
medians in ``pogs_pixel_result`` and updates area and galaxy states.
"""

from __future__ import annotations

from collections.abc import Mapping
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
