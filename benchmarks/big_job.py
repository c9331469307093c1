"""Ten thousand tasks in one job: seconds per phase and peak memory, at two sizes.

One no-op per-chip job of ``--small`` tasks, then of ``--large`` tasks (default 1,000 and
10,000), on the local DPU, on SQLite and on MariaDB (a scratch database on the shared
server at 127.0.0.1:3306, dropped afterwards). Phases, each timed on its own:

- plan: the selection and the task graph (``JobService.plan``);
- record: the job and all its tasks and edges in one transaction (``record_job``);
- submit: the rest of ``dpu.run``: code snapshot, job.json, the runner started;
- run: until the runner has left (every task ran and journalled), not syncing meanwhile;
- sync: one ``get_status``, folding every journal into the database;
- logs: ``get_logs`` of the whole job; status: one more ``get_status`` (nothing new).

Peak memory: the session (this process's maximum RSS, growing with the larger job) and the
runner's (its VmHWM, sampled while it runs). The figure that counts: per-task cost at the
large size over the per-task cost at the small one (1.0: proportionate; 10: quadratic).

Run: python benchmarks/big_job.py [--small 1000] [--large 10000] [--databases sqlite,mariadb]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import threading
import time
from pathlib import Path

NOOP_SEQUENCE = '''
from awe.sequence import Option, Unit, sequence

@sequence(fan_out="chip", options=[Option("t", "tasks", int, 1)],
          select=lambda o, c: [Unit(key=f"ccd{i:05d}") for i in range(o["tasks"])])
def NoOp(task):
    """Does nothing, once per chip."""
'''
PHASES = ("plan", "record", "submit", "run", "sync", "logs", "status")


class RunnerMemory:
    """The runner's peak RSS (VmHWM), sampled from /proc while it lives."""

    def __init__(self, job_dir: Path) -> None:
        self.job_dir, self.peak_kb, self.stop = job_dir, 0, threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while not self.stop.is_set():
            try:
                pid = json.loads((self.job_dir / "runner.json").read_text())["pid"]
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        self.peak_kb = max(self.peak_kb, int(line.split()[1]))
            except (OSError, ValueError, KeyError):
                pass
            self.stop.wait(0.1)


def one_job(database_url: str, tasks: int) -> dict[str, float]:
    """Seconds per phase of one NoOp job of ``tasks`` tasks, and the runner's peak (MB)."""
    import awe.db.jobs
    from awe.dpu import Processor

    dpu = Processor(session_log="", username="bench", database_url=database_url)
    dpu.get_jobids()  # open (create) the database outside the timing
    times: dict[str, float] = {}
    real_record = awe.db.jobs.record_job

    def timed_record(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - a pass-through
        started = time.perf_counter()
        job_id = real_record(*args, **kwargs)
        times["record"] = time.perf_counter() - started
        return job_id

    awe.db.jobs.record_job = timed_record
    try:
        steps = dpu._resolve("NoOp")  # noqa: SLF001 - the phases of dpu.run, one by one
        parsed = dpu.jobs.parse(steps, {"t": tasks}, None)
        backend = dpu.backend()
        started = time.perf_counter()
        plan = dpu.jobs.plan("NoOp", steps, parsed, backend)
        times["plan"] = time.perf_counter() - started
        started = time.perf_counter()
        job_id = dpu.jobs.submit(plan)
        times["submit"] = time.perf_counter() - started - times["record"]
    finally:
        awe.db.jobs.record_job = real_record
    job_dir = Path(backend.transport.work_dir) / "jobs" / str(job_id)
    memory = RunnerMemory(job_dir)
    started = time.perf_counter()
    while backend.runner_alive(str(job_dir)) is not False:
        time.sleep(0.05)
    times["run"] = time.perf_counter() - started
    memory.stop.set()
    for phase, call in (
        ("sync", lambda: dpu.get_status(job_id)),
        ("logs", lambda: dpu.get_logs(job_id)),
        ("status", lambda: dpu.get_status(job_id)),
    ):
        started = time.perf_counter()
        result = call()
        times[phase] = time.perf_counter() - started
    (status,) = dpu.get_status(job_id)
    assert status.counts["N"] == tasks, status
    assert len(result) == 1 and len(dpu.get_logs(job_id)[job_id]) >= tasks
    times["runner_mb"] = memory.peak_kb / 1024
    return times


def scratch_mariadb() -> tuple[str, str]:
    name = f"awe_bench_big_{os.getpid()}"
    return f"mysql+pymysql://root@127.0.0.1:3306/{name}", name


def drop_mariadb(name: str) -> None:
    import pymysql

    connection = pymysql.connect(host="127.0.0.1", port=3306, user="root")
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=10000)
    parser.add_argument("--databases", default="sqlite,mariadb")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for database in args.databases.split(","):
            for tasks in (args.small, args.large):
                home = Path(folder) / f"home-{database}-{tasks}"  # job ids restart per database
                (home / "sequences").mkdir(parents=True)
                (home / "sequences" / "noop.py").write_text(NOOP_SEQUENCE)
                os.environ["AWE_HOME"] = str(home)
                if database == "sqlite":
                    url, name = f"sqlite:///{folder}/jobs-{tasks}.db", None
                else:
                    url, name = scratch_mariadb()
                try:
                    times = one_job(url, tasks)
                finally:
                    if name:
                        drop_mariadb(name)
                session_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                rows.append((database, tasks, times, session_mb))
    print(f"{'database':8} {'tasks':>6} " + " ".join(f"{p:>7}" for p in PHASES) + "   total")
    for database, tasks, times, _ in rows:
        total = sum(times[p] for p in PHASES)
        print(
            f"{database:8} {tasks:>6} "
            + " ".join(f"{times[p]:7.2f}" for p in PHASES)
            + f" {total:7.2f} s"
        )
    for database, tasks, times, session_mb in rows:
        print(
            f"{database:8} {tasks:>6}: session peak RSS {session_mb:.0f} MB (so far), "
            f"runner peak RSS {times['runner_mb']:.0f} MB"
        )
    for database in args.databases.split(","):
        small, large = (r for r in rows if r[0] == database)
        ratios = [
            f"{p} {(large[2][p] / large[1]) / (small[2][p] / small[1]):.2f}"
            for p in PHASES
            if small[2][p] > 0
        ]
        total_ratio = (sum(large[2][p] for p in PHASES) / large[1]) / (
            sum(small[2][p] for p in PHASES) / small[1]
        )
        print(
            f"ratio per-task cost {large[1]}/{small[1]} on {database}: {total_ratio:.2f} "
            f"({', '.join(ratios)})"
        )


if __name__ == "__main__":
    main()
