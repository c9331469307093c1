"""A DPU on another host, reached over SSH, running jobs on a detached runner there.

Layout under the DPU's ``work_dir`` on the remote host::

    code/<snapshot id>/     unpacked code snapshots (PYTHONPATH of the job's runner)
    store/ab/cd/<sha256>    input files, content addressed (the data store's layout)
    jobs/<job id>/          job.json, runner.json, runner.log, tasks/<n>.jsonl, tasks/<n>/
    home/                   AWE_HOME of jobs that run the DPU's installed code

A snapshot or an input file travels only when the remote lacks it, and its hash is checked
on arrival. Following a job costs one SSH command per poll whatever its number of tasks.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from awe.dpu.backends.pool import SINGLE_THREADED, PoolBackend
from awe.dpu.remote import agent
from awe.dpu.remote.shell import NoAnswer, RemoteError
from awe.dpu.remote.ssh import SSHShell

if TYPE_CHECKING:
    from awe.dpu.codeship import Snapshot
    from awe.dpu_definitions import DPUDefinition
    from awe.env import Env

AGENT_SOURCE = Path(agent.__file__).read_text()


class SSHBackend(PoolBackend):
    def __init__(self, definition: DPUDefinition, env: Env) -> None:
        self.definition = definition
        self.name = definition.name
        self.workers = definition.max_workers or 1
        self.shell = SSHShell(definition)
        self._work_dir: str | None = None

    # ---- talking to the host ----
    def wrap(self, argv: list[str]) -> list[str]:
        """``argv`` after the DPU's set-up lines (``module load ...``), if it has any.

        The set-up lines are the DPU owner's own shell text from the configuration; every
        argument after them is passed as a positional parameter, never pasted in.
        """
        if not self.definition.setup:
            return argv
        script = "\n".join([*self.definition.setup, 'exec "$@"'])
        return ["bash", "-c", script, "awe-setup", *argv]

    def call(self, verb: str, args: dict[str, Any]) -> Any:
        return self.call_source(AGENT_SOURCE, verb, args, self.definition.command_timeout)

    def call_source(self, source: str, verb: str, args: dict[str, Any], timeout: float) -> Any:
        """Run the stand-alone agent ``source`` (this agent, or the Slurm one) on the host as
        ``python -c SOURCE VERB`` with ``args`` as JSON on stdin; its answer, or an error."""
        result = self.shell.run(
            self.wrap([self.definition.python, "-c", source, verb]),
            stdin=json.dumps(args).encode(),
            timeout=timeout,
        )
        try:
            answer = json.loads(result.stdout)
        except ValueError:
            tail = result.stderr.decode(errors="replace").strip().splitlines()[-3:]
            raise NoAnswer(
                f"{verb} on {self.shell.where} gave no answer (exit code {result.code}): "
                f"{' | '.join(tail) or 'no output'}. Is {self.definition.python!r} a working "
                f"Python 3 there? `awe dpu check {self.name}` tells."
            ) from None
        if "error" in answer:
            raise RemoteError(f"{verb} on {self.shell.where}: {answer['error']}")
        return answer["ok"]

    def fetch(self, path: str, into: Path) -> Path:
        self.shell.get_file(path, into)
        return into

    def check_dir(self) -> str:
        return self.definition.work_dir

    @property
    def work_dir(self) -> str:
        """The DPU's work_dir with ``~`` expanded on the remote host."""
        if self._work_dir is None:
            self._work_dir = self.call("home", {"path": self.definition.work_dir})
        return self._work_dir

    # ---- submitting ----
    def prepare(
        self, job_id: int, job: dict[str, Any], snapshot: Snapshot | None
    ) -> tuple[str, dict[str, Any]]:
        job_dir = f"{self.work_dir}/jobs/{job_id}"
        environment = dict(SINGLE_THREADED)
        if snapshot is not None:
            code_dir = self.ship_code(snapshot)
            environment["PYTHONPATH"] = code_dir
            home = f"{code_dir}/home"
        else:
            home = f"{self.work_dir}/home"
        environment["AWE_HOME"] = home
        remote_job = {**job, "home": home, "max_workers": self.definition.max_workers}
        remote_job["tasks"] = [
            {**task, "inputs": self.stage_inputs(task["inputs"])} for task in job["tasks"]
        ]
        return job_dir, {"python": self.definition.python, "env": environment, "job": remote_job}

    def ship_code(self, snapshot: Snapshot) -> str:
        """The snapshot's folder on the host; uploaded and unpacked only if missing."""
        code_dir = f"{self.work_dir}/code/{snapshot.id}"
        if self.shell.exists(f"{code_dir}/{agent.COMPLETE_MARKER}"):
            return code_dir
        archive = f"{self.work_dir}/code/{snapshot.id}.tar.gz"
        self.shell.run(["mkdir", "-p", f"{self.work_dir}/code"]).check("creating code/")
        with tempfile.NamedTemporaryFile(suffix=".tar.gz") as local:
            local.write(snapshot.archive)
            local.flush()
            self.shell.put_file(Path(local.name), archive)
        self.call("unpack", {"archive": archive, "dest": code_dir, "sha256": snapshot.id})
        return code_dir

    def stage_inputs(self, inputs: list[Any]) -> list[Any]:
        """Inputs with every file reference (``file_input``) pointing into the remote store,
        uploading the files the remote lacks."""
        from awe.data.store import DataStore

        layout = DataStore("/")
        staged = []
        for item in inputs:
            if isinstance(item, dict) and {"path", "sha256"} <= item.keys():
                remote = f"{self.work_dir}/store/{layout.path(item['sha256']).relative_to('/')}"
                if not self.shell.exists(remote):
                    self.shell.run(["mkdir", "-p", remote.rsplit("/", 1)[0]]).check("store")
                    self.shell.put_file(Path(item["path"]), remote)
                    digest = self.call("sha256", {"path": remote})
                    if digest != item["sha256"]:
                        raise RemoteError(
                            f"{item['path']} arrived damaged on {self.shell.where} "
                            f"(sha256 {digest}, expected {item['sha256']}); submit again"
                        )
                item = {**item, "path": remote}
            staged.append(item)
        return staged
