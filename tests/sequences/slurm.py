"""Sequences only the Slurm DPU tests run (copied into $AWE_HOME/sequences/ beside
testing.py)."""

import os
import time
from pathlib import Path

from awe.sequence import Option, Unit, sequence


@sequence(
    options=[Option("m", "megabytes", int, 400, help="how much memory to take")],
    fan_out="global",
)
def Hog(task):
    """Take memory 20 MB at a time, well past any small --mem, touching every page."""
    blocks = []
    for _ in range(task.options["megabytes"] // 20):
        blocks.append(bytearray(b"x" * (20 << 20)))
        time.sleep(0.05)
    task.log.info("held %d MB", 20 * len(blocks))


@sequence(
    fan_out="chip",
    select=lambda options, context: [Unit(key=u.key) for u in context.previous],
)
def ChipAgain(task):
    """Once per chip of the step before, after that chip: a chip-to-chip step."""
    task.log.info("again %s after %d upstream products", task.unit.key, len(task.upstream))


@sequence(
    options=[
        Option("n", "count", int, 2, help="number of chips"),
        Option("s", "sleep", float, 5.0, help="seconds each task sleeps"),
    ],
    fan_out="chip",
    select=lambda options, context: [Unit(key=f"c{i}") for i in range(options["count"])],
    retries=1,
)
def Patient(task):
    """Sleep, once per chip; a try lost with its process (or allocation) is run once more."""
    pid_file = Path(os.environ["AWE_HOME"]) / f"pid-{task.job_id}-{task.unit.key}"
    pid_file.write_text(str(os.getpid()))
    time.sleep(task.options["sleep"])
    task.log.info("%s slept", task.unit.key)
