"""Code snapshots: the local checkout as one deterministic archive, named by its sha256.

The snapshot holds the ``awe`` and ``sequences`` packages, the user's
``$AWE_HOME/sequences/`` (as ``home/sequences/``) and any folders listed in
``Env.code_paths`` (each as a top-level package), with ``__pycache__`` and compiled files
left out. Names are sorted, times, owners and modes fixed, and gzip's own timestamp zeroed,
so the same checkout always gives the same bytes and the same id, and any edit another. The
id is stored with every job; a remote DPU keeps snapshots by id, so an unchanged checkout
uploads nothing.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

SKIPPED_PARTS = {"__pycache__", ".git", ".pytest_cache", ".ruff_cache"}
SKIPPED_SUFFIXES = {".pyc", ".pyo"}
USER_SEQUENCES = "home/sequences"


@dataclass(frozen=True)
class Snapshot:
    id: str  # sha256 of the archive
    archive: bytes


def code_roots(home: Path, extra: Iterable[str] = ()) -> list[tuple[str, Path]]:
    """(name in the snapshot, folder) for each part of the local code."""
    import sequences

    # This file's package's parent is awe/ (``import awe`` would be an import of the root
    # package, which wires the session: nothing inside awe imports it).
    awe_package = Path(__file__).parents[1]
    roots = [("awe", awe_package), ("sequences", Path(sequences.__file__).parent)]
    user = home / "sequences"
    if user.is_dir():
        roots.append((USER_SEQUENCES, user))
    for folder in extra:
        path = Path(folder).expanduser().resolve()
        roots.append((path.name, path))
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
                and path.suffix not in SKIPPED_SUFFIXES
            ):
                entries.append((f"{name}/{relative.as_posix()}", path))
    return iter(sorted(entries))


def build_snapshot(roots: Iterable[tuple[str, Path]]) -> Snapshot:
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.USTAR_FORMAT) as archive,
    ):
        for name, path in snapshot_files(roots):
            data = path.read_bytes()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
            info.mtime = 0
            archive.addfile(info, io.BytesIO(data))
    data = buffer.getvalue()
    return Snapshot(hashlib.sha256(data).hexdigest(), data)
