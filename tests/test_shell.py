"""AWE at the awe> prompt as a user meets it, on a real pseudo-terminal: AWE's own errors
as one line (the traceback one %tb away), other errors with their traceback, and values
the Processor printed not echoed again."""

from __future__ import annotations

import os

from tests.test_prompt import awe_on_a_terminal, read_until

PROMPT = b"awe> "


def ask(fd: int, line: str, timeout: float = 60) -> str:
    """Type ``line`` at the prompt; return what came back before the next prompt."""
    os.write(fd, line.encode() + b"\n")
    answer = read_until(fd, PROMPT, timeout).decode(errors="replace").replace("\r", "")
    answer = answer.rsplit(PROMPT.decode(), 1)[0]  # the next prompt
    return answer.split("\n", 1)[1] if "\n" in answer else ""  # drop the typed echo


def job_id(status: str) -> int:
    return int(status.split("Jobid ", 1)[1].split()[0])


def test_prompt_errors_and_echoes_as_a_user_sees_them() -> None:
    with awe_on_a_terminal() as (process, main):
        read_until(main, PROMPT)
        refused = ask(main, "dpu.run('ReadNoise', i='WFI', d='2000-04-29')")
        lines = [line for line in refused.splitlines() if line.strip()]
        assert len(lines) == 2, refused  # "Calling: ...", then the one line that matters
        assert "Calling: ReadNoise(instrument=WFI, date=2000-04-29)" in lines[0]
        assert lines[1].startswith("PlanError: ReadNoise: nothing to process: searched ")
        assert lines[1].endswith("(%tb shows the traceback)")
        assert "Traceback" not in refused and "planner.py" not in refused

        traceback = ask(main, "%tb")
        assert "planner.py" in traceback and "processor.py" in traceback
        assert "PlanError: ReadNoise: nothing to process" in traceback

        bug = ask(main, "{}['missing']")
        assert "KeyError" in bug and "----> 1" in bug  # not ours: the full traceback

        submitted = ask(main, "dpu.run('Diagnose')").strip().splitlines()
        assert "Sending job with identifier " in submitted[-1], submitted  # no echo after it
        ask(main, "job = _")
        waited = ask(main, "dpu.wait(job)")
        assert "Jobid " in waited and "has status FINISHED N/E/A/S/U 1/0/0/0/0" in waited
        assert "JobStatus" not in waited and "<Job" not in waited  # printed once, not echoed
        assert "Waiting for jobs: 100%" in waited  # a terminal: tqdm's bar

        status = ask(main, "dpu.get_status(job)")
        assert status.count("has status FINISHED") == 1 and "<Job" not in status
        assert "JobStatus(" not in status

        table = ask(main, "_")  # the same value, asked for in a later cell: a table
        assert "job  sequence  state     N  E  A  S  U" in table, table
        assert "Diagnose  FINISHED  1  0  0  0  0" in table
        one = ask(main, "_[0]")
        assert one.strip() == f"<Job {job_id(status)} Diagnose FINISHED N/E/A/S/U 1/0/0/0/0>"
        os.write(main, b"exit\n")
        assert process.wait(timeout=30) == 0
