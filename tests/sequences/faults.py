"""Sequences the fault-injection tests run (tests/test_faults.py): copied into
``$AWE_HOME/sequences/`` beside testing.py."""

import os
import signal
import time
from pathlib import Path

from awe.sequence import Option, Unit, sequence


@sequence(
    options=[Option("i", "instrument", str, required=True), Option("n", "count", int, 2)],
    fan_out="chip",
    select=lambda options, context: [Unit(key=f"ccd5{i}") for i in range(options["count"])],
)
def Tamper(task):
    """Report a product, then change the file: its content now equals MakeBias's."""
    path = task.work_dir / f"bias_{task.unit.key}.txt"
    path.write_text("what the task reported\n")
    task.add_product(path, "BiasFrame", chip=task.unit.key, night="2000-04-28")
    path.write_text(f"bias {task.unit.key} clip 5.0\n")


@sequence(
    options=[Option("k", "kills", int, 1, help="tries that die before one succeeds")],
    fan_out="chip",
    select=lambda options, context: [Unit(key="c0"), Unit(key="c1")],
    retries=2,
)
def Flaky(task):
    """Chip c0 dies (SIGKILL, as on a lost node) on its first ``kills`` tries, each after
    reporting a product; c1 is fine."""
    tries = Path(os.environ["AWE_HOME"]) / f"tries-{task.job_id}-{task.unit.key}"
    count = int(tries.read_text()) + 1 if tries.exists() else 1
    tries.write_text(str(count))
    task.log.info("try %d of %s", count, task.unit.key)
    product = task.work_dir / f"flaky-{task.unit.key}-{count}.txt"
    product.write_text(f"{task.unit.key} made on try {count}\n")
    task.add_product(product, "BiasFrame", instrument="WFI", chip=task.unit.key)
    if task.unit.key == "c0" and count <= task.options["kills"]:
        os.kill(os.getpid(), signal.SIGKILL)  # after reporting a product: it must not count


@sequence(fan_out="global", time_limit=1.0, retries=3)
def Sleepy(task):
    """Sleeps past its time limit: a timeout is never retried."""
    time.sleep(30)


@sequence(
    options=[Option("n", "count", int, 3)],
    fan_out="chip",
    select=lambda options, context: [Unit(key=f"c{i}") for i in range(options["count"])],
)
def Fragile(task):
    """Chip c1 fails until the file ``fixed`` exists in AWE_HOME; each chip writes a product."""
    tries = Path(os.environ["AWE_HOME"]) / f"ran-{task.unit.key}"
    tries.write_text(tries.read_text() + "x" if tries.exists() else "x")
    if task.unit.key == "c1" and not (Path(os.environ["AWE_HOME"]) / "fixed").exists():
        raise RuntimeError("c1 is not fixed yet")
    product = task.work_dir / f"fragile-{task.unit.key}.txt"
    product.write_text(f"{task.unit.key}\n")
    task.add_product(product, "BiasFrame", instrument="WFI", chip=task.unit.key)


@sequence(fan_out="global")
def FillDisk(task):
    """Write until the disk is full (the task then fails with 'No space left on device')."""
    block = b"\0" * 65536
    with open(task.work_dir / "big.bin", "wb") as out:
        while True:
            out.write(block)
            out.flush()
