"""From a resolved chain and its options to a task graph.

Each step's ``select`` chooses its units (chips, exposures, work units, or one global
unit). A task of a step waits only for what it needs from the step before: the task with
the same key, or every task when either side is global. Between a per-chip and a
per-exposure step the units' ``group`` links them: an exposure's task waits for exactly the
chips whose group is that exposure, and a chip after an exposure step waits for the task
of its own group. A step that selects nothing is an error saying what was searched for;
nothing is queued.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from awe.dpu.options import ParsedOptions
from awe.errors import AweError
from awe.messages import Task
from awe.sequence import NoInputs, SelectionContext, SequenceSpec, Unit


class PlanError(AweError):
    """A job cannot be planned (no inputs, mismatching steps)."""


#: A planned task is the task message the database records and the DPU runs.
PlannedTask = Task


def plan_job(
    steps: list[SequenceSpec],
    parsed: ParsedOptions,
    context: SelectionContext,
    time_limit: float | None = None,
) -> list[PlannedTask]:
    tasks: list[PlannedTask] = []
    previous: list[PlannedTask] = []
    previous_units: tuple[Unit, ...] = ()
    groups: dict[int, str | None] = {}  # task number -> its unit's group
    before_fan_out = "global"
    before: str | None = None
    # Steps whose units have keys (per chip, per exposure): the newest one's units, and
    # every such task by key, which a per-chip step after a global one waits for again.
    keyed_units: tuple[Unit, ...] = ()
    keyed_by_key: dict[str | None, list[int]] = {}
    for step_number, (spec, options) in enumerate(zip(steps, parsed.per_step, strict=True)):
        try:
            units = spec.select(
                options,
                replace(
                    context,
                    previous=previous_units,
                    previous_step=before,
                    keyed_before=keyed_units,
                ),
            )
        except NoInputs as err:
            raise PlanError(f"{spec.name}: nothing to process: {err}") from None
        if not units:
            raise PlanError(
                f"{spec.name}: nothing to process: its selection found no inputs for "
                f"{_describe(options)}"
            )
        keys = [unit.key for unit in units]
        if len(set(keys)) != len(keys):
            raise PlanError(f"{spec.name} selected the same key twice: {keys}")
        current = []
        by_key = _numbers_by(previous, lambda t: t.key)  # once per step: n + m, not n * m
        by_group = _numbers_by(previous, lambda t: groups[t.number])
        resumed = keyed_by_key if previous and previous[0].key is None else {}
        for unit in units:
            current.append(
                PlannedTask(
                    number=len(tasks),
                    name=spec.name if unit.key is None else f"{spec.name}[{unit.key}]",
                    sequence=spec.name,
                    step=step_number,
                    key=unit.key,
                    inputs=list(unit.inputs),
                    depends_on=_dependencies(spec, unit, previous, before_fan_out, by_key, by_group)
                    + (resumed.get(unit.key, []) if unit.key is not None else []),
                    options=options,
                    parameters={k: v for k, v in parsed.parameters.items() if k in spec.parameters},
                    time_limit=float(time_limit or spec.time_limit),
                    estimate=spec.estimate,
                    retries=spec.retries,
                    tolerant=spec.tolerant,
                )
            )
            tasks.append(current[-1])
            groups[current[-1].number] = unit.group
        previous, previous_units, before_fan_out = current, tuple(units), spec.fan_out
        if units[0].key is not None:
            keyed_units = tuple(units)
            for task in current:
                keyed_by_key.setdefault(task.key, []).append(task.number)
        before = spec.name
    return tasks


def _dependencies(
    spec: SequenceSpec,
    unit: Unit,
    previous: list[PlannedTask],
    before_fan_out: str,
    by_key: dict[str | None, list[int]],
    by_group: dict[str | None, list[int]],
) -> list[int]:
    if not previous:
        return []
    if unit.key is None or previous[0].key is None:
        return [task.number for task in previous]
    if (before_fan_out, spec.fan_out) == ("chip", "exposure"):
        matching = by_group.get(unit.key, [])
        links = f"whose group is {unit.key!r}"
    elif (before_fan_out, spec.fan_out) == ("exposure", "chip"):
        matching = by_key.get(unit.group, [])
        links = f"with key {unit.group!r} (its group)"
    else:
        matching = by_key.get(unit.key, [])
        links = "with the same key"
    if not matching:
        before = previous[0].sequence
        raise PlanError(
            f"the steps of '{before}>{spec.name}' disagree: {spec.name}[{unit.key}] has no "
            f"task in {before} {links} ({before} covers "
            f"{', '.join(str(t.key) for t in previous)}). Between per-chip and per-exposure "
            f"steps each chip names its exposure: Unit(key, group=exposure)."
        )
    return matching


def _numbers_by(
    tasks: list[PlannedTask], key: Callable[[PlannedTask], str | None]
) -> dict[str | None, list[int]]:
    """Task numbers by ``key``, in task order."""
    index: dict[str | None, list[int]] = {}
    for task in tasks:
        index.setdefault(key(task), []).append(task.number)
    return index


def estimated_seconds(tasks: list[PlannedTask], workers: int) -> float:
    """A rough wall time: the sum of the estimates shared by the workers."""
    return sum(task.estimate for task in tasks) / max(1, workers)


def _describe(options: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in options.items()) or "no options"
