"""The Slurm side of a Slurm DPU: submit a job's batch scripts, ask Slurm about them, cancel.

Standard library only, like :mod:`awe.dpu.remote.agent` and called the same way: run as
``python3 -c SOURCE VERB`` with the arguments as JSON on stdin on the login node of a Slurm
DPU behind SSH, or imported and called directly for a Slurm DPU on this machine. Each verb
is one invocation for a whole job, so a 62-task job costs one round trip to submit and one
to follow, and Slurm sees one ``squeue`` (plus at most one ``sacct``) per job and poll,
never one per task. Every Slurm command is an argument list; nothing is pasted into a
shell.

``slurm.json`` in the job's folder records the Slurm job id of each task, written as the
tasks are submitted, so a cancel or a status check from any later session finds them.

Verbs: ``submit`` (sbatch every task in order, dependencies as ``afterok``), ``state``
(what Slurm says of some tasks), ``cancel`` (scancel the whole job), ``scripts`` (the
job's batch scripts, for ``dpu.show_batch_script``).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from awe.dpu.remote import commands
from awe.dpu.remote.agent import write_atomically, write_job

SLURM_FILE = "slurm.json"
SCRIPTS_FOLDER = "slurm"
#: Every Slurm job state AWE knows, and what it means for a task: ``active`` (may still
#: run), ``done`` (completed: the journal says how it ended) or ``ended`` (ended by Slurm),
#: with the words for the task's log. The one table of Slurm states: this agent uses it to
#: tell active jobs, the Slurm scheduler (:mod:`awe.dpu.backends.slurm`) to judge ends.
STATES: dict[str, tuple[str, str]] = {
    **{
        state: ("active", state)
        for state in (
            "PENDING",
            "CONFIGURING",
            "RUNNING",
            "COMPLETING",
            "SUSPENDED",
            "REQUEUED",
            "REQUEUE_FED",
            "REQUEUE_HOLD",
            "RESIZING",
            "SIGNALING",
            "STAGE_OUT",
            "STOPPED",
            "RESV_DEL_HOLD",
        )
    },
    "COMPLETED": ("done", "COMPLETED"),
    "TIMEOUT": ("ended", "TIMEOUT: over its Slurm time limit"),
    "OUT_OF_MEMORY": ("ended", "OUT_OF_MEMORY: over its Slurm memory limit"),
    "NODE_FAIL": ("ended", "NODE_FAIL: its node failed"),
    "BOOT_FAIL": ("ended", "BOOT_FAIL: its node failed to boot"),
    "CANCELLED": ("ended", "CANCELLED in Slurm"),
    "DEADLINE": ("ended", "DEADLINE: past its Slurm deadline"),
    "PREEMPTED": ("ended", "PREEMPTED by Slurm"),
    "FAILED": ("ended", "FAILED in Slurm without a journal record"),
    "REVOKED": ("ended", "REVOKED by Slurm"),
}
#: Slurm states in which a job may still run (or is about to).
ACTIVE = frozenset(state for state, (kind, _) in STATES.items() if kind == "active")
#: What slurmstepd writes into the job's output when jobacct_gather kills it over --mem.
MEMORY_KILL_MARK = "exceeded memory limit"


class SlurmCommandError(Exception):
    """A Slurm command failed or did not answer in time."""


def _run(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """A Slurm command through the agents' one command runner, its output as text."""
    try:
        done = commands.run(argv, timeout)
    except commands.CommandFailed as err:
        raise SlurmCommandError(str(err)) from None
    return subprocess.CompletedProcess(
        done.args,
        done.returncode,
        done.stdout.decode(errors="replace"),
        done.stderr.decode(errors="replace"),
    )


def _load_ids(job_dir: str) -> dict[str, str]:
    try:
        return json.loads((Path(job_dir) / SLURM_FILE).read_text())["tasks"]
    except FileNotFoundError:
        return {}


def _save_ids(job_dir: str, ids: dict[str, str]) -> None:
    write_atomically(Path(job_dir) / SLURM_FILE, json.dumps({"tasks": ids}, indent=1))


# ---- submit ----
def submit(args: dict[str, Any]) -> dict[str, str]:
    """Write job.json and each task's batch script, and sbatch them in task order
    (dependencies first), all in one invocation.

    ``args``: ``dir`` (the job's folder), ``job`` (written as job.json), ``tasks`` (list of
    ``{"number", "script", "depends_on"}``), ``timeout``. Returns task number -> Slurm job
    id. If one sbatch fails, the tasks already submitted are cancelled and the error names
    the task and what sbatch said.
    """
    job_dir, timeout = Path(args["dir"]), float(args.get("timeout", 60))
    folder = job_dir / SCRIPTS_FOLDER
    write_job(job_dir, args["job"])
    folder.mkdir(parents=True, exist_ok=True)
    ids: dict[str, str] = {}
    for task in args["tasks"]:
        script = folder / f"{int(task['number'])}.sh"
        write_atomically(script, task["script"])
        argv = ["sbatch", "--parsable"]
        if task["depends_on"]:
            after = ":".join(ids[str(n)] for n in task["depends_on"])
            argv += [f"--dependency=afterok:{after}", "--kill-on-invalid-dep=yes"]
        argv.append(str(script))
        try:
            done = _run(argv, timeout)
            if done.returncode != 0:
                raise SlurmCommandError(done.stderr.strip() or f"exit code {done.returncode}")
        except SlurmCommandError as err:
            if ids:
                _run(["scancel", *ids.values()], timeout)
            _save_ids(str(job_dir), {})
            raise SlurmCommandError(f"sbatch of task {task['number']} failed: {err}") from None
        ids[str(task["number"])] = done.stdout.strip().split(";")[0]
        if len(ids) % 16 == 0:  # a cancel during a long submission finds what went in
            _save_ids(str(job_dir), ids)
    _save_ids(str(job_dir), ids)
    return ids


# ---- state ----
def state(args: dict[str, Any]) -> dict[str, Any]:
    """What Slurm says of the given tasks (``tasks``: numbers, or None for all):
    ``{"tasks": {number: [state, reason, exit code]}, "unknown": [...], ...}``.

    One ``squeue`` for all of them; the ones squeue no longer knows go to one ``sacct``
    (when accounting is on). Tasks neither knows are listed in ``unknown``. A FAILED job
    whose output shows slurmstepd's over-memory kill is reported OUT_OF_MEMORY. Raises
    SlurmCommandError when squeue fails or is slow: the caller then changes nothing.
    """
    job_dir, timeout = args["dir"], float(args.get("timeout", 30))
    ids = _load_ids(job_dir)
    asked = [str(n) for n in args["tasks"]] if args.get("tasks") is not None else list(ids)
    wanted = {ids[n]: n for n in asked if n in ids}
    facts: dict[str, list[str]] = {}
    if wanted:
        done = _run(
            [
                "squeue",
                "--noheader",
                "--states=all",
                f"--jobs={','.join(wanted)}",
                "--format=%i|%T|%r",
            ],
            timeout,
        )
        # squeue fails with "Invalid job id" when it knows none of them: that is an answer.
        if done.returncode != 0 and "Invalid job id" not in done.stderr:
            raise SlurmCommandError(f"squeue failed: {done.stderr.strip()}")
        for line in done.stdout.splitlines():
            parts = line.strip().split("|")
            if len(parts) == 3 and parts[0] in wanted:
                facts[wanted[parts[0]]] = [parts[1], parts[2], ""]
    missing = [slurm_id for slurm_id, number in wanted.items() if number not in facts]
    accounting = "not asked"
    if missing:
        accounting = _from_sacct(missing, wanted, facts, timeout)
    for number, fact in facts.items():
        if fact[0] == "FAILED" and _memory_killed(job_dir, number):
            fact[0], fact[1] = "OUT_OF_MEMORY", "killed by slurmstepd over its --mem"
    unknown = [n for n in wanted.values() if n not in facts]
    return {
        "tasks": facts,
        "unknown": unknown,
        "unsubmitted": [n for n in asked if n not in ids],
        "accounting": accounting,
    }


def _from_sacct(
    missing: list[str], wanted: dict[str, str], facts: dict[str, list[str]], timeout: float
) -> str:
    done = _run(
        ["sacct", "--noheader", "--parsable2", "--allocations", "--format=JobID,State,ExitCode"]
        + [f"--jobs={','.join(missing)}"],
        timeout,
    )
    if done.returncode != 0:
        return done.stderr.strip() or f"sacct exit code {done.returncode}"
    for line in done.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3 and parts[0] in wanted:
            # sacct writes "CANCELLED by 0": the state is the first word.
            words = parts[1].split(" ", 1)
            facts[wanted[parts[0]]] = [words[0], words[1] if len(words) > 1 else "", parts[2]]
    return "ok"


def _memory_killed(job_dir: str, number: str) -> bool:
    output = Path(job_dir) / SCRIPTS_FOLDER / f"{number}.out"
    try:
        with open(output, "rb") as stream:
            stream.seek(max(0, output.stat().st_size - 65536))
            return MEMORY_KILL_MARK in stream.read().decode(errors="replace")
    except FileNotFoundError:
        return False


# ---- cancel, scripts ----
def cancel(args: dict[str, Any]) -> list[str]:
    """scancel every Slurm job of the AWE job, in one command; the ids it was given."""
    ids = list(_load_ids(args["dir"]).values())
    if ids:
        done = _run(["scancel", *ids], float(args.get("timeout", 30)))
        if done.returncode != 0:
            raise SlurmCommandError(f"scancel failed: {done.stderr.strip()}")
    return ids


def scripts(args: dict[str, Any]) -> dict[str, Any]:
    """The job's batch scripts by task number, and the Slurm ids they were given."""
    folder = Path(args["dir"]) / SCRIPTS_FOLDER
    found = {}
    if folder.is_dir():
        for path in folder.glob("*.sh"):
            if path.stem.isdigit():
                found[path.stem] = path.read_text()
    return {"scripts": found, "ids": _load_ids(args["dir"])}


VERBS = {"submit": submit, "state": state, "cancel": cancel, "scripts": scripts}
