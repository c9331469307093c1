"""A real OpenSSH server on 127.0.0.1 for the tests: generated host and user keys, sftp,
running as the current user on a free port. ``stop()`` / ``start()`` restart it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

SSHD = "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def descendants(pid: int) -> list[int]:
    """Pids of the processes below ``pid`` (sshd's connection handlers)."""
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


class SSHServer:
    def __init__(self, folder: Path) -> None:
        if not os.access(SSHD, os.X_OK):
            raise RuntimeError(
                f"{SSHD} is missing: install OpenSSH's server with bash tests/services/start.sh"
            )
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.host_key = folder / "host_ed25519"
        self.user_key = folder / "user_ed25519"
        for key in (self.host_key, self.user_key):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True
            )
        shutil.copy(f"{self.user_key}.pub", folder / "authorized_keys")
        self.known_hosts = folder / "known_hosts"
        self.trust()
        self.config = folder / "sshd_config"
        self.config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.host_key}\n"
            f"AuthorizedKeysFile {folder / 'authorized_keys'}\nPubkeyAuthentication yes\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
            "PermitRootLogin prohibit-password\nStrictModes no\n"
            f"PidFile {folder / 'sshd.pid'}\nSubsystem sftp internal-sftp\nLogLevel ERROR\n"
        )
        self.process: subprocess.Popen | None = None
        self.start()

    def trust(self) -> None:
        """Write a known_hosts that trusts this server's host key."""
        key = Path(f"{self.host_key}.pub").read_text().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {key[0]} {key[1]}\n")

    def start(self) -> None:
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation folder
        with open(self.folder / "sshd.log", "ab") as log:
            self.process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.config)], stderr=log)
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    if sock.recv(4) == b"SSH-":
                        return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = (self.folder / "sshd.log").read_text()
                raise RuntimeError(f"sshd did not start on port {self.port}: {log}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the listener and every connection it serves (as a reboot of sshd would)."""
        if self.process is None:
            return
        sessions = descendants(self.process.pid)
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=10)
        self.process = None
        for pid in sessions:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def dpu(self, work_dir: Path, **settings) -> dict:
        """A DPU definition for this server."""
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "user": os.environ.get("USER", "root"),
            "identity_file": str(self.user_key),
            "known_hosts": str(self.known_hosts),
            "work_dir": str(work_dir),
            "python": sys.executable,
            **settings,
        }
