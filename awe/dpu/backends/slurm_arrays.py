"""How a job's tasks become Slurm submissions: one job array per step where Slurm can
express the step's dependencies, one batch job per task where it cannot.

Slurm caps the jobs a user may queue (``MaxSubmitJobs`` is often 1,000) and starts at most
one job per CPU per scheduling cycle, so a 62-chip fan-out as 62 ``sbatch`` calls is slow
and a POGS season of tens of thousands of work units does not fit at all. A job array is
one submission whatever its size. A step's tasks become one array when:

- every task of the step waits for the same tasks (none, or all of a global step's
  inputs): ``--dependency=afterok`` on those tasks, written as the whole array's id where
  they are a whole array (Slurm then waits for every element);
- each task waits for exactly one task, and those are, in order, the tasks of one earlier
  array (chip c after chip c): ``--dependency=aftercorr``, element i waits for element i.

Otherwise (a per-exposure step waiting for exactly its exposure's CCDs, a rerun holding
some chips of a step) the step falls back to one batch job per task with ``afterok`` on
exactly the Slurm jobs it waits for, which an array cannot say per element. A tolerant
step (it runs when only some of what it waits for failed) waits with ``afterany`` instead
of ``afterok``; its worker then decides, from the journals, to run or to end ``S``. A step larger
than Slurm's ``MaxArraySize`` is cut into arrays of ``array_size`` elements; two steps
cut the same way still correspond chunk by chunk, so ``aftercorr`` holds across them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: Elements per array: Slurm's default MaxArraySize is 1001 (indices 0-1000).
ARRAY_SIZE = 1000


@dataclass(frozen=True)
class Submission:
    """One ``sbatch``: an array whose element i runs ``tasks[i]``, or one task.

    ``corr``: index of the earlier submission whose element i each element waits for
    (``aftercorr``); ``after``: task numbers every element waits for (``afterok``)."""

    name: str
    step: int
    tasks: tuple[int, ...]
    array: bool
    corr: int | None = None
    after: tuple[int, ...] = ()
    #: A tolerant step (it runs when some of what it waits for failed): ``afterany``.
    tolerant: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "tasks": list(self.tasks),
            "array": self.array,
            "corr": self.corr,
            "after": list(self.after),
            "tolerant": self.tolerant,
        }


def plan_submissions(
    tasks: Sequence[dict[str, Any]], array_size: int = ARRAY_SIZE
) -> list[Submission]:
    """The submissions of ``tasks`` (job.json's task records), in an order where every
    submission comes after those it waits for."""
    steps: dict[int, list[dict[str, Any]]] = {}
    for task in tasks:
        steps.setdefault(int(task["step"]), []).append(task)
    submissions: list[Submission] = []
    arrays_of_step: dict[tuple[int, ...], list[int]] = {}  # a step's tasks -> its arrays
    for step, members in sorted(steps.items()):
        numbers = tuple(int(t["number"]) for t in members)
        waits = [tuple(int(n) for n in t["depends_on"]) for t in members]
        tolerant = any(t.get("tolerant") for t in members)
        chunks = [numbers[i : i + array_size] for i in range(0, len(numbers), array_size)]
        if len(set(waits)) == 1:
            first = len(submissions)
            for index, chunk in enumerate(chunks):
                submissions.append(
                    Submission(
                        _name(step, index, chunks),
                        step,
                        chunk,
                        True,
                        after=waits[0],
                        tolerant=tolerant,
                    )  # fmt: skip
                )
            arrays_of_step[numbers] = list(range(first, len(submissions)))
            continue
        upstream = tuple(w[0] for w in waits) if all(len(w) == 1 for w in waits) else None
        if upstream in arrays_of_step:
            first = len(submissions)
            for index, (chunk, corr) in enumerate(
                zip(chunks, arrays_of_step[upstream], strict=True)
            ):
                submissions.append(Submission(_name(step, index, chunks), step, chunk, True, corr))
            arrays_of_step[numbers] = list(range(first, len(submissions)))
            continue
        for number, wait in zip(
            numbers, waits, strict=True
        ):  # dependencies differ element by element
            submissions.append(
                Submission(str(number), step, (number,), False, after=wait, tolerant=tolerant)
            )
    return submissions


def _name(step: int, index: int, chunks: list[tuple[int, ...]]) -> str:
    return f"step{step}" if len(chunks) == 1 else f"step{step}.{index}"
