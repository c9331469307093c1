"""The job runner: runs one job's task graph on a pool of worker processes.

Started detached (``python -m awe.dpu.runner JOB_DIR``, its own session), so the job
outlives the ``awe`` session that submitted it. It reads ``job.json`` and imports the
sequences once (and the modules they ``preload``), then forks its workers ("slots", one
per core by default). The runner only
schedules: it hands a ready task to an idle slot and hears back its outcome. Each slot
forks one child per task (:mod:`awe.dpu.supervise`) and journals it, so the forking, the
supervision and the journal writing run on every core at once instead of queueing in one
process; forking a warm process costs a millisecond or two instead of a Python start-up.

A task whose dependency did not end ``N`` is skipped (``S``) without starting; a tolerant
one (an exposure step after its CCDs) only when all of them failed, and it receives the
products of those that ended ``N``. SIGTERM
cancels the job: running tasks are killed (``A``), queued ones skipped (``S``). A slot that
dies takes only its task with it (``A``) and is replaced; if the runner dies, its slots
kill their tasks and leave, and the next sync ends the job's unfinished tasks.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import selectors
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from awe.dpu.journal import JOB_FILE, reserve_space, write_outcome
from awe.dpu.lines import split_lines
from awe.dpu.supervise import supervise
from awe.messages import FormatError, Job, ProductRecord, Task


@dataclass
class Slot:
    """A worker process of the runner, and the pipes to talk to it."""

    pid: int
    commands: int  # runner -> slot
    events: int  # slot -> runner
    buffer: bytes = b""
    task: int | None = None


@dataclass
class _Lines:
    """JSON messages, one per line, read from a non-blocking pipe."""

    fd: int
    buffer: bytes = b""
    closed: bool = False
    pending: list[dict[str, Any]] = field(default_factory=list)

    def read_available(self) -> None:
        while not self.closed:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                return
            if not chunk:
                self.closed = True
                return
            lines, self.buffer = split_lines(self.buffer, chunk)
            self.pending.extend(json.loads(line) for line in lines if line)


def _send(fd: int, message: dict[str, Any]) -> None:
    data = (json.dumps(message) + "\n").encode()
    while data:
        written = os.write(fd, data)
        data = data[written:]


class Runner:
    def __init__(self, job_dir: Path) -> None:
        self.job_dir = job_dir
        self.job = Job.read(job_dir / JOB_FILE)
        self.tasks: dict[int, Task] = {t.number: t for t in self.job.tasks}
        self.names = {number: task.name for number, task in self.tasks.items()}
        self.workers = max(1, int(self.job.max_workers or os.cpu_count() or 1))
        self.state: dict[int, str] = dict.fromkeys(self.tasks, "QUEUED")
        self.products: dict[int, list[dict[str, Any]]] = {n: [] for n in self.tasks}
        self.dependents: dict[int, list[int]] = {n: [] for n in self.tasks}
        for number, task in self.tasks.items():
            for dependency in task.depends_on:
                self.dependents[dependency].append(number)
        self.waiting = {n: len(t.depends_on) for n, t in self.tasks.items()}
        self.ready = [n for n, count in self.waiting.items() if count == 0]
        self.slots: dict[int, Slot] = {}  # by events fd
        self.selector = selectors.DefaultSelector()
        self.cancelled = False
        self.specs: dict[str, Any] = {}

    # ---- main loop ----
    def run(self) -> None:
        wakeup_read, wakeup_write = os.pipe()
        for fd in (wakeup_read, wakeup_write):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(wakeup_write)  # SIGTERM wakes the select at once
        signal.signal(signal.SIGTERM, self._on_sigterm)
        self.selector.register(wakeup_read, selectors.EVENT_READ)
        reserve_space(self.job_dir)  # so a task that fills the disk can still end in the journal
        self._load_sequences()
        for _ in range(min(self.workers, len(self.tasks))):
            self._start_slot()
        cancelling = False
        while self.ready or any(slot.task is not None for slot in self.slots.values()):
            if self.cancelled and not cancelling:
                cancelling = True
                self._cancel()
            if not cancelling:
                self._assign()
            for key, _ in self.selector.select(1.0):
                if key.fd == wakeup_read:
                    with contextlib.suppress(BlockingIOError):
                        os.read(wakeup_read, 4096)
                else:
                    self._hear(self.slots[key.fd])
        self._stop_slots()

    def _on_sigterm(self, _signum: int, _frame: Any) -> None:
        self.cancelled = True

    def _load_sequences(self) -> None:
        from awe.dpu.registry import Registry

        registry = Registry(home=Path(self.job.home))
        for name in {task.sequence for task in self.tasks.values()}:
            try:
                self.specs[name] = registry.get(name)
            except Exception as err:  # noqa: BLE001 - the sequence vanished since submission
                for number in [n for n, t in self.tasks.items() if t.sequence == name]:
                    if number in self.ready:
                        self.ready.remove(number)
                    self._finish(number, "E", f"sequence not found: {err}")
        for module in sorted({m for spec in self.specs.values() for m in spec.preload}):
            # Warm for every forked task; one that fails to import fails in its task, which
            # imports it again and reports why.
            with contextlib.suppress(Exception):
                importlib.import_module(module)

    # ---- slots ----
    def _start_slot(self) -> None:
        command_read, command_write = os.pipe()
        event_read, event_write = os.pipe()
        pid = os.fork()
        if pid == 0:  # never returns
            for slot in self.slots.values():  # other slots' pipes are not ours to hold
                os.close(slot.commands)
                os.close(slot.events)
            os.close(command_write)
            os.close(event_read)
            _slot_main(self.job, self.specs, self.job_dir, command_read, event_write)
        os.close(command_read)
        os.close(event_write)
        os.set_blocking(event_read, False)
        self.slots[event_read] = Slot(pid, command_write, event_read)
        self.selector.register(event_read, selectors.EVENT_READ)

    def _assign(self) -> None:
        for slot in self.slots.values():
            if not self.ready:
                return
            if slot.task is None:
                number = self.ready.pop(0)
                task = self.tasks[number]
                upstream = [  # a rerun's task also gets products of the job it reruns
                    *task.reused_upstream,
                    *(p for d in task.depends_on if self._ended_n(d) for p in self.products[d]),
                ]
                try:
                    _send(slot.commands, {"cmd": "run", "task": number, "upstream": upstream})
                except BrokenPipeError:  # the slot died; _hear sees its pipe close
                    self.ready.insert(0, number)
                    continue
                slot.task = number
                self.state[number] = "RUNNING"

    def _hear(self, slot: Slot) -> None:
        lines = _Lines(slot.events, slot.buffer)
        lines.read_available()
        slot.buffer = lines.buffer
        for message in lines.pending:
            number = message["done"]
            slot.task = None
            self.products[number] = message["products"]
            self._finish(number, message["state"], message["reason"], journal_written=True)
        if lines.closed:
            self._lost_slot(slot)

    def _lost_slot(self, slot: Slot) -> None:
        self.selector.unregister(slot.events)
        os.close(slot.events)
        os.close(slot.commands)
        del self.slots[slot.events]
        with contextlib.suppress(ChildProcessError):
            os.waitpid(slot.pid, 0)
        if slot.task is not None:
            self._finish(slot.task, "A", "lost: its worker process died")
        if self.ready and not self.cancelled:
            self._start_slot()

    def _stop_slots(self) -> None:
        for slot in list(self.slots.values()):
            os.close(slot.commands)  # end of commands: the slot leaves
        for slot in list(self.slots.values()):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(slot.pid, 0)

    # ---- outcomes ----
    def _finish(
        self, number: int, state: str, reason: str | None, journal_written: bool = False
    ) -> None:
        if not journal_written:
            write_outcome(self.job_dir, number, state, reason)
        self.state[number] = state
        for dependent in self.dependents[number]:
            task = self.tasks[dependent]
            if state != "N" and not task.tolerant:
                self._skip(dependent, f"{self.tasks[number].name} ended {state}")
                continue
            self.waiting[dependent] -= 1
            if self.waiting[dependent] == 0 and self.state[dependent] == "QUEUED":
                reason = task.skip_reason(self.state, self.names)
                if reason is None:
                    self.ready.append(dependent)
                else:
                    self._skip(dependent, reason)

    def _ended_n(self, number: int) -> bool:
        """Whether task ``number`` ended N (its products go to what waits for it)."""
        return self.state[number] == "N"

    def _skip(self, number: int, reason: str) -> None:
        if self.state[number] != "QUEUED":
            return
        if number in self.ready:
            self.ready.remove(number)
        self._finish(number, "S", reason)

    def _cancel(self) -> None:
        for number in sorted(n for n, s in self.state.items() if s == "QUEUED"):
            self._skip(number, "cancelled before it started")
        for slot in self.slots.values():
            if slot.task is not None:
                with contextlib.suppress(BrokenPipeError):  # a dead slot: _hear handles it
                    _send(slot.commands, {"cmd": "cancel"})


# ---- a slot ----
def _slot_main(job: Job, specs: dict[str, Any], job_dir: Path, commands: int, events: int) -> None:
    """Run the tasks the runner sends, one at a time, until it closes the pipe."""
    code = 0
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        os.set_blocking(commands, False)
        inbox = _Lines(commands)
        tasks = {task.number: task for task in job.tasks}
        selector = selectors.DefaultSelector()
        selector.register(commands, selectors.EVENT_READ)

        def should_abort() -> str | None:
            inbox.read_available()
            if any(m.get("cmd") == "cancel" for m in inbox.pending):
                inbox.pending[:] = [m for m in inbox.pending if m.get("cmd") != "cancel"]
                return "CANCELLED while running"
            if inbox.closed:
                return "lost: the job's runner is gone"
            return None

        while True:
            inbox.read_available()
            runs = [m for m in inbox.pending if m.get("cmd") == "run"]
            inbox.pending.clear()
            if not runs:
                if inbox.closed:
                    break
                selector.select()
                continue
            for message in runs:
                task = tasks[message["task"]]
                result = supervise(
                    job,
                    task,
                    specs[task.sequence],
                    [ProductRecord.from_json(p) for p in message["upstream"]],
                    job_dir,
                    should_abort=should_abort,
                    watch_fd=commands,
                    close_in_child=(commands, events),
                )
                _send(events, {"done": task.number, **result})
    except BaseException:  # noqa: BLE001 - report, then leave; the runner sees the pipe close
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        os._exit(code)


def serve(argv: list[str] | None, usage: str, make: Callable[[list[str]], Runner]) -> int:
    """Run the runner ``make(arguments)`` gives, for a command line shaped as ``usage``
    (``python -m MODULE ARG...``); a job written in a format this code does not read is
    refused, not misread."""
    argv = sys.argv[1:] if argv is None else argv
    module = usage.split()[2]
    if len(argv) != len(usage.split()) - 3:
        print(f"usage: {usage}", file=sys.stderr)
        return 2
    try:
        runner = make(argv)
    except FormatError as err:  # written by another AWE: refused, not misread
        print(f"{module}: {err}", file=sys.stderr)
        return 2
    runner.run()
    return 0


def main(argv: list[str] | None = None) -> int:
    return serve(argv, "python -m awe.dpu.runner JOB_DIR", lambda args: Runner(Path(args[0])))


if __name__ == "__main__":
    sys.exit(main())
