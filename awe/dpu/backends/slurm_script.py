"""Batch scripts for a Slurm DPU: one readable script per task.

A script says in comments which AWE job and task it runs and what it waits for, carries the
DPU's resources as ``#SBATCH`` lines, then the DPU's environment set-up lines, and finally
``exec``s the task's worker. Dependencies are not in the script: they are the Slurm ids of
other tasks, known only at submission, and are given to ``sbatch`` as
``--dependency=afterok:<ids> --kill-on-invalid-dep=yes``.

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
from collections.abc import Mapping
from typing import Any

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
    """The batch script of one task. ``job_dir`` is the job's folder as the nodes see it."""
    check_values(definition)
    settings = definition.slurm
    number = task["number"]
    tries = 1 + int(task.get("retries") or 0)  # the worker runs every try in this job
    limit = settings.time_limit or slurm_time(float(task["time_limit"]) * tries + GRACE_SECONDS)
    waits = ", ".join(task_names[n] for n in task["depends_on"]) or "nothing"
    lines = [
        "#!/bin/bash",
        comment(
            f"# AWE job {job_key}, task {number}: {task['name']} (step {task['step']}, "
            f"sequence {task['sequence']}) on DPU {definition.name}."
        ),
        comment(f"# Waits for: {waits} (sbatch --dependency=afterok on their Slurm jobs)."),
        f"# Time limit {float(task['time_limit']):g} s, enforced by the worker; "
        "Slurm's --time below is the backstop.",
        f"#SBATCH --job-name={job_name(job_key, task)}",
        f"#SBATCH --output={job_dir}/slurm/{number}.out",
        "#SBATCH --open-mode=append",
        f"#SBATCH --chdir={job_dir}",
        f"#SBATCH --time={limit}",
        "#SBATCH --nodes=1",
        "#SBATCH --ntasks=1",
        f"#SBATCH --cpus-per-task={settings.cpus_per_task}",
    ]
    for option, value in (
        ("mem", settings.memory),
        ("partition", settings.partition),
        ("account", settings.account),
        ("qos", settings.qos),
    ):
        if value:
            lines.append(f"#SBATCH --{option}={value}")
    lines += [extra_line(line) for line in settings.extra]
    if definition.setup:
        lines += ["", "# Environment set-up of this DPU:", *definition.setup]
    lines.append("")
    threads = {name: str(settings.cpus_per_task) for name in THREAD_VARIABLES}
    for name, value in {**threads, **environment}.items():
        lines.append(f"export {name}={shlex.quote(value)}")
    lines.append(
        f"exec {shlex.quote(python)} -m awe.dpu.worker {shlex.quote(job_dir)} {int(number)}"
    )
    return "\n".join(lines) + "\n"


def render_scripts(
    definition: DPUDefinition,
    job_key: str,
    job_dir: str,
    job: Mapping[str, Any],
    environment: Mapping[str, str],
    python: str,
) -> dict[int, str]:
    """Every task's batch script, by task number."""
    names = {task["number"]: task["name"] for task in job["tasks"]}
    return {
        task["number"]: render_script(
            definition, job_key, job_dir, task, names, environment, python
        )
        for task in job["tasks"]
    }
