"""Gain: the gain (e-/ADU) of each amplifier by photon transfer, and the linearity of the
response, from the night's dome flats taken in pairs of equal exposure time.

``dpu.run('Gain', i='WFI', d='2000-04-28', C=1)`` gives one GainLinearity frame per chip
with ``results['gain']`` (mean over amplifiers), per amplifier gain, read noise and
linearity coefficient, and the photon-transfer points. Flats of one filter are used (the
``f`` option, or the filter with the most exposure levels); the newest valid BiasFrame of
the chip is subtracted first.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from awe.sequence import NoInputs, SelectionContext, TaskContext, Unit, sequence
from sequences import calibration_common as common

PARAMETERS = {
    "GainLinearity.process_params.MAXIMUM_LEVEL": 40000.0,
}


def select_pairs(options: Mapping[str, Any], context: SelectionContext) -> list[Unit]:
    """Per chip: the dome flats of one filter that come in pairs of equal exposure time,
    and the newest valid BiasFrame."""
    groups, bad = common.raw_groups(
        options, context, "RawDomeFlatFrame", per_filter=True, minimum=2
    )
    by_chip: dict[str, dict[str | None, list[Any]]] = defaultdict(dict)
    for (chip, filt), frames in groups.items():
        by_chip[chip][filt] = frames
    store = common.store_of(context)
    units = []
    for chip, filters in sorted(by_chip.items()):
        filt, frames = max(filters.items(), key=lambda item: (_levels(item[1]), item[0] or ""))
        pairs = _pairs(frames)
        if not pairs:
            continue
        bias = common.newest_calibration("BiasFrame", options, context, chip)
        inputs = [common.frame_input(f, store, "raw") for pair in pairs for f in pair]
        inputs += [common.frame_input(bias, store, "bias"), common.note_input(bad, chip)]
        units.append(Unit(key=chip, inputs=tuple(inputs)))
    if not units:
        raise NoInputs(
            f"searched {common.describe_search('RawDomeFlatFrame', options)}: no chip has "
            f"two dome flats of one filter with the same exposure time (a pair)"
        )
    return units


def _levels(frames: list[Any]) -> int:
    return len({round(f.exposure_time or 0.0, 3) for f in frames})


def _pairs(frames: list[Any]) -> list[tuple[Any, Any]]:
    by_time: dict[float, list[Any]] = defaultdict(list)
    for frame in frames:
        by_time[round(frame.exposure_time or 0.0, 3)].append(frame)
    pairs = []
    for _time, group in sorted(by_time.items()):
        for first, second in zip(group[0::2], group[1::2], strict=False):
            pairs.append((first, second))
    return pairs


@sequence(
    options=[
        common.INSTRUMENT,
        common.DATE,
        common.CHIP,
        common.FILTER,
        common.OVERSCAN,
        common.FLAGGED,
    ],
    parameters=PARAMETERS,
    fan_out="chip",
    select=select_pairs,
    estimate=5.0,
)
def Gain(task: TaskContext) -> None:
    """Gain (e-/ADU) per amplifier by photon transfer, and linearity, from dome-flat pairs."""
    import numpy as np

    from awe.data.instruments import get_instrument
    from awe.science.gain import fit_gain, pair_point

    instrument = get_instrument(task.options["instrument"])
    maximum = task.parameters["GainLinearity.process_params.MAXIMUM_LEVEL"]
    raws = common.inputs_with_role(task, "raw")
    (bias,) = common.inputs_with_role(task, "bias")
    method = common.matching_overscan(task, bias)
    common.log_left_out(task)
    task.log.info(
        "Using BiasFrame %s (made %s by job %s)", bias["name"], bias["created_at"], bias["job_id"]
    )
    master_bias = common.read_calibration(bias["path"]).astype(np.float32)
    stack, regions = common.read_stack(raws, instrument, method, bias=master_bias)
    y0 = min(r.data[0].start for r in regions)
    x0 = min(r.data[1].start for r in regions)
    names = [amp.name for amp in instrument.detector.amplifiers]
    per_amplifier: dict[str, Any] = {}
    for name, region in zip(names, regions, strict=True):
        rows = slice(region.data[0].start - y0, region.data[0].stop - y0)
        cols = slice(region.data[1].start - x0, region.data[1].stop - x0)
        points = []
        for index in range(0, len(raws), 2):
            first, second = raws[index], raws[index + 1]
            point = pair_point(
                stack[index][rows, cols], stack[index + 1][rows, cols], first["exposure_time"]
            )
            task.log.info(
                "Amplifier %s pair %s + %s (%.1f s): signal %.1f ADU, variance %.2f ADU^2",
                name,
                first["name"],
                second["name"],
                point.exposure_time,
                point.signal,
                point.variance,
            )
            points.append(point)
        fit = fit_gain(points, maximum)
        task.log.info(
            "Amplifier %s: gain %.4f e-/ADU, read noise %.2f ADU (intercept), linearity "
            "%.3g per ADU (%.2f%% below linear at the highest level)",
            name,
            fit.gain,
            fit.read_noise_adu,
            fit.linearity,
            -100 * fit.nonlinearity_at_max,
        )
        per_amplifier[name] = {
            "gain": fit.gain,
            "read_noise_adu": fit.read_noise_adu,
            "linearity": fit.linearity,
            "nonlinearity_at_max": fit.nonlinearity_at_max,
            "points": [[p.exposure_time, p.signal, p.variance] for p in points],
        }
    gain = float(np.mean([v["gain"] for v in per_amplifier.values()]))
    task.log.info("The gain (e-/ADU) for ccd %s is : %.4f", task.unit.key, gain)
    common.write_product(
        task,
        np.array([[gain]], dtype=np.float32),
        "GainLinearity",
        instrument,
        chip=task.unit.key,
        filt=None,
        results={"gain": gain, "per_amplifier": per_amplifier, "filter": raws[0]["filter"]},
        header={"GAIN": (gain, "e-/ADU, mean over amplifiers")},
        inputs=[*raws, bias],
    )
