"""Waiting for jobs with a progress bar: tqdm's, a bar in a terminal and a widget in a
notebook, counting final tasks and showing how many run and how each ended."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from awe.dpu.status import JobStatus

#: Seconds between two looks at the journals while waiting.
WAIT_POLL = 0.2


def wait_for(look: Callable[[], list[JobStatus]], timeout: float | None) -> list[JobStatus]:
    """Call ``look`` (a sync and the statuses) until every job is final; return the last
    statuses. Raises ``TimeoutError`` after ``timeout`` seconds; the jobs go on."""
    from tqdm.auto import tqdm

    deadline = None if timeout is None else time.monotonic() + timeout
    statuses = look()
    total = sum(s.total for s in statuses)
    with tqdm(total=total, unit="task", desc="Waiting for jobs", leave=True) as bar:
        while True:
            done = sum(sum(s.counts.values()) for s in statuses)
            bar.update(done - bar.n)
            bar.set_postfix_str(summary(statuses), refresh=False)
            if all(s.is_final for s in statuses):
                return statuses
            if deadline is not None and time.monotonic() > deadline:
                unfinished = [s.job_id for s in statuses if not s.is_final]
                raise TimeoutError(
                    f"jobs {unfinished} not finished after {timeout} s; they go on. "
                    f"dpu.wait() again, or dpu.cancel_job(jobid) to stop one."
                )
            time.sleep(WAIT_POLL)
            statuses = look()


def summary(statuses: list[JobStatus]) -> str:
    """``running 2 N/E/A/S/U 10/0/1/0/0``: the jobs' tasks, all together."""
    from awe.dpu.status import FINAL_LETTERS

    totals = {letter: sum(s.counts[letter] for s in statuses) for letter in FINAL_LETTERS}
    running = sum(s.running for s in statuses)
    return f"running {running} N/E/A/S/U " + "/".join(str(totals[x]) for x in FINAL_LETTERS)
