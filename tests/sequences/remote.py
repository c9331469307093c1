"""Sequences the SSH DPU tests run (copied into $AWE_HOME/sequences/)."""

import os
import time
from pathlib import Path

from awe.sequence import Option, Unit, file_input, sequence


@sequence(
    options=[Option("n", "count", int, 2), Option("o", "object", str, "")],
    fan_out="chip",
    select=lambda options, context: [Unit(key=f"c{i}") for i in range(options["count"])],
)
def Echo(task):
    """Write the object option to a product, byte for byte."""
    marker = "version 1"
    task.log.info("Echo %s", marker)
    task.log.info("object=%r", task.options["object"])
    path = task.work_dir / f"echo-{task.unit.key}.txt"
    path.write_text(f"{task.unit.key}:{task.options['object']}\n")
    task.add_product(path, "EchoFile", chip=task.unit.key)


@sequence(options=[Option("s", "sleep", float, 30.0)], fan_out="global")
def Nap(task):
    """Sleep, writing the pid first."""
    (task.work_dir / "pid").write_text(str(os.getpid()))
    time.sleep(task.options["sleep"])
    task.log.info("woke up")


@sequence(
    options=[Option("f", "file", str, required=True)],
    fan_out="global",
    select=lambda options, context: [Unit(inputs=(file_input(options["file"]),))],
)
def Digest(task):
    """Read a staged input file."""
    staged = task.unit.inputs[0]
    task.log.info("input at %s: %s", staged["path"], Path(staged["path"]).read_text().strip())
