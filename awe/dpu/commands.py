"""``awe dpu ...``: the Processor's everyday calls from a shell or a cron job.

awe dpu list                 the configured DPUs
awe dpu check NAME           can DPU NAME run jobs? (connection, Python, packages, ...)
awe dpu status [JOBID ...]   status of your jobs (all of them by default)
awe dpu logs JOBID ...       their logs
awe dpu cancel JOBID ...     cancel them
awe dpu rerun JOBID          run again only the tasks of JOBID that did not end N
"""

from __future__ import annotations

import argparse
from typing import Any


def add_parsers(commands: Any) -> None:
    dpu = commands.add_parser("dpu", help="DPUs and jobs: list, check, status, logs, cancel, rerun")
    actions = dpu.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="the configured DPUs")
    check = actions.add_parser("check", help="check that a DPU can run jobs")
    check.add_argument("name", nargs="?", help="DPU name (default: the selected one)")
    status = actions.add_parser("status", help="status of your jobs")
    status.add_argument("jobids", nargs="*", type=int)
    logs = actions.add_parser("logs", help="logs of jobs")
    logs.add_argument("jobids", nargs="+", type=int)
    cancel = actions.add_parser("cancel", help="cancel jobs")
    cancel.add_argument("jobids", nargs="+", type=int)
    rerun = actions.add_parser("rerun", help="run again only the tasks that did not end N")
    rerun.add_argument("jobid", type=int)
    rerun.add_argument("--send-code", action="store_true", help="run this checkout's code")


def run(args: argparse.Namespace) -> int:
    from awe.dpu.processor import Processor

    dpu = Processor()
    if args.action == "list":
        dpu.show_dpu_identifiers()
        return 0
    if args.action == "check":
        return 0 if dpu.check_dpu(args.name)["ok"] else 1
    if args.action == "status":
        dpu.get_status(args.jobids or None)
        return 0
    if args.action == "logs":
        dpu.get_logs(args.jobids)
        return 0
    if args.action == "rerun":
        dpu.rerun(args.jobid, send_code=args.send_code)
        return 0
    for jobid in args.jobids:
        dpu.cancel_job(jobid)
    return 0
