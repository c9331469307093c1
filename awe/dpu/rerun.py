"""Rerunning only what failed: ``dpu.rerun(jobid)``.

A job whose tasks ended ``E``, ``A``, ``U`` or ``S`` (the ones skipped because something
they waited for failed, or cancelled before they started) is run again as a new job linked
to it (``rerun_of``), holding only those tasks, with the same options, process parameters,
task descriptions (read back from the job's own ``job.json`` on the DPU, so a selection
that would choose differently today changes nothing) and, unless ``send_code=True``, the
same code snapshot. Tasks that ended ``N`` are not run again: a rerun task that waited for
one gets its products (from the old job's journal, still on the DPU) as upstream inputs.
A tolerant task (an exposure step that went on without a failed CCD) runs again too when
something it waits for does, so the rerun CCD joins its exposure's sky and zeropoints.
So the DES season's resume and the POGS reissue cost only the failed work.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from awe.db.jobs import delete_job, finished_job, record_job, set_work_dir
from awe.dpu.journal import JOB_FILE, last_try_products, parse_new_bytes
from awe.errors import AweError
from awe.messages import Job

if TYPE_CHECKING:
    from awe.dpu.backends.base import Backend
    from awe.dpu.codeship import Snapshot
    from awe.dpu.service import JobService


@dataclass(frozen=True)
class RerunPlan:
    """The new job's description (``job.json``) and what the user is told."""

    description: dict[str, Any]
    numbers: list[int]  # old task numbers, in the new job's order


def plan_rerun(old: dict[str, Any], states: dict[int, str], products: dict[int, list]) -> RerunPlan:
    """From the old job's description, its tasks' final letters and the products of its
    ``N`` tasks, the description of a job of the tasks that did not end ``N``."""
    again: dict[int, None] = {}  # in order
    for task in sorted(old["tasks"], key=lambda t: t["number"]):  # upstream first
        # A tolerant task that went on without some of its inputs runs again with them.
        missed = task.get("tolerant") and any(d in again for d in task["depends_on"])
        if states[task["number"]] != "N" or missed:
            again[task["number"]] = None
    renumber = {number: new for new, number in enumerate(again)}
    tasks = []
    for task in old["tasks"]:
        if task["number"] not in renumber:
            continue
        reused = [p for d in task["depends_on"] if d not in renumber for p in products[d]]
        tasks.append(
            {
                **task,
                "number": renumber[task["number"]],
                "depends_on": [renumber[d] for d in task["depends_on"] if d in renumber],
                "reused_upstream": [*task.get("reused_upstream", []), *reused],
            }
        )
    return RerunPlan({**old, "tasks": tasks}, list(again))


def rerun_job(dpu: JobService, job_id: int, send_code: bool = False) -> tuple[int, str]:
    """Submit the rerun of job ``job_id`` through the job service ``dpu``; return the new
    job's id and the line that tells the user what was rerun."""
    old = finished_job(dpu.database, job_id)
    if old.state not in ("FINISHED", "CANCELLED"):
        raise AweError(
            f"job {job_id} is still {old.state}; rerun it once it ended "
            f"(dpu.wait({job_id}), or dpu.cancel_job({job_id}) first)"
        )
    if old.work_dir is None:
        raise AweError(f"job {job_id} never reached its DPU; submit it again with dpu.run")
    if all(state == "N" for state in old.states.values()):
        raise AweError(f"every task of job {job_id} ended N; there is nothing to rerun")
    backend = dpu.backend(old.dpu_name)
    try:
        description = _read_description(backend, old.work_dir)
    except FileNotFoundError:
        raise AweError(
            f"job {job_id}'s folder {old.work_dir} is gone from DPU {old.dpu_name}, and with "
            f"it the products a rerun would reuse; submit it again with dpu.run"
        ) from None
    done = [number for number, state in old.states.items() if state == "N"]
    journals = backend.read_journals(old.work_dir, dict.fromkeys(done, 0))
    products = {
        number: [
            {k: event.get(k) for k in ("path", "kind", "sha256", "metadata")}
            for event in last_try_products(parse_new_bytes(journals.get(number, b""))[0])
        ]
        for number in done
    }
    plan = plan_rerun(description, old.states, products)
    draft = Job.from_json({**plan.description, "job_id": None, "home": dpu.env.home})
    snapshot = _snapshot(dpu, old.code_snapshot_id, send_code)
    new_id = record_job(
        dpu.database,
        username=dpu.env.username,
        project=dpu.env.project,
        sequence=old.sequence,
        dpu_name=old.dpu_name,
        tasks=list(draft.tasks),
        options=old.options,
        parameters=old.parameters,
        code_snapshot_id=snapshot.id if snapshot else None,
        commit=old.commit,
        rerun_of=job_id,
    )
    work_dir = None
    try:
        work_dir = backend.submit(new_id, replace(draft, job_id=new_id), snapshot)
        set_work_dir(dpu.database, new_id, work_dir)
    except KeyboardInterrupt:
        from awe.dpu.service import Interrupted
        from awe.dpu.submission import settle_interrupted

        message = settle_interrupted(dpu.database, new_id, work_dir)
        raise Interrupted(new_id, message) from None
    except Exception:
        delete_job(dpu.database, new_id)
        raise
    return new_id, (
        f"Rerunning job {job_id} as job {new_id}: {len(plan.numbers)} of "
        f"{len(old.states)} tasks (those that did not end N)"
    )


def _read_description(backend: Backend, work_dir: str) -> dict[str, Any]:
    """The job's ``job.json`` as the DPU keeps it."""
    with tempfile.TemporaryDirectory(prefix="awe-rerun-") as scratch:
        local = backend.fetch(f"{work_dir}/{JOB_FILE}", Path(scratch) / JOB_FILE)
        return json.loads(local.read_text())


def _snapshot(dpu: JobService, old_id: str | None, send_code: bool) -> Snapshot | None:
    """The code the rerun runs: the checkout's (``send_code``), or the old job's own."""
    from awe.dpu.codeship import Snapshot, build_snapshot, code_roots

    if not send_code and old_id is None:
        return None
    current = build_snapshot(code_roots(Path(dpu.env.home), dpu.env.code_paths))
    if send_code or current.id == old_id:
        return current
    # The DPU keeps every snapshot it ran by id: the old job's code is there already.
    return Snapshot(old_id, b"")
