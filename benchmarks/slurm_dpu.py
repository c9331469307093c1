"""Slurm DPU overhead: a 62-task no-op per-chip fan-out, submit to all final in the database.

The Slurm DPU in its two modes: per task (one job array for the step: every task is an
array element, a batch job with a Python start of its own) and pilot (``--pilots`` pilot
allocations of ``--cpus`` CPUs each that pull the tasks, one forked process per task).
Baselines in the same run: the same job on the local DPU (a pool of forked workers on this
machine), and Slurm alone: as many batch jobs running ``true``, submitted with sbatch and
waited for with squeue (what any Slurm client pays before running a line of Python). The
AWE figures include everything a user waits for: planning, recording the job, submitting,
running, journalling, and folding every journal into the database. The Slurm figures also
show how long submitting took, and how many sbatch calls it made.

Needs the single-node Slurm of ``tests/services/slurm.sh`` (or any Slurm this machine can
submit to: --partition).
Run: python benchmarks/slurm_dpu.py [--tasks 62] [--repeat 3] [--pilots 1] [--cpus 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

NOOP_SEQUENCE = '''
from awe.sequence import Option, Unit, sequence

@sequence(fan_out="chip", options=[Option("t", "tasks", int, 62)],
          select=lambda o, c: [Unit(key=f"ccd{i:02d}") for i in range(o["tasks"])])
def NoOp(task):
    """Does nothing, once per chip."""
'''


def timed_job(
    dpu_name: str, tasks: int, scratch: Path, partition: str | None, pilot: dict[str, object]
) -> tuple[float, float, int]:
    """(submit seconds, submit-to-all-final seconds, sbatch calls) of one NoOp job."""
    from awe.dpu import Processor
    from awe.dpu.remote import slurm_agent

    slurm = {"memory": "100M", **({"partition": partition} if partition else {})}
    dpus = {
        "per-task": {"scheduler": "slurm", "work_dir": str(scratch / "work"), "slurm": slurm},
        "pilot": {
            "scheduler": "slurm",
            "work_dir": str(scratch / "work"),
            "slurm": {**slurm, **pilot},
        },
    }
    dpu = Processor(session_log="", username="bench", dpus=dpus, dpu_name=dpu_name)
    dpu.get_jobids()  # open (create) the database outside the timing
    calls = []
    real_run = slurm_agent._run

    def counting_run(argv: list[str], timeout: float):  # noqa: ANN202 - as the agent's
        calls.append(argv[0])
        return real_run(argv, timeout)

    slurm_agent._run = counting_run
    try:
        started = time.perf_counter()
        job_id = dpu.run("NoOp", t=tasks)
        submitted = time.perf_counter()
        (status,) = dpu.wait(job_id)
        finished = time.perf_counter()
    finally:
        slurm_agent._run = real_run
    assert status.counts["N"] == tasks, status
    return submitted - started, finished - started, calls.count("sbatch")


def bare_slurm_seconds(tasks: int, scratch: Path, partition: str | None) -> float:
    """Submit ``tasks`` batch jobs that run ``true``; seconds until squeue shows none."""
    script = scratch / "true.sh"
    lines = ["#!/bin/bash", "#SBATCH --mem=100M", "#SBATCH --output=/dev/null"]
    if partition:
        lines.append(f"#SBATCH --partition={partition}")
    script.write_text("\n".join([*lines, "true", ""]))
    started = time.perf_counter()
    ids = [
        subprocess.run(
            ["sbatch", "--parsable", str(script)], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(tasks)
    ]
    while subprocess.run(
        ["squeue", "--noheader", f"--jobs={','.join(ids)}", "--format=%i"],
        capture_output=True,
        text=True,
    ).stdout.strip():
        time.sleep(0.1)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=62)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--partition", default=None)
    parser.add_argument("--pilots", type=int, default=1, help="pilot allocations")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of each pilot")
    args = parser.parse_args()
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True)
    if "UP" not in ping.stdout:
        raise SystemExit("Slurm is not up: bash tests/services/slurm.sh starts it")
    cpus = subprocess.run(["sinfo", "-h", "-o", "%C"], capture_output=True, text=True).stdout
    pilot = {"mode": "pilot", "nodes": args.pilots, "cpus_per_node": args.cpus}
    pilot["walltime"] = "00:10:00"
    results: dict[str, list[tuple[float, float, int]]] = {"per-task": [], "pilot": [], "local": []}
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        (scratch / "home" / "sequences").mkdir(parents=True)
        (scratch / "home" / "sequences" / "noop.py").write_text(NOOP_SEQUENCE)
        os.environ["AWE_HOME"] = str(scratch / "home")
        bare = []
        for _ in range(args.repeat):
            for name in results:
                results[name].append(timed_job(name, args.tasks, scratch, args.partition, pilot))
            bare.append(bare_slurm_seconds(args.tasks, scratch, args.partition))
    total = {name: statistics.median(r[1] for r in runs) for name, runs in results.items()}
    submit = {name: statistics.median(r[0] for r in runs) for name, runs in results.items()}
    n = args.tasks
    print(
        f"tasks: {n} no-op, per chip; median of {args.repeat}; Slurm CPUs (A/I/O/T): {cpus.strip()}"
    )
    for name in ("per-task", "pilot"):
        print(
            f"Slurm DPU, {name:8}: {total[name]:.2f} s submit to all final "
            f"({submit[name]:.2f} s to submit, {results[name][0][2]} sbatch)"
        )
    print(f"local DPU          : {total['local']:.2f} s submit to all final")
    bare_total = statistics.median(bare)
    print(f"Slurm alone: {bare_total:.2f} s for {n} batch jobs running `true`")
    print(f"pilots: {args.pilots} x {args.cpus} CPUs")
    print(f"ratio pilot/local DPU   : {total['pilot'] / total['local']:.2f}")
    print(f"ratio per-task/local DPU: {total['per-task'] / total['local']:.1f}")
    print(f"ratio per-task/pilot    : {total['per-task'] / total['pilot']:.1f}")
    print(f"ratio per-task/Slurm alone: {total['per-task'] / bare_total:.2f}")


if __name__ == "__main__":
    main()
