"""The Slurm DPU against the real single-node Slurm of ``tests/services/slurm.sh``: batch
scripts, afterok dependencies, Slurm's own time and memory limits, cancel checked with
squeue, a 62-chip fan-out, and slurmctld going away in the middle of a job.

Slurm is not optional: when it is down the tests fail and name the command that starts it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from awe.db.models import Job, JobState, Task, TaskState
from awe.dpu import Processor
from awe.dpu.backends.slurm import SlurmBackend, SlurmScheduler, judge
from awe.dpu.backends.slurm_arrays import plan_submissions
from awe.dpu.backends.slurm_script import slurm_time
from awe.dpu.remote import slurm_agent
from awe.errors import AweError
from tests.grouped import GROUPED_CHAIN, check_grouped_job

SEQUENCES = Path(__file__).parent / "sequences"
SLURM_SCRIPT = Path(__file__).parent / "services" / "slurm.sh"
START = "bash tests/services/start.sh (or bash tests/services/slurm.sh)"
TIMEOUT = 300


def slurm_command(*argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def slurm() -> str:
    """The name of the Slurm node; fails loudly when slurmctld or the node is down."""
    try:
        ping = slurm_command("scontrol", "ping")
        node = slurm_command("sinfo", "--noheader", "--format=%n %T")
    except (FileNotFoundError, subprocess.TimeoutExpired) as err:
        pytest.fail(f"Slurm is not installed or not answering ({err}). Start it: {START}")
    if "UP" not in ping.stdout or not node.stdout.strip():
        pytest.fail(
            f"slurmctld is not up ({ping.stdout.strip() or ping.stderr.strip()}). Start it: "
            f"{START}",
            pytrace=False,
        )
    name, state = node.stdout.split()[:2]
    if state.rstrip("*") not in ("idle", "mixed", "allocated", "completing"):
        pytest.fail(f"Slurm node {name} is {state}. Start it: {START}", pytrace=False)
    return name


def cluster(work_dir: Path, **slurm: object) -> dict[str, dict[str, object]]:
    """A Slurm DPU on this machine."""
    settings = {"memory": "200M", **slurm}
    return {
        "cluster": {
            "scheduler": "slurm",
            "work_dir": str(work_dir),
            "command_timeout": 30.0,
            # this slurmctld is the tests' own: asked twice as often as a real one would be
            "poll_interval": 0.5,
            "slurm": settings,
        }
    }


def make_dpu(awe_home: Path, database_url: str, work_dir: Path, **slurm: object) -> Processor:
    """alice's Processor sending jobs to the Slurm DPU, with the test sequences registered."""
    (awe_home / "sequences").mkdir(parents=True, exist_ok=True)
    for name in ("testing.py", "slurm.py"):
        shutil.copy(SEQUENCES / name, awe_home / "sequences" / name)
    return Processor(
        database_url=database_url,
        username="alice",
        dpus=cluster(work_dir, **slurm),
        dpu_name="cluster",
    )


@pytest.fixture
def dpu(slurm: str, awe_home: Path, database_url: str, tmp_path: Path) -> Processor:
    return make_dpu(awe_home, database_url, tmp_path / "cluster")


def tasks_of(dpu: Processor, job_id: int) -> list[Task]:
    with dpu.database.session() as session:
        return list(
            session.scalars(select(Task).where(Task.job_id == job_id).order_by(Task.number))
        )


def job_dir(dpu: Processor, job_id: int) -> Path:
    with dpu.database.session() as session:
        return Path(session.get(Job, job_id).work_dir)


def slurm_ids(dpu: Processor, job_id: int) -> dict[int, str]:
    record = json.loads((job_dir(dpu, job_id) / slurm_agent.SLURM_FILE).read_text())
    return {int(number): slurm_id for number, slurm_id in record["tasks"].items()}


def squeue_rows(ids: list[str], fields: str) -> list[list[str]]:
    """squeue's lines for the given Slurm ids (an element's id asks for its whole array),
    one per array element, split at ``|``."""
    bases = ",".join(dict.fromkeys(i.split("_")[0] for i in ids))
    done = slurm_command(
        "squeue", "--noheader", "--array", "--states=all", f"--jobs={bases}", f"--format={fields}"
    )
    return [line.split("|") for line in done.stdout.splitlines() if line.strip()]


def squeue(ids: list[str], fields: str = "%i|%T|%r") -> dict[str, list[str]]:
    return {row[0]: row[1:] for row in squeue_rows(ids, fields)}


def wait_for_file(path: Path, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)
    return path.read_text()


# ---- without a cluster ----
def test_time_limits_in_slurms_format() -> None:
    assert slurm_time(1) == "0-00:01:00"
    assert slurm_time(60) == "0-00:01:00"
    assert slurm_time(61) == "0-00:02:00"
    assert slurm_time(3660) == "0-01:01:00"
    assert slurm_time(2 * 86400 + 1) == "2-00:01:00"
    with pytest.raises(AweError, match="must be positive"):
        slurm_time(0)


@pytest.mark.parametrize(
    ("slurm_state", "reason", "was", "expected"),
    [
        ("PENDING", "Resources", "QUEUED", None),
        ("RUNNING", "None", "RUNNING", None),
        ("COMPLETING", "None", "RUNNING", None),
        ("TIMEOUT", "TimeLimit", "RUNNING", ("A", "TIMEOUT: over its Slurm time limit")),
        ("OUT_OF_MEMORY", "OutOfMemory", "RUNNING", ("A", "OUT_OF_MEMORY: over its Slurm")),
        ("NODE_FAIL", "NodeDown", "RUNNING", ("A", "NODE_FAIL: its node failed (NodeDown)")),
        ("CANCELLED", "None", "RUNNING", ("A", "CANCELLED in Slurm")),
        ("CANCELLED", "None", "QUEUED", ("S", "CANCELLED in Slurm before it started")),
        ("PREEMPTED", "None", "RUNNING", ("A", "PREEMPTED by Slurm")),
        ("DEADLINE", "None", "RUNNING", ("A", "DEADLINE: past its Slurm deadline")),
        ("CANCELLED", "DependencyNeverSatisfied", "QUEUED", ("S", "a task it depends on")),
        ("PENDING", "DependencyNeverSatisfied", "QUEUED", ("S", "a task it depends on")),
        ("COMPLETED", "None", "RUNNING", ("U", "its Slurm job completed but its journal")),
    ],
)
def test_slurm_states_become_outcomes(slurm_state, reason, was, expected) -> None:
    outcome = judge(slurm_state, reason, "0:0", was)
    if expected is None:
        assert outcome is None
    else:
        assert outcome[0] == expected[0] and outcome[1].startswith(expected[1])


def test_steps_become_arrays_where_slurm_can_say_their_dependencies() -> None:
    def task(number: int, step: int, *waits: int) -> dict[str, object]:
        return {"number": number, "step": step, "depends_on": list(waits)}

    chips = [task(n, 0) for n in range(4)]
    again = [task(4 + n, 1, n) for n in range(4)]  # chip c after chip c
    total = [task(8, 2, 4, 5, 6, 7)]
    plan = plan_submissions(chips + again + total)
    assert [(s.tasks, s.array, s.corr, s.after) for s in plan] == [
        ((0, 1, 2, 3), True, None, ()),
        ((4, 5, 6, 7), True, 0, ()),
        ((8,), True, None, (4, 5, 6, 7)),
    ]
    # Exposures wait for their own chips: no array can say that, one job per task.
    exposures = [task(4, 1, 0, 1), task(5, 1, 2, 3)]
    plan = plan_submissions(chips + exposures)
    assert [(s.tasks, s.array, s.after) for s in plan[1:]] == [
        ((4,), False, (0, 1)),
        ((5,), False, (2, 3)),
    ]
    assert {s.step for s in plan if not s.array} == {1}
    # A rerun of chips 1 and 3 after a whole earlier step: not one to one, per task.
    plan = plan_submissions(chips + [task(4, 1, 1), task(5, 1, 3)])
    assert [s.array for s in plan] == [True, False, False]
    # Larger than an array may be: cut the same way, corresponding array by array.
    big = [task(n, 0) for n in range(5)] + [task(5 + n, 1, n) for n in range(5)]
    plan = plan_submissions(big, array_size=2)
    assert [(s.tasks, s.corr) for s in plan] == [
        ((0, 1), None),
        ((2, 3), None),
        ((4,), None),
        ((5, 6), 0),
        ((7, 8), 1),
        ((9,), 2),
    ]


# ---- on the cluster ----
def test_a_tolerant_step_waits_afterany_and_goes_on(dpu: Processor) -> None:
    """Slurm's afterok would never start a step after a failed task: a tolerant step waits
    afterany, and its worker runs it with what ended N (or skips it if nothing did)."""
    job_id = dpu.run("Hello>Fail>Survivors", n=1)
    dpu.wait(job_id, timeout=TIMEOUT)
    hello, fail, survivors = tasks_of(dpu, job_id)
    assert (hello.state, fail.state, survivors.state) == (TaskState.N, TaskState.E, TaskState.S)
    assert survivors.reason == "every task it waits for failed: Fail ended E"
    assert "--dependency=afterany" in dpu.show_batch_script(job_id)[2]
    job_id = dpu.run("Outcomes>Survivors")  # one of five ends N
    dpu.wait(job_id, timeout=TIMEOUT)
    survivors = tasks_of(dpu, job_id)[-1]
    assert survivors.state is TaskState.N, survivors.reason


def test_the_task_graph_runs_in_order_as_slurm_jobs(dpu: Processor, capsys) -> None:
    job_id = dpu.run("Hello>Total", n=3, o="M31")
    (status,) = dpu.wait(job_id, timeout=TIMEOUT)
    assert status.state is JobState.FINISHED
    assert status.counts == {"N": 4, "E": 0, "A": 0, "S": 0, "U": 0}
    tasks = tasks_of(dpu, job_id)
    hello, total = tasks[:3], tasks[3]
    assert total.started_at >= max(t.finished_at for t in hello)  # afterok held
    assert all(t.host and t.pid for t in tasks)
    logs = "\n".join(dpu.get_logs(job_id)[job_id])
    assert "Hello from c1" in logs and "upstream products: 3" in logs

    ids = slurm_ids(dpu, job_id)
    assert sorted(ids) == [0, 1, 2, 3]
    facts = squeue(list(ids.values()), "%i|%T|%j|%E")
    # The journal ends before the batch job does: Slurm may still be finishing it.
    assert {facts[ids[n]][0] for n in ids} <= {"RUNNING", "COMPLETING", "COMPLETED"}
    assert facts[ids[3]][1] == f"awe{job_id}.s1.Total"  # step 1's array (of one task)
    assert {ids[n].split("_")[0] for n in range(3)} == {ids[0].split("_")[0]}  # one array

    capsys.readouterr()
    scripts = dpu.show_batch_script(job_id)
    printed = capsys.readouterr().out
    assert sorted(scripts) == [0, 1, 2, 3]
    array_id = ids[3].split("_")[0]
    assert f"# Slurm job id: {array_id}" in scripts[3]
    assert "# Waits for: Hello[c0], Hello[c1], Hello[c2]" in scripts[3]
    assert "#SBATCH --mem=200M" in scripts[0] and "#SBATCH --time=0-01:01:00" in scripts[0]
    assert f'-m awe.dpu.worker {job_dir(dpu, job_id)} "$((3 + SLURM_ARRAY_TASK_ID))"' in scripts[3]
    assert scripts[0] == scripts[1] == scripts[2] != scripts[3]
    assert printed.count(scripts[0]) == 1 and scripts[3] in printed  # each script once
    on_disk = (job_dir(dpu, job_id) / "slurm" / "step1.sh").read_text()
    assert scripts[3] == on_disk.replace("\n", f"\n# Slurm job id: {array_id}\n", 1)


def test_a_failed_dependency_skips_what_waits_for_it(dpu: Processor) -> None:
    job_id = dpu.run("Fail>Total")
    (status,) = dpu.wait(job_id, timeout=TIMEOUT)
    fail, total = tasks_of(dpu, job_id)
    assert (fail.state, total.state) == (TaskState.E, TaskState.S)
    assert "DependencyNeverSatisfied" in total.reason and total.started_at is None
    ids = slurm_ids(dpu, job_id)
    assert squeue([ids[1]])[ids[1]] == ["CANCELLED", "DependencyNeverSatisfied"]


def test_a_task_over_its_own_time_limit_ends_a_with_timeout(dpu: Processor) -> None:
    job_id = dpu.run("Hello", n=1, s=60.0, time_limit=0.5)
    dpu.wait(job_id, timeout=TIMEOUT)
    (task,) = tasks_of(dpu, job_id)
    assert (task.state, task.reason) == (TaskState.A, "TIMEOUT: over its time limit of 0.5 s")


def test_a_task_over_slurms_time_limit_ends_a_with_timeout(
    slurm: str, awe_home: Path, tmp_path: Path
) -> None:
    """Slurm's own limit (whole minutes, checked every half minute or so: this test takes
    about 90 s) kills the worker, which cannot journal it: squeue tells. SQLite only; the
    database plays no part in how Slurm ends a job."""
    dpu = make_dpu(awe_home, f"sqlite:///{tmp_path / 'jobs.db'}", tmp_path / "c", time_limit="1")
    job_id = dpu.run("Hello", n=1, s=600.0)
    (status,) = dpu.wait(job_id, timeout=TIMEOUT)
    (task,) = tasks_of(dpu, job_id)
    assert task.state is TaskState.A
    assert task.reason.startswith("TIMEOUT: over its Slurm time limit")
    (slurm_id,) = slurm_ids(dpu, job_id).values()
    assert squeue([slurm_id])[slurm_id][0] == "TIMEOUT"


def test_a_task_over_its_memory_ends_a_out_of_memory(
    slurm: str, awe_home: Path, database_url: str, tmp_path: Path
) -> None:
    """slurm.sh makes Slurm enforce --mem: with cgroup v1 the kernel kills the task (the
    worker sees its cgroup's oom_kill count grow); without cgroups, jobacct_gather kills the
    job and its output says so. Either way the task ends A, OUT_OF_MEMORY."""
    dpu = make_dpu(awe_home, database_url, tmp_path / "c", memory="100M")
    job_id = dpu.run("Hog", m=600)
    dpu.wait(job_id, timeout=TIMEOUT)
    (task,) = tasks_of(dpu, job_id)
    assert task.state is TaskState.A
    assert task.reason.startswith("OUT_OF_MEMORY"), task.reason
    logs = "\n".join(dpu.get_logs(job_id)[job_id])
    assert "held 600 MB" not in logs


def test_cancel_scancels_running_and_queued_tasks(dpu: Processor, awe_home: Path) -> None:
    cpus = int(slurm_command("sinfo", "--noheader", "--format=%c").stdout.split()[0])
    count = cpus + 3
    job_id = dpu.run("Hello", n=count, s=120.0)
    running = [int(wait_for_file(awe_home / f"pid-{job_id}-c{i}")) for i in range(cpus)]
    status = dpu.cancel_job(job_id)
    assert status.state is JobState.CANCELLED
    assert status.counts == {"N": 0, "E": 0, "A": cpus, "S": 3, "U": 0}
    with dpu.database.session() as session:
        assert session.get(Job, job_id).state is JobState.CANCELLED
    ids = slurm_ids(dpu, job_id)
    facts = squeue(list(ids.values()))
    assert {facts[slurm_id][0] for slurm_id in ids.values()} == {"CANCELLED"}
    active = slurm_command(
        "squeue", "--noheader", f"--jobs={','.join(ids.values())}", "--format=%i"
    ).stdout.split()
    assert active == []
    for pid in running:
        assert (
            not Path(f"/proc/{pid}").exists()
            or "\nState:\tZ" in Path(f"/proc/{pid}/status").read_text()
        )
    assert not any((awe_home / f"pid-{job_id}-c{i}").exists() for i in range(cpus, count))


def test_a_62_chip_fan_out_is_one_sbatch_per_step_and_one_squeue_per_poll(
    slurm: str, awe_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hello (62 chips) > ChipAgain (chip c after chip c) > Total (after all): three job arrays,
    aftercorr between the per-chip steps, afterok on the whole array for the global one.
    SQLite only: the database plays no part in what is submitted to Slurm."""
    dpu = make_dpu(awe_home, f"sqlite:///{tmp_path / 'jobs.db'}", tmp_path / "c")
    commands: list[str] = []
    real_run = slurm_agent._run

    def counting_run(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        commands.append(argv[0])
        return real_run(argv, timeout)

    real_sync = Processor.sync

    def marked_sync(self: Processor, jobids: list[int]) -> None:
        commands.append("SYNC")  # each poll of wait() folds the journals once
        real_sync(self, jobids)

    real_call = SlurmScheduler.call

    def counting_call(self: SlurmScheduler, verb: str, args: dict) -> object:
        commands.append(f"call:{verb}")  # one agent call is one round trip behind SSH
        return real_call(self, verb, args)

    monkeypatch.setattr(slurm_agent, "_run", counting_run)
    monkeypatch.setattr(Processor, "sync", marked_sync)
    monkeypatch.setattr(SlurmScheduler, "call", counting_call)
    job_id = dpu.run("Hello>ChipAgain>Total", n=62)
    assert commands == ["call:submit", "sbatch", "sbatch", "sbatch"]  # one per step
    commands.clear()
    ids = slurm_ids(dpu, job_id)
    arrays = [ids[0].split("_")[0], ids[62].split("_")[0], ids[124].split("_")[0]]
    assert [ids[n] for n in (0, 61, 62, 123, 124)] == [
        f"{arrays[0]}_0",
        f"{arrays[0]}_61",
        f"{arrays[1]}_0",
        f"{arrays[1]}_61",
        f"{arrays[2]}_0",
    ]
    waits = {row[0]: row[1] for row in squeue_rows(arrays, "%i|%E")}
    # Slurm drops a dependency once it is met; those still pending show theirs.
    echo = {waits[f"{arrays[1]}_{e}"] for e in range(62) if f"{arrays[1]}_{e}" in waits}
    assert echo - {"(null)"} == {f"aftercorr:{arrays[0]}_*(unfulfilled)"}
    assert waits[f"{arrays[2]}_0"] == f"afterok:{arrays[1]}_*(unfulfilled)"
    (status,) = dpu.wait(job_id, timeout=TIMEOUT)
    assert status.counts == {"N": 125, "E": 0, "A": 0, "S": 0, "U": 0}
    tasks = tasks_of(dpu, job_id)
    for chip in range(62):  # aftercorr held: chip c of ChipAgain after chip c of Hello
        assert tasks[62 + chip].started_at >= tasks[chip].finished_at
    assert tasks[124].started_at >= max(t.finished_at for t in tasks[62:124])
    logs = "\n".join(dpu.get_logs(job_id)[job_id])
    assert "again c61 after 1 upstream products" in logs
    assert "upstream products: 0" in logs  # ChipAgain makes none; Total saw its
    polls = " ".join(commands).split("SYNC")[1:]
    asked = [poll.split() for poll in polls]
    assert len(polls) >= 2 and any(asked)  # the check below saw Slurm asked, more than once
    # Each poll of the running job: one agent call, in it one squeue (journals read after).
    assert all(words in ([], ["call:poll", "squeue"]) for words in asked), asked


def test_scancel_of_one_array_element_ends_only_its_task(dpu: Processor, awe_home: Path) -> None:
    """Someone scancels one running and one queued element of a step's array: those tasks
    end A and S with Slurm's word, the array's other elements run on."""
    job_id = dpu.run("Hello", n=4, s=2.0)
    wait_for_file(awe_home / f"pid-{job_id}-c0")
    ids = slurm_ids(dpu, job_id)
    assert len({i.split("_")[0] for i in ids.values()}) == 1  # one array
    done = slurm_command("scancel", ids[0], ids[3])
    assert done.returncode == 0, done.stderr
    (status,) = dpu.wait(job_id, timeout=TIMEOUT)
    tasks = tasks_of(dpu, job_id)
    assert [t.state for t in tasks] == [TaskState.A, TaskState.N, TaskState.N, TaskState.S]
    assert tasks[0].reason.startswith("CANCELLED in Slurm")
    assert tasks[3].reason.startswith("CANCELLED in Slurm before it started")
    assert status.state is JobState.FINISHED


# The database plays no part in this: one kind is enough (the suite's time is budgeted).
@pytest.mark.parametrize("database_url", ["mariadb"], indirect=True)
def test_slurmctld_stopped_and_started_in_the_middle_of_a_job(
    dpu: Processor, awe_home: Path
) -> None:
    job_id = dpu.run("Hello", n=6, s=3.0)
    wait_for_file(awe_home / f"pid-{job_id}-c0")
    controller = int(Path("/run/slurmctld.pid").read_text())
    os.kill(controller, signal.SIGTERM)  # the test setup's slurmctld; slurm.sh restarts it
    deadline = time.monotonic() + 60
    while slurm_command("scontrol", "ping").stdout.count("UP"):
        assert time.monotonic() < deadline, "slurmctld did not stop"
        time.sleep(0.2)
    try:
        (status,) = dpu.get_status(job_id)  # squeue fails: nothing invented, nothing lost
        assert status.counts["A"] == status.counts["U"] == status.counts["S"] == 0
        assert not status.is_final
    finally:
        subprocess.run(["bash", str(SLURM_SCRIPT)], check=True, capture_output=True, timeout=120)
    (status,) = dpu.wait(job_id, timeout=TIMEOUT)
    assert status.counts == {"N": 6, "E": 0, "A": 0, "S": 0, "U": 0}


def test_a_dry_run_shows_the_scripts_and_submits_nothing(
    dpu: Processor, tmp_path: Path, capsys
) -> None:
    scripts = dpu.run("Hello>Total", n=2, dry_run=True, time_limit=90)
    printed = capsys.readouterr().out
    assert sorted(scripts) == [0, 1, 2]
    assert "#SBATCH --time=0-00:03:00" in scripts[2]  # 90 s + 60 s of grace, in minutes
    assert "# Waits for: Hello[c0], Hello[c1]" in scripts[2]
    assert "#SBATCH --job-name=awe<job id>.s1.Total" in scripts[2]
    assert "#SBATCH --output=" in scripts[0] and "slurm/step0.%a.out" in scripts[0]
    assert scripts[2] in printed and "nothing was submitted" in printed
    assert dpu.get_jobids() == []
    assert not (tmp_path / "cluster" / "jobs").exists()


def test_batch_scripts_of_a_pool_dpu_are_a_clear_error(awe_home: Path, database_url: str) -> None:
    (awe_home / "sequences").mkdir(parents=True)
    shutil.copy(SEQUENCES / "testing.py", awe_home / "sequences" / "testing.py")
    local = Processor(database_url=database_url, username="alice")
    job_id = local.run("Total")
    local.wait(job_id, timeout=TIMEOUT)
    with pytest.raises(AweError, match="runs tasks on its own pool"):
        local.show_batch_script(job_id)


def test_slurm_backend_is_chosen_for_a_slurm_dpu(dpu: Processor) -> None:
    assert isinstance(dpu.backend(), SlurmBackend)


# ---- behind SSH ----
# The database plays no part in this: one kind is enough (the suite's time is budgeted).
@pytest.mark.parametrize("database_url", ["mariadb"], indirect=True)
def test_a_slurm_dpu_behind_ssh(slurm: str, sshd, awe_home: Path, database_url, tmp_path) -> None:
    """The same Slurm through the test sshd on 127.0.0.1: code shipped as to any SSH DPU,
    one round trip to submit, journals and squeue over SSH, cancel with scancel."""
    (awe_home / "sequences").mkdir(parents=True)
    shutil.copy(SEQUENCES / "testing.py", awe_home / "sequences" / "testing.py")
    remote = tmp_path / "login-node"
    settings = sshd.dpu(remote, scheduler="slurm", slurm={"memory": "200M"})
    pilot = {"memory": "200M", "mode": "pilot", "nodes": 1, "cpus_per_node": 2}
    pilots = sshd.dpu(remote, scheduler="slurm", slurm=pilot)
    dpu = Processor(
        database_url=database_url,
        username="alice",
        dpus={"far": settings, "far-pilots": pilots},
        dpu_name="far",
    )
    job_id = dpu.run("Hello>Total", n=3, o="over ssh")
    (status,) = dpu.wait(job_id, timeout=TIMEOUT)
    assert status.counts == {"N": 4, "E": 0, "A": 0, "S": 0, "U": 0}
    logs = "\n".join(dpu.get_logs(job_id)[job_id])
    assert "on stdout: over ssh" in logs and "upstream products: 3" in logs
    folder = job_dir(dpu, job_id)
    assert folder.is_relative_to(remote)
    scripts = dpu.show_batch_script(job_id)
    assert f"{remote}/code/" in scripts[0]  # the shipped snapshot is on PYTHONPATH

    job_id = dpu.run("Hello", n=2, s=120.0)
    deadline = time.monotonic() + 120
    while dpu.get_status(job_id)[0].running < 1:
        assert time.monotonic() < deadline, "no task started"
        time.sleep(0.2)
    status = dpu.cancel_job(job_id)
    assert status.state is JobState.CANCELLED
    ids = slurm_ids(dpu, job_id)
    assert {squeue(list(ids.values()))[i][0] for i in ids.values()} == {"CANCELLED"}

    # pilot mode behind the same SSH: the pilots submitted, followed and ended over SSH
    dpu.select_dpu("far-pilots")
    job_id = dpu.run("Hello>Total", n=3, o="pilots over ssh")
    (status,) = dpu.wait(job_id, timeout=TIMEOUT)
    assert status.counts == {"N": 4, "E": 0, "A": 0, "S": 0, "U": 0}
    logs = "\n".join(dpu.get_logs(job_id)[job_id])
    assert "on stdout: pilots over ssh" in logs and "upstream products: 3" in logs
    (pilot_id,) = pilots_of(dpu, job_id)
    deadline = time.monotonic() + 60  # the pilot leaves once nothing is left to claim
    while squeue([pilot_id])[pilot_id][0] != "COMPLETED":
        assert time.monotonic() < deadline, squeue([pilot_id])
        time.sleep(0.2)


def test_a_line_break_in_a_task_name_cannot_add_a_command_to_the_script() -> None:
    from awe.dpu.backends.slurm_script import render_script
    from awe.dpu_definitions import parse_dpus

    definition = parse_dpus({"c": {"scheduler": "slurm"}})["c"]
    task = {
        "number": 0,
        "name": "Hello[x\ntouch /tmp/owned]",
        "step": 0,
        "sequence": "Hello",
        "depends_on": [],
        "time_limit": 10.0,
    }
    script = render_script(definition, "7", "/w/jobs/7", task, {0: task["name"]}, {}, "python3")
    assert not any(line.startswith("touch") for line in script.splitlines())
    assert "Hello[x touch /tmp/owned]" in script  # still readable, inside the comment


def test_every_slurm_setting_reaches_the_scripts(awe_home: Path, database_url, tmp_path) -> None:
    settings = {
        "partition": "science",
        "account": "astro42",
        "qos": "long",
        "cpus_per_task": 3,
        "memory": "1G",
        "extra": ["--constraint=avx2", "#SBATCH --exclusive"],
    }
    dpu = make_dpu(awe_home, database_url, tmp_path / "cluster", **settings)
    scripts = dpu.run("Total", dry_run=True)
    lines = scripts[0].splitlines()
    for expected in [
        "#SBATCH --partition=science",
        "#SBATCH --account=astro42",
        "#SBATCH --qos=long",
        "#SBATCH --cpus-per-task=3",
        "#SBATCH --mem=1G",
        "#SBATCH --constraint=avx2",
        "#SBATCH --exclusive",
        "export OMP_NUM_THREADS=3",
    ]:
        assert expected in lines, expected


def test_partition_and_extra_reach_slurm(slurm: str, awe_home, database_url, tmp_path) -> None:
    partition = slurm_command("sinfo", "--noheader", "--format=%R").stdout.split()[0]
    dpu = make_dpu(
        awe_home,
        database_url,
        tmp_path / "cluster",
        partition=partition,
        extra=["--comment=awe-f13"],
    )
    job_id = dpu.run("Hello", n=1, s=2.0)
    ids = list(slurm_ids(dpu, job_id).values())
    facts = squeue(ids, "%i|%P|%k")
    assert facts[ids[0]] == [partition, "awe-f13"]
    (status,) = dpu.wait(job_id, timeout=TIMEOUT)
    assert status.counts["N"] == 1


# The database plays no part in this: one kind is enough (the suite's time is budgeted).
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_exposure_job_waits_afterok_on_exactly_its_chips(dpu: Processor) -> None:
    job_id = dpu.run(GROUPED_CHAIN, n=2, s=4.0)
    deadline = time.monotonic() + TIMEOUT
    while not (job_dir(dpu, job_id) / slurm_agent.SLURM_FILE).exists():
        assert time.monotonic() < deadline, "the job was never submitted to Slurm"
        time.sleep(0.1)
    ids = slurm_ids(dpu, job_id)  # tasks 0-3: chips 1/0 1/1 2/0 2/1; 4, 5: exposures 1, 2
    pending = squeue([ids[4], ids[5], ids[9]], "%i|%E")

    def waits_for(number: int) -> set[str]:
        return set(re.findall(r"afterok:(\d+(?:_\d+)?)", pending[ids[number]][0]))

    # The chips are one array; each exposure waits for exactly its own chips, which an
    # array cannot say per element: the exposures are batch jobs of their own.
    assert {i.split("_")[0] for i in (ids[0], ids[3])} == {ids[0].split("_")[0]}
    assert "_" not in ids[4] and ids[4] != ids[5]
    assert waits_for(4) == {ids[0], ids[1]}
    assert waits_for(5) == {ids[2], ids[3]}
    assert waits_for(9) == {ids[5]}
    check_grouped_job(dpu, job_id)


# The database plays no part in this: one kind is enough (the suite's time is budgeted).
@pytest.mark.parametrize("database_url", ["mariadb"], indirect=True)
def test_des_se_on_slurm_waits_per_exposure(
    slurm: str, awe_home: Path, database_url: str, tmp_path: Path
) -> None:
    from tests.des_archive import EXPOSURE, NITE, make_archive

    archive, _ = make_archive(tmp_path / "des")
    dpu = make_dpu(awe_home, database_url, tmp_path / "cluster", memory="1G")
    job_id = dpu.run("SE", E=EXPOSURE, b="i", n=NITE, c="1,2,3", C=1, a=str(archive.root))
    (status,) = dpu.wait(job_id, timeout=TIMEOUT)
    assert status.counts == {"N": 6, "E": 0, "A": 0, "S": 0, "U": 0}
    names = {t.number: t.name for t in tasks_of(dpu, job_id)}
    assert names[2] == "SESky[668439]"  # CCD 2 (S30) was never scheduled
    scripts = dpu.show_batch_script(job_id)
    assert "# Waits for: SEDetrend[668439/01], SEDetrend[668439/03]" in scripts[2]
    assert "# Waits for: SESky[668439]" in scripts[3]
    out = archive.output("persistent", "gw", NITE, EXPOSURE)
    assert (out / "allZP_D00668439_r4p7.csv").is_file()


# ---- pilot mode ----
def pilot_dpu(awe_home: Path, tmp_path: Path, nodes: int, cpus: int) -> Processor:
    """A Slurm DPU in pilot mode (SQLite: the database plays no part in how tasks reach
    their allocations)."""
    pilot = {"mode": "pilot", "nodes": nodes, "cpus_per_node": cpus, "walltime": "00:10:00"}
    return make_dpu(awe_home, f"sqlite:///{tmp_path / 'jobs.db'}", tmp_path / "c", **pilot)


def pilots_of(dpu: Processor, job_id: int) -> list[str]:
    return json.loads((job_dir(dpu, job_id) / slurm_agent.SLURM_FILE).read_text())["pilots"]


def test_pilot_mode_runs_a_chain_in_two_allocations_with_one_sbatch(
    slurm: str, awe_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dpu = pilot_dpu(awe_home, tmp_path, nodes=2, cpus=1)
    commands: list[str] = []
    real_run = slurm_agent._run

    def counting_run(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        commands.append(argv[0])
        return real_run(argv, timeout)

    monkeypatch.setattr(slurm_agent, "_run", counting_run)
    job_id = dpu.run("Hello>ChipAgain>Total", n=6)
    assert commands == ["sbatch"]  # two pilots, one job array
    (status,) = dpu.wait(job_id, timeout=TIMEOUT)
    assert status.counts == {"N": 13, "E": 0, "A": 0, "S": 0, "U": 0}
    assert commands.count("sbatch") == 1  # no pilot was replaced
    tasks = tasks_of(dpu, job_id)
    for chip in range(6):
        assert tasks[6 + chip].started_at >= tasks[chip].finished_at
    assert tasks[12].started_at >= max(t.finished_at for t in tasks[6:12])
    assert len({t.pid for t in tasks}) == 13  # each task in its own process
    claims = job_dir(dpu, job_id) / "pilot" / "claims"
    takers = {(claims / str(n)).read_text() for n in range(13)}
    assert takers <= set(pilots_of(dpu, job_id)) and len(pilots_of(dpu, job_id)) == 2
    logs = "\n".join(dpu.get_logs(job_id)[job_id])
    assert "again c5 after 1 upstream products" in logs and "upstream products: 0" in logs
    scripts = dpu.show_batch_script(job_id)
    assert "#SBATCH --time=00:10:00" in scripts[0] and "-m awe.dpu.pilot" in scripts[0]


def test_pilot_mode_cancel_and_an_allocation_lost_under_its_tasks(
    slurm: str, awe_home: Path, tmp_path: Path
) -> None:
    """A pilot scancelled by someone else loses its running tasks: their sequence allows a
    second try, so they are released and a new pilot (started by the next poll) runs them.
    Then AWE's cancel: running tasks end A, queued ones S, the pilots leave."""
    dpu = pilot_dpu(awe_home, tmp_path, nodes=1, cpus=2)
    job_id = dpu.run("Patient", n=2, s=3.0)
    wait_for_file(awe_home / f"pid-{job_id}-c1")
    (first,) = pilots_of(dpu, job_id)
    assert slurm_command("scancel", first).returncode == 0
    (status,) = dpu.wait(job_id, timeout=TIMEOUT)
    assert status.counts == {"N": 2, "E": 0, "A": 0, "S": 0, "U": 0}
    assert len(pilots_of(dpu, job_id)) == 2  # the lost pilot was replaced
    logs = "\n".join(dpu.get_logs(job_id)[job_id])
    assert logs.count("lost: its Slurm allocation ended") == 2
    assert logs.count("retrying: try 2 of 2") == 2 and "c1 slept" in logs

    # A pilot killed outright (node failure, SIGKILL) cannot release its tasks: the next
    # poll does, and a new pilot runs them with the one try they have left.
    job_id = dpu.run("Patient", n=2, s=3.0)
    for chip in ("c0", "c1"):
        wait_for_file(awe_home / f"pid-{job_id}-{chip}")
    pilot = f"awe.dpu.pilot {job_dir(dpu, job_id)} "
    assert slurm_command("pkill", "-KILL", "-f", pilot).returncode == 0
    (status,) = dpu.wait(job_id, timeout=TIMEOUT)
    logs = "\n".join(dpu.get_logs(job_id)[job_id])
    assert status.counts == {"N": 2, "E": 0, "A": 0, "S": 0, "U": 0}, logs
    assert len(pilots_of(dpu, job_id)) == 2  # the killed pilot was replaced
    assert logs.count("lost: its pilot's Slurm allocation is gone (node failure or SIGKILL)") == 2
    assert logs.count("retrying: try 2 of 2") == 2 and "try 3" not in logs

    job_id = dpu.run("Hello", n=4, s=60.0)
    for chip in ("c0", "c1"):
        wait_for_file(awe_home / f"pid-{job_id}-{chip}")
    status = dpu.cancel_job(job_id)
    assert status.state is JobState.CANCELLED
    assert status.counts == {"N": 0, "E": 0, "A": 2, "S": 2, "U": 0}
    tasks = tasks_of(dpu, job_id)
    assert {t.reason for t in tasks if t.state is TaskState.A} == {"CANCELLED while running"}
    pilots = pilots_of(dpu, job_id)
    assert {facts[0] for facts in squeue(pilots).values()} == {"CANCELLED"}
