"""Small simulated nights shared by the data tests: each is simulated once per test session
(the simulator is deterministic, so sharing loses nothing) into pytest's temporary folder.

Small plans and scaled chips keep them fast; each still holds every frame type the
instrument's night has, so ingest and truth checks see the real variety.
"""

from __future__ import annotations

from pathlib import Path

from awe.data.simulate import NightTruth, simulate_night

#: One or two exposures of each kind: every frame type, few files.
TINY_PLAN = {
    "bias": {"count": 2},
    "dome_flat": {"count": 1},
    "twilight_flat": {"count": 1},
    "science": {"count": 1},
}

NIGHTS = {
    # WFI at 1/8 (chips of 256 x 512 data pixels): enough pixels for 2% noise checks,
    # a blue and a red (fringing) filter.
    "WFI": dict(
        night="2000-04-28",
        scale=0.125,
        filters=["#842", "#879"],
        plan={
            "bias": {"count": 3},
            "dome_flat": {"count": 2},
            "twilight_flat": {"count": 2},
            "science": {"count": 2},
        },
    ),
    "OmegaCAM": dict(night="2017-10-01", scale=0.0625, filters=["OCAM_r_SDSS"], plan=TINY_PLAN),
    "DECam": dict(
        night="2017-08-17",
        scale=0.0625,
        filters=["z"],
        # astropy's .fz writing is slow; test_data_cli covers .fz
        plan={**TINY_PLAN, "compress": False},
    ),
}

_made: dict[str, Path] = {}


def simulated_night(base: Path, instrument: str) -> NightTruth:
    """The small night of ``instrument``, simulated on first use under ``base``."""
    if instrument not in _made:
        spec = dict(NIGHTS[instrument])
        out = base / f"night-{instrument}"
        simulate_night(instrument, spec.pop("night"), out, progress=False, **spec)
        _made[instrument] = out
    return NightTruth(_made[instrument])
