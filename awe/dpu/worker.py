"""One task as a process of its own: what a Slurm batch script runs.

``python -m awe.dpu.worker JOB_DIR TASK_NUMBER`` reads ``job.json``, finds the task's
sequence in the registry of the job's AWE home, gathers the products of the tasks it
depends on from their journals (the journals are the only thing tasks share, on the
cluster's shared file system), and runs the task under :func:`awe.dpu.supervise.supervise`,
which journals it exactly as the local pool does.

A task whose dependency did not end ``N`` is skipped (``S``) without running: Slurm's
``afterok`` lets it start when the dependency ended ``S`` (exit code 0), and the skip then
passes down the chain as it does on the local DPU.

Exit code 0 when the task ended N or S (so ``afterok`` dependents start), 1 otherwise.
SIGTERM (scancel, Slurm's time limit) is left to kill the worker: the journal then has no
end, and the backend asks Slurm what happened (CANCELLED, TIMEOUT).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from awe.dpu.journal import (
    JOB_FILE,
    journal_path,
    last_try_products,
    parse_new_bytes,
    read_new_bytes,
    write_outcome,
)
from awe.dpu.supervise import supervise
from awe.messages import FormatError, Job, ProductRecord

USAGE = "usage: python -m awe.dpu.worker JOB_DIR TASK_NUMBER"


def dependency_outcomes(job_dir: Path, numbers: list[int]) -> dict[int, dict[str, Any]]:
    """Per dependency: its last state (``None`` if its journal has none) and its products."""
    outcomes = {}
    for number in numbers:
        events, _ = parse_new_bytes(read_new_bytes(journal_path(job_dir, number), 0))
        state, reason = None, None
        for event in events:
            if event["event"] == "state":
                state, reason = event["state"], event.get("reason")
        products = [ProductRecord.from_json(event) for event in last_try_products(events)]
        outcomes[number] = {"state": state, "reason": reason, "products": products}
    return outcomes


def memory_kill_explainer() -> Callable[[int], str | None]:
    """What tells a SIGKILL from the kernel's OOM killer, inside this process's memory
    cgroup (Slurm's task/cgroup limit), from any other SIGKILL: its oom_kill counter grew
    while the task ran."""
    before = _cgroup_oom_kills()

    def explain(signum: int) -> str | None:
        if signum == signal.SIGKILL and _cgroup_oom_kills() > before:
            return "OUT_OF_MEMORY: killed by the kernel over the job's memory limit (--mem)"
        return None

    return explain


def _cgroup_oom_kills() -> int:
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):  # cgroup v1
            counters = Path("/sys/fs/cgroup/memory") / path.lstrip("/") / "memory.oom_control"
        elif controllers == "":  # cgroup v2 (unified)
            counters = Path("/sys/fs/cgroup") / path.lstrip("/") / "memory.events"
        else:
            continue
        try:
            for counter in counters.read_text().splitlines():
                name, _, value = counter.partition(" ")
                if name == "oom_kill" and int(value) > 0:
                    return int(value)
        except (OSError, ValueError):
            continue
    return 0


def run_task(job_dir: Path, number: int) -> str:
    """Run task ``number`` of the job in ``job_dir``; return the letter it ended with."""
    job = Job.read(job_dir / JOB_FILE)
    tasks = {task.number: task for task in job.tasks}
    task = tasks[number]
    dependencies = dependency_outcomes(job_dir, list(task.depends_on))
    ended = {dependency: outcome["state"] for dependency, outcome in dependencies.items()}
    reason = task.skip_reason(ended, {n: t.name for n, t in tasks.items()})
    if reason is not None:
        return _end(job_dir, number, "S", reason)
    from awe.dpu.registry import Registry

    try:
        spec = Registry(home=Path(job.home)).get(task.sequence)
    except Exception as err:  # noqa: BLE001 - the sequence vanished since submission
        return _end(job_dir, number, "E", f"sequence not found: {err}")
    upstream = [  # a rerun's task also gets products of the job it reruns
        *(ProductRecord.from_json(p) for p in task.reused_upstream),
        *(
            p
            for outcome in dependencies.values()
            if outcome["state"] == "N"
            for p in outcome["products"]
        ),
    ]
    explain = memory_kill_explainer()
    result = supervise(job, task, spec, upstream, job_dir, explain_signal=explain)
    return result["state"]


def _end(job_dir: Path, number: int, state: str, reason: str) -> str:
    write_outcome(job_dir, number, state, reason)
    return state


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or not argv[1].isdigit():
        print(USAGE, file=sys.stderr)
        return 2
    try:
        state = run_task(Path(argv[0]), int(argv[1]))
    except FormatError as err:  # written by another AWE: refused, not misread
        print(f"awe.dpu.worker: {err}", file=sys.stderr)
        return 2
    return 0 if state in ("N", "S") else 1


if __name__ == "__main__":
    sys.exit(main())
