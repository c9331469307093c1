"""Local DPU throughput: N no-op tasks, from submit to all-final-in-the-database.

Baseline in the same run: dask.distributed's LocalCluster with 2 worker processes,
``client.map`` + ``gather`` of the same no-op function (cluster start-up reported apart).
AWE's figure includes everything a user waits for: planning, writing the job and its
tasks to the database, starting the detached runner, forking one process per task,
journalling, and folding every journal into the database.

Run: pip install -e '.[bench]' && python benchmarks/dpu_overhead.py [--tasks 2000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

NOOP_SEQUENCE = '''
from awe.sequence import Unit, sequence

@sequence(fan_out="chip", select=lambda o, c: [Unit(key=str(i)) for i in range(o["tasks"])],
          options=[__import__("awe.sequence").sequence.Option("t", "tasks", int, 1)])
def NoOp(task):
    """Does nothing."""
'''


def noop(x: int) -> int:
    return x


def awe_seconds(tasks: int, workers: int) -> float:
    from awe.dpu import Processor

    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch) / "home"
        (home / "sequences").mkdir(parents=True)
        (home / "sequences" / "noop.py").write_text(NOOP_SEQUENCE)
        os.environ["AWE_HOME"] = str(home)
        dpu = Processor(session_log="", username="bench")
        dpu.backend().workers = workers
        dpu.get_jobids()  # open (create) the database outside the timing
        started = time.perf_counter()
        job_id = dpu.run("NoOp", t=tasks)
        (status,) = dpu.wait(job_id)
        elapsed = time.perf_counter() - started
        assert status.counts["N"] == tasks, status
        return elapsed


def dask_seconds(tasks: int, workers: int) -> tuple[float, float]:
    from dask.distributed import Client, LocalCluster

    started = time.perf_counter()
    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        ready = time.perf_counter()
        results = client.gather(client.map(noop, range(tasks)))
        elapsed = time.perf_counter() - ready
        assert results == list(range(tasks))
    return elapsed, ready - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    awe = awe_seconds(args.tasks, args.workers)
    dask, dask_startup = dask_seconds(args.tasks, args.workers)
    print(f"tasks: {args.tasks}, workers: {args.workers}")
    rate = args.tasks / awe
    print(f"AWE local DPU : {awe:.2f} s = {rate:.0f} tasks/s (submit to all final in DB)")
    print(
        f"dask baseline : {dask:.2f} s = {args.tasks / dask:.0f} tasks/s (map+gather; "
        f"+{dask_startup:.2f} s cluster start)"
    )
    print(f"dask incl. start: {args.tasks / (dask + dask_startup):.0f} tasks/s")
    print(
        f"ratio AWE/dask throughput: {dask / awe:.2f} (map+gather), "
        f"{(dask + dask_startup) / awe:.2f} (incl. cluster start)"
    )


if __name__ == "__main__":
    main()
