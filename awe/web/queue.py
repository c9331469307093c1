"""The queue as data: every user's jobs, filtered and paginated, newest first; the DPUs
and the tasks each one runs or holds queued. Plain queries over the job database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import func, select

from awe.db.database import Database
from awe.db.models import Job, JobState, Project, Task, TaskState, User
from awe.dpu.status import FINAL_LETTERS, job_statuses

#: Jobs per page unless asked otherwise, and the most one page may hold.
PER_PAGE = 50
MAX_PER_PAGE = 500
#: Tasks of each kind (running, queued) a DPU page lists at most.
DPU_TASK_LIMIT = 500
JOB_STATES = tuple(s.value for s in JobState)


class BadFilter(ValueError):
    """A filter value that cannot match anything, said with the values that can."""


@dataclass(frozen=True)
class QueueFilter:
    """What the queue is narrowed to; ``None`` means any."""

    user: str | None = None
    dpu: str | None = None
    state: str | None = None
    sequence: str | None = None  # a part of the sequence (or chain) name

    def conditions(self) -> list[Any]:
        conditions = []
        if self.user:
            conditions.append(User.name == self.user)
        if self.dpu:
            conditions.append(Job.dpu_name == self.dpu)
        if self.state:
            if self.state not in JOB_STATES:
                raise BadFilter(
                    f"state {self.state!r} is not a job state; use one of {', '.join(JOB_STATES)}"
                )
            conditions.append(Job.state == JobState(self.state))
        if self.sequence:
            escaped = self.sequence.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            conditions.append(Job.sequence.like(f"%{escaped}%", escape="\\"))
        return conditions


@dataclass(frozen=True)
class QueueRow:
    """One job as the queue shows it."""

    id: int
    user: str
    project: str
    dpu: str
    sequence: str
    options: dict[str, Any]
    state: str
    counts: dict[str, int]
    queued: int
    running: int
    total: int
    submitted_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    running_seconds: float | None


@dataclass(frozen=True)
class QueuePage:
    rows: list[QueueRow]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def queue_page(
    database: Database, filters: QueueFilter, page: int = 1, per_page: int = PER_PAGE
) -> QueuePage:
    """Page ``page`` (from 1) of the jobs that pass ``filters``, newest first."""
    conditions = filters.conditions()
    with database.session() as session:
        total = session.scalar(
            select(func.count(Job.id)).select_from(Job).join(User).where(*conditions)
        )
        rows = session.execute(
            select(Job.id, Project.name, Job.dpu_name, Job.options)
            .join(User, Job.user_id == User.id)
            .join(Project, Job.project_id == Project.id)
            .where(*conditions)
            .order_by(Job.id.desc())
            .limit(per_page)
            .offset((page - 1) * per_page)
        ).all()
    statuses = job_statuses(database, [row[0] for row in rows])
    now = datetime.now(timezone.utc)
    return QueuePage(
        rows=[
            QueueRow(
                id=status.job_id,
                user=status.owner,
                project=project,
                dpu=dpu,
                sequence=status.sequence,
                options=dict(options or {}),
                state=status.state.value,
                counts={letter: status.counts[letter] for letter in FINAL_LETTERS},
                queued=status.queued,
                running=status.running,
                total=status.total,
                submitted_at=status.submitted_at,
                started_at=status.started_at,
                finished_at=status.finished_at,
                running_seconds=_seconds(status.started_at, status.finished_at, now),
            )
            for status, (_, project, dpu, options) in zip(statuses, rows, strict=True)
        ],
        total=total,
        page=page,
        per_page=per_page,
    )


def unfinished_jobs(database: Database) -> dict[str, list[int]]:
    """Ids of the jobs still QUEUED or RUNNING, by DPU name."""
    with database.session() as session:
        rows = session.execute(
            select(Job.dpu_name, Job.id).where(Job.state.in_([JobState.QUEUED, JobState.RUNNING]))
        )
        by_dpu: dict[str, list[int]] = {}
        for dpu, job_id in rows:
            by_dpu.setdefault(dpu, []).append(job_id)
    return by_dpu


@dataclass(frozen=True)
class DpuSummary:
    name: str
    configured: bool
    running: int
    queued: int
    jobs: int


def dpu_names(database: Database, configured: list[str]) -> list[str]:
    """Configured DPUs first, then the other DPUs jobs were sent to."""
    with database.session() as session:
        used = set(session.scalars(select(Job.dpu_name).distinct()))
    return [*configured, *sorted(used - set(configured))]


def dpu_summaries(database: Database, configured: list[str]) -> list[DpuSummary]:
    """Every configured DPU and every DPU a job was sent to, with its tasks now."""
    with database.session() as session:
        jobs = dict(
            session.execute(select(Job.dpu_name, func.count()).group_by(Job.dpu_name))
            .tuples()
            .all()
        )
        tasks = session.execute(
            select(Job.dpu_name, Task.state, func.count())
            .join(Job, Task.job_id == Job.id)
            .where(Task.state.in_([TaskState.QUEUED, TaskState.RUNNING]))
            .group_by(Job.dpu_name, Task.state)
        ).all()
    counts: dict[tuple[str, TaskState], int] = {(d, s): n for d, s, n in tasks}
    names = sorted(set(configured) | set(jobs), key=lambda n: (n not in configured, n))
    return [
        DpuSummary(
            name=name,
            configured=name in configured,
            running=counts.get((name, TaskState.RUNNING), 0),
            queued=counts.get((name, TaskState.QUEUED), 0),
            jobs=jobs.get(name, 0),
        )
        for name in names
    ]


@dataclass(frozen=True)
class DpuTask:
    """A task on a DPU's queue, as the Astro-WISE DPU page listed it."""

    job_id: int
    user: str
    sequence: str
    number: int
    name: str
    state: str
    host: str | None
    submitted_at: datetime
    started_at: datetime | None
    seconds: float  # running for (RUNNING) or waiting for (QUEUED)


def dpu_tasks(database: Database, dpu: str) -> dict[str, list[DpuTask]]:
    """The tasks DPU ``dpu`` runs now and those it holds queued (oldest first)."""
    now = datetime.now(timezone.utc)
    result: dict[str, list[DpuTask]] = {}
    with database.session() as session:
        for state in (TaskState.RUNNING, TaskState.QUEUED):
            rows = session.execute(
                select(
                    Task.job_id,
                    User.name,
                    Job.sequence,
                    Task.number,
                    Task.name,
                    Task.host,
                    Job.submitted_at,
                    Task.started_at,
                )
                .join(Job, Task.job_id == Job.id)
                .join(User, Job.user_id == User.id)
                .where(Job.dpu_name == dpu, Task.state == state)
                .order_by(Task.job_id, Task.number)
                .limit(DPU_TASK_LIMIT)
            )
            result[state.value] = [
                DpuTask(
                    job_id=job_id,
                    user=user,
                    sequence=sequence,
                    number=number,
                    name=name,
                    state=state.value,
                    host=host,
                    submitted_at=submitted,
                    started_at=started,
                    seconds=(now - (started or submitted)).total_seconds(),
                )
                for job_id, user, sequence, number, name, host, submitted, started in rows
            ]
    return result


def job_owner(database: Database, job_id: int) -> str | None:
    """The user who submitted job ``job_id`` (``None``: no such job)."""
    with database.session() as session:
        return session.scalar(select(User.name).join(Job).where(Job.id == job_id))


def _seconds(start: datetime | None, end: datetime | None, now: datetime) -> float | None:
    if start is None:
        return None
    return ((end or now) - start).total_seconds()
