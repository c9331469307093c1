"""The Processor: the ``dpu`` object astronomers hold, a thin facade over the DPU layers.

It keeps no state the database does not also hold (beyond which DPU this session selected
and which jobs it submitted), so a new session, or another user on the same MySQL server,
sees the same jobs. The database is opened on first use, which keeps the prompt fast.
The method names and printed lines follow the Astro-WISE Processor; every method that
prints also returns the same facts as data.
"""

from __future__ import annotations

import os
import socket
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from awe.dpu.remote.shell import NoAnswer, RemoteError
from awe.dpu.session_log import SessionLog
from awe.env import Env, configured_dpu_names, load_env
from awe.errors import AweError, DatabaseError

if TYPE_CHECKING:
    from awe.db.database import Database
    from awe.dpu.backends.base import Backend
    from awe.dpu.planner import PlannedTask
    from awe.dpu.registry import Registry
    from awe.dpu.status import JobStatus
    from awe.sequence import Option

#: Packages a DPU's Python needs for AWE's own sequences (checked by check_dpu).
CHECKED_MODULES = ("numpy", "astropy")
#: Seconds between two looks at the journals while waiting.
WAIT_POLL = 0.2
#: Seconds a runner gets to stop its tasks after a cancel before it is killed.
CANCEL_GRACE = 10.0


class JobNotFound(AweError):
    """A job id the database does not know."""


class Processor:
    """Submits and follows processing jobs on Distributed Processing Units.

    ``Processor()`` loads the configuration (:func:`awe.env.load_env`); keyword arguments
    override it for this Processor, e.g. ``Processor(database_url='sqlite:///my.db')``.
    """

    def __init__(self, env: Env | None = None, **settings: Any) -> None:
        self.env = env if env is not None else load_env(**settings)
        if env is not None:
            for key, value in settings.items():
                self.env.set(key, value)
        self.session_log = SessionLog(self.env.session_log, datetime.now())
        self._database: Database | None = None
        self._registry: Registry | None = None
        self._backends: dict[str, Backend] = {}
        self.session_jobs: list[int] = []
        self.env.observe(self._forget_database, names=["database_url"])

    # ---- plumbing ----
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

    def _forget_database(self, _change: Any = None) -> None:
        if self._database is not None:
            self._database.dispose()
            self._database = None

    def say(self, message: str) -> str:
        """Print ``[user] HH:MM:SS - message`` and keep it in the session log."""
        line = f"[{self.env.username}] {datetime.now():%H:%M:%S} - {message}"
        print(line)
        self.session_log.write(line)
        return line

    # ---- DPUs -----------------------------------------------------------------------------
    def get_dpu_identifiers(self) -> list[str]:
        """Names of all configured DPUs."""
        return configured_dpu_names(self.env)

    def show_dpu_identifiers(self) -> list[str]:
        """Print each configured DPU, marking the selected one; return their names."""
        names = self.get_dpu_identifiers()
        for name in names:
            marker = " (selected)" if name == self.env.dpu_name else ""
            self.say(f"{name}{marker}: {self._describe_dpu(name)}")
        return names

    def _describe_dpu(self, name: str) -> str:
        if name == "local":
            return f"this machine ({socket.gethostname()}, {os.cpu_count()} cores)"
        return self.env.dpu_definitions()[name].describe()

    def check_dpu(self, name: str | None = None) -> dict[str, Any]:
        """Check that DPU ``name`` (default: the selected one) can run jobs: connection,
        Python, the packages sequences need, a writable work dir, the scheduler's commands.
        Prints each finding and what to do about it; returns ``{"ok", "problems", "facts"}``.
        """
        name = name or self.env.dpu_name
        backend = self.backend(name)
        definition = None if name == "local" else self.env.dpu_definitions()[name]
        commands = (
            ["sbatch", "squeue", "scancel", "sacct"]
            if (definition and definition.scheduler == "slurm")
            else []
        )
        problems: list[str] = []
        facts: dict[str, Any] = {}
        try:
            facts = backend.facts(list(CHECKED_MODULES), commands)
        except NoAnswer as err:
            python = definition.python if definition else "python"
            problems.append(
                f"cannot run {python!r} on DPU {name}: {err}. Fix: set 'python' "
                f"of DPU {name!r} to a Python 3.10+ that exists there."
            )
        if facts:
            self.say(
                f"DPU {name}: Python {facts['python']} ({facts['executable']}), "
                f"{facts['cores']} cores"
            )
            for module, outcome in facts["modules"].items():
                if outcome != "ok":
                    problems.append(
                        f"{module} does not import there ({outcome}). Fix: "
                        f"pip install {module} into that Python (or a setup line)"
                    )
            if facts["work_dir"] != "ok":
                problems.append(
                    f"work dir {facts['work_dir_path']} is not writable "
                    f"({facts['work_dir']}). Fix: choose a writable 'work_dir'."
                )
            for command, path in facts["commands"].items():
                if path is None:
                    problems.append(
                        f"{command} is not on the PATH there. Fix: add the "
                        f"scheduler's module to the DPU's 'setup' lines."
                    )
        for problem in problems:
            self.say(f"PROBLEM: {problem}")
        if not problems:
            self.say(f"DPU {name} is ready")
        return {"ok": not problems, "problems": problems, "facts": facts}

    def select_dpu(self, name: str) -> str:
        """Send this session's jobs to DPU ``name`` from now on."""
        self.env.set("dpu_name", name)
        self.say(f"Selected DPU {name}")
        return name

    # ---- sequences ----
    def get_sequence_identifiers(self) -> list[str]:
        """Names of every sequence this session can run."""
        identifiers = self.registry.identifiers()
        self._report_registry_problems()
        return identifiers

    def show_sequence_identifiers(self) -> list[str]:
        """Print each sequence with what it does and how it fans out; return the names."""
        names = self.get_sequence_identifiers()
        for name in names:
            spec = self.registry.get(name)
            self.say(f"{name} : {spec.doc or '(no description)'} [per {spec.fan_out}]")
        return names

    def get_sequence_options(self, sequence: str) -> list[str]:
        """Short then long names of the options of ``sequence`` (or a chain 'A>B')."""
        from awe.dpu.options import option_names

        return option_names(self.registry.resolve(sequence))

    def show_sequence_options(self, sequence: str) -> list[Option]:
        """Print the options as Astro-WISE's OptionsParser does; return them."""
        from awe.dpu.options import all_options

        options = all_options(self.registry.resolve(sequence))
        print("Recognized options for the OptionsParser are:")
        for option in options:
            required = " required" if option.required else ""
            text = f'"{option.short}" or "{option.long}" (default: {option.describe_default()})'
            help_text = f" {option.help}" if option.help else ""
            line = f"{text}{required}{help_text}"
            print(line)
            self.session_log.write(line)
        return options

    def _report_registry_problems(self) -> None:
        for problem in self.registry.problems:
            self.say(f"WARNING: sequence not loaded: {problem}")
        self.registry.problems.clear()

    # ---- submitting ----
    def run(
        self,
        sequence: str,
        send_code: bool = True,
        dpu: str | None = None,
        time_limit: float | None = None,
        dry_run: bool = False,
        **options: Any,
    ) -> int | dict[int, str]:
        """Submit ``sequence`` (or a chain ``'A>B'``) with ``options``; return the job id.

        ``send_code``: run this checkout's code (recorded as a snapshot id) rather than the
        code installed on the DPU. ``dpu``: another DPU for this run only. ``time_limit``:
        seconds per task before it is aborted (default: the sequence's own). ``dry_run``:
        plan the job and print its tasks (and batch scripts, on a Slurm DPU) without
        recording or submitting anything; return the scripts by task number.
        """
        from awe.db.jobs import TaskSpec, record_job
        from awe.dpu.codeship import build_snapshot, code_roots
        from awe.dpu.options import parse_options
        from awe.dpu.planner import estimated_seconds, plan_job
        from awe.sequence import SelectionContext

        steps = self.registry.resolve(sequence)
        self._report_registry_problems()
        parsed = parse_options(steps, options)
        if time_limit is not None and not (isinstance(time_limit, (int, float)) and time_limit > 0):
            raise AweError(f"time_limit is seconds per task (> 0), got {time_limit!r}")
        backend = self.backend(dpu)
        shown = ", ".join(f"{k}={v}" for k, v in parsed.as_record().items())
        self.say(f"Calling: {sequence}({shown})")
        tasks = plan_job(steps, parsed, SelectionContext(self.database, self.env), time_limit)
        self.say(
            f"Estimated process time : {estimated_seconds(tasks, backend.workers):.0f} seconds"
        )
        if dry_run:
            return self._dry_run(backend, sequence, parsed.commit, tasks)
        snapshot = (
            build_snapshot(code_roots(Path(self.env.home), self.env.code_paths))
            if send_code
            else None
        )
        code_id = snapshot.id if snapshot else None
        job_id = record_job(
            self.database,
            username=self.env.username,
            project=self.env.project,
            sequence=sequence,
            dpu_name=backend.name,
            tasks=[
                TaskSpec(t.name, t.depends_on, t.sequence, t.step, t.key, t.time_limit)
                for t in tasks
            ],
            options=parsed.as_record(),
            parameters=parsed.parameters,
            code_snapshot_id=code_id,
            commit=parsed.commit,
        )
        description = self._job_description(job_id, sequence, parsed.commit, tasks)
        try:
            work_dir = backend.submit(job_id, description, snapshot)
        except Exception:
            self._delete_job(job_id)  # nothing half-written: no job that will never run
            raise
        self._set_work_dir(job_id, work_dir)
        self.say(f"Sending job with identifier {job_id} to DPU")
        self.session_jobs.append(job_id)
        return job_id

    def _job_description(
        self, job_id: int | None, sequence: str, commit: bool, tasks: list[PlannedTask]
    ) -> dict[str, Any]:
        """What the DPU reads as ``job.json``: the job and every task of its graph."""
        return {
            "job_id": job_id,
            "sequence": sequence,
            "home": self.env.home,
            "commit": commit,
            "tasks": [t.to_json() for t in tasks],
        }

    def _dry_run(
        self, backend: Backend, sequence: str, commit: bool, tasks: list[PlannedTask]
    ) -> dict[int, str]:
        """Show what a run would submit; nothing is recorded, written or submitted."""
        scripts = backend.preview(self._job_description(None, sequence, commit, tasks))
        for task in tasks:
            waits = ", ".join(tasks[n].name for n in task.depends_on) or "nothing"
            self.say(f"Dry run: task {task.number} {task.name} waits for {waits}")
        for number, script in scripts.items():
            print(f"---- batch script of task {number} ({tasks[number].name}) ----")
            print(script, end="")
        self.say(f"Dry run: {len(tasks)} tasks for DPU {backend.name}; nothing was submitted")
        return scripts

    def show_batch_script(self, jobid: int) -> dict[int, str]:
        """Print and return the batch scripts of job ``jobid`` (a Slurm DPU's), by task."""
        from awe.db.models import Job

        (jobid,) = self._job_ids(jobid)
        with self.database.session() as session:
            job = session.get(Job, jobid)
            work_dir, dpu_name = job.work_dir, job.dpu_name
        scripts = self.backend(dpu_name).batch_scripts(work_dir) if work_dir else {}
        if not scripts:
            raise AweError(
                f"job {jobid} ran on DPU {dpu_name}, which runs tasks on its own pool and "
                f"writes no batch scripts; only Slurm DPUs do"
            )
        for number, script in scripts.items():
            print(f"---- batch script of job {jobid} task {number} ----")
            print(script, end="")
        return scripts

    def _set_work_dir(self, job_id: int, work_dir: str) -> None:
        from awe.db.models import Job

        with self.database.session() as session:
            session.get(Job, job_id).work_dir = work_dir

    def _delete_job(self, job_id: int) -> None:
        from awe.db.models import Job

        with self.database.session() as session:
            session.delete(session.get(Job, job_id))

    # ---- following ----
    def get_jobids(self) -> list[int]:
        """Ids of your jobs (all sessions), oldest first."""
        from awe.db.jobs import job_ids

        return job_ids(self.database, self.env.username)

    def _job_ids(self, jobids: int | list[int] | None) -> list[int]:
        if jobids is None:
            return self.get_jobids()
        from sqlalchemy import select

        from awe.db.models import Job

        ids = [jobids] if isinstance(jobids, int) else list(jobids)
        with self.database.session() as session:
            known = set(session.scalars(select(Job.id).where(Job.id.in_(ids))))
        missing = [i for i in ids if i not in known]
        if missing:
            raise JobNotFound(
                f"no job with identifier {', '.join(map(str, missing))}; your jobs: "
                f"{self.get_jobids()[-10:]} (dpu.get_jobids() lists them all)"
            )
        return ids

    def sync(self, jobids: list[int]) -> None:
        """Fold new journal events of ``jobids`` into the database."""
        from sqlalchemy import and_, or_, select

        from awe.db.models import Job, JobState, Task, TaskState
        from awe.dpu.commit import commit_products
        from awe.dpu.sync import sync_job

        uncommitted = select(Task.job_id).where(
            Task.state == TaskState.N, Task.products_committed.is_(False)
        )
        with self.database.session() as session:
            rows = session.execute(
                select(Job.id, Job.dpu_name).where(
                    Job.id.in_(jobids),
                    or_(
                        Job.state.in_([JobState.QUEUED, JobState.RUNNING]),
                        and_(Job.commit.is_(True), Job.id.in_(uncommitted)),
                    ),
                )
            ).all()
        for job_id, dpu_name in rows:
            try:
                backend = self.backend(dpu_name)
                sync_job(self.database, backend, job_id)
                commit_products(self.database, backend, job_id, self.env.data_root)
            except RemoteError as err:  # show what the database knows, and say why
                self.say(
                    f"WARNING: job {job_id}: cannot reach DPU {dpu_name} ({err}); "
                    f"showing its last known state"
                )

    def _statuses(self, jobids: int | list[int] | None) -> list[JobStatus]:
        from awe.dpu.status import job_statuses

        ids = self._job_ids(jobids)
        self.sync(ids)
        return job_statuses(self.database, ids)

    def get_status(self, jobids: int | list[int] | None = None) -> list[JobStatus]:
        """Print and return the status of ``jobids`` (default: all your jobs)."""
        statuses = self._statuses(jobids)
        for status in statuses:
            self.say(status.line())
        return statuses

    def get_logs(self, jobids: int | list[int] | None = None) -> dict[int, list[str]]:
        """Print and return the log lines of ``jobids`` (default: all your jobs)."""
        from sqlalchemy import select

        from awe.db.models import LogRecord, Task

        ids = self._job_ids(jobids)
        self.sync(ids)
        logs: dict[int, list[str]] = {}
        with self.database.session() as session:
            for job_id in ids:
                rows = session.execute(
                    select(LogRecord.time, LogRecord.message, Task.name)
                    .outerjoin(Task, LogRecord.task_id == Task.id)
                    .where(LogRecord.job_id == job_id)
                    .order_by(Task.number, LogRecord.id)
                ).all()
                lines, current = [], None
                for when, message, task_name in rows:
                    if task_name != current:
                        current = task_name
                        lines.append(f"{_local_time(when)} - ++++ Job {job_id} task {task_name}")
                    lines.append(f"{_local_time(when)} - {message}")
                logs[job_id] = lines
        for lines in logs.values():
            for line in lines:
                print(line)
                self.session_log.write(line)
        return logs

    def wait(
        self, jobids: int | list[int] | None = None, timeout: float | None = None
    ) -> list[JobStatus]:
        """Wait, with a progress bar, until the jobs are final; return their statuses.

        Default: the jobs this session submitted (or all your unfinished jobs when it
        submitted none). Raises ``TimeoutError`` after ``timeout`` seconds.
        """
        from tqdm.auto import tqdm

        if jobids is None:
            jobids = self.session_jobs or [s.job_id for s in self._statuses(None) if not s.is_final]
        deadline = None if timeout is None else time.monotonic() + timeout
        statuses = self._statuses(jobids)
        total = sum(s.total for s in statuses)
        with tqdm(total=total, unit="task", desc="Waiting for jobs", leave=True) as bar:
            while True:
                done = sum(sum(s.counts.values()) for s in statuses)
                bar.update(done - bar.n)
                bar.set_postfix_str(_summary(statuses), refresh=False)
                if all(s.is_final for s in statuses):
                    break
                if deadline is not None and time.monotonic() > deadline:
                    unfinished = [s.job_id for s in statuses if not s.is_final]
                    raise TimeoutError(
                        f"jobs {unfinished} not finished after {timeout} s; they go on. "
                        f"dpu.wait() again, or dpu.cancel_job(jobid) to stop one."
                    )
                time.sleep(WAIT_POLL)
                statuses = self._statuses(jobids)
        return statuses

    def get_job_result(self, jobid: int) -> list[Any]:
        """The main committed products of job ``jobid`` (those of its last step), as frames;
        empty when it ran without ``C=1``. A product an earlier job already committed (the
        same content) is that earlier frame. Prints one line per product."""
        from sqlalchemy import func, select

        from awe.db.frames import Frame
        from awe.db.models import Job, Task, TaskState
        from awe.dpu.journal import parse_new_bytes

        (status,) = self._statuses(jobid)
        with self.database.session() as session:
            job = session.get(Job, jobid)
            work_dir, dpu_name = job.work_dir, job.dpu_name
            last_step = session.scalar(select(func.max(Task.step)).where(Task.job_id == jobid))
            numbers = list(
                session.scalars(
                    select(Task.number).where(
                        Task.job_id == jobid,
                        Task.step == last_step,
                        Task.state == TaskState.N,
                        Task.products_committed.is_(True),
                    )
                )
            )
        journals = self.backend(dpu_name).read_journals(work_dir, dict.fromkeys(numbers, 0))
        digests = {
            event["sha256"]
            for data in journals.values()
            for event in parse_new_bytes(data)[0]
            if event["event"] == "product"
        }
        with self.database.session() as session:
            frames = list(
                session.scalars(select(Frame).where(Frame.sha256.in_(digests)).order_by(Frame.id))
            )
        if not frames:
            note = "" if status.is_final else " yet (it is still running)"
            self.say(f"Jobid {jobid} has no committed products{note}")
        for frame in frames:
            facts = " ".join(
                f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
                for key, value in (frame.results or {}).items()
                if isinstance(value, (int, float, str))
            )
            self.say(f"Jobid {jobid}: {frame!r} {facts}".rstrip())
        return frames

    # ---- cancelling ----
    def cancel_job(self, jobid: int) -> JobStatus:
        """Cancel job ``jobid``: queued tasks end S and never start, running ones are stopped
        and end A. Returns once the database confirms it. Only the job's owner may cancel."""
        from awe.db.models import Job, TaskState
        from awe.dpu.sync import end_tasks

        (status,) = self._statuses(jobid)
        if status.owner != self.env.username:
            raise AweError(f"job {jobid} belongs to {status.owner}; only its owner can cancel it")
        if status.is_final:
            self.say(f"Jobid {jobid} has already {status.state.value}; nothing to cancel")
            return status
        with self.database.session() as session:
            job = session.get(Job, jobid)
            job.cancel_requested = True
            work_dir, backend = job.work_dir, self.backend(job.dpu_name)
        backend.cancel(work_dir)
        deadline = time.monotonic() + CANCEL_GRACE
        pause = 0.05  # growing: each look may be a round trip to a remote host or squeue
        while backend.runner_alive(work_dir) and time.monotonic() < deadline:
            time.sleep(pause)
            pause = min(pause * 2, 1.0)
        end_tasks(
            self.database,
            backend,
            jobid,
            {},
            running=(TaskState.A, "CANCELLED while running"),
            queued=(TaskState.S, "cancelled before it started"),
        )
        (status,) = self._statuses(jobid)
        self.say(f"Cancelled job {jobid}: " + status.line())
        return status

    def __repr__(self) -> str:
        from awe.database_url import mask_url

        return (
            f"<Processor user={self.env.username} project={self.env.project} "
            f"dpu={self.env.dpu_name} database={mask_url(self.env.database_url)}>"
        )


def _local_time(when: datetime) -> str:
    return when.astimezone().strftime("%H:%M:%S")


def _summary(statuses: list[JobStatus]) -> str:
    letters = ("N", "E", "A", "S", "U")
    totals = {letter: sum(s.counts[letter] for s in statuses) for letter in letters}
    running = sum(s.running for s in statuses)
    return f"running {running} N/E/A/S/U " + "/".join(str(totals[x]) for x in letters)
