"""A real `awe web` for the tests: a uvicorn server in its own process on a free loopback
port, and the helpers the API and browser tests share (alice's Processor with the test sequences,
tokens, waiting)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from awe.dpu import Processor

SEQUENCES = Path(__file__).parent / "sequences"
TIMEOUT = 120
#: Seconds between the server's looks at unfinished jobs in these tests.
SYNC_INTERVAL = 0.3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WebServer:
    """`awe web` in a subprocess; ``url`` once it answers."""

    def __init__(self, home: Path, database_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home / "web.log"
        env = {**os.environ, "AWE_HOME": str(home), "AWE_DATABASE_URL": database_url}
        env["AWE_USERNAME"] = "webserver"
        command = [sys.executable, "-m", "awe.cli", "web", "--port", str(self.port)]
        command += ["--sync-interval", str(SYNC_INTERVAL)]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, f"awe web died: {self.log.read_text()}"
            assert time.monotonic() < deadline, f"awe web not up: {self.log.read_text()}"
            try:
                if httpx.get(f"{self.url}/api/dpus", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def alice_processor(awe_home: Path, database_url: str) -> Processor:
    """alice's Processor, with the test sequences registered as a user's own files."""
    (awe_home / "sequences").mkdir(parents=True)
    for name in ("testing.py", "web.py"):
        shutil.copy(SEQUENCES / name, awe_home / "sequences" / name)
    return Processor(database_url=database_url, username="alice", session_log="")


@contextlib.contextmanager
def running_server(awe_home: Path, database_url: str) -> Iterator[WebServer]:
    web = WebServer(awe_home, database_url)
    try:
        yield web
    finally:
        web.stop()


def token_for(database, user: str) -> dict[str, str]:
    from awe.db.tokens import create_token

    return {"Authorization": f"Bearer {create_token(database, user)[1]}"}


def wait_for(check, what: str, timeout: float = TIMEOUT):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return result
