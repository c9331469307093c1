"""The ``awe`` command.

``awe`` alone starts the ``awe>`` prompt (IPython with the AWE profile); any IPython
arguments pass through, so ``awe -c "print(dpu)"`` runs a scripted session. Subcommands:

  awe profile install [--force]   install the IPython profile (``ipython --profile=awe``)
  awe kernel install [--user]     register the "AWE" Jupyter kernel
  awe config                      show every setting, its value and where it came from
  awe db upgrade [REVISION]       bring the job database schema up to date
  awe db current                  show the schema revision of the job database
  awe ingest PATH...              ingest raw FITS files (folders: the FITS files below)
  awe simulate -i WFI -d 2000-04-28 -o DIR [--scale 0.125]   write a simulated night
  awe demo                        simulate a small WFI night, ingest it, list the frames,
                                  run ReadNoise on it on the local DPU
  awe dpu list|check|status|logs|cancel|rerun   DPUs and jobs (see `awe dpu --help`)
  awe run SEQUENCE name=value ... [--dpu NAME] [--wait] [--timeout S] [--json]
                                  submit from a script; the exit status is the outcome
                                  (0 N/S, 1 E/A/U, 2 refused, 3 timed out)
  awe calibration -i WFI -d 2000-04-28   the calibration frames valid on a night, per chip
  awe web [--host 127.0.0.1] [--port 8700] | awe web token   queue pages, JSON API, tokens
  awe se submit|status            DES single-epoch seasons (see `awe se --help`)
  awe wu register-run|build-library|register-galaxy|fits2wu|assimilate   POGS work units
  awe demo --pipeline             the demo, then Reduce>Astrometry>Regrid>Coadd, SourceList
  awe demo --pogs                 a POGS run and a simulated galaxy, fitted on the local DPU
"""

from __future__ import annotations

import argparse
import sys

SUBCOMMANDS = (
    "profile",
    "kernel",
    "config",
    "db",
    "ingest",
    "simulate",
    "demo",
    "dpu",
    "run",
    "calibration",
    "web",
    "se",
    "wu",
)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    if argv and argv[0] in SUBCOMMANDS:
        return _run_subcommand(argv)
    return start_prompt(argv)


def start_prompt(ipython_args: list[str]) -> int:
    """Start IPython with the AWE profile (installing the profile on first run)."""
    from awe.errors import ConfigError
    from awe.ipython_profile import PROFILE_NAME, install_profile, is_installed

    try:  # refuse to start on a bad setting rather than run jobs against the wrong place
        from awe.env import load_env

        load_env()
    except ConfigError as err:
        print(f"awe: error: {err}", file=sys.stderr)
        return 2
    if not is_installed():
        for path in install_profile():
            print(f"Installed {path}", file=sys.stderr)
    from IPython import start_ipython

    start_ipython(argv=[f"--profile={PROFILE_NAME}", *ipython_args])
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="awe", description="AWE processing environment")
    commands = parser.add_subparsers(dest="command", required=True)

    profile = commands.add_parser("profile", help="manage the IPython profile")
    profile_commands = profile.add_subparsers(dest="action", required=True)
    install = profile_commands.add_parser("install", help="install the awe IPython profile")
    install.add_argument("--force", action="store_true", help="overwrite existing files")

    commands.add_parser("config", help="show settings and where they came from")

    db = commands.add_parser("db", help="job database schema")
    db_commands = db.add_subparsers(dest="action", required=True)
    upgrade = db_commands.add_parser("upgrade", help="upgrade the schema")
    upgrade.add_argument("revision", nargs="?", default="head")
    db_commands.add_parser("current", help="show the schema revision")

    from awe.data.commands import add_parsers  # ingest, simulate (argparse only)
    from awe.demo import add_parser as add_demo_parser

    add_parsers(commands)
    add_demo_parser(commands)
    from awe.dpu.commands import add_parsers as add_dpu_parsers

    add_dpu_parsers(commands)
    from awe.run_cli import add_parsers as add_run_parsers

    add_run_parsers(commands)
    from awe.kernel import add_parsers as add_kernel_parsers

    add_kernel_parsers(commands)
    from awe.calibration_cli import add_parsers as add_calibration_parsers

    add_calibration_parsers(commands)
    from awe.web.cli import add_parsers as add_web_parsers

    add_web_parsers(commands)
    from awe.se_cli import add_parsers as add_se_parsers

    add_se_parsers(commands)
    from awe.wu_cli import add_parsers as add_wu_parsers

    add_wu_parsers(commands)
    return parser


def _run_subcommand(argv: list[str]) -> int:
    from awe.errors import AweError

    args = _parser().parse_args(argv)
    try:
        if args.command == "profile":
            return _profile_install(args.force)
        if args.command == "config":
            return _show_config()
        if args.command in ("ingest", "simulate"):
            from awe.data.commands import run

            return run(args)
        if args.command == "calibration":
            from awe.calibration_cli import run as run_calibration

            return run_calibration(args)
        if args.command == "demo":
            from awe.demo import run as run_demo

            return run_demo(args)
        if args.command == "dpu":
            from awe.dpu.commands import run as run_dpu

            return run_dpu(args)
        if args.command == "kernel":
            from awe.kernel import run as run_kernel

            return run_kernel(args)
        if args.command == "run":
            from awe.run_cli import run as run_sequence

            return run_sequence(args)
        if args.command == "web":
            from awe.web.cli import run as run_web

            return run_web(args)
        if args.command == "se":
            from awe.se_cli import run as run_se

            return run_se(args)
        if args.command == "wu":
            from awe.wu_cli import run as run_wu

            return run_wu(args)
        return _db(args)
    except AweError as err:
        print(f"awe: error: {err}", file=sys.stderr)
        return 2


def _profile_install(force: bool) -> int:
    from awe.ipython_profile import install_profile, installed_profile

    written = install_profile(force=force)
    for path in written:
        print(f"Installed {path}")
    if not written:
        print(
            f"The AWE profile is already installed in {installed_profile()} (--force replaces it)"
        )
    return 0


def _show_config() -> int:
    from awe.env import load_env

    env = load_env()
    for warning in env.warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    for key, value, source in env.describe():
        print(f"{key:<13} = {value!r:<50} ({source})")
    return 0


def _db(args: argparse.Namespace) -> int:
    from awe.database_url import mask_url
    from awe.db.engine import open_database
    from awe.db.schema import current_revision, head_revision, upgrade
    from awe.env import load_env

    url = load_env().database_url
    database = open_database(url, upgrade=False)
    try:
        if args.action == "upgrade":
            upgrade(database, args.revision)
        print(
            f"{mask_url(url)}: schema revision {current_revision(database)} "
            f"(newest: {head_revision()})"
        )
    finally:
        database.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
