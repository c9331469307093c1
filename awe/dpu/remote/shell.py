"""Running commands and moving files on a DPU's machine.

:class:`Shell` is what the transports (:mod:`awe.dpu.backends.transport`) run commands
with: :class:`LocalShell` on this machine, :class:`awe.dpu.remote.ssh.SSHShell` over SSH.
Commands are argument lists, never strings pasted together: the SSH shell quotes every
argument, so an option value full of shell syntax is data on the other side too. Every
call has a timeout.
"""

from __future__ import annotations

import os
import shutil
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from awe.dpu.remote import commands
from awe.errors import AweError

DEFAULT_TIMEOUT = 60.0


class RemoteError(AweError):
    """A command on a DPU's machine failed, timed out, or the machine was unreachable."""


class NoAnswer(RemoteError):
    """A command ran on the DPU's machine but did not answer (e.g. its Python is missing)."""


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    code: int
    stdout: bytes
    stderr: bytes

    def check(self, what: str) -> CommandResult:
        """Raise :class:`RemoteError` (with the end of stderr) unless the command succeeded."""
        if self.code != 0:
            tail = self.stderr.decode(errors="replace").strip().splitlines()[-5:]
            raise RemoteError(
                f"{what} failed (exit code {self.code}): " + (" | ".join(tail) or "no output")
            )
        return self

    @property
    def text(self) -> str:
        return self.stdout.decode(errors="replace")


class Shell(ABC):
    """Commands and files on one machine."""

    #: Shown in messages: ``alice@lisa:22`` or ``localhost``.
    where: str

    @abstractmethod
    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        """Run ``argv`` (no shell), feeding ``stdin``; raise RemoteError after ``timeout``."""

    @abstractmethod
    def put_file(self, local: Path, remote: str) -> None:
        """Copy ``local`` to ``remote`` atomically (written beside it, then renamed)."""

    @abstractmethod
    def put_bytes(self, data: bytes, remote: str) -> None:
        """Write ``data`` to ``remote`` atomically, making its folder if need be."""

    @abstractmethod
    def get_file(self, remote: str, local: Path) -> None:
        """Copy ``remote`` to ``local`` (written beside it, then renamed)."""

    @abstractmethod
    def exists(self, remote: str) -> bool:
        """Whether ``remote`` exists."""

    def close(self) -> None:  # noqa: B027 - most shells hold nothing to release
        """Release the connection, if any."""


class LocalShell(Shell):
    """This machine, through subprocess."""

    where = "localhost"

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        try:
            done = commands.run(argv, timeout, stdin, env)
        except commands.CommandFailed as err:
            raise RemoteError(f"{err} on {self.where}") from None
        return CommandResult(tuple(argv), done.returncode, done.stdout, done.stderr)

    def put_file(self, local: Path, remote: str) -> None:
        self.put_bytes(local.read_bytes(), remote)

    def put_bytes(self, data: bytes, remote: str) -> None:
        target = Path(remote)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.part-{os.getpid()}")
        temporary.write_bytes(data)
        os.replace(temporary, target)

    def get_file(self, remote: str, local: Path) -> None:
        temporary = local.with_name(f".{local.name}.part")
        shutil.copyfile(remote, temporary)
        os.replace(temporary, local)

    def exists(self, remote: str) -> bool:
        return Path(remote).exists()
