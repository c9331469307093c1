"""A small simulated DECam archive for the SE tests: raw exposures, calibration, refcat."""

from __future__ import annotations

from pathlib import Path

from awe.data.des_archive import Archive, build_calibration_from_truth, stage_night
from awe.data.simulate import NightTruth, simulate_night

EXPOSURE, NITE, SCALE = 668439, "20170817", 0.1
ONLY_SCIENCE = {
    "bias": {"count": 0},
    "dome_flat": {"count": 0},
    "twilight_flat": {"count": 0},
    "standard": {"count": 0},
    "crosstalk": True,
}


def make_archive(
    base: Path, exposures: tuple[int, ...] = (EXPOSURE,)
) -> tuple[Archive, NightTruth]:
    """Simulated i-band DECam exposures (668439) at 1/10 scale, staged with their Y7
    calibration set (built from the truth) and reference catalogue."""
    night = base / "night"
    simulate_night(
        "DECam", "2017-08-17", night, scale=SCALE, exposures=list(exposures), filters=["i"],
        plan={**ONLY_SCIENCE, "science": {"count": len(exposures)}}, progress=False,
    )  # fmt: skip
    archive = Archive.at(base / "archive")
    stage_night(night, archive, NITE)
    build_calibration_from_truth(night, archive, "Y7")
    return archive, NightTruth(night)
