"""Waiting for jobs with a progress bar driven by the database: tqdm's widget in a
notebook, its text bar in a terminal, and a plain line per change of a job's state when
the output is not a terminal (a pipe, cron, a log file), where a bar redrawn with carriage
returns would fill the file.

Every look syncs the journals into the database and reads the statuses back, so the bar is
right for jobs submitted by another session and after a kernel restart.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from awe.dpu.status import JobStatus

#: Seconds between two looks at the journals while waiting: the first pause, the longest.
WAIT_POLL = (0.2, 2.0)
#: A look that brings no news makes the next pause this much longer (up to the longest).
BACK_OFF = 1.5


def wait_for(
    look: Callable[[], list[JobStatus]],
    timeout: float | None,
    say: Callable[[str], object] = print,
    pauses: tuple[float, float] = WAIT_POLL,
) -> list[JobStatus]:
    """Call ``look`` (a sync and the statuses) until every job is final; return the last
    statuses. Raises ``TimeoutError`` after ``timeout`` seconds; the jobs go on. ``say``
    prints the lines that replace the bar when the output is not a terminal.

    ``pauses``: (first, longest) seconds between two looks, the DPU's own (a batch
    system's controller is not asked five times a second). While looks bring no news the
    pause grows by half up to the longest; news brings it back to the first."""
    deadline = None if timeout is None else time.monotonic() + timeout
    first, longest = pauses
    pause = first
    statuses = look()
    with _display(sum(s.total for s in statuses), say) as show:
        while True:
            show(statuses)
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


class _display:
    """The bar, or the state-change lines: a context manager giving ``show(statuses)``."""

    def __init__(self, total: int, say: Callable[[str], object]) -> None:
        self.total, self.say = total, say
        self.bar = None
        self.shown: dict[int, str] = {}

    def __enter__(self) -> Callable[[list[JobStatus]], None]:
        if not bar_disabled(sys.stderr):
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total, unit="task", desc="Waiting for jobs", leave=True)
            return self._update_bar
        return self._say_changes

    def __exit__(self, *_exc: object) -> None:
        if self.bar is not None:
            self.bar.close()

    def _update_bar(self, statuses: list[JobStatus]) -> None:
        done = sum(sum(s.counts.values()) for s in statuses)
        self.bar.update(done - self.bar.n)
        self.bar.set_postfix_str(summary(statuses), refresh=False)

    def _say_changes(self, statuses: list[JobStatus]) -> None:
        """A line when a job's state changes (not at every finished task: a job of 500
        tasks would still flood a log file). The final lines are the caller's."""
        for status in statuses:
            if status.is_final:
                continue
            if self.shown.get(status.job_id) != status.state.value:
                self.shown[status.job_id] = status.state.value
                self.say(status.line())


def bar_disabled(stream: TextIO | None = None) -> bool | None:
    """tqdm's ``disable`` for a bar that should show in a notebook and on a terminal and
    nowhere else. ``None`` lets tqdm ask its stream whether it is a terminal; with a
    ``stream``, the answer is given here."""
    if in_notebook():
        return False
    return None if stream is None else not stream.isatty()


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (tqdm.auto then draws a widget)."""
    shell = sys.modules.get("IPython") and sys.modules["IPython"].get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def summary(statuses: list[JobStatus]) -> str:
    """``running 2 N/E/A/S/U 10/0/1/0/0``: the jobs' tasks, all together."""
    from awe.dpu.status import FINAL_LETTERS

    totals = {letter: sum(s.counts[letter] for s in statuses) for letter in FINAL_LETTERS}
    running = sum(s.running for s in statuses)
    return f"running {running} N/E/A/S/U " + "/".join(str(totals[x]) for x in FINAL_LETTERS)


def _news(statuses: list[JobStatus]) -> list[tuple[object, ...]]:
    """What a look can change: each job's state, running tasks and final counts."""
    return [(s.job_id, s.state, s.running, tuple(s.counts.values())) for s in statuses]
