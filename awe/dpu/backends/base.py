"""The DPU seam: a :class:`Backend` is a transport (how AWE reaches the DPU's machine:
:mod:`awe.dpu.backends.transport`) composed with a scheduler (what starts, follows and
stops the job's tasks there: AWE's own pool, or Slurm), in the spirit of Parsl's providers
over channels. Any scheduler works over any transport; the DPU definition picks both.

Nothing above this package knows whether a job runs here, over SSH or on Slurm: it calls
the Backend, whose methods do the transport's part (code, inputs, journals, products) and
hand the rest to the scheduler.
"""

from __future__ import annotations

import base64
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from awe.dpu.backends.transport import DEFAULT_PYTHON, Transport
from awe.dpu.remote import program
from awe.messages import Job, Task

if TYPE_CHECKING:
    from awe.dpu.codeship import Snapshot


@dataclass(frozen=True)
class Verdict:
    """What a DPU knows of tasks whose journals have not said how they ended.

    ``outcomes``: definite ends by task number, ``(letter, reason)``, e.g. ``("A",
    "TIMEOUT")`` from the batch system. ``gone``: the job's processes are gone, so every
    other unfinished task is lost (running ones end A, queued ones U).
    """

    outcomes: dict[int, tuple[str, str]] = field(default_factory=dict)
    gone: bool = False


@dataclass(frozen=True)
class Poll:
    """One look at a job: new journal bytes by task number, and the scheduler's facts
    (whether the runner lives, what Slurm says), asked before the journals were read."""

    journals: dict[int, bytes]
    facts: Any = None


@dataclass(frozen=True)
class Launch:
    """A job ready for its scheduler: its folder on the DPU, the job as the DPU reads it,
    the environment of its processes and the Python that runs them."""

    job_dir: str
    job: Job
    environment: dict[str, str]
    python: str


class Scheduler(ABC):
    """Starts a job's tasks on the DPU's machine, follows them, stops them."""

    #: The agent program its verbs belong to (:mod:`awe.dpu.remote.program`).
    program: tuple[str, ...] = program.AGENT
    #: Commands ``check_dpu`` looks for on the DPU's PATH.
    commands: tuple[str, ...] = ()
    #: Whether each task gets a batch script (shown by a dry run and show_batch_script).
    writes_scripts = False
    #: Seconds between two looks at a job while waiting: the first pause, and the longest
    #: it grows to (by half each look that brings no news); news brings it back to the first.
    poll_interval: tuple[float, float] = (0.2, 2.0)

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def call(self, verb: str, args: dict[str, Any]) -> Any:
        return self.transport.call(self.program, verb, args)

    def environment(self) -> dict[str, str]:
        """Variables the scheduler sets for every task process."""
        return {}

    def max_workers(self) -> int | None:
        """Tasks at once, written into the job (None: the DPU decides)."""
        return None

    @abstractmethod
    def submit(self, launch: Launch) -> None:
        """Write the job into its folder and start it."""

    def preview(self, launch: Launch) -> dict[int, str]:
        """The batch scripts the job would get, by task number, submitting nothing."""
        return {}

    @abstractmethod
    def runner_alive(self, work_dir: str) -> bool | None:
        """True while the job may still run, False once it is gone, None if unknown."""

    def reconcile(self, work_dir: str, unfinished: dict[int, str]) -> Verdict:
        """Judge the tasks the journals leave unfinished (number -> QUEUED/RUNNING).
        The default asks whether the job still runs."""
        return Verdict(gone=self.runner_alive(work_dir) is False)

    def poll(self, work_dir: str, offsets: dict[int, int]) -> tuple[dict[str, str], Any]:
        """One look at a job: the new journal bytes (base64 by task number) and the
        scheduler's facts on it, asked *before* the journals are read, so a task the facts
        call ended has its whole journal in the same answer. A scheduler whose agent has a
        ``poll`` verb does both in one round trip; this default reads the journals only and
        leaves the facts to :meth:`judge` (a second call, only when tasks stay unfinished)."""
        return self.call("journals", {"dir": work_dir, "offsets": offsets}), None

    def judge(self, work_dir: str, facts: Any, unfinished: dict[int, str]) -> Verdict:
        """The verdict on the tasks the journals of a poll left unfinished, from that
        poll's ``facts``."""
        return self.reconcile(work_dir, unfinished)

    @abstractmethod
    def cancel(self, work_dir: str) -> None:
        """Ask the scheduler to stop the job (running tasks killed, queued ones skipped)."""

    def kill(self, work_dir: str, pids: list[int]) -> None:  # noqa: B027 - most have none
        """Stop the job's processes at once (no cooperation), where the scheduler can."""

    def batch_scripts(self, work_dir: str) -> dict[int, str]:
        """The job's batch scripts, by task number (none on a pool)."""
        return {}


class Backend:
    """A DPU: a transport and a scheduler. ``work_dir`` (per job) is the job's folder on
    the DPU's side; the DPU's own ``work_dir`` holds ``jobs/``, ``code/`` and ``store/``."""

    def __init__(
        self,
        name: str,
        transport: Transport,
        scheduler: Scheduler,
        workers: int,
        python: str = DEFAULT_PYTHON,
    ) -> None:
        self.name = name
        self.transport = transport
        self.scheduler = scheduler
        #: Number of tasks run at once (for the process-time estimate).
        self.workers = workers
        #: The Python the DPU definition names (the transport resolves the default).
        self.python = python
        #: Pauses between two looks while waiting (first, longest): the scheduler's own,
        #: unless the DPU definition sets ``poll_interval``.
        self.poll_interval = scheduler.poll_interval

    @property
    def shell(self) -> Any:
        """The transport's shell (commands and files on the DPU's machine)."""
        return self.transport.shell

    # ---- submitting ----
    def launch(self, job_id: int | str, job: Job, snapshot: Snapshot | None) -> Launch:
        """Put the job's code and inputs in place; what the scheduler needs to start it."""
        transport = self.transport
        code_dir = transport.ship_code(snapshot) if snapshot is not None else None
        environment = {**self.scheduler.environment(), "AWE_HOME": transport.awe_home(code_dir)}
        if code_dir is not None:
            environment["PYTHONPATH"] = code_dir
        tasks = tuple(_with_inputs(t, transport.stage_inputs(list(t.inputs))) for t in job.tasks)
        ready = Job(
            job_id=job.job_id,
            sequence=job.sequence,
            tasks=tasks,
            home=transport.sequences_home(code_dir),
            commit=job.commit,
            max_workers=self.scheduler.max_workers(),
        )
        job_dir = f"{transport.work_dir}/jobs/{job_id}"
        return Launch(job_dir, ready, environment, transport.python(self.python))

    def submit(self, job_id: int, job: Job, snapshot: Snapshot | None = None) -> str:
        """Ship the code snapshot (if any) and the inputs, write the job and start it;
        return the job's work_dir."""
        launch = self.launch(job_id, job, snapshot)
        self.scheduler.submit(launch)
        return launch.job_dir

    def preview(self, job: Job) -> dict[int, str]:
        """The batch scripts ``job`` would get (a dry run): nothing is shipped or started."""
        if not self.scheduler.writes_scripts:
            return {}
        launch = Launch(
            f"{self.transport.work_dir}/jobs/<job id>",
            job,
            {**self.scheduler.environment(), "AWE_HOME": self.transport.awe_home(None)},
            self.transport.python(self.python),
        )
        return self.scheduler.preview(launch)

    # ---- following ----
    def read_journals(self, work_dir: str, offsets: dict[int, int]) -> dict[int, bytes]:
        """New journal bytes of the given tasks (task number -> offset) in one go."""
        found = self.scheduler.call("journals", {"dir": work_dir, "offsets": offsets})
        return {int(n): base64.b64decode(data) for n, data in found.items()}

    def poll(self, work_dir: str, offsets: dict[int, int]) -> Poll:
        """New journal bytes of the given tasks and the scheduler's facts on the job, in
        one round trip where the scheduler's agent can (see :meth:`Scheduler.poll`)."""
        found, facts = self.scheduler.poll(work_dir, offsets)
        return Poll({int(n): base64.b64decode(data) for n, data in found.items()}, facts)

    def judge(self, work_dir: str, poll: Poll, unfinished: dict[int, str]) -> Verdict:
        """What the scheduler's facts of ``poll`` say of the tasks still unfinished."""
        return self.scheduler.judge(work_dir, poll.facts, unfinished)

    def runner_alive(self, work_dir: str) -> bool | None:
        return self.scheduler.runner_alive(work_dir)

    def reconcile(self, work_dir: str, unfinished: dict[int, str]) -> Verdict:
        return self.scheduler.reconcile(work_dir, unfinished)

    def batch_scripts(self, work_dir: str) -> dict[int, str]:
        return self.scheduler.batch_scripts(work_dir)

    def fetch(self, path: str, into: Path) -> Path:
        """A local copy of the product at ``path`` on the DPU (``into``: a scratch name)."""
        return self.transport.fetch(path, into)

    def ship_code(self, snapshot: Snapshot) -> str:
        return self.transport.ship_code(snapshot)

    # ---- checking ----
    def facts(self, modules: list[str], commands: list[str] | None = None) -> dict[str, Any]:
        """What the DPU's machine offers: Python, importable modules, a writable work dir,
        the scheduler's commands (default: those of this DPU's scheduler)."""
        wanted = list(self.scheduler.commands) if commands is None else commands
        return self.scheduler.call(
            "check", {"modules": modules, "commands": wanted, "work_dir": self.transport.check_dir}
        )

    # ---- stopping ----
    def cancel(self, work_dir: str) -> None:
        self.scheduler.cancel(work_dir)

    def kill(self, work_dir: str, pids: list[int]) -> None:
        self.scheduler.kill(work_dir, pids)


def _with_inputs(task: Task, inputs: list[Any]) -> Task:
    return task if list(task.inputs) == inputs else replace(task, inputs=tuple(inputs))
