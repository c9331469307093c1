"""Sequences only the Slurm DPU tests run (copied into $AWE_HOME/sequences/ beside
testing.py)."""

import time

from awe.sequence import Option, sequence


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
