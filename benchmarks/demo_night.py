"""The whole demo night end to end on the local DPU, with 1 and with 2 workers: the
calibration (Bias to MasterFlat, Gain, QuickCheck, filter #842) and the image pipeline
(zeropoints, 'Reduce>GAstrometry>Regrid>Coadd', 'Coadd>SourceList'), as
``awe demo --pipeline`` runs them. The 1-worker run is the baseline measured in the same
run; target: speed-up >= 1.8.

The night is simulated once (not timed) and ingested into a fresh AWE home per run; what
is timed is the processing, from the first ``dpu.run`` to the last job's end.

Run: python benchmarks/demo_night.py [--scale 0.125] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import tempfile
import time
from pathlib import Path


def run_once(night: Path, scale_home: Path, workers: int) -> dict[str, float]:
    from awe.calibration_cli import demo_calibration
    from awe.data.ingestion import ingest
    from awe.data.simulate import REFCAT_FOLDER
    from awe.data.store import DataStore
    from awe.demo import INSTRUMENT, NIGHT
    from awe.dpu import Processor
    from awe.pipeline_demo import run_pipeline_demo

    home = scale_home / f"home-{workers}"
    home.mkdir()
    os.environ["AWE_HOME"] = str(home)
    dpu = Processor(session_log="", username="bench")
    ingest([night], database=dpu.database, store=DataStore(dpu.env.data_root), progress=False)
    dpu.backend().workers = workers
    printed = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        calibrated = demo_calibration(dpu, INSTRUMENT, NIGHT, filter="#842")
        calibration = time.perf_counter() - started
        refcat = night / REFCAT_FOLDER
        processed = run_pipeline_demo(dpu, INSTRUMENT, NIGHT, refcat, filters=["#842"])
    wall = time.perf_counter() - started
    if not (calibrated and processed):
        print(printed.getvalue()[-3000:])
        raise SystemExit(f"the night did not process cleanly with {workers} worker(s)")
    tasks = sum(status.total for status in dpu.get_status(dpu.get_jobids()))
    return {"wall": wall, "calibration": calibration, "tasks": tasks}


def main() -> None:
    from awe.data.simulate import simulate_night
    from awe.demo import INSTRUMENT, NIGHT, PLAN

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.125)
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="awe-demo-night-") as scratch:
        night = Path(scratch) / "night"
        started = time.perf_counter()
        simulate_night(INSTRUMENT, NIGHT, night, scale=args.scale, plan=PLAN, progress=False)
        took = time.perf_counter() - started
        print(f"simulated the demo night at scale {args.scale:g} in {took:.1f} s")
        results = {}
        for workers in (int(w) for w in args.workers.split(",")):
            results[workers] = figures = run_once(night, Path(scratch), workers)
            print(
                f"{workers} worker(s): {figures['wall']:.1f} s for {figures['tasks']} tasks "
                f"(calibration {figures['calibration']:.1f} s, pipeline "
                f"{figures['wall'] - figures['calibration']:.1f} s)"
            )
        if 1 in results and 2 in results:
            print(f"speed-up 2 workers / 1 worker: {results[1]['wall'] / results[2]['wall']:.2f}")


if __name__ == "__main__":
    main()
