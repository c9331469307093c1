"""A pilot: one Slurm allocation that runs a job's ready tasks until the job is done or its
walltime nears (a Slurm DPU in ``"mode": "pilot"``).

``python -m awe.dpu.pilot JOB_DIR WALLTIME_SECONDS`` is what each pilot's batch script
runs. A pilot is the runner (:class:`awe.dpu.runner.Runner`: one slot per CPU, one forked
process per task, the slot the only writer of the task's journal) with one difference:
several pilots share the job, so a task is taken by *claiming* it, creating
``pilot/claims/<n>`` exclusively (``O_EXCL``, atomic on the cluster's shared file system),
and a task is ready when the journals of the tasks it waits for (run by any pilot) ended
``N``. A task whose dependency ended otherwise is claimed and skipped (``S``). A pilot takes
no task its sequence's ``estimate`` says would outlast its walltime (less a margin), and
leaves when nothing is left to claim and its own tasks ended; a task still running when the
walltime comes is lost with the allocation (below), its time limit being the task's own.

SIGTERM means one of two things. AWE's own cancel writes ``pilot/cancelled`` first: the
pilot kills its running tasks, which end ``A`` (``CANCELLED while running``). Otherwise the
allocation is ending (walltime, preemption, an ``scancel`` by someone else): its running
tasks are lost with it; each is released for another pilot (its claim removed, a ``retry``
event in its journal) when its sequence declares retries it has not used up, and ends
``A`` (``lost: its Slurm allocation ended``) otherwise. A pilot killed outright cannot; the
client's next poll releases its tasks on the same terms and replaces pilots while unclaimed
tasks remain (:func:`awe.dpu.remote.slurm_agent.pilot_poll`).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from awe.dpu.journal import (
    JournalWriter,
    journal_path,
    parse_new_bytes,
    read_new_bytes,
    write_outcome,
)
from awe.dpu.runner import Runner, Slot, _send, serve
from awe.dpu.worker import dependency_outcomes

PILOT_FOLDER = "pilot"
CLAIMS_FOLDER = "claims"
CANCEL_MARK = "cancelled"
#: Seconds of walltime a pilot keeps free: no task starts that could not end before.
WALLTIME_MARGIN = 30.0
LOST = "lost: its Slurm allocation ended (walltime, preemption or scancel)"


class Pilot(Runner):
    def __init__(self, job_dir: Path, walltime: float) -> None:
        super().__init__(job_dir)
        self.deadline = time.monotonic() + walltime - WALLTIME_MARGIN
        self.claims = job_dir / PILOT_FOLDER / CLAIMS_FOLDER
        self.claims.mkdir(parents=True, exist_ok=True)
        self.me = _slurm_id()
        self.ready = []  # only what this pilot claimed
        self.final: dict[int, str] = {}  # tasks known to have ended, by any pilot
        self.mine: set[int] = set()  # claimed by this pilot and not ended

    # ---- main loop ----
    def run(self) -> None:
        wakeup_read, wakeup_write = os.pipe()
        for fd in (wakeup_read, wakeup_write):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(wakeup_write)
        signal.signal(signal.SIGTERM, self._on_sigterm)
        self.selector.register(wakeup_read, selectors.EVENT_READ)
        self._load_sequences()
        for _ in range(min(self.workers, len(self.tasks))):
            self._start_slot()
        ending = False
        while True:
            if self.cancelled and not ending:
                ending = True
                self._end()
            if not ending:
                self._claim()
                self._assign()
            busy = any(slot.task is not None for slot in self.slots.values())
            if not busy and (ending or self._nothing_left()):
                break
            for key, _ in self.selector.select(0.2):
                if key.fd == wakeup_read:
                    with contextlib.suppress(BlockingIOError):
                        os.read(wakeup_read, 4096)
                elif key.fd in self.slots:
                    self._hear(self.slots[key.fd])
        self._stop_slots()

    # ---- claiming ----
    def _free_slots(self) -> int:
        return sum(slot.task is None for slot in self.slots.values()) - len(self.ready)

    def _claim(self) -> None:
        free = self._free_slots()
        if free <= 0 or time.monotonic() >= self.deadline:
            return
        claimed = set(self._claimed())
        for number, task in self.tasks.items():
            if free <= 0:
                return
            if number in claimed or number in self.final:
                continue
            if time.monotonic() + float(task.estimate or 0) > self.deadline:
                continue  # expected to outlast this allocation: a fresh pilot takes it
            if not self._dependencies_ended(task.depends_on, claimed):
                continue  # a task it waits for has not ended (or is being retried)
            reason = task.skip_reason(self.final, self.names)
            if reason is not None:
                self._finish(number, "S", reason)
                continue
            if not self._take(number):
                continue
            self.ready.append(number)
            self.mine.add(number)
            free -= 1

    def _ended_n(self, number: int) -> bool:
        return self.final.get(number) == "N"  # ended here or in another pilot

    def _dependencies_ended(self, numbers: Sequence[int], claimed: set[int]) -> bool:
        """Whether every task of ``numbers`` ended; learns (once) the end and products of
        those whose journals say so. A task nobody has taken is not read at all."""
        if any(n not in claimed and n not in self.final for n in numbers):
            return False
        unknown = [n for n in numbers if n not in self.final]
        for number, outcome in dependency_outcomes(self.job_dir, unknown).items():
            if outcome["state"] not in (None, "QUEUED", "RUNNING"):
                self.final[number] = outcome["state"]
                self.products[number] = [p.to_json() for p in outcome["products"]]
        return all(n in self.final for n in numbers)

    def _take(self, number: int) -> bool:
        try:
            fd = os.open(self.claims / str(number), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        os.write(fd, self.me.encode())
        os.close(fd)
        return True

    def _claimed(self) -> list[int]:
        return [int(name) for name in os.listdir(self.claims) if name.isdigit()]

    def _nothing_left(self) -> bool:
        """Every task claimed (by some pilot), or none can start before the walltime."""
        if time.monotonic() >= self.deadline:
            return True
        return len(self._claimed()) >= len(self.tasks)

    # ---- outcomes ----
    def _finish(
        self, number: int, state: str, reason: str | None, journal_written: bool = False
    ) -> None:
        """Only this task: what waits for it is found ready from its journal, by any pilot.
        A task lost with its slot while the allocation ends is released instead."""
        if not journal_written:
            if number in self.mine and self.cancelled and not self._cancelled_by_awe():
                self._release(number)
                return
            if number not in self.mine and not self._take(number):
                return  # another pilot has it
            if self.cancelled and number in self.mine:  # its slot died with the scancel
                reason = "CANCELLED while running"
            write_outcome(self.job_dir, number, state, reason)
        self.final[number] = state
        self.state[number] = state
        self.mine.discard(number)

    def _release(self, number: int) -> None:
        """The allocation ends under a running task: another pilot runs it again when its
        sequence allows another try, else it ends A."""
        self.mine.discard(number)
        task = self.tasks[number]
        events, _ = parse_new_bytes(read_new_bytes(journal_path(self.job_dir, number), 0))
        tries = 1 + task.retries
        attempt = 1 + sum(1 for e in events if e["event"] == "retry")
        journal = JournalWriter(journal_path(self.job_dir, number))
        try:
            if attempt < tries:
                journal.write("retry", attempt=attempt + 1, tries=tries, reason=LOST)
                (self.claims / str(number)).unlink(missing_ok=True)
            else:
                journal.write("state", state="A", reason=LOST)
        finally:
            journal.close()

    def _cancelled_by_awe(self) -> bool:
        return (self.job_dir / PILOT_FOLDER / CANCEL_MARK).exists()

    def _end(self) -> None:
        """SIGTERM: AWE's cancel stops the running tasks (they journal A); an ending
        allocation loses them (released or A, see :meth:`_release`)."""
        self.ready.clear()
        for slot in self.slots.values():
            if slot.task is None:
                continue
            if self._cancelled_by_awe():
                with contextlib.suppress(BrokenPipeError):
                    _send(slot.commands, {"cmd": "cancel"})
            else:
                self._kill_slot(slot)

    def _kill_slot(self, slot: Slot) -> None:
        number = slot.task
        with contextlib.suppress(ProcessLookupError):
            os.kill(slot.pid, signal.SIGKILL)  # its task's group goes with the allocation
        pid = _task_pid(self.job_dir, number) if number is not None else None
        if pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


def _task_pid(job_dir: Path, number: int) -> int | None:
    events, _ = parse_new_bytes(read_new_bytes(journal_path(job_dir, number), 0))
    pids = [e.get("pid") for e in events if e["event"] == "state" and e["state"] == "RUNNING"]
    return pids[-1] if pids else None


def _slurm_id() -> str:
    array = os.environ.get("SLURM_ARRAY_JOB_ID")
    if array:
        return f"{array}_{os.environ.get('SLURM_ARRAY_TASK_ID', '0')}"
    return os.environ.get("SLURM_JOB_ID", f"pid{os.getpid()}")


def main(argv: list[str] | None = None) -> int:
    return serve(
        argv,
        "python -m awe.dpu.pilot JOB_DIR WALLTIME_SECONDS",
        lambda args: Pilot(Path(args[0]), float(args[1])),
    )


if __name__ == "__main__":
    sys.exit(main())
