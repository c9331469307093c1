"""Scripted use, as cron or a pipeline runs AWE: ``python -m awe run`` with its exit status
and JSON, through pipes (no carriage-return progress bar when the output is not a terminal)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

#: A user's own sequence: one task per chip; chips named in ``bad`` raise.
COUNT = '''
import time
from awe.sequence import Option, Unit, sequence


def _chips(options, context):
    return [Unit(key=f"c{i}") for i in range(options["count"])]


@sequence(
    options=[
        Option("n", "count", int, 2, help="number of chips"),
        Option("b", "bad", list, [], help="chips that fail"),
        Option("s", "sleep", float, 0.0, help="seconds each task sleeps"),
    ],
    parameters={"Count.process_params.STEP": 1},
    fan_out="chip",
    select=_chips,
)
def Count(task):
    """Count, or fail on the chips named bad."""
    time.sleep(task.options["sleep"])
    if task.unit.key in task.options["bad"]:
        raise RuntimeError(f"{task.unit.key} is bad")
    task.log.info("counted %s by %s", task.unit.key, task.parameters["Count.process_params.STEP"])
'''


@pytest.fixture
def count_sequence(awe_home: Path) -> None:
    (awe_home / "sequences").mkdir(parents=True)
    (awe_home / "sequences" / "count.py").write_text(COUNT)


def awe_run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "awe", "run", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def test_awe_run_says_the_outcome_in_its_exit_status(count_sequence: None) -> None:
    done = awe_run("Count", "n=2", 'p={"Count.process_params.STEP": 3}', "--wait", "--json")
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)  # stdout is the JSON alone: the lines went to stderr
    assert status["state"] == "FINISHED" and status["counts"]["N"] == 2
    assert status["exit_status"] == 0 and status["finished_at"]
    assert f"Jobid {status['job_id']} has status FINISHED N/E/A/S/U 2/0/0/0/0" in done.stderr
    assert "\r" not in done.stderr + done.stdout  # a pipe: no progress bar redrawn

    failed = awe_run("Count", "n=3", "b=c0,c2", "--wait")
    assert failed.returncode == 1, failed.stderr
    assert "has status FINISHED N/E/A/S/U 1/2/0/0/0" in failed.stdout

    refused = awe_run("Count", "n=two")
    assert refused.returncode == 2
    assert "option 'n'/'count' expects int, got 'two'" in refused.stderr
    assert "Sending job" not in refused.stdout
    unknown = awe_run("Count", "colour=red")
    assert unknown.returncode == 2 and "Unknown option 'colour' for Count" in unknown.stderr


def test_awe_run_stops_waiting_at_the_timeout_or_ctrl_c_and_the_jobs_go_on(
    count_sequence: None,
) -> None:
    command = [sys.executable, "-m", "awe", "run", "Count", "n=1", "s=30", "--wait"]
    interrupted = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        slow = awe_run("Count", "n=1", "s=30", "--timeout", "1", "--json")  # meanwhile
        for line in interrupted.stdout:  # waiting has begun once the first state line is out
            if "has status QUEUED" in line or "has status RUNNING" in line:
                break
        waited = int(line.split("Jobid ")[1].split()[0])
        interrupted.send_signal(signal.SIGINT)
        assert interrupted.wait(timeout=30) == 130
        assert f"stopped waiting; job {waited} goes on" in interrupted.stderr.read()
    finally:
        interrupted.kill()
        interrupted.stdout.close()
        interrupted.stderr.close()

    assert slow.returncode == 3, slow.stderr
    status = json.loads(slow.stdout)
    assert status["state"] in ("QUEUED", "RUNNING") and status["exit_status"] is None
    job = status["job_id"]
    assert f"awe run: job {job} not final after 1.0 s; it goes on" in slow.stderr
    assert f"Jobid {job} has status QUEUED" in slow.stderr  # a line per change, no bar
    assert "\r" not in slow.stderr

    cancel = subprocess.run(
        [sys.executable, "-m", "awe", "dpu", "cancel", str(job), str(waited)],
        capture_output=True,
        text=True,
    )
    for still_running in (job, waited):
        assert f"Cancelled job {still_running}" in cancel.stdout, cancel.stderr
