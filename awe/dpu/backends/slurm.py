"""A Slurm DPU: every task is a Slurm batch job; Slurm schedules, AWE follows.

On this machine (no ``host`` in the DPU definition) or behind SSH on a login node (the SSH
DPU's shell, code shipping and input staging are reused as they are). Layout in the DPU's
``work_dir`` (a file system the compute nodes share, as on real clusters)::

    jobs/<job id>/job.json            the job, as the workers read it
    jobs/<job id>/slurm/<n>.sh        task n's batch script (readable; show_batch_script)
    jobs/<job id>/slurm/<n>.out       its output: Slurm's own messages, worker tracebacks
    jobs/<job id>/slurm.json          the Slurm job id of every task
    jobs/<job id>/tasks/<n>.jsonl     task n's journal, written by its worker

Facts come back two ways. The journals say what the tasks said (one read for all tasks).
Slurm says what happened to tasks that could not say it: one ``squeue`` per job and poll
(``sacct`` for the jobs squeue forgot, where accounting is on), never one per task. A slow
or failing squeue changes nothing: the answer waits, no state is invented.
"""

from __future__ import annotations

import base64
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from awe.dpu.backends.base import Backend, Verdict
from awe.dpu.backends.slurm_script import render_scripts
from awe.dpu.remote import agent, slurm_agent
from awe.dpu.remote.shell import LocalShell, RemoteError, Shell
from awe.errors import AweError

if TYPE_CHECKING:
    from awe.dpu.codeship import Snapshot
    from awe.dpu_definitions import DPUDefinition
    from awe.env import Env

SLURM_AGENT_SOURCE = Path(slurm_agent.__file__).read_text()
#: Slurm's end states that abort a task that was running, with the words for the log.
ABORTING = {
    "TIMEOUT": "TIMEOUT: over its Slurm time limit",
    "OUT_OF_MEMORY": "OUT_OF_MEMORY: over its Slurm memory limit",
    "NODE_FAIL": "NODE_FAIL: its node failed",
    "BOOT_FAIL": "BOOT_FAIL: its node failed to boot",
    "CANCELLED": "CANCELLED in Slurm",
    "DEADLINE": "DEADLINE: past its Slurm deadline",
    "PREEMPTED": "PREEMPTED by Slurm",
    "FAILED": "FAILED in Slurm without a journal record",
    "REVOKED": "REVOKED by Slurm",
}


class SlurmBackend(Backend):
    """Tasks as Slurm batch jobs, on this machine's Slurm or a cluster's login node."""

    def __init__(self, definition: DPUDefinition, env: Env) -> None:
        self.definition = definition
        self.env = env
        self.name = definition.name
        self.workers = definition.max_workers or 1  # for the estimate only: Slurm decides
        self._ssh: Any = None
        if definition.is_remote:
            from awe.dpu.backends.ssh import SSHBackend

            self._ssh = SSHBackend(definition, env)
            self.shell: Shell = self._ssh.shell
        else:
            self.shell = LocalShell()

    # ---- talking to the DPU's machine ----
    def _agent(self, verb: str, args: dict[str, Any]) -> Any:
        """The general agent (journals, home): in this process here, over SSH there."""
        if self._ssh is not None:
            return self._ssh.call(verb, args)
        return agent.VERBS[verb](args)

    def _slurm(self, verb: str, args: dict[str, Any]) -> Any:
        """A :mod:`slurm_agent` verb; RemoteError when it or Slurm failed."""
        args = {"timeout": self.definition.command_timeout, **args}
        if self._ssh is None:
            try:
                return slurm_agent.VERBS[verb](args)
            except (slurm_agent.SlurmCommandError, OSError) as err:
                raise RemoteError(f"slurm {verb}: {err}") from None
        return self._ssh.call_source(
            SLURM_AGENT_SOURCE, verb, args, self.definition.command_timeout + 10
        )

    @property
    def work_dir(self) -> str:
        """The DPU's work_dir, ``~`` expanded on its machine."""
        if self._ssh is not None:
            return self._ssh.work_dir
        return os.path.abspath(os.path.expanduser(self.definition.work_dir))

    # ---- submitting ----
    def submit(self, job_id: int, job: dict[str, Any], snapshot: Snapshot | None = None) -> str:
        """Ship code and inputs (SSH), then write job.json and the batch scripts and sbatch
        them all in one agent call: one round trip to the login node for the whole job."""
        job_dir, job, environment, python = self._prepare(job_id, job, snapshot)
        scripts = render_scripts(self.definition, str(job_id), job_dir, job, environment, python)
        tasks = [
            {"number": t["number"], "script": scripts[t["number"]], "depends_on": t["depends_on"]}
            for t in job["tasks"]
        ]
        self._slurm("submit", {"dir": job_dir, "job": job, "tasks": tasks})
        return job_dir

    def preview(self, job: dict[str, Any]) -> dict[int, str]:
        """The batch scripts a job would get, touching nothing (``dpu.run(dry_run=True)``)."""
        job_dir = f"{self.work_dir}/jobs/<job id>"
        environment, python = self._environment()
        return render_scripts(self.definition, "<job id>", job_dir, job, environment, python)

    def _prepare(
        self, job_id: int, job: dict[str, Any], snapshot: Snapshot | None
    ) -> tuple[str, dict[str, Any], dict[str, str], str]:
        """The job's folder, the job as the DPU sees it, its environment and its Python.
        Behind SSH, code shipping and input staging are the SSH DPU's."""
        if self._ssh is not None:
            job_dir, how = self._ssh.prepare(job_id, job, snapshot)
            return job_dir, how["job"], dict(how["env"]), how["python"]
        job_dir = f"{self.work_dir}/jobs/{job_id}"
        if any(c.isspace() for c in job_dir):
            raise AweError(
                f"DPU {self.name}: work_dir {job_dir!r} holds white space, which #SBATCH "
                f"lines cannot carry; choose a work_dir without spaces"
            )
        environment, python = self._environment()
        return job_dir, job, environment, python

    def _environment(self) -> tuple[dict[str, str], str]:
        """On this machine the workers run this checkout's code (the snapshot is only
        recorded, as on the local DPU): they import it from where this process does."""
        if self._ssh is not None:
            return {"AWE_HOME": f"{self.work_dir}/home"}, self.definition.python
        checkout = str(Path(agent.__file__).resolve().parents[3])
        python = sys.executable if self.definition.python == "python3" else self.definition.python
        return {"AWE_HOME": str(self.env.home), "PYTHONPATH": checkout}, python

    # ---- following ----
    def read_journals(self, work_dir: str, offsets: dict[int, int]) -> dict[int, bytes]:
        found = self._agent("journals", {"dir": work_dir, "offsets": offsets})
        return {int(n): base64.b64decode(data) for n, data in found.items()}

    def slurm_state(self, work_dir: str, tasks: list[int] | None = None) -> dict[str, Any] | None:
        """What Slurm says of the job's tasks (all when ``tasks`` is None); None when Slurm
        did not answer (slurmctld down, squeue slow, SSH gone)."""
        try:
            return self._slurm("state", {"dir": work_dir, "tasks": tasks})
        except RemoteError:
            return None

    def runner_alive(self, work_dir: str) -> bool | None:
        """Whether any Slurm job of this AWE job may still run."""
        facts = self.slurm_state(work_dir)
        if facts is None:
            return None
        return any(state in slurm_agent.ACTIVE for state, _, _ in facts["tasks"].values())

    def reconcile(self, work_dir: str, unfinished: dict[int, str]) -> Verdict:
        facts = self.slurm_state(work_dir, sorted(unfinished))
        if facts is None:
            return Verdict()  # no answer: no change, ask again next time
        outcomes = {}
        for number, (state, reason, code) in facts["tasks"].items():
            outcome = judge(state, reason, code, unfinished[int(number)])
            if outcome is not None:
                outcomes[int(number)] = outcome
        for number in facts["unknown"]:
            if unfinished[int(number)] == "RUNNING":
                outcomes[int(number)] = ("A", "lost: Slurm no longer knows its job")
            else:
                outcomes[int(number)] = ("U", "never started: Slurm no longer knows its job")
        for number in facts["unsubmitted"]:
            outcomes[int(number)] = ("U", "never submitted to Slurm")
        return Verdict(outcomes=outcomes)

    # ---- stopping ----
    def cancel(self, work_dir: str) -> None:
        """scancel every Slurm job of the AWE job, in one command."""
        self._slurm("cancel", {"dir": work_dir})

    def kill(self, work_dir: str, pids: list[int]) -> None:
        """Nothing to do: the tasks the database ends have ended in Slurm already (reconcile
        reports only jobs Slurm ended; cancel scancels them all), and their process ids
        belong to compute nodes this machine cannot signal."""

    def batch_scripts(self, work_dir: str) -> dict[int, str]:
        """The job's batch scripts, each headed by the Slurm job id it was given."""
        found = self._slurm("scripts", {"dir": work_dir})
        scripts = {}
        for number, text in sorted(found["scripts"].items(), key=lambda item: int(item[0])):
            slurm_id = found["ids"].get(number, "not submitted")
            first, _, rest = text.partition("\n")
            scripts[int(number)] = f"{first}\n# Slurm job id: {slurm_id}\n{rest}"
        return scripts


def judge(state: str, reason: str, exit_code: str, was: str) -> tuple[str, str] | None:
    """The task's outcome from Slurm's word on its job, or None while it may still run (or
    when its journal is the one to tell: a job that COMPLETED wrote its own end).

    ``was``: the task's state in the database (QUEUED or RUNNING).
    """
    if reason == "DependencyNeverSatisfied":  # pending for ever, or already removed
        return "S", "a task it depends on did not end N (Slurm: DependencyNeverSatisfied)"
    if state in slurm_agent.ACTIVE:
        return None
    if state == "COMPLETED":
        return "U", "its Slurm job completed but its journal has no outcome"
    words = ABORTING.get(state, f"{state} in Slurm")
    detail = f" ({reason})" if reason and reason not in ("None", state) else ""
    if was == "QUEUED" and state not in ("FAILED", "OUT_OF_MEMORY", "TIMEOUT"):
        return "S", f"{words} before it started{detail}"
    return "A", f"{words}{detail}"
