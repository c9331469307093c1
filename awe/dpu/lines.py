"""Line framing: messages travel as lines (JSON Lines between the runner, its slots and the
task processes), and a pipe hands them over in chunks that may end inside a line."""

from __future__ import annotations


def split_lines(pending: bytes, chunk: bytes) -> tuple[list[bytes], bytes]:
    """The complete lines of ``pending + chunk``, and the unfinished rest to keep for the
    next chunk."""
    *lines, rest = (pending + chunk).split(b"\n")
    return lines, rest
