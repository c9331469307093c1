"""Task journals: append-only JSON Lines files, how facts travel back from a running task.

One file per task, written only by the process supervising that task: state changes, log
lines (``{"event": "log", "msg": ...}``), products (path, kind, sha256, metadata). Readers
take the complete lines after the offset they stopped at, so reading is incremental and
idempotent, and works the same on a local file, over SSH or on a cluster's shared disk.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

JOB_FILE = "job.json"
TASKS_FOLDER = "tasks"


def journal_path(job_dir: Path, number: int) -> Path:
    return job_dir / TASKS_FOLDER / f"{number}.jsonl"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


class JournalWriter:
    """Appends events to one task's journal; each event is one line, flushed at once."""

    def __init__(self, path: Path) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        try:
            self._fd = os.open(path, flags, 0o644)
        except FileNotFoundError:  # the job's tasks/ folder is made at submission, normally
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, flags, 0o644)

    def write(self, event: str, **fields: Any) -> None:
        record = {"t": now_iso(), "event": event, **fields}
        os.write(self._fd, (json.dumps(record, separators=(",", ":")) + "\n").encode())

    def close(self) -> None:
        os.close(self._fd)


def write_outcome(job_dir: Path, number: int, state: str, reason: str | None) -> None:
    """End task ``number``'s journal with ``state`` when it never ran (skipped, lost)."""
    journal = JournalWriter(journal_path(job_dir, number))
    journal.write("state", state=state, reason=reason)
    journal.close()


def parse_new_bytes(data: bytes) -> tuple[list[dict[str, Any]], int]:
    """Events in the complete lines of ``data``, and how many bytes they used.

    A line still being written (no newline yet) is left for the next read.
    """
    end = data.rfind(b"\n") + 1
    events = [json.loads(line) for line in data[:end].splitlines() if line.strip()]
    return events, end


def read_new_bytes(path: Path, offset: int) -> bytes:
    """The bytes of ``path`` after ``offset`` (empty when the file does not exist yet)."""
    try:
        with open(path, "rb") as journal:
            journal.seek(offset)
            return journal.read()
    except FileNotFoundError:
        return b""
