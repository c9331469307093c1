"""Job status as facts: what ``get_status`` prints and returns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from awe.db.database import Database
from awe.db.models import Job, JobState, Task, TaskState
from awe.tables import ShowsAsTable, Table

FINAL_LETTERS = ("N", "E", "A", "S", "U")


JOB_COLUMNS = ("job", "sequence", "state", *FINAL_LETTERS, "queued", "running", "owner")
JOB_COLUMNS += ("submitted", "finished")


@dataclass(frozen=True, repr=False)
class JobStatus:
    """One job's state and its tasks' outcomes (``counts['N']`` ...).

    Shown compactly, ``<Job 2 ReadNoise FINISHED N/E/A/S/U 1/0/0/0/0>``, and as a one-row
    table in a notebook."""

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

    def row(self) -> list[object]:
        """The job as a row of :data:`JOB_COLUMNS`."""
        counts = [self.counts[letter] for letter in FINAL_LETTERS]
        when = [_local_time(self.submitted_at), _local_time(self.finished_at)]
        head = [self.job_id, self.sequence, self.state.value]
        return [*head, *counts, self.queued, self.running, self.owner, *when]

    def __repr__(self) -> str:
        letters = "/".join(str(self.counts[letter]) for letter in FINAL_LETTERS)
        rest = "" if self.is_final else f" queued {self.queued} running {self.running}"
        return f"<Job {self.job_id} {self.sequence} {self.state.value} N/E/A/S/U {letters}{rest}>"

    def _repr_html_(self) -> str:
        return Table(JOB_COLUMNS, [self.row()]).html()


class JobStatusList(ShowsAsTable, list):
    """Statuses of several jobs: a list, shown as a table of jobs."""

    def table(self) -> Table:
        return Table(JOB_COLUMNS, [status.row() for status in self])


def _local_time(moment: datetime | None) -> str:
    """A database time (aware, UTC) in the user's local time, to the second."""
    if moment is None:
        return ""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def job_statuses(database: Database, job_ids: list[int]) -> JobStatusList:
    """Statuses of ``job_ids`` in that order, from one query for jobs and one for counts."""
    if not job_ids:
        return JobStatusList()
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
    statuses = JobStatusList()
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
