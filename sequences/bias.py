"""Bias and HotPixels: the master bias of each chip and the hot pixels it shows.

``dpu.run('Bias', i='WFI', d='2000-04-28', C=1)``: per chip, every usable raw bias of
the night is overscan-corrected per amplifier (``oc``, default 6), trimmed, and combined
by a sigma-clipped mean (``SIGMA_CLIP``); Astro-WISE's quality checks are applied and
logged with value and limit. ``dpu.run('HotPixels', i='WFI', d='2000-04-28', C=1)``: the
pixels of the newest valid BiasFrame more than ``THRESHOLD`` clipped standard deviations
above its median, as a HotPixelMap (1 good, 0 bad).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from awe.sequence import SelectionContext, TaskContext, Unit, sequence
from sequences import calibration_common as common

BIAS_PARAMETERS = {
    "BiasFrame.process_params.SIGMA_CLIP": 3.0,
    "BiasFrame.process_params.OVERSCAN_CORRECTION": 6,
    "BiasFrame.process_params.MAXIMUM_ABS_MEAN": 10.0,
    "BiasFrame.process_params.MAXIMUM_STDEV": 10.0,
    "BiasFrame.process_params.MAXIMUM_STDEV_DIFFERENCE": 10.0,
    "BiasFrame.process_params.MAXIMUM_SUBWIN_FLATNESS": 1e5,
    "BiasFrame.process_params.MAXIMUM_SUBWIN_STDEV": 1e5,
}
CHECKS = (
    "MAXIMUM_ABS_MEAN",
    "MAXIMUM_STDEV",
    "MAXIMUM_STDEV_DIFFERENCE",
    "MAXIMUM_SUBWIN_FLATNESS",
    "MAXIMUM_SUBWIN_STDEV",
)
MINIMUM_BIASES = 3


def overscan_method(task: TaskContext, parameter: str) -> int:
    """The ``oc`` option when given, else the process parameter (both default 6)."""
    from awe.science.overscan import describe

    option = task.options.get("overscan")
    method = int(option if option is not None else task.parameters[parameter])
    task.log.info("Overscan correction method %d: %s", method, describe(method))
    return method


def select_biases(options: Mapping[str, Any], context: SelectionContext) -> list[Unit]:
    """Per chip, the night's usable raw biases (at least 3), and the chip's previous
    master bias if there is one (for MAXIMUM_STDEV_DIFFERENCE)."""
    groups, bad = common.raw_groups(
        options, context, "RawBiasFrame", per_filter=False, minimum=MINIMUM_BIASES
    )
    store = common.store_of(context)

    def extra(chip: str, _filt: str | None) -> list[dict[str, Any]]:
        previous = previous_bias(context, options, chip)
        items = [common.note_input(bad, chip)]
        if previous is not None:
            items.append(common.frame_input(previous, store, "previous"))
        return items

    return [
        Unit(
            key=chip,
            inputs=(*(common.frame_input(f, store, "raw") for f in raws), *extra(chip, None)),
        )
        for (chip, _f), raws in groups.items()
    ]


def previous_bias(context: SelectionContext, options: Mapping[str, Any], chip: str) -> Any:
    """The newest valid BiasFrame of the chip from an earlier night, or None."""
    from datetime import date

    from sqlalchemy import select

    from awe.db.frames import BiasFrame

    night = date.fromisoformat(options["date"])
    query = (
        select(BiasFrame)
        .where(
            BiasFrame.instrument == options["instrument"],
            BiasFrame.chip == chip,
            BiasFrame.night < night,
            BiasFrame.is_valid.is_(True),
        )
        .order_by(BiasFrame.night.desc(), BiasFrame.created_at.desc())
        .limit(1)
    )
    with context.database.session() as session:
        return session.scalar(query)


@sequence(
    options=[common.INSTRUMENT, common.DATE, common.CHIP, common.OVERSCAN],
    parameters=BIAS_PARAMETERS,
    fan_out="chip",
    select=select_biases,
    estimate=5.0,
)
def Bias(task: TaskContext) -> None:
    """Master bias per CCD: overscan, trim, sigma-clipped mean of the night's raw biases."""
    from awe.data.instruments import get_instrument
    from awe.science.combine import clipped_mean
    from awe.science.quality import bias_checks, clipped_stats

    instrument = get_instrument(task.options["instrument"])
    parameters = task.parameters
    sigma = parameters["BiasFrame.process_params.SIGMA_CLIP"]
    method = overscan_method(task, "BiasFrame.process_params.OVERSCAN_CORRECTION")
    raws = common.inputs_with_role(task, "raw")
    common.log_left_out(task)
    task.log.info("Making BiasFrame for %s from %d raw biases", task.unit.key, len(raws))
    for item in raws:
        task.log.info("Using RawBiasFrame %s", item["name"])
    stack, _regions = common.read_stack(raws, instrument, method)
    task.log.info("Combining: sigma-clipped mean, SIGMA_CLIP %.1f", sigma)
    combined = clipped_mean(stack, sigma)
    del stack
    task.log.info(
        "Rejected %d values (%.3f%%)", combined.rejected, 100 * combined.rejected_fraction
    )
    previous = common.inputs_with_role(task, "previous")
    previous_stdev = None
    if previous:
        previous_stdev = clipped_stats(common.read_calibration(previous[0]["path"]))[1]
        task.log.info("Previous BiasFrame %s: stdev %.3f", previous[0]["name"], previous_stdev)
    limits = {name: parameters[f"BiasFrame.process_params.{name}"] for name in CHECKS}
    checks = bias_checks(combined.image, limits, previous_stdev, overscan_corrected=method != 0)
    mean, stdev = clipped_stats(combined.image)
    task.log.info("BiasFrame %s: mean %.3f ADU, stdev %.3f ADU", task.unit.key, mean, stdev)
    common.write_product(
        task,
        combined.image,
        "BiasFrame",
        instrument,
        chip=task.unit.key,
        filt=None,
        checks=checks,
        results={
            "mean": mean,
            "stdev": stdev,
            "overscan_correction": method,
            "frames": len(raws),
            "rejected_fraction": combined.rejected_fraction,
        },
        header={"OVERSCAN": (method, "overscan correction method"), "NCOMBINE": len(raws)},
        inputs=raws,
    )


HOT_PARAMETERS = {"HotPixelMap.process_params.THRESHOLD": 10.0}


def select_bias_frames(options: Mapping[str, Any], context: SelectionContext) -> list[Unit]:
    """Per chip, the newest valid BiasFrame covering the night."""
    return calibration_units(options, context, "BiasFrame", "bias")


def calibration_units(
    options: Mapping[str, Any],
    context: SelectionContext,
    type_name: str,
    role: str,
    filt: str | None = None,
) -> list[Unit]:
    """One unit per chip of the instrument (or the chip asked for) holding the newest
    valid ``type_name`` frame; NoInputs when no chip has one."""
    from awe.data.instruments import get_instrument
    from awe.sequence import NoInputs

    instrument = get_instrument(options["instrument"])
    chips = [options["chip"]] if options.get("chip") else [c.name for c in instrument.working_chips]
    units, missing = [], []
    for chip in chips:
        try:
            found = common.calibration_input(type_name, options, context, chip, filt, role)
        except NoInputs as err:
            missing.append(str(err))
            continue
        units.append(Unit(key=chip, inputs=(found,)))
    if not units:
        raise NoInputs(
            missing[0]
            if len(missing) == 1
            else f"{missing[0]} (and for {len(missing) - 1} more chips)"
        )
    return units


@sequence(
    options=[common.INSTRUMENT, common.DATE, common.CHIP, common.FLAGGED],
    parameters=HOT_PARAMETERS,
    fan_out="chip",
    select=select_bias_frames,
    estimate=2.0,
)
def HotPixels(task: TaskContext) -> None:
    """Hot pixel map per CCD (1 good, 0 bad) from the newest valid BiasFrame."""
    from awe.data.instruments import get_instrument
    from awe.science.pixels import hot_pixel_map

    instrument = get_instrument(task.options["instrument"])
    threshold = task.parameters["HotPixelMap.process_params.THRESHOLD"]
    (bias,) = common.inputs_with_role(task, "bias")
    task.log.info(
        "Using BiasFrame %s (made %s by job %s)", bias["name"], bias["created_at"], bias["job_id"]
    )
    good, facts = hot_pixel_map(common.read_calibration(bias["path"]), threshold)
    task.log.info(
        "Hot pixels of %s: %d above %.2f ADU (median %.2f + %.1f x stdev %.3f)",
        task.unit.key,
        facts["bad"],
        facts["limit"],
        facts["median"],
        threshold,
        facts["stdev"],
    )
    common.write_product(
        task,
        good,
        "HotPixelMap",
        instrument,
        chip=task.unit.key,
        filt=None,
        results={"hot_pixels": facts["bad"], "limit_adu": facts["limit"]},
        inputs=[bias],
    )
