"""Task journals: append-only JSON Lines files, how facts travel back from a running task.

One file per task, written only by the process supervising that task: state changes, log
lines (``{"event": "log", "msg": ...}``), products (path, kind, sha256, metadata). Readers
take the complete lines after the offset they stopped at, so reading is incremental and
idempotent, and works the same on a local file, over SSH or on a cluster's shared disk.
"""

from __future__ import annotations

import errno
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

JOB_FILE = "job.json"
TASKS_FOLDER = "tasks"
#: How every record begins (see :meth:`JournalWriter.write`).
RECORD_START = b'{"t":'
#: The fields each kind of event must have.
EVENT_FIELDS = {
    "log": ("msg",),
    "product": ("path", "kind", "sha256"),
    "state": ("state",),
    "retry": ("attempt",),
}
#: The job folder's disk space reserve (see :func:`reserve_space`).
RESERVE_FILE = ".space-reserve"
RESERVE_BYTES = 512 * 1024
TASK_STATES = ("QUEUED", "RUNNING", "N", "E", "A", "S", "U")


def journal_path(job_dir: Path, number: int) -> Path:
    return job_dir / TASKS_FOLDER / f"{number}.jsonl"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def reserve_space(job_dir: Path) -> None:
    """Set aside a little disk space in the job's folder (a file of zeros) that a journal
    writer frees when the disk is full, so a task that filled the disk can still record
    how it ended. Best effort: no reserve when there is no room for one."""
    try:
        with open(job_dir / RESERVE_FILE, "xb") as reserve:
            reserve.write(bytes(RESERVE_BYTES))
    except FileExistsError:  # kept from an earlier start of this job's runner
        return
    except OSError:
        (job_dir / RESERVE_FILE).unlink(missing_ok=True)


class JournalWriter:
    """Appends events to one task's journal; each event is one line, flushed at once.

    When the disk is full (a task filled it), the job's space reserve (see
    :func:`reserve_space`) is released and the write tried once more."""

    def __init__(self, path: Path) -> None:
        self._path = path
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        try:
            self._fd = os.open(path, flags, 0o644)
        except FileNotFoundError:  # the job's tasks/ folder is made at submission, normally
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, flags, 0o644)

    def write(self, event: str, **fields: Any) -> None:
        record = {"t": now_iso(), "event": event, **fields}
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        try:
            written = os.write(self._fd, line)
        except OSError as err:
            if err.errno != errno.ENOSPC or not self._release_reserve():
                raise
            written = os.write(self._fd, line)
        if written != len(line):  # a partial append: end the torn line so the next is whole
            os.write(self._fd, b"\n")
            raise OSError(errno.ENOSPC, "No space left on device (journal line torn)")

    def _release_reserve(self) -> bool:
        try:
            (self._path.parent.parent / RESERVE_FILE).unlink()
        except FileNotFoundError:
            return False
        return True

    def close(self) -> None:
        os.close(self._fd)


def write_outcome(job_dir: Path, number: int, state: str, reason: str | None) -> None:
    """End task ``number``'s journal with ``state`` when it never ran (skipped, lost)."""
    journal = JournalWriter(journal_path(job_dir, number))
    journal.write("state", state=state, reason=reason)
    journal.close()


@dataclass
class Chunk:
    """What a read of a journal found: its events, the bytes they used, and the lines
    that were not events (torn by a full disk, NFS or a requeued task), by position."""

    events: list[dict[str, Any]]
    used: int
    malformed: list[tuple[int, bytes]] = field(default_factory=list)


def parse_chunk(data: bytes) -> Chunk:
    """Events in the complete lines of ``data``; a malformed line is set aside, never
    fatal. A line still being written (no newline yet) is left for the next read.

    Only the task's supervisor writes its journal, one whole record per ``write``, each
    starting with ``{"t":``; so when torn bytes ran into a record (someone else's partial
    write, a truncation), the record is recovered from its start and only the torn bytes
    are reported."""
    end = data.rfind(b"\n") + 1
    chunk = Chunk([], end)
    position = 0
    for line in data[:end].split(b"\n")[:-1]:
        if line.strip():
            event = _event(line)
            start = line.find(RECORD_START, 1)
            while event is None and start > 0:  # torn bytes, then a whole record?
                event = _event(line[start:])
                start = -1 if event is not None else line.find(RECORD_START, start + 1)
            if event is None or start > 0 or not line.startswith(RECORD_START):
                chunk.malformed.append((position, line))
            if event is not None:
                chunk.events.append(event)
        position += len(line) + 1
    return chunk


def parse_new_bytes(data: bytes) -> tuple[list[dict[str, Any]], int]:
    """Events in the complete lines of ``data``, and how many bytes they used (malformed
    lines skipped: :func:`parse_chunk` tells where they are)."""
    chunk = parse_chunk(data)
    return chunk.events, chunk.used


def last_try_products(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The products a task's journal reports, of its last try only (a try that died and
    was retried may have reported files it never finished)."""
    found: list[dict[str, Any]] = []
    for event in events:
        if event["event"] == "retry":
            found.clear()
        elif event["event"] == "product":
            found.append(event)
    return found


def _event(line: bytes) -> dict[str, Any] | None:
    """The journal record on ``line``, or None when it is not one."""
    try:
        event = json.loads(line)
        parse_time(event["t"])
    except (ValueError, KeyError, TypeError):
        return None
    fields = EVENT_FIELDS.get(event.get("event")) if isinstance(event, dict) else None
    if fields is None or not all(key in event for key in fields):
        return None
    if event["event"] == "state" and event["state"] not in TASK_STATES:
        return None
    return event


def read_new_bytes(path: Path, offset: int) -> bytes:
    """The bytes of ``path`` after ``offset`` (empty when the file does not exist yet)."""
    try:
        with open(path, "rb") as journal:
            journal.seek(offset)
            return journal.read()
    except FileNotFoundError:
        return b""
