"""DomeFlat, TwilightFlat, ColdPixels and MasterFlat: the flat-field pipeline per chip and
filter.

``NightSkyFlat``: the same from the night's dithered science frames (``o`` selects the
object), sources masked, the median of the normalised frames.
``FringeFlat``: the fringe pattern of a red filter from the same frames, bias-subtracted
and divided by the newest valid MasterFlatFrame, as a fraction of the sky, with its
amplitude.
``DomeFlat``/``TwilightFlat``: the night's raw flats of a chip and filter are overscan-
corrected, trimmed, the newest valid BiasFrame of the chip subtracted (named in the log),
each normalised by its median, combined by a sigma-clipped mean and normalised again.
Raw flats whose level is outside [MINIMUM_LEVEL, MAXIMUM_LEVEL] are left out and logged.
``ColdPixels``: pixels of the newest valid DomeFlatFrame that deviate from its large-scale
shape. ``MasterFlat``: the DomeFlatFrame's small scales times the large scales of the
TwilightFlatFrame (the NightSkyFlatFrame when the night has no twilight flat), smoothed on
``SMOOTHING_SCALE`` pixels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from awe.sequence import NoInputs, SelectionContext, TaskContext, Unit, sequence
from sequences import calibration_common as common

FLAT_OPTIONS = [
    common.INSTRUMENT,
    common.DATE,
    common.CHIP,
    common.FILTER,
    common.OVERSCAN,
    common.FLAGGED,
]
MINIMUM_FLATS = 2


def flat_parameters(kind: str, minimum: float, maximum: float) -> dict[str, Any]:
    return {
        f"{kind}.process_params.SIGMA_CLIP": 3.0,
        f"{kind}.process_params.MINIMUM_LEVEL": minimum,
        f"{kind}.process_params.MAXIMUM_LEVEL": maximum,
        f"{kind}.process_params.MAXIMUM_STDEV": 0.2,
        f"{kind}.process_params.MAXIMUM_SUBWIN_FLATNESS": 0.5,
    }


def select_flats(raw_type: str, flat: bool = False):
    """A select function: per chip and filter the night's usable raw frames of
    ``raw_type`` (at least 2), the newest valid BiasFrame of the chip, and with ``flat``
    the newest valid MasterFlatFrame of the chip and filter."""

    def select(options: Mapping[str, Any], context: SelectionContext) -> list[Unit]:
        groups, bad = common.raw_groups(
            options, context, raw_type, per_filter=True, minimum=MINIMUM_FLATS
        )
        common.one_filter_in_a_chain(context, [filt for _chip, filt in groups])
        store = common.store_of(context)
        biases: dict[str, Any] = {}
        for chip, _filt in groups:
            if chip not in biases:
                biases[chip] = common.calibration_input(
                    "BiasFrame", options, context, chip, None, "bias"
                )

        def extra(chip: str, filt: str | None) -> list[dict[str, Any]]:
            items = [biases[chip], common.note_input(bad, chip)]
            if flat:
                master = common.calibration_input(
                    "MasterFlatFrame", options, context, chip, filt, "flat"
                )
                items.append(master)
            return items

        return [
            Unit(
                key=common.unit_key(chip, filt, groups),
                inputs=(*(common.frame_input(f, store, "raw") for f in raws), *extra(chip, filt)),
            )
            for (chip, filt), raws in groups.items()
        ]

    select.__doc__ = f"Per chip and filter: the night's {raw_type}s and the newest BiasFrame."
    return select


def make_flat(task: TaskContext, kind: str, raw_type: str) -> None:
    """The body of DomeFlat and TwilightFlat."""
    import numpy as np

    from awe.data.instruments import get_instrument
    from awe.science.flat import combine_flats, level
    from awe.science.quality import flat_checks

    instrument = get_instrument(task.options["instrument"])
    p = {key.rsplit(".", 1)[1]: value for key, value in task.parameters.items()}
    raws = common.inputs_with_role(task, "raw")
    (bias,) = common.inputs_with_role(task, "bias")
    method = common.matching_overscan(task, bias)
    chip, filt = raws[0]["chip"], raws[0]["filter"]
    common.log_left_out(task)
    task.log.info("Making %s for %s filter %s", kind, chip, filt)
    task.log.info(
        "Using BiasFrame %s (made %s by job %s)", bias["name"], bias["created_at"], bias["job_id"]
    )
    master_bias = common.read_calibration(bias["path"]).astype(np.float32)
    stack, _regions = common.read_stack(raws, instrument, method, bias=master_bias)
    keep = []
    for index, item in enumerate(raws):
        value = level(stack[index])
        inside = p["MINIMUM_LEVEL"] <= value <= p["MAXIMUM_LEVEL"]
        task.log.info(
            "%s %s %s: level %.1f ADU%s",
            "Using" if inside else "Not using",
            raw_type,
            item["name"],
            value,
            "" if inside else f" outside [{p['MINIMUM_LEVEL']:g}, {p['MAXIMUM_LEVEL']:g}]",
        )
        if inside:
            keep.append(index)
    if len(keep) < MINIMUM_FLATS:
        raise NoInputs(
            f"only {len(keep)} {raw_type} of {chip} filter {filt} on night "
            f"{task.options['date']} has a level inside [{p['MINIMUM_LEVEL']:g}, "
            f"{p['MAXIMUM_LEVEL']:g}] ADU; a flat needs {MINIMUM_FLATS}"
        )
    if len(keep) < len(raws):
        stack = stack[keep]
    task.log.info(
        "Combining %d flats: normalised, sigma-clipped mean, SIGMA_CLIP %.1f",
        len(keep),
        p["SIGMA_CLIP"],
    )
    combined, levels = combine_flats(stack, p["SIGMA_CLIP"])
    del stack
    checks = flat_checks(combined.image, p)
    used = [raws[i] for i in keep]
    common.write_product(
        task,
        combined.image,
        kind,
        instrument,
        chip=chip,
        filt=filt,
        checks=checks,
        results={
            "levels": levels,
            "frames": len(used),
            "overscan_correction": method,
            "rejected_fraction": combined.rejected_fraction,
            "bias": bias["frame_id"],
        },
        header={"OVERSCAN": (method, "overscan correction method"), "NCOMBINE": len(used)},
        inputs=[*used, bias],
    )


@sequence(
    options=FLAT_OPTIONS,
    parameters=flat_parameters("DomeFlatFrame", 1000.0, 50000.0),
    fan_out="chip",
    select=select_flats("RawDomeFlatFrame"),
    estimate=5.0,
)
def DomeFlat(task: TaskContext) -> None:
    """Master dome flat per CCD and filter: bias-subtracted, normalised, clipped stack."""
    make_flat(task, "DomeFlatFrame", "RawDomeFlatFrame")


@sequence(
    options=FLAT_OPTIONS,
    parameters=flat_parameters("TwilightFlatFrame", 1000.0, 50000.0),
    fan_out="chip",
    select=select_flats("RawTwilightFlatFrame"),
    estimate=5.0,
)
def TwilightFlat(task: TaskContext) -> None:
    """Master twilight flat per CCD and filter: the sky's large-scale illumination."""
    make_flat(task, "TwilightFlatFrame", "RawTwilightFlatFrame")


# ---- NightSkyFlat -------------------------------------------------------------------------
NIGHT_SKY_PARAMETERS = {
    "NightSkyFlatFrame.process_params.DETECTION_THRESHOLD": 3.0,
    "NightSkyFlatFrame.process_params.MASK_GROWTH": 2,
    "NightSkyFlatFrame.process_params.MINIMUM_LEVEL": 10.0,
}


@sequence(
    options=[*FLAT_OPTIONS, common.OBJECT],
    parameters=NIGHT_SKY_PARAMETERS,
    fan_out="chip",
    select=select_flats("RawScienceFrame"),
    estimate=8.0,
)
def NightSkyFlat(task: TaskContext) -> None:
    """Night-sky flat per CCD and filter from the night's dithered science frames, with
    their sources masked."""
    import numpy as np

    from awe.data.instruments import get_instrument
    from awe.science.flat import night_sky_flat

    instrument = get_instrument(task.options["instrument"])
    p = {key.rsplit(".", 1)[1]: value for key, value in task.parameters.items()}
    raws = common.inputs_with_role(task, "raw")
    (bias,) = common.inputs_with_role(task, "bias")
    method = common.matching_overscan(task, bias)
    chip, filt = raws[0]["chip"], raws[0]["filter"]
    common.log_left_out(task)
    task.log.info(
        "Making NightSkyFlatFrame for %s filter %s from %d science frames", chip, filt, len(raws)
    )
    task.log.info(
        "Using BiasFrame %s (made %s by job %s)", bias["name"], bias["created_at"], bias["job_id"]
    )
    for item in raws:
        task.log.info("Using RawScienceFrame %s", item["name"])
    master_bias = common.read_calibration(bias["path"]).astype(np.float32)
    stack, _regions = common.read_stack(raws, instrument, method, bias=master_bias)
    task.log.info(
        "Masking sources above %.1f sigma, grown by %d pixels; median of the unmasked values",
        p["DETECTION_THRESHOLD"],
        p["MASK_GROWTH"],
    )
    flat, levels, masked = night_sky_flat(stack, p["DETECTION_THRESHOLD"], int(p["MASK_GROWTH"]))
    del stack
    task.log.info(
        "Sky levels %s ADU; %.2f%% of the pixels masked",
        ", ".join(f"{v:.1f}" for v in levels),
        100 * masked,
    )
    low = [
        item["name"] for item, value in zip(raws, levels, strict=True) if value < p["MINIMUM_LEVEL"]
    ]
    if low:
        raise NoInputs(
            f"the sky of {', '.join(low)} is below MINIMUM_LEVEL {p['MINIMUM_LEVEL']:g} ADU: "
            f"too dark for a night-sky flat"
        )
    common.write_product(
        task,
        flat,
        "NightSkyFlatFrame",
        instrument,
        chip=chip,
        filt=filt,
        results={
            "levels": levels,
            "frames": len(raws),
            "masked_fraction": masked,
            "overscan_correction": method,
            "bias": bias["frame_id"],
        },
        header={"OVERSCAN": (method, "overscan correction method"), "NCOMBINE": len(raws)},
        inputs=[*raws, bias],
    )


# ---- FringeFlat ---------------------------------------------------------------------------
FRINGE_PARAMETERS = {
    "FringeFrame.process_params.DETECTION_THRESHOLD": 3.0,
    "FringeFrame.process_params.MASK_GROWTH": 2,
}


@sequence(
    options=[*FLAT_OPTIONS, common.OBJECT],
    parameters=FRINGE_PARAMETERS,
    fan_out="chip",
    select=select_flats("RawScienceFrame", flat=True),
    estimate=8.0,
)
def FringeFlat(task: TaskContext) -> None:
    """Fringe frame per CCD and (red) filter from the night's dithered science frames,
    with its amplitude (a fraction of the sky)."""
    import numpy as np

    from awe.data.instruments import get_instrument
    from awe.science.fringe import fringe_frame

    instrument = get_instrument(task.options["instrument"])
    p = {key.rsplit(".", 1)[1]: value for key, value in task.parameters.items()}
    raws = common.inputs_with_role(task, "raw")
    (bias,) = common.inputs_with_role(task, "bias")
    (flat,) = common.inputs_with_role(task, "flat")
    method = common.matching_overscan(task, bias)
    chip, filt = raws[0]["chip"], raws[0]["filter"]
    common.log_left_out(task)
    task.log.info(
        "Making FringeFrame for %s filter %s from %d science frames", chip, filt, len(raws)
    )
    for item in (bias, flat):
        task.log.info(
            "Using %s %s (made %s by job %s)",
            item["type"],
            item["name"],
            item["created_at"],
            item["job_id"],
        )
    for item in raws:
        task.log.info("Using RawScienceFrame %s", item["name"])
    master_bias = common.read_calibration(bias["path"]).astype(np.float32)
    stack, _regions = common.read_stack(raws, instrument, method, bias=master_bias)
    stack /= common.read_calibration(flat["path"]).astype(np.float32)
    pattern, amplitude, skies = fringe_frame(stack, p["DETECTION_THRESHOLD"], int(p["MASK_GROWTH"]))
    del stack
    task.log.info("Sky levels %s ADU", ", ".join(f"{v:.1f}" for v in skies))
    task.log.info(
        "The fringe amplitude for ccd %s filter %s is : %.4f of the sky", chip, filt, amplitude
    )
    common.write_product(
        task,
        pattern,
        "FringeFrame",
        instrument,
        chip=chip,
        filt=filt,
        results={
            "amplitude": amplitude,
            "levels": skies,
            "frames": len(raws),
            "bias": bias["frame_id"],
            "flat": flat["frame_id"],
        },
        header={
            "FRNGAMP": (amplitude, "fringe amplitude, fraction of the sky"),
            "NCOMBINE": len(raws),
            "OVERSCAN": (method, "overscan correction method"),
        },
        inputs=[*raws, bias, flat],
    )


# ---- ColdPixels ---------------------------------------------------------------------------
COLD_PARAMETERS = {
    "ColdPixelMap.process_params.THRESHOLD_LOW": 0.8,
    "ColdPixelMap.process_params.THRESHOLD_HIGH": 1.2,
    "ColdPixelMap.process_params.SMOOTHING_SCALE": 64,
}


def calibration_units_per_filter(
    options: Mapping[str, Any], context: SelectionContext, needs: Mapping[str, tuple[str, ...]]
) -> list[Unit]:
    """Per chip and filter: for each role in ``needs`` the newest valid frame of the first
    of its types that has one. The filters are the one asked for, or the night's."""
    from awe.data.instruments import get_instrument

    instrument = get_instrument(options["instrument"])
    chips = [options["chip"]] if options.get("chip") else [c.name for c in instrument.working_chips]
    filters = [options["filter"]] if options.get("filter") else night_filters(options, context)
    common.one_filter_in_a_chain(context, filters)
    units, missing = [], []
    for filt in filters:
        for chip in chips:
            try:
                inputs = tuple(
                    _first(types, options, context, chip, filt, role)
                    for role, types in needs.items()
                )
            except NoInputs as err:
                missing.append(str(err))
                continue
            key = chip if len(filters) == 1 else f"{chip} {filt}"
            units.append(Unit(key=key, inputs=inputs))
    if not units:
        more = f" (and {len(missing) - 1} more like it)" if len(missing) > 1 else ""
        raise NoInputs((missing[0] if missing else "no chips") + more)
    return units


def _first(
    types: tuple[str, ...],
    options: Mapping[str, Any],
    context: SelectionContext,
    chip: str,
    filt: str | None,
    role: str,
) -> dict[str, Any]:
    """As input ``role``: the frame of these types that the chain's step before makes,
    else the newest valid frame of the first type that has one (NoInputs names the first)."""
    made_before = [t for t in types if common.made_by(t) == context.previous_step]
    problem = None
    for type_name in made_before or types:
        try:
            return common.calibration_input(type_name, options, context, chip, filt, role)
        except NoInputs as err:
            problem = problem or err
    raise problem


def night_filters(options: Mapping[str, Any], context: SelectionContext) -> list[str]:
    """The filters of the night's raw dome and twilight flats."""
    from awe.db.frames import RawDomeFlatFrame, RawTwilightFlatFrame

    found = set()
    for cls in (RawDomeFlatFrame, RawTwilightFlatFrame):
        for frame in cls.select(
            database=context.database,
            instrument=options["instrument"],
            date=options["date"],
            chip=options.get("chip"),
        ):
            if frame.filter:
                found.add(frame.filter)
    if not found:
        raise NoInputs(
            f"no filter given (f=...) and no raw flats for {options['instrument']} on night "
            f"{options['date']} to take the filters from"
        )
    return sorted(found)


@sequence(
    options=[common.INSTRUMENT, common.DATE, common.CHIP, common.FILTER, common.FLAGGED],
    parameters=COLD_PARAMETERS,
    fan_out="chip",
    select=lambda options, context: calibration_units_per_filter(
        options, context, {"dome": ("DomeFlatFrame",)}
    ),
    estimate=2.0,
)
def ColdPixels(task: TaskContext) -> None:
    """Cold pixel map per CCD and filter (1 good, 0 bad) from the newest DomeFlatFrame."""
    from awe.data.instruments import get_instrument
    from awe.science.pixels import cold_pixel_map

    instrument = get_instrument(task.options["instrument"])
    p = {key.rsplit(".", 1)[1]: value for key, value in task.parameters.items()}
    (dome,) = common.inputs_with_role(task, "dome")
    task.log.info(
        "Using DomeFlatFrame %s (made %s by job %s)",
        dome["name"],
        dome["created_at"],
        dome["job_id"],
    )
    good, facts = cold_pixel_map(
        common.read_calibration(dome["path"]),
        p["THRESHOLD_LOW"],
        p["THRESHOLD_HIGH"],
        int(p["SMOOTHING_SCALE"]),
    )
    task.log.info(
        "Cold pixels of %s filter %s: %d outside [%.2f, %.2f] of the local flat level",
        dome["chip"],
        dome["filter"],
        facts["bad"],
        facts["low"],
        facts["high"],
    )
    common.write_product(
        task,
        good,
        "ColdPixelMap",
        instrument,
        chip=dome["chip"],
        filt=dome["filter"],
        results={"cold_pixels": facts["bad"]},
        inputs=[dome],
    )


# ---- MasterFlat ---------------------------------------------------------------------------
MASTER_PARAMETERS = {
    "MasterFlatFrame.process_params.SMOOTHING_SCALE": 64,
    "MasterFlatFrame.process_params.MAXIMUM_STDEV": 0.2,
    "MasterFlatFrame.process_params.MAXIMUM_SUBWIN_FLATNESS": 0.5,
}


def select_master_inputs(options: Mapping[str, Any], context: SelectionContext) -> list[Unit]:
    """Per chip and filter: the newest DomeFlatFrame, and the newest TwilightFlatFrame
    (a NightSkyFlatFrame when there is no twilight flat)."""
    return calibration_units_per_filter(
        options,
        context,
        {"dome": ("DomeFlatFrame",), "sky": ("TwilightFlatFrame", "NightSkyFlatFrame")},
    )


@sequence(
    options=[common.INSTRUMENT, common.DATE, common.CHIP, common.FILTER, common.FLAGGED],
    parameters=MASTER_PARAMETERS,
    fan_out="chip",
    select=select_master_inputs,
    estimate=3.0,
)
def MasterFlat(task: TaskContext) -> None:
    """Master flat per CCD and filter: dome flat small scales, sky flat large scales."""
    import numpy as np

    from awe.data.instruments import get_instrument
    from awe.science.flat import master_flat
    from awe.science.quality import flat_checks

    instrument = get_instrument(task.options["instrument"])
    p = {key.rsplit(".", 1)[1]: value for key, value in task.parameters.items()}
    (dome,) = common.inputs_with_role(task, "dome")
    (sky,) = common.inputs_with_role(task, "sky")
    for item in (dome, sky):
        task.log.info(
            "Using %s %s (made %s by job %s)",
            item["type"],
            item["name"],
            item["created_at"],
            item["job_id"],
        )
    scale = int(p["SMOOTHING_SCALE"])
    task.log.info("Large scales from the %s, smoothed on %d pixels", sky["type"], scale)
    flat, correction = master_flat(
        common.read_calibration(dome["path"]).astype(np.float32),
        common.read_calibration(sky["path"]).astype(np.float32),
        scale,
    )
    task.log.info(
        "Large-scale correction of the dome flat: %.4f to %.4f",
        float(correction.min()),
        float(correction.max()),
    )
    common.write_product(
        task,
        flat,
        "MasterFlatFrame",
        instrument,
        chip=dome["chip"],
        filt=dome["filter"],
        checks=flat_checks(flat, p),
        results={
            "dome_flat": dome["frame_id"],
            "sky_flat": sky["frame_id"],
            "sky_flat_type": sky["type"],
            "smoothing_scale": scale,
        },
        inputs=[dome, sky],
    )
