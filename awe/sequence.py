"""Declaring processing sequences: the only part of AWE a sequence module needs.

A sequence is a plain function over one task's worth of data, plus a declaration of its
options, its process parameters, and how it selects inputs and fans out::

    from awe.sequence import Option, Unit, sequence

    @sequence(
        options=[Option("i", "instrument", str, required=True, help="instrument name")],
        parameters={"Greeting.process_params.LOUD": False},
        fan_out="chip",
        select=lambda options, context: [Unit(key=c) for c in ("ccd50", "ccd51")],
    )
    def Greet(task):
        task.log.info("Hello from %s", task.unit.key)

The DPU finds sequences by name (the built-in ``sequences`` package, the entry-point group
``awe.sequences``, and ``*.py`` files in ``$AWE_HOME/sequences/``). This module knows nothing
of the DPU: it only records declarations, so sequences stay plain, testable functions.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FAN_OUTS: tuple[str, ...] = ("chip", "exposure", "workunit", "global")
#: The most ``retries`` a sequence may declare (a task that keeps dying is a bug, not bad luck).
MAX_RETRIES = 10


@dataclass(frozen=True)
class Option:
    """One option of a sequence, with a short and a long name (Astro-WISE's OptionsParser)."""

    short: str
    long: str
    type: type = str
    default: Any = None
    required: bool = False
    help: str = ""

    def describe_default(self) -> str:
        return "" if self.default is None else repr(self.default).strip("'")


@dataclass(frozen=True)
class Unit:
    """One task's worth of work chosen by a sequence's ``select``.

    ``key`` names what the task covers (a chip, an exposure, a work unit; ``None`` for a
    global task) and links chain steps: chip c of step B waits for chip c of step A.
    ``inputs`` are JSON-able references (paths, frame ids) handed to the task.
    ``group`` names the coarser unit this one belongs to (a chip's exposure): it links steps
    of different fan-outs, so an exposure's task waits for exactly that exposure's chips,
    and a chip after it waits for its own exposure's task.
    """

    key: str | None = None
    inputs: tuple[Any, ...] = ()
    group: str | None = None


def file_input(path: str | Path) -> dict[str, str]:
    """A file as a task input: by path and content hash, so a remote DPU receives it once
    (into its content-addressed store) and the task finds it at ``input["path"]``."""
    from awe.data.store import sha256_file
    from awe.messages import FileRef

    resolved = Path(path).expanduser().resolve()
    return FileRef(str(resolved), sha256_file(resolved), resolved.name).to_json()


@dataclass(frozen=True)
class SelectionContext:
    """What ``select`` may consult: the job database and the session's settings, and in a
    chain the units and the name of the step before (whose products this step's tasks will
    receive as ``task.upstream``; e.g. 'Reduce>Astrometry' plans one Astrometry per Reduce
    unit, 'Bias>HotPixels' a hot pixel map from the bias the job is making)."""

    database: Any
    env: Any
    previous: tuple[Unit, ...] = ()
    previous_step: str | None = None
    #: The units of the newest step before with keys (per chip or per exposure). After a
    #: global step, as in 'Reduce>GAstrometry>Regrid', a per-chip step resumes these: each
    #: of its units also waits for the tasks of its key in every earlier step (Reduce's,
    #: GAstromSL's) and receives their products.
    keyed_before: tuple[Unit, ...] = ()


class NoInputs(Exception):
    """Raised by ``select`` to say what it searched for and did not find."""


class NothingToDo(Exception):
    """Raised by a running task that finds its work already done: the task ends ``S``."""


@dataclass(frozen=True)
class Product:
    """A file a task produced, as reported in its journal."""

    path: str
    kind: str
    sha256: str
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class TaskContext:
    """Everything a running task gets: its unit, options, parameters, logger and folder."""

    job_id: int
    number: int
    name: str
    unit: Unit
    options: dict[str, Any]
    parameters: dict[str, Any]
    work_dir: Path
    upstream: list[Product]
    log: logging.Logger
    add_product: Callable[..., Product]


def _single_global_unit(options: Mapping[str, Any], context: SelectionContext) -> list[Unit]:
    return [Unit()]


@dataclass(frozen=True)
class SequenceSpec:
    """A registered sequence: its function and its declaration."""

    name: str
    function: Callable[[TaskContext], Any]
    options: tuple[Option, ...]
    parameters: Mapping[str, Any]
    fan_out: str
    select: Callable[[Mapping[str, Any], SelectionContext], list[Unit]]
    estimate: float
    time_limit: float
    module: str
    retries: int = 0
    tolerant: bool = False
    preload: tuple[str, ...] = ()  # modules the runner imports before forking its workers

    chain: tuple[str, ...] = ()  # a named chain: the steps it stands for

    @property
    def doc(self) -> str:
        lines = (self.function.__doc__ or "").strip().splitlines()
        return lines[0] if lines else ""


#: Every sequence declared in this process, by name.
DECLARED: dict[str, SequenceSpec] = {}


def sequence(
    name: str | None = None,
    *,
    options: Sequence[Option] = (),
    parameters: Mapping[str, Any] | None = None,
    fan_out: str = "global",
    select: Callable[[Mapping[str, Any], SelectionContext], list[Unit]] | None = None,
    estimate: float = 10.0,
    time_limit: float = 3600.0,
    retries: int = 0,
    tolerant: bool = False,
    preload: Sequence[str] = (),
) -> Callable[[Callable[[TaskContext], Any]], Callable[[TaskContext], Any]]:
    """Declare the decorated function as a sequence named ``name`` (default: its name).

    ``estimate`` is the expected seconds per task (for "Estimated process time");
    ``time_limit`` the default seconds after which a task is aborted (``A``).
    ``retries``: how many times a task that ended ``A`` because its process died (a lost
    node, the OOM killer) is run again; a time limit or a cancel is never retried.
    ``tolerant``: a task runs when only some of the tasks it waits for failed, with the
    products of those that ended N (an exposure's sky from the CCDs that worked); it is
    skipped only when every one of them failed. By default one failure skips it.
    ``preload``: modules (``'astropy.io.fits'``) the local runner imports once, before it
    forks its workers, so that every task, a child forked from a worker, starts with them
    imported. A sequence imports its heavy libraries inside its functions, to keep ``awe``
    start-up fast; without ``preload`` each task pays those imports again (about 1 s for
    astropy and sep, as much as a small CCD task's work).
    """
    if not (isinstance(retries, int) and 0 <= retries <= MAX_RETRIES):
        raise ValueError(f"retries={retries!r}; give a whole number from 0 to {MAX_RETRIES}")
    if fan_out not in FAN_OUTS:
        raise ValueError(f"fan_out={fan_out!r}; choose one of {', '.join(FAN_OUTS)}")
    if fan_out != "global" and select is None:
        raise ValueError(f"a sequence that fans out per {fan_out} needs a select function")
    shorts = [o.short for o in options]
    longs = [o.long for o in options]
    for names in (shorts, longs):
        repeated = {n for n in names if names.count(n) > 1}
        if repeated:
            raise ValueError(f"option names used twice: {sorted(repeated)}")

    def register(function: Callable[[TaskContext], Any]) -> Callable[[TaskContext], Any]:
        spec_name = name or function.__name__
        existing = DECLARED.get(spec_name)
        if existing is not None and existing.module != function.__module__:
            raise ValueError(
                f"sequence {spec_name!r} is declared twice: in {existing.module} and in "
                f"{function.__module__}; rename one of them"
            )
        DECLARED[spec_name] = SequenceSpec(
            name=spec_name,
            function=function,
            options=tuple(options),
            parameters=dict(parameters or {}),
            fan_out=fan_out,
            select=select or _single_global_unit,
            estimate=float(estimate),
            time_limit=float(time_limit),
            module=function.__module__,
            retries=retries,
            tolerant=bool(tolerant),
            preload=tuple(preload),
        )
        return function

    return register


def declare_chain(name: str, steps: Sequence[str], doc: str, fan_out: str = "chip") -> None:
    """Declare ``name`` as the chain of ``steps``: ``dpu.run(name)`` runs ``'A>B>C'``.

    A pipeline such as DES SE is several steps of different fan-outs (per CCD, per exposure,
    per CCD again) that a user asks for by one name; ``fan_out`` is what the listing shows."""
    if not steps:
        raise ValueError(f"chain {name!r} needs at least one step")

    def describe(task: TaskContext) -> None:  # never run: the steps are
        raise RuntimeError(f"{name} is a chain of {'>'.join(steps)}; its steps run, not it")

    describe.__doc__ = doc
    module = sys._getframe(1).f_globals.get("__name__", __name__)
    existing = DECLARED.get(name)
    if existing is not None and existing.module != module:
        raise ValueError(f"sequence {name!r} is declared twice: in {existing.module} and {module}")
    DECLARED[name] = SequenceSpec(
        name=name,
        function=describe,
        options=(),
        parameters={},
        fan_out=fan_out,
        select=_single_global_unit,
        estimate=0.0,
        time_limit=0.0,
        module=module,
        chain=tuple(steps),
    )
