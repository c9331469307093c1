"""The data subcommands of ``awe``: ingest, simulate, demo.

Kept out of :mod:`awe.cli` so that file stays a thin dispatcher; importing this module is
cheap (argparse only), the work imports numpy and astropy when it runs.

  awe ingest PATH...                       ingest raw FITS files, or the FITS files in folders
  awe simulate -i WFI -d 2000-04-28 -o DIR write a simulated night with its truth
  awe simulate -i DECam -e 668439 -o DIR   only the given (science) exposures
  awe demo                                 simulate a small WFI night, ingest it, list it
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

DATA_COMMANDS = ("ingest", "simulate", "demo")
DEMO_INSTRUMENT = "WFI"
DEMO_NIGHT = "2000-04-28"
DEMO_SCALE = 0.125


def add_parsers(commands: Any) -> None:
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
        type=_scale,
        default=1.0,
        help="shrink chips by this factor, e.g. 0.125 for fast small frames (default 1)",
    )

    demo = commands.add_parser("demo", help="simulate a small WFI night, ingest it and list it")
    demo.add_argument("--scale", type=_scale, default=DEMO_SCALE, help=f"default {DEMO_SCALE}")
    demo.add_argument("--seed", type=int, default=1)


def _scale(text: str) -> float:
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
    if args.command == "simulate":
        return _simulate(args)
    return _demo(args)


def _session() -> tuple[Any, Any, Any]:
    """The Env, database and data store of this installation."""
    from awe.data.store import DataStore
    from awe.db.engine import open_database
    from awe.env import load_env

    env = load_env()
    for warning in env.warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    return env, open_database(env.database_url), DataStore(env.data_root)


def _ingest(args: argparse.Namespace) -> int:
    from awe.data.ingestion import ingest

    _env, database, store = _session()
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
    )
    print(
        f"Wrote {len(result.files)} {result.instrument.name} exposures of the night "
        f"{result.night} to {result.out} in {result.seconds:.1f} s; truth in {result.truth_path}"
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    """Simulate (once) a small WFI night into the AWE home, ingest it, list the frames, then
    run the ReadNoise sequence on the local DPU and show its status, logs and products."""
    import json

    from awe.data.ingestion import ingest
    from awe.data.simulate import simulate_night

    env, database, store = _session()
    out = Path(env.home) / "demo" / f"{DEMO_INSTRUMENT}-{DEMO_NIGHT}-scale{args.scale:g}"
    truth = out / "truth" / "night.json"
    try:
        if truth.exists() and json.loads(truth.read_text())["seed"] == args.seed:
            print(f"Simulated night already in {out}")
        else:
            print(f"Simulating a {DEMO_INSTRUMENT} night ({DEMO_NIGHT}, scale {args.scale:g})...")
            result = simulate_night(
                DEMO_INSTRUMENT, DEMO_NIGHT, out, seed=args.seed, scale=args.scale
            )
            print(f"Wrote {len(result.files)} exposures to {out} in {result.seconds:.1f} s")
        report = ingest([out], database=database, store=store)
        print()
        print(frame_table(database, DEMO_INSTRUMENT, DEMO_NIGHT))
    finally:
        database.dispose()
    print()
    run_ok = _demo_job(env)
    example = f"instrument='{DEMO_INSTRUMENT}', date='{DEMO_NIGHT}', chip='ccd50'"
    print()
    print("At the awe> prompt, for example:")
    print("  from awe.db.frames import RawBiasFrame")
    print(f"  RawBiasFrame.select({example})")
    print(f"  dpu.run('ReadNoise', i='{DEMO_INSTRUMENT}', d='{DEMO_NIGHT}', c='ccd50', C=1)")
    return 0 if report.ok and run_ok else 1


def _demo_job(env: Any) -> bool:
    """ReadNoise on the demo night, on the local DPU: submit, wait, status, logs, products."""
    from awe.dpu.processor import Processor

    dpu = Processor(env, dpu_name="local")
    job_id = dpu.run("ReadNoise", i=DEMO_INSTRUMENT, d=DEMO_NIGHT, C=1)
    (status,) = dpu.wait(job_id)
    dpu.get_status(job_id)
    dpu.get_logs(job_id)
    dpu.get_job_result(job_id)
    return status.counts["N"] == status.total


def frame_table(database: Any, instrument: str, night: str) -> str:
    """Frames of an instrument and night per type: how many, on how many chips, filters."""
    from datetime import date

    from sqlalchemy import func, select

    from awe.database_url import mask_url
    from awe.db.frames import Frame

    keys = (Frame.instrument == instrument, Frame.night == date.fromisoformat(night))
    counts = (
        select(Frame.frame_type, func.count(), func.count(func.distinct(Frame.chip)))
        .where(*keys)
        .group_by(Frame.frame_type)
        .order_by(Frame.frame_type)
    )
    filters_used = select(Frame.frame_type, Frame.filter).where(*keys).distinct()
    with database.session() as session:
        rows = session.execute(counts).all()
        filters: dict[str, list[str]] = {}
        for frame_type, name in session.execute(filters_used):
            if name:
                filters.setdefault(frame_type, []).append(name)
    lines = [
        f"Frames of {instrument}, night {night}, in {mask_url(database.url)}:",
        f"  {'frame type':<22} {'frames':>6} {'chips':>5}  filters",
    ]
    for frame_type, count, chips in rows:
        names = ", ".join(sorted(filters.get(frame_type, []))) or "-"
        lines.append(f"  {frame_type:<22} {count:>6} {chips:>5}  {names}")
    if not rows:
        lines.append("  (none)")
    return "\n".join(lines)
