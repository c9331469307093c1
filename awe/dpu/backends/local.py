"""The local DPU: jobs run on this machine, in ``$AWE_HOME/jobs/<job id>/``.

The runner is a detached process (its own session, stdin closed), so quitting ``awe`` or
closing the terminal does not stop the job. ``runner.json`` records its pid and host; a
runner counts as alive only while that pid still runs ``awe.dpu.runner`` for this job
(pids get reused).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from awe.dpu.backends.pool import SINGLE_THREADED, PoolBackend
from awe.dpu.remote.agent import VERBS

if TYPE_CHECKING:
    from awe.dpu.codeship import Snapshot


class LocalBackend(PoolBackend):
    name = "local"

    def __init__(self, home: Path, workers: int | None = None) -> None:
        self.home = home
        self.workers = workers or os.cpu_count() or 1

    def check_dir(self) -> str:
        return str(self.home / "jobs")

    def call(self, verb: str, args: dict[str, Any]) -> Any:
        return VERBS[verb](args)

    def prepare(
        self, job_id: int, job: dict[str, Any], snapshot: Snapshot | None
    ) -> tuple[str, dict[str, Any]]:
        # This machine runs this checkout's code already: the snapshot is only recorded.
        work_dir = self.home / "jobs" / str(job_id)
        environment = {**SINGLE_THREADED, "AWE_HOME": str(self.home)}
        how = {"python": sys.executable, "env": environment}
        return str(work_dir), {**how, "job": {**job, "max_workers": self.workers}}
