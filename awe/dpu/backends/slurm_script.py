"""Batch scripts for a Slurm DPU: one readable script per submission (a step's job array,
or a task submitted alone; :mod:`awe.dpu.backends.slurm_arrays` decides which).

A script says in comments which AWE job and tasks it runs and what they wait for, carries
the DPU's resources as ``#SBATCH`` lines, then the DPU's environment set-up lines, and
finally ``exec``s the task's worker (an array's element finds its task from
``SLURM_ARRAY_TASK_ID``). Dependencies are not in the script: they are Slurm ids known only
at submission, given to ``sbatch`` as ``--dependency=aftercorr:<array>`` or
``afterok:<ids>``, with ``--kill-on-invalid-dep=yes``.

Time limits: the worker's supervisor enforces the task's own limit to the second and
journals it (``TIMEOUT: over its time limit of ... s``); Slurm counts in whole minutes, so
``--time`` is the task's limit rounded up to a minute plus one minute of grace for start-up,
and Slurm's own kill is the backstop for a worker that cannot enforce it. A ``time_limit``
in the DPU's ``slurm`` settings replaces that (e.g. to fit a partition's MaxTime).
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from awe.dpu.backends.slurm_arrays import Submission
from awe.dpu_definitions import DPUDefinition, check_sbatch_value, check_sbatch_values
from awe.errors import AweError

#: Seconds added to a task's own time limit before Slurm's limit: the supervisor goes first.
GRACE_SECONDS = 60
#: Environment set by AWE in every script (numerical libraries use the task's CPUs only).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def slurm_time(seconds: float) -> str:
    """Seconds as Slurm's ``D-HH:MM:SS``, rounded up to a whole minute (Slurm's unit)."""
    if seconds <= 0:
        raise AweError(f"a time limit must be positive, got {seconds!r} s")
    minutes = math.ceil(seconds / 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    return f"{days}-{hours:02d}:{minutes:02d}:00"


def slurm_seconds(text: str) -> float:
    """Slurm's time format (``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH[:MM[:SS]]``) in
    seconds."""
    days, _, clock = text.rpartition("-")
    parts = [int(p) for p in clock.split(":")]
    if days:
        parts += [0] * (3 - len(parts))
        hours, minutes, seconds = parts
    elif len(parts) == 3:
        hours, minutes, seconds = parts
    else:
        hours, (minutes, seconds) = 0, (parts + [0])[:2]
    return float(((int(days or 0) * 24 + hours) * 60 + minutes) * 60 + seconds)


def job_name(job_key: str, task: Mapping[str, Any]) -> str:
    """``awe<job>.<n>.<task name>`` with only characters every shell and squeue shows as is."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", task["name"]).strip("-")
    return f"awe{job_key}.{task['number']}.{name}"


def comment(text: str) -> str:
    """Text safe inside a ``#`` comment line: task names come from data (a chip, an object
    name in a FITS header), and a line break in one would start a command in the script."""
    return re.sub(r"[\x00-\x1f\x7f]+", " ", text)


def check_values(definition: DPUDefinition, work_dir: str | None = None) -> None:
    """Refuse (AweError naming the setting and the character) any value that would not stay
    one argument of one ``#SBATCH`` line: the DPU's Slurm settings and its ``work_dir`` as
    the DPU's machine spells it (``~`` expanded there), on this machine or behind SSH."""
    try:
        check_sbatch_values(f"DPU {definition.name!r}", definition.slurm)
        if work_dir is not None:
            check_sbatch_value(f"DPU {definition.name!r}", "work_dir", work_dir)
    except ValueError as err:
        raise AweError(str(err)) from None


def extra_line(line: str) -> str:
    """One of the DPU's extra lines as an ``#SBATCH`` line (``--gres=gpu:1`` or whole)."""
    try:
        check_sbatch_value("slurm", "extra line", line, spaces=True)
    except ValueError as err:
        raise AweError(f"{err}; give one option per line") from None
    text = line.strip()
    return text if text.startswith("#SBATCH") else f"#SBATCH {text}"


def render_script(
    definition: DPUDefinition,
    job_key: str,
    job_dir: str,
    task: Mapping[str, Any],
    task_names: Mapping[int, str],
    environment: Mapping[str, str],
    python: str,
) -> str:
    """The batch script of one task submitted alone. ``job_dir`` is the job's folder as
    the nodes see it."""
    submission = Submission(str(task["number"]), int(task["step"]), (task["number"],), False)
    return render_submission(
        definition, job_key, job_dir, submission, {task["number"]: task}, task_names,
        environment, python, None,
    )  # fmt: skip


def render_pilot_script(
    definition: DPUDefinition,
    job_key: str,
    job_dir: str,
    environment: Mapping[str, str],
    python: str,
) -> str:
    """The batch script of a job's pilots (pilot mode): each runs ``awe.dpu.pilot``, which
    takes the job's ready tasks until none is left or the walltime nears."""
    check_values(definition)
    settings = definition.slurm
    lines = [
        "#!/bin/bash",
        f"# AWE job {job_key}: {settings.nodes} pilot(s) on DPU {definition.name}; each runs "
        f"up to {settings.cpus_per_node} of the job's tasks at once, each task in its own "
        "process, until the job is done or the walltime nears.",
        f"#SBATCH --job-name=awe{job_key}.pilot",
        f"#SBATCH --output={job_dir}/slurm/pilot.%A_%a.out",
        "#SBATCH --open-mode=append",
        f"#SBATCH --chdir={job_dir}",
        f"#SBATCH --time={settings.walltime}",
        "#SBATCH --nodes=1",
        "#SBATCH --ntasks=1",
        f"#SBATCH --cpus-per-task={settings.cpus_per_node}",
    ]
    lines += _resources(definition)
    lines += _environment(definition, environment, threads=1)
    walltime = slurm_seconds(settings.walltime)
    lines.append(f"exec {shlex.quote(python)} -m awe.dpu.pilot {shlex.quote(job_dir)} {walltime:g}")
    return "\n".join(lines) + "\n"


def _resources(definition: DPUDefinition) -> list[str]:
    """The DPU's ``#SBATCH`` lines of memory, partition, account, qos and extras."""
    settings = definition.slurm
    lines = [
        f"#SBATCH --{option}={value}"
        for option, value in (
            ("mem", settings.memory),
            ("partition", settings.partition),
            ("account", settings.account),
            ("qos", settings.qos),
        )
        if value
    ]
    return lines + [extra_line(line) for line in settings.extra]


def _environment(
    definition: DPUDefinition, environment: Mapping[str, str], threads: int
) -> list[str]:
    """The DPU's set-up lines, then the task processes' environment."""
    lines = []
    if definition.setup:
        lines += ["", "# Environment set-up of this DPU:", *definition.setup]
    lines.append("")
    counts = {name: str(threads) for name in THREAD_VARIABLES}
    for variable, value in {**counts, **environment}.items():
        lines.append(f"export {variable}={shlex.quote(value)}")
    return lines


def render_submission(
    definition: DPUDefinition,
    job_key: str,
    job_dir: str,
    submission: Submission,
    tasks: Mapping[int, Mapping[str, Any]],
    task_names: Mapping[int, str],
    environment: Mapping[str, str],
    python: str,
    corr: Submission | None,
) -> str:
    """The batch script of one submission: a job array whose element i runs
    ``submission.tasks[i]`` (found from ``SLURM_ARRAY_TASK_ID``), or one task. ``corr``:
    the array each element waits for element by element (``aftercorr``)."""
    check_values(definition)
    settings = definition.slurm
    members = [tasks[n] for n in submission.tasks]
    first = members[0]
    tries = max(1 + int(t.get("retries") or 0) for t in members)  # every try in this job
    own = max(float(t["time_limit"]) for t in members)
    limit = settings.time_limit or slurm_time(own * tries + GRACE_SECONDS)
    if submission.array:
        name = (
            f"awe{job_key}.s{submission.step}.{re.sub(r'[^A-Za-z0-9_.-]+', '-', first['sequence'])}"
        )
        what = (
            f"# AWE job {job_key}, step {submission.step} (sequence {first['sequence']}): "
            f"{_names([t['number'] for t in members], task_names)} as "
            f"{_elements(len(members))} of one Slurm job array on DPU {definition.name}."
        )
        output = f"{job_dir}/slurm/{submission.name}.%a.out"
    else:
        name = job_name(job_key, first)
        what = (
            f"# AWE job {job_key}, task {first['number']}: {first['name']} (step "
            f"{first['step']}, sequence {first['sequence']}) on DPU {definition.name}."
        )
        output = f"{job_dir}/slurm/{first['number']}.out"
    if corr is not None:
        waits = (
            f"# Waits for: element by element, the same element of the step "
            f"{corr.step} array ({_names(corr.tasks, task_names)}; sbatch "
            f"--dependency=aftercorr)."
        )
    else:
        after = list(submission.after) if submission.array else list(first["depends_on"])
        kind = "afterany" if submission.tolerant else "afterok"
        waits = (
            f"# Waits for: {_names(after, task_names) or 'nothing'} (sbatch "
            f"--dependency={kind} on their Slurm jobs)."
        )
    lines = [
        "#!/bin/bash",
        comment(what),
        comment(waits),
        f"# Time limit {own:g} s, enforced by the worker; Slurm's --time below is the backstop.",
        f"#SBATCH --job-name={name}",
        f"#SBATCH --output={output}",
        "#SBATCH --open-mode=append",
        f"#SBATCH --chdir={job_dir}",
        f"#SBATCH --time={limit}",
        "#SBATCH --nodes=1",
        "#SBATCH --ntasks=1",
        f"#SBATCH --cpus-per-task={settings.cpus_per_task}",
    ]
    lines += _resources(definition)
    lines += _environment(definition, environment, settings.cpus_per_task)
    worker = f"exec {shlex.quote(python)} -m awe.dpu.worker {shlex.quote(job_dir)}"
    numbers = list(submission.tasks)
    if not submission.array:
        lines.append(f"{worker} {int(numbers[0])}")
    elif numbers == list(range(numbers[0], numbers[0] + len(numbers))):
        lines.append(f"# Element i runs task {int(numbers[0])} + i.")
        lines.append(f'{worker} "$(({int(numbers[0])} + SLURM_ARRAY_TASK_ID))"')
    else:
        lines.append(f"TASKS=({' '.join(str(int(n)) for n in numbers)})  # element i runs TASKS[i]")
        lines.append(f'{worker} "${{TASKS[$SLURM_ARRAY_TASK_ID]}}"')
    return "\n".join(lines) + "\n"


def _elements(count: int) -> str:
    return "its element 0" if count == 1 else f"its elements 0-{count - 1}"


def _names(numbers: Sequence[int], task_names: Mapping[int, str]) -> str:
    """Task names for a comment: all of a few, the first and last of many."""
    names = [task_names[n] for n in numbers]
    if len(names) <= 10:
        return ", ".join(names)
    return f"{', '.join(names[:3])}, ... {names[-1]} ({len(names)} tasks)"


def render_scripts(
    definition: DPUDefinition,
    job_key: str,
    job_dir: str,
    job: Mapping[str, Any],
    environment: Mapping[str, str],
    python: str,
    submissions: Sequence[Submission],
) -> list[str]:
    """The batch script of every submission, in order."""
    tasks = {task["number"]: task for task in job["tasks"]}
    names = {number: task["name"] for number, task in tasks.items()}
    return [
        render_submission(
            definition,
            job_key,
            job_dir,
            submission,
            tasks,
            names,
            environment,
            python,
            submissions[submission.corr] if submission.corr is not None else None,
        )
        for submission in submissions
    ]
