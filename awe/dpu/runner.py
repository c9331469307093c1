"""The job runner: runs one job's task graph with a pool of worker processes.

Started detached (``python -m awe.dpu.runner JOB_DIR``, its own session), so the job
outlives the ``awe`` session that submitted it. It reads ``job.json``, imports the
sequences once, then forks one child per task: a crash, ``os._exit`` or segfault costs that
task alone, and forking a warm process costs about a millisecond instead of a Python
start-up. Each child is the leader of its own process group, so a time limit or a cancel
kills the task together with anything it started.

The runner is the only writer of the task journals: it timestamps the children's stdout and
stderr (logging goes to stderr) line by line, and relays structured events (products, the
result) the child sends over a separate pipe. A task's outcome:

- ``N``: the function returned; ``E``: it raised (traceback in the log);
- ``S``: it raised ``NothingToDo``, a task it depends on did not end ``N``, or the job was
  cancelled before it started;
- ``A``: it died without reporting (signal, ``os._exit``), went over its time limit, or
  was cancelled while running.

SIGTERM cancels the job: running tasks are killed (``A``), queued ones skipped (``S``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import signal
import socket
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from awe.dpu.journal import JOB_FILE, JournalWriter, journal_path
from awe.sequence import NothingToDo, Product, TaskContext, Unit

POLL_SECONDS = 0.05
SUCCESS, FAILURE = 0, 1


@dataclass
class Running:
    """A task whose child process is alive (or whose pipes are still open)."""

    task: dict[str, Any]
    pid: int
    journal: JournalWriter
    deadline: float
    pipes: dict[int, bytes] = field(default_factory=dict)  # fd -> unfinished line
    control_fd: int = -1
    result: dict[str, Any] | None = None
    status: int | None = None
    abort_reason: str | None = None


class Runner:
    def __init__(self, job_dir: Path) -> None:
        self.job_dir = job_dir
        self.job = json.loads((job_dir / JOB_FILE).read_text())
        self.tasks: dict[int, dict[str, Any]] = {t["number"]: t for t in self.job["tasks"]}
        self.workers = max(1, int(self.job.get("max_workers") or os.cpu_count() or 1))
        self.state: dict[int, str] = dict.fromkeys(self.tasks, "QUEUED")
        self.products: dict[int, list[dict[str, Any]]] = {n: [] for n in self.tasks}
        self.dependents: dict[int, list[int]] = {n: [] for n in self.tasks}
        for number, task in self.tasks.items():
            for dependency in task["depends_on"]:
                self.dependents[dependency].append(number)
        self.waiting = {n: len(t["depends_on"]) for n, t in self.tasks.items()}
        self.ready = [n for n, count in self.waiting.items() if count == 0]
        self.running: dict[int, Running] = {}  # by pid
        self.selector = selectors.DefaultSelector()
        self.cancelled = False
        self.host = socket.gethostname()

    # ---- main loop ----
    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._on_sigterm)
        from awe.dpu.registry import Registry

        self.registry = Registry(home=Path(self.job["home"]))
        self.specs: dict[str, Any] = {}
        while self.ready or self.running:
            if self.cancelled:
                self._cancel_all()
                break
            while self.ready and len(self.running) < self.workers:
                self._start(self.ready.pop(0))
            self._pump(POLL_SECONDS if self.running else 0)
            self._reap()
            self._enforce_time_limits()

    def _on_sigterm(self, _signum: int, _frame: Any) -> None:
        self.cancelled = True

    # ---- starting a task ----
    def _start(self, number: int) -> None:
        task = self.tasks[number]
        journal = JournalWriter(journal_path(self.job_dir, number))
        try:
            spec = self.specs.get(task["sequence"]) or self.registry.get(task["sequence"])
            self.specs[task["sequence"]] = spec
        except Exception as err:  # noqa: BLE001 - the sequence vanished since submission
            journal.write("log", level="ERROR", msg=str(err))
            self._finish(number, journal, "E", f"sequence not found: {err}")
            return
        upstream = [p for d in task["depends_on"] for p in self.products[d]]
        out_read, out_write = os.pipe()
        control_read, control_write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(out_read)
            os.close(control_read)
            _run_child(self.job, task, spec, upstream, self.job_dir, out_write, control_write)
        os.close(out_write)
        os.close(control_write)
        journal.write("state", state="RUNNING", pid=pid, host=self.host)
        self.state[number] = "RUNNING"
        running = Running(task, pid, journal, time.monotonic() + float(task["time_limit"]))
        running.pipes = {out_read: b"", control_read: b""}
        running.control_fd = control_read
        for fd in running.pipes:
            os.set_blocking(fd, False)
            self.selector.register(fd, selectors.EVENT_READ, running)
        self.running[pid] = running

    # ---- reading children's output --------------------------------------------------------------
    def _pump(self, timeout: float) -> None:
        for key, _ in self.selector.select(timeout):
            self._read(key.data, key.fd)

    def _read(self, running: Running, fd: int) -> bool:
        """Read what is there; False when nothing was (the pipe is empty or closed)."""
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return False
        if not chunk:
            self._close_pipe(running, fd)
            return False
        lines = (running.pipes[fd] + chunk).split(b"\n")
        running.pipes[fd] = lines.pop()
        for line in lines:
            self._line(running, fd, line)
        return True

    def _close_pipe(self, running: Running, fd: int) -> None:
        rest = running.pipes.pop(fd)
        if rest:
            self._line(running, fd, rest)
        self.selector.unregister(fd)
        os.close(fd)

    def _line(self, running: Running, fd: int, line: bytes) -> None:
        text = line.decode("utf-8", errors="replace")
        if fd != running.control_fd:
            running.journal.write("log", msg=text)
            return
        message = json.loads(text)
        if message["event"] == "product":
            self.products[running.task["number"]].append(message["product"])
            running.journal.write("product", **message["product"])
        elif message["event"] == "result":
            running.result = message

    # ---- ending tasks ----
    def _reap(self) -> None:
        while self.running:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            running = self.running.get(pid)
            if running is None:
                continue
            running.status = status
            self._end(running)

    def _end(self, running: Running) -> None:
        _kill_group(running.pid)  # anything the task left behind goes with it
        for fd in list(running.pipes):  # drain what the child wrote before it ended
            while self._read(running, fd):
                pass
            if fd in running.pipes:  # still open: held by a process that escaped the group
                self._close_pipe(running, fd)
        del self.running[running.pid]
        state, reason = _outcome(running)
        self._finish(running.task["number"], running.journal, state, reason)

    def _finish(self, number: int, journal: JournalWriter, state: str, reason: str | None) -> None:
        journal.write("state", state=state, reason=reason)
        journal.close()
        self.state[number] = state
        for dependent in self.dependents[number]:
            if state != "N":
                self._skip(dependent, f"{self.tasks[number]['name']} ended {state}")
                continue
            self.waiting[dependent] -= 1
            if self.waiting[dependent] == 0 and self.state[dependent] == "QUEUED":
                self.ready.append(dependent)

    def _skip(self, number: int, reason: str) -> None:
        if self.state[number] != "QUEUED":
            return
        if number in self.ready:
            self.ready.remove(number)
        self._finish(number, JournalWriter(journal_path(self.job_dir, number)), "S", reason)

    def _enforce_time_limits(self) -> None:
        now = time.monotonic()
        for running in self.running.values():
            if running.abort_reason is None and now > running.deadline:
                limit = running.task["time_limit"]
                running.abort_reason = f"TIMEOUT: over its time limit of {limit:g} s"
                _kill_group(running.pid)

    def _cancel_all(self) -> None:
        for number in sorted(n for n, s in self.state.items() if s == "QUEUED"):
            self._skip(number, "cancelled before it started")
        for running in list(self.running.values()):
            running.abort_reason = "CANCELLED while running"
            _kill_group(running.pid)
        while self.running:
            self._pump(POLL_SECONDS)
            self._reap()


def _outcome(running: Running) -> tuple[str, str | None]:
    if running.abort_reason:
        return "A", running.abort_reason
    if running.result is not None:
        return running.result["state"], running.result.get("reason")
    status = running.status or 0
    if os.WIFSIGNALED(status):
        name = signal.Signals(os.WTERMSIG(status)).name
        return "A", f"killed by signal {name}"
    return "A", f"exited with code {os.WEXITSTATUS(status)} without reporting a result"


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


# ---- the child ----------------------------------------------------------------------------------
class _LevelPrefix(logging.Formatter):
    """Log lines as the task's journal shows them: INFO bare, other levels named."""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        return message if record.levelno == logging.INFO else f"{record.levelname}: {message}"


def _run_child(
    job: dict[str, Any],
    task: dict[str, Any],
    spec: Any,
    upstream: list[dict[str, Any]],
    job_dir: Path,
    out_fd: int,
    control_fd: int,
) -> None:
    """Run one task in the forked child and leave with os._exit (never return)."""
    code = FAILURE
    try:
        os.setpgid(0, 0)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        os.close(out_fd)
        sys.stdout = open(1, "w", buffering=1, closefd=False, errors="replace")  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, closefd=False, errors="replace")  # noqa: SIM115
        control = open(control_fd, "w", buffering=1)  # noqa: SIM115
        logger = _task_logger(task["name"])
        work_dir = job_dir / "tasks" / str(task["number"])
        work_dir.mkdir(parents=True, exist_ok=True)
        os.chdir(work_dir)

        def add_product(path: str | os.PathLike[str], kind: str, **metadata: Any) -> Product:
            product = Product(str(Path(path).resolve()), kind, _sha256(Path(path)), metadata)
            record = {
                "path": product.path,
                "kind": kind,
                "sha256": product.sha256,
                "metadata": metadata,
            }
            control.write(json.dumps({"event": "product", "product": record}) + "\n")
            return product

        context = TaskContext(
            job_id=job["job_id"],
            number=task["number"],
            name=task["name"],
            unit=Unit(task["key"], tuple(task["inputs"])),
            options=dict(task["options"]),
            parameters={**spec.parameters, **task["parameters"]},
            work_dir=work_dir,
            upstream=[Product(p["path"], p["kind"], p["sha256"], p["metadata"]) for p in upstream],
            log=logger,
            add_product=add_product,
        )
        try:
            spec.function(context)
            result = {"event": "result", "state": "N"}
            code = SUCCESS
        except NothingToDo as err:
            logger.info("Nothing to do: %s", err)
            result = {"event": "result", "state": "S", "reason": f"nothing to do: {err}"}
            code = SUCCESS
        except BaseException as err:  # noqa: BLE001 - any failure of user code is an E
            traceback.print_exc()
            result = {"event": "result", "state": "E", "reason": f"{type(err).__name__}: {err}"}
        sys.stdout.flush()
        sys.stderr.flush()
        control.write(json.dumps(result) + "\n")
        control.flush()
    finally:
        os._exit(code)


def _task_logger(name: str) -> logging.Logger:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LevelPrefix("%(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    return logging.getLogger(f"awe.task.{name}")


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m awe.dpu.runner JOB_DIR", file=sys.stderr)
        return 2
    Runner(Path(argv[0])).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
