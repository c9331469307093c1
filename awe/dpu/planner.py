"""From a resolved chain and its options to a task graph.

Each step's ``select`` chooses its units (chips, exposures, work units, or one global
unit). A task of a step waits only for what it needs from the step before: the task with
the same key, or every task when either side is global. A step that selects nothing is an
error saying what was searched for; nothing is queued.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from awe.dpu.options import ParsedOptions
from awe.errors import AweError
from awe.sequence import NoInputs, SelectionContext, SequenceSpec, Unit


class PlanError(AweError):
    """A job cannot be planned (no inputs, mismatching steps)."""


@dataclass(frozen=True)
class PlannedTask:
    """One task of a job, as the runner reads it from ``job.json``."""

    number: int
    name: str
    sequence: str
    step: int
    key: str | None
    inputs: list[Any]
    depends_on: list[int]
    options: dict[str, Any]
    parameters: dict[str, Any]
    time_limit: float
    estimate: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


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
