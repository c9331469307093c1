"""The calibration overview at the prompt and on the command line, and the calibration
part of ``awe demo``.

  awe calibration -i WFI -d 2000-04-28 [-f '#842'] [-c ccd50]

prints, per chip and calibration type, the frame valid that night (see
:mod:`awe.data.calibration_overview`); ``dpu.show_calibration(i='WFI', d='2000-04-28')``
prints the same at the prompt.
"""

from __future__ import annotations

import argparse
from typing import Any

#: The calibration steps of a night, in dependency order (what ``awe demo`` runs).
CALIBRATION_STEPS = (
    "Bias",
    "HotPixels",
    "DomeFlat",
    "TwilightFlat",
    "ColdPixels",
    "MasterFlat",
    "Gain",
    "QuickCheck",
)


def add_parsers(commands: Any) -> None:
    """Add ``awe calibration`` to ``awe``'s subparsers."""
    parser = commands.add_parser(
        "calibration", help="which calibration frames are valid on a night, per chip"
    )
    parser.add_argument("-i", "--instrument", required=True, help="e.g. WFI")
    parser.add_argument("-d", "--date", required=True, help="observing night YYYY-MM-DD")
    parser.add_argument("-f", "--filter", help="only this filter")
    parser.add_argument("-c", "--chip", help="only this chip")


def run(args: argparse.Namespace) -> int:
    """``awe calibration``: print the overview; 1 when something is missing."""
    from awe.data.calibration_overview import show_calibration
    from awe.db.engine import open_database
    from awe.env import load_env

    env = load_env()
    database = open_database(env.database_url)
    try:
        rows = show_calibration(
            database,
            instrument=args.instrument,
            date=args.date,
            filter=args.filter,
            chip=args.chip,
        )
    finally:
        database.dispose()
    return 1 if any(row.missing for row in rows) else 0


#: What each step makes (a demo run again skips the steps whose products are all valid).
PRODUCT_OF = {
    "Bias": "BiasFrame",
    "HotPixels": "HotPixelMap",
    "DomeFlat": "DomeFlatFrame",
    "TwilightFlat": "TwilightFlatFrame",
    "ColdPixels": "ColdPixelMap",
    "MasterFlat": "MasterFlatFrame",
    "Gain": "GainLinearity",
}
#: Steps that take the filter option.
FILTER_STEPS = ("DomeFlat", "TwilightFlat", "ColdPixels", "MasterFlat", "Gain")


def demo_calibration(dpu: Any, instrument: str, night: str, filter: str | None = None) -> bool:
    """Calibrate a night on ``dpu`` with C=1, step by step (each step selects what the
    one before committed), then print the overview; the flat steps for ``filter`` only
    when given. True when every task ended N."""
    from awe.data.calibration_overview import calibration_overview

    rows = calibration_overview(
        dpu.database, instrument, night, filters=[filter] if filter else None
    )
    ok = True
    for step in CALIBRATION_STEPS:
        made = [row for row in rows if row.type == PRODUCT_OF.get(step)]
        if made and not any(row.missing for row in made):
            print(f"{step}: a valid {PRODUCT_OF[step]} for every chip already (awe calibration)")
            continue
        options = {"f": filter} if filter and step in FILTER_STEPS else {}
        job_id = dpu.run(step, i=instrument, d=night, C=1, **options)
        (status,) = dpu.wait(job_id)
        if status.counts["N"] != status.total:
            dpu.get_logs(job_id)
            ok = False
    dpu.show_calibration(i=instrument, d=night, f=filter)
    return ok
