"""Reduce: raw science (and standard-field) frames to ReducedScienceFrames and weights.

Per CCD of each exposure, as Astro-WISE's ReduceTask: overscan (method ``oc``), the newest
valid BiasFrame of the chip and night, the newest valid MasterFlatFrame of chip, filter and
night (a DomeFlatFrame if there is none), the FringeFrame of a fringing filter scaled to
the exposure, hot and cold pixel maps, saturation and cosmic rays (L.A.Cosmic). Each
calibration file used is named in the log and recorded in the product's header and
results. A missing bias or flat stops the job before it is queued, naming the type, chip,
filter and night searched; missing fringe and pixel maps are warned about and skipped.

``dpu.run('Reduce', i='WFI', d='2000-04-28', f='#842', C=1)`` or
``dpu.run('Reduce', i='WFI', raw=['WFI.2000-04-29T01:00:00.000_1.fits'], C=1)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from awe.sequence import NoInputs, Option, SelectionContext, TaskContext, Unit, sequence
from sequences.imaging import (
    SELECTION,
    frame_input,
    product_keys,
    select_frames,
    stem,
    unit_key,
)

OPTIONS = [
    *SELECTION,
    Option("oc", "overscan", int, 6, help="overscan correction method 0-10 (as Bias; default 6)"),
    Option("raw", "raw_filenames", list, help="raw frames by file name (instead of d/o/f)"),
]
PARAMETERS = {
    "ReducedScienceFrame.process_params.REMOVE_COSMICS": True,
    "ReducedScienceFrame.process_params.COSMIC_SIGMA": 4.5,
    "ReducedScienceFrame.process_params.DEFRINGE": True,
}
#: (role, frame types tried in order, required)
CALIBRATIONS = (
    ("bias", ("BiasFrame",), True),
    ("flat", ("MasterFlatFrame", "DomeFlatFrame"), True),
    ("fringe", ("FringeFrame",), False),
    ("hot", ("HotPixelMap",), False),
    ("cold", ("ColdPixelMap",), False),
)


def select_raw(options: Mapping[str, Any], context: SelectionContext) -> list[Unit]:
    """Each CCD of each raw science or standard exposure, with its calibration files."""
    from awe.db import frames as types

    if not options.get("raw_filenames") and not options.get("date"):
        raise NoInputs("give a night (d='YYYY-MM-DD') or raw file names (raw=[...])")
    names = options.get("raw_filenames")
    raws = select_frames(types.RawScienceFrame, options, context, names)
    raws += select_frames(types.RawStandardFrame, options, context, names)
    if not raws:
        from sequences.imaging import describe_search

        raise NoInputs(f"searched {describe_search('RawScienceFrame', options)}: found none")
    root = context.env.data_root
    found: dict[tuple[str, str, str | None, str], Any] = {}
    missing: list[str] = []
    units = []
    for raw in sorted(raws, key=lambda f: (f.exposure_number or 0, f.chip or "")):
        inputs = [frame_input(raw, root, "raw")]
        for role, kinds, required in CALIBRATIONS:
            frame = _calibration(types, kinds, raw, context, found)
            if frame is not None:
                inputs.append(frame_input(frame, root, role))
            elif required:
                missing.append(_describe_missing(types, kinds, raw))
        units.append(Unit(key=unit_key(raw.chip, raw.exposure_number), inputs=tuple(inputs)))
    if missing:
        listing = "; ".join(dict.fromkeys(missing))
        hint = "make it first, e.g. with the Bias or MasterFlat sequence"
        raise NoInputs(f"no valid calibration: {listing}; {hint}")
    return units


def _calibration(types: Any, kinds: tuple[str, ...], raw: Any, context: SelectionContext, found):
    for kind in kinds:
        cls = getattr(types, kind)
        filt = raw.filter if cls.filter_dependent else None
        key = (kind, raw.chip, filt, str(raw.night))
        if key not in found:
            found[key] = cls.newest_valid(
                instrument=raw.instrument,
                chip=raw.chip,
                night=raw.night,
                filter=filt,
                database=context.database,
            )
        if found[key] is not None:
            return found[key]
    return None


def _describe_missing(types: Any, kinds: tuple[str, ...], raw: Any) -> str:
    dependent = getattr(types, kinds[0]).filter_dependent
    filt = f" filter {raw.filter}" if raw.filter and dependent else ""
    return f"{' or '.join(kinds)} for {raw.instrument} chip {raw.chip}{filt} night {raw.night}"


def read_image(path: str, dtype: Any = None) -> Any:
    from astropy.io import fits

    with fits.open(path, memmap=False) as hdul:
        data = hdul[0].data
        return data if dtype is None else data.astype(dtype, copy=False)


@sequence(
    options=OPTIONS,
    parameters=PARAMETERS,
    fan_out="chip",
    select=select_raw,
    estimate=5.0,
)
def Reduce(task: TaskContext) -> None:
    """Raw science frames to ReducedScienceFrames and WeightFrames, per CCD."""
    import numpy as np
    from astropy.io import fits

    from awe.data.instruments import get_instrument
    from awe.science.overscan import describe
    from awe.science.reduce import reduce_ccd
    from sequences.calibration_common import regions

    params = task.parameters
    instrument = get_instrument(task.options["instrument"])
    by_role = {i["role"]: i for i in task.unit.inputs}
    raw_input = by_role["raw"]
    keys = raw_input["keys"]
    task.log.info("Reducing %s (%s, chip %s)", raw_input["name"], keys["filter"], keys["chip"])
    with fits.open(raw_input["path"], memmap=False) as hdul:
        raw, header = hdul[0].data, hdul[0].header.copy()
    detector = instrument.detector.from_header(header)
    layout = regions(instrument, header)
    method = int(task.options.get("overscan", 6))
    task.log.info("Overscan correction %d: %s", method, describe(method))
    calibration = {}
    for role, kinds, _required in CALIBRATIONS:
        given = by_role.get(role)
        if given is None:
            what = " or ".join(kinds)
            task.log.warning("No valid %s for chip %s: not applied", what, keys["chip"])
            continue
        task.log.info("Using %s %s", given["frame_type"], given["name"])
        dtype = np.uint8 if role in ("hot", "cold") else np.float32
        calibration[role] = read_image(given["path"], dtype)
    if not params["ReducedScienceFrame.process_params.DEFRINGE"]:
        calibration.pop("fringe", None)
    amp = detector.amplifiers[0]
    reduced = reduce_ccd(
        raw,
        layout,
        bias=calibration.get("bias"),
        flat=calibration.get("flat"),
        fringe=calibration.get("fringe"),
        hot=calibration.get("hot"),
        cold=calibration.get("cold"),
        saturation=min(a.saturation for a in detector.amplifiers),
        gain=amp.gain,
        read_noise=amp.read_noise,
        overscan=method,
        cosmics=params["ReducedScienceFrame.process_params.REMOVE_COSMICS"],
        cosmic_sigma=params["ReducedScienceFrame.process_params.COSMIC_SIGMA"],
    )
    for name, value in reduced.stats.items():
        task.log.info("%s : %.4g", name, value)
    out_header = reduced_header(header, detector, keys, by_role)
    name = stem(raw_input["name"])
    image_path = task.work_dir / f"{name}.red.fits"
    weight_path = task.work_dir / f"{name}.weight.fits"
    fits.HDUList(
        [
            fits.PrimaryHDU(reduced.image, out_header),
            fits.ImageHDU(reduced.flags, name="FLAGS"),
        ]
    ).writeto(image_path, overwrite=True)
    fits.PrimaryHDU(reduced.weight, out_header).writeto(weight_path, overwrite=True)
    inputs = [i.get("frame_id") for i in task.unit.inputs]
    results = {"inputs": inputs, **reduced.stats}
    task.add_product(image_path, "ReducedScienceFrame", **product_keys(keys, results=results))
    task.add_product(weight_path, "WeightFrame", **product_keys(keys, results={"inputs": inputs}))


def reduced_header(header: Any, detector: Any, keys: Mapping[str, Any], by_role) -> Any:
    """The raw header for the trimmed image: sections dropped, the WCS reference pixel
    moved by the trim, AWE's keys (CHIPNAME, FILTER, ...) and the calibration files used."""
    out = header.copy()
    data = detector.data_section
    for card in list(out):
        if card.startswith(("DATASEC", "BIASSEC", "PRESEC", "TRIMSEC")):
            del out[card]
    for axis, offset in (("1", data.x1 - 1), ("2", data.y1 - 1)):
        if f"CRPIX{axis}" in out:
            out[f"CRPIX{axis}"] = out[f"CRPIX{axis}"] - offset
    out["CHIPNAME"] = keys["chip"]
    out["FILTER"] = keys["filter"] or ""
    out["AWEOBJ"] = (keys["object"] or "", "object as AWE keys it")
    out["AWETRIM"] = (str(data), "raw section this image was trimmed from")
    for role, label in (("bias", "BIAS"), ("flat", "FLAT"), ("fringe", "FRINGE")):
        if role in by_role:
            out[f"AWE{label[:5]}"] = by_role[role]["name"][:68]
    return out
