"""Submitting and cancelling for a token's user, through a :class:`Processor` acting as
that user: the web service applies the Processor's own rules and says its messages
(unknown sequences and options, only the owner cancels, ...), never copies of them.

Processors are kept per user and project (loading sequences is not free) and called one
at a time: submissions are rare, and the sequence registry is shared by the process.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from awe.errors import AweError

if TYPE_CHECKING:
    from awe.dpu.processor import Processor
    from awe.dpu.status import JobStatus


#: Keywords of ``dpu.run`` itself: given among the options they would be taken as these.
RUN_KEYWORDS = ("sequence", "send_code", "dpu", "time_limit", "dry_run")


class Actions:
    """Submit and cancel as a given user, against the server's database and DPUs."""

    def __init__(self, database_url: str, default_project: str, server_user: str) -> None:
        self.database_url = database_url
        self.default_project = default_project
        self.server_user = server_user
        self._processors: dict[tuple[str, str], Processor] = {}
        self._lock = threading.Lock()

    def processor(self, username: str, project: str | None = None) -> Processor:
        """The Processor acting as ``username`` in ``project`` (a bad name is refused
        by the Processor's configuration checks)."""
        from awe.dpu.processor import Processor

        key = (username, project or self.default_project)
        if key not in self._processors:
            self._processors[key] = Processor(
                database_url=self.database_url,
                username=key[0],
                project=key[1],
                session_log="",
            )
        return self._processors[key]

    def submit(
        self,
        username: str,
        sequence: str,
        options: dict[str, Any],
        *,
        project: str | None = None,
        dpu: str | None = None,
        time_limit: float | None = None,
        send_code: bool = True,
    ) -> int:
        """``dpu.run(sequence, **options)`` as ``username``; the new job id."""
        clashes = [name for name in options if name in RUN_KEYWORDS]
        if clashes:
            raise AweError(
                f"{', '.join(map(repr, clashes))} cannot be a sequence option: it is a field "
                f"of the request itself ({', '.join(RUN_KEYWORDS[1:4])})"
            )
        with self._lock:
            return self.processor(username, project).run(
                sequence, send_code=send_code, dpu=dpu, time_limit=time_limit, **options
            )

    def sequences(self) -> list[dict[str, Any]]:
        """Every sequence the server can run, with its options (as the prompt shows them)."""
        from awe.dpu.options import all_options

        with self._lock:
            registry = self.processor(self.server_user).registry
            described = []
            for name in registry.identifiers():
                spec = registry.get(name)
                options = [
                    {
                        "short": o.short,
                        "long": o.long,
                        "type": o.type.__name__,
                        "default": o.default,
                        "required": o.required,
                        "help": o.help,
                    }
                    for o in all_options([spec])
                ]
                described.append(
                    {"name": name, "doc": spec.doc, "fan_out": spec.fan_out, "options": options}
                )
            registry.problems.clear()
            return described

    def cancel(self, username: str, job_id: int) -> JobStatus:
        """``dpu.cancel_job(job_id)`` as ``username``."""
        with self._lock:
            return self.processor(username).cancel_job(job_id)
