"""Folding task journals into the database, and reconciling with what really runs.

Incremental: each task row keeps the journal offset already read, and only newer bytes
are fetched (for all tasks of a job in one backend call). Idempotent: a task's new events
are applied only if its offset is still the one read (compare-and-set), so two sessions
syncing the same job at once never record a log line twice. Honest: when the runner is
gone but tasks are not final, the journals are read once more, then what is still RUNNING
becomes ``A`` (lost with the runner) and what never started ``U``; nothing stays RUNNING
forever.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from awe.db.database import Database
from awe.db.models import Job, JobState, LogRecord, Task, TaskState, utcnow
from awe.dpu.backends.base import Backend
from awe.dpu.journal import parse_chunk, parse_time

LEVEL_PREFIXES = ("DEBUG", "WARNING", "ERROR", "CRITICAL")


@dataclass
class TaskChanges:
    """What a task's new journal events say."""

    offset: int
    values: dict[str, Any] = field(default_factory=dict)
    logs: list[tuple[datetime, str, str]] = field(default_factory=list)
    products: list[dict[str, Any]] = field(default_factory=list)


def fold_events(events: list[dict[str, Any]], offset: int) -> TaskChanges:
    changes = TaskChanges(offset)
    for event in events:
        time = parse_time(event["t"])
        kind = event["event"]
        if kind == "log":
            message = event["msg"]
            level = event.get("level") or next(
                (p for p in LEVEL_PREFIXES if message.startswith(p + ": ")), "INFO"
            )
            changes.logs.append((time, level, message))
        elif kind == "product":
            changes.products.append(event)
            changes.logs.append((time, "INFO", f"Product {event['kind']}: {event['path']}"))
        elif kind == "retry":
            changes.logs.append(
                (
                    time,
                    "WARNING",
                    f"Try {event['attempt'] - 1} ended A ({event.get('reason')}); "
                    f"retrying: try {event['attempt']} of {event.get('tries')}",
                )
            )
        elif kind == "state":
            state = TaskState(event["state"])
            changes.values["state"] = state
            if state is TaskState.RUNNING:
                changes.values.update(started_at=time, pid=event.get("pid"), host=event.get("host"))
            else:
                changes.values.update(finished_at=time, reason=event.get("reason"))
                note = f" ({event['reason']})" if event.get("reason") else ""
                level = "INFO" if state is TaskState.N else "WARNING"
                changes.logs.append((time, level, f"Task ended {state.value}{note}"))
    return changes


def sync_job(database: Database, backend: Backend, job_id: int) -> None:
    """Bring job ``job_id`` in the database up to date with its journals and its runner."""
    with database.session() as session:
        job = session.get(Job, job_id)
        if job is None or job.state in (JobState.FINISHED, JobState.CANCELLED):
            return
        work_dir = job.work_dir
        pending = _unfinished_tasks(session, job_id)
    if work_dir is None or not pending:
        _update_job_state(database, job_id)
        return
    poll = backend.poll(work_dir, {n: offset for n, (_, offset) in pending.items()})
    _fold(database, job_id, pending, poll.journals)
    if _update_job_state(database, job_id):
        return
    with database.session() as session:
        unfinished = {
            number: state.value
            for number, state in session.execute(
                select(Task.number, Task.state).where(
                    Task.job_id == job_id, Task.state.in_([TaskState.QUEUED, TaskState.RUNNING])
                )
            )
        }
    verdict = backend.judge(work_dir, poll, unfinished)
    if verdict.outcomes or verdict.gone:
        lost = "lost: the job's runner is gone"
        end_tasks(
            database,
            backend,
            job_id,
            verdict.outcomes,
            running=(TaskState.A, lost) if verdict.gone else None,
            queued=(TaskState.U, f"never started: {lost}") if verdict.gone else None,
        )


def _unfinished_tasks(session: Session, job_id: int) -> dict[int, tuple[int, int]]:
    """Task number -> (id, journal offset) of the job's tasks that are not final: three
    columns, not thousands of ORM objects, at every poll."""
    rows = session.execute(
        select(Task.number, Task.id, Task.journal_offset).where(
            Task.job_id == job_id, Task.state.in_([TaskState.QUEUED, TaskState.RUNNING])
        )
    )
    return {number: (task_id, offset) for number, task_id, offset in rows}


def _apply_journals(
    database: Database,
    backend: Backend,
    work_dir: str,
    job_id: int,
    pending: dict[int, tuple[int, int]],
) -> None:
    data = backend.read_journals(work_dir, {n: offset for n, (_, offset) in pending.items()})
    _fold(database, job_id, pending, data)


def _fold(
    database: Database, job_id: int, pending: dict[int, tuple[int, int]], data: dict[int, bytes]
) -> None:
    """Write what the new journal bytes ``data`` say into the tasks of ``pending``."""
    changes: dict[int, tuple[int, TaskChanges]] = {}  # task id -> (offset read at, changes)
    for number, data_read in data.items():
        task_id, offset = pending[number]
        chunk = parse_chunk(data_read)
        if chunk.used:
            change = fold_events(chunk.events, offset + chunk.used)
            change.logs[:0] = [
                (utcnow(), "WARNING", _malformed_note(number, offset + position, line))
                for position, line in chunk.malformed
            ]
            changes[task_id] = (offset, change)
    if not changes:
        return

    def write(session: Session) -> None:
        # Hold the job row: a concurrent sync of the same job waits here, then finds the
        # offsets moved on and skips the bytes this one folded.
        session.execute(select(Job.id).where(Job.id == job_id).with_for_update())
        offsets = dict(
            session.execute(
                select(Task.id, Task.journal_offset).where(Task.id.in_(list(changes)))
            ).all()
        )
        fresh = {i: c for i, (old, c) in changes.items() if offsets.get(i) == old}
        by_columns: dict[frozenset[str], list[dict[str, Any]]] = {}
        for task_id, change in fresh.items():
            row = {"id": task_id, "journal_offset": change.offset, **change.values}
            by_columns.setdefault(frozenset(row), []).append(row)
        for rows in by_columns.values():
            session.execute(update(Task), rows)
        logs = [
            {"job_id": job_id, "task_id": task_id, "time": time, "level": level, "message": text}
            for task_id, change in fresh.items()
            for time, level, text in change.logs
        ]
        if logs:
            session.execute(insert(LogRecord), logs)

    database.run(write)


def _malformed_note(number: int, offset: int, line: bytes) -> str:
    shown = line[:80].decode("utf-8", errors="replace")
    return (
        f"WARNING: skipped a malformed line in the journal of task {number} at byte "
        f"{offset} ({len(line)} bytes: {shown!r}); the task goes on being followed"
    )


def _update_job_state(database: Database, job_id: int) -> bool:
    """Derive the job's state from its tasks; True when the job is final."""

    def write(session: Session) -> bool:
        job = session.get(Job, job_id)
        counts = dict(
            session.execute(
                select(Task.state, func.count()).where(Task.job_id == job_id).group_by(Task.state)
            ).all()
        )
        total = sum(counts.values())
        final = sum(n for state, n in counts.items() if state.is_final)
        started = session.scalar(select(func.min(Task.started_at)).where(Task.job_id == job_id))
        if started is not None and job.started_at is None:
            job.started_at = started
        if final == total:
            job.state = JobState.CANCELLED if job.cancel_requested else JobState.FINISHED
            job.finished_at = (
                session.scalar(select(func.max(Task.finished_at)).where(Task.job_id == job_id))
                or utcnow()
            )
            return True
        if job.state is JobState.QUEUED and (started is not None or final):
            job.state = JobState.RUNNING
        return False

    return database.run(write)


def end_tasks(
    database: Database,
    backend: Backend,
    job_id: int,
    outcomes: dict[int, tuple[str, str]],
    running: tuple[TaskState, str] | None,
    queued: tuple[TaskState, str] | None,
) -> None:
    """End tasks the journals cannot finish: read what they left first, then give each
    still-unfinished task its known outcome, or the one for its state (``running``,
    ``queued``; ``None`` leaves it be). Leftover task processes are stopped.

    The stop is remote work (an SSH round trip, a squeue) and happens once, between two
    short transactions: the first decides, the second writes only the tasks still in the
    state the decision saw, so a task that ended meanwhile keeps its own outcome and a
    retried transaction repeats no kill."""
    with database.session() as session:
        job = session.get(Job, job_id)
        work_dir = job.work_dir
        pending = _unfinished_tasks(session, job_id)
    _apply_journals(database, backend, work_dir, job_id, pending)
    with database.session() as session:
        rows = session.execute(
            select(Task.id, Task.number, Task.state, Task.pid).where(
                Task.job_id == job_id, Task.state.in_([TaskState.QUEUED, TaskState.RUNNING])
            )
        ).all()
    ending: dict[int, tuple[TaskState, TaskState, str]] = {}  # id -> (seen, new, reason)
    pids = []
    for task_id, number, state, pid in rows:
        if number in outcomes:
            letter, reason = outcomes[number]
            ending[task_id] = (state, TaskState(letter), reason)
        elif state is TaskState.RUNNING and running is not None:
            ending[task_id] = (state, *running)
        elif state is TaskState.QUEUED and queued is not None:
            ending[task_id] = (state, *queued)
        if task_id in ending and pid:
            pids.append(pid)
    backend.kill(work_dir, pids)

    def write(session: Session) -> None:
        now = utcnow()
        tasks = session.scalars(
            select(Task).where(Task.id.in_(list(ending))).with_for_update()
        ).all()
        for task in tasks:
            seen, state, reason = ending[task.id]
            if task.state is not seen:  # it moved on meanwhile: its own news wins
                continue
            task.state, task.reason, task.finished_at = state, reason, now
            session.add(
                LogRecord(
                    job_id=job_id,
                    task_id=task.id,
                    time=now,
                    level="WARNING",
                    message=f"Task ended {state.value} ({reason})",
                )
            )

    if ending:
        database.run(write)
    _update_job_state(database, job_id)
