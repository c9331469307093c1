"""Waiting for jobs with a progress bar: tqdm's, a bar in a terminal and a widget in a
notebook, counting final tasks and showing how many run and how each ended."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from awe.dpu.status import JobStatus

#: Seconds between two looks at the journals while waiting: the first pause, the longest.
WAIT_POLL = (0.2, 2.0)
#: A look that brings no news makes the next pause this much longer (up to the longest).
BACK_OFF = 1.5


def wait_for(
    look: Callable[[], list[JobStatus]],
    timeout: float | None,
    pauses: tuple[float, float] = WAIT_POLL,
) -> list[JobStatus]:
    """Call ``look`` (a sync and the statuses) until every job is final; return the last
    statuses. Raises ``TimeoutError`` after ``timeout`` seconds; the jobs go on.

    ``pauses``: (first, longest) seconds between two looks, the DPU's own (a batch
    system's controller is not asked five times a second). While looks bring no news the
    pause grows by half up to the longest; news brings it back to the first."""
    from tqdm.auto import tqdm

    deadline = None if timeout is None else time.monotonic() + timeout
    first, longest = pauses
    pause = first
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
            time.sleep(pause)
            before = _news(statuses)
            statuses = look()
            pause = first if _news(statuses) != before else min(longest, pause * BACK_OFF)


def summary(statuses: list[JobStatus]) -> str:
    """``running 2 N/E/A/S/U 10/0/1/0/0``: the jobs' tasks, all together."""
    from awe.dpu.status import FINAL_LETTERS

    totals = {letter: sum(s.counts[letter] for s in statuses) for letter in FINAL_LETTERS}
    running = sum(s.running for s in statuses)
    return f"running {running} N/E/A/S/U " + "/".join(str(totals[x]) for x in FINAL_LETTERS)


def _news(statuses: list[JobStatus]) -> list[tuple[object, ...]]:
    """What a look can change: each job's state, running tasks and final counts."""
    return [(s.job_id, s.state, s.running, tuple(s.counts.values())) for s in statuses]
