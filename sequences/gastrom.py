"""GAstromSL and GAstrom: the global astrometric solution of a pointing set.

**GAstromSL** (per CCD of each reduced frame) extracts the bright, clean sources, solves
the CCD against the reference catalogue as Astrometry does (the starting point), and keeps
both in a GAstromSourceList (the per-chip WCS in the header, the sources in a table).

**GAstrom** (one task for the set: all chips and dithers of one filter and object) fits
them together (:func:`awe.science.gastrom.solve_global`): a shift per frame, and per chip
linear terms and distortion shared by its dithers, constrained by the reference stars and
by the sources the frames share where they overlap. It writes an AstrometricParameters
per frame in Astrometry's format, so Regrid applies it.

``dpu.run('GAstrometry', i='WFI', d='2000-04-28', f='#842', o='AWE_DEEP*',
refcat='~/night/refcat', C=1)`` runs 'GAstromSL>GAstrom'.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from awe.sequence import (
    NoInputs,
    Option,
    SelectionContext,
    TaskContext,
    Unit,
    declare_chain,
    sequence,
)
from sequences.astrometry import (
    OPTIONS as ASTROMETRY_OPTIONS,
)
from sequences.astrometry import (
    PARAMETERS as ASTROMETRY_PARAMETERS,
)
from sequences.astrometry import (
    field_radius_deg,
    read_refcat,
    refcat_folder,
    refcat_inputs,
    select_reduced,
    solve_frame,
)
from sequences.imaging import (
    DATE,
    FILTER,
    INSTRUMENT,
    OBJECT,
    frame_input,
    inputs_of,
    product_keys,
    select_frames,
    stem,
)


@sequence(
    options=ASTROMETRY_OPTIONS,
    parameters=ASTROMETRY_PARAMETERS,
    fan_out="chip",
    select=select_reduced,
    estimate=3.0,
)
def GAstromSL(task: TaskContext) -> None:
    """Sources and a per-chip solution of a reduced frame, for GAstrom."""
    import numpy as np
    from astropy.io import fits

    stars = read_refcat(list(task.unit.inputs))
    for image in inputs_of(task, "ReducedScienceFrame", "image"):
        solution, header, _, sources = solve_frame(image["path"], stars, task.parameters)
        task.log.info(
            "%s: %d sources, per-chip rms %.3f arcsec from %d stars",
            image["name"],
            len(sources["x"]),
            solution.rms_arcsec,
            solution.n_stars,
        )
        out_header = solution.wcs.to_header(relax=True)
        for key in ("INSTRUME", "CHIPNAME", "FILTER", "OBJECT"):
            if key in header:
                out_header[key] = header[key]
        out_header["IMAGEW"], out_header["IMAGEH"] = header["NAXIS1"], header["NAXIS2"]
        out_header["ASTRMS"] = (solution.rms_arcsec, "per-chip rms (arcsec)")
        out_header["ASTFRAME"] = (image["name"][:68], "the frame")
        table = fits.BinTableHDU.from_columns(
            [
                fits.Column(name=n.upper(), format="D", array=np.asarray(sources[n], float))
                for n in ("x", "y", "flux_aper")
            ],
            name="SOURCES",
        )
        out = task.work_dir / f"{stem(image['name']).removesuffix('.red')}.gastromsl.fits"
        fits.HDUList([fits.PrimaryHDU(header=out_header), table]).writeto(out, overwrite=True)
        results = {
            "sources": len(sources["x"]),
            "rms_arcsec": solution.rms_arcsec,
            "n_stars": solution.n_stars,
            "reduced": image["name"],
            "inputs": [image.get("frame_id")],
        }
        task.add_product(out, "GAstromSourceList", **product_keys(image["keys"], results=results))


GASTROM_OPTIONS = [
    INSTRUMENT,
    DATE,
    FILTER,
    OBJECT,
    Option("refcat", "refcat", str, help="reference catalogue folder (default $AWE_REFCAT)"),
]


def select_source_lists(options: Mapping[str, Any], context: SelectionContext) -> list[Unit]:
    """One global task: the GAstromSourceLists (the step before's, or the stored ones of
    the filter and object) and the catalogue files around their pointings."""
    from awe.db.frames import GAstromSourceList

    folder = refcat_folder(options)
    if not options.get("filter"):
        raise NoInputs("GAstrom needs a filter (f='#842'): a pointing set is one filter")
    if context.previous:
        keys = [k for u in context.previous for k in _keys(u)]
        lists: tuple[dict[str, Any], ...] = ()
    else:
        found = select_frames(GAstromSourceList, options, context)
        if not found:
            raise NoInputs(
                f"searched GAstromSourceList for {options['instrument']} filter "
                f"{options['filter']}: found none; run GAstromSL first (or GAstrometry)"
            )
        lists = tuple(frame_input(f, context.env.data_root, "gastromsl") for f in found)
        keys = [given["keys"] for given in lists]
    pointed = [k for k in keys if k.get("ra") is not None and k.get("dec") is not None]
    if not pointed:
        raise NoInputs("the source lists have no pointing (RA, DEC) to search the catalogue")
    ra = sum(k["ra"] for k in pointed) / len(pointed)
    dec = sum(k["dec"] for k in pointed) / len(pointed)
    radius = field_radius_deg(options["instrument"]) + 0.05
    return [Unit(inputs=lists + tuple(refcat_inputs(folder, ra, dec, radius)))]


def _keys(unit: Unit) -> list[dict[str, Any]]:
    return [i["keys"] for i in unit.inputs if isinstance(i, dict) and "keys" in i]


@sequence(
    options=GASTROM_OPTIONS,
    parameters={"AstrometricParameters.process_params.MATCH_RADIUS_ARCSEC": 1.0},
    fan_out="global",
    select=select_source_lists,
    estimate=5.0,
    tolerant=True,  # a chip whose source list failed is left out of the global solution
)
def GAstrom(task: TaskContext) -> None:
    """One astrometric solution over all chips and dithers of a pointing set."""
    import numpy as np
    from astropy.io import fits
    from astropy.wcs import WCS

    from awe.science.gastrom import Frame, solve_global

    lists = inputs_of(task, "GAstromSourceList", "gastromsl")
    lists = [s for s in lists if s["keys"].get("filter") == task.options["filter"]]
    if not lists:
        raise NoInputs(f"no GAstromSourceList of filter {task.options['filter']}")
    frames, headers = [], []
    for given in lists:
        with fits.open(given["path"], memmap=False) as hdul:
            header, table = hdul[0].header, hdul["SOURCES"].data
            frames.append(
                Frame(
                    x=np.asarray(table["X"], float),
                    y=np.asarray(table["Y"], float),
                    wcs=WCS(header),
                    chip=str(given["keys"].get("chip")),
                    shape=(int(header["IMAGEH"]), int(header["IMAGEW"])),
                )
            )
            headers.append(header)
    stars = read_refcat(list(task.unit.inputs))
    radius = task.parameters["AstrometricParameters.process_params.MATCH_RADIUS_ARCSEC"]
    solution = solve_global(frames, stars["ra"], stars["dec"], match_radius_arcsec=radius)
    task.log.info(
        "Global solution of %d frames (%d chips): rms %.3f arcsec on %d reference stars, "
        "%.3f arcsec on %d overlap pairs",
        len(frames),
        len({f.chip for f in frames}),
        solution.rms_reference_arcsec,
        solution.n_reference,
        solution.rms_overlap_arcsec,
        solution.n_overlap,
    )
    for given, header, wcs in zip(lists, headers, solution.wcs, strict=True):
        out_header = wcs.to_header(relax=True)
        for key in ("INSTRUME", "CHIPNAME", "FILTER", "IMAGEW", "IMAGEH", "ASTFRAME"):
            if key in header:
                out_header[key] = header[key]
        out_header["ASTRMS"] = (solution.rms_reference_arcsec, "global rms (arcsec)")
        out_header["ASTNSTAR"] = (solution.n_reference, "reference matches, all frames")
        out_header["ASTGLOB"] = (True, "from GAstrom")
        out = task.work_dir / f"{stem(given['name']).removesuffix('.gastromsl')}.gastrom.fits"
        fits.PrimaryHDU(header=out_header).writeto(out, overwrite=True)
        results = {
            "rms_arcsec": solution.rms_reference_arcsec,
            "overlap_rms_arcsec": solution.rms_overlap_arcsec,
            "n_stars": solution.n_reference,
            "n_overlap": solution.n_overlap,
            "frames": len(frames),
            "global": True,
            "inputs": [given.get("frame_id")],
        }
        task.add_product(
            out, "AstrometricParameters", **product_keys(given["keys"], results=results)
        )


declare_chain(
    "GAstrometry",
    ["GAstromSL", "GAstrom"],
    "Global astrometry of a pointing set: GAstromSL per CCD, then GAstrom over all",
)
