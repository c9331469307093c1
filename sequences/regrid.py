"""Regrid and Coadd: reduced frames onto a common sky grid, and their weighted mean.

**Regrid** (per CCD of each exposure) resamples a ReducedScienceFrame and its weight onto
the grid centred on (``gra``, ``gdec``) with ``gps`` arcsec pixels (defaults: the mean
pointing of the frames selected, and the instrument's pixel scale), flux conserving, with
the photometric scaling to the common zeropoint (:data:`COMMON_ZEROPOINT`) from the
newest valid PhotometricParameters of chip and filter (the instrument file's nominal
zeropoint and extinction when there are none, with a warning). The astrometric solution is
the frame's AstrometricParameters (from the step before in a chain, or the newest stored
one for that CCD and exposure); without one the header's WCS (the telescope pointing) is
used, with a warning.

**Coadd** (one serial task, as Astro-WISE) adds the RegriddedFrames of one filter: the
weighted, optionally clipped mean, its weight, and a PNG preview (asinh stretch).
``dpu.run('Reduce>Regrid>Coadd', i='WFI', d='2000-04-28', f='#842', C=1)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from awe.science.regrid import COMMON_ZEROPOINT
from awe.sequence import NoInputs, Option, SelectionContext, TaskContext, Unit, sequence
from sequences.imaging import (
    DATE,
    OBJECT,
    SELECTION,
    inputs_of,
    product_keys,
    reduced_units,
    select_frames,
    stem,
    unit_frame_keys,
)

GRID_OPTIONS = [
    Option("gra", "grid_ra", float, help="grid centre RA (deg; default: mean pointing)"),
    Option("gdec", "grid_dec", float, help="grid centre Dec (deg; default: mean pointing)"),
    Option("gps", "grid_pixel_scale", float, help="grid pixel (arcsec; default: instrument's)"),
]
REGRID_OPTIONS = [
    *SELECTION,
    Option("raw", "raw_filenames", list, help="raw frames by file name"),
    Option("red", "red_filenames", list, help="reduced frames by file name"),
    *GRID_OPTIONS,
]


def select_for_regrid(options: Mapping[str, Any], context: SelectionContext) -> list[Unit]:
    """Each reduced CCD (or each unit of the step before), with the grid every task uses."""
    from awe.data.instruments import get_instrument

    units = reduced_units(options, context, "Reduce>Regrid>Coadd")
    pointings = [unit_frame_keys(u) for u in units]
    pointings = [(k["ra"], k["dec"]) for k in pointings if k.get("ra") is not None]
    ra, dec = options.get("grid_ra"), options.get("grid_dec")
    if ra is None or dec is None:
        if not pointings:
            raise NoInputs("no pointing to centre the grid on: give gra= and gdec=")
        ra = round(sum(p[0] for p in pointings) / len(pointings), 4)
        dec = round(sum(p[1] for p in pointings) / len(pointings), 4)
    scale = options.get("grid_pixel_scale") or get_instrument(options["instrument"]).pixel_scale
    grid = {"role": "grid", "ra": ra, "dec": dec, "pixel_scale": scale}
    return [Unit(key=u.key, inputs=(*u.inputs, grid)) for u in units]


def _astrometry(task: TaskContext, keys: Mapping[str, Any], header: Any) -> Any:
    from astropy.io import fits
    from astropy.wcs import WCS

    from awe.db.frames import AstrometricParameters

    chained = [
        p
        for p in task.upstream
        if p.kind == "AstrometricParameters"
        and all(p.metadata.get(k) == keys.get(k) for k in ("chip", "exposure_number"))
    ]  # GAstrom's solutions are of every frame of the set: this frame's
    if chained:
        task.log.info("Using AstrometricParameters %s", chained[0].path.rsplit("/", 1)[-1])
        return WCS(fits.getheader(chained[0].path))
    stored = _stored_astrometry(AstrometricParameters, keys, task)
    if stored is not None:
        return stored
    task.log.warning(
        "No AstrometricParameters for chip %s exposure %s: using the header WCS (the "
        "telescope pointing, off by arcseconds); run Astrometry first for a sharp coadd",
        keys.get("chip"),
        keys.get("exposure_number"),
    )
    return WCS(header)


def _stored_astrometry(cls: Any, keys: Mapping[str, Any], task: TaskContext) -> Any:
    """The newest stored solution of this CCD and exposure, when the task can see the
    database (a local DPU); None otherwise."""
    try:
        from astropy.io import fits
        from astropy.wcs import WCS

        from awe.data.store import DataStore

        found = cls.select(
            instrument=keys["instrument"],
            chip=keys["chip"],
            exposure_number=keys["exposure_number"],
        )
        if not found:
            return None
        newest = found[-1]
        task.log.info("Using AstrometricParameters %s", newest.filename)
        return WCS(fits.getheader(DataStore.for_session().path(newest.sha256)))
    except Exception:  # noqa: BLE001 - no database on this DPU: the header it is
        return None


def _photometric_scale(task: TaskContext, keys: Mapping[str, Any]) -> float:
    from awe.data.instruments import get_instrument
    from awe.science.regrid import photometric_scale

    zeropoint = extinction = None
    try:
        from awe.db.frames import PhotometricParameters

        found = PhotometricParameters.newest_valid(
            instrument=keys["instrument"],
            chip=keys["chip"],
            filter=keys["filter"],
            night=keys.get("night"),
        )
        if found is not None:
            zeropoint, extinction = found.results["zeropoint"], found.results["extinction"]
            task.log.info("Using PhotometricParameters %s", found.filename)
    except Exception:  # noqa: BLE001 - no database on this DPU
        found = None
    if zeropoint is None:
        nominal = get_instrument(keys["instrument"]).filter(keys["filter"])
        zeropoint, extinction = nominal.zeropoint, nominal.extinction
        task.log.warning(
            "No PhotometricParameters for chip %s filter %s: nominal zeropoint %.2f and "
            "extinction %.2f of the instrument file",
            keys["chip"],
            keys["filter"],
            zeropoint,
            extinction,
        )
    return photometric_scale(
        zeropoint, extinction, keys.get("airmass") or 1.0, keys.get("exposure_time") or 1.0
    )


@sequence(
    options=REGRID_OPTIONS,
    fan_out="chip",
    select=select_for_regrid,
    estimate=3.0,
)
def Regrid(task: TaskContext) -> None:
    """Reduced frames onto a common grid, flux conserving and photometrically scaled."""
    import numpy as np
    from astropy.io import fits

    from awe.science.regrid import grid_wcs, regrid

    grid_spec = next(i for i in task.unit.inputs if isinstance(i, dict) and i["role"] == "grid")
    grid = grid_wcs(grid_spec["ra"], grid_spec["dec"], grid_spec["pixel_scale"])
    task.log.info(
        "Grid: TAN at %.5f %.5f, %.3f arcsec pixels",
        grid_spec["ra"],
        grid_spec["dec"],
        grid_spec["pixel_scale"],
    )
    for image in inputs_of(task, "ReducedScienceFrame", "image"):
        keys = image["keys"]
        with fits.open(image["path"], memmap=False) as hdul:
            data, header = hdul[0].data.astype(np.float32), hdul[0].header
            flags = hdul["FLAGS"].data if "FLAGS" in [h.name for h in hdul] else None
        weight = _weight_for(task, image, flags, data.shape)
        wcs = _astrometry(task, keys, header)
        scale = _photometric_scale(task, keys)
        task.log.info("Regridding %s (scale %.4g to zeropoint %.1f)", image["name"], scale, 30.0)
        result = regrid(data, weight, wcs, grid, scale=scale)
        out_header = result.wcs.to_header()
        for key in ("INSTRUME", "CHIPNAME", "FILTER", "OBJECT", "EXPTIME", "MJD-OBS", "AIRMASS"):
            if key in header:
                out_header[key] = header[key]
        out_header["MAGZP"] = (COMMON_ZEROPOINT, "magnitude of one unit of flux")
        out_header["GRIDX0"], out_header["GRIDY0"] = result.offset
        out_header["GAIN"] = float(header.get("GAIN", 1.0)) / scale
        out = task.work_dir / f"{stem(image['name']).removesuffix('.red')}.regrid.fits"
        fits.HDUList(
            [
                fits.PrimaryHDU(result.image, out_header),
                fits.ImageHDU(result.weight, name="WEIGHT"),
            ]
        ).writeto(out, overwrite=True)
        results = {
            "grid": grid_spec,
            "offset": list(result.offset),
            "scale": scale,
            "reduced": image["name"],
            "inputs": [image.get("frame_id")],
        }
        task.add_product(out, "RegriddedFrame", **product_keys(keys, results=results))


def _weight_for(task: TaskContext, image: Mapping[str, Any], flags: Any, shape) -> Any:
    """The frame's WeightFrame (chained: the step before's), else 1 where unflagged."""
    import numpy as np
    from astropy.io import fits

    for product in task.upstream:
        if product.kind == "WeightFrame":
            return fits.getdata(product.path).astype(np.float32)
    if flags is not None:
        return (flags == 0).astype(np.float32)
    return np.ones(shape, np.float32)


COADD_OPTIONS = [
    Option("i", "instrument", str, required=True, help="instrument, e.g. WFI"),
    Option("f", "filter", str, help="filter (one coadd per filter)"),
    DATE,
    OBJECT,
    Option("clip", "clip", float, 0.0, help="clip at this many sigma (0: plain weighted mean)"),
]


def select_regridded(options: Mapping[str, Any], context: SelectionContext) -> list[Unit]:
    """One global task: the step before's products, or the stored RegriddedFrames."""
    from awe.db.frames import RegriddedFrame
    from sequences.imaging import frame_input

    if context.previous:
        return [Unit()]
    if not options.get("filter"):
        raise NoInputs("Coadd needs a filter (f='#842'): frames of one filter are coadded")
    frames = select_frames(RegriddedFrame, options, context)
    if not frames:
        raise NoInputs(f"searched RegriddedFrame for {dict(options)}: found none; run Regrid")
    root = context.env.data_root
    return [Unit(inputs=tuple(frame_input(f, root, "regridded") for f in frames))]


@sequence(
    options=COADD_OPTIONS,
    fan_out="global",
    select=select_regridded,
    estimate=5.0,
    tolerant=True,  # a chip that failed upstream is missing from the coadd, not fatal to it
)
def Coadd(task: TaskContext) -> None:
    """The weighted (optionally clipped) mean of regridded frames, one serial task."""
    import numpy as np
    from astropy.io import fits

    from awe.science.coadd import coadd, preview_png
    from awe.science.regrid import cutout_wcs, grid_wcs

    frames = inputs_of(task, "RegriddedFrame", "regridded")
    if not frames:
        raise NoInputs("no RegriddedFrame among the inputs or the step before")
    filters = {f["keys"].get("filter") for f in frames}
    wanted = task.options.get("filter")
    if wanted:
        frames = [f for f in frames if f["keys"].get("filter") == wanted]
    elif len(filters) > 1:
        raise NoInputs(f"frames of {len(filters)} filters ({sorted(filters)}): give f=")
    images, weights, offsets = [], [], []
    for frame in frames:
        with fits.open(frame["path"], memmap=False) as hdul:
            images.append(hdul[0].data)
            weights.append(hdul["WEIGHT"].data)
            header = hdul[0].header
            offsets.append((int(header["GRIDX0"]), int(header["GRIDY0"])))
        task.log.info("Adding %s", frame["name"])
    clip = float(task.options.get("clip") or 0.0)
    result = coadd(images, weights, offsets, clip=clip or None)
    first = fits.getheader(frames[0]["path"])
    wcs = cutout_wcs(
        grid_wcs(first["CRVAL1"], first["CRVAL2"], abs(first["CDELT1"]) * 3600), (0, 0)
    )
    # the canvas starts at the smallest offset: move the reference pixel accordingly
    wcs.wcs.crpix = [
        first["CRPIX1"] + first["GRIDX0"] - result.offset[0],
        first["CRPIX2"] + first["GRIDY0"] - result.offset[1],
    ]
    header = wcs.to_header()
    keys = frames[0]["keys"]
    for key in ("INSTRUME", "FILTER", "OBJECT"):
        if key in first:
            header[key] = first[key]
    header["MAGZP"] = (COMMON_ZEROPOINT, "magnitude of one unit of flux")
    header["NCOMBINE"] = len(frames)
    covered = result.weight > 0
    median = float(np.median(result.image[covered])) if covered.any() else float("nan")
    rms = float(1.4826 * np.median(np.abs(result.image[covered] - median)))
    task.log.info(
        "Coadded %d frames into %d x %d pixels; median %.4g, rms %.4g, %d clipped values",
        len(frames),
        result.image.shape[1],
        result.image.shape[0],
        median,
        rms,
        result.rejected,
    )
    name = f"Coadd_{keys['instrument']}_{keys.get('object') or 'field'}_{keys['filter']}"
    name = name.replace("#", "").replace("*", "").replace("/", "_")
    out = task.work_dir / f"{name}.fits"
    fits.HDUList(
        [fits.PrimaryHDU(result.image, header), fits.ImageHDU(result.weight, name="WEIGHT")]
    ).writeto(out, overwrite=True)
    preview = task.work_dir / f"{name}.png"
    preview_png(result.image, result.weight, preview)
    task.log.info("Preview written to %s", preview)
    metadata = {
        "instrument": keys["instrument"],
        "filter": keys["filter"],
        "object": keys.get("object") or "",
    }
    if keys.get("night"):
        metadata["night"] = keys["night"]
    task.add_product(
        out,
        "CoaddedRegriddedFrame",
        **metadata,
        results={
            "frames": len(frames),
            "median": median,
            "rms": rms,
            "clipped": result.rejected,
            "preview": preview.name,
            "inputs": [f.get("frame_id") for f in frames],
            "shape": list(result.image.shape),
        },
    )
