"""A job's page as plain data: the job, its tasks (failed first) with their logs, its
committed products. Read in one transaction, so the page is one consistent picture."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from awe.db.database import Database
from awe.db.frames import Frame
from awe.db.models import Job, LogRecord, Task, TaskState

#: Order of tasks on the page: what went wrong first, then what is going on, then the rest.
STATE_ORDER = {
    TaskState.E: 0,
    TaskState.A: 1,
    TaskState.U: 2,
    TaskState.RUNNING: 3,
    TaskState.QUEUED: 4,
    TaskState.S: 5,
    TaskState.N: 6,
}
FAILED_STATES = (TaskState.E, TaskState.A, TaskState.U)
TRACEBACK_START = "Traceback (most recent call last):"
#: File names that mark a product as an image a preview can be made of.
IMAGE_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fits.fz")


class NoSuchJob(LookupError):
    """A job id the database does not know."""


@dataclass(frozen=True)
class LogLine:
    time: datetime
    level: str
    message: str
    #: Part of a Python traceback (shown as one readable block).
    traceback: bool = False


@dataclass(frozen=True)
class TaskView:
    number: int
    name: str
    sequence: str
    step: int
    key: str | None
    state: str
    reason: str | None
    host: str | None
    pid: int | None
    started_at: datetime | None
    finished_at: datetime | None
    duration: float | None
    log: list[LogLine] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.state in {s.value for s in FAILED_STATES}


@dataclass(frozen=True)
class ProductView:
    id: int
    frame_type: str
    filename: str
    sha256: str
    size: int
    task_number: int | None
    instrument: str
    chip: str | None
    filter: str | None
    night: str | None
    object: str
    results: dict[str, Any]

    @property
    def is_image(self) -> bool:
        return self.filename.lower().endswith(IMAGE_SUFFIXES)


@dataclass(frozen=True)
class JobView:
    id: int
    user: str
    project: str
    sequence: str
    dpu_name: str
    state: str
    options: dict[str, Any]
    parameters: dict[str, Any]
    code_snapshot_id: str | None
    commit: bool
    submitted_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cancel_requested: bool
    counts: dict[str, int]
    tasks: list[TaskView]
    job_log: list[LogLine]
    products: list[ProductView]
    #: The job this one reruns, when the database records it (``None`` otherwise).
    rerun_of: int | None

    @property
    def is_final(self) -> bool:
        return self.state in ("FINISHED", "CANCELLED")


def job_view(database: Database, job_id: int, with_logs: bool = True) -> JobView:
    """Everything the job page shows about job ``job_id`` (``with_logs=False``: all but
    the log lines, for the frequent looks of a page following a running job)."""
    with database.session() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise NoSuchJob(f"no job with identifier {job_id}")
        tasks = list(session.scalars(select(Task).where(Task.job_id == job_id)))
        logs = _logs_by_task(session, job_id) if with_logs else {}
        products = _products(session, job_id, {t.id: t.number for t in tasks})
        counts: dict[str, int] = {}
        for task in tasks:
            counts[task.state.value] = counts.get(task.state.value, 0) + 1
        task_views = [
            TaskView(
                number=t.number,
                name=t.name,
                sequence=t.sequence,
                step=t.step,
                key=t.key,
                state=t.state.value,
                reason=t.reason,
                host=t.host,
                pid=t.pid,
                started_at=t.started_at,
                finished_at=t.finished_at,
                duration=t.duration,
                log=logs.get(t.id, []),
            )
            for t in sorted(tasks, key=lambda t: (STATE_ORDER[t.state], t.number))
        ]
        return JobView(
            id=job.id,
            user=job.user.name,
            project=job.project.name,
            sequence=job.sequence,
            dpu_name=job.dpu_name,
            state=job.state.value,
            options=dict(job.options or {}),
            parameters=dict(job.parameters or {}),
            code_snapshot_id=job.code_snapshot_id,
            commit=job.commit,
            submitted_at=job.submitted_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            cancel_requested=job.cancel_requested,
            counts=counts,
            tasks=task_views,
            job_log=logs.get(None, []),
            products=products,
            rerun_of=job.rerun_of,
        )


def _logs_by_task(session: Session, job_id: int) -> dict[int | None, list[LogLine]]:
    """Log lines by task id (``None``: lines of the job itself), tracebacks marked."""
    rows = session.execute(
        select(LogRecord.task_id, LogRecord.time, LogRecord.level, LogRecord.message)
        .where(LogRecord.job_id == job_id)
        .order_by(LogRecord.id)
    )
    raw: dict[int | None, list[tuple[datetime, str, str]]] = {}
    for task_id, time, level, message in rows:
        raw.setdefault(task_id, []).append((time, level, message))
    return {task_id: mark_tracebacks(lines) for task_id, lines in raw.items()}


def mark_tracebacks(lines: list[tuple[datetime, str, str]]) -> list[LogLine]:
    """Mark the lines of each Python traceback: from its first line to the exception line
    (the first line after it that is not indented)."""
    marked: list[LogLine] = []
    inside = False
    for time, level, message in lines:
        text = _strip_level(message, level)
        if text.startswith(TRACEBACK_START):
            inside = True
            marked.append(LogLine(time, level, message, traceback=True))
            continue
        if inside:
            marked.append(LogLine(time, level, message, traceback=True))
            if text and not text[0].isspace():
                inside = False
            continue
        marked.append(LogLine(time, level, message))
    return marked


def _strip_level(message: str, level: str) -> str:
    prefix = f"{level}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


def _products(session: Session, job_id: int, numbers: dict[int, int]) -> list[ProductView]:
    frames = session.scalars(select(Frame).where(Frame.job_id == job_id).order_by(Frame.id))
    return [
        ProductView(
            id=f.id,
            frame_type=f.frame_type,
            filename=f.filename,
            sha256=f.sha256,
            size=f.size,
            task_number=numbers.get(f.task_id),
            instrument=f.instrument,
            chip=f.chip,
            filter=f.filter,
            night=f.night.isoformat() if f.night else None,
            object=f.object,
            results=dict(f.results or {}),
        )
        for f in frames
    ]
