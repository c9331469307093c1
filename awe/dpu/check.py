"""Checking that a DPU can run jobs: its Python, the packages sequences need, a writable
work dir, and the scheduler's commands. Facts and problems as data; each problem says what
to do about it. The Processor prints them (``dpu.check_dpu()``, ``awe dpu check``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from awe.dpu.remote.shell import NoAnswer

if TYPE_CHECKING:
    from awe.dpu.backends.base import Backend
    from awe.dpu_definitions import DPUDefinition

#: Packages a DPU's Python needs for AWE's own sequences.
CHECKED_MODULES = ("numpy", "astropy")
#: Commands a Slurm DPU needs on its PATH.
SLURM_COMMANDS = ("sbatch", "squeue", "scancel", "sacct")


@dataclass(frozen=True)
class DPUCheck:
    """What a DPU check found: ``facts`` (Python version, executable, cores, ...; empty when
    the DPU's Python did not answer) and ``problems``, each with its fix."""

    name: str
    facts: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "problems": self.problems, "facts": self.facts}

    def lines(self) -> list[str]:
        """The findings as the Processor prints them: facts, each problem, or ready."""
        facts = self.facts
        lines = (
            [
                f"DPU {self.name}: Python {facts['python']} ({facts['executable']}), "
                f"{facts['cores']} cores"
            ]
            if facts
            else []
        )
        lines += [f"PROBLEM: {problem}" for problem in self.problems]
        return lines if self.problems else [*lines, f"DPU {self.name} is ready"]


def check_dpu(name: str, backend: Backend, definition: DPUDefinition | None) -> DPUCheck:
    """Ask DPU ``name`` (``definition`` None: the built-in local DPU) for its facts."""
    commands = list(SLURM_COMMANDS) if definition and definition.scheduler == "slurm" else []
    problems: list[str] = []
    try:
        facts = backend.facts(list(CHECKED_MODULES), commands)
    except NoAnswer as err:
        python = definition.python if definition else "python"
        return DPUCheck(
            name,
            problems=[
                f"cannot run {python!r} on DPU {name}: {err}. Fix: set 'python' "
                f"of DPU {name!r} to a Python 3.10+ that exists there."
            ],
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
    return DPUCheck(name, facts, problems)
