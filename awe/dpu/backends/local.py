"""The local DPU: jobs run on this machine, in ``$AWE_HOME/jobs/<job id>/``.

The runner is a detached process (its own session, stdin closed), so quitting ``awe`` or
closing the laptop's terminal does not stop the job. ``runner.json`` records its pid and
host; a runner is known alive only if that pid still runs ``awe.dpu.runner`` for this job
(pids get reused).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from awe.dpu.backends.base import Backend
from awe.dpu.journal import JOB_FILE, RUNNER_FILE, RUNNER_LOG, TASKS_FOLDER, read_new_bytes

#: Thread counts of numerical libraries inside a task: the pool already uses every core.
SINGLE_THREADED = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


class LocalBackend(Backend):
    name = "local"

    def __init__(self, home: Path, workers: int | None = None) -> None:
        self.home = home
        self.workers = workers or os.cpu_count() or 1
        self._children: dict[int, subprocess.Popen] = {}

    def submit(self, job_id: int, job: dict[str, Any]) -> str:
        work_dir = self.home / "jobs" / str(job_id)
        (work_dir / "tasks").mkdir(parents=True, exist_ok=True)
        _write_atomically(work_dir / JOB_FILE, json.dumps({**job, "max_workers": self.workers}))
        environment = {**SINGLE_THREADED, **os.environ, "AWE_HOME": str(self.home)}
        with open(work_dir / RUNNER_LOG, "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "awe.dpu.runner", str(work_dir)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                close_fds=True,
                env=environment,
                cwd=work_dir,
            )
        self._children[process.pid] = process
        runner = {"pid": process.pid, "host": socket.gethostname()}
        _write_atomically(work_dir / RUNNER_FILE, json.dumps(runner))
        return str(work_dir)

    def read_journals(self, work_dir: str, offsets: dict[int, int]) -> dict[int, bytes]:
        # One directory scan tells which journals exist and have grown, so a poll of a
        # 2,000-task job opens only the few files that changed.
        grown = {}
        with os.scandir(Path(work_dir) / TASKS_FOLDER) as entries:
            for entry in entries:
                name, suffix = os.path.splitext(entry.name)
                if suffix != ".jsonl" or not name.isdigit() or int(name) not in offsets:
                    continue
                if entry.stat().st_size > offsets[int(name)]:
                    grown[int(name)] = Path(entry.path)
        chunks = {n: read_new_bytes(path, offsets[n]) for n, path in grown.items()}
        return {n: data for n, data in chunks.items() if data}

    def runner_alive(self, work_dir: str) -> bool | None:
        try:
            runner = json.loads((Path(work_dir) / RUNNER_FILE).read_text())
        except FileNotFoundError:
            return False
        if runner["host"] != socket.gethostname():
            return None  # another machine's local DPU: we cannot look
        child = self._children.get(runner["pid"])
        if child is not None and child.poll() is not None:  # ours, and it ended: reap it
            return False
        return _runs_runner(runner["pid"], work_dir)

    def cancel(self, work_dir: str) -> None:
        pid = self._runner_pid(work_dir)
        if pid is not None and _runs_runner(pid, work_dir):
            os.kill(pid, signal.SIGTERM)

    def kill(self, work_dir: str, pids: list[int]) -> None:
        runner = self._runner_pid(work_dir)
        if runner is not None and _runs_runner(runner, work_dir):
            os.kill(runner, signal.SIGKILL)
        for pid in pids:
            if _runs_runner(pid, work_dir):  # a task child is a fork of the runner
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)

    def _runner_pid(self, work_dir: str) -> int | None:
        try:
            return json.loads((Path(work_dir) / RUNNER_FILE).read_text())["pid"]
        except FileNotFoundError:
            return None


def _runs_runner(pid: int, work_dir: str) -> bool:
    """Whether ``pid`` is alive and is this job's runner (or one of its task children)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    if "\nState:\tZ" in status:  # a zombie has finished
        return False
    return b"awe.dpu.runner" in cmdline and work_dir.encode() in cmdline


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)
