"""Backends whose jobs run on a detached runner with a pool of workers (``awe.dpu.runner``),
on this machine or on an SSH host. Both speak to the machine through the agent's verbs
(:mod:`awe.dpu.remote.agent`): called directly here, run over SSH there. Only how a call
travels and how a job's files get to the machine differ.
"""

from __future__ import annotations

import base64
from abc import abstractmethod
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from awe.dpu.codeship import Snapshot

from awe.dpu.backends.base import Backend
from awe.dpu.remote.shell import RemoteError

#: Thread counts of numerical libraries inside a task: the pool already uses every core.
SINGLE_THREADED = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


class PoolBackend(Backend):
    @abstractmethod
    def call(self, verb: str, args: dict[str, Any]) -> Any:
        """Run agent verb ``verb`` on the DPU's machine; its answer, or RemoteError."""

    @abstractmethod
    def prepare(
        self, job_id: int, job: dict[str, Any], snapshot: Snapshot | None
    ) -> tuple[str, dict[str, Any]]:
        """Put the job's files in place; return its work_dir and the rest of the agent's
        ``start`` arguments (``python``, ``env``, and ``job`` to write job.json there)."""

    def submit(self, job_id: int, job: dict[str, Any], snapshot: Snapshot | None = None) -> str:
        work_dir, how = self.prepare(job_id, job, snapshot)
        self.call("start", {"dir": work_dir, **how})
        return work_dir

    def read_journals(self, work_dir: str, offsets: dict[int, int]) -> dict[int, bytes]:
        found = self.call("journals", {"dir": work_dir, "offsets": offsets})
        return {int(n): base64.b64decode(data) for n, data in found.items()}

    def runner_alive(self, work_dir: str) -> bool | None:
        try:
            return bool(self.call("alive", {"dir": work_dir}))
        except RemoteError:
            return None  # cannot look: neither alive nor gone

    def cancel(self, work_dir: str) -> None:
        self.call("cancel", {"dir": work_dir})

    def facts(self, modules: list[str], commands: list[str]) -> dict[str, Any]:
        """What the DPU's machine offers: Python, importable modules, work dir, commands."""
        return self.call(
            "check", {"modules": modules, "commands": commands, "work_dir": self.check_dir()}
        )

    def check_dir(self) -> str:
        """The folder whose writability ``facts`` checks."""
        return "~/.awe-dpu"

    def kill(self, work_dir: str, pids: list[int]) -> None:
        self.call("kill", {"dir": work_dir, "pids": pids})
