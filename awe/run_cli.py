"""``awe run``: submit a sequence from a shell, a pipeline or cron, and say how it went.

    awe run ReadNoise i=WFI d=2000-04-28 C=1 --wait --json
    python -m awe run 'Bias>HotPixels' i=WFI d=2000-04-28 --dpu cluster --timeout 3600

Options are ``name=value`` (short or long names), typed by the sequence's declarations as
the Processor types them (never evaluated). The exit status says the outcome, so a script
can act on it: 0 every task ended N or S, 1 some task ended E, A or U (or the job was
cancelled), 2 the run was refused (nothing was submitted), 3 ``--timeout`` passed first
(the job goes on), 130 Ctrl-C while waiting (the job goes on). Without ``--wait`` the
command returns once the job is submitted (0).
``--json`` prints the job's status as one JSON object on stdout for other programs; the
Astro-WISE lines then go to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from awe.dpu.status import JobStatus

OK, FAILED, REFUSED, TIMED_OUT = 0, 1, 2, 3
#: Ctrl-C while waiting (128 + SIGINT, as shells report it); the job goes on.
INTERRUPTED = 130


def add_parsers(commands: Any) -> None:
    run = commands.add_parser(
        "run",
        help="submit a sequence (exit status: 0 N/S, 1 E/A/U, 2 refused, 3 timed out)",
        description=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("sequence", help="a sequence or a chain, e.g. ReadNoise or 'Bias>HotPixels'")
    run.add_argument("options", nargs="*", metavar="name=value", help="e.g. i=WFI d=2000-04-28")
    run.add_argument("--dpu", help="the DPU to run on (default: the selected one)")
    run.add_argument("--wait", action="store_true", help="wait until the job is final")
    run.add_argument("--timeout", type=float, help="seconds to wait at most (implies --wait)")
    run.add_argument("--json", action="store_true", help="print the status as JSON on stdout")


def run(args: argparse.Namespace) -> int:
    """Submit, optionally wait; the exit status as documented above."""
    from awe.dpu.options import options_from_text
    from awe.dpu.processor import Processor
    from awe.errors import AweError

    lines = sys.stderr if args.json else sys.stdout
    with contextlib.redirect_stdout(lines):
        try:
            dpu = Processor()
            steps = dpu.registry.resolve(args.sequence)
            job_id = dpu.run(args.sequence, dpu=args.dpu, **options_from_text(steps, args.options))
        except AweError as err:
            print(f"awe run: refused: {err}", file=sys.stderr)
            return REFUSED
        code = OK
        if args.wait or args.timeout is not None:
            follow = f"(awe dpu status {job_id}, awe dpu cancel {job_id})"
            try:
                (status,) = dpu.wait(job_id, timeout=args.timeout)
                code = outcome(status)
            except TimeoutError:
                print(
                    f"awe run: job {job_id} not final after {args.timeout} s; it goes on " + follow,
                    file=sys.stderr,
                )
                code = TIMED_OUT
            except KeyboardInterrupt:
                print(f"awe run: stopped waiting; job {job_id} goes on {follow}", file=sys.stderr)
                return INTERRUPTED
    if args.json:
        (status,) = dpu.jobs.statuses([job_id])
        print(json.dumps(status_as_json(status)))
    return code


def outcome(status: JobStatus) -> int:
    """0 when every task ended N or S, 1 when some ended E, A or U or the job was cancelled."""
    from awe.db.models import JobState

    failed = any(status.counts[letter] for letter in ("E", "A", "U"))
    return FAILED if failed or status.state is JobState.CANCELLED else OK


def status_as_json(status: JobStatus) -> dict[str, Any]:
    """The status for other programs: plain JSON types, times in ISO 8601 (UTC)."""

    def when(moment: Any) -> str | None:
        return None if moment is None else moment.isoformat()

    return {
        "job_id": status.job_id,
        "sequence": status.sequence,
        "state": status.state.value,
        "counts": status.counts,
        "queued": status.queued,
        "running": status.running,
        "owner": status.owner,
        "submitted_at": when(status.submitted_at),
        "started_at": when(status.started_at),
        "finished_at": when(status.finished_at),
        "rerun_of": status.rerun_of,
        "exit_status": outcome(status) if status.is_final else None,
    }
