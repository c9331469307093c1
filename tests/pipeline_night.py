"""A small simulated WFI night for the image-pipeline tests, ingested, with calibration
frames made from the simulator's truth (not by the calibration sequences, so these tests
check the image pipeline alone): per chip a BiasFrame (the true overscan-corrected bias
structure), a MasterFlatFrame (the true flat), a FringeFrame for the fringing filter and
Hot/ColdPixelMaps, written as the calibration sequences write them (trimmed image in the
primary HDU, float32, maps uint8 with 1 good and 0 bad; INSTRUME, CHIPNAME, FILTER)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from awe.data.sim_chip import fringe_pattern
from awe.data.simulate import NightTruth, simulate_night

NIGHT = "2000-04-28"
FILTERS = ["#842", "#879"]
#: Two chips, three dithered science exposures per filter, one standard field per filter.
PLAN = {
    "bias": {"count": 1},
    "dome_flat": {"count": 1},
    "twilight_flat": {"count": 1},
    "science": {"count": 3},
    # scaled chips keep their star count; fewer keep the 1/64 area from being crowded
    "stars_per_chip": 40,
}
SCALE = 0.125

_made: dict[str, Path] = {}


def pipeline_night(base: Path) -> NightTruth:
    """The pipeline night, simulated once per test session."""
    if "night" not in _made:
        out = base / "pipeline-night-WFI"
        simulate_night("WFI", NIGHT, out, progress=False, scale=SCALE, filters=FILTERS, plan=PLAN)
        _made["night"] = out
    return NightTruth(_made["night"])


def true_calibration(truth: NightTruth, chip: str, filter_name: str | None) -> dict[str, Any]:
    """Arrays of the true calibration of a chip (trimmed to the data section)."""
    model = truth.chip_model(chip)
    instrument = truth.instrument
    result: dict[str, Any] = {
        "BiasFrame": model.overscan_corrected_bias(),
        "MasterFlatFrame": model.flat.astype(np.float32),
    }
    hot = np.ones((model.ny, model.nx), np.uint8)
    hot[model.hot] = 0
    cold = np.ones((model.ny, model.nx), np.uint8)
    cold[model.cold] = 0
    result["HotPixelMap"], result["ColdPixelMap"] = hot, cold
    if filter_name is not None:
        filt = instrument.filter(filter_name)
        if filt.fringe_amplitude:
            index = [f.name for f in instrument.filters].index(filt.name)
            result["FringeFrame"] = fringe_pattern(
                instrument, instrument.chip(chip), int(truth.night["seed"]), index
            ).astype(np.float32)
    return result


def add_true_calibration(truth: NightTruth, database: Any, data_root: str, chips) -> None:
    """Store and register the true calibration frames of ``chips`` for every filter."""
    from awe.data.store import DataStore
    from awe.db.frames import frame_class

    store = DataStore(data_root)
    folder = Path(data_root).parent / "calibration-truth"
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for chip in chips:
        for filter_name in FILTERS:
            for kind, array in true_calibration(truth, chip, filter_name).items():
                cls = frame_class(kind)
                filt = filter_name if cls.filter_dependent else None
                if not cls.filter_dependent and filter_name != FILTERS[0]:
                    continue
                header = fits.Header({"INSTRUME": "WFI", "CHIPNAME": chip, "FILTER": filt or ""})
                path = folder / f"{kind}_{chip}_{(filt or 'all').strip('#')}.fits"
                fits.PrimaryHDU(np.ascontiguousarray(array), header).writeto(path, overwrite=True)
                digest = store.put(path)
                rows.append(
                    cls(
                        filename=path.name,
                        sha256=digest,
                        size=path.stat().st_size,
                        instrument="WFI",
                        chip=chip,
                        filter=filt,
                        is_valid=True,
                    )
                )
    with database.session() as session:
        session.add_all(rows)


def reduce_with_truth(truth: NightTruth, file_name: str, chip: str, **options: Any):
    """A raw chip reduced by :func:`awe.science.reduce.reduce_ccd` with the true
    calibration (every map applied, fringes for a fringing filter)."""
    from awe.science.overscan import Region
    from awe.science.reduce import reduce_ccd

    with fits.open(truth.out / file_name) as hdul:
        raw, header = hdul[chip].data, hdul[chip].header
    detector = truth.instrument.detector.from_header(header)
    layout = [Region(a.data.slices, a.overscan.slices) for a in detector.amplifiers]
    entry = next(e for e in truth.exposures if e["file"] == file_name)
    calibration = true_calibration(truth, chip, entry["filter"])
    amp = detector.amplifiers[0]
    return reduce_ccd(
        raw,
        layout,
        bias=calibration["BiasFrame"],
        flat=calibration["MasterFlatFrame"],
        fringe=calibration.get("FringeFrame"),
        hot=calibration["HotPixelMap"],
        cold=calibration["ColdPixelMap"],
        gain=amp.gain,
        read_noise=amp.read_noise,
        **options,
    )


def ingested_night(base: Path, database: Any, chips=("ccd51",)) -> NightTruth:
    """The pipeline night ingested into ``database`` with the true calibration of
    ``chips`` registered (in the session's data store)."""
    from awe.data.ingestion import ingest
    from awe.data.store import DataStore
    from awe.env import load_env

    truth = pipeline_night(base)
    root = load_env().data_root
    report = ingest([truth.out], database=database, store=DataStore(root), progress=False)
    assert report.ok, report.summary()
    add_true_calibration(truth, database, root, chips)
    return truth


#: The standard field of the night observed twice at each of three times as it sets
#: (airmass about 1.14, 1.39 and 1.9), for Photcat and Photom; one science exposure.
STANDARDS_PLAN = PLAN | {
    "standard": {"count": 2, "exposure_time": 300.0, "hours": [8.0, 10.5, 11.75]},
    "science": {"count": 1},
    "stars_per_chip": 100,  # standard fields are chosen rich in stars
}


def standards_night(base: Path) -> NightTruth:
    """A night with standard fields at three airmasses, simulated once per test session."""
    if "standards" not in _made:
        out = base / "standards-night-WFI"
        simulate_night(
            "WFI", NIGHT, out, progress=False, scale=SCALE, filters=FILTERS[:1], plan=STANDARDS_PLAN
        )
        _made["standards"] = out
    return NightTruth(_made["standards"])


def ingested_standards_night(base: Path, database: Any, chips=("ccd51",)) -> NightTruth:
    """The standards night ingested, with the true calibration of ``chips`` registered."""
    from awe.data.ingestion import ingest
    from awe.data.store import DataStore
    from awe.env import load_env

    truth = standards_night(base)
    root = load_env().data_root
    report = ingest([truth.out], database=database, store=DataStore(root), progress=False)
    assert report.ok, report.summary()
    add_true_calibration(truth, database, root, chips)
    return truth
