"""Fault injection: each case breaks something for real (a corrupt journal, a killed or
stopped process, an interrupted submission, racing sessions, a full disk, a restarted
service) and ends with every task final, none RUNNING, and no product lost or duplicated.
docs/reliability.md lists the faults, what the user sees and which test shows it."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from awe.db.models import Job, JobState, LogRecord, Task, TaskState
from awe.dpu import Processor
from awe.errors import AweError, DatabaseError
from tests.private_mariadb import PrivateMariaDB
from tests.sshd import descendants
from tests.test_dpu import SEQUENCES, TIMEOUT, WORKERS, alive, tasks_of, wait_for_file

FAULT_SEQUENCES = SEQUENCES.with_name("faults.py")
#: For cases the database does not change (the suite stays fast): SQLite only.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def dpu(awe_home: Path, database_url: str) -> Processor:
    """alice's Processor on a fresh database, with the test sequences in her home."""
    (awe_home / "sequences").mkdir(parents=True)
    shutil.copy(SEQUENCES, awe_home / "sequences" / "testing.py")
    shutil.copy(FAULT_SEQUENCES, awe_home / "sequences" / "faults.py")
    processor = Processor(database_url=database_url, username="alice")
    processor.backend("local").workers = WORKERS  # the cases count on two tasks at a time
    return processor


def job_dir(awe_home: Path, job_id: int) -> Path:
    return awe_home / "jobs" / str(job_id)


def assert_all_final(dpu: Processor, job_id: int) -> list[Task]:
    """The guarantee every case ends with: the job is final and so is every task."""
    (status,) = dpu.get_status(job_id)
    assert status.is_final and status.running == 0 and status.queued == 0
    tasks = tasks_of(dpu, job_id)
    assert all(task.state.is_final for task in tasks), [(t.name, t.state) for t in tasks]
    return tasks


def wait_until(condition, timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not met within {timeout} s"
        time.sleep(0.05)


def runner_pid(awe_home: Path, job_id: int) -> int:
    record = job_dir(awe_home, job_id) / "runner.json"
    wait_until(record.exists, what="runner.json")
    return json.loads(record.read_text())["pid"]


# ---- journals ----
def test_a_malformed_journal_line_is_skipped_with_a_warning(dpu: Processor, awe_home) -> None:
    job_id = dpu.run("Hello", n=2, s=1.0)
    wait_for_file(awe_home / f"pid-{job_id}-c0")
    journal = job_dir(awe_home, job_id) / "tasks" / "0.jsonl"
    with open(journal, "ab") as stream:  # a torn write: no newline, the next record runs on
        stream.write(b'{"broken')
    dpu.get_status(job_id)  # each of these raised JSONDecodeError for ever
    dpu.get_logs(job_id)
    (status,) = dpu.wait(job_id, timeout=TIMEOUT)
    assert status.state is JobState.FINISHED
    assert status.counts["N"] == 2  # the record the torn bytes ran into was recovered
    offset = journal.read_bytes().index(b'{"broken')
    logs = "\n".join(dpu.get_logs(job_id)[job_id])
    assert re.search(
        rf"WARNING: skipped a malformed line in the journal of task 0 at byte {offset} "
        r"\(\d+ bytes: '\{\"broken\{\"t\":",
        logs,
    ), logs
    assert_all_final(dpu, job_id)


@SQLITE_ONLY
def test_a_job_with_a_corrupt_journal_can_be_cancelled(dpu: Processor, awe_home) -> None:
    job_id = dpu.run("Hello", n=1, s=60.0)
    wait_for_file(awe_home / f"pid-{job_id}-c0")
    journal = job_dir(awe_home, job_id) / "tasks" / "0.jsonl"
    with open(journal, "ab") as stream:
        stream.write(b"\x00\xff not json at all\n")
    status = dpu.cancel_job(job_id)
    assert status.state is JobState.CANCELLED and status.counts["A"] == 1
    logs = "\n".join(dpu.get_logs(job_id)[job_id])
    assert "skipped a malformed line in the journal of task 0" in logs
    assert_all_final(dpu, job_id)


@SQLITE_ONLY
def test_a_journal_truncated_mid_line_still_ends_the_job(dpu: Processor, awe_home) -> None:
    job_id = dpu.run("Hello", n=2)
    pid = runner_pid(awe_home, job_id)
    wait_until(lambda: not alive(pid), what="the runner's end")
    journal = job_dir(awe_home, job_id) / "tasks" / "1.jsonl"
    data = journal.read_bytes()
    journal.write_bytes(data[: data.rstrip(b"\n").rfind(b"\n") + 12])  # the last record torn
    tasks = assert_all_final(dpu, job_id)
    states = {t.key: (t.state, t.reason) for t in tasks}
    assert states["c0"] == (TaskState.N, None)
    assert states["c1"] == (TaskState.A, "lost: the job's runner is gone")


# ---- the runner dies; stopping leftovers is remote work, done outside transactions ----
def test_a_dead_runner_is_cleaned_up_once_outside_any_transaction(
    dpu: Processor, awe_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from awe.db.database import Database

    job_id = dpu.run("Hello", n=3, s=60.0)
    task_pids = [int(wait_for_file(awe_home / f"pid-{job_id}-c{i}")) for i in (0, 1)]
    backend = dpu.backend()
    kills: list[tuple[list[int], int]] = []
    real_kill = backend.kill

    def watched_kill(work_dir: str, pids: list[int]) -> None:
        kills.append((sorted(pids), dpu.database.engine.pool.checkedout()))
        real_kill(work_dir, pids)

    real_run = Database.run

    def refused_once(self: Database, work):  # every transaction's first commit turned away
        attempts = []

        def work_then_refuse(session):
            result = work(session)
            if not attempts:
                attempts.append(1)
                raise OperationalError("COMMIT", {}, sqlite3.OperationalError("database is locked"))
            return result

        return real_run(self, work_then_refuse)

    monkeypatch.setattr(backend, "kill", watched_kill)
    monkeypatch.setattr(Database, "run", refused_once)
    runner = runner_pid(awe_home, job_id)
    for pid in [runner, *(p for p in descendants(runner) if p not in task_pids)]:
        os.kill(pid, signal.SIGKILL)  # the runner and its workers; the tasks live on
    wait_until(lambda: backend.runner_alive(str(job_dir(awe_home, job_id))) is False)
    tasks = assert_all_final(dpu, job_id)
    assert kills == [(sorted(task_pids), 0)]  # once, and no connection held meanwhile
    assert not any(alive(pid) for pid in task_pids)
    assert sorted(t.state.value for t in tasks) == ["A", "A", "U"]
    assert all("lost: the job's runner is gone" in t.reason for t in tasks)


# ---- commit ----
def _sync_at(url: str, home: str, job_id: int, start: float) -> str:
    """One session's get_status of ``job_id`` (which commits its products) at ``start``."""
    os.environ["AWE_HOME"] = home
    dpu = Processor(database_url=url, username="alice", session_log="")
    assert dpu.get_jobids()  # connected before the start line
    time.sleep(max(0.0, start - time.time()))
    try:
        (status,) = dpu.get_status(job_id)
    except Exception as err:  # noqa: BLE001 - the failure is what the test reports
        return f"{type(err).__name__}: {err}"
    return status.state.value


def test_sessions_committing_the_same_job_at_once(dpu, database_url, awe_home) -> None:
    from concurrent.futures import ProcessPoolExecutor

    from awe.data.store import DataStore
    from awe.db.frames import BiasFrame

    chips = 12
    first = dpu.run("MakeBias", i="WFI", n=chips, C=1)  # committed alone
    dpu.wait(first, timeout=TIMEOUT)
    job_id = dpu.run(
        "MakeBias", i="WFI", n=chips, C=1, p={"BiasFrame.process_params.SIGMA_CLIP": 4.0}
    )
    pid = runner_pid(awe_home, job_id)
    wait_until(lambda: not alive(pid), what="the runner's end")  # nothing synced, committed
    start = time.time() + 2.0
    with ProcessPoolExecutor(4) as pool:
        calls = [
            pool.submit(_sync_at, database_url, str(awe_home), job_id, start) for _ in range(4)
        ]
        outcomes = [call.result() for call in calls]
    assert outcomes == ["FINISHED"] * 4
    frames = BiasFrame.select(database=dpu.database, instrument="WFI")
    assert len(frames) == 2 * chips  # none lost, none twice
    assert sorted(f.job_id for f in frames) == [first] * chips + [job_id] * chips
    store = DataStore(dpu.env.data_root)
    assert all(store.read(f.sha256) for f in frames)
    with dpu.database.session() as session:
        assert all(t.products_committed for t in session.get(Job, job_id).tasks)
        committed = session.scalar(
            select(func.count()).where(
                LogRecord.job_id == job_id, LogRecord.message.like("Committed BiasFrame%")
            )
        )
    assert committed == chips


@SQLITE_ONLY
def test_a_product_changed_after_it_was_reported_is_refused(dpu: Processor) -> None:
    from awe.data.store import DataStore
    from awe.db.frames import BiasFrame

    made = dpu.run("MakeBias", i="WFI", C=1, p={"BiasFrame.process_params.SIGMA_CLIP": 5.0})
    dpu.wait(made, timeout=TIMEOUT)
    frames = dpu.get_job_result(made)
    tampered = dpu.run("Tamper", i="WFI", C=1)  # its files now hold MakeBias's content
    (status,) = dpu.wait(tampered, timeout=TIMEOUT)
    assert status.counts["N"] == 2
    logs = "\n".join(dpu.get_logs(tampered)[tampered])
    assert logs.count("not committed: its content changed after the task reported it") == 2
    assert dpu.get_job_result(tampered) == []
    store = DataStore(dpu.env.data_root)
    for frame in frames:  # the other job's files are all still there, whole
        assert store.read(frame.sha256) == f"bias {frame.chip} clip 5.0\n".encode()
    assert len(BiasFrame.select(database=dpu.database, instrument="WFI")) == 2


# ---- retries ----
def test_a_task_that_died_is_retried_and_each_try_is_journalled(dpu: Processor) -> None:
    job_id = dpu.run("Flaky", k=1, C=1)
    (status,) = dpu.wait(job_id, timeout=TIMEOUT)
    assert status.counts["N"] == 2
    tasks = {t.key: t for t in tasks_of(dpu, job_id)}
    assert (tasks["c0"].state, tasks["c0"].reason) == (TaskState.N, None)
    logs = dpu.get_logs(job_id)[job_id]
    text = "\n".join(logs)
    assert "try 1 of c0" in text and "try 2 of c0" in text and "try 2 of c1" not in text
    assert "Try 1 ended A (killed by signal SIGKILL); retrying: try 2 of 3" in text
    frames = {f.chip: f.filename for f in dpu.get_job_result(job_id)}
    assert frames == {"c0": "flaky-c0-2.txt", "c1": "flaky-c1-1.txt"}  # the last try's only


@SQLITE_ONLY
def test_retries_run_out(dpu: Processor) -> None:
    job_id = dpu.run("Flaky", k=5)
    dpu.wait(job_id, timeout=TIMEOUT)
    tasks = {t.key: t for t in tasks_of(dpu, job_id)}
    assert (tasks["c0"].state, tasks["c0"].reason) == (TaskState.A, "killed by signal SIGKILL")
    assert tasks["c1"].state is TaskState.N
    text = "\n".join(dpu.get_logs(job_id)[job_id])
    assert text.count("retrying: try") == 2 and "try 3 of c0" in text and "try 4" not in text


@SQLITE_ONLY
def test_a_time_limit_is_never_retried(dpu: Processor) -> None:
    job_id = dpu.run("Sleepy", time_limit=0.5)
    dpu.wait(job_id, timeout=TIMEOUT)
    (task,) = tasks_of(dpu, job_id)
    assert (task.state, task.reason) == (TaskState.A, "TIMEOUT: over its time limit of 0.5 s")
    assert "retrying" not in "\n".join(dpu.get_logs(job_id)[job_id])


# ---- Ctrl-C while submitting ----
SUBMIT = """
import json, signal, sys
# Ctrl-C as at a terminal, whatever this test run inherited (a shell's background job
# starts with SIGINT ignored, and Python then installs no KeyboardInterrupt for it)
signal.signal(signal.SIGINT, signal.default_int_handler)
from awe.dpu import Processor
dpu = Processor(username="alice", dpus={"far": json.loads(sys.argv[1])}, dpu_name="far")
dpu.run("Hello", n=2)
"""


@SQLITE_ONLY
def test_ctrl_c_while_the_code_uploads_leaves_a_job_that_ends(
    dpu: Processor, database_url: str, sshd, tmp_path: Path
) -> None:
    marker = tmp_path / "submitting"
    # The DPU's set-up lines run before every remote command: the first one marks that the
    # submission is under way (the job is recorded), then stalls it as a slow upload would.
    far = sshd.dpu(tmp_path / "remote-work", setup=[f"touch {marker}", "sleep 60"])
    session = subprocess.Popen(
        [sys.executable, "-c", SUBMIT, json.dumps(far)],
        env={**os.environ, "AWE_DATABASE_URL": database_url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(marker.exists, what="the submission's first remote command")
        session.send_signal(signal.SIGINT)
        out, err = session.communicate(timeout=60)
    finally:
        session.kill()
    assert session.returncode != 0 and "KeyboardInterrupt" in err
    assert "was not started; its tasks end U" in out
    (job_id,) = dpu.get_jobids()
    tasks = assert_all_final(dpu, job_id)
    assert [(t.state, t.reason) for t in tasks] == [
        (TaskState.U, "never started: the submission was interrupted (KeyboardInterrupt)")
    ] * 2
    assert "submission was interrupted" in "\n".join(dpu.get_logs(job_id)[job_id])


# ---- ownership ----
@pytest.fixture
def other_account(mysql_database_url: str) -> Iterator[str]:
    """The test database's URL as another MariaDB account with full rights on it."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(mysql_database_url)
    name = f"awe_bob_{os.getpid()}"
    server = create_engine(url.set(database=""))
    with server.begin() as connection:
        connection.execute(text(f"CREATE USER '{name}'@'%' IDENTIFIED BY 'pw'"))
        connection.execute(text(f"GRANT ALL ON `{url.database}`.* TO '{name}'@'%'"))
    try:
        yield url.set(username=name, password="pw").render_as_string(hide_password=False)
    finally:
        with server.begin() as connection:
            connection.execute(text(f"DROP USER IF EXISTS '{name}'@'%'"))
        server.dispose()


def test_cancel_needs_the_submitting_database_account(
    awe_home: Path, mysql_database_url: str, other_account: str
) -> None:
    (awe_home / "sequences").mkdir(parents=True)
    shutil.copy(SEQUENCES, awe_home / "sequences" / "testing.py")
    alice = Processor(database_url=mysql_database_url, username="alice")
    job_id = alice.run("Hello", n=1, s=30.0)
    with alice.database.session() as session:
        account = session.get(Job, job_id).account
    assert account.startswith("root@")  # as the server authenticated the connection
    impostor = Processor(database_url=other_account, username="alice")  # claims her name
    refusal = f"through database account {account}, and this session is connected as awe_bob_"
    with pytest.raises(AweError, match=re.escape(refusal)):
        impostor.cancel_job(job_id)
    assert impostor.get_status(job_id)[0].state is not JobState.CANCELLED  # reading is open
    assert alice.cancel_job(job_id).state is JobState.CANCELLED


# ---- rerun ----
def test_rerun_runs_only_what_did_not_end_n(dpu: Processor, awe_home: Path, capsys) -> None:
    old = dpu.run("Fragile>Total", n=3, C=1)
    (status,) = dpu.wait(old, timeout=TIMEOUT)
    assert status.counts == {"N": 2, "E": 1, "A": 0, "S": 1, "U": 0}
    (awe_home / "fixed").write_text("")
    new = dpu.rerun(old)
    assert f"Rerunning job {old} as job {new}: 2 of 4 tasks" in capsys.readouterr().out
    (status,) = dpu.wait(new, timeout=TIMEOUT)
    assert status.counts == {"N": 2, "E": 0, "A": 0, "S": 0, "U": 0}
    assert status.rerun_of == old and status.line().endswith(f"(rerun of job {old})")
    assert [t.name for t in tasks_of(dpu, new)] == ["Fragile[c1]", "Total"]
    ran = {key: (awe_home / f"ran-{key}").read_text() for key in ("c0", "c1", "c2")}
    assert ran == {"c0": "x", "c1": "xx", "c2": "x"}  # the N tasks did not run again
    logs = "\n".join(dpu.get_logs(new)[new])
    assert "upstream products: 3" in logs  # two reused from the old job, one new
    with dpu.database.session() as session:
        before, after = session.get(Job, old), session.get(Job, new)
        same = ("sequence", "options", "parameters", "code_snapshot_id", "commit", "dpu_name")
        assert all(getattr(before, name) == getattr(after, name) for name in same)
    from awe.db.frames import BiasFrame

    frames = BiasFrame.select(database=dpu.database, instrument="WFI")
    assert sorted((f.chip, f.job_id) for f in frames) == [("c0", old), ("c1", new), ("c2", old)]


@SQLITE_ONLY
def test_rerun_refuses_what_it_cannot_do(dpu: Processor) -> None:
    fine = dpu.run("Hello", n=1)
    dpu.wait(fine, timeout=TIMEOUT)
    with pytest.raises(AweError, match=f"every task of job {fine} ended N; there is nothing"):
        dpu.rerun(fine)
    running = dpu.run("Hello", n=1, s=30.0)
    with pytest.raises(AweError, match=f"job {running} is still (QUEUED|RUNNING); rerun it"):
        dpu.rerun(running)
    dpu.cancel_job(running)
    with pytest.raises(AweError, match="no job with identifier 4242"):
        dpu.rerun(4242)


@SQLITE_ONLY
def test_awe_dpu_rerun_status_logs_and_cancel_commands(
    dpu: Processor, database_url: str, awe_home: Path
) -> None:
    old = dpu.run("Fragile", n=2)
    dpu.wait(old, timeout=TIMEOUT)
    (awe_home / "fixed").write_text("")
    env = {**os.environ, "AWE_DATABASE_URL": database_url, "AWE_USERNAME": "alice"}

    def awe(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "awe.cli", "dpu", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    (new,) = re.findall(rf"Rerunning job {old} as job (\d+): 1 of 2 tasks", awe("rerun", str(old)))
    (status,) = dpu.wait(int(new), timeout=TIMEOUT)
    assert status.counts["N"] == 1
    shown = awe("status", new)
    assert f"Jobid {new} has status FINISHED N/E/A/S/U 1/0/0/0/0 (rerun of job {old})" in shown
    assert f"++++ Job {new} task Fragile[c1]" in awe("logs", new)
    long = dpu.run("Hello", n=1, s=30.0)
    assert f"Cancelled job {long}: Jobid {long} has status CANCELLED" in awe("cancel", str(long))


# ---- stopped tasks, full disks ----
@SQLITE_ONLY
def test_a_stopped_task_past_its_time_limit_ends_a(dpu: Processor, awe_home: Path) -> None:
    job_id = dpu.run("Hello", n=2, s=60.0, time_limit=3.0)
    victim = int(wait_for_file(awe_home / f"pid-{job_id}-c0"))
    os.kill(victim, signal.SIGSTOP)  # stopped, it can neither finish nor notice anything
    (status,) = dpu.wait(job_id, timeout=TIMEOUT)
    tasks = assert_all_final(dpu, job_id)
    assert {(t.state, t.reason) for t in tasks} == {
        (TaskState.A, "TIMEOUT: over its time limit of 3 s")
    }
    assert not alive(victim)


@pytest.fixture
def full_disk_jobs(awe_home: Path) -> Iterator[Path]:
    """The local DPU's job folder on a 2 MiB tmpfs of its own."""
    jobs = awe_home / "jobs"
    jobs.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(jobs)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a small tmpfs (needs root): {mounted.stderr.strip()}")
    try:
        yield jobs
    finally:
        subprocess.run(["umount", "--lazy", str(jobs)], check=True)


@SQLITE_ONLY
def test_a_full_disk_ends_the_task_and_the_job_is_followed(
    dpu: Processor, full_disk_jobs: Path
) -> None:
    job_id = dpu.run("FillDisk>Total")
    (status,) = dpu.wait(job_id, timeout=TIMEOUT)
    assert status.state is JobState.FINISHED
    fill, total = assert_all_final(dpu, job_id)
    assert fill.state in (TaskState.E, TaskState.A) and "No space left on device" in fill.reason
    assert (total.state, total.reason) == (TaskState.S, "FillDisk ended E")
    logs = "\n".join(dpu.get_logs(job_id)[job_id])
    assert "OSError: [Errno 28] No space left on device" in logs


# ---- racing sessions ----
def _cancel_at(url: str, home: str, job_id: int, start: float) -> str:
    os.environ["AWE_HOME"] = home
    dpu = Processor(database_url=url, username="alice", session_log="")
    assert dpu.get_jobids()
    time.sleep(max(0.0, start - time.time()))
    try:
        return dpu.cancel_job(job_id).state.value
    except Exception as err:  # noqa: BLE001 - the failure is what the test reports
        return f"{type(err).__name__}: {err}"


def test_two_sessions_cancel_the_same_job_while_it_finishes(
    dpu: Processor, database_url: str, awe_home: Path
) -> None:
    from concurrent.futures import ProcessPoolExecutor

    job_id = dpu.run("Hello", n=4, s=1.0)
    wait_for_file(awe_home / f"pid-{job_id}-c1")
    start = time.time() + 0.8  # as the first two tasks end and the last two start
    with ProcessPoolExecutor(2) as pool:
        call = (_cancel_at, database_url, str(awe_home), job_id, start)
        calls = [pool.submit(*call) for _ in range(2)]
        outcomes = [call.result() for call in calls]
    assert set(outcomes) <= {"CANCELLED", "FINISHED"}, outcomes
    tasks = assert_all_final(dpu, job_id)
    assert len(tasks) == 4
    with dpu.database.session() as session:
        ended = session.execute(
            select(LogRecord.task_id, func.count())
            .where(LogRecord.job_id == job_id, LogRecord.message.like("Task ended%"))
            .group_by(LogRecord.task_id)
        ).all()
    assert sorted(count for _, count in ended) == [1, 1, 1, 1]  # each end recorded once


def _submit_at(url: str, home: str, start: float) -> int:
    os.environ["AWE_HOME"] = home
    dpu = Processor(database_url=url, username="alice", session_log="")
    dpu.get_jobids()  # connected (and the schema checked) before the start line
    time.sleep(max(0.0, start - time.time()))
    return dpu.run("Total")


def test_twenty_processes_submitting_at_once(dpu, database_url, awe_home) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    start = time.time() + 3.0
    fork = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(20, mp_context=fork) as pool:
        calls = [pool.submit(_submit_at, database_url, str(awe_home), start) for _ in range(20)]
        ids = [call.result() for call in calls]
    assert len(set(ids)) == 20  # none lost, none given twice
    assert sorted(dpu.get_jobids()) == sorted(ids)
    statuses = dpu.wait(ids, timeout=TIMEOUT)
    assert all(s.state is JobState.FINISHED and s.counts["N"] == 1 for s in statuses)
    with dpu.database.session() as session:
        assert session.scalar(select(func.count()).select_from(Task)) == 20


# ---- the database server restarts ----
@pytest.fixture
def private_mariadb(tmp_path: Path) -> Iterator[PrivateMariaDB]:
    server = PrivateMariaDB(tmp_path / "mariadb")
    try:
        yield server
    finally:
        server.stop()


def test_mariadb_restarted_in_the_middle_of_a_job(
    awe_home: Path, private_mariadb: PrivateMariaDB
) -> None:
    (awe_home / "sequences").mkdir(parents=True)
    shutil.copy(SEQUENCES, awe_home / "sequences" / "testing.py")
    dpu = Processor(database_url=f"{private_mariadb.url}/awe_faults", username="alice")
    job_id = dpu.run("Hello", n=3, s=2.0)
    dpu.get_status(job_id)
    private_mariadb.stop()
    try:
        where = f"127.0.0.1:{private_mariadb.port}"
        with pytest.raises(
            DatabaseError, match=f"cannot reach the database at {where}.*Jobs go on"
        ):
            dpu.get_status(job_id)
    finally:
        private_mariadb.start()
    (status,) = dpu.wait(job_id, timeout=TIMEOUT)  # the session reconnects by itself
    assert status.counts == {"N": 3, "E": 0, "A": 0, "S": 0, "U": 0}
    assert_all_final(dpu, job_id)
    with dpu.database.session() as session:
        ended = session.scalar(
            select(func.count()).where(
                LogRecord.job_id == job_id, LogRecord.message == "Task ended N"
            )
        )
    assert ended == 3  # nothing folded twice across the outage


def test_a_rerun_plan_renumbers_and_hands_on_products() -> None:
    from awe.dpu.rerun import plan_rerun

    def task(number: int, depends_on: list[int]) -> dict:
        return {"number": number, "name": f"t{number}", "depends_on": depends_on}

    old = {"job_id": 7, "tasks": [task(0, []), task(1, []), task(2, [0, 1]), task(3, [2])]}
    made = {0: [{"path": "/p0", "sha256": "a"}]}
    plan = plan_rerun(old, {0: "N", 1: "E", 2: "S", 3: "S"}, made)
    assert plan.numbers == [1, 2, 3]
    assert [(t["name"], t["number"], t["depends_on"]) for t in plan.description["tasks"]] == [
        ("t1", 0, []),
        ("t2", 1, [0]),
        ("t3", 2, [1]),
    ]
    upstream = [t["reused_upstream"] for t in plan.description["tasks"]]
    assert upstream == [[], made[0], []]  # t2 keeps t0's product, which does not run again
    again = plan_rerun(plan.description, {0: "N", 1: "E", 2: "S"}, {0: [{"path": "/p1"}]})
    assert again.description["tasks"][0]["reused_upstream"] == [*made[0], {"path": "/p1"}]


def test_a_rerun_runs_a_tolerant_task_again_with_what_it_went_without() -> None:
    """CCD 1 failed, the exposure step (tolerant) went on with CCD 0: rerunning CCD 1 runs
    the exposure step again, with CCD 0's product handed on; CCD 0 is not run again."""
    from awe.dpu.rerun import plan_rerun

    old = {
        "job_id": 8,
        "tasks": [
            {"number": 0, "name": "ccd0", "depends_on": []},
            {"number": 1, "name": "ccd1", "depends_on": []},
            {"number": 2, "name": "exposure", "depends_on": [0, 1], "tolerant": True},
        ],
    }
    made = {0: [{"path": "/ccd0"}], 2: [{"path": "/exposure"}]}
    plan = plan_rerun(old, {0: "N", 1: "E", 2: "N"}, made)
    assert plan.numbers == [1, 2]
    exposure = plan.description["tasks"][1]
    assert (exposure["depends_on"], exposure["reused_upstream"]) == ([0], made[0])
    # without tolerance the N exposure step would have stayed as it was
    old["tasks"][2].pop("tolerant")
    assert plan_rerun(old, {0: "N", 1: "E", 2: "N"}, made).numbers == [1]


def test_a_runner_just_spawned_is_never_taken_for_gone(tmp_path: Path) -> None:
    """Popen returns while the kernel is still in exec: for that moment the new process's
    command line reads empty. Taken for a stranger's, a sync ended the job's tasks U and
    killed the runner (seen: 5 of 80 tiny jobs on 2 busy cores); it is read again."""
    from awe.dpu.remote.agent import runs_runner
    from awe.dpu.remote.commands import spawn_detached

    job_dir = str(tmp_path)
    argv = [sys.executable, "-c", "import time; time.sleep(30)", "-m", "awe.dpu.runner", job_dir]
    missed = 0
    for _ in range(100):
        pid = spawn_detached(argv, str(tmp_path / "log"), {}, job_dir)
        try:
            missed += not runs_runner(pid, job_dir)
        finally:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    assert missed == 0
