"""Supervising one task: fork it, journal what it says, judge how it ended.

The task runs in a forked child that leads its own process group, so a crash,
``os._exit`` or segfault costs that task alone, and a time limit or a cancel kills the
task together with anything it started. The supervisor is the only writer of the task's
journal: it timestamps the child's stdout and stderr (logging goes to stderr) line by line
and relays the structured events (products, the result) the child sends over a second
pipe. Outcome:

- ``N``: the function returned; ``E``: it raised (traceback in the log);
- ``S``: it raised ``NothingToDo``;
- ``A``: it died without reporting (signal, ``os._exit``), went over its time limit, or
  was cancelled while running.

A task of a sequence that declares ``retries=n`` and died without reporting is run again,
up to n more times; each new try is journalled (a ``retry`` event) before it starts, and
only the last try's outcome and products count.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from awe.data.store import sha256_file
from awe.dpu.journal import JournalWriter, journal_path, parse_new_bytes, read_new_bytes
from awe.dpu.lines import split_lines
from awe.messages import Job, ProductRecord, Task
from awe.sequence import NothingToDo, Product, SequenceSpec, TaskContext, Unit

HOST = socket.gethostname()


def supervise(
    job: Job,
    task: Task,
    spec: SequenceSpec,
    upstream: list[ProductRecord],
    job_dir: Path,
    should_abort: Callable[[], str | None] = lambda: None,
    watch_fd: int | None = None,
    close_in_child: tuple[int, ...] = (),
    explain_signal: Callable[[int], str | None] = lambda _signum: None,
) -> dict[str, Any]:
    """Run ``task`` in a child process; return ``{"state", "reason", "products"}`` (the
    products as JSON :class:`ProductRecord` s).

    ``watch_fd`` (readable when the caller may want to stop the task) wakes the wait early;
    ``should_abort()`` then returns the reason to kill the task (``None``: go on).
    ``close_in_child`` are descriptors the child must not keep (the caller's own pipes), so
    their readers see them close when the caller dies. ``explain_signal(signum)`` may say
    who sent the signal that killed the task (a batch system's memory limit, say).
    """
    path = journal_path(job_dir, task.number)
    tries = 1 + task.retries
    # Tries already spent: a pilot lost under this task released it for this one to run.
    # Only a task with retries can have any, so no other task reads its journal first.
    events = parse_new_bytes(read_new_bytes(path, 0))[0] if task.retries else []
    spent = sum(e["event"] == "retry" for e in events)
    journal = JournalWriter(path)
    try:
        for attempt in range(min(1 + spent, tries), tries + 1):
            supervision = _Supervision(journal, should_abort, watch_fd, explain_signal)
            result = supervision.run(
                lambda out_fd, control_fd: _run_child(
                    job, task, spec, upstream, job_dir, out_fd, control_fd, close_in_child
                ),
                float(task.time_limit or 0),
            )
            # Only a process that died on its own is run again: a time limit or a cancel
            # (an abort reason) would end the same way.
            if result["state"] != "A" or supervision.abort_reason or attempt == tries:
                break
            journal.write("retry", attempt=attempt + 1, tries=tries, reason=result["reason"])
        journal.write("state", state=result["state"], reason=result["reason"])
        return result
    finally:
        journal.close()


class _Supervision:
    def __init__(
        self,
        journal: JournalWriter,
        should_abort: Callable[[], str | None],
        watch_fd: int | None,
        explain_signal: Callable[[int], str | None] = lambda _signum: None,
    ) -> None:
        self.journal = journal
        self.explain_signal = explain_signal
        self.should_abort = should_abort
        self.watch_fd = watch_fd
        self.products: list[dict[str, Any]] = []
        self.result: dict[str, Any] | None = None
        self.abort_reason: str | None = None

    def run(self, child: Callable[[int, int], None], time_limit: float) -> dict[str, Any]:
        out_read, out_write = os.pipe()
        control_read, control_write = os.pipe()
        wakeup_read, wakeup_write = os.pipe()
        for fd in (wakeup_read, wakeup_write):
            os.set_blocking(fd, False)
        previous_wakeup = signal.set_wakeup_fd(wakeup_write)
        previous_handler = signal.signal(signal.SIGCHLD, lambda _signum, _frame: None)
        pid = os.fork()
        if pid == 0:  # never returns
            for fd in (out_read, control_read, wakeup_read, wakeup_write):
                os.close(fd)
            child(out_write, control_write)
        os.close(out_write)
        os.close(control_write)
        self.journal.write("state", state="RUNNING", pid=pid, host=HOST)
        selector = selectors.DefaultSelector()
        pipes = {out_read: b"", control_read: b""}
        for fd in pipes:
            selector.register(fd, selectors.EVENT_READ)
        selector.register(wakeup_read, selectors.EVENT_READ)
        if self.watch_fd is not None:
            selector.register(self.watch_fd, selectors.EVENT_READ)
        deadline = time.monotonic() + time_limit
        status = None
        try:
            while status is None:
                timeout = max(0.0, deadline - time.monotonic()) if not self.abort_reason else 0.05
                watched = False
                for key, _ in selector.select(timeout):
                    if key.fd in pipes:
                        self._read(key.fd, pipes, control_read, selector)
                    elif key.fd == wakeup_read:
                        _drain(wakeup_read)
                    else:
                        watched = True
                if self.abort_reason is None:
                    if time.monotonic() >= deadline:
                        self.abort_reason = f"TIMEOUT: over its time limit of {time_limit:g} s"
                    elif watched:
                        self.abort_reason = self.should_abort()
                    if self.abort_reason:
                        _kill_group(pid)
                        if self.watch_fd is not None:
                            selector.unregister(self.watch_fd)
                finished, status = os.waitpid(pid, os.WNOHANG)
                if finished == 0:
                    status = None
            _kill_group(pid)  # anything the task left behind goes with it
            for fd in list(pipes):  # what the child wrote before it ended
                os.set_blocking(fd, False)
                while fd in pipes and self._read(fd, pipes, control_read, selector):
                    pass
                if fd in pipes:  # held open by a process that escaped the group
                    self._close(fd, pipes, control_read, selector)
        finally:
            signal.set_wakeup_fd(previous_wakeup)
            signal.signal(signal.SIGCHLD, previous_handler)
            for fd in (wakeup_read, wakeup_write):
                os.close(fd)
            selector.close()
        state, reason = self._outcome(status)
        return {"state": state, "reason": reason, "products": self.products}

    def _read(self, fd: int, pipes: dict[int, bytes], control_fd: int, selector: Any) -> bool:
        """Read what is there; False when nothing was (the pipe is empty or closed)."""
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return False
        if not chunk:
            self._close(fd, pipes, control_fd, selector)
            return False
        lines, pipes[fd] = split_lines(pipes[fd], chunk)
        for line in lines:
            self._line(fd == control_fd, line)
        return True

    def _close(self, fd: int, pipes: dict[int, bytes], control_fd: int, selector: Any) -> None:
        rest = pipes.pop(fd)
        if rest:
            self._line(fd == control_fd, rest)
        selector.unregister(fd)
        os.close(fd)

    def _line(self, is_control: bool, line: bytes) -> None:
        text = line.decode("utf-8", errors="replace")
        if not is_control:
            self.journal.write("log", msg=text)
            return
        message = json.loads(text)
        if message["event"] == "product":
            self.products.append(message["product"])
            self.journal.write("product", **message["product"])
        elif message["event"] == "result":
            self.result = message

    def _outcome(self, status: int) -> tuple[str, str | None]:
        if self.abort_reason:
            return "A", self.abort_reason
        if self.result is not None:
            return self.result["state"], self.result.get("reason")
        if os.WIFSIGNALED(status):
            signum = os.WTERMSIG(status)
            return "A", self.explain_signal(signum) or (
                f"killed by signal {signal.Signals(signum).name}"
            )
        return "A", f"exited with code {os.WEXITSTATUS(status)} without reporting a result"


def _drain(fd: int) -> None:
    with contextlib.suppress(BlockingIOError):
        while os.read(fd, 4096):
            pass


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


# ---- the child ----
class _LevelPrefix(logging.Formatter):
    """Log lines as the task's journal shows them: INFO bare, other levels named."""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        return message if record.levelno == logging.INFO else f"{record.levelname}: {message}"


def _run_child(
    job: Job,
    task: Task,
    spec: SequenceSpec,
    upstream: list[ProductRecord],
    job_dir: Path,
    out_fd: int,
    control_fd: int,
    close_fds: tuple[int, ...],
) -> None:
    """Run one task in the forked child and leave with os._exit (never return)."""
    code = 1
    try:
        os.setpgid(0, 0)
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGTERM, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)
        for fd in close_fds:
            os.close(fd)
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        os.close(out_fd)
        sys.stdout = open(1, "w", buffering=1, closefd=False, errors="replace")  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, closefd=False, errors="replace")  # noqa: SIM115
        control = open(control_fd, "w", buffering=1)  # noqa: SIM115
        logger = _task_logger(task.name)
        work_dir = job_dir / "tasks" / str(task.number)
        work_dir.mkdir(parents=True, exist_ok=True)
        os.chdir(work_dir)

        def add_product(path: str | os.PathLike[str], kind: str, **metadata: Any) -> Product:
            product = Product(str(Path(path).resolve()), kind, sha256_file(path), metadata)
            record = ProductRecord(product.path, kind, product.sha256, metadata).to_json()
            control.write(json.dumps({"event": "product", "product": record}) + "\n")
            return product

        context = TaskContext(
            job_id=job.job_id,
            number=task.number,
            name=task.name,
            unit=Unit(task.key, tuple(task.inputs)),
            options=dict(task.options),
            parameters={**spec.parameters, **task.parameters},
            work_dir=work_dir,
            upstream=[Product(p.path, p.kind, p.sha256, p.metadata) for p in upstream],
            log=logger,
            add_product=add_product,
        )
        try:
            spec.function(context)
            result = {"event": "result", "state": "N"}
            code = 0
        except NothingToDo as err:
            logger.info("Nothing to do: %s", err)
            result = {"event": "result", "state": "S", "reason": f"nothing to do: {err}"}
            code = 0
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
