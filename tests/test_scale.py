"""Scale (F14) without a cluster: how waiting paces its looks at a job."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from awe.db.models import JobState
from awe.dpu import progress
from awe.dpu.progress import wait_for
from awe.dpu.status import JobStatus


def status(done: int, total: int = 3) -> JobStatus:
    state = JobState.FINISHED if done == total else JobState.RUNNING
    counts = {"N": done, "E": 0, "A": 0, "S": 0, "U": 0}
    now = datetime.now(timezone.utc)
    return JobStatus(1, "Hello", state, counts, 0, total - done, now, now, None, "alice")


def test_waiting_backs_off_while_nothing_changes_and_comes_back_on_news(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pauses: list[float] = []
    monkeypatch.setattr(progress.time, "sleep", pauses.append)
    looks = iter([status(n) for n in (0, 0, 0, 0, 0, 1, 1, 2, 3)])
    (last,) = wait_for(lambda: [next(looks)], None, pauses=(1.0, 2.0))
    assert last.is_final
    # No news: 1 -> 1.5 -> 2 (the longest) -> 2; news (a task ended) brings back 1.
    assert pauses == [1.0, 1.5, 2.0, 2.0, 2.0, 1.0, 1.5, 1.0]
