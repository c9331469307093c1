"""Writing and reading job records: a job is written together with all its tasks and their
dependency edges in one transaction, so there is never a job row without tasks.

Job ids come from the database's auto-increment key inside that transaction, which makes
them unique when several sessions (or several users on one MySQL server) submit at once.
The other functions are the queries the DPU layer's job service asks, each one short
transaction, so no SQL lives above this package's callers in :mod:`awe.dpu`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from awe.db.database import Database
from awe.db.models import (
    Job,
    JobState,
    LogRecord,
    Project,
    Task,
    TaskDependency,
    TaskState,
    User,
)


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


def known_job_ids(database: Database, ids: Sequence[int]) -> set[int]:
    """Those of ``ids`` that are jobs in the database."""
    with database.session() as session:
        return set(session.scalars(select(Job.id).where(Job.id.in_(list(ids)))))


def jobs_to_sync(database: Database, ids: Sequence[int]) -> list[tuple[int, str]]:
    """(job id, DPU name) of those of ``ids`` whose journals may hold news: jobs not final
    yet, and committing jobs with finished tasks whose products are not committed."""
    uncommitted = select(Task.job_id).where(
        Task.state == TaskState.N, Task.products_committed.is_(False)
    )
    query = select(Job.id, Job.dpu_name).where(
        Job.id.in_(list(ids)),
        or_(
            Job.state.in_([JobState.QUEUED, JobState.RUNNING]),
            and_(Job.commit.is_(True), Job.id.in_(uncommitted)),
        ),
    )
    with database.session() as session:
        return [(job_id, dpu_name) for job_id, dpu_name in session.execute(query)]


def job_place(database: Database, job_id: int) -> tuple[str | None, str]:
    """Where job ``job_id`` runs: its work dir on the DPU (None before submission) and DPU."""
    with database.session() as session:
        job = session.get(Job, job_id)
        return job.work_dir, job.dpu_name


def set_work_dir(database: Database, job_id: int, work_dir: str) -> None:
    with database.session() as session:
        session.get(Job, job_id).work_dir = work_dir


def delete_job(database: Database, job_id: int) -> None:
    """Remove a job with its tasks (one the DPU refused: no job that will never run)."""
    with database.session() as session:
        session.delete(session.get(Job, job_id))


def request_cancel(database: Database, job_id: int) -> tuple[str | None, str]:
    """Mark job ``job_id`` as cancelled by its user; return its work dir and DPU."""
    with database.session() as session:
        job = session.get(Job, job_id)
        job.cancel_requested = True
        return job.work_dir, job.dpu_name


def log_records(
    database: Database, ids: Sequence[int]
) -> dict[int, list[tuple[datetime, str, str | None]]]:
    """(time, message, task name) of each job's log records, task by task in order."""
    records: dict[int, list[tuple[datetime, str, str | None]]] = {}
    with database.session() as session:
        for job_id in ids:
            rows = session.execute(
                select(LogRecord.time, LogRecord.message, Task.name)
                .outerjoin(Task, LogRecord.task_id == Task.id)
                .where(LogRecord.job_id == job_id)
                .order_by(Task.number, LogRecord.id)
            )
            records[job_id] = [(when, message, name) for when, message, name in rows]
    return records


def result_task_numbers(database: Database, job_id: int) -> list[int]:
    """Numbers of the tasks of the job's last step that ended N and committed products:
    the tasks whose products are the job's result."""
    last_step = select(func.max(Task.step)).where(Task.job_id == job_id).scalar_subquery()
    query = select(Task.number).where(
        Task.job_id == job_id,
        Task.step == last_step,
        Task.state == TaskState.N,
        Task.products_committed.is_(True),
    )
    with database.session() as session:
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
