"""The job service: plans, submits, follows, cancels and reads back jobs, silently.

This is the Processor's engine room. It returns data and raises :class:`AweError` with a
message that says what to do; it prints nothing, so scripts, a web page and tests can use
it as they are, while :class:`awe.dpu.processor.Processor` formats and prints the
Astro-WISE lines. It holds a session's lazily opened job database, its sequence registry
and one backend per DPU; every fact about a job lives in the database (queries in
:mod:`awe.db.jobs` and :mod:`awe.db.frames`) or in the job's journals on its DPU.

Heavy modules (SQLAlchemy, the planner, the backends) are imported on first use, so that
creating a session's Processor stays cheap and the ``awe>`` prompt starts fast.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from awe.dpu.remote.shell import RemoteError
from awe.env import Env, configured_dpu_names
from awe.errors import AweError, DatabaseError

if TYPE_CHECKING:
    from awe.db.database import Database
    from awe.db.frames import Frame
    from awe.dpu.backends.base import Backend
    from awe.dpu.check import DPUCheck
    from awe.dpu.options import ParsedOptions
    from awe.dpu.planner import PlannedTask
    from awe.dpu.registry import Registry
    from awe.dpu.status import JobStatus
    from awe.messages import Job
    from awe.sequence import SequenceSpec

#: Seconds a runner gets to stop its tasks after a cancel before it is killed.
CANCEL_GRACE = 10.0


class JobNotFound(AweError):
    """A job id the database does not know."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a submission, after the job was recorded: ``message`` says what became
    of job ``job_id`` (ended U, or kept and followed when the DPU already had it)."""

    def __init__(self, job_id: int, message: str) -> None:
        super().__init__(message)
        self.job_id, self.message = job_id, message


@dataclass(frozen=True)
class Plan:
    """A job ready to submit: its sequence (or chain), checked options, tasks and DPU."""

    sequence: str
    parsed: ParsedOptions
    tasks: list[PlannedTask]
    backend: Backend

    @property
    def estimated_seconds(self) -> float:
        from awe.dpu.planner import estimated_seconds

        return estimated_seconds(self.tasks, self.backend.workers)


@dataclass(frozen=True)
class Unreachable:
    """A job whose DPU did not answer at a sync; the database shows its last known state."""

    job_id: int
    dpu_name: str
    error: RemoteError


class JobService:
    """Jobs on the DPUs of ``env``, recorded in its database."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self._database: Database | None = None
        self._registry: Registry | None = None
        self._backends: dict[str, Backend] = {}
        env.observe(self._forget_database, names=["database_url"])
        env.observe(self._forget_backends, names=["dpus"])

    # ---- what the service works with ----
    @property
    def database(self) -> Database:
        """The job database, opened (and created or upgraded) on first use."""
        if self._database is None:
            from awe.db.engine import open_database

            try:
                self._database = open_database(self.env.database_url)
            except DatabaseError as err:
                source = self.env.source_of("database_url")
                raise DatabaseError(f"{err} (database_url came from: {source})") from None
        return self._database

    @property
    def registry(self) -> Registry:
        """The sequences this session knows (built-in, entry points, ``$AWE_HOME/sequences``)."""
        if self._registry is None:
            from awe.dpu.registry import Registry

            self._registry = Registry(home=Path(self.env.home))
        return self._registry

    def backend(self, name: str | None = None) -> Backend:
        """The backend of DPU ``name`` (default: the selected DPU)."""
        name = name or self.env.dpu_name
        known = configured_dpu_names(self.env)
        if name not in known:
            raise AweError(f"{name!r} is not a configured DPU; configured DPUs: {', '.join(known)}")
        if name not in self._backends:
            from awe.dpu.backends import make_backend

            self._backends[name] = make_backend(name, self.env)
        return self._backends[name]

    def _forget_backends(self, _change: Any = None) -> None:
        """DPU definitions changed: backends are made again from the new ones on use."""
        self._backends.clear()

    def _forget_database(self, _change: Any = None) -> None:
        if self._database is not None:
            self._database.dispose()
            self._database = None

    def check(self, name: str | None = None) -> DPUCheck:
        """What DPU ``name`` (default: the selected one) says about its readiness."""
        from awe.dpu.check import check_dpu

        name = name or self.env.dpu_name
        backend = self.backend(name)  # an unknown name is an error listing the known ones
        definition = None if name == "local" else self.env.dpu_definitions()[name]
        return check_dpu(name, backend, definition)

    def registry_problems(self) -> list[str]:
        """Sequence files that failed to load since the last call (each reported once)."""
        problems = list(self.registry.problems)
        self.registry.problems.clear()
        return problems

    # ---- submitting ----
    def parse(
        self, steps: list[SequenceSpec], options: dict[str, Any], time_limit: float | None
    ) -> ParsedOptions:
        """Check ``options`` against the chain's declarations, and the time limit."""
        from awe.dpu.options import parse_options

        parsed = parse_options(steps, options)
        if time_limit is not None and not (isinstance(time_limit, (int, float)) and time_limit > 0):
            raise AweError(f"time_limit is seconds per task (> 0), got {time_limit!r}")
        return parsed

    def plan(
        self,
        sequence: str,
        steps: list[SequenceSpec],
        parsed: ParsedOptions,
        backend: Backend,
        time_limit: float | None = None,
    ) -> Plan:
        """Select each step's inputs and make the task graph; nothing is recorded."""
        from awe.dpu.planner import plan_job
        from awe.sequence import SelectionContext

        context = SelectionContext(self.database, self.env)
        return Plan(sequence, parsed, plan_job(steps, parsed, context, time_limit), backend)

    def preview(self, plan: Plan) -> dict[int, str]:
        """The batch scripts ``plan`` would get, by task number (none on a pool DPU)."""
        return plan.backend.preview(self._description(None, plan))

    def submit(self, plan: Plan, send_code: bool = True) -> int:
        """Record the job with all its tasks, ship it (and this checkout's code, if
        ``send_code``) to its DPU and start it; return the job id. A job the DPU refuses
        is removed again: no job that will never run."""
        from awe.db.jobs import delete_job, record_job, set_work_dir
        from awe.dpu.codeship import build_snapshot, code_roots

        snapshot = (
            build_snapshot(code_roots(Path(self.env.home), self.env.code_paths))
            if send_code
            else None
        )
        job_id = record_job(
            self.database,
            username=self.env.username,
            project=self.env.project,
            sequence=plan.sequence,
            dpu_name=plan.backend.name,
            tasks=plan.tasks,
            options=plan.parsed.as_record(),
            parameters=plan.parsed.parameters,
            code_snapshot_id=snapshot.id if snapshot else None,
            commit=plan.parsed.commit,
        )
        work_dir = None
        try:
            work_dir = plan.backend.submit(job_id, self._description(job_id, plan), snapshot)
            set_work_dir(self.database, job_id, work_dir)
        except KeyboardInterrupt:  # Ctrl-C: a job that ends, never one left QUEUED
            from awe.dpu.submission import settle_interrupted

            message = settle_interrupted(self.database, job_id, work_dir)
            raise Interrupted(job_id, message) from None
        except Exception:
            delete_job(self.database, job_id)  # nothing half-written: no job that never runs
            raise
        return job_id

    def _description(self, job_id: int | None, plan: Plan) -> Job:
        """What the DPU reads as ``job.json``: the job and every task of its graph."""
        from awe.messages import Job

        return Job(
            job_id,
            plan.sequence,
            tuple(plan.tasks),
            home=str(self.env.home),
            commit=plan.parsed.commit,
        )

    # ---- following ----
    def user_job_ids(self) -> list[int]:
        """Ids of this user's jobs (all sessions), oldest first."""
        from awe.db.jobs import job_ids

        return job_ids(self.database, self.env.username)

    def job_ids(self, jobids: int | list[int] | None) -> list[int]:
        """``jobids`` as a checked list (default: all this user's jobs)."""
        if jobids is None:
            return self.user_job_ids()
        from awe.db.jobs import known_job_ids

        ids = [jobids] if isinstance(jobids, int) else list(jobids)
        known = known_job_ids(self.database, ids)
        missing = [i for i in ids if i not in known]
        if missing:
            raise JobNotFound(
                f"no job with identifier {', '.join(map(str, missing))}; your jobs: "
                f"{self.user_job_ids()[-10:]} (dpu.get_jobids() lists them all)"
            )
        return ids

    def sync(self, ids: list[int]) -> list[Unreachable]:
        """Fold new journal events of jobs ``ids`` into the database and commit finished
        tasks' products; return the jobs whose DPU could not be reached."""
        from awe.db.jobs import jobs_to_sync
        from awe.dpu.commit import commit_products
        from awe.dpu.sync import sync_job

        unreachable = []
        for job_id, dpu_name in jobs_to_sync(self.database, ids):
            try:
                backend = self.backend(dpu_name)
                sync_job(self.database, backend, job_id)
                commit_products(self.database, backend, job_id, self.env.data_root)
            except RemoteError as err:
                unreachable.append(Unreachable(job_id, dpu_name, err))
        return unreachable

    def poll_interval(self, ids: list[int]) -> tuple[float, float]:
        """Pauses between two looks while waiting for jobs ``ids`` (first, longest): the
        shortest of their DPUs', so a local job is not held back by a Slurm one."""
        from awe.db.jobs import jobs_to_sync
        from awe.dpu.backends.base import Scheduler

        intervals = []
        for name in {dpu_name for _, dpu_name in jobs_to_sync(self.database, ids)}:
            try:
                intervals.append(self.backend(name).poll_interval)
            except AweError:  # a DPU no longer configured: its sync says so
                continue
        if not intervals:
            return Scheduler.poll_interval
        return min(i[0] for i in intervals), min(i[1] for i in intervals)

    def statuses(self, ids: list[int]) -> list[JobStatus]:
        """The jobs' statuses as the database has them (sync first for news)."""
        from awe.dpu.status import job_statuses

        return job_statuses(self.database, ids)

    def log_records(self, ids: list[int]) -> dict[int, list[tuple[Any, str, str | None]]]:
        """Each job's log records: (time, message, task name), task by task."""
        from awe.db.jobs import log_records

        return log_records(self.database, ids)

    def products(self, jobid: int) -> list[Frame]:
        """The committed products of the job's last step, as frames (an earlier job's
        frame where it committed the same content first)."""
        from awe.db.frames import frames_with_sha256
        from awe.db.jobs import job_place, result_task_numbers
        from awe.dpu.journal import parse_new_bytes

        work_dir, dpu_name = job_place(self.database, jobid)
        numbers = result_task_numbers(self.database, jobid)
        journals = self.backend(dpu_name).read_journals(work_dir, dict.fromkeys(numbers, 0))
        digests = {
            event["sha256"]
            for data in journals.values()
            for event in parse_new_bytes(data)[0]
            if event["event"] == "product"
        }
        return frames_with_sha256(sorted(digests), database=self.database)

    def batch_scripts(self, jobid: int) -> dict[int, str]:
        """The batch scripts of job ``jobid`` by task number (a Slurm DPU's jobs only)."""
        from awe.db.jobs import job_place

        (jobid,) = self.job_ids(jobid)
        work_dir, dpu_name = job_place(self.database, jobid)
        scripts = self.backend(dpu_name).batch_scripts(work_dir) if work_dir else {}
        if not scripts:
            raise AweError(
                f"job {jobid} ran on DPU {dpu_name}, which runs tasks on its own pool and "
                f"writes no batch scripts; only Slurm DPUs do"
            )
        return scripts

    # ---- cancelling ----
    def cancel(self, status: JobStatus) -> bool:
        """Cancel the job of ``status`` (fresh from a sync): queued tasks end S and never
        start, running ones are stopped and end A; returns once the database says so.
        Only the job's owner may cancel (on MySQL/MariaDB, through the same database
        account); False when the job had already ended."""
        from awe.db.jobs import cancel_refusal, request_cancel
        from awe.db.models import TaskState
        from awe.dpu.sync import end_tasks

        refusal = cancel_refusal(self.database, status.job_id, self.env.username)
        if refusal:
            raise AweError(refusal)
        if status.is_final:
            return False
        work_dir, dpu_name = request_cancel(self.database, status.job_id)
        backend = self.backend(dpu_name)
        backend.cancel(work_dir)
        deadline = time.monotonic() + CANCEL_GRACE
        pause = 0.05  # growing: each look may be a round trip to a remote host or squeue
        while backend.runner_alive(work_dir) and time.monotonic() < deadline:
            time.sleep(pause)
            pause = min(pause * 2, 1.0)
        end_tasks(
            self.database,
            backend,
            status.job_id,
            {},
            running=(TaskState.A, "CANCELLED while running"),
            queued=(TaskState.S, "cancelled before it started"),
        )
        return True
