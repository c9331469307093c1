"""A private MariaDB server for tests that stop and start it: its own data folder (made by
mariadb-install-db) and its own loopback port, so the shared server is never touched."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.sshd import free_port


class PrivateMariaDB:
    def __init__(self, folder: Path) -> None:
        install = shutil.which("mariadb-install-db")
        if install is None or shutil.which("mariadbd") is None:
            raise RuntimeError(
                "mariadb-install-db or mariadbd is missing: apt-get install mariadb-server"
            )
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()
        done = subprocess.run(
            [
                install,
                "--no-defaults",
                f"--datadir={self.data}",
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed: {done.stderr[-2000:]}")
        self.process: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"mysql+pymysql://root@127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.folder / "server.log", "ab") as log:
            self.process = subprocess.Popen(
                [
                    "mariadbd",
                    "--no-defaults",
                    f"--datadir={self.data}",
                    "--user=root",
                    "--bind-address=127.0.0.1",
                    f"--port={self.port}",
                    f"--socket={self.folder / 'mariadb.sock'}",
                    f"--pid-file={self.folder / 'pid'}",
                    "--innodb-buffer-pool-size=16M",
                    "--skip-log-bin",
                    "--skip-name-resolve",
                ],
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    if sock.recv(4):
                        return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = (self.folder / "server.log").read_text()[-2000:]
                raise RuntimeError(f"the private mariadbd did not start: {log}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=60)
            self.process = None
