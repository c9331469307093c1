"""Slurm DPU overhead: a 62-task no-op per-chip fan-out, submit to all final in the database.

Baselines in the same run: the same job on the local DPU (a pool of forked workers on this
machine), and Slurm alone: as many batch jobs running ``true``, submitted with sbatch and
waited for with squeue (what any Slurm client pays before running a line of Python). The
AWE figures include everything a user waits for: planning, recording the job, submitting
(62 sbatch calls on Slurm, one detached runner locally), running, journalling, and folding
every journal into the database. The Slurm figure also shows how long submitting took.

Needs the single-node Slurm of ``tests/services/slurm.sh`` (or any Slurm this machine can
submit to: --partition). Run: python benchmarks/slurm_dpu.py [--tasks 62] [--repeat 3]
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
    dpu_name: str, tasks: int, scratch: Path, partition: str | None
) -> tuple[float, float]:
    """(submit seconds, submit-to-all-final seconds) of one NoOp job on ``dpu_name``."""
    from awe.dpu import Processor

    slurm = {"memory": "100M", **({"partition": partition} if partition else {})}
    dpus = {"cluster": {"scheduler": "slurm", "work_dir": str(scratch / "work"), "slurm": slurm}}
    dpu = Processor(session_log="", username="bench", dpus=dpus, dpu_name=dpu_name)
    dpu.get_jobids()  # open (create) the database outside the timing
    started = time.perf_counter()
    job_id = dpu.run("NoOp", t=tasks)
    submitted = time.perf_counter()
    (status,) = dpu.wait(job_id)
    finished = time.perf_counter()
    assert status.counts["N"] == tasks, status
    return submitted - started, finished - started


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
    args = parser.parse_args()
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True)
    if "UP" not in ping.stdout:
        raise SystemExit("Slurm is not up: bash tests/services/slurm.sh starts it")
    cpus = subprocess.run(["sinfo", "-h", "-o", "%C"], capture_output=True, text=True).stdout
    results: dict[str, list[tuple[float, float]]] = {"cluster": [], "local": []}
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        (scratch / "home" / "sequences").mkdir(parents=True)
        (scratch / "home" / "sequences" / "noop.py").write_text(NOOP_SEQUENCE)
        os.environ["AWE_HOME"] = str(scratch / "home")
        bare = []
        for _ in range(args.repeat):
            for name in results:
                results[name].append(timed_job(name, args.tasks, scratch, args.partition))
            bare.append(bare_slurm_seconds(args.tasks, scratch, args.partition))
    slurm_submit = statistics.median(s for s, _ in results["cluster"])
    slurm_total = statistics.median(t for _, t in results["cluster"])
    local_total = statistics.median(t for _, t in results["local"])
    n = args.tasks
    print(
        f"tasks: {n} no-op, per chip; median of {args.repeat}; Slurm CPUs (A/I/O/T): {cpus.strip()}"
    )
    print(f"Slurm DPU : {slurm_total:.2f} s submit to all final ({slurm_submit:.2f} s to submit)")
    print(f"local DPU : {local_total:.2f} s submit to all final")
    bare_total = statistics.median(bare)
    print(f"Slurm alone: {bare_total:.2f} s for {n} batch jobs running `true`")
    print(f"ratio Slurm DPU/local DPU: {slurm_total / local_total:.1f}")
    print(f"ratio Slurm DPU/Slurm alone: {slurm_total / bare_total:.2f}")
    print(
        f"Slurm per task : {1000 * slurm_total / n:.0f} ms wall, {1000 * slurm_submit / n:.0f} ms "
        f"of it sbatch; overhead over local {1000 * (slurm_total - local_total) / n:.0f} ms"
    )


if __name__ == "__main__":
    main()
