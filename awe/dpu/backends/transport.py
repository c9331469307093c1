"""Transports: how AWE reaches a DPU's machine. One axis of the DPU seam (the scheduler is
the other, :mod:`awe.dpu.backends.base`), as Parsl composes a provider with a channel.

A transport runs agent verbs (:mod:`awe.dpu.remote.program`) and moves files: it puts a
code snapshot into the DPU's content-addressed code cache (``work_dir/code/<id>/``, on
every DPU, so every job runs the code it was submitted with), stages file inputs, and
fetches products. :class:`LocalTransport` is this machine (verbs are plain calls);
:class:`SSHTransport` is another host over one verified SSH connection.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

from awe.dpu.remote import agent, program
from awe.dpu.remote.shell import LocalShell, NoAnswer, RemoteError, Shell
from awe.messages import FileRef

if TYPE_CHECKING:
    from awe.dpu.codeship import Snapshot
    from awe.dpu_definitions import DPUDefinition

#: The Python a DPU definition names when it names none.
DEFAULT_PYTHON = "python3"


class Transport(ABC):
    """Commands, agent verbs and files on one DPU's machine."""

    shell: Shell
    #: Seconds an agent verb may take.
    timeout: float

    @property
    @abstractmethod
    def work_dir(self) -> str:
        """AWE's folder on the machine, ``~`` expanded there."""

    @property
    def check_dir(self) -> str:
        """The folder whose writability ``awe dpu check`` tests (``~`` expanded there)."""
        return self.work_dir

    @abstractmethod
    def call(self, modules: tuple[str, ...], verb: str, args: dict[str, Any]) -> Any:
        """Run ``verb`` of the agent program ``modules`` there; its answer, or RemoteError."""

    @abstractmethod
    def python(self, configured: str) -> str:
        """The Python that runs jobs there, given the one the DPU definition names."""

    @abstractmethod
    def awe_home(self, code_dir: str | None) -> str:
        """``AWE_HOME`` of the job's processes (their settings, their data store)."""

    def sequences_home(self, code_dir: str | None) -> str:
        """Where the runner finds the user's sequences: the snapshot's copy when there is
        one (``home/sequences``), so they are the sequences the job was submitted with."""
        return f"{code_dir}/home" if code_dir else self.awe_home(None)

    def ship_code(self, snapshot: Snapshot) -> str:
        """The snapshot's folder in the code cache; written and unpacked only if missing
        (the archive's sha256 is checked, unsafe members refused, the folder renamed into
        place whole)."""
        code_dir = f"{self.work_dir}/code/{snapshot.id}"
        if self.shell.exists(f"{code_dir}/{agent.COMPLETE_MARKER}"):
            return code_dir
        # Named for this upload alone: a session shipping the same snapshot at the same
        # time unpacks (and removes) its own archive, never this one.
        archive = f"{self.work_dir}/code/{snapshot.id}.{uuid.uuid4().hex[:12]}.tar.gz"
        self.shell.put_bytes(snapshot.archive, archive)
        where = {"archive": archive, "dest": code_dir, "sha256": snapshot.id}
        self.call(program.AGENT, "unpack", where)
        return code_dir

    def stage_inputs(self, inputs: list[Any]) -> list[Any]:
        """Task inputs as the DPU finds them (file references into its store)."""
        return inputs

    def fetch(self, path: str, into: Path) -> Path:
        """A local copy of the file at ``path`` there; ``into`` is a scratch name to use."""
        return Path(path)


class LocalTransport(Transport):
    """This machine: agent verbs are function calls, files are where they are."""

    def __init__(self, work_dir: str, home: str, timeout: float = 120.0) -> None:
        self._work_dir = os.path.abspath(os.path.expanduser(work_dir))
        self.home = home
        self.timeout = timeout
        self.shell = LocalShell()

    @property
    def work_dir(self) -> str:
        return self._work_dir

    def call(self, modules: tuple[str, ...], verb: str, args: dict[str, Any]) -> Any:
        try:
            return program.verbs(modules)[verb](args)
        except Exception as err:  # noqa: BLE001 - the same errors as from a remote agent
            raise RemoteError(f"{verb} on localhost: {type(err).__name__}: {err}") from None

    def python(self, configured: str) -> str:
        return sys.executable if configured == DEFAULT_PYTHON else configured

    def awe_home(self, code_dir: str | None) -> str:
        return self.home  # this machine: the user's own home, data store and settings


class SSHTransport(Transport):
    """Another host over SSH (:class:`awe.dpu.remote.ssh.SSHShell`): agent verbs run as
    ``python -c PROGRAM VERB`` after the DPU's set-up lines. Under the DPU's ``work_dir``::

        code/<snapshot id>/     unpacked code snapshots (PYTHONPATH of the job's processes)
        store/ab/cd/<sha256>    input files, content addressed (the data store's layout)
        jobs/<job id>/          job.json, runner.json, runner.log, tasks/<n>.jsonl, tasks/<n>/
        home/                   AWE_HOME of jobs that run the DPU's installed code

    A snapshot or an input file travels only when the remote lacks it, and its hash is
    checked on arrival. Following a job costs one SSH command per poll, whatever its size.
    """

    def __init__(self, definition: DPUDefinition) -> None:
        from awe.dpu.remote.ssh import SSHShell

        self.definition = definition
        self.timeout = definition.command_timeout
        self.shell = SSHShell(definition)
        self._work_dir: str | None = None

    @property
    def work_dir(self) -> str:
        if self._work_dir is None:
            self._work_dir = self.call(program.AGENT, "home", {"path": self.definition.work_dir})
        return self._work_dir

    @property
    def check_dir(self) -> str:
        return self.definition.work_dir  # the agent expands ~: no round trip to ask first

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv`` after the DPU's set-up lines (``module load ...``), if it has any.

        The set-up lines are the DPU owner's own shell text from the configuration; every
        argument after them is passed as a positional parameter, never pasted in.
        """
        if not self.definition.setup:
            return argv
        script = "\n".join([*self.definition.setup, 'exec "$@"'])
        return ["bash", "-c", script, "awe-setup", *argv]

    def call(self, modules: tuple[str, ...], verb: str, args: dict[str, Any]) -> Any:
        python = self.definition.python
        result = self.shell.run(
            self.wrap([python, "-c", program.source(modules), verb]),
            stdin=json.dumps(args).encode(),
            timeout=self.timeout + 10 if "timeout" in args else self.timeout,
        )
        try:
            answer = json.loads(result.stdout)
        except ValueError:
            tail = result.stderr.decode(errors="replace").strip().splitlines()[-3:]
            raise NoAnswer(
                f"{verb} on {self.shell.where} gave no answer (exit code {result.code}): "
                f"{' | '.join(tail) or 'no output'}. Is {python!r} a working Python 3 there? "
                f"`awe dpu check {self.definition.name}` tells."
            ) from None
        if "error" in answer:
            raise RemoteError(f"{verb} on {self.shell.where}: {answer['error']}")
        return answer["ok"]

    def python(self, configured: str) -> str:
        return configured

    def awe_home(self, code_dir: str | None) -> str:
        return f"{code_dir}/home" if code_dir else f"{self.work_dir}/home"

    def stage_inputs(self, inputs: list[Any]) -> list[Any]:
        """Inputs with every file reference pointing into the remote store
        (``work_dir/store/ab/cd/<sha256>``), uploading the files the remote lacks."""
        from awe.data.store import DataStore

        layout = DataStore("/")
        staged = []
        for item in inputs:
            if FileRef.is_ref(item):
                ref = FileRef.from_json(item)
                remote = f"{self.work_dir}/store/{layout.path(ref.sha256).relative_to('/')}"
                if not self.shell.exists(remote):
                    self.shell.run(["mkdir", "-p", remote.rsplit("/", 1)[0]]).check("store")
                    self.shell.put_file(Path(ref.path), remote)
                    digest = self.call(program.AGENT, "sha256", {"path": remote})
                    if digest != ref.sha256:
                        raise RemoteError(
                            f"{ref.path} arrived damaged on {self.shell.where} "
                            f"(sha256 {digest}, expected {ref.sha256}); submit again"
                        )
                item = ref.moved(remote)
            staged.append(item)
        return staged

    def fetch(self, path: str, into: Path) -> Path:
        self.shell.get_file(path, into)
        return into
