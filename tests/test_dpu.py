"""The local DPU for real: detached runners, forked task processes, journals synced into
SQLite and MariaDB, cancel, crashes, time limits, and sessions that come and go."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from awe.db.models import Job, JobState, Task, TaskState
from awe.dpu import Processor
from awe.dpu.pars import Pars
from awe.errors import AweError
from tests.grouped import GROUPED_CHAIN, check_grouped_job

SEQUENCES = Path(__file__).parent / "sequences" / "testing.py"
TIMEOUT = 120
WORKERS = 2


@pytest.fixture
def dpu(awe_home: Path, database_url: str) -> Processor:
    """alice's Processor on a fresh database, with the test sequences registered the way a
    user registers her own: a file in $AWE_HOME/sequences/."""
    (awe_home / "sequences").mkdir(parents=True)
    shutil.copy(SEQUENCES, awe_home / "sequences" / "testing.py")
    processor = Processor(database_url=database_url, username="alice")
    # Two tasks at a time whatever the machine's cores: the estimates, the number of tasks
    # running when a test cancels or kills, and the outcomes below count on it.
    processor.backend("local").workers = WORKERS
    return processor


def tasks_of(dpu: Processor, job_id: int) -> list[Task]:
    with dpu.database.session() as session:
        return list(
            session.scalars(select(Task).where(Task.job_id == job_id).order_by(Task.number))
        )


def wait_for_file(path: Path, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)
    return path.read_text()


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


# ---- sequences and options ----
def test_sequences_and_their_options(dpu: Processor, capsys) -> None:
    identifiers = dpu.get_sequence_identifiers()
    assert {"Hello", "Total", "Outcomes"} <= set(identifiers)
    assert dpu.get_sequence_options("Hello") == [
        "n",
        "s",
        "o",
        "p",
        "C",
        "count",
        "sleep",
        "object",
        "pars",
        "commit",
    ]
    options = dpu.show_sequence_options("Hello")
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "Recognized options for the OptionsParser are:"
    assert printed[1].startswith('"n" or "count" (default: 3)')
    assert '"C" or "commit" (default: 0)' in printed[-1]
    assert [o.long for o in options] == ["count", "sleep", "object", "pars", "commit"]
    assert dpu.show_sequence_identifiers() == identifiers
    assert (
        "Hello : Greet each chip and write a small product. [per chip]" in capsys.readouterr().out
    )


@pytest.mark.parametrize(
    ("sequence", "options", "message"),
    [
        ("Helo", {}, "Unknown sequence 'Helo'. Did you mean 'Hello'"),
        ("Hello", {"x": 1}, "Unknown option 'x' for Hello.*Valid options: n, s, o, p, C, count"),
        ("Hello", {"count": "three"}, "option 'n'/'count' expects int, got str 'three'"),
        ("Hello", {"n": 1, "count": 2}, "given twice"),
        ("NeedsInstrument", {}, "needs option 'i' or 'instrument'"),
        ("Hello>PerExposure", {}, "steps of 'Hello>PerExposure' disagree"),
        ("Hello>", {}, "empty step"),
        (
            "Hello",
            {"p": {"Hello.process_params.GRETING": "x"}},
            "Did you mean 'Hello.process_params.GREETING'",
        ),
        ("Hello", {"p": {"Hello.process_params.GREETING": 5}}, "expects str"),
        ("Hello", {"C": 2}, "is 0 or 1"),
        ("FindsNothing", {"i": "WFI"}, "nothing to process.*instrument=WFI"),
        ("Hello", {"p": "SIGMA=3"}, "option .p./.pars. expects dict"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_queued(dpu, sequence, options, message) -> None:
    with pytest.raises(AweError, match=message):
        dpu.run(sequence, **options)
    assert dpu.get_jobids() == []


def test_pars_shows_and_checks_process_parameters(dpu: Processor, capsys) -> None:
    pars = Pars("Hello", dpu=dpu)
    pars.Hello.process_params.GREETING = "Moin"
    assert pars.get() == {"Hello.process_params.GREETING": "Moin"}
    assert pars.show() == ["Hello", "    process_params", "        GREETING : 'Moin'"]
    with pytest.raises(AttributeError, match="no process parameter 'Hello.nothing'"):
        pars.Hello.nothing  # noqa: B018
    with pytest.raises(AweError, match="expects str"):
        pars.Hello.process_params.GREETING = 3
    job_id = dpu.run("Hello", n=1, p=pars.get())
    dpu.wait(job_id, timeout=TIMEOUT)
    assert any("Moin from c0" in line for line in dpu.get_logs(job_id)[job_id])


# ---- running ----
def test_a_chain_runs_in_order_with_logs_products_and_provenance(dpu, capsys, tmp_path) -> None:
    job_id = dpu.run("Hello>Total", n=3, o="M31")
    printed = capsys.readouterr().out.splitlines()
    assert re.fullmatch(
        r"\[alice\] \d\d:\d\d:\d\d - Calling: Hello>Total\(count=3, sleep=0\.0, object=M31\)",
        printed[0],
    )
    assert printed[1].endswith("Estimated process time : 4 seconds")  # (3*2 + 1) / 2 workers
    assert printed[2].endswith(f"Sending job with identifier {job_id} to DPU")

    (status,) = dpu.wait(job_id, timeout=TIMEOUT)
    assert status.state is JobState.FINISHED
    assert status.counts == {"N": 4, "E": 0, "A": 0, "S": 0, "U": 0}
    (line,) = [s.line() for s in dpu.get_status(job_id)]
    assert line == f"Jobid {job_id} has status FINISHED N/E/A/S/U 4/0/0/0/0"

    tasks = tasks_of(dpu, job_id)
    hello, total = tasks[:3], tasks[3]
    assert [t.key for t in hello] == ["c0", "c1", "c2"] and total.key is None
    assert total.started_at >= max(t.finished_at for t in hello)  # the graph held
    for task in tasks:
        assert task.host and task.pid and task.duration is not None and task.duration >= 0
    with dpu.database.session() as session:
        job = session.get(Job, job_id)
        assert len(job.code_snapshot_id) == 64
        assert job.options == {"count": 3, "sleep": 0.0, "object": "M31"}
        assert job.started_at <= job.finished_at

    logs = dpu.get_logs(job_id)[job_id]
    assert all(re.match(r"\d\d:\d\d:\d\d - ", line) for line in logs)
    text = "\n".join(logs)
    for expected in [
        "Hello from c1",
        "on stdout: M31",
        "on stderr",
        "Product HelloFile:",
        "upstream products: 3",
        "Task ended N",
    ]:
        assert expected in text
    log_file = next(tmp_path.glob("*.log")).read_text()
    assert f"Sending job with identifier {job_id} to DPU" in log_file
    assert "Hello from c1" in log_file


def test_every_outcome_costs_only_its_own_task(dpu: Processor) -> None:
    job_id = dpu.run("Outcomes")
    (status,) = dpu.wait(job_id, timeout=TIMEOUT)
    assert status.counts == {"N": 1, "E": 1, "A": 2, "S": 1, "U": 0}
    reasons = {t.key: (t.state, t.reason) for t in tasks_of(dpu, job_id)}
    assert reasons["fail"] == (TaskState.E, "ValueError: this chip is broken")
    assert reasons["exit"] == (TaskState.A, "exited with code 3 without reporting a result")
    assert reasons["segfault"] == (TaskState.A, "killed by signal SIGSEGV")
    assert reasons["skip"] == (TaskState.S, "nothing to do: already done")
    logs = "\n".join(dpu.get_logs(job_id)[job_id])
    assert "Traceback (most recent call last)" in logs and "ValueError: this chip is broken" in logs


def test_a_failed_dependency_skips_what_waits_for_it(dpu: Processor) -> None:
    job_id = dpu.run("Fail>Total")
    (status,) = dpu.wait(job_id, timeout=TIMEOUT)
    fail, total = tasks_of(dpu, job_id)
    assert (fail.state, total.state) == (TaskState.E, TaskState.S)
    assert total.reason == "Fail ended E" and total.started_at is None


def test_a_tolerant_step_goes_on_with_what_did_not_fail(dpu: Processor) -> None:
    """A tolerant step (an exposure's after its CCDs) runs when some of what it waits for
    failed, and is skipped only when all of it did."""
    job_id = dpu.run("Outcomes>Survivors")
    dpu.wait(job_id, timeout=TIMEOUT)
    survivors = tasks_of(dpu, job_id)[-1]
    assert survivors.state is TaskState.N, survivors.reason
    job_id = dpu.run("Fail>Survivors")
    dpu.wait(job_id, timeout=TIMEOUT)
    fail, survivors = tasks_of(dpu, job_id)
    assert (fail.state, survivors.state) == (TaskState.E, TaskState.S)
    assert survivors.reason == "every task it waits for failed: Fail ended E"


def test_time_limit_aborts_the_task(dpu: Processor) -> None:
    job_id = dpu.run("Hello", n=1, s=60.0, time_limit=0.5)
    (status,) = dpu.wait(job_id, timeout=TIMEOUT)
    (task,) = tasks_of(dpu, job_id)
    assert task.state is TaskState.A
    assert task.reason == "TIMEOUT: over its time limit of 0.5 s"
    assert task.duration < 30


def test_kill_9_of_one_worker_costs_that_task_alone(dpu: Processor, awe_home: Path) -> None:
    job_id = dpu.run("Hello", n=3, s=1.5)
    victim = int(wait_for_file(awe_home / f"pid-{job_id}-c0"))
    os.kill(victim, signal.SIGKILL)
    dpu.wait(job_id, timeout=TIMEOUT)
    states = {t.key: (t.state, t.reason) for t in tasks_of(dpu, job_id)}
    assert states == {
        "c0": (TaskState.A, "killed by signal SIGKILL"),
        "c1": (TaskState.N, None),
        "c2": (TaskState.N, None),
    }


def test_cancel_stops_running_and_skips_queued(dpu: Processor, awe_home: Path) -> None:
    job_id = dpu.run("Hello", n=5, s=60.0)
    running = [int(wait_for_file(awe_home / f"pid-{job_id}-c{i}")) for i in (0, 1)]
    status = dpu.cancel_job(job_id)
    assert status.state is JobState.CANCELLED
    assert status.counts == {"N": 0, "E": 0, "A": 2, "S": 3, "U": 0}
    with dpu.database.session() as session:  # confirmed in the database on return
        assert session.get(Job, job_id).state is JobState.CANCELLED
    assert not any(alive(pid) for pid in running)
    time.sleep(0.5)  # give a wrongly surviving runner the chance to start a queued task
    assert not any((awe_home / f"pid-{job_id}-c{i}").exists() for i in (2, 3, 4))
    again = dpu.cancel_job(job_id)
    assert again.state is JobState.CANCELLED


def test_cancel_of_a_finished_job_says_so(dpu: Processor, capsys) -> None:
    job_id = dpu.run("Total")
    dpu.wait(job_id, timeout=TIMEOUT)
    capsys.readouterr()
    status = dpu.cancel_job(job_id)
    assert status.state is JobState.FINISHED
    assert f"Jobid {job_id} has already FINISHED; nothing to cancel" in capsys.readouterr().out


def test_only_the_owner_may_cancel(dpu: Processor, database_url: str) -> None:
    job_id = dpu.run("Hello", n=1, s=5.0)
    bob = Processor(database_url=database_url, username="bob")
    with pytest.raises(AweError, match=f"job {job_id} belongs to alice; only its owner"):
        bob.cancel_job(job_id)
    assert bob.get_status(job_id)[0].state is not JobState.CANCELLED  # everyone may read
    dpu.cancel_job(job_id)


def test_unknown_job_ids_are_clear_errors(dpu: Processor) -> None:
    for call in (dpu.get_status, dpu.get_logs, dpu.cancel_job):
        with pytest.raises(AweError, match="no job with identifier 424242"):
            call(424242)


def test_wait_with_timeout_raises_and_the_job_goes_on(dpu: Processor) -> None:
    job_id = dpu.run("Hello", n=1, s=3.0)
    with pytest.raises(TimeoutError, match=f"jobs \\[{job_id}\\] not finished after 0.2 s"):
        dpu.wait(job_id, timeout=0.2)
    (status,) = dpu.wait(job_id, timeout=TIMEOUT)
    assert status.counts["N"] == 1


def test_a_dead_runner_leaves_no_task_running(dpu: Processor, awe_home: Path) -> None:
    job_id = dpu.run("Hello", n=4, s=60.0)
    task_pid, _ = [int(wait_for_file(awe_home / f"pid-{job_id}-c{i}")) for i in range(WORKERS)]
    runner_pid = int(
        __import__("json").loads((awe_home / "jobs" / str(job_id) / "runner.json").read_text())[
            "pid"
        ]
    )
    os.kill(runner_pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while dpu.backend().runner_alive(str(awe_home / "jobs" / str(job_id))):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    (status,) = dpu.get_status(job_id)
    assert status.running == 0 and status.queued == 0 and status.is_final
    assert status.counts["A"] == 2 and status.counts["U"] == 2
    assert not alive(task_pid)  # the orphaned task was stopped too
    reasons = {t.reason for t in tasks_of(dpu, job_id)}
    assert reasons == {
        "lost: the job's runner is gone",
        "never started: lost: the job's runner is gone",
    }


# ---- sessions that come and go ----
def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, **env},
        check=True,
    )


def test_a_job_outlives_the_session_that_submitted_it(dpu: Processor, database_url: str) -> None:
    submitted = run_python(
        """
        from awe.dpu import Processor
        print(Processor(username="alice").run("Hello", n=2, s=0.5))
        """,
        AWE_DATABASE_URL=database_url,
    )
    job_id = int(submitted.stdout.strip().splitlines()[-1])
    later = Processor(database_url=database_url, username="alice")  # a new session
    assert job_id in later.get_jobids()
    (status,) = later.wait(job_id, timeout=TIMEOUT)
    assert status.counts["N"] == 2


def _submit_many(url: str, home: str, count: int) -> list[int]:
    os.environ["AWE_HOME"] = home
    dpu = Processor(database_url=url, username="alice", session_log="")
    return [dpu.run("Total") for _ in range(count)]


def test_two_processes_submitting_at_once(dpu: Processor, database_url: str, awe_home) -> None:
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(2) as pool:
        batches = list(pool.map(_submit_many, [database_url] * 2, [str(awe_home)] * 2, [50, 50]))
    ids = batches[0] + batches[1]
    assert len(set(ids)) == 100
    statuses = dpu.wait(ids, timeout=600)
    assert all(s.counts["N"] == 1 and s.state is JobState.FINISHED for s in statuses)
    with dpu.database.session() as session:
        assert len(session.scalars(select(Task).where(Task.job_id.in_(ids))).all()) == 100


def test_the_documented_example_sequence_runs(dpu: Processor, awe_home: Path) -> None:
    text = (Path(__file__).parents[1] / "docs" / "sequences.md").read_text()
    code = re.search(r"Save this as .*?```python\n(.*?)```", text, re.S).group(1)
    (awe_home / "sequences" / "noise.py").write_text(code)
    assert dpu.get_sequence_options("MakeNoise") == [
        "n",
        "z",
        "p",
        "C",
        "chips",
        "seed",
        "pars",
        "commit",
    ]
    pars = Pars("MakeNoise", dpu=dpu)
    pars.NoiseFrame.process_params.SIGMA = 3.0
    job_id = dpu.run("MakeNoise>MeasureNoise", n=4, p=pars.get())
    (status,) = dpu.wait(job_id, timeout=TIMEOUT)
    assert status.counts["N"] == 5
    measured = [
        float(m)
        for m in re.findall(
            r"ccd\d: measured sigma ([\d.]+)", "\n".join(dpu.get_logs(job_id)[job_id])
        )
    ]
    assert len(measured) == 4
    assert all(abs(sigma - 3.0) / 3.0 < 0.02 for sigma in measured)


PRELOADED = """
import sys

from awe.sequence import sequence


@sequence(preload=["xml.dom.minidom", "no_such_module_here"])
def Warm(task):
    task.log.info("minidom imported before the task: %s", "xml.dom.minidom" in sys.modules)
"""


def test_preloaded_modules_are_imported_before_the_tasks_fork(dpu, awe_home) -> None:
    (awe_home / "sequences" / "warm.py").write_text(PRELOADED)
    job_id = dpu.run("Warm")
    (status,) = dpu.wait(job_id, timeout=TIMEOUT)
    assert status.counts["N"] == 1  # a module that does not import is no runner failure
    assert "minidom imported before the task: True" in "\n".join(dpu.get_logs(job_id)[job_id])


def test_built_in_diagnose_reports_the_worker(dpu: Processor) -> None:
    assert "Diagnose" in dpu.get_sequence_identifiers()
    job_id = dpu.run("Diagnose")
    dpu.wait(job_id, timeout=TIMEOUT)
    text = "\n".join(dpu.get_logs(job_id)[job_id])
    assert f"Python: {sys.version.split()[0]}" in text
    assert "numpy: " in text and "Cores: " in text


def test_commit_puts_products_in_the_store_with_provenance(dpu: Processor, awe_home) -> None:
    from awe.data.store import DataStore
    from awe.db.frames import BiasFrame

    plain = dpu.run("MakeBias", i="WFI")
    dpu.wait(plain, timeout=TIMEOUT)
    assert dpu.get_job_result(plain) == []  # no C=1, nothing committed

    job_id = dpu.run("MakeBias", i="WFI", C=1, p={"BiasFrame.process_params.SIGMA_CLIP": 5.0})
    dpu.wait(job_id, timeout=TIMEOUT)
    frames = dpu.get_job_result(job_id)
    assert sorted(f.chip for f in frames) == ["ccd50", "ccd51"]
    store = DataStore(dpu.env.data_root)
    for frame in frames:
        assert isinstance(frame, BiasFrame) and frame.instrument == "WFI"
        assert str(frame.night) == "2000-04-28" and frame.results == {"level": 400.0}
        assert frame.job_id == job_id and frame.process_params == {
            "BiasFrame.process_params.SIGMA_CLIP": 5.0
        }
        assert len(frame.code_snapshot_id) == 64
        assert store.read(frame.sha256) == f"bias {frame.chip} clip 5.0\n".encode()
    logs = "\n".join(dpu.get_logs(job_id)[job_id])
    assert "Committed BiasFrame bias_ccd50.txt" in logs
    assert "not committed: 'Scribble' is not a frame type" in logs

    again = dpu.run("MakeBias", i="WFI", C=1, p={"BiasFrame.process_params.SIGMA_CLIP": 5.0})
    dpu.wait(again, timeout=TIMEOUT)
    assert [f.id for f in dpu.get_job_result(again)] == [f.id for f in frames]  # no duplicates
    assert len(BiasFrame.select(database=dpu.database, instrument="WFI")) == 2


# ---- per chip, then per exposure, then per chip ----
def test_chips_then_exposures_then_chips_wait_for_their_own_group(dpu: Processor) -> None:
    check_grouped_job(dpu, dpu.run(GROUPED_CHAIN, n=2))


def test_a_chip_without_its_exposure_is_a_clear_error(dpu: Processor) -> None:
    with pytest.raises(AweError, match=r"Hello\[c0\].*has no task in ExposureWhole"):
        dpu.run("ExposureWhole>Hello")
    with pytest.raises(AweError, match="steps of 'Hello>ExposureWhole' disagree"):
        dpu.run("Hello>ExposureWhole")
    assert dpu.get_jobids() == []
