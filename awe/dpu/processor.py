"""The Processor: the ``dpu`` object astronomers hold, a thin facade over the job service.

It keeps no state the database does not also hold (beyond which DPU this session selected
and which jobs it submitted), so a new session, or another user on the same MySQL server,
sees the same jobs. The database is opened on first use, which keeps the prompt fast.
The method names and printed lines follow the Astro-WISE Processor; every method that
prints also returns the same facts as data. The work itself (planning, submitting,
syncing, cancelling, queries) is :class:`awe.dpu.service.JobService`'s, which prints
nothing; this class formats and prints.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime
from typing import TYPE_CHECKING, Any

from awe.database_url import mask_url
from awe.dpu.echo import printed
from awe.dpu.service import Interrupted, JobService
from awe.dpu.session_log import SessionLog
from awe.env import Env, configured_dpu_names, load_env

if TYPE_CHECKING:
    from pathlib import Path

    from awe.db.database import Database
    from awe.db.frames import Frame
    from awe.dpu.backends.base import Backend
    from awe.dpu.registry import Registry
    from awe.dpu.service import Plan
    from awe.dpu.status import JobStatus
    from awe.sequence import Option, SequenceSpec


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
        self.jobs = JobService(self.env)
        self.session_jobs: list[int] = []

    # ---- plumbing ----
    @property
    def database(self) -> Database:
        """The job database, opened (and created or upgraded) on first use."""
        return self.jobs.database

    @property
    def registry(self) -> Registry:
        """The sequences this session knows (built-in, entry points, ``$AWE_HOME/sequences``)."""
        return self.jobs.registry

    def backend(self, name: str | None = None) -> Backend:
        """The backend of DPU ``name`` (default: the selected DPU)."""
        return self.jobs.backend(name)

    def say(self, message: str) -> str:
        """Print ``[user] HH:MM:SS - message`` and keep it in the session log."""
        line = f"[{self.env.username}] {datetime.now():%H:%M:%S} - {message}"
        self._print(line)
        return line

    def _print(self, line: str) -> None:
        """Print a line as it is, and keep it in the session log."""
        print(line)
        self.session_log.write(line)

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
        return printed(names)

    def _describe_dpu(self, name: str) -> str:
        if name == "local":
            return f"this machine ({socket.gethostname()}, {os.cpu_count()} cores)"
        return self.env.dpu_definitions()[name].describe()

    def check_dpu(self, name: str | None = None) -> dict[str, Any]:
        """Check that DPU ``name`` (default: the selected one) can run jobs: connection,
        Python, the packages sequences need, a writable work dir, the scheduler's commands.
        Prints each finding and what to do about it; returns ``{"ok", "problems", "facts"}``.
        """
        report = self.jobs.check(name)
        for line in report.lines():
            self.say(line)
        return printed(report.as_dict())

    def select_dpu(self, name: str) -> str:
        """Send this session's jobs to DPU ``name`` from now on."""
        self.env.set("dpu_name", name)
        self.say(f"Selected DPU {name}")
        return printed(name)

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
        return printed(names)

    def get_sequence_options(self, sequence: str) -> list[str]:
        """Short then long names of the options of ``sequence`` (or a chain 'A>B')."""
        from awe.dpu.options import option_names

        return option_names(self.registry.resolve(sequence))

    def show_sequence_options(self, sequence: str) -> list[Option]:
        """Print the options as Astro-WISE's OptionsParser does; return them."""
        from awe.dpu.options import OptionList, all_options

        options = OptionList(all_options(self.registry.resolve(sequence)))
        print("Recognized options for the OptionsParser are:")
        for option in options:
            required = " required" if option.required else ""
            text = f'"{option.short}" or "{option.long}" (default: {option.describe_default()})'
            help_text = f" {option.help}" if option.help else ""
            self._print(f"{text}{required}{help_text}")
        return printed(options)

    def _report_registry_problems(self) -> None:
        for problem in self.jobs.registry_problems():
            self.say(f"WARNING: sequence not loaded: {problem}")

    def _resolve(self, sequence: str) -> list[SequenceSpec]:
        steps = self.registry.resolve(sequence)
        self._report_registry_problems()
        return steps

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
        steps = self._resolve(sequence)
        parsed = self.jobs.parse(steps, options, time_limit)
        backend = self.backend(dpu)
        shown = ", ".join(f"{k}={v}" for k, v in parsed.as_record().items())
        self.say(f"Calling: {sequence}({shown})")
        plan = self.jobs.plan(sequence, steps, parsed, backend, time_limit)
        self.say(f"Estimated process time : {plan.estimated_seconds:.0f} seconds")
        if dry_run:
            return self._dry_run(plan)
        try:
            job_id = self.jobs.submit(plan, send_code)
        except Interrupted as interrupted:
            self.say(interrupted.message)
            raise
        self.say(f"Sending job with identifier {job_id} to DPU")
        self.session_jobs.append(job_id)
        return printed(job_id)

    def rerun(self, jobid: int, send_code: bool = False) -> int:
        """Run again, as a new job linked to job ``jobid``, only its tasks that did not end
        N, with the same options, parameters and code snapshot (``send_code=True``: this
        checkout's code); the N tasks' products are reused as inputs. Returns the new id."""
        from awe.dpu.rerun import rerun_job

        (jobid,) = self.jobs.job_ids(jobid)
        self.sync([jobid])
        try:
            new_id, line = rerun_job(self.jobs, jobid, send_code=send_code)
        except Interrupted as interrupted:
            self.say(interrupted.message)
            raise
        self.say(line)
        self.session_jobs.append(new_id)
        return printed(new_id)

    def _dry_run(self, plan: Plan) -> dict[int, str]:
        """Show what a run would submit; nothing is recorded, written or submitted."""
        scripts = self.jobs.preview(plan)
        tasks = plan.tasks
        for task in tasks:
            waits = ", ".join(tasks[n].name for n in task.depends_on) or "nothing"
            self.say(f"Dry run: task {task.number} {task.name} waits for {waits}")
        for numbers, script in _distinct(scripts):
            named = ", ".join(tasks[n].name for n in numbers[:3])
            more = f", ... {tasks[numbers[-1]].name}" if len(numbers) > 3 else ""
            print(f"---- batch script of {_tasks_word(numbers)} ({named}{more}) ----")
            print(script, end="")
        self.say(f"Dry run: {len(tasks)} tasks for DPU {plan.backend.name}; nothing was submitted")
        return printed(scripts)

    def show_batch_script(self, jobid: int) -> dict[int, str]:
        """Print and return the batch scripts of job ``jobid`` (a Slurm DPU's), by task."""
        scripts = self.jobs.batch_scripts(jobid)
        for numbers, script in _distinct(scripts):
            print(f"---- batch script of job {jobid} {_tasks_word(numbers)} ----")
            print(script, end="")
        return printed(scripts)

    # ---- following ----
    def get_jobids(self) -> list[int]:
        """Ids of your jobs (all sessions), oldest first."""
        return self.jobs.user_job_ids()

    def sync(self, jobids: list[int]) -> None:
        """Fold new journal events of ``jobids`` into the database."""
        for lost in self.jobs.sync(jobids):  # show what the database knows, and say why
            self.say(
                f"WARNING: job {lost.job_id}: cannot reach DPU {lost.dpu_name} ({lost.error}); "
                f"showing its last known state"
            )

    def _statuses(self, jobids: int | list[int] | None) -> list[JobStatus]:
        ids = self.jobs.job_ids(jobids)
        self.sync(ids)
        return self.jobs.statuses(ids)

    def get_status(self, jobids: int | list[int] | None = None) -> list[JobStatus]:
        """Print and return the status of ``jobids`` (default: all your jobs)."""
        statuses = self._statuses(jobids)
        for status in statuses:
            self.say(status.line())
        return printed(statuses)

    def get_logs(self, jobids: int | list[int] | None = None) -> dict[int, list[str]]:
        """Print and return the log lines of ``jobids`` (default: all your jobs)."""
        ids = self.jobs.job_ids(jobids)
        self.sync(ids)
        logs: dict[int, list[str]] = {}
        for job_id, records in self.jobs.log_records(ids).items():
            logs[job_id] = lines = []
            current = None
            for when, message, task_name in records:
                at = when.astimezone().strftime("%H:%M:%S")  # the user's local time
                if task_name != current:
                    current = task_name
                    lines.append(f"{at} - ++++ Job {job_id} task {task_name}")
                lines.append(f"{at} - {message}")
            for line in lines:
                self._print(line)
        return printed(logs)

    def wait(
        self, jobids: int | list[int] | None = None, timeout: float | None = None
    ) -> list[JobStatus]:
        """Wait, with a progress bar, until the jobs are final; print and return their
        statuses.

        Default: the jobs this session submitted (or all your unfinished jobs when it
        submitted none). Raises ``TimeoutError`` after ``timeout`` seconds. The bar follows
        the database, so it works for jobs submitted elsewhere and after a restart; when
        the output is not a terminal, a line per change of a job's state replaces it.
        """
        from awe.dpu.progress import wait_for

        if jobids is None:
            jobids = self.session_jobs or [s.job_id for s in self._statuses(None) if not s.is_final]
        pauses = self.jobs.poll_interval(self.jobs.job_ids(jobids))
        statuses = wait_for(lambda: self._statuses(jobids), timeout, self.say, pauses)
        for status in statuses:
            self.say(status.line())
        return printed(statuses)

    def get_job_result(self, jobid: int) -> list[Frame]:
        """The main committed products of job ``jobid`` (those of its last step), as frames;
        empty when it ran without ``C=1``. A product an earlier job already committed (the
        same content) is that earlier frame. Prints one line per product."""
        (status,) = self._statuses(jobid)
        frames = self.jobs.products(jobid)
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
        return printed(frames)

    def show_calibration(self, i: str | None = None, d: str | None = None, **options: Any) -> list:
        """Print, per chip and calibration type, the frame valid on night ``d`` for
        instrument ``i`` (when and by which job it was made, its quality flags; missing
        ones marked); return the rows. See :mod:`awe.data.calibration_overview`."""
        from awe.data.calibration_overview import show_calibration

        return printed(show_calibration(self.database, i=i, d=d, **options))

    def report(self, jobid: int, path: str) -> Path:
        """Write job ``jobid`` as one self-contained HTML page (tasks, logs, products with
        previews) at ``path``, for sharing without a server; return the path."""
        from awe.report import write_report

        self._statuses(jobid)  # the job exists, and the database has its newest state
        written = write_report(self.database, jobid, path, self.env.data_root)
        self.say(f"Wrote the report of job {jobid} to {written}")
        return printed(written)

    # ---- cancelling ----
    def cancel_job(self, jobid: int) -> JobStatus:
        """Cancel job ``jobid``: queued tasks end S and never start, running ones are stopped
        and end A. Returns once the database confirms it. Only the job's owner may cancel
        (on MySQL/MariaDB, through the same database account; docs/reliability.md says what
        this does and does not protect)."""
        (status,) = self._statuses(jobid)
        if not self.jobs.cancel(status):
            self.say(f"Jobid {jobid} has already {status.state.value}; nothing to cancel")
            return printed(status)
        (status,) = self._statuses(jobid)
        self.say(f"Cancelled job {jobid}: " + status.line())
        return printed(status)

    def __repr__(self) -> str:
        return (
            f"<Processor user={self.env.username} project={self.env.project} "
            f"dpu={self.env.dpu_name} database={mask_url(self.env.database_url)}>"
        )


def _distinct(scripts: dict[int, str]) -> list[tuple[list[int], str]]:
    """Each distinct script once, with the task numbers it runs (a job array's script runs
    all of its step's tasks)."""
    numbers: dict[str, list[int]] = {}
    for number, script in scripts.items():
        numbers.setdefault(script, []).append(number)
    return [(found, script) for script, found in numbers.items()]


def _tasks_word(numbers: list[int]) -> str:
    if len(numbers) == 1:
        return f"task {numbers[0]}"
    return f"tasks {numbers[0]}-{numbers[-1]} (a job array of {len(numbers)})"
