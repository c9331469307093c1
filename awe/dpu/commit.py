"""Committing products (``C=1``): a finished task's files enter the data store and become
typed frames in the database, with their provenance.

A task reports products in its journal (path on the DPU, kind, sha256, metadata). Once the
task ended ``N``, each product is fetched from the DPU (a remote one keeps it until then),
put into the local content-addressed store, its hash checked, and recorded as a frame of
its kind (``BiasFrame``, ``ReducedScienceFrame``, ...) with job, task, code snapshot and
process parameters. The same content of the same kind is recorded once, so running a job
again does not duplicate its products; a task whose products were committed is marked, so
a commit interrupted half way is finished by the next sync.
"""

from __future__ import annotations

import contextlib
import tempfile
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from awe.data.store import sha256_file
from awe.db.database import Database
from awe.db.models import Job, LogRecord, Task, TaskState, utcnow
from awe.dpu.backends.base import Backend
from awe.dpu.journal import last_try_products, parse_new_bytes
from awe.messages import INHERITED_COLUMNS

#: Product metadata that becomes frame columns; ``results=`` and anything else goes to
#: the frame's ``results``.
FRAME_KEYS = (*INHERITED_COLUMNS, "is_valid", "quality_flags")


def commit_products(database: Database, backend: Backend, job_id: int, data_root: str) -> None:
    """Commit the products of the job's tasks that ended N and are not committed yet."""
    from awe.data.store import DataStore

    with database.session() as session:
        job = session.get(Job, job_id)
        if not job.commit:
            return
        tasks = {
            t.number: t.id for t in job.tasks if t.state is TaskState.N and not t.products_committed
        }
        work_dir, snapshot, parameters = job.work_dir, job.code_snapshot_id, job.parameters
        instrument = job.options.get("instrument")
    if not tasks:
        return
    journals = backend.read_journals(work_dir, dict.fromkeys(tasks, 0))
    store = DataStore(data_root)
    for number, task_id in sorted(tasks.items()):  # a task's upstream first: its provenance
        events, _ = parse_new_bytes(journals.get(number, b""))
        products = last_try_products(events)
        with tempfile.TemporaryDirectory(prefix="awe-commit-") as scratch:
            rows, notes = _stage(products, backend, store, Path(scratch), instrument)
        _record(database, job_id, task_id, rows, notes, snapshot, parameters, store)


def _stage(
    products: list[dict[str, Any]],
    backend: Backend,
    store: Any,
    scratch: Path,
    instrument: str | None,
) -> tuple[list[tuple[type, dict[str, Any]]], list[tuple[str, str]]]:
    """Fetch, store and check each product; the frame rows to write, and notes to log."""
    from awe.db.frames import frame_class

    rows, notes = [], []
    for product in products:
        try:
            cls = frame_class(product["kind"])
        except ValueError as err:
            notes.append(("WARNING", f"Product {product['path']} not committed: {err}"))
            continue
        metadata = dict(product.get("metadata") or {})
        values = {key: metadata.pop(key) for key in FRAME_KEYS if key in metadata}
        values.setdefault("instrument", instrument)
        if not values["instrument"]:
            notes.append(
                (
                    "WARNING",
                    f"Product {product['path']} not committed: it names no "
                    f"instrument (add instrument=... to add_product)",
                )
            )
            continue
        if "night" in metadata:
            values["night"] = date.fromisoformat(str(metadata.pop("night")))
        for key in ("valid_from", "valid_to"):  # validity range of calibration products
            if metadata.get(key):
                values[key] = datetime.fromisoformat(str(metadata.pop(key)))
        if "input_ids" in metadata:  # provenance: the frames it was made from
            values["input_ids"] = [int(i) for i in metadata.pop("input_ids")]
        if "input_sha256" in metadata:  # ... and those made earlier in the same job
            values["input_sha256"] = [str(d) for d in metadata.pop("input_sha256")]
        local = backend.fetch(product["path"], scratch / Path(product["path"]).name)
        digest = sha256_file(local)  # checked before it enters the store: nothing to undo
        if digest != product["sha256"]:
            notes.append(
                (
                    "ERROR",
                    f"Product {product['path']} not committed: its content "
                    f"changed after the task reported it (sha256 {digest}, "
                    f"journal says {product['sha256']})",
                )
            )
            continue
        store.put(local)
        values.update(
            filename=Path(product["path"]).name,
            sha256=digest,
            size=local.stat().st_size,
            results={**metadata.pop("results", {}), **metadata},  # e.g. read_noise
        )
        rows.append((cls, values))
        notes.append(("INFO", f"Committed {cls.__name__} {values['filename']} ({digest[:12]})"))
    return rows, notes


def _record(
    database: Database,
    job_id: int,
    task_id: int,
    rows: list[tuple[type, dict[str, Any]]],
    notes: list[tuple[str, str]],
    snapshot: str | None,
    parameters: dict[str, Any],
    store: Any,
) -> None:
    from awe.db.frames import Frame

    def write(session: Any) -> None:
        # The task row, locked: a second session committing the same task waits here and
        # then finds it done.
        task = session.scalar(select(Task).where(Task.id == task_id).with_for_update())
        if task.products_committed:  # another session did it meanwhile
            return
        for cls, values in rows:
            present = session.scalar(select(cls.id).where(cls.sha256 == values["sha256"]))
            if present is not None:
                continue
            input_ids = values.get("input_ids", [])
            input_sha256 = values.get("input_sha256", [])
            frame = cls(
                **{k: v for k, v in values.items() if k not in ("input_ids", "input_sha256")},
                job_id=job_id,
                task_id=task_id,
                code_snapshot_id=snapshot,
                process_params=parameters,
            )
            if input_ids or input_sha256:
                frame.inputs = list(
                    session.scalars(
                        select(Frame).where(
                            Frame.id.in_(input_ids) | Frame.sha256.in_(input_sha256)
                        )
                    )
                )
            # Another job may commit the same content meanwhile: its frame is this one.
            with contextlib.suppress(IntegrityError), session.begin_nested():
                session.add(frame)
                frame.record_contents(session, store.path(values["sha256"]))
        task.products_committed = True
        now = utcnow()
        session.add_all(
            LogRecord(job_id=job_id, task_id=task_id, time=now, level=level, message=text)
            for level, text in notes
        )

    database.run(write)
