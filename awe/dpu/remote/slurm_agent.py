"""The Slurm side of a Slurm DPU: submit a job's batch scripts, ask Slurm about them, cancel.

Standard library only, like :mod:`awe.dpu.remote.agent` and called the same way: run as
``python3 -c SOURCE VERB`` with the arguments as JSON on stdin on the login node of a Slurm
DPU behind SSH, or imported and called directly for a Slurm DPU on this machine. Each verb
is one invocation for a whole job, so a 62-task job costs one round trip to submit and one
to follow, and Slurm sees one ``squeue`` (plus at most one ``sacct``) per job and poll,
never one per task. Every Slurm command is an argument list; nothing is pasted into a
shell.

``slurm.json`` in the job's folder records the Slurm id of each task (``123`` for a batch
job of its own, ``123_4`` for element 4 of array 123), its script and its output file,
written as the submissions go in, so a cancel or a status check from any later session
finds them.

Verbs: ``submit`` (one sbatch per step: a job array with ``aftercorr`` or ``afterok``
dependencies, or one batch job per task where an array cannot say them), ``state``
(what Slurm says of some tasks), ``poll`` (that, then the journals, in one call),
``cancel`` (scancel the whole job), ``scripts`` (the
job's batch scripts, for ``dpu.show_batch_script``).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from awe.dpu.remote import commands
from awe.dpu.remote.agent import journals, write_atomically, write_job

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


def _load(job_dir: str) -> dict[str, Any]:
    try:
        return json.loads((Path(job_dir) / SLURM_FILE).read_text())
    except FileNotFoundError:
        return {}


def _load_ids(job_dir: str) -> dict[str, str]:
    """Task number -> its Slurm id: ``123`` for a batch job, ``123_4`` for an element."""
    return _load(job_dir).get("tasks", {})


def _save(job_dir: str, record: dict[str, Any]) -> None:
    write_atomically(Path(job_dir) / SLURM_FILE, json.dumps(record, indent=1))


def base_ids(ids: Iterable[str]) -> list[str]:
    """The Slurm jobs behind task ids (an array's id once for all its elements), in order."""
    return list(dict.fromkeys(slurm_id.split("_")[0] for slurm_id in ids))


# ---- submit ----
def submit(args: dict[str, Any]) -> dict[str, str]:
    """Write job.json and the batch scripts and sbatch them in order (what a submission
    waits for comes first), all in one invocation: one ``sbatch`` per submission, a job
    array (``--array=0-<k-1>``) for a step whose dependencies Slurm can express per
    element, one batch job per task otherwise.

    ``args``: ``dir`` (the job's folder), ``job`` (written as job.json), ``submissions``
    (list of ``{"name", "script", "tasks", "array", "corr", "after"}``, see
    :mod:`awe.dpu.backends.slurm_arrays`), ``timeout``. Returns task number -> Slurm id
    (``<array id>_<element>`` for an array's task). If one sbatch fails, what was already
    submitted is cancelled and the error names the tasks and what sbatch said.
    """
    job_dir, timeout = Path(args["dir"]), float(args.get("timeout", 60))
    folder = job_dir / SCRIPTS_FOLDER
    write_job(job_dir, args["job"])
    folder.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"tasks": {}, "scripts": {}, "outputs": {}}
    ids, arrays = record["tasks"], []  # arrays: (slurm id, its task numbers) per submission
    for submission in args["submissions"]:
        script = folder / f"{submission['name']}.sh"
        write_atomically(script, submission["script"])
        numbers = [int(n) for n in submission["tasks"]]
        argv = ["sbatch", "--parsable"]
        if submission["array"]:
            argv.append(f"--array=0-{len(numbers) - 1}")
        dependency = _dependency(submission, arrays, ids)
        if dependency:
            argv += [f"--dependency={dependency}", "--kill-on-invalid-dep=yes"]
        argv.append(str(script))
        try:
            done = _run(argv, timeout)
            if done.returncode != 0:
                raise SlurmCommandError(done.stderr.strip() or f"exit code {done.returncode}")
        except SlurmCommandError as err:
            if ids:
                _run(["scancel", *base_ids(ids.values())], timeout)
            _save(str(job_dir), {})
            which = (
                f"task {numbers[0]}" if len(numbers) == 1 else f"tasks {numbers[0]}-{numbers[-1]}"
            )
            raise SlurmCommandError(f"sbatch of {which} failed: {err}") from None
        slurm_id = done.stdout.strip().split(";")[0]
        arrays.append((slurm_id, numbers))
        for index, number in enumerate(numbers):
            array = submission["array"]
            ids[str(number)] = f"{slurm_id}_{index}" if array else slurm_id
            record["scripts"][str(number)] = script.name
            record["outputs"][str(number)] = (
                f"{submission['name']}.{index}.out" if array else f"{number}.out"
            )
        _save(str(job_dir), record)  # a cancel during a long submission finds what went in
    return ids


def _dependency(
    submission: dict[str, Any], arrays: list[tuple[str, list[int]]], ids: dict[str, str]
) -> str:
    """``aftercorr:<array>``, or ``afterok:<ids>`` (``afterany`` for a tolerant step), a
    whole array written as its own id."""
    if submission.get("corr") is not None:
        return f"aftercorr:{arrays[submission['corr']][0]}"
    wanted = {int(n) for n in submission["after"]}
    after = []
    for slurm_id, numbers in arrays:
        if len(numbers) > 1 and wanted.issuperset(numbers):
            after.append(slurm_id)
            wanted.difference_update(numbers)
    after += [ids[str(n)] for n in sorted(wanted)]
    kind = "afterany" if submission.get("tolerant") else "afterok"  # see slurm_arrays
    return f"{kind}:{':'.join(after)}" if after else ""


# ---- state ----
def state(args: dict[str, Any]) -> dict[str, Any]:
    """What Slurm says of the given tasks (``tasks``: numbers, or None for all):
    ``{"tasks": {number: [state, reason, exit code]}, "unknown": [...], ...}``.

    One ``squeue`` for all of them; the ones squeue no longer knows go to one ``sacct``
    (when accounting is on). Tasks neither knows are listed in ``unknown``, and in
    ``dropped`` too when squeue still lists other elements of their array. A FAILED job
    whose output shows slurmstepd's over-memory kill is reported OUT_OF_MEMORY. Raises
    SlurmCommandError when squeue fails or is slow: the caller then changes nothing.
    """
    job_dir, timeout = args["dir"], float(args.get("timeout", 30))
    record = _load(job_dir)
    ids = record.get("tasks", {})
    asked = [str(n) for n in args["tasks"]] if args.get("tasks") is not None else list(ids)
    wanted = {ids[n]: n for n in asked if n in ids}
    facts: dict[str, list[str]] = {}
    listed: set[str] = set()  # arrays squeue still lists (some element of them)
    if wanted:
        for slurm_id, slurm_state, reason in _squeue(list(wanted), "%i|%T|%r", timeout):
            listed.add(slurm_id.split("_")[0])
            if slurm_id in wanted:
                facts[wanted[slurm_id]] = [slurm_state, reason, ""]
    missing = [slurm_id for slurm_id, number in wanted.items() if number not in facts]
    accounting = "not asked"
    if missing:
        accounting = _from_sacct(missing, wanted, facts, timeout)
    for number, fact in facts.items():
        output = record.get("outputs", {}).get(number, f"{number}.out")
        if fact[0] == "FAILED" and _memory_killed(job_dir, output):
            fact[0], fact[1] = "OUT_OF_MEMORY", "killed by slurmstepd over its --mem"
    unknown = [n for n in wanted.values() if n not in facts]
    return {
        "tasks": facts,
        "unknown": unknown,
        # Elements squeue no longer lists while it lists their array: a pending element
        # scancelled alone is dropped from its array without a record of its own.
        "dropped": [n for i, n in wanted.items() if n in unknown and i.split("_")[0] in listed],
        "unsubmitted": [n for n in asked if n not in ids],
        "accounting": accounting,
    }


def _squeue(ids: list[str], fields: str, timeout: float) -> list[list[str]]:
    """squeue's lines for the jobs behind ``ids`` (one line per array element, pending ones
    too), split into the ``|``-separated ``fields``. Raises SlurmCommandError when squeue
    fails or is slow."""
    done = _run(
        [
            "squeue",
            "--noheader",
            "--array",
            "--states=all",
            f"--jobs={','.join(base_ids(ids))}",
            f"--format={fields}",
        ],
        timeout,
    )
    # squeue fails with "Invalid job id" when it knows none of them: that is an answer.
    if done.returncode != 0 and "Invalid job id" not in done.stderr:
        raise SlurmCommandError(f"squeue failed: {done.stderr.strip()}")
    width = fields.count("|") + 1
    rows = (line.strip().split("|") for line in done.stdout.splitlines())
    return [row for row in rows if len(row) == width]


def _from_sacct(
    missing: list[str], wanted: dict[str, str], facts: dict[str, list[str]], timeout: float
) -> str:
    done = _run(
        ["sacct", "--noheader", "--parsable2", "--allocations", "--format=JobID,State,ExitCode"]
        + [f"--jobs={','.join(base_ids(missing))}"],
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


def _memory_killed(job_dir: str, name: str) -> bool:
    output = Path(job_dir) / SCRIPTS_FOLDER / name
    try:
        with open(output, "rb") as stream:
            stream.seek(max(0, output.stat().st_size - 65536))
            return MEMORY_KILL_MARK in stream.read().decode(errors="replace")
    except FileNotFoundError:
        return False


def poll(args: dict[str, Any]) -> dict[str, Any]:
    """A poll's one call: what Slurm says of the tasks (one squeue, asked first: a job
    Slurm calls ended wrote its whole journal before the journals are read), then the new
    journal bytes. ``state`` is None when squeue failed or was slow (nothing is judged)."""
    try:
        facts = state({**args, "tasks": list(args["offsets"])})
    except SlurmCommandError:
        facts = None
    return {"state": facts, "journals": journals(args)}


# ---- pilot mode ----
PILOT_FOLDER = "pilot"  # as in awe.dpu.pilot (which this stdlib-only agent cannot import)
PILOT_SCRIPT = "pilot.sh"


def submit_pilots(args: dict[str, Any]) -> list[str]:
    """Pilot mode: write job.json and the pilot script and sbatch ``nodes`` pilots as one
    job array; the job's tasks run inside them (:mod:`awe.dpu.pilot`). Returns the
    pilots' Slurm ids."""
    job_dir, timeout = Path(args["dir"]), float(args.get("timeout", 60))
    write_job(job_dir, args["job"])
    (job_dir / SCRIPTS_FOLDER).mkdir(parents=True, exist_ok=True)
    (job_dir / PILOT_FOLDER / "claims").mkdir(parents=True, exist_ok=True)
    write_atomically(job_dir / SCRIPTS_FOLDER / PILOT_SCRIPT, args["script"])
    numbers = [str(task["number"]) for task in args["job"]["tasks"]]
    record = {
        "mode": "pilot",
        "nodes": int(args["nodes"]),
        "pilots": [],
        "tasks": {},
        "scripts": dict.fromkeys(numbers, PILOT_SCRIPT),
    }
    _add_pilots(str(job_dir), record, int(args["nodes"]), timeout)
    return record["pilots"]


def _add_pilots(job_dir: str, record: dict[str, Any], count: int, timeout: float) -> list[str]:
    script = str(Path(job_dir) / SCRIPTS_FOLDER / PILOT_SCRIPT)
    done = _run(["sbatch", "--parsable", f"--array=0-{count - 1}", script], timeout)
    if done.returncode != 0:
        raise SlurmCommandError(f"sbatch of {count} pilots failed: {done.stderr.strip()}")
    array = done.stdout.strip().split(";")[0]
    added = [f"{array}_{index}" for index in range(count)]
    record["pilots"] += added
    _save(job_dir, record)
    return added


def _pilot_states(record: dict[str, Any], timeout: float) -> dict[str, str]:
    """Slurm's state of every pilot of the job (one squeue); a pilot it forgot is absent."""
    if not record["pilots"]:
        return {}
    return dict(_squeue(record["pilots"], "%i|%T", timeout))


def pilot_poll(args: dict[str, Any]) -> dict[str, Any]:
    """Pilot mode's one call per poll: the pilots' states (one squeue); pilots replaced
    while tasks remain unclaimed and fewer than ``nodes`` pilots are active (allocations
    that ended early, or at their walltime); the unfinished tasks claimed by a pilot that
    is gone (lost with it); then the new journal bytes."""
    job_dir, timeout = args["dir"], float(args.get("timeout", 30))
    record = _load(job_dir)
    claims_dir = Path(job_dir) / PILOT_FOLDER / "claims"
    try:
        states = _pilot_states(record, timeout)
    except SlurmCommandError:
        return {"state": None, "journals": journals(args)}
    active = {pilot for pilot, state in states.items() if state in ACTIVE}
    claims = {}
    for entry in os.scandir(claims_dir):
        if entry.name.isdigit():
            with open(entry.path) as claim:
                claims[entry.name] = claim.read().strip()
    unfinished = [str(n) for n in args["offsets"]]
    gone = [n for n in unfinished if n in claims and claims[n] not in active]
    lost = _release_lost(job_dir, gone, claims_dir)
    unclaimed = [n for n in unfinished if n not in claims or (n in gone and n not in lost)]
    cancelled = (Path(job_dir) / PILOT_FOLDER / "cancelled").exists()
    replaced: list[str] = []
    problem = None
    if unclaimed and len(active) < record["nodes"] and not cancelled:
        try:
            replaced = _add_pilots(job_dir, record, record["nodes"] - len(active), timeout)
        except SlurmCommandError as err:
            problem = str(err)
    facts = {
        "active": len(active) + len(replaced),
        "replaced": replaced,
        "lost": lost,
        "problem": problem,
    }
    return {"state": facts, "journals": journals(args)}


#: Why a task claimed by a pilot killed outright runs again (or, without tries left, ends A).
LOST_WITH_PILOT = "lost: its pilot's Slurm allocation is gone (node failure or SIGKILL)"


def _release_lost(job_dir: str, numbers: list[str], claims_dir: Path) -> list[str]:
    """Tasks claimed by a pilot that is gone without releasing them (killed outright: a
    node failure, SIGKILL) are released as a pilot's SIGTERM releases its own (its claim
    removed, so a pilot takes it again): one that never started at once, one that ran when
    its sequence has tries left (a ``retry`` line in its journal, as :mod:`awe.dpu.pilot`
    writes). Returns those that ran with no try left: they end A."""
    if not numbers:
        return []
    tasks = json.loads((Path(job_dir) / "job.json").read_text())["tasks"]
    tries = {str(t["number"]): 1 + int(t.get("retries", 0)) for t in tasks}
    lost = []
    for number in numbers:
        path = Path(job_dir) / "tasks" / f"{number}.jsonl"
        events = _events(path)
        since = events[max((i for i, e in enumerate(events) if e["event"] == "retry"), default=0) :]
        if any(e["event"] == "state" and e.get("state") == "RUNNING" for e in since):
            attempt = 1 + sum(e["event"] == "retry" for e in events)
            if attempt >= tries[number]:
                lost.append(number)
                continue
            line = {
                "t": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
                "event": "retry",
                "attempt": attempt + 1,
                "tries": tries[number],
                "reason": LOST_WITH_PILOT,
            }
            with open(path, "a") as journal:
                journal.write(json.dumps(line, separators=(",", ":")) + "\n")
        (claims_dir / number).unlink(missing_ok=True)
    return lost


def _events(path: Path) -> list[dict[str, Any]]:
    """A journal's events; a torn or corrupt line is passed over (the client warns of it)."""
    events = []
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return events
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and "event" in event:
            events.append(event)
    return events


def pilots_active(args: dict[str, Any]) -> int:
    """How many of the job's pilots may still run."""
    record = _load(args["dir"])
    states = _pilot_states(record, float(args.get("timeout", 30)))
    return sum(state in ACTIVE for state in states.values())


# ---- cancel, scripts ----
def cancel(args: dict[str, Any]) -> list[str]:
    """scancel every Slurm job of the AWE job (each array as a whole), in one command; the
    ids it was given."""
    record = _load(args["dir"])
    if record.get("mode") == "pilot":  # the pilots stop their tasks as cancelled, not lost
        write_atomically(Path(args["dir"]) / PILOT_FOLDER / "cancelled", "cancelled by AWE")
    ids = base_ids([*record.get("tasks", {}).values(), *record.get("pilots", [])])
    if ids:
        done = _run(["scancel", *ids], float(args.get("timeout", 30)))
        if done.returncode != 0:
            raise SlurmCommandError(f"scancel failed: {done.stderr.strip()}")
    return ids


def scripts(args: dict[str, Any]) -> dict[str, Any]:
    """The job's batch scripts by task number (an array's one script for each of its
    tasks), and the Slurm ids they were given."""
    folder = Path(args["dir"]) / SCRIPTS_FOLDER
    record = _load(args["dir"])
    texts: dict[str, str] = {}
    found = {}
    for number, name in record.get("scripts", {}).items():
        if name not in texts:
            texts[name] = (folder / name).read_text()
        found[number] = texts[name]
    return {"scripts": found, "ids": record.get("tasks", {})}


VERBS = {
    "submit": submit,
    "state": state,
    "poll": poll,
    "submit_pilots": submit_pilots,
    "pilot_poll": pilot_poll,
    "pilots_active": pilots_active,
    "cancel": cancel,
    "scripts": scripts,
}
