"""The one way AWE runs a program on a DPU's machine: an argument list (never shell text),
a timeout, stdin as bytes. Standard library only: it travels with the agents.

Used by this machine's transport (:class:`awe.dpu.remote.shell.LocalShell`), by the Slurm
agent for ``sbatch``, ``squeue``, ``scancel`` and ``sacct``, and (:func:`spawn_detached`)
by the pool agent to start a job's runner.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence


class CommandFailed(Exception):
    """A program could not be started or did not finish in time."""


def run(
    argv: Sequence[str],
    timeout: float,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``argv`` to its end, capturing stdout and stderr; CommandFailed after ``timeout``
    seconds or when the program does not exist."""
    try:
        return subprocess.run(
            list(argv),
            input=stdin or b"",
            capture_output=True,
            timeout=timeout,
            env={**os.environ, **env} if env else None,
        )
    except subprocess.TimeoutExpired:
        raise CommandFailed(f"{argv[0]} did not finish within {timeout:g} s") from None
    except FileNotFoundError:
        raise CommandFailed(f"{argv[0]} is not installed or not on the PATH") from None


def spawn_detached(argv: Sequence[str], log: str, env: Mapping[str, str], cwd: str) -> int:
    """Start ``argv`` in a session of its own (stdin closed, stdout and stderr appended to
    ``log``), so it outlives the caller and the connection that started it; its pid."""
    with open(log, "ab") as output:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            start_new_session=True,
            close_fds=True,
            env={**os.environ, **env},
            cwd=cwd,
        )
    return process.pid
