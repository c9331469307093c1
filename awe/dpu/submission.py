"""What a submission interrupted by Ctrl-C leaves: a job that ends, never one left QUEUED
with no work dir for nothing to finish.

``dpu.run`` records the job (with its tasks, in one transaction) before it hands the job to
the DPU, which may take long (a code snapshot uploading, inputs staging, a slow login
node). An interrupt during the record rolls the transaction back: no job. An interrupt
after it lands here: if the DPU already had the job (its work dir is known), the job stays
and is followed as usual; otherwise its tasks end ``U`` with the reason, and the job is
final. A second Ctrl-C meanwhile waits until this short transaction is done.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

from awe.db.database import Database
from awe.db.jobs import end_unstarted_job, set_work_dir

INTERRUPTED = "never started: the submission was interrupted (KeyboardInterrupt)"


def settle_interrupted(database: Database, job_id: int, work_dir: str | None) -> str:
    """Leave job ``job_id`` in a state that ends; return the sentence saying which."""
    with _sigint_deferred():
        if work_dir is not None:
            set_work_dir(database, job_id, work_dir)
            return (
                f"Interrupted after the DPU took job {job_id}: it runs; "
                f"dpu.cancel_job({job_id}) stops it"
            )
        end_unstarted_job(database, job_id, INTERRUPTED)
        return f"Interrupted: job {job_id} was not started; its tasks end U ({INTERRUPTED})"


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold back SIGINT (delivered when the block ends) in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
