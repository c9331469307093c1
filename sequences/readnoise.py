"""ReadNoise: the read noise of each CCD from a pair of the night's raw biases.

As Astro-WISE's ReadNoiseTask: the difference of two biases holds no fixed bias structure,
only twice the read noise variance; its iteratively clipped rms divided by sqrt(2) is the
read noise (ADU). Bias level and row structure that drifted between the two exposures are
taken out of the difference row by row, with each row's median over the whole data
section (hundreds of pixels, so it adds almost no noise, unlike a median over a few
overscan columns), and the n/(n-1) factor restores the variance those medians remove.

``dpu.run('ReadNoise', i='WFI', d='2000-04-28', C=1)`` gives one ReadNoise frame per chip,
with ``results['read_noise']`` (ADU, the mean over amplifiers) and per amplifier values.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from awe.sequence import NoInputs, Option, SelectionContext, TaskContext, Unit, sequence

OPTIONS = [
    Option("i", "instrument", str, required=True, help="instrument, e.g. WFI"),
    Option("d", "date", str, required=True, help="observing night YYYY-MM-DD"),
    Option("c", "chip", str, help="one chip, e.g. ccd50 (default: all)"),
]
PARAMETERS = {
    "ReadNoise.process_params.MAXIMUM_ITERATIONS": 5,
    "ReadNoise.process_params.REJECTION_THRESHOLD": 5.0,
}


def select_bias_pairs(options: Mapping[str, Any], context: SelectionContext) -> list[Unit]:
    """The first two raw biases of the night, per chip."""
    from awe.data.store import DataStore
    from awe.db.frames import RawBiasFrame

    frames = RawBiasFrame.select(
        database=context.database,
        instrument=options["instrument"],
        date=options["date"],
        chip=options.get("chip"),
    )
    by_chip: dict[str, list[Any]] = defaultdict(list)
    for frame in frames:
        by_chip[frame.chip].append(frame)
    store = DataStore(context.env.data_root)
    units = [
        Unit(
            key=chip,
            inputs=tuple(frame.as_input(store) for frame in pair[:2]),
        )
        for chip, pair in sorted(by_chip.items())
        if len(pair) >= 2
    ]
    if not units:
        chips = f" chip {options['chip']}" if options.get("chip") else ""
        raise NoInputs(
            f"searched RawBiasFrame for {options['instrument']}{chips} on night "
            f"{options['date']}: found {len(frames)}, a chip needs 2"
        )
    return units


def amplifier_differences(first: Any, second: Any, header: Any, instrument: Any) -> list:
    """(amplifier, difference of the two images in its data section, rows levelled)."""
    import numpy as np

    detector = instrument.detector.from_header(header)
    differences = []
    for amp in detector.amplifiers:
        difference = first[amp.data.slices] - second[amp.data.slices]
        levelled = difference - np.median(difference, axis=1, keepdims=True)
        columns = levelled.shape[1]
        differences.append((amp.name, levelled * np.sqrt(columns / (columns - 1))))
    return differences


def clipped_rms(values: Any, iterations: int, threshold: float) -> tuple[float, float, float]:
    """(rms, mean, median) after iterative ``threshold``-sigma clipping."""
    from astropy.stats import sigma_clipped_stats

    mean, median, std = sigma_clipped_stats(values, sigma=threshold, maxiters=iterations)
    return float(std), float(mean), float(median)


@sequence(
    options=OPTIONS,
    parameters=PARAMETERS,
    fan_out="chip",
    select=select_bias_pairs,
    estimate=2.0,
)
def ReadNoise(task: TaskContext) -> None:
    """Read noise per CCD (ADU) from the difference of two raw biases."""
    import numpy as np
    from astropy.io import fits

    from awe.data.instruments import get_instrument

    instrument = get_instrument(task.options["instrument"])
    iterations = task.parameters["ReadNoise.process_params.MAXIMUM_ITERATIONS"]
    threshold = task.parameters["ReadNoise.process_params.REJECTION_THRESHOLD"]
    task.log.info("Making ReadNoise object")
    images = []
    for bias in task.unit.inputs:
        task.log.info("Using RawBiasFrame %s", bias["name"])
        with fits.open(bias["path"]) as hdul:
            images.append((hdul[0].data.astype(np.float64), hdul[0].header))
    (first, header), (second, _) = images
    task.log.info("Computing difference...")
    task.log.info("Estimating rms iteratively...")
    task.log.info("Maximum number of iterations : %d", iterations)
    task.log.info("Rejection threshold : %.1f (sigma)", threshold)
    level = float(np.mean(second) - np.mean(first))
    task.log.info("Difference between biases is : %.3f (mean level, ADU)", level)
    per_amplifier = {}
    for name, difference in amplifier_differences(first, second, header, instrument):
        rms, _mean, _median = clipped_rms(difference, iterations, threshold)
        per_amplifier[name] = rms / np.sqrt(2.0)
    read_noise = float(np.mean(list(per_amplifier.values())))
    task.log.info("The read noise (ADU) for ccd %s is : %.2f", task.unit.key, read_noise)
    out = fits.PrimaryHDU()
    out.header["INSTRUME"] = instrument.name
    out.header["CHIPNAME"] = task.unit.key
    out.header["READNOIS"] = (read_noise, "read noise (ADU)")
    path = task.work_dir / f"ReadNoise_{instrument.name}_{task.unit.key}.fits"
    out.writeto(path, overwrite=True)
    task.add_product(
        path,
        "ReadNoise",
        instrument=instrument.name,
        chip=task.unit.key,
        night=task.options["date"],
        results={
            "read_noise": read_noise,
            "per_amplifier": per_amplifier,
            "inputs": [bias["frame_id"] for bias in task.unit.inputs],
        },
    )
