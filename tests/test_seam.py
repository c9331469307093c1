"""The DPU seam: every transport x scheduler pair driven the same way (check, run, status,
logs, cancel) against the real services (the test sshd on 127.0.0.1, the single-node
Slurm), jobs that run the code snapshot they record, host keys, #SBATCH values and the
typed messages between client, runner, workers and agents."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import paramiko
import pytest

from awe.db.models import Job, JobState
from awe.dpu import Processor
from awe.dpu.backends.slurm_script import check_values
from awe.dpu.remote import agent, slurm_agent
from awe.dpu.remote.ssh import HostKeyError
from awe.dpu_definitions import DPUDefinition, SlurmSettings, parse_dpus
from awe.errors import AweError
from awe.messages import FORMAT_VERSION, FileRef, FormatError
from awe.messages import Job as JobMessage
from awe.messages import Task as TaskMessage
from tests.test_slurm import slurm  # noqa: F401 - the fixture: Slurm up, or a loud failure

SEQUENCES = Path(__file__).parent / "sequences"
TIMEOUT = 300
BACKENDS = ["local", "ssh", "slurm", "slurm-over-ssh"]
SLURM_COMMANDS = {"sbatch", "squeue", "scancel", "sacct"}


def copy_sequences(awe_home: Path) -> None:
    (awe_home / "sequences").mkdir(parents=True, exist_ok=True)
    for name in ("testing.py", "seam.py"):
        shutil.copy(SEQUENCES / name, awe_home / "sequences" / name)


def make_dpu(kind: str, request: pytest.FixtureRequest, tmp_path: Path, **more) -> Processor:
    """alice's Processor on SQLite sending jobs to a DPU of ``kind``; its work dir is
    ``tmp_path / kind`` (the local DPU's is the AWE home)."""
    work = tmp_path / kind
    if kind == "local":
        dpus = {}
    elif kind == "ssh":
        dpus = {kind: request.getfixturevalue("sshd").dpu(work, max_workers=2)}
    elif kind == "slurm":
        request.getfixturevalue("slurm")
        settings = {"memory": "200M", **more}
        dpus = {kind: {"scheduler": "slurm", "work_dir": str(work), "slurm": settings}}
    else:
        request.getfixturevalue("slurm")
        sshd = request.getfixturevalue("sshd")
        dpus = {kind: sshd.dpu(work, scheduler="slurm", slurm={"memory": "200M", **more})}
    return Processor(
        database_url=f"sqlite:///{tmp_path / 'jobs.db'}",
        username="alice",
        dpus=dpus,
        dpu_name=kind,
    )


def snapshot_of(dpu: Processor, job_id: int) -> str:
    with dpu.database.session() as session:
        return session.get(Job, job_id).code_snapshot_id


def slurm_ids(dpu: Processor, job_id: int) -> list[str]:
    with dpu.database.session() as session:
        folder = Path(session.get(Job, job_id).work_dir)
    return list(json.loads((folder / slurm_agent.SLURM_FILE).read_text())["tasks"].values())


@pytest.mark.parametrize("kind", BACKENDS)
def test_every_dpu_checks_runs_follows_and_cancels(
    kind: str, request: pytest.FixtureRequest, awe_home: Path, tmp_path: Path
) -> None:
    copy_sequences(awe_home)
    dpu = make_dpu(kind, request, tmp_path)

    report = dpu.check_dpu()  # a Slurm DPU raised AttributeError (backend.facts) here
    assert report["ok"], report["problems"]
    assert report["facts"]["work_dir"] == "ok" and report["facts"]["python"]
    commands = report["facts"]["commands"]
    if kind.startswith("slurm"):
        assert set(commands) == SLURM_COMMANDS and all(commands.values())
    else:
        assert commands == {}

    job_id = dpu.run("Hello>Total", n=2, o=kind)
    (status,) = dpu.wait(job_id, timeout=TIMEOUT)
    assert status.counts == {"N": 3, "E": 0, "A": 0, "S": 0, "U": 0}
    (line,) = [s.line() for s in dpu.get_status(job_id)]
    assert line == f"Jobid {job_id} has status FINISHED N/E/A/S/U 3/0/0/0/0"
    logs = "\n".join(dpu.get_logs(job_id)[job_id])
    assert "Hello from c1" in logs and f"on stdout: {kind}" in logs
    assert "upstream products: 2" in logs

    # The code that ran is the snapshot the job records, unpacked in the DPU's code cache.
    which = dpu.run("WhichCode")
    dpu.wait(which, timeout=TIMEOUT)
    code = (awe_home if kind == "local" else tmp_path / kind) / "code" / snapshot_of(dpu, which)
    logs = "\n".join(dpu.get_logs(which)[which])
    assert f"awe from: {code}/awe/__init__.py" in logs
    assert f"sequence from: {code}/home/sequences/seam.py" in logs

    job_id = dpu.run("Hello", n=2, s=120.0)
    deadline = time.monotonic() + TIMEOUT
    while dpu.get_status(job_id)[0].running < 1:
        assert time.monotonic() < deadline, "no task started"
        time.sleep(0.2)
    status = dpu.cancel_job(job_id)
    assert status.state is JobState.CANCELLED
    assert status.counts["A"] >= 1 and status.counts["A"] + status.counts["S"] == 2


def test_awe_dpu_check_on_a_slurm_dpu(slurm, awe_home: Path, tmp_path: Path) -> None:  # noqa: F811
    """``awe dpu check`` on a Slurm DPU crashed with AttributeError before the seam."""
    awe_home.mkdir(parents=True, exist_ok=True)
    cluster = {"scheduler": "slurm", "work_dir": str(tmp_path / "cluster")}
    (awe_home / "awe_config.py").write_text(f"c.Env.dpus = {{'cluster': {cluster!r}}}\n")
    checked = subprocess.run(
        [sys.executable, "-m", "awe.cli", "dpu", "check", "cluster"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "DPU cluster is ready" in checked.stdout


def test_a_held_slurm_job_runs_the_code_it_was_submitted_with(
    request: pytest.FixtureRequest, awe_home: Path, tmp_path: Path
) -> None:
    """Edit the sequence while the job waits in Slurm's queue: the job still runs the
    submitted code, whose snapshot id it records."""
    copy_sequences(awe_home)
    dpu = make_dpu("slurm", request, tmp_path, extra=["--hold"])
    job_id = dpu.run("WhichCode")
    ids = slurm_ids(dpu, job_id)
    source = awe_home / "sequences" / "seam.py"
    source.write_text(source.read_text().replace('"version 1"', '"version 2"'))
    released = subprocess.run(["scontrol", "release", *ids], capture_output=True, text=True)
    assert released.returncode == 0, released.stderr
    (status,) = dpu.wait(job_id, timeout=TIMEOUT)
    assert status.counts["N"] == 1
    logs = "\n".join(dpu.get_logs(job_id)[job_id])
    assert "marker: version 1" in logs and "version 2" not in logs
    assert f"/code/{snapshot_of(dpu, job_id)}/" in logs

    edited = dpu.run("WhichCode", dpu="local")  # the next job takes the edit along
    dpu.wait(edited, timeout=TIMEOUT)
    assert any("marker: version 2" in line for line in dpu.get_logs(edited)[edited])
    assert snapshot_of(dpu, edited) != snapshot_of(dpu, job_id)


# ---- #SBATCH values ----
BAD_VALUES = [
    ("normal\ntouch /tmp/owned", "a line break"),
    ("normal --uid=0", "a space"),
    ("normal\r", "a carriage return"),
    ("normal\tx", "a tab"),
]


@pytest.mark.parametrize("host", [None, "127.0.0.1"])
@pytest.mark.parametrize("key", ["partition", "account", "qos", "memory", "time_limit"])
@pytest.mark.parametrize(("value", "what"), BAD_VALUES)
def test_a_value_that_would_break_an_sbatch_line_is_refused(host, key, value, what) -> None:
    with pytest.raises(ValueError, match=f"DPU 'c' slurm: {key} .* holds {what}"):
        parse_dpus({"c": {"host": host, "scheduler": "slurm", "slurm": {key: value}}})


def test_extra_lines_and_work_dirs_are_checked_too() -> None:
    with pytest.raises(ValueError, match="extra line .* holds a line break"):
        parse_dpus({"c": {"scheduler": "slurm", "slurm": {"extra": ["--x=1\nrm -rf ~"]}}})
    with pytest.raises(ValueError, match="work_dir '/a b' holds a space"):
        parse_dpus({"c": {"scheduler": "slurm", "work_dir": "/a b"}})
    # A work_dir is known whole only on the DPU (~ expanded there): checked at submission,
    # over SSH as on this machine.
    definition = DPUDefinition(name="c", host="h", scheduler="slurm")
    with pytest.raises(AweError, match="work_dir '/home/a b/.awe-dpu' holds a space"):
        check_values(definition, "/home/a b/.awe-dpu")
    sneaky = DPUDefinition(name="c", scheduler="slurm", slurm=SlurmSettings(qos="q\nid"))
    with pytest.raises(AweError, match="qos 'q\\\\nid' holds a line break"):
        check_values(sneaky, "/w")


def test_a_slurm_dpu_over_ssh_with_spaces_in_its_work_dir_is_a_clear_error(
    sshd, awe_home: Path, tmp_path: Path
) -> None:
    spaced = tmp_path / "with space"
    with pytest.raises(AweError, match="DPU 'far': work_dir '.*with space' holds a space"):
        Processor(dpus={"far": sshd.dpu(spaced, scheduler="slurm")}, dpu_name="far")


# ---- known_hosts ----
def public_key(path: Path) -> tuple[str, str]:
    kind, key = Path(f"{path}.pub").read_text().split()[:2]
    return kind, key


def other_key(tmp_path: Path) -> tuple[str, str]:
    other = tmp_path / "other_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    return public_key(other)


def test_trust_on_first_use_appends_one_line_and_keeps_every_user_line(
    sshd, awe_home: Path, tmp_path: Path
) -> None:
    kind, other = other_key(tmp_path)
    hashed = paramiko.HostKeys.hash_host("build.example.org")
    users = (
        "# my hosts, by hand\n"
        f"@cert-authority *.example.org {kind} {other}\n"
        f"@revoked old.example.org {kind} {other}\n"
        f"{hashed} {kind} {other}\n"
        f"lisa.example.org,127.0.0.7 {kind} {other} alice's comment\n"
        "this line is no key at all\n"
        f"weird.example.org ssh-future-type AAAAB3Nz\n"
        f"last.example.org {kind} {other}"  # no line break at the end
    )
    known = tmp_path / "known_hosts"
    known.write_text(users)
    settings = sshd.dpu(
        tmp_path / "far", known_hosts=str(known), host_key_policy="trust_on_first_use"
    )
    assert Processor(dpus={"far": settings}).check_dpu("far")["ok"]
    server_kind, server_key = public_key(sshd.host_key)
    assert known.read_text() == f"{users}\n[127.0.0.1]:{sshd.port} {server_kind} {server_key}\n"
    again = Processor(dpus={"far": settings}).check_dpu("far")  # trusted now: no new line
    assert again["ok"] and known.read_text().count(server_key) == 1


@pytest.mark.parametrize("policy", ["reject", "trust_on_first_use"])
def test_a_revoked_host_key_is_refused(sshd, awe_home: Path, tmp_path: Path, policy) -> None:
    server_kind, server_key = public_key(sshd.host_key)
    known = tmp_path / "known_hosts"
    lines = f"@revoked * {server_kind} {server_key}\n"
    if policy == "reject":  # revoked wins over a line that trusts the same key
        lines += f"[127.0.0.1]:{sshd.port} {server_kind} {server_key}\n"
    known.write_text(lines)
    settings = sshd.dpu(tmp_path / "far", known_hosts=str(known), host_key_policy=policy)
    with pytest.raises(HostKeyError, match="REVOKED host key .* marks @revoked"):
        Processor(dpus={"far": settings}).check_dpu("far")
    assert known.read_text() == lines


def test_a_cert_authority_line_does_not_stop_a_known_host(
    sshd, awe_home: Path, tmp_path: Path
) -> None:
    kind, other = other_key(tmp_path)
    known = tmp_path / "known_hosts"
    known.write_text(f"@cert-authority * {kind} {other}\n" + sshd.known_hosts.read_text())
    before = known.read_text()
    assert Processor(dpus={"far": sshd.dpu(tmp_path / "far", known_hosts=str(known))}).check_dpu(
        "far"
    )["ok"]
    assert known.read_text() == before


# ---- messages ----
def old_job() -> dict:
    """A job.json as AWE wrote it before messages had a format version."""
    task = {"number": 0, "name": "Total", "sequence": "Total", "step": 0, "key": None}
    task |= {"inputs": [], "depends_on": [], "options": {}, "parameters": {}}
    return {"job_id": 1, "sequence": "Total", "home": "/h", "commit": False, "tasks": [task]}


def test_a_job_in_another_format_is_refused_not_misread(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="written by an older AWE \\(no format version\\)"):
        JobMessage.from_json(old_job())
    with pytest.raises(FormatError, match="written by a newer AWE \\(format 99\\)"):
        JobMessage.from_json({**old_job(), "format": 99})
    folder = tmp_path / "job"
    with pytest.raises(FormatError, match="older AWE"):  # the agents refuse it too
        agent.start({"dir": str(folder), "python": sys.executable, "job": old_job()})
    assert not (folder / agent.RUNNER_FILE).exists()
    (folder / "job.json").write_text(json.dumps(old_job()))
    for module, extra in (("awe.dpu.runner", []), ("awe.dpu.worker", ["0"])):
        done = subprocess.run(
            [sys.executable, "-m", module, str(folder), *extra],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2
        assert "job.json: this job was written by an older AWE" in done.stderr
        assert f"reads format {FORMAT_VERSION} only" in done.stderr
    assert not (folder / "tasks" / "0.jsonl").exists()  # nothing ran on a misread job


def test_messages_round_trip_and_the_task_is_one_type() -> None:
    from awe.db.jobs import TaskSpec
    from awe.dpu.planner import PlannedTask

    assert TaskSpec is PlannedTask is TaskMessage
    ref = FileRef("/data/a.fits", "ab" * 32, "a.fits", 7).to_json()
    task = TaskMessage("Bias[c1]", [0], "Bias", 1, "c1", 60.0, 3, [ref, 5], {"n": 1}, {}, 2.0)
    job = JobMessage(4, "Raw>Bias", (task,), home="/h", commit=True, max_workers=2)
    assert JobMessage.from_json(json.loads(job.dumps())) == job
    assert FileRef.is_ref(ref) and not FileRef.is_ref({"path": "/x", "sha256": "0" * 64})
    assert FileRef.from_json(ref).moved("/store/ab")["path"] == "/store/ab"


def test_a_frame_makes_its_own_file_input(tmp_path: Path) -> None:
    from awe.data.store import DataStore
    from awe.db.frames import BiasFrame

    store = DataStore(tmp_path / "store")
    frame = BiasFrame(id=12, sha256="cd" * 32, filename="bias_ccd50.fits")
    given = frame.as_input(store)
    assert FileRef.from_json(given) == FileRef(
        str(store.path("cd" * 32)), "cd" * 32, "bias_ccd50.fits", 12
    )
    assert given["path"] == str(store.path("cd" * 32)) and given["frame_id"] == 12
