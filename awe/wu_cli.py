"""``awe wu``: POGS work units from the command line.

awe wu register-run RUN_ID DIR "description" FPOPS_EST COBBLESTONE [--demo-library]
awe wu build-library DIR [--sfh N] [--ir-stride K] [--seed S]   (needs bagpipes)
awe wu register-galaxy FILE REDSHIFT NAME TYPE SIGMA_OR_SNR_FILE PRIORITY RUN_ID [TAGS...]
awe wu fits2wu [--register ID] [--threshold N] [--high-water-mark N] [--quorum Q]
awe wu assimilate JOBID
"""

from __future__ import annotations

import argparse


def add_parsers(commands) -> None:
    wu = commands.add_parser("wu", help="POGS work units (runs, galaxies, fits2wu, assimilate)")
    actions = wu.add_subparsers(dest="action", required=True)
    run = actions.add_parser("register-run", help="register a run: DIR/filters.dat and its library")
    run.add_argument("run_id", type=int)
    run.add_argument("directory")
    run.add_argument("description")
    run.add_argument("fpops_est", type=float, help="1e12 FLOP per pixel")
    run.add_argument("cobblestone", type=float, help="credit per pixel")
    run.add_argument(
        "--demo-library",
        action="store_true",
        help="first write the shipped demo library for these filters into DIR",
    )
    build = actions.add_parser("build-library", help="build a model library for DIR/filters.dat")
    build.add_argument("directory")
    build.add_argument("--sfh", type=int, default=2000, help="stellar models (default 2000)")
    build.add_argument("--ir-stride", type=int, default=1, help="use every K-th Umin of DL07")
    build.add_argument("--seed", type=int, default=1)
    galaxy = actions.add_parser("register-galaxy", help="register a galaxy FITS cube")
    for name in ("file", "redshift", "name", "type", "sigma"):
        galaxy.add_argument(name)
    galaxy.add_argument("priority", type=int)
    galaxy.add_argument("run_id", type=int)
    galaxy.add_argument("tags", nargs="*")
    fits2wu = actions.add_parser("fits2wu", help="cut registered galaxies into work units")
    fits2wu.add_argument("--register", type=int, help="one registration only")
    fits2wu.add_argument("--threshold", type=int, default=1000)
    fits2wu.add_argument("--high-water-mark", type=int, default=400)
    fits2wu.add_argument("--quorum", type=int, default=1)
    fits2wu.add_argument("--row-height", type=int, default=7)
    fits2wu.add_argument("--min-pixels", type=int, nargs="+", default=[15])
    assimilate = actions.add_parser("assimilate", help="validate and store a FitSED job's results")
    assimilate.add_argument("job_id", type=int)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from awe.db.engine import open_database
    from awe.env import load_env

    env = load_env()
    if args.action == "build-library":
        return _build_library(Path(args.directory), args)
    database = open_database(env.database_url)
    try:
        if args.action == "register-run":
            from awe.wu.library import split_demo_library
            from awe.wu.runs import read_filters_dat, register_run

            if args.demo_library:
                names = [row[0] for row in read_filters_dat(Path(args.directory) / "filters.dat")]
                split_demo_library(Path(args.directory), names)
            run = register_run(
                database,
                args.run_id,
                args.directory,
                args.description,
                args.fpops_est,
                args.cobblestone,
            )
            print(
                f"Registered run {run.run_id}: {len(run.filters)} filters, "
                f"{len(run.files)} library files"
            )
        elif args.action == "register-galaxy":
            from awe.wu.galaxies import register_galaxy

            rid = register_galaxy(
                database,
                args.file,
                args.redshift,
                args.name,
                args.type,
                args.sigma,
                args.priority,
                args.run_id,
                args.tags,
            )
            print(f"Registered {args.name} as registration {rid}")
        elif args.action == "fits2wu":
            from awe.wu.fits2wu import Settings, fits2wu

            settings = Settings(
                tuple(args.min_pixels),
                args.row_height,
                args.threshold,
                args.high_water_mark,
                args.quorum,
            )
            fits2wu(database, env.data_root, settings, args.register)
        elif args.action == "assimilate":
            import tempfile

            from awe.dpu.processor import Processor
            from awe.wu.assimilate import assimilate
            from awe.wu_results import fit_results

            with tempfile.TemporaryDirectory() as scratch:
                results = fit_results(Processor(env), args.job_id, Path(scratch))
                summary = assimilate(database, args.job_id, results)
            print(
                f"Assimilated {len(summary['assimilated'])} work units; "
                f"{len(summary['invalid'])} invalid (to be reissued)"
            )
    finally:
        database.dispose()
    return 0


def _build_library(folder, args) -> int:
    from tqdm import tqdm

    from awe.wu.library import REDSHIFTS, build_models, write_library
    from awe.wu.runs import read_filters_dat

    rows = read_filters_dat(folder / "filters.dat")
    curves = _curves([name for name, *_ in rows])
    print(f"Building {args.sfh} stellar models and the DL07 dust models...")
    sfh, ir = build_models(args.sfh, args.ir_stride, args.seed)
    with tqdm(total=len(REDSHIFTS), unit="z", disable=None) as bar:  # none unless a terminal
        written = write_library(
            folder, [r[0] for r in rows], curves, sfh, ir, progress=lambda z: bar.update()
        )
    print(f"Wrote {len(written)} files to {folder} ({len(sfh.spectra)} SFH x {len(ir.spectra)} IR)")
    return 0


def _curves(names: list[str]) -> list[str]:
    """The transmission curve of each POGS filter name (from the seeded filter table)."""
    from awe.db.engine import open_database
    from awe.db.pogs import PogsFilter
    from awe.env import load_env
    from awe.wu.library import LibraryError

    database = open_database(load_env().database_url)
    try:
        with database.session() as session:
            curves = {f.name: f.curve for f in session.query(PogsFilter)}
    finally:
        database.dispose()
    missing = [n for n in names if not curves.get(n)]
    if missing:
        raise LibraryError(
            f"no transmission curve ships for {', '.join(missing)}; set "
            f"pogs_filter.curve to a two-column file (Angstrom, response)"
        )
    return [curves[n] for n in names]
