"""QuickCheck: a first look at every raw frame of a night, one line per frame.

Per raw chip (biases, flats, science and standard frames; narrowed with ``f`` and ``o``):
the mean, median and rms (3-sigma clipped) of the overscan-corrected data section, the
fraction of saturated pixels, and a verdict against limits: PASS or FAIL with the reason.
Nothing is written to the database: the lines are in the job's log, and the numbers in a
JSON file in the task's folder.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from awe.sequence import NoInputs, SelectionContext, TaskContext, Unit, sequence
from sequences import calibration_common as common

PARAMETERS = {
    "QuickCheck.process_params.OVERSCAN_CORRECTION": 6,
    "QuickCheck.process_params.MAXIMUM_BIAS_STDEV": 10.0,
    "QuickCheck.process_params.MAXIMUM_ABS_BIAS_MEAN": 10.0,
    "QuickCheck.process_params.MINIMUM_FLAT_LEVEL": 1000.0,
    "QuickCheck.process_params.MAXIMUM_FLAT_LEVEL": 50000.0,
    "QuickCheck.process_params.MAXIMUM_SATURATED_FRACTION": 0.01,
}
RAW_TYPES = (
    "RawBiasFrame",
    "RawDomeFlatFrame",
    "RawTwilightFlatFrame",
    "RawStandardFrame",
    "RawScienceFrame",
)


def select_raw(options: Mapping[str, Any], context: SelectionContext) -> list[Unit]:
    """Per chip: every raw frame of the night (of the filter and object asked for)."""
    from awe.db.frames import frame_class
    from sequences.imaging import select_frames

    store = common.store_of(context)
    by_chip: dict[str, list[dict[str, Any]]] = {}
    for type_name in RAW_TYPES:
        cls = frame_class(type_name)
        if cls.filter_dependent is False and options.get("filter"):
            continue
        for frame in select_frames(cls, options, context):
            by_chip.setdefault(frame.chip, []).append(common.frame_input(frame, store, "raw"))
    if not by_chip:
        raise NoInputs(
            f"searched raw frames ({', '.join(RAW_TYPES)}) for "
            f"{common.describe_search('', options).strip()[4:]}: found none"
        )
    return [Unit(key=chip, inputs=tuple(items)) for chip, items in sorted(by_chip.items())]


def verdict(kind: str, stats: Any, p: Mapping[str, float], overscan: bool = True) -> list[str]:
    """Reasons a frame fails (empty: it passes)."""
    reasons = []
    if stats.saturated_fraction > p["MAXIMUM_SATURATED_FRACTION"]:
        reasons.append(
            f"saturated fraction {stats.saturated_fraction:.4f} > "
            f"{p['MAXIMUM_SATURATED_FRACTION']:g}"
        )
    if kind == "RawBiasFrame":
        if stats.rms > p["MAXIMUM_BIAS_STDEV"]:
            reasons.append(f"rms {stats.rms:.2f} > {p['MAXIMUM_BIAS_STDEV']:g} ADU")
        if overscan and abs(stats.mean) > p["MAXIMUM_ABS_BIAS_MEAN"]:
            reasons.append(f"|mean| {abs(stats.mean):.2f} > {p['MAXIMUM_ABS_BIAS_MEAN']:g} ADU")
    is_flat = kind in ("RawDomeFlatFrame", "RawTwilightFlatFrame")
    if is_flat and not p["MINIMUM_FLAT_LEVEL"] <= stats.median <= p["MAXIMUM_FLAT_LEVEL"]:
        reasons.append(
            f"level {stats.median:.0f} outside [{p['MINIMUM_FLAT_LEVEL']:g}, "
            f"{p['MAXIMUM_FLAT_LEVEL']:g}] ADU"
        )
    return reasons


@sequence(
    options=[
        common.INSTRUMENT,
        common.DATE,
        common.CHIP,
        common.FILTER,
        common.OBJECT,
        common.OVERSCAN,
    ],
    parameters=PARAMETERS,
    fan_out="chip",
    select=select_raw,
    estimate=3.0,
)
def QuickCheck(task: TaskContext) -> None:
    """Statistics and a pass/fail verdict for every raw frame, one line per frame."""
    from awe.data.instruments import get_instrument
    from awe.science.overscan import correct, trimmed_box
    from awe.science.quality import frame_statistics
    from sequences.bias import overscan_method

    instrument = get_instrument(task.options["instrument"])
    p = {key.rsplit(".", 1)[1]: value for key, value in task.parameters.items()}
    method = overscan_method(task, "QuickCheck.process_params.OVERSCAN_CORRECTION")
    rows, failed = [], 0
    task.log.info(
        "%-40s %-20s %9s %9s %7s %8s  verdict", "frame", "type", "mean", "median", "rms", "sat.frac"
    )
    for item in task.unit.inputs:
        raw, header = common.read_raw(item["path"])
        chip_regions = common.regions(instrument, header)
        data = correct(raw, chip_regions, method)
        saturation = min(a.saturation for a in instrument.detector.from_header(header).amplifiers)
        stats = frame_statistics(data, raw[trimmed_box(chip_regions)], saturation)
        reasons = verdict(item["type"], stats, p, overscan=method != 0)
        failed += bool(reasons)
        text = "PASS" if not reasons else "FAIL: " + "; ".join(reasons)
        task.log.info(
            "%-40s %-20s %9.2f %9.2f %7.2f %8.5f  %s",
            item["name"],
            item["type"],
            stats.mean,
            stats.median,
            stats.rms,
            stats.saturated_fraction,
            text,
        )
        rows.append(
            {
                "frame": item["name"],
                "frame_id": item["frame_id"],
                "type": item["type"],
                "mean": stats.mean,
                "median": stats.median,
                "rms": stats.rms,
                "saturated_fraction": stats.saturated_fraction,
                "passed": not reasons,
                "reasons": reasons,
            }
        )
    task.log.info(
        "QuickCheck of %s: %d frames, %d passed, %d failed",
        task.unit.key,
        len(rows),
        len(rows) - failed,
        failed,
    )
    path = (
        task.work_dir / f"QuickCheck_{instrument.name}_{task.options['date']}_{task.unit.key}.json"
    )
    path.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    task.log.info("The numbers are in %s", path)
