"""Sequences the DPU tests run. Registered like a user's own: copied into
``$AWE_HOME/sequences/`` by the ``dpu`` fixture."""

import ctypes
import os
import sys
import time
from pathlib import Path

from awe.sequence import NothingToDo, Option, Unit, sequence


def _chips(options, context):
    return [Unit(key=f"c{i}", inputs=(i,)) for i in range(options["count"])]


@sequence(
    options=[
        Option("n", "count", int, 3, help="number of chips"),
        Option("s", "sleep", float, 0.0, help="seconds each task sleeps"),
        Option("o", "object", str, "", help="echoed back"),
    ],
    parameters={"Hello.process_params.GREETING": "Hello"},
    fan_out="chip",
    select=_chips,
    estimate=2.0,
)
def Hello(task):
    """Greet each chip and write a small product."""
    greeting = task.parameters["Hello.process_params.GREETING"]
    task.log.info("%s from %s", greeting, task.unit.key)
    print("on stdout:", task.options["object"])
    print("on stderr", file=sys.stderr)
    pid_file = Path(os.environ["AWE_HOME"]) / f"pid-{task.job_id}-{task.unit.key}"
    pid_file.write_text(str(os.getpid()))
    time.sleep(task.options["sleep"])
    product = task.work_dir / f"hello-{task.unit.key}.txt"
    product.write_text(f"{greeting} {task.unit.key} {task.options['object']}\n")
    task.add_product(product, "HelloFile", chip=task.unit.key)


@sequence(fan_out="global", estimate=1.0)
def Total(task):
    """Count the products of the step before."""
    task.log.info("upstream products: %d", len(task.upstream))


@sequence(fan_out="global", tolerant=True)
def Survivors(task):
    """Count the products of the step before, going on when only some of it failed."""
    task.log.info("upstream products: %d", len(task.upstream))


OUTCOMES = ["ok", "fail", "exit", "segfault", "skip"]


@sequence(
    fan_out="chip",
    select=lambda options, context: [Unit(key=k) for k in OUTCOMES],
)
def Outcomes(task):
    """One task per way a task can end."""
    kind = task.unit.key
    if kind == "fail":
        raise ValueError("this chip is broken")
    if kind == "exit":
        os._exit(3)
    if kind == "segfault":
        ctypes.string_at(0)
    if kind == "skip":
        raise NothingToDo("already done")
    task.log.info("fine")


@sequence(fan_out="global")
def Fail(task):
    """Always raises."""
    raise RuntimeError("deliberate failure")


@sequence(
    options=[Option("e", "exposure", int, 1)],
    fan_out="exposure",
    select=lambda options, context: [Unit(key=str(options["exposure"]))],
)
def PerExposure(task):
    """Fans out per exposure."""


@sequence(
    options=[Option("i", "instrument", str, required=True, help="instrument name")],
    fan_out="global",
)
def NeedsInstrument(task):
    """Has a required option."""


@sequence(
    options=[Option("i", "instrument", str)],
    fan_out="chip",
    select=lambda options, context: [],
)
def FindsNothing(task):
    """Selects no inputs."""


@sequence(
    options=[Option("i", "instrument", str, required=True), Option("n", "count", int, 2)],
    parameters={"BiasFrame.process_params.SIGMA_CLIP": 3.0},
    fan_out="chip",
    select=lambda options, context: [Unit(key=f"ccd5{i}") for i in range(options["count"])],
)
def MakeBias(task):
    """Write a small deterministic 'master bias' per chip and report it as a BiasFrame."""
    path = task.work_dir / f"bias_{task.unit.key}.txt"
    clip = task.parameters["BiasFrame.process_params.SIGMA_CLIP"]
    path.write_text(f"bias {task.unit.key} clip {clip}\n")
    task.add_product(
        path, "BiasFrame", chip=task.unit.key, night="2000-04-28", results={"level": 400.0}
    )
    other = task.work_dir / "notes.txt"
    other.write_text("not a frame\n")
    task.add_product(other, "Scribble")


def _exposure_chips(options, context):
    """Chips 0..count-1 of exposures 1 and 2, each naming its exposure as its group."""
    return [Unit(key=f"{e}/{c}", group=str(e)) for e in (1, 2) for c in range(options["count"])]


@sequence(
    options=[
        Option("n", "count", int, 2, help="chips per exposure"),
        Option("s", "sleep", float, 0.0, help="seconds each chip task sleeps"),
    ],
    fan_out="chip",
    select=_exposure_chips,
)
def ExposureChips(task):
    """Per chip of two exposures: sleep, then write a product naming the chip."""
    time.sleep(task.options["sleep"])
    product = task.work_dir / "chip.txt"
    product.write_text(task.unit.key)
    task.add_product(product, "ChipFile", chip=task.unit.key)


@sequence(
    fan_out="exposure",
    select=lambda options, context: [Unit(key="1"), Unit(key="2")],
)
def ExposureWhole(task):
    """Per exposure: name the chips it waited for, and write an exposure product."""
    chips = sorted(p.metadata["chip"] for p in task.upstream)
    task.log.info("exposure %s waited for %s", task.unit.key, ",".join(chips))
    product = task.work_dir / "exposure.txt"
    product.write_text(task.unit.key)
    task.add_product(product, "ExposureFile", exposure=task.unit.key)


@sequence(
    options=[Option("n", "count", int, 2, help="chips per exposure")],
    fan_out="chip",
    select=_exposure_chips,
)
def ExposureChipsAgain(task):
    """Per chip again: name the exposure task it waited for."""
    exposures = sorted(p.metadata["exposure"] for p in task.upstream)
    task.log.info("chip %s waited for exposure %s", task.unit.key, ",".join(exposures))
