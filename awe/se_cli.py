"""``awe se ...``: seasons of DES single-epoch processing from a shell.

awe se submit exposures.list --season N|new --archive DIR [--resume] [--max-in-flight 5]
              [--usable 50] [--output image_proc_outputs/output.txt] [--overwrite]
awe se status --season N [--usable 50]
"""

from __future__ import annotations

import argparse
from typing import Any

from awe.dpu.se_automation import DEFAULT_IN_FLIGHT, DEFAULT_USABLE


def add_parsers(commands: Any) -> None:
    se = commands.add_parser("se", help="DES single-epoch seasons: submit, status")
    actions = se.add_subparsers(dest="action", required=True)
    submit = actions.add_parser("submit", help="run SE on a list of exposures as a season")
    submit.add_argument("exposures", help="file: one EXPNUM per line (NITE, BAND optional)")
    submit.add_argument("--season", required=True, help="season number, or 'new'")
    submit.add_argument("--archive", required=True, help="archive folder (dts/, calib/, ...)")
    submit.add_argument("--resume", action="store_true", help="continue a used season")
    submit.add_argument("--max-in-flight", type=int, default=DEFAULT_IN_FLIGHT)
    submit.add_argument("--usable", type=int, default=DEFAULT_USABLE)
    submit.add_argument("--output", default=None, help="manifest (image_proc_outputs/)")
    submit.add_argument("--overwrite", action="store_true", help="redo complete CCDs (O=1)")
    submit.add_argument("--ccds", default=None, help="CCDs, e.g. '1,3-60,62'")
    status = actions.add_parser("status", help="each exposure of a season, its completeness")
    status.add_argument("--season", required=True, type=int)
    status.add_argument("--usable", type=int, default=DEFAULT_USABLE)


def run(args: argparse.Namespace) -> int:
    from awe.dpu import se_automation
    from awe.dpu.processor import Processor

    dpu = Processor()
    if args.action == "status":
        se_automation.status(dpu, args.season, usable=args.usable)
        return 0
    season = args.season if args.season == "new" else int(args.season)
    options = {"O": 1} if args.overwrite else {}
    if args.ccds:
        options["c"] = args.ccds
    report = se_automation.submit(
        dpu, args.exposures, season, args.archive, resume=args.resume,
        max_in_flight=args.max_in_flight, usable=args.usable, output=args.output,
        se_options=options,
    )  # fmt: skip
    return 0 if all(r.usable(args.usable) for r in report) else 1
