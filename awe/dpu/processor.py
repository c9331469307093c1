"""The Processor: the ``dpu`` object astronomers hold, a thin facade over the DPU layers.

It keeps no state the database does not also hold (beyond which DPU this session selected),
so a new session, or another user on the same MySQL server, sees the same jobs. The database
is opened on first use, which keeps the ``awe>`` prompt fast to start.

The methods follow the Astro-WISE Processor. Those that need the sequence registry, the
planner and the backends (``run``, ``get_status``, ``get_logs``, ``cancel_job``, ...) come
with them; until then they do not exist rather than pretend.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime
from typing import TYPE_CHECKING, Any

from awe.dpu.session_log import SessionLog
from awe.env import Env, configured_dpu_names, load_env
from awe.errors import DatabaseError

if TYPE_CHECKING:
    from awe.db.engine import Database


class Processor:
    """Submits and follows processing jobs on Distributed Processing Units.

    ``Processor()`` loads the configuration (:func:`awe.env.load_env`); keyword arguments
    override it for this Processor, e.g. ``Processor(database_url='sqlite:///my.db')``.
    """

    def __init__(self, env: Env | None = None, **settings: Any) -> None:
        self.env = env if env is not None else load_env(**settings)
        if env is not None:
            for key, value in settings.items():
                self.env.set(key, value)
        self.session_log = SessionLog(self.env.session_log, datetime.now())
        self._database: Database | None = None
        self.env.observe(self._forget_database, names=["database_url"])

    # ---- plumbing -------------------------------------------------------------------------
    @property
    def database(self) -> Database:
        """The job database, opened (and created or upgraded) on first use."""
        if self._database is None:
            from awe.db.engine import open_database

            try:
                self._database = open_database(self.env.database_url)
            except DatabaseError as err:
                source = self.env.source_of("database_url")
                raise DatabaseError(f"{err} (database_url came from: {source})") from None
        return self._database

    def _forget_database(self, _change: Any = None) -> None:
        if self._database is not None:
            self._database.dispose()
            self._database = None

    def say(self, message: str) -> str:
        """Print ``[user] HH:MM:SS - message`` and keep it in the session log."""
        line = f"[{self.env.username}] {datetime.now():%H:%M:%S} - {message}"
        print(line)
        self.session_log.write(line)
        return line

    # ---- DPUs -----------------------------------------------------------------------------
    def get_dpu_identifiers(self) -> list[str]:
        """Names of all configured DPUs."""
        return configured_dpu_names()

    def show_dpu_identifiers(self) -> list[str]:
        """Print each configured DPU, marking the selected one; return their names."""
        names = self.get_dpu_identifiers()
        for name in names:
            marker = " (selected)" if name == self.env.dpu_name else ""
            self.say(f"{name}{marker}: {_describe_dpu(name)}")
        return names

    def select_dpu(self, name: str) -> str:
        """Send this session's jobs to DPU ``name`` from now on."""
        self.env.set("dpu_name", name)
        self.say(f"Selected DPU {name}")
        return name

    # ---- jobs -----------------------------------------------------------------------------
    def get_jobids(self) -> list[int]:
        """Ids of your jobs (all sessions), oldest first."""
        from awe.db.jobs import job_ids

        return job_ids(self.database, self.env.username)

    def __repr__(self) -> str:
        from awe.db.url import mask_url

        return (
            f"<Processor user={self.env.username} project={self.env.project} "
            f"dpu={self.env.dpu_name} database={mask_url(self.env.database_url)}>"
        )


def _describe_dpu(name: str) -> str:
    if name == "local":
        return f"this machine ({socket.gethostname()}, {os.cpu_count()} cores)"
    return "configured DPU"
