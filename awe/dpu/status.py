"""Job status as facts: what ``get_status`` prints and returns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from awe.db.database import Database
from awe.db.models import Job, JobState, Task, TaskState

FINAL_LETTERS = ("N", "E", "A", "S", "U")


@dataclass(frozen=True)
class JobStatus:
    """One job's state and its tasks' outcomes (``counts['N']`` ...)."""

    job_id: int
    sequence: str
    state: JobState
    counts: dict[str, int]
    queued: int
    running: int
    submitted_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    owner: str
    rerun_of: int | None = None

    @property
    def total(self) -> int:
        return self.queued + self.running + sum(self.counts.values())

    @property
    def is_final(self) -> bool:
        return self.state in (JobState.FINISHED, JobState.CANCELLED)

    def line(self) -> str:
        """``Jobid 84820 has status FINISHED N/E/A/S/U 75/0/0/0/0`` (Astro-WISE's format)."""
        letters = "/".join(str(self.counts[letter]) for letter in FINAL_LETTERS)
        text = f"Jobid {self.job_id} has status {self.state.value} N/E/A/S/U {letters}"
        if not self.is_final:
            text += f" (queued {self.queued}, running {self.running})"
        if self.rerun_of is not None:
            text += f" (rerun of job {self.rerun_of})"
        return text


def job_statuses(database: Database, job_ids: list[int]) -> list[JobStatus]:
    """Statuses of ``job_ids`` in that order, from one query for jobs and one for counts."""
    if not job_ids:
        return []
    with database.session() as session:
        jobs = {job.id: job for job in session.scalars(select(Job).where(Job.id.in_(job_ids)))}
        owners = {job_id: job.user.name for job_id, job in jobs.items()}
        counts: dict[int, dict[str, int]] = {job_id: {} for job_id in jobs}
        rows = session.execute(
            select(Task.job_id, Task.state, func.count())
            .where(Task.job_id.in_(job_ids))
            .group_by(Task.job_id, Task.state)
        )
        for job_id, state, number in rows:
            counts[job_id][state.value] = number
    statuses = []
    for job_id in job_ids:
        job = jobs[job_id]
        by_state = counts[job_id]
        statuses.append(
            JobStatus(
                job_id=job_id,
                sequence=job.sequence,
                state=job.state,
                counts={letter: by_state.get(letter, 0) for letter in FINAL_LETTERS},
                queued=by_state.get(TaskState.QUEUED.value, 0),
                running=by_state.get(TaskState.RUNNING.value, 0),
                submitted_at=job.submitted_at,
                started_at=job.started_at,
                finished_at=job.finished_at,
                owner=owners[job_id],
                rerun_of=job.rerun_of,
            )
        )
    return statuses
