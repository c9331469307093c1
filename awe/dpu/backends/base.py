"""The interface every DPU backend implements, in the spirit of Parsl's providers:
start a job, read its journals, tell whether its runner lives, stop it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


class Backend(ABC):
    """A place where jobs run. ``work_dir`` is the job's folder on the DPU's side."""

    name: str
    #: Number of tasks run at once (for the process-time estimate).
    workers: int

    @abstractmethod
    def submit(self, job_id: int, job: dict[str, Any], snapshot: Snapshot | None = None) -> str:
        """Put the job (and the code ``snapshot``, if any, where the DPU runs it) in place
        and start it; return the job's work_dir."""

    @abstractmethod
    def read_journals(self, work_dir: str, offsets: dict[int, int]) -> dict[int, bytes]:
        """New journal bytes of the given tasks (task number -> offset) in one go."""

    @abstractmethod
    def runner_alive(self, work_dir: str) -> bool | None:
        """True while the job's runner runs, False once it is gone, None if unknown."""

    def reconcile(self, work_dir: str, unfinished: dict[int, str]) -> Verdict:
        """Judge the tasks the journals leave unfinished (number -> QUEUED/RUNNING).

        The default asks whether the job's runner still lives.
        """
        return Verdict(gone=self.runner_alive(work_dir) is False)

    def preview(self, job: dict[str, Any]) -> dict[int, str]:
        """The batch scripts ``job`` would get, by task number, submitting nothing (a dry
        run). A DPU that runs tasks on its own pool has none."""
        return {}

    def batch_scripts(self, work_dir: str) -> dict[int, str]:
        """The batch scripts of a submitted job, by task number (none on a pool DPU)."""
        return {}

    @abstractmethod
    def cancel(self, work_dir: str) -> None:
        """Ask the runner to stop the job (it kills running tasks, skips queued ones)."""

    def fetch(self, path: str, into: Path) -> Path:
        """A local copy of the product at ``path`` on the DPU; ``into`` is a scratch file
        name it may use. The default: the DPU shares this machine's filesystem."""
        return Path(path)

    @abstractmethod
    def kill(self, work_dir: str, pids: list[int]) -> None:
        """Stop the runner and the given task process groups at once (no cooperation)."""
