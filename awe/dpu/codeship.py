"""Code snapshots: which code a job ran, as one sha256 over the local checkout.

The snapshot covers the ``awe`` and ``sequences`` packages and the user's
``$AWE_HOME/sequences/``: every file's relative path and content, in sorted order,
``__pycache__`` and compiled files left out. The same checkout always gives the same id,
and any edit gives another, so every job (and every product) names the exact code it ran.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path

SKIPPED_PARTS = {"__pycache__", ".git", ".pytest_cache", ".ruff_cache"}
SKIPPED_SUFFIXES = {".pyc", ".pyo", ".so"}


def code_roots(home: Path) -> list[tuple[str, Path]]:
    """(name in the snapshot, folder) for each part of the local code."""
    import awe
    import sequences

    roots = [("awe", Path(awe.__file__).parent), ("sequences", Path(sequences.__file__).parent)]
    user = home / "sequences"
    if user.is_dir():
        roots.append(("user_sequences", user))
    return roots


def snapshot_files(roots: Iterable[tuple[str, Path]]) -> Iterator[tuple[str, Path]]:
    """(archive name, file) for every file of the snapshot, sorted by archive name."""
    entries = []
    for name, folder in roots:
        for path in folder.rglob("*"):
            relative = path.relative_to(folder)
            if (
                path.is_file()
                and not SKIPPED_PARTS & set(relative.parts)
                and (path.suffix not in SKIPPED_SUFFIXES)
            ):
                entries.append((f"{name}/{relative.as_posix()}", path))
    return iter(sorted(entries))


def snapshot_id(roots: Iterable[tuple[str, Path]]) -> str:
    digest = hashlib.sha256()
    for name, path in snapshot_files(roots):
        digest.update(name.encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()
