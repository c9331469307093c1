"""The per chip > per exposure > per chip chain every backend's test runs, and its checks."""

from __future__ import annotations

from sqlalchemy import select

from awe.db.models import Task
from awe.dpu import Processor

TIMEOUT = 300
GROUPED_CHAIN = "ExposureChips>ExposureWhole>ExposureChipsAgain"


def check_grouped_job(dpu: Processor, job_id: int) -> list[Task]:
    """The graph of GROUPED_CHAIN with n=2 held: each exposure waited for exactly its own
    chips, each later chip for exactly its own exposure. Shared by every backend's test."""
    (status,) = dpu.wait(job_id, timeout=TIMEOUT)
    assert status.counts == {"N": 10, "E": 0, "A": 0, "S": 0, "U": 0}
    with dpu.database.session() as session:
        tasks = list(
            session.scalars(select(Task).where(Task.job_id == job_id).order_by(Task.number))
        )
    by_name = {t.name: t for t in tasks}
    with dpu.database.session() as session:
        waits = {t.name: sorted(d.name for d in session.get(Task, t.id).depends_on) for t in tasks}
    assert waits["ExposureWhole[1]"] == ["ExposureChips[1/0]", "ExposureChips[1/1]"]
    assert waits["ExposureWhole[2]"] == ["ExposureChips[2/0]", "ExposureChips[2/1]"]
    assert waits["ExposureChipsAgain[2/1]"] == ["ExposureWhole[2]"]
    for exposure in ("1", "2"):
        whole = by_name[f"ExposureWhole[{exposure}]"]
        chips = [by_name[f"ExposureChips[{exposure}/{c}]"] for c in (0, 1)]
        assert whole.started_at >= max(c.finished_at for c in chips)
    logs = "\n".join(dpu.get_logs(job_id)[job_id])
    assert "exposure 1 waited for 1/0,1/1" in logs
    assert "exposure 2 waited for 2/0,2/1" in logs
    assert "chip 2/0 waited for exposure 2" in logs
    return tasks
