"""A Slurm DPU: every task runs as a Slurm job (an element of its step's job array, or a
batch job of its own); Slurm schedules, AWE follows.

A scheduler of the DPU seam, over either transport: this machine (no ``host`` in the DPU
definition) or a login node behind SSH (code shipping and input staging are the
transport's, as for any DPU). Layout in the DPU's
``work_dir`` (a file system the compute nodes share, as on real clusters)::

    jobs/<job id>/job.json            the job, as the workers read it
    jobs/<job id>/slurm/step<s>.sh    step s's array script (readable; show_batch_script)
    jobs/<job id>/slurm/step<s>.<i>.out  element i's output: Slurm's messages, tracebacks
    jobs/<job id>/slurm/<n>.sh, <n>.out  the same for a task submitted alone
    jobs/<job id>/slurm.json          the Slurm id, script and output of every task
    jobs/<job id>/tasks/<n>.jsonl     task n's journal, written by its worker

In pilot mode (``"slurm": {"mode": "pilot", ...}``) the job's tasks run instead inside a
few pilot allocations (:mod:`awe.dpu.pilot`), submitted as one array; ``pilot/claims/<n>``
says which pilot took task n.

Facts come back two ways. The journals say what the tasks said (one read for all tasks).
Slurm says what happened to tasks that could not say it: one ``squeue`` per job and poll
(``sacct`` for the jobs squeue forgot, where accounting is on), never one per task. A slow
or failing squeue changes nothing: the answer waits, no state is invented.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from awe.dpu.backends.base import Backend, Launch, Scheduler, Verdict
from awe.dpu.backends.slurm_arrays import Submission, plan_submissions
from awe.dpu.backends.slurm_script import check_values, render_pilot_script, render_scripts
from awe.dpu.remote import program, slurm_agent
from awe.dpu.remote.shell import RemoteError

if TYPE_CHECKING:
    from awe.dpu.backends.transport import Transport
    from awe.dpu_definitions import DPUDefinition


class SlurmScheduler(Scheduler):
    """Tasks as Slurm batch jobs; Slurm's states are judged by one table
    (:data:`awe.dpu.remote.slurm_agent.STATES`, through :func:`judge`)."""

    program = program.SLURM_AGENT
    commands = ("sbatch", "squeue", "scancel", "sacct")
    writes_scripts = True
    #: A cluster's controller serves every user: squeue once a second at most, and every
    #: 10 s while nothing changes.
    poll_interval = (1.0, 10.0)

    def __init__(self, transport: Transport, definition: DPUDefinition) -> None:
        super().__init__(transport)
        self.definition = definition
        #: Pilot mode: the tasks run inside a few allocations (:mod:`awe.dpu.pilot`).
        self.pilot = definition.slurm.mode == "pilot"

    def max_workers(self) -> int | None:
        """Tasks at once in each pilot (per-task mode: Slurm decides)."""
        return self.definition.slurm.cpus_per_node if self.pilot else None

    def call(self, verb: str, args: dict[str, Any]) -> Any:
        """An agent verb; Slurm's own commands get the DPU's command timeout."""
        if verb in slurm_agent.VERBS:
            args = {"timeout": self.definition.command_timeout, **args}
        return super().call(verb, args)

    # ---- submitting ----
    def submit(self, launch: Launch) -> None:
        """Write job.json and the batch scripts and sbatch them in one agent call: one
        round trip to the login node for the whole job, one sbatch per step where the
        step's dependencies fit a job array."""
        if self.pilot:
            script = self._pilot_script(launch, str(launch.job.job_id))
            nodes = self.definition.slurm.nodes
            job = launch.job.to_json()
            self.call(
                "submit_pilots",
                {"dir": launch.job_dir, "job": job, "script": script, "nodes": nodes},
            )
            return
        submissions = plan_submissions(launch.job.to_json()["tasks"])
        scripts = self._scripts(launch, str(launch.job.job_id), submissions)
        sent = [
            {**s.to_json(), "script": text} for s, text in zip(submissions, scripts, strict=True)
        ]
        self.call(
            "submit", {"dir": launch.job_dir, "job": launch.job.to_json(), "submissions": sent}
        )

    def preview(self, launch: Launch) -> dict[int, str]:
        """The batch scripts a job would get, by task number (an array's script for each of
        its tasks), touching nothing (``dpu.run(dry_run=True)``)."""
        if self.pilot:
            script = self._pilot_script(launch, "<job id>")
            return {task.number: script for task in launch.job.tasks}
        submissions = plan_submissions(launch.job.to_json()["tasks"])
        scripts = self._scripts(launch, "<job id>", submissions)
        return {n: text for s, text in zip(submissions, scripts, strict=True) for n in s.tasks}

    def _pilot_script(self, launch: Launch, job_key: str) -> str:
        check_values(self.definition, self.transport.work_dir)
        return render_pilot_script(
            self.definition, job_key, launch.job_dir, launch.environment, launch.python
        )

    def _scripts(self, launch: Launch, job_key: str, submissions: list[Submission]) -> list[str]:
        check_values(self.definition, self.transport.work_dir)
        job = launch.job.to_json()
        return render_scripts(
            self.definition,
            job_key,
            launch.job_dir,
            job,
            launch.environment,
            launch.python,
            submissions,
        )

    # ---- following ----
    def slurm_state(self, work_dir: str, tasks: list[int] | None = None) -> dict[str, Any] | None:
        """What Slurm says of the job's tasks (all when ``tasks`` is None); None when Slurm
        did not answer (slurmctld down, squeue slow, SSH gone)."""
        try:
            return self.call("state", {"dir": work_dir, "tasks": tasks})
        except RemoteError:
            return None

    def runner_alive(self, work_dir: str) -> bool | None:
        """Whether any Slurm job of this AWE job (a task's, or a pilot) may still run."""
        if self.pilot:
            try:
                return self.call("pilots_active", {"dir": work_dir}) > 0
            except RemoteError:
                return None
        facts = self.slurm_state(work_dir)
        if facts is None:
            return None
        return any(state in slurm_agent.ACTIVE for state, _, _ in facts["tasks"].values())

    def poll(self, work_dir: str, offsets: dict[int, int]) -> tuple[dict[str, str], Any]:
        """One squeue (asked first), then the journals: one agent call, one round trip.
        In pilot mode the squeue is of the pilots, which are replaced in the same call
        while tasks remain unclaimed."""
        answer = self.call(
            "pilot_poll" if self.pilot else "poll", {"dir": work_dir, "offsets": offsets}
        )
        return answer["journals"], answer["state"]

    def judge(self, work_dir: str, facts: Any, unfinished: dict[int, str]) -> Verdict:
        if facts is None:
            return Verdict()  # squeue did not answer: no change, ask again next time
        if self.pilot:
            outcomes = {  # ran with no try left (the agent released the others)
                int(n): ("A", "lost: its pilot's Slurm allocation is gone")
                for n in facts["lost"]
                if int(n) in unfinished
            }
            # No pilot runs and none could be started: nothing will run what is left.
            return Verdict(outcomes, gone=facts["active"] == 0 and bool(facts["problem"]))
        wanted = {str(n) for n in unfinished}
        return self._verdict(
            {
                "tasks": {n: f for n, f in facts["tasks"].items() if n in wanted},
                **{
                    key: [n for n in facts.get(key, []) if n in wanted]
                    for key in ("unknown", "dropped", "unsubmitted")
                },
            },
            unfinished,
        )

    def reconcile(self, work_dir: str, unfinished: dict[int, str]) -> Verdict:
        return self._verdict(self.slurm_state(work_dir, sorted(unfinished)), unfinished)

    def _verdict(self, facts: dict[str, Any] | None, unfinished: dict[int, str]) -> Verdict:
        if facts is None:
            return Verdict()  # no answer: no change, ask again next time
        outcomes = {}
        for number, (state, reason, code) in facts["tasks"].items():
            outcome = judge(state, reason, code, unfinished[int(number)])
            if outcome is not None:
                outcomes[int(number)] = outcome
        dropped = set(facts.get("dropped", []))
        for number in facts["unknown"]:
            if number in dropped and unfinished[int(number)] == "QUEUED":
                outcomes[int(number)] = (
                    "S",
                    "CANCELLED in Slurm before it started (scancel of its array element)",
                )
            elif unfinished[int(number)] == "RUNNING":
                outcomes[int(number)] = ("A", "lost: Slurm no longer knows its job")
            else:
                outcomes[int(number)] = ("U", "never started: Slurm no longer knows its job")
        for number in facts["unsubmitted"]:
            outcomes[int(number)] = ("U", "never submitted to Slurm")
        return Verdict(outcomes=outcomes)

    # ---- stopping ----
    def cancel(self, work_dir: str) -> None:
        """scancel every Slurm job of the AWE job, in one command."""
        self.call("cancel", {"dir": work_dir})

    def kill(self, work_dir: str, pids: list[int]) -> None:
        """Nothing to do: the tasks the database ends have ended in Slurm already (reconcile
        reports only jobs Slurm ended; cancel scancels them all), and their process ids
        belong to compute nodes this machine cannot signal."""

    def batch_scripts(self, work_dir: str) -> dict[int, str]:
        """The job's batch scripts by task number, each headed by the Slurm job id it was
        given (an array's id, the same for all its tasks)."""
        found = self.call("scripts", {"dir": work_dir})
        scripts = {}
        for number, text in sorted(found["scripts"].items(), key=lambda item: int(item[0])):
            slurm_id = found["ids"].get(number, "not submitted").split("_")[0]
            first, _, rest = text.partition("\n")
            scripts[int(number)] = f"{first}\n# Slurm job id: {slurm_id}\n{rest}"
        return scripts


class SlurmBackend(Backend):
    """A Slurm DPU: the Slurm scheduler over this machine or SSH."""

    def __init__(self, definition: DPUDefinition, transport: Transport) -> None:
        workers = definition.max_workers or 1  # for the estimate only: Slurm decides
        scheduler = SlurmScheduler(transport, definition)
        super().__init__(definition.name, transport, scheduler, workers, definition.python)


def judge(state: str, reason: str, exit_code: str, was: str) -> tuple[str, str] | None:
    """The task's outcome from Slurm's word on its job, or None while it may still run (or
    when its journal is the one to tell: a job that COMPLETED wrote its own end).

    ``was``: the task's state in the database (QUEUED or RUNNING).
    """
    if reason == "DependencyNeverSatisfied":  # pending for ever, or already removed
        return "S", "a task it depends on did not end N (Slurm: DependencyNeverSatisfied)"
    kind, words = slurm_agent.STATES.get(state, ("ended", f"{state} in Slurm"))
    if kind == "active":
        return None
    if kind == "done":
        return "U", "its Slurm job completed but its journal has no outcome"
    detail = f" ({reason})" if reason and reason not in ("None", state) else ""
    if was == "QUEUED" and state not in ("FAILED", "OUT_OF_MEMORY", "TIMEOUT"):
        return "S", f"{words} before it started{detail}"
    return "A", f"{words}{detail}"
