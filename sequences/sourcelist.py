"""SourceList: a catalogue of each reduced, regridded or coadded frame, made with sep.

Positions (pixels and, through the frame's WCS, sky), aperture and Kron fluxes and
magnitudes with errors, shapes and flags, as :mod:`awe.science.sources` measures them,
written as a FITS table (HDU ``SOURCES``) and, when committed, as one row per source::

    sl = SourceList.select(instrument='WFI', date='2000-04-28')[0]
    sl.get_sources(max_flags=3)                   # the clean ones
    Source.select(ra=150.2, dec=-29.0, radius=3)  # every list, within 3 arcsec

Pixels that are flagged (reduced frames) or of zero weight (regridded, coadded) are
ignored. ``dpu.run('SourceList', i='WFI', d='2000-04-28', C=1)``; after a coadd,
``dpu.run('Coadd>SourceList', i='WFI', f='#842', C=1)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from awe.sequence import NoInputs, Option, SelectionContext, TaskContext, Unit, sequence
from sequences.imaging import (
    SELECTION,
    inputs_of,
    per_chip_units,
    product_keys,
    stem,
)

#: Frame types a source list can be made of, in the order a chain step looks for them.
SOURCE_FRAMES = ("CoaddedRegriddedFrame", "RegriddedFrame", "ReducedScienceFrame")
OPTIONS = [
    *SELECTION,
    Option("t", "frame_type", str, "ReducedScienceFrame", help=", ".join(SOURCE_FRAMES)),
]
PARAMETERS = {
    "SourceList.process_params.DETECT_THRESH": 2.0,
    "SourceList.process_params.DETECT_MINAREA": 5,
    "SourceList.process_params.APERTURE_FWHM": 1.5,
    "SourceList.process_params.DEBLEND_MINCONT": 0.005,
}


def select_frames_to_catalogue(options: Mapping[str, Any], context: SelectionContext) -> list[Unit]:
    from awe.db import frames as types

    kind = options.get("frame_type", "ReducedScienceFrame")
    if kind not in SOURCE_FRAMES:
        raise NoInputs(f"frame_type {kind!r} cannot be catalogued; use one of {SOURCE_FRAMES}")
    return per_chip_units(getattr(types, kind), "image", options, context)


@sequence(
    options=OPTIONS,
    parameters=PARAMETERS,
    fan_out="chip",
    select=select_frames_to_catalogue,
    estimate=3.0,
)
def SourceList(task: TaskContext) -> None:
    """Catalogue each frame with sep: positions, fluxes, shapes, flags."""
    import numpy as np
    from astropy.io import fits
    from astropy.table import Table

    from awe.science.sources import extract

    images = images_of(task)
    if not images:
        raise NoInputs("no frame to catalogue among the inputs or the step before")
    params = task.parameters
    for image in images:
        task.log.info("Extracting sources from %s", image["name"])
        with fits.open(image["path"], memmap=False) as hdul:
            data, header = hdul[0].data.astype(np.float32), hdul[0].header
            weight = weight_plane(hdul)
        fwhm = float(header.get("SEEING_P", 0) or 0) or _fwhm_guess(data, weight)
        radius = params["SourceList.process_params.APERTURE_FWHM"] * fwhm
        found = extract(
            data,
            weight,
            threshold=params["SourceList.process_params.DETECT_THRESH"],
            min_area=params["SourceList.process_params.DETECT_MINAREA"],
            aperture_radius=radius,
            gain=float(header.get("GAIN", 1.0)),
            zeropoint=float(header.get("MAGZP", 0.0)),
            deblend_contrast=params["SourceList.process_params.DEBLEND_MINCONT"],
        )
        sources = dict(found.sources)
        sources["ra"], sources["dec"] = sky_positions(header, sources["x"], sources["y"])
        clean = sources["flags"] <= 3
        median_fwhm = float(np.median(sources["fwhm"][clean])) if clean.any() else float("nan")
        task.log.info(
            "Found %d sources (%d clean); background %.2f, rms %.2f; median FWHM %.2f pixels",
            len(found),
            int(clean.sum()),
            found.background,
            found.background_rms,
            median_fwhm,
        )
        out = task.work_dir / f"{stem(image['name'])}.sources.fits"
        primary = fits.PrimaryHDU(header=header_without_data(header))
        primary.header["APERTURE"] = (radius, "aperture radius (pixels)")
        table = fits.BinTableHDU(Table(sources), name="SOURCES")
        fits.HDUList([primary, table]).writeto(out, overwrite=True)
        results = {
            "sources": len(found),
            "clean_sources": int(clean.sum()),
            "background": found.background,
            "background_rms": found.background_rms,
            "fwhm_pixels": median_fwhm,
            "aperture_radius": radius,
            "image": image["name"],
            "inputs": [image.get("frame_id")],
        }
        task.add_product(out, "SourceList", **product_keys(image["keys"], results=results))
        if image.get("frame_id") is None:  # chained: pass the frame on (to GalFit, GalPhot)
            same = {k: image["keys"][k] for k in ("results",) if k in image["keys"]}
            task.add_product(image["path"], image["kind"], **product_keys(image["keys"], **same))


def images_of(task: TaskContext) -> list[dict[str, Any]]:
    """The frames to work on: those the step before made (each with its ``kind``), else
    the stored frames the unit was given (role ``image``), each once."""
    chained = [
        {**image, "kind": kind}
        for kind in SOURCE_FRAMES
        for image in inputs_of(task, kind, "image")
        if image.get("frame_id") is None
    ]
    if chained:
        return chained
    given = [i for i in task.unit.inputs if isinstance(i, dict) and i.get("role") == "image"]
    return [{**image, "kind": image.get("frame_type")} for image in given]


def weight_plane(hdul: Any) -> Any:
    """Zero where a pixel must be ignored: the reduced frame's FLAGS, or a WEIGHT HDU."""
    names = [h.name for h in hdul]
    if "WEIGHT" in names:
        return hdul["WEIGHT"].data
    if "FLAGS" in names:
        return (hdul["FLAGS"].data == 0).astype("float32")
    return None


def _fwhm_guess(data: Any, weight: Any) -> float:
    """The median FWHM of the brightest isolated detections (a first, quick pass)."""
    import numpy as np

    from awe.science.sources import extract

    first = extract(data, weight, threshold=10.0, aperture_radius=5.0)
    good = (first.sources["flags"] == 0) & np.isfinite(first.sources["fwhm"])
    return float(np.median(first.sources["fwhm"][good])) if good.sum() >= 3 else 4.0


def sky_positions(header: Any, x: Any, y: Any) -> tuple[Any, Any]:
    """ra, dec (degrees) of 0-based pixels through the header's WCS; NaN without one."""
    import numpy as np
    from astropy.wcs import WCS

    wcs = WCS(header)
    if not wcs.has_celestial or len(x) == 0:
        return np.full(len(x), np.nan), np.full(len(x), np.nan)
    ra, dec = wcs.all_pix2world(x, y, 0)
    return np.asarray(ra) % 360.0, np.asarray(dec)


def header_without_data(header: Any) -> Any:
    out = header.copy()
    for key in ("NAXIS1", "NAXIS2", "BSCALE", "BZERO"):
        out.pop(key, None)
    out["NAXIS"] = 0
    return out
