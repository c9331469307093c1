"""The queue page and its API stay as fast with many jobs as with few: one page of 50 rows
(`/api/jobs`, and the HTML queue `/`) from a database of --many jobs, against the same from
a database of --few jobs (the baseline), in the same run. Also one job page of a job with
--tasks tasks. Served by the real application in process (Starlette's TestClient), SQLite.

    python benchmarks/web_queue.py [--few 100] [--many 5000] [--tasks 500] [--repeat 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from awe.db.engine import open_database  # noqa: E402
from awe.db.jobs import TaskSpec, record_job  # noqa: E402


def make_database(folder: Path, jobs: int, tasks_per_job: int = 4) -> str:
    url = f"sqlite:///{folder / f'jobs{jobs}.db'}"
    database = open_database(url)
    specs = [TaskSpec(f"Bench[c{i}]", key=f"c{i}") for i in range(tasks_per_job)]
    for number in range(jobs):
        record_job(
            database,
            username=f"user{number % 7}",
            project="BENCH",
            sequence="Bench",
            dpu_name="lisa",  # not configured here: the server leaves these jobs alone
            tasks=specs,
            options={"n": number},
        )
    database.dispose()
    return url


def client(url: str, folder: Path):
    from starlette.testclient import TestClient

    from awe.web.app import Settings, create_app

    settings = Settings(url, str(folder / "data"), "BENCH", ("local",), "bench", 0)
    return TestClient(create_app(settings))


def median_seconds(http, path: str, repeat: int) -> float:
    http.get(path).raise_for_status()  # warm: templates compiled, connections open
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        http.get(path).raise_for_status()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--few", type=int, default=100)
    parser.add_argument("--many", type=int, default=5000)
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        few, many = make_database(folder, args.few), make_database(folder, args.many)
        big = open_database(few)
        tasks = [TaskSpec(f"Big[c{i}]", key=f"c{i}") for i in range(args.tasks)]
        big_job = record_job(
            big, username="u", project="BENCH", sequence="Big", dpu_name="lisa", tasks=tasks
        )
        big.dispose()
        with client(few, folder) as small_http, client(many, folder) as large_http:
            for path in ("/api/jobs", "/"):
                base = median_seconds(small_http, path, args.repeat)
                large = median_seconds(large_http, path, args.repeat)
                print(f"{path} with {args.few} jobs: {base * 1000:.1f} ms (baseline)")
                print(f"{path} with {args.many} jobs: {large * 1000:.1f} ms")
                print(f"ratio {args.many}/{args.few} jobs: {large / base:.2f}")
            page = median_seconds(small_http, f"/jobs/{big_job}", max(3, args.repeat // 4))
            api = median_seconds(small_http, f"/api/jobs/{big_job}", max(3, args.repeat // 4))
            print(f"job page of a {args.tasks}-task job: {page * 1000:.1f} ms")
            print(f"/api/jobs/ID of a {args.tasks}-task job: {api * 1000:.1f} ms")


if __name__ == "__main__":
    main()
