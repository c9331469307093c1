"""Keeps the queue current while nobody looks from a prompt: every few seconds the server
folds the journals of unfinished jobs into the database, as ``dpu.get_status`` does.

Only jobs of DPUs configured on the server are followed (the others are said once in the
server log); one failed round is logged and the next one tries again. The server folds
states and logs only: committing a job's products (C=1) stays with its owner's sessions,
which put them in the owner's data store."""

from __future__ import annotations

import logging
import threading

from awe.web.queue import unfinished_jobs

log = logging.getLogger(__name__)


class Syncer:
    """A daemon thread that syncs unfinished jobs every ``interval`` seconds."""

    def __init__(self, database_url: str, interval: float) -> None:
        self.database_url = database_url
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unconfigured_said: set[str] = set()

    def start(self) -> None:
        if self.interval <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="awe-web-sync", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        from awe.dpu.processor import Processor

        processor = Processor(database_url=self.database_url, session_log="")
        while not self._stop.wait(self.interval):
            try:
                self.sync_once(processor)
            except Exception:  # noqa: BLE001 - a bad round must not end the thread
                log.exception("syncing unfinished jobs failed; trying again in %s s", self.interval)

    def sync_once(self, processor) -> None:
        from awe.dpu.remote.shell import RemoteError
        from awe.dpu.sync import sync_job

        configured = set(processor.get_dpu_identifiers())
        for dpu, job_ids in unfinished_jobs(processor.database).items():
            if dpu in configured:
                backend = processor.backend(dpu)
                for job_id in job_ids:
                    try:
                        sync_job(processor.database, backend, job_id)
                    except RemoteError as err:
                        log.warning("job %s: cannot reach DPU %s (%s)", job_id, dpu, err)
            elif dpu not in self._unconfigured_said:
                self._unconfigured_said.add(dpu)
                log.warning(
                    "jobs %s run on DPU %r, which is not configured on this server: their "
                    "state here changes only when their owners look (dpu.get_status)",
                    job_ids,
                    dpu,
                )
