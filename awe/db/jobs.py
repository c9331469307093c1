"""Writing and reading job records: a job is written together with all its tasks and their
dependency edges in one transaction, so there is never a job row without tasks.

Job ids come from the database's auto-increment key inside that transaction, which makes
them unique when several sessions (or several users on one MySQL server) submit at once.
The other functions are the queries the DPU layer's job service asks, each one short
transaction, so no SQL lives above this package's callers in :mod:`awe.dpu`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from awe.db.database import Database
from awe.db.models import (
    Job,
    JobState,
    LogRecord,
    Project,
    TaskDependency,
    TaskState,
    User,
    utcnow,
)
from awe.db.models import Task as TaskRow
from awe.messages import Task

#: The task a job is recorded with: the planner's task message (name, dependencies,
#: sequence, step, key, time limit are what the database keeps of it).
TaskSpec = Task


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
    rerun_of: int | None = None,
) -> int:
    """Write a QUEUED job with its tasks; return the new job id. On MySQL/MariaDB the job
    records the database account writing it (see :func:`cancel_refusal`)."""
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
            rerun_of=rerun_of,
            account=database_account(session),
        )
        session.add(job)
        session.flush()
        # Tasks and edges as two bulk inserts (executemany), not thousands of ORM objects:
        # a 10,000-task job records in proportion to its size.
        session.execute(
            insert(TaskRow),
            [
                {
                    "job_id": job.id,
                    "number": n,
                    "name": spec.name,
                    "sequence": spec.sequence or sequence,
                    "step": spec.step,
                    "key": spec.key,
                    "time_limit": spec.time_limit,
                }
                for n, spec in enumerate(tasks)
            ],
        )
        edges = [(n, d) for n, spec in enumerate(tasks) for d in spec.depends_on]
        if edges:
            ids = dict(
                session.execute(
                    select(TaskRow.number, TaskRow.id).where(TaskRow.job_id == job.id)
                ).all()
            )
            session.execute(
                insert(TaskDependency),
                [{"task_id": ids[n], "depends_on_id": ids[d]} for n, d in edges],
            )
        return job.id

    return database.run(write)


def job_ids(database: Database, username: str) -> list[int]:
    """Ids of every job of ``username``, oldest first, whichever session submitted them."""
    with database.session() as session:
        query = select(Job.id).join(User).where(User.name == username).order_by(Job.id)
        return list(session.scalars(query))


def user_id(database: Database, username: str) -> int:
    """Id of user ``username``, created if missing."""
    return _named_row_id(database, User, username)


def known_job_ids(database: Database, ids: Sequence[int]) -> set[int]:
    """Those of ``ids`` that are jobs in the database."""
    with database.session() as session:
        return set(session.scalars(select(Job.id).where(Job.id.in_(list(ids)))))


def jobs_to_sync(database: Database, ids: Sequence[int]) -> list[tuple[int, str]]:
    """(job id, DPU name) of those of ``ids`` whose journals may hold news: jobs not final
    yet, and committing jobs with finished tasks whose products are not committed."""
    uncommitted = select(TaskRow.job_id).where(
        TaskRow.state == TaskState.N, TaskRow.products_committed.is_(False)
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
                select(LogRecord.time, LogRecord.message, TaskRow.name)
                .outerjoin(TaskRow, LogRecord.task_id == TaskRow.id)
                .where(LogRecord.job_id == job_id)
                .order_by(TaskRow.number, LogRecord.id)
            )
            records[job_id] = [(when, message, name) for when, message, name in rows]
    return records


def result_task_numbers(database: Database, job_id: int) -> list[int]:
    """Numbers of the tasks of the job's last step that ended N and committed products:
    the tasks whose products are the job's result."""
    last_step = select(func.max(TaskRow.step)).where(TaskRow.job_id == job_id).scalar_subquery()
    query = select(TaskRow.number).where(
        TaskRow.job_id == job_id,
        TaskRow.step == last_step,
        TaskRow.state == TaskState.N,
        TaskRow.products_committed.is_(True),
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


def set_work_dir(database: Database, job_id: int, work_dir: str) -> None:
    """Record where the DPU keeps job ``job_id``'s files."""
    with database.session() as session:
        session.get(Job, job_id).work_dir = work_dir


def end_unstarted_job(database: Database, job_id: int, reason: str) -> None:
    """End every unfinished task of a job the DPU never received ``U`` with ``reason``, and
    the job with them, in one transaction; a log line says why."""

    def write(session: Session) -> None:
        now = utcnow()
        job = session.get(Job, job_id)
        for task in job.tasks:
            if not task.state.is_final:
                task.state, task.reason, task.finished_at = TaskState.U, reason, now
        job.state, job.finished_at = JobState.FINISHED, now
        session.add(
            LogRecord(job_id=job_id, time=now, level="WARNING", message=f"WARNING: {reason}")
        )

    database.run(write)


def database_account(session: Session) -> str | None:
    """The MySQL/MariaDB account of this connection as the server authenticated it
    (``CURRENT_USER()``, e.g. ``alice@%``); None on SQLite, which has no accounts."""
    if session.get_bind().dialect.name == "sqlite":
        return None
    return session.scalar(text("SELECT CURRENT_USER()"))


def cancel_refusal(database: Database, job_id: int, username: str) -> str | None:
    """Why ``username`` may not cancel job ``job_id`` (None: it may).

    The owner is the AWE user name that submitted the job, which each session declares
    itself (``AWE_USERNAME``). On MySQL/MariaDB the job also records the database account
    the server authenticated, and cancel requires the same account: a colleague who sets
    your user name in their own session, on their own account, is refused. This guards
    against mistakes, not against attacks: whoever may write the job tables (the same
    account, or any account with UPDATE on them) can change any job directly, and a SQLite
    file is protected only by its file permissions. Give each user their own account, with
    grants only on the AWE database, for the check to mean anything.
    """
    with database.session() as session:
        owner, account = session.execute(
            select(User.name, Job.account).join(User).where(Job.id == job_id)
        ).one()
        current = database_account(session)
    if owner != username:
        return f"job {job_id} belongs to {owner}; only its owner can cancel it"
    if account is not None and current != account:
        return (
            f"job {job_id} was submitted through database account {account}, and this "
            f"session is connected as {current}; only that account can cancel it"
        )
    return None


@dataclass(frozen=True)
class JobFacts:
    """What a rerun needs of a job: its settings and each task's final letter."""

    state: str
    sequence: str
    dpu_name: str
    work_dir: str | None
    options: dict[str, Any]
    parameters: dict[str, Any]
    code_snapshot_id: str | None
    commit: bool
    states: dict[int, str]


def finished_job(database: Database, job_id: int) -> JobFacts:
    """The settings of job ``job_id`` and its tasks' states by number."""
    with database.session() as session:
        job = session.get(Job, job_id)
        if job is None:
            from awe.errors import AweError

            raise AweError(f"no job with identifier {job_id}")
        states = dict(
            session.execute(
                select(TaskRow.number, TaskRow.state).where(TaskRow.job_id == job_id)
            ).all()
        )
        return JobFacts(
            state=job.state.value,
            sequence=job.sequence,
            dpu_name=job.dpu_name,
            work_dir=job.work_dir,
            options=dict(job.options),
            parameters=dict(job.parameters),
            code_snapshot_id=job.code_snapshot_id,
            commit=job.commit,
            states={number: state.value for number, state in states.items()},
        )


def delete_job(database: Database, job_id: int) -> None:
    """Remove a job that never reached its DPU, with its tasks (nothing half-written)."""
    with database.session() as session:
        session.delete(session.get(Job, job_id))
