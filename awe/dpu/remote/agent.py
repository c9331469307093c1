"""The DPU-side agent: small jobs on the DPU's machine, with the standard library only.

Sent as program text (:mod:`awe.dpu.remote.program`, with the modules it imports) and
run as ``python3 -c AGENT VERB`` with its arguments as one JSON document on stdin (so it
works before any AWE code is on the machine, e.g. to unpack the first code snapshot, and a
large job description needs no temporary file), or imported by this machine's transport.
One invocation does one thing for a whole job, so following a 62-task job over SSH costs
one round trip per poll, not 62. Arguments are data, never shell text.
The answer is one JSON document on stdout.

Verbs: ``journals`` (new bytes of many task journals), ``alive`` (does the job's runner
run), ``poll`` (both, in one call), ``start`` (write the job description, start a detached
runner), ``cancel`` / ``kill`` (stop it), ``unpack`` (verify and unpack a code snapshot
atomically, refusing unsafe paths), ``check`` (facts for ``awe dpu check``), ``sha256``, ``home``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from awe.dpu.remote.commands import spawn_detached

RUNNER_FILE = "runner.json"
RUNNER_LOG = "runner.log"
COMPLETE_MARKER = ".complete"


class UnsafeArchive(Exception):
    """A snapshot archive that would write outside its folder, or holds links or devices."""


# ---- journals ----
def journals(args: dict[str, Any]) -> dict[str, str]:
    """New bytes of the task journals that grew past their offset (base64 by task number)."""
    folder = Path(args["dir"]) / "tasks"
    # by file name: one look-up per entry of a folder that also holds every task's work dir
    wanted = {f"{int(n)}.jsonl": (str(int(n)), int(o)) for n, o in args["offsets"].items()}
    found: dict[str, str] = {}
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return found
    for entry in entries:
        if entry.name not in wanted:
            continue
        name, offset = wanted[entry.name]
        if entry.stat().st_size > offset:
            with open(entry.path, "rb") as journal:
                journal.seek(offset)
                found[name] = base64.b64encode(journal.read()).decode()
    return found


# ---- the runner ----
def runs_runner(pid: int, job_dir: str) -> bool:
    """Whether ``pid`` is alive and is this job's runner (or one of its workers or tasks)."""
    try:
        cmdline = _command_line(pid)
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    if "\nState:\tZ" in status:  # a zombie has finished
        return False
    return b"awe.dpu.runner" in cmdline and job_dir.encode() in cmdline


def _command_line(pid: int) -> list[bytes]:
    """The arguments of process ``pid``. A process in the middle of ``exec`` (a runner
    just spawned: Popen returns before the kernel has set up its arguments) shows an empty
    command line for a moment; it is read again rather than taken for a stranger's. Still
    empty after half a second: a kernel thread, not ours."""
    for _ in range(50):
        data = Path(f"/proc/{pid}/cmdline").read_bytes()
        if data:
            return data.split(b"\0")
        time.sleep(0.01)
    return []


def runner_pid(job_dir: str) -> int | None:
    try:
        return json.loads((Path(job_dir) / RUNNER_FILE).read_text())["pid"]
    except FileNotFoundError:
        return None


def alive(args: dict[str, Any]) -> bool:
    pid = runner_pid(args["dir"])
    return pid is not None and runs_runner(pid, args["dir"])


def poll(args: dict[str, Any]) -> dict[str, Any]:
    """A poll's one call: whether the runner lives (asked first: a runner found gone wrote
    everything it ever will before the journals are read), then the new journal bytes."""
    return {"alive": alive(args), "journals": journals(args)}


def write_job(job_dir: Path, job: dict[str, Any]) -> None:
    """Write ``job.json`` atomically, refusing a job in a format this code does not read."""
    from awe.messages import Job  # here: only the verbs that write a job pay its import

    Job.from_json(job)
    (job_dir / "tasks").mkdir(parents=True, exist_ok=True)
    write_atomically(job_dir / "job.json", json.dumps(job))


def write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def start(args: dict[str, Any]) -> int:
    """Write ``job.json`` (when given) and start the job's runner detached (own session,
    stdio to files), so it outlives this process and the connection that started it."""
    job_dir = Path(args["dir"])
    (job_dir / "tasks").mkdir(parents=True, exist_ok=True)
    if "job" in args:
        write_job(job_dir, args["job"])
    pid = spawn_detached(
        [args["python"], "-m", "awe.dpu.runner", str(job_dir)],
        str(job_dir / RUNNER_LOG),
        args.get("env", {}),
        str(job_dir),
    )
    write_atomically(job_dir / RUNNER_FILE, json.dumps({"pid": pid, "host": socket.gethostname()}))
    return pid


def cancel(args: dict[str, Any]) -> bool:
    pid = runner_pid(args["dir"])
    if pid is not None and runs_runner(pid, args["dir"]):
        os.kill(pid, signal.SIGTERM)
        return True
    return False


def kill(args: dict[str, Any]) -> int:
    """Kill the runner and the given task process groups at once; how many were killed."""
    killed = 0
    pid = runner_pid(args["dir"])
    for target, group in [(pid, False)] + [(p, True) for p in args.get("pids", [])]:
        if target is None or not runs_runner(target, args["dir"]):
            continue
        try:
            (os.killpg if group else os.kill)(target, signal.SIGKILL)
            killed += 1
        except (ProcessLookupError, PermissionError):
            pass
    return killed


# ---- code snapshots ----
def check_members(archive: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """The archive's members, refusing absolute paths, '..', links, devices and fifos."""
    members = archive.getmembers()
    for member in members:
        parts = Path(member.name).parts
        if member.name.startswith(("/", "\\")) or os.path.isabs(member.name) or ".." in parts:
            raise UnsafeArchive(f"refusing {member.name!r}: it would land outside the folder")
        if not (member.isfile() or member.isdir()):
            raise UnsafeArchive(f"refusing {member.name!r}: only files and folders are allowed")
    return members


def unpack(args: dict[str, Any]) -> str:
    """Verify the archive's sha256, unpack it beside ``dest``, then rename into place."""
    archive_path, dest = Path(args["archive"]), Path(args["dest"])
    if (dest / COMPLETE_MARKER).exists():
        return "present"
    digest = hashlib.sha256(archive_path.read_bytes()).hexdigest()
    if digest != args["sha256"]:
        raise UnsafeArchive(f"archive hash {digest} is not the expected {args['sha256']}")
    staging = dest.with_name(f".{dest.name}.unpack-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with tarfile.open(archive_path) as archive:
        members = check_members(archive)
        for member in members:
            target = staging / member.name
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.extractfile(member) as source, open(target, "wb") as out:
                shutil.copyfileobj(source, out)
    (staging / COMPLETE_MARKER).write_text(digest)
    try:
        os.rename(staging, dest)
    except OSError:  # another session unpacked the same snapshot meanwhile
        shutil.rmtree(staging, ignore_errors=True)
        if not (dest / COMPLETE_MARKER).exists():
            raise
    archive_path.unlink(missing_ok=True)
    return "unpacked"


# ---- checks ----
def check(args: dict[str, Any]) -> dict[str, Any]:
    facts: dict[str, Any] = {"python": sys.version.split()[0], "executable": sys.executable}
    modules = {}
    for name in args.get("modules", []):
        try:
            __import__(name)
            modules[name] = "ok"
        except Exception as err:  # noqa: BLE001 - report any failure to import
            modules[name] = f"{type(err).__name__}: {err}"
    facts["modules"] = modules
    work_dir = Path(os.path.expanduser(args["work_dir"]))
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
        probe = work_dir / f".awe-write-test-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
        facts["work_dir"] = "ok"
    except OSError as err:
        facts["work_dir"] = f"{err.strerror or err}"
    facts["work_dir_path"] = str(work_dir)
    facts["commands"] = {c: shutil.which(c) for c in args.get("commands", [])}
    facts["cores"] = os.cpu_count()
    return facts


def sha256(args: dict[str, Any]) -> str:
    digest = hashlib.sha256()
    with open(args["path"], "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def home(args: dict[str, Any]) -> str:
    return os.path.expanduser(args.get("path", "~"))


VERBS = {
    "journals": journals,
    "alive": alive,
    "poll": poll,
    "start": start,
    "cancel": cancel,
    "kill": kill,
    "unpack": unpack,
    "check": check,
    "home": home,
    "sha256": sha256,
}


def main(argv: list[str], verbs: dict[str, Callable[[dict[str, Any]], Any]] | None = None) -> int:
    """Answer one verb (``argv[1]``, arguments as JSON on stdin) as JSON on stdout, over
    ``verbs`` (this module's, or those of every module of the program that was sent)."""
    verb, payload = argv[1], json.loads(sys.stdin.read() or "{}")
    try:
        answer = {"ok": (verbs or VERBS)[verb](payload)}
    except Exception as err:  # noqa: BLE001 - every failure goes back as data
        answer = {"error": f"{type(err).__name__}: {err}"}
    sys.stdout.write(json.dumps(answer))
    return 0 if "ok" in answer else 1
