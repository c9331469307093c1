"""From a resolved chain and its options to a task graph.

Each step's ``select`` chooses its units (chips, exposures, work units, or one global
unit). A task of a step waits only for what it needs from the step before: the task with
the same key, or every task when either side is global. A step that selects nothing is an
error saying what was searched for; nothing is queued.
"""

from __future__ import annotations

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
    for step_number, (spec, options) in enumerate(zip(steps, parsed.per_step, strict=True)):
        try:
            units = spec.select(options, replace(context, previous=previous_units))
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
        for unit in units:
            current.append(
                PlannedTask(
                    number=len(tasks),
                    name=spec.name if unit.key is None else f"{spec.name}[{unit.key}]",
                    sequence=spec.name,
                    step=step_number,
                    key=unit.key,
                    inputs=list(unit.inputs),
                    depends_on=_dependencies(spec, unit.key, previous),
                    options=options,
                    parameters={k: v for k, v in parsed.parameters.items() if k in spec.parameters},
                    time_limit=float(time_limit or spec.time_limit),
                    estimate=spec.estimate,
                    retries=spec.retries,
                )
            )
            tasks.append(current[-1])
        previous, previous_units = current, tuple(units)
    return tasks


def _dependencies(spec: SequenceSpec, key: str | None, previous: list[PlannedTask]) -> list[int]:
    if not previous:
        return []
    if key is None or previous[0].key is None:
        return [task.number for task in previous]
    matching = [task.number for task in previous if task.key == key]
    if not matching:
        raise PlanError(
            f"{spec.name}[{key}] has no matching task in {previous[0].sequence} (which covers "
            f"{', '.join(str(t.key) for t in previous)}); the chain's steps disagree"
        )
    return matching


def estimated_seconds(tasks: list[PlannedTask], workers: int) -> float:
    """A rough wall time: the sum of the estimates shared by the workers."""
    return sum(task.estimate for task in tasks) / max(1, workers)


def _describe(options: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in options.items()) or "no options"
