"""The content-addressed data store: names by sha256, atomic writes, the hash checked on
every read, and a failed write (a real one: the file-size limit) that leaves nothing."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from awe.data.errors import CorruptFileError, MissingFileError, StoreError
from awe.data.store import DataStore


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_put_get_exists_by_content_hash(tmp_path: Path) -> None:
    store = DataStore(tmp_path / "store")
    content = b"SIMPLE  = T" + bytes(range(256)) * 40
    digest = store.put(content)
    assert digest == hashlib.sha256(content).hexdigest()
    assert store.path(digest) == tmp_path / "store" / digest[:2] / digest[2:4] / digest
    assert store.exists(digest) and store.read(digest) == content
    assert store.get(digest).read_bytes() == content
    source = tmp_path / "source.fits"
    source.write_bytes(content)
    assert store.put(source) == digest == store.put(io.BytesIO(content))
    assert _files(tmp_path / "store") == [store.path(digest)]  # one copy, no temporaries
    assert store.path(digest).stat().st_mode & 0o777 == 0o444


def test_a_corrupted_file_is_caught_on_read(tmp_path: Path) -> None:
    store = DataStore(tmp_path)
    digest = store.put(b"the original bytes")
    path = store.path(digest)
    os.chmod(path, 0o644)
    path.write_bytes(b"the original bytez")
    with pytest.raises(CorruptFileError, match=rf"{path} is corrupt: .* not {digest}"):
        store.get(digest)
    with pytest.raises(CorruptFileError):
        store.read(digest)
    assert store.get(digest, verify=False) == path  # callers may skip the check knowingly


def test_missing_and_malformed_hashes(tmp_path: Path) -> None:
    store = DataStore(tmp_path)
    with pytest.raises(MissingFileError, match="has no file 0000"):
        store.get("0" * 64)
    with pytest.raises(StoreError, match="not a sha256"):
        store.exists("../../etc/passwd")


FAILING_PUT = """
import resource, signal, sys
from awe.data.errors import StoreError
from awe.data.store import DataStore
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
try:
    DataStore(sys.argv[1]).put(b"x" * 300_000)
except StoreError as err:
    print(err)
    sys.exit(3)
"""


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    root = tmp_path / "store"
    result = subprocess.run(
        [sys.executable, "-c", FAILING_PUT, str(root)], capture_output=True, text=True
    )
    assert result.returncode == 3, result.stderr
    assert "nothing was stored" in result.stdout and "File too large" in result.stdout
    assert _files(root) == []
