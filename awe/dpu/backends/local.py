"""The local DPU: AWE's pool on this machine, jobs in ``$AWE_HOME/jobs/<job id>/``, code
snapshots unpacked once each into ``$AWE_HOME/code/<snapshot id>/`` and run from there.

The runner is a detached process (its own session, stdin closed), so quitting ``awe`` or
closing the terminal does not stop the job. ``runner.json`` records its pid and host; a
runner counts as alive only while that pid still runs ``awe.dpu.runner`` for this job
(pids get reused).
"""

from __future__ import annotations

import os
from pathlib import Path

from awe.dpu.backends.base import Backend
from awe.dpu.backends.pool import PoolScheduler
from awe.dpu.backends.transport import LocalTransport


class LocalBackend(Backend):
    def __init__(self, home: Path, workers: int | None = None) -> None:
        transport = LocalTransport(str(home), str(home))
        super().__init__("local", transport, PoolScheduler(transport), 1)
        self.workers = workers or os.cpu_count() or 1

    @property
    def workers(self) -> int:
        return self.scheduler.workers

    @workers.setter
    def workers(self, count: int) -> None:
        """Tasks at once: the estimate and the runner's pool (benchmarks set it)."""
        self.scheduler.workers = count
