"""Writing and reading job records: a job is written together with all its tasks and their
dependency edges in one transaction, so there is never a job row without tasks.

Job ids come from the database's auto-increment key inside that transaction, which makes
them unique when several sessions (or several users on one MySQL server) submit at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from awe.db.database import Database
from awe.db.models import Job, Project, Task, TaskDependency, User


@dataclass(frozen=True)
class TaskSpec:
    """A task to record: its name, the numbers of the tasks it waits for, and where it sits
    in the job (sequence, chain step, key such as the chip)."""

    name: str
    depends_on: Sequence[int] = field(default_factory=tuple)
    sequence: str = ""
    step: int = 0
    key: str | None = None
    time_limit: float | None = None


def record_job(
    database: Database,
    *,
    username: str,
    project: str,
    sequence: str,
    dpu_name: str,
    tasks: Sequence[TaskSpec],
    options: dict[str, Any] | None = None,
    parameters: dict[str, Any] | None = None,
    code_snapshot_id: str | None = None,
    commit: bool = False,
) -> int:
    """Write a QUEUED job with its tasks; return the new job id."""
    if not tasks:
        raise ValueError(f"job {sequence!r} has no tasks; a job is recorded with its tasks")
    for number, spec in enumerate(tasks):
        bad = [d for d in spec.depends_on if not 0 <= d < len(tasks) or d == number]
        if bad:
            raise ValueError(
                f"task {number} ({spec.name!r}) depends on {bad}, which are not other tasks "
                f"of this job (valid: 0..{len(tasks) - 1} except {number})"
            )
    user_id = _named_row_id(database, User, username)
    project_id = _named_row_id(database, Project, project)

    def write(session: Session) -> int:
        job = Job(
            user_id=user_id,
            project_id=project_id,
            sequence=sequence,
            dpu_name=dpu_name,
            options=options or {},
            parameters=parameters or {},
            code_snapshot_id=code_snapshot_id,
            commit=commit,
            tasks=[
                Task(
                    number=n,
                    name=spec.name,
                    sequence=spec.sequence or sequence,
                    step=spec.step,
                    key=spec.key,
                    time_limit=spec.time_limit,
                )
                for n, spec in enumerate(tasks)
            ],
        )
        session.add(job)
        session.flush()
        session.add_all(
            TaskDependency(task_id=job.tasks[n].id, depends_on_id=job.tasks[d].id)
            for n, spec in enumerate(tasks)
            for d in spec.depends_on
        )
        return job.id

    return database.run(write)


def job_ids(database: Database, username: str) -> list[int]:
    """Ids of every job of ``username``, oldest first, whichever session submitted them."""
    with database.session() as session:
        query = select(Job.id).join(User).where(User.name == username).order_by(Job.id)
        return list(session.scalars(query))


def _named_row_id(database: Database, model: type[User] | type[Project], name: str) -> int:
    """Id of the user or project ``name``, created if missing. Its own short transaction,
    so concurrent first submissions by one user do not deadlock on the job insert."""
    query = select(model.id).where(model.name == name)
    with database.session() as session:
        row_id = session.scalar(query)
    if row_id is not None:
        return row_id
    try:
        with database.session() as session:
            row = model(name=name)
            session.add(row)
            session.flush()
            return row.id
    except IntegrityError:  # another session created it first: theirs is as good
        with database.session() as session:
            return session.scalar(query)
