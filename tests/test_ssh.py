"""Remote DPUs over SSH against a real OpenSSH server on 127.0.0.1: code shipping, data
staging, detached runners that survive the connection, cancel, host keys, quoting."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import time
from pathlib import Path

import pytest

from awe.db.models import JobState
from awe.dpu import Processor
from awe.dpu.remote import agent
from awe.dpu.remote.ssh import HostKeyError
from awe.errors import AweError
from tests.grouped import GROUPED_CHAIN, check_grouped_job

SEQUENCES = Path(__file__).parent / "sequences" / "remote.py"
TIMEOUT = 120


@pytest.fixture
def remote_work(tmp_path: Path) -> Path:
    return tmp_path / "remote-work"


@pytest.fixture
def dpu(awe_home: Path, database_url: str, sshd, remote_work: Path) -> Processor:
    (awe_home / "sequences").mkdir(parents=True)
    shutil.copy(SEQUENCES, awe_home / "sequences" / "remote.py")
    shutil.copy(SEQUENCES.with_name("testing.py"), awe_home / "sequences" / "testing.py")
    return Processor(
        database_url=database_url,
        username="alice",
        dpus={"far": sshd.dpu(remote_work, max_workers=2)},
        dpu_name="far",
    )


def products(dpu: Processor, job_id: int) -> dict[str, str]:
    """sha256 of each product by chip, from the journals as folded into the logs."""
    text = "\n".join(dpu.get_logs(job_id)[job_id])
    assert "Product EchoFile" in text
    from sqlalchemy import select

    from awe.db.models import Job

    with dpu.database.session() as session:
        job_dir = session.scalar(select(Job.work_dir).where(Job.id == job_id))
    found = {}
    for journal in sorted(Path(job_dir, "tasks").glob("*.jsonl")):
        for line in journal.read_text().splitlines():
            event = json.loads(line)
            if event["event"] == "product":
                found[event["metadata"]["chip"]] = event["sha256"]
    return found


def test_remote_job_gives_the_local_products(dpu: Processor) -> None:
    remote_id = dpu.run("Echo", n=3, o="M31")
    local_id = dpu.run("Echo", n=3, o="M31", dpu="local")
    statuses = dpu.wait([remote_id, local_id], timeout=TIMEOUT)
    assert [s.counts["N"] for s in statuses] == [3, 3]
    remote, local = products(dpu, remote_id), products(dpu, local_id)
    assert remote == local and len(remote) == 3


def test_unchanged_code_is_uploaded_once_and_edits_travel(dpu, awe_home: Path) -> None:
    backend = dpu.backend()
    first = dpu.run("Echo", n=1)
    uploaded_first = backend.shell.bytes_uploaded
    second = dpu.run("Echo", n=1)
    uploaded_second = backend.shell.bytes_uploaded - uploaded_first
    assert uploaded_first > 50_000  # the snapshot: awe/, sequences/, home/sequences/
    assert uploaded_second == 0  # job.json travels inside the start command
    source = awe_home / "sequences" / "remote.py"
    source.write_text(source.read_text().replace('marker = "version 1"', 'marker = "version 2"'))
    third = dpu.run("Echo", n=1)
    dpu.wait([first, second, third], timeout=TIMEOUT)
    logs = dpu.get_logs([second, third])
    assert any("Echo version 1" in line for line in logs[second])
    assert any("Echo version 2" in line for line in logs[third])


@pytest.mark.parametrize(
    "value",
    ["x; touch owned", "$(touch owned)", "`touch owned`", "a'b\"c", "line1\nline2", "*", "--help"],
)
def test_shell_syntax_in_options_is_data(dpu: Processor, remote_work: Path, value: str) -> None:
    job_id = dpu.run("Echo", n=1, o=value)
    (status,) = dpu.wait(job_id, timeout=TIMEOUT)
    assert status.counts["N"] == 1
    product = next((remote_work / "jobs" / str(job_id) / "tasks" / "0").glob("echo-*.txt"))
    assert product.read_text() == f"c0:{value}\n"
    assert not list(remote_work.rglob("owned")) and not Path("owned").exists()


def test_inputs_are_staged_once_by_content(dpu: Processor, tmp_path: Path, remote_work) -> None:
    data = tmp_path / "input.txt"
    data.write_text("photons " * 2_500 + "\n")  # 20 kB: far more than any job.json
    dpu.wait(dpu.run("Echo", n=1), timeout=TIMEOUT)  # the code snapshot travels first
    before = dpu.backend().shell.bytes_uploaded
    first = dpu.run("Digest", f=str(data))
    assert dpu.backend().shell.bytes_uploaded - before == data.stat().st_size  # once
    dpu.wait(first, timeout=TIMEOUT)
    uploaded = dpu.backend().shell.bytes_uploaded
    second = dpu.run("Digest", f=str(data))
    dpu.wait(second, timeout=TIMEOUT)
    stored = list((remote_work / "store").rglob("*"))
    assert len([p for p in stored if p.is_file()]) == 1
    assert dpu.backend().shell.bytes_uploaded - uploaded == 0  # not again
    assert any("photons" in line for line in dpu.get_logs(second)[second])


def test_job_survives_sshd_restart_and_status_catches_up(dpu: Processor, sshd, capsys) -> None:
    job_id = dpu.run("Nap", s=3.0)
    dpu.get_status(job_id)
    sshd.stop()
    try:
        capsys.readouterr()
        (status,) = dpu.get_status(job_id)  # cannot reach: last known state, no exception
        assert not status.is_final
        printed = capsys.readouterr().out
        assert f"WARNING: job {job_id}: cannot reach DPU far (" in printed
        assert "showing its last known state" in printed
    finally:
        sshd.start()
    (status,) = dpu.wait(job_id, timeout=TIMEOUT)
    assert status.state is JobState.FINISHED and status.counts["N"] == 1
    assert any("woke up" in line for line in dpu.get_logs(job_id)[job_id])


def test_cancel_stops_the_remote_processes(dpu: Processor, remote_work: Path) -> None:
    job_id = dpu.run("Nap", s=60.0)
    pid_file = remote_work / "jobs" / str(job_id) / "tasks" / "0" / "pid"
    deadline = time.monotonic() + 60
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    status = dpu.cancel_job(job_id)
    assert status.state is JobState.CANCELLED and status.counts["A"] == 1
    ps = dpu.backend().shell.run(["ps", "-eo", "pid,args"]).text
    assert str(remote_work / "jobs" / str(job_id)) not in ps  # no runner, worker or task


def test_unknown_host_key_is_refused_with_advice(awe_home, sshd, remote_work, tmp_path) -> None:
    empty = tmp_path / "empty_known_hosts"
    dpu = Processor(dpus={"far": sshd.dpu(remote_work, known_hosts=str(empty))}, dpu_name="far")
    with pytest.raises(HostKeyError) as err:
        dpu.check_dpu("far")
    message = str(err.value)
    assert "unknown host key" in message and "SHA256:" in message
    assert f"ssh-keyscan -p {sshd.port} 127.0.0.1 >> {empty}" in message
    assert "trust_on_first_use" in message


def test_trust_on_first_use_records_the_key(awe_home, sshd, remote_work, tmp_path) -> None:
    known = tmp_path / "tofu_known_hosts"
    settings = sshd.dpu(remote_work, known_hosts=str(known), host_key_policy="trust_on_first_use")
    report = Processor(dpus={"far": settings}).check_dpu("far")
    assert report["ok"]
    assert f"[127.0.0.1]:{sshd.port}" in known.read_text()


def test_changed_host_key_is_refused(awe_home, sshd, remote_work, tmp_path) -> None:
    import subprocess

    other = tmp_path / "other_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    kind, key = Path(f"{other}.pub").read_text().split()[:2]
    forged = tmp_path / "forged_known_hosts"
    forged.write_text(f"[127.0.0.1]:{sshd.port} {kind} {key}\n")
    dpu = Processor(dpus={"far": sshd.dpu(remote_work, known_hosts=str(forged))})
    with pytest.raises(HostKeyError, match="HOST KEY CHANGED"):
        dpu.check_dpu("far")


def test_check_dpu_reports_what_to_fix(awe_home, sshd, remote_work) -> None:
    dpu = Processor(
        dpus={
            "far": sshd.dpu(remote_work),
            "nopython": sshd.dpu(remote_work, python="/nonexistent/python3"),
        }
    )
    report = dpu.check_dpu("far")
    assert report["ok"] and report["facts"]["python"]
    assert report["facts"]["work_dir"] == "ok"
    bad = dpu.check_dpu("nopython")
    assert not bad["ok"]
    assert any("/nonexistent/python3" in problem for problem in bad["problems"])


@pytest.mark.parametrize("kind", ["closed_port", "silent_server"])
def test_unreachable_dpu_is_a_clear_error(awe_home, remote_work, kind: str, request) -> None:
    host, port = request.getfixturevalue(kind).split(":")  # refused, or never answering
    dpu = Processor(
        dpus={
            "gone": {
                "host": host,
                "port": int(port),
                "connect_timeout": 2.0,
                "work_dir": str(remote_work),
            }
        }
    )
    started = time.monotonic()
    with pytest.raises(AweError, match=f"cannot connect to .*127.0.0.1:{port}"):
        dpu.check_dpu("gone")
    assert time.monotonic() - started < 30


def make_archive(name: str, kind: bytes = tarfile.REGTYPE) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo(name)
        info.type = kind
        if kind == tarfile.SYMTYPE:
            info.linkname = "/etc/passwd"
        data = b"print('owned')\n"
        info.size = 0 if kind == tarfile.SYMTYPE else len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "kind", "problem"),
    [
        ("../escape.py", tarfile.REGTYPE, "would land outside"),
        ("awe/../../escape.py", tarfile.REGTYPE, "would land outside"),
        ("/tmp/absolute.py", tarfile.REGTYPE, "would land outside"),
        ("awe/link", tarfile.SYMTYPE, "only files and folders"),
    ],
)
def test_unsafe_snapshot_archives_are_refused(tmp_path: Path, name, kind, problem) -> None:
    import hashlib

    data = make_archive(name, kind)
    archive = tmp_path / "snapshot.tar.gz"
    archive.write_bytes(data)
    dest = tmp_path / "code" / "abc"
    args = {"archive": str(archive), "dest": str(dest), "sha256": hashlib.sha256(data).hexdigest()}
    with pytest.raises(agent.UnsafeArchive, match=problem):
        agent.unpack(args)
    assert not dest.exists() and not (tmp_path / "escape.py").exists()
    assert not Path("/tmp/absolute.py").exists()


def test_unsafe_archive_is_refused_on_the_remote_too(dpu: Processor, remote_work: Path) -> None:
    from awe.dpu.codeship import Snapshot
    from awe.dpu.remote.shell import RemoteError

    data = make_archive("../escape.py")
    import hashlib

    snapshot = Snapshot(hashlib.sha256(data).hexdigest(), data)
    with pytest.raises(RemoteError, match="would land outside"):
        dpu.backend().ship_code(snapshot)
    assert not (remote_work / "escape.py").exists()


def test_ssh_config_alias_and_proxyjump_are_honoured(
    awe_home, sshd, remote_work, tmp_path, monkeypatch
) -> None:
    import paramiko

    home = tmp_path / "user-home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text(
        f"Host faraway\n  HostName 127.0.0.1\n  Port {sshd.port}\n  User root\n"
        f"  IdentityFile {sshd.user_key}\n  ProxyJump root@127.0.0.1:{sshd.port}\n"
        f"Host 127.0.0.1\n  IdentityFile {sshd.user_key}\n"
    )
    monkeypatch.setenv("HOME", str(home))
    settings = {
        "host": "faraway",
        "known_hosts": str(sshd.known_hosts),
        "work_dir": str(remote_work),
        "python": sshd.dpu(remote_work)["python"],
    }
    dpu = Processor(dpus={"alias": settings})
    assert dpu.check_dpu("alias")["ok"]
    shell = dpu.backend("alias").shell
    assert isinstance(shell._client.get_transport().sock, paramiko.Channel)  # via the jump
    assert shell.where == f"root@faraway:{sshd.port}"


def test_awe_dpu_command_line(awe_home, sshd, remote_work) -> None:
    import subprocess
    import sys

    (awe_home).mkdir(parents=True, exist_ok=True)
    (awe_home / "awe_config.py").write_text(f"c.Env.dpus = {{'far': {sshd.dpu(remote_work)!r}}}\n")
    checked = subprocess.run(
        [sys.executable, "-m", "awe.cli", "dpu", "check", "far"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "DPU far is ready" in checked.stdout
    listed = subprocess.run(
        [sys.executable, "-m", "awe.cli", "dpu", "list"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert "far: root@127.0.0.1" in listed.stdout and "local (selected)" in listed.stdout


def test_committed_products_are_fetched_and_checked(dpu: Processor, remote_work: Path) -> None:
    from awe.data.store import DataStore

    job_id = dpu.run("MakeBias", i="WFI", n=2, C=1)
    dpu.wait(job_id, timeout=TIMEOUT)
    frames = dpu.get_job_result(job_id)
    assert sorted(f.chip for f in frames) == ["ccd50", "ccd51"]
    store = DataStore(dpu.env.data_root)
    for frame in frames:
        assert store.read(frame.sha256) == f"bias {frame.chip} clip 3.0\n".encode()
        remote_file = remote_work / "jobs" / str(job_id) / "tasks"
        assert list(remote_file.rglob(f"bias_{frame.chip}.txt"))  # still on the DPU too


def test_send_code_false_runs_the_code_installed_on_the_dpu(dpu: Processor, remote_work) -> None:
    installed = dpu.run("Diagnose", send_code=False)
    user_code = dpu.run("Echo", n=1, send_code=False)  # only in my checkout, not installed
    dpu.wait([installed, user_code], timeout=TIMEOUT)
    assert not (remote_work / "code").exists() or not any((remote_work / "code").iterdir())
    assert dpu.get_status(installed)[0].counts["N"] == 1
    (status,) = dpu.get_status(user_code)
    assert status.counts["E"] == 1
    assert any("Unknown sequence 'Echo'" in line for line in dpu.get_logs(user_code)[user_code])
    from awe.db.models import Job

    with dpu.database.session() as session:
        assert session.get(Job, installed).code_snapshot_id is None


def test_a_command_over_its_command_timeout_is_stopped(awe_home, sshd, remote_work) -> None:
    from awe.dpu.remote.shell import RemoteError

    stalled = sshd.dpu(remote_work, setup=["sleep 60"], command_timeout=1.5)
    dpu = Processor(dpus={"stalled": stalled}, dpu_name="stalled", username="alice")
    (awe_home / "sequences").mkdir(parents=True)
    shutil.copy(SEQUENCES, awe_home / "sequences" / "remote.py")
    started = time.monotonic()
    with pytest.raises(RemoteError, match="did not finish within 1.5 s"):
        dpu.run("Echo", n=1)
    assert time.monotonic() - started < 30
    assert dpu.get_jobids() == []  # nothing half-written


def test_setup_lines_run_before_every_remote_command(dpu, sshd, remote_work, tmp_path) -> None:
    marker = tmp_path / "setup-ran"
    dpu.env.set("dpus", {"far": sshd.dpu(remote_work, setup=[f"echo ran >> {marker}"])})
    job_id = dpu.run("Echo", n=1)
    (status,) = dpu.wait(job_id, timeout=TIMEOUT)
    assert status.counts["N"] == 1
    assert marker.read_text().count("ran") >= 3  # home, start, a poll at least


def test_code_paths_travel_with_the_snapshot(dpu, awe_home: Path, tmp_path: Path) -> None:
    library = tmp_path / "libs" / "mylib"
    library.mkdir(parents=True)
    (library / "__init__.py").write_text("VALUE = 'from code_paths'\n")
    (awe_home / "sequences" / "uses_lib.py").write_text(
        "from awe.sequence import sequence\n\n\n"
        "@sequence(fan_out='global')\n"
        "def UsesLib(task):\n"
        "    import mylib  # only the snapshot has it on the DPU\n\n"
        "    task.log.info('mylib says %s', mylib.VALUE)\n"
    )
    dpu.env.set("code_paths", [str(library)])
    job_id = dpu.run("UsesLib")
    (status,) = dpu.wait(job_id, timeout=TIMEOUT)
    assert status.counts["N"] == 1
    assert any("mylib says from code_paths" in line for line in dpu.get_logs(job_id)[job_id])


def test_an_archive_with_the_wrong_hash_is_refused(tmp_path: Path) -> None:
    data = make_archive("awe/fine.py")
    archive = tmp_path / "snapshot.tar.gz"
    archive.write_bytes(data)
    dest = tmp_path / "code" / "abc"
    with pytest.raises(
        agent.UnsafeArchive, match="archive hash [0-9a-f]{64} is not the expected 0{64}"
    ):
        agent.unpack({"archive": str(archive), "dest": str(dest), "sha256": "0" * 64})
    assert not dest.exists()


def test_the_runner_dying_on_the_remote_ends_the_tasks(dpu: Processor, remote_work: Path) -> None:
    import os
    import signal

    job_id = dpu.run("Nap", s=60.0)
    job_dir = remote_work / "jobs" / str(job_id)
    pid_file = job_dir / "tasks" / "0" / "pid"
    deadline = time.monotonic() + 60
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    task_pid = int(pid_file.read_text())
    runner = json.loads((job_dir / agent.RUNNER_FILE).read_text())["pid"]
    from tests.sshd import descendants

    for pid in [runner, *(p for p in descendants(runner) if p != task_pid)]:
        os.kill(pid, signal.SIGKILL)  # the remote runner and its workers; the task lives on
    deadline = time.monotonic() + 60
    while True:
        (status,) = dpu.get_status(job_id)
        if status.is_final:
            break
        assert time.monotonic() < deadline, "the remote runner's death was never noticed"
        time.sleep(0.2)
    assert status.counts["A"] == 1 and status.running == 0
    assert (
        not Path(f"/proc/{task_pid}").exists()
        or "State:\tZ" in Path(f"/proc/{task_pid}/status").read_text()
    )


def test_chips_then_exposures_then_chips_over_ssh(dpu: Processor) -> None:
    check_grouped_job(dpu, dpu.run(GROUPED_CHAIN, n=2))
