"""The fit files of a FitSED job, read through the Processor (its DPU's journals), so both
results of a validated pair are seen even when they are byte-identical (committed frames
are unique by content). This module sits at the Processor's level: it is handed a
``Processor`` and uses its public ``database`` and ``backend``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select


def fit_results(dpu: Any, job_id: int, folder: Path) -> list[tuple[int, str, Path]]:
    """(area id, work unit key, local copy) of every fit file of the job's N tasks."""
    from awe.db.models import Job, Task, TaskState
    from awe.dpu.journal import parse_new_bytes

    with dpu.database.session() as session:
        job = session.get(Job, job_id)
        work_dir, dpu_name = job.work_dir, job.dpu_name
        numbers = list(
            session.scalars(
                select(Task.number).where(
                    Task.job_id == job_id, Task.sequence == "FitSED", Task.state == TaskState.N
                )
            )
        )
    backend = dpu.backend(dpu_name)
    journals = backend.read_journals(work_dir, dict.fromkeys(numbers, 0))
    folder.mkdir(parents=True, exist_ok=True)
    found = []
    for number in sorted(journals):
        for event in parse_new_bytes(journals[number])[0]:
            if event["event"] == "product" and event["kind"] == "SEDFitFile":
                results = event["metadata"]["results"]
                local = backend.fetch(
                    event["path"], folder / f"{number}_{Path(event['path']).name}"
                )
                found.append((results["area_id"], results["workunit"], Path(local)))
    return found
