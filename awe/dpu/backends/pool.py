"""AWE's own scheduler: a detached runner (``awe.dpu.runner``) with a pool of worker
processes on the DPU's machine, over any transport. The runner journals every task; the
only fact the pool adds is whether the runner still lives (its state table: alive, the
journals tell; gone, every unfinished task is lost)."""

from __future__ import annotations

from typing import Any

from awe.dpu.backends.base import Launch, Scheduler, Verdict
from awe.dpu.backends.transport import Transport
from awe.dpu.remote.shell import RemoteError

#: Thread counts of numerical libraries inside a task: the pool already uses every core.
SINGLE_THREADED = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


class PoolScheduler(Scheduler):
    def __init__(self, transport: Transport, max_workers: int | None = None) -> None:
        super().__init__(transport)
        #: Tasks at once (None: one per core of the DPU's machine).
        self.workers = max_workers

    def environment(self) -> dict[str, str]:
        return dict(SINGLE_THREADED)

    def max_workers(self) -> int | None:
        return self.workers

    def submit(self, launch: Launch) -> None:
        """Write job.json and start the runner, in one agent call."""
        self.call(
            "start",
            {
                "dir": launch.job_dir,
                "python": launch.python,
                "env": launch.environment,
                "job": launch.job.to_json(),
            },
        )

    def poll(self, work_dir: str, offsets: dict[int, int]) -> tuple[dict[str, str], Any]:
        """Whether the runner lives, then the journals: one agent call."""
        answer = self.call("poll", {"dir": work_dir, "offsets": offsets})
        return answer["journals"], answer["alive"]

    def judge(self, work_dir: str, facts: Any, unfinished: dict[int, str]) -> Verdict:
        return Verdict(gone=facts is False)

    def runner_alive(self, work_dir: str) -> bool | None:
        try:
            return bool(self.call("alive", {"dir": work_dir}))
        except RemoteError:
            return None  # cannot look: neither alive nor gone

    def cancel(self, work_dir: str) -> None:
        self.call("cancel", {"dir": work_dir})

    def kill(self, work_dir: str, pids: list[int]) -> None:
        self.call("kill", {"dir": work_dir, "pids": pids})
