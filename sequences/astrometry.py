"""Astrometry: a TAN-SIP solution per CCD of each reduced frame, against the reference
catalogue (HEALPix-partitioned, :mod:`awe.data.refcat`).

Sources are extracted with sep (only bright, clean ones are used), paired with the
catalogue stars through the frame's first-guess WCS and a fitted shift, and a TAN-SIP WCS
fitted (:mod:`awe.science.astrometry`). The rms of the residuals and the number of stars
are logged and kept in the AstrometricParameters product (a FITS header holding the
solution), which Regrid applies.

The catalogue pixels a CCD needs are task inputs, so a remote DPU receives them like any
other file. ``dpu.run('Astrometry', i='WFI', d='2000-04-28', refcat='~/night/refcat')``
(or ``$AWE_REFCAT``); chained: ``dpu.run('Reduce>Astrometry', i='WFI', d=..., C=1)``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from awe.sequence import (
    NoInputs,
    Option,
    SelectionContext,
    TaskContext,
    Unit,
    file_input,
    sequence,
)
from sequences.imaging import (
    SELECTION,
    inputs_of,
    product_keys,
    reduced_units,
    stem,
    unit_frame_keys,
)

REFCAT = Option("refcat", "refcat", str, help="reference catalogue folder (default $AWE_REFCAT)")
OPTIONS = [
    *SELECTION,
    Option("red", "red_filenames", list, help="reduced frames by file name"),
    REFCAT,
]
PARAMETERS = {
    "AstrometricParameters.process_params.SIP_DEGREE": 3,
    "AstrometricParameters.process_params.DETECT_THRESH": 5.0,
    "AstrometricParameters.process_params.MIN_STARS": 5,
    "AstrometricParameters.process_params.MAX_OFFSET_ARCSEC": 40.0,
}


def refcat_folder(options: Mapping[str, Any]) -> Path:
    """The catalogue folder from the ``refcat`` option or ``$AWE_REFCAT``."""
    given = options.get("refcat") or os.environ.get("AWE_REFCAT")
    if not given:
        raise NoInputs(
            "no reference catalogue: give refcat='<folder with refcat.json>' (a simulated "
            "night has one in its refcat/ folder) or set AWE_REFCAT"
        )
    folder = Path(given).expanduser()
    if not (folder / "refcat.json").is_file():
        raise NoInputs(f"{folder} holds no refcat.json: it is not a reference catalogue")
    return folder


def field_radius_deg(instrument_name: str) -> float:
    """A radius around the pointing that holds every chip of the mosaic."""
    import math

    from awe.data.instruments import get_instrument

    instrument = get_instrument(instrument_name)
    ny, nx = instrument.detector.data_section.shape
    reach = max(math.hypot(*c.center) for c in instrument.chips) + math.hypot(nx, ny) / 2
    return reach * instrument.pixel_scale / 3600.0 * 1.1 + 0.05


def refcat_inputs(folder: Path, ra: float, dec: float, radius: float) -> list[dict[str, Any]]:
    """The catalogue's pixel files a cone touches, as task inputs (shipped by hash)."""
    import astropy.units as u

    from awe.data.refcat import healpix, pixel_path

    pixels = healpix().cone_search_lonlat(ra * u.deg, dec * u.deg, radius * u.deg)
    paths = [pixel_path(folder, int(p)) for p in sorted(int(p) for p in pixels)]
    return [file_input(p) | {"role": "refcat"} for p in paths if p.exists()]


def with_refcat(units: list[Unit], options: Mapping[str, Any]) -> list[Unit]:
    """Each unit with the catalogue files around its exposure's pointing."""
    folder = refcat_folder(options)
    radius = field_radius_deg(options["instrument"])
    cache: dict[tuple[float, float], list[dict[str, Any]]] = {}
    out = []
    for unit in units:
        keys = unit_frame_keys(unit)
        if keys.get("ra") is None or keys.get("dec") is None:
            raise NoInputs(f"{unit.key}: the frame has no pointing (RA, DEC) to search around")
        where = (round(keys["ra"], 3), round(keys["dec"], 3))
        if where not in cache:
            cache[where] = refcat_inputs(folder, keys["ra"], keys["dec"], radius)
        out.append(Unit(key=unit.key, inputs=tuple(unit.inputs) + tuple(cache[where])))
    return out


def select_reduced(options: Mapping[str, Any], context: SelectionContext) -> list[Unit]:
    units = reduced_units(options, context, "Reduce>Astrometry")
    return with_refcat(units, options)


def read_refcat(inputs: list[dict[str, Any]]) -> dict[str, Any]:
    """The stars of the catalogue files among the task's inputs."""
    import numpy as np

    tables = []
    for given in inputs:
        if given.get("role") == "refcat":
            with open(given["path"], encoding="utf-8") as stream:
                columns = stream.readline().strip().split(",")
            tables.append(np.loadtxt(given["path"], delimiter=",", skiprows=1, ndmin=2))
    if not tables:
        return {"ra": np.empty(0), "dec": np.empty(0)}
    table = np.vstack(tables)
    return {name: table[:, i] for i, name in enumerate(columns)}


def usable_sources(path: str, params: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The header of a reduced frame and its bright, clean sources (sep)."""
    import numpy as np
    from astropy.io import fits

    from awe.science.sources import extract

    with fits.open(path, memmap=False) as hdul:
        data, header = hdul[0].data.astype(np.float32), hdul[0].header
        names = [h.name for h in hdul]
        weight = (hdul["FLAGS"].data == 0).astype(np.float32) if "FLAGS" in names else None
    found = extract(
        data,
        weight,
        threshold=params["AstrometricParameters.process_params.DETECT_THRESH"],
        aperture_radius=6.0,
    )
    s = found.sources
    usable = (s["flags"] <= 3) & (s["flux_aper"] > 10 * s["fluxerr_aper"])
    return header, {name: values[usable] for name, values in s.items()}


def solve_frame(path: str, stars: dict[str, Any], params: Mapping[str, Any]) -> Any:
    """Extract the bright sources of a reduced frame and solve its astrometry; the
    solution, the frame's header, its pixel scale and the sources."""
    from astropy.wcs import WCS

    from awe.science.astrometry import proj_plane_scale_arcsec, solve

    header, s = usable_sources(path, params)
    guess = WCS(header)
    scale = proj_plane_scale_arcsec(guess)
    solution = solve(
        s["x"],
        s["y"],
        stars["ra"],
        stars["dec"],
        guess,
        search_radius=params["AstrometricParameters.process_params.MAX_OFFSET_ARCSEC"] / scale,
        sip_degree=params["AstrometricParameters.process_params.SIP_DEGREE"],
        min_stars=params["AstrometricParameters.process_params.MIN_STARS"],
        shape=(header["NAXIS2"], header["NAXIS1"]),
    )
    return solution, header, scale, s


@sequence(
    options=OPTIONS,
    parameters=PARAMETERS,
    fan_out="chip",
    select=select_reduced,
    estimate=3.0,
)
def Astrometry(task: TaskContext) -> None:
    """A TAN-SIP astrometric solution per CCD against the reference catalogue."""
    from astropy.io import fits

    stars = read_refcat(list(task.unit.inputs))
    task.log.info("Reference catalogue: %d stars around the pointing", len(stars["ra"]))
    for image in inputs_of(task, "ReducedScienceFrame", "image"):
        task.log.info("Solving %s", image["name"])
        solution, header, scale, _ = solve_frame(image["path"], stars, task.parameters)
        dx, dy = solution.shift_pixels
        task.log.info("Pointing offset: %.2f, %.2f arcsec", dx * scale, dy * scale)
        task.log.info(
            "Astrometric rms %.3f arcsec from %d stars (SIP degree %s)",
            solution.rms_arcsec,
            solution.n_stars,
            solution.sip_degree,
        )
        out_header = solution.wcs.to_header(relax=True)
        for key in ("INSTRUME", "CHIPNAME", "FILTER"):
            if key in header:
                out_header[key] = header[key]
        out_header["IMAGEW"], out_header["IMAGEH"] = header["NAXIS1"], header["NAXIS2"]
        out_header["ASTRMS"] = (solution.rms_arcsec, "rms of the residuals (arcsec)")
        out_header["ASTNSTAR"] = (solution.n_stars, "stars in the fit")
        out_header["ASTFRAME"] = (image["name"][:68], "the frame solved")
        out = task.work_dir / f"{stem(image['name'])}.astrom.fits"
        fits.PrimaryHDU(header=out_header).writeto(out, overwrite=True)
        results = {
            "rms_arcsec": solution.rms_arcsec,
            "n_stars": solution.n_stars,
            "sip_degree": solution.sip_degree,
            "offset_arcsec": [dx * scale, dy * scale],
            "reduced": image["name"],
            "inputs": [image.get("frame_id")],
        }
        task.add_product(
            out, "AstrometricParameters", **product_keys(image["keys"], results=results)
        )
        if image.get("frame_id") is None:  # chained: pass the frame on to a following Regrid
            task.add_product(image["path"], "ReducedScienceFrame", **product_keys(image["keys"]))
