"""The data subcommands of ``awe``: ingest and simulate.

Kept out of :mod:`awe.cli` so that file stays a thin dispatcher; importing this module is
cheap (argparse only), the work imports numpy and astropy when it runs. (``awe demo``,
which also drives the DPU, lives above this layer, in :mod:`awe.demo`.)

  awe ingest PATH...                       ingest raw FITS files, or the FITS files in folders
  awe simulate -i WFI -d 2000-04-28 -o DIR write a simulated night with its truth
  awe simulate -i DECam -e 668439 -o DIR   only the given (science) exposures
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from awe.data.store import DataStore
    from awe.db.database import Database
    from awe.env import Env


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """Add the data subcommands to ``awe``'s subparsers."""
    ingest = commands.add_parser(
        "ingest", help="ingest raw FITS files (a folder: every FITS file below it)"
    )
    ingest.add_argument("paths", nargs="+", metavar="PATH")
    ingest.add_argument("--no-progress", action="store_true", help="no progress bar")

    simulate = commands.add_parser("simulate", help="write a simulated night with its truth")
    simulate.add_argument("-i", "--instrument", required=True, help="WFI, OmegaCAM, DECam, ...")
    simulate.add_argument("-d", "--night", help="YYYY-MM-DD (default: the instrument's)")
    simulate.add_argument("-o", "--out", required=True, help="folder to write into")
    simulate.add_argument(
        "-e",
        "--exposure",
        type=int,
        action="append",
        help="only a science exposure with this number (repeat for more)",
    )
    simulate.add_argument("-f", "--filter", action="append", help="only this filter (repeatable)")
    simulate.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    simulate.add_argument(
        "--scale",
        type=scale_factor,
        default=1.0,
        help="shrink chips by this factor, e.g. 0.125 for fast small frames (default 1)",
    )
    simulate.add_argument(
        "--galaxies",
        type=int,
        default=0,
        help="Sersic galaxies per chip in the science fields (default none)",
    )


def scale_factor(text: str) -> float:
    """The ``--scale`` of a simulation: a number in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{value} is not in (0, 1]; e.g. 0.125")
    return value


def run(args: argparse.Namespace) -> int:
    """Run a data subcommand; the exit status is 1 if any file could not be ingested."""
    if args.command == "ingest":
        return _ingest(args)
    return _simulate(args)


def open_installation() -> tuple[Env, Database, DataStore]:
    """The Env, database and data store of this installation (configuration warnings
    printed)."""
    from awe.data.store import DataStore
    from awe.db.engine import open_database
    from awe.env import load_env

    env = load_env()
    for warning in env.warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    return env, open_database(env.database_url), DataStore(env.data_root)


def _ingest(args: argparse.Namespace) -> int:
    from awe.data.ingestion import ingest

    _env, database, store = open_installation()
    progress = False if args.no_progress else None
    try:
        report = ingest(args.paths, database=database, store=store, progress=progress)
    finally:
        database.dispose()
    return 0 if report.ok else 1


def _simulate(args: argparse.Namespace) -> int:
    from awe.data.simulate import simulate_night

    result = simulate_night(
        args.instrument,
        args.night,
        args.out,
        seed=args.seed,
        scale=args.scale,
        exposures=args.exposure,
        filters=args.filter,
        galaxies=args.galaxies,
    )
    print(
        f"Wrote {len(result.files)} {result.instrument.name} exposures of the night "
        f"{result.night} to {result.out} in {result.seconds:.1f} s; truth in {result.truth_path}"
    )
    return 0
