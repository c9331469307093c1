"""DES SE on one simulated DECam exposure (60 scheduled CCDs) on the local DPU, with 1 and
with 2 workers: wall time, speed-up (the 1-worker run is the baseline measured in the same
run), seconds per CCD task, the peak memory of the CCD tasks, and where the time that does
not parallelise goes: start-up (submission to the first task), the exposure steps (SESky,
SECalibrate: one task while the other worker idles), the end (last task to dpu.wait's
return), and the idle worker-seconds in all. The machine's own speed-up is measured around
each pair of runs (a fixed CPU-bound loop in one process, then in two at once): on a
machine shared with other jobs it bounds what two workers can gain.

Run: python benchmarks/se_exposure.py [--scale 1.0] [--ccds 1,3-60,62] [--workers 1,2]
(--scale 0.25 for a quick run: CCDs of 512 x 1024 data pixels.)
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path


def run_once(archive: Path, ccds: str, workers: int, scratch: Path) -> dict[str, float]:
    from sqlalchemy import select

    from awe.db.models import Task
    from awe.dpu import Processor

    home = scratch / f"home-{workers}"
    home.mkdir()
    os.environ["AWE_HOME"] = str(home)
    dpu = Processor(session_log="", username="bench")
    dpu.backend().workers = workers
    dpu.get_jobids()
    started, clock = time.perf_counter(), datetime.now(UTC)
    job = dpu.run("SE", E=668439, b="i", n="20170817", c=ccds, C=1, O=1, a=str(archive))
    (status,) = dpu.wait(job)
    elapsed = time.perf_counter() - started
    ended = datetime.now(UTC)
    assert status.counts["E"] == status.counts["A"] == 0, status
    with dpu.database.session() as session:
        tasks = session.scalars(select(Task).where(Task.job_id == job)).all()
        per_ccd = [t.duration for t in tasks if t.sequence in ("SEDetrend", "SECatalog")]
        first = min(_utc(t.started_at) for t in tasks)
        last = max(_utc(t.finished_at) for t in tasks)
        exposure_steps = sum(t.duration for t in tasks if t.sequence in ("SESky", "SECalibrate"))
        busy = sum(t.duration for t in tasks)
    logs = "\n".join(_quiet_logs(dpu, job))
    peaks = [float(m) for m in re.findall(r"peak memory (\d+) MB", logs)]
    ccd_count = len(per_ccd) // 2
    return {
        "wall": elapsed,
        "ccds": ccd_count,
        "seconds_per_ccd": sum(per_ccd) / ccd_count,
        "median_task": statistics.median(per_ccd),
        "peak_mb": max(peaks),
        "startup": (first - clock).total_seconds(),
        "exposure_steps": exposure_steps,
        "end": (ended - last).total_seconds(),
        "idle": elapsed * workers - busy,
    }


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _burn(_: int) -> float:
    """A fixed CPU-bound loop; its own wall time."""
    started = time.perf_counter()
    total = 0
    for i in range(15_000_000):
        total += i & 7
    return time.perf_counter() - started


def machine_speedup() -> float:
    """What two processes gain over one on this machine now: 2 * t(alone) / t(two at once)."""
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(2) as pool:
        alone = pool.map(_burn, [0], chunksize=1)[0]
        together = pool.map(_burn, [0, 1], chunksize=1)
    return 2 * alone / max(together)


def _quiet_logs(dpu, job: int) -> list[str]:
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        return dpu.get_logs(job)[job]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--ccds", default="1,3-60,62")
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()
    from awe.data.des_archive import Archive, build_calibration_from_truth, stage_night
    from awe.data.simulate import simulate_night

    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        started = time.perf_counter()
        plan = {
            "bias": {"count": 0}, "dome_flat": {"count": 0}, "twilight_flat": {"count": 0},
            "standard": {"count": 0}, "science": {"count": 1}, "crosstalk": True,
        }  # fmt: skip
        simulate_night("DECam", "2017-08-17", scratch / "night", scale=args.scale,
                       exposures=[668439], filters=["i"], plan=plan)  # fmt: skip
        archive = Archive.at(scratch / "archive")
        stage_night(scratch / "night", archive, "20170817")
        build_calibration_from_truth(scratch / "night", archive, "Y7")
        print(f"simulated and staged in {time.perf_counter() - started:.0f} s (scale {args.scale})")
        results = {}
        machine = [machine_speedup()]
        for workers in (int(w) for w in args.workers.split(",")):
            results[workers] = run_once(archive.root, args.ccds, workers, scratch)
            r = results[workers]
            print(
                f"{workers} worker(s): {r['wall']:.1f} s for {r['ccds']} CCDs; "
                f"{r['seconds_per_ccd']:.2f} s of CCD tasks per CCD (median task "
                f"{r['median_task']:.2f} s); peak memory of a CCD task {r['peak_mb']:.0f} MB"
            )
            print(
                f"  start-up {r['startup']:.1f} s, exposure steps {r['exposure_steps']:.1f} s, "
                f"end {r['end']:.1f} s; idle worker-seconds {r['idle']:.1f}"
            )
        machine.append(machine_speedup())
        print(f"the machine's own 2-process speed-up, before and after: {machine[0]:.2f}, "
              f"{machine[1]:.2f}")  # fmt: skip
        if 1 in results:
            r = results[1]
            serial = r["startup"] + r["exposure_steps"] + r["end"]
            bound = 2 / (1 + serial / r["wall"])
            print(
                f"serial part of the 1-worker run (start-up, exposure steps, end): {serial:.1f} "
                f"of {r['wall']:.1f} s; Amdahl's bound for 2 workers {bound:.2f}"
            )
        if 1 in results and len(results) > 1:
            for workers, r in results.items():
                if workers != 1:
                    print(f"speed-up {workers} vs 1 worker: {results[1]['wall'] / r['wall']:.2f}")


if __name__ == "__main__":
    main()
