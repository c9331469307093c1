"""Does dask-jobqueue's SLURMCluster keep AWE's guarantees as a pilot engine? (F14)

Measured on the single-node Slurm of ``tests/services/slurm.sh``: one SLURMCluster worker
job of 2 cores, its scheduler on this machine (127.0.0.1). Prints how long the first worker
takes to join, 62 no-op tasks once it has, and what becomes of (a) a task that calls
``os._exit`` and the task running beside it in the same worker, and (b) a running task
whose future is cancelled. AWE's guarantees: a crash costs only that task and ends it A
(retried only when its sequence declares retries); a cancel or a time limit kills exactly
that task. See docs/dpus.md (pilot mode) for what the answers mean.

Run: pip install -e '.[bench]' dask-jobqueue && python benchmarks/dask_jobqueue_pilot.py
"""

from __future__ import annotations

import os
import tempfile
import time


def noop(i: int) -> int:
    return i


def crash(_: int) -> None:
    time.sleep(0.5)
    os._exit(1)


def sleeper(_: int) -> int:
    time.sleep(3)
    return os.getpid()


def marker(path: str) -> None:
    time.sleep(3)
    with open(path, "w") as done:
        done.write("ran to its end")


def outcome(future: object) -> str:
    try:
        return f"returned {future.result(timeout=120)}"  # type: ignore[attr-defined]
    except Exception as err:  # noqa: BLE001 - what dask says is the answer
        return f"{type(err).__name__}: {str(err)[:100]}"


def main() -> None:
    from dask.distributed import Client
    from dask_jobqueue import SLURMCluster

    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        cluster = SLURMCluster(
            cores=2,
            processes=1,
            memory="300MB",
            walltime="00:05:00",
            job_extra_directives=[f"--output={scratch}/worker-%j.out"],
            scheduler_options={"host": "127.0.0.1", "dashboard_address": None},
            local_directory=scratch,
        )
        client = Client(cluster)
        cluster.scale(jobs=1)
        client.wait_for_workers(1, timeout=300)
        joined = time.perf_counter()
        client.gather(client.map(noop, range(62)))
        ran = time.perf_counter()
        print(f"first worker joined after {joined - started:.2f} s (a Slurm job, then dask)")
        print(f"62 no-op tasks on it: {ran - joined:.3f} s")
        beside = client.submit(sleeper, 1, pure=False)
        time.sleep(0.5)
        crashing = client.submit(crash, 2, pure=False)
        print(f"(a) the task calling os._exit: {outcome(crashing)}")
        print(f"(a) the task running beside it: {outcome(beside)}")
        client.wait_for_workers(1, timeout=300)
        mark = os.path.join(scratch, "cancelled-task-ended")
        running = client.submit(marker, mark, pure=False)
        time.sleep(1)
        client.cancel(running)
        time.sleep(4)
        went_on = os.path.exists(mark)
        print(
            f"(b) a running task whose future was cancelled: future {running.status}, "
            f"{'yet it ran to its end' if went_on else 'and it was stopped'}"
        )
        client.close()
        cluster.close()


if __name__ == "__main__":
    main()
