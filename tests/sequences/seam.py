"""Sequences of the DPU seam tests (copied into $AWE_HOME/sequences/ by tests/test_seam.py):
which code a task ran."""

import awe
from awe.sequence import sequence

marker = "version 1"


@sequence(fan_out="global")
def WhichCode(task):
    """Say which code runs this task: this file's marker, and where awe and it come from."""
    task.log.info("marker: %s", marker)
    task.log.info("awe from: %s", awe.__file__)
    task.log.info("sequence from: %s", __file__)
