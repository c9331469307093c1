"""The data store (Astro-WISE's data server): files addressed by their sha256.

A file's name is its content's hash, ``<root>/ab/cd/abcd...``, so the same content is kept
once whoever stores it, a copy elsewhere (a remote DPU) is checked or completed by name
alone, and a damaged file is recognised on read. Writes go to a temporary file in the
store's own ``tmp/`` folder, are flushed to disk and then renamed into place
(``os.replace`` is atomic on one filesystem), so a reader never sees half a file and a
failed write leaves nothing behind. Stored files are made read-only: content-addressed
files must never change in place.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from awe.context import session_data_root
from awe.data.errors import CorruptFileError, MissingFileError, StoreError

CHUNK = 1 << 20
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


class DataStore:
    """Files under ``root`` by content hash: :meth:`put`, :meth:`get`, :meth:`exists`."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()

    @classmethod
    def for_session(cls) -> DataStore:
        """The store of this session's Env (``data_root``, default ``~/.awe/data``)."""
        return cls(session_data_root())

    # ---- names ------------------------------------------------------------------------
    def path(self, digest: str) -> Path:
        """Where the file with this hash lives (whether or not it is there)."""
        if not _DIGEST.match(digest):
            raise StoreError(f"{digest!r} is not a sha256 hash (64 lowercase hex digits)")
        return self.root / digest[:2] / digest[2:4] / digest

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    # ---- writing ----------------------------------------------------------------------
    def put(self, source: bytes | str | os.PathLike[str] | BinaryIO) -> str:
        """Store bytes, a file (by path) or an open binary stream; return its sha256.

        Storing content that is already there costs a hash and changes nothing."""
        if isinstance(source, bytes | bytearray | memoryview):
            data = bytes(source)
            digest = sha256_bytes(data)
            if not self.exists(digest):
                with self._temporary() as (temp, out):
                    out.write(data)
                    self._install(temp, out, digest)
            return digest
        if isinstance(source, str | os.PathLike):
            with open(source, "rb") as stream:
                return self._put_stream(stream)
        return self._put_stream(source)

    def _put_stream(self, stream: BinaryIO) -> str:
        # The hash is known only after reading, so the copy is written first and named after.
        hasher = hashlib.sha256()
        with self._temporary() as (temp, out):
            for chunk in iter(lambda: stream.read(CHUNK), b""):
                hasher.update(chunk)
                out.write(chunk)
            digest = hasher.hexdigest()
            if not self.exists(digest):
                self._install(temp, out, digest)
        return digest

    @contextlib.contextmanager
    def _temporary(self) -> Iterator[tuple[Path, BinaryIO]]:
        """A temporary file in the store (same filesystem, so the rename is atomic); it is
        removed unless :meth:`_install` moved it into place."""
        folder = self.root / "tmp"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            handle, name = tempfile.mkstemp(dir=folder, prefix="put-")
        except OSError as err:
            raise StoreError(
                f"cannot write to the data store {self.root} ({err.strerror or err}); "
                f"set data_root (AWE_DATA_ROOT) to a writable folder"
            ) from None
        temp = Path(name)
        try:
            with os.fdopen(handle, "wb") as out:
                yield temp, out
        except OSError as err:
            raise StoreError(
                f"writing to the data store {self.root} failed ({err.strerror or err}); "
                f"nothing was stored"
            ) from None
        finally:
            temp.unlink(missing_ok=True)

    def _install(self, temp: Path, out: BinaryIO, digest: str) -> None:
        out.flush()
        os.fsync(out.fileno())
        os.chmod(temp, 0o444)
        target = self.path(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp, target)
        _fsync_folder(target.parent)

    # ---- reading ----------------------------------------------------------------------
    def get(self, digest: str, *, verify: bool = True) -> Path:
        """The path of the stored file, after checking that its content still has its hash."""
        path = self.path(digest)
        if not path.is_file():
            raise MissingFileError(
                f"the data store {self.root} has no file {digest}; it was never stored here, "
                f"or was removed. Ingest or stage it again."
            )
        if verify:
            _check(path, sha256_file(path), digest)
        return path

    def read(self, digest: str) -> bytes:
        """The stored content, checked against its hash."""
        path = self.get(digest, verify=False)
        data = path.read_bytes()
        _check(path, sha256_bytes(data), digest)
        return data

    def remove(self, digest: str) -> bool:
        """Delete a stored file (used to undo a failed ingest); True if it was there."""
        path = self.path(digest)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def __repr__(self) -> str:
        return f"DataStore({str(self.root)!r})"


def _check(path: Path, actual: str, digest: str) -> None:
    if actual != digest:
        raise CorruptFileError(
            f"{path} is corrupt: its content hashes to {actual}, not {digest}. "
            f"Remove it and store the file again from its source."
        )


def _fsync_folder(folder: Path) -> None:
    """Make a rename durable: the folder entry is on disk, not only the file."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)
