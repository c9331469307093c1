"""Startup time of the awe> prompt, against bare IPython measured in the same run.

Prints the median wall time of ``awe -c pass`` and of the baseline ``ipython -c pass``
(default profile), and their ratio. Target: ``awe -c pass`` under 1.5 s on the CI machine.
Run: python benchmarks/startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time


def median_seconds(command: list[str], env: dict[str, str], runs: int) -> float:
    subprocess.run(command, env=env, capture_output=True, check=True)  # warm the disk cache
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "AWE_HOME": f"{scratch}/home", "IPYTHONDIR": f"{scratch}/ipython"}
        awe = median_seconds([shutil.which("awe"), "-c", "pass"], env, args.runs)
        ipython = median_seconds([shutil.which("ipython"), "-c", "pass"], env, args.runs)
    print(f"awe -c pass     : {awe:.3f} s (median of {args.runs})")
    print(f"ipython -c pass : {ipython:.3f} s (baseline)")
    print(f"ratio awe/ipython: {awe / ipython:.2f}  (AWE's own cost: {awe - ipython:+.3f} s)")


if __name__ == "__main__":
    main()
