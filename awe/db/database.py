"""A job database handle: an engine plus short transactions, retried when the database
turns one away.

Kept apart from :mod:`awe.db.engine` (which opens databases and upgrades their schema
through :mod:`awe.db.schema`) so that the schema module can use it without importing the
opener back.
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from awe.database_url import mask_url

#: MySQL errors after which the whole transaction may simply be run again.
MYSQL_RETRYABLE = {1205, 1213}  # lock wait timeout, deadlock
TRANSACTION_ATTEMPTS = 8

T = TypeVar("T")


class Database:
    """An engine plus a session factory. Use :meth:`session` for one short transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.url = engine.url.render_as_string(hide_password=False)
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        with self._sessions.begin() as session:
            yield session

    def run(self, work: Callable[[Session], T]) -> T:
        """Run ``work(session)`` in one transaction, again from the start when the database
        turned it away: InnoDB picks deadlock victims among concurrent writers, and SQLite
        answers "database is locked" at once in the few cases its busy timeout does not
        cover. The cure for both is to retry after a short random pause."""
        for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
            try:
                with self.session() as session:
                    return work(session)
            except OperationalError as err:
                if not _retryable(err) or attempt == TRANSACTION_ATTEMPTS:
                    raise
                time.sleep(random.uniform(0, 0.05 * attempt))
        raise AssertionError("unreachable")

    def dispose(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({mask_url(self.url)!r})"


def _retryable(err: OperationalError) -> bool:
    """A transaction the database turned away but would take if tried again."""
    if isinstance(err.orig, sqlite3.OperationalError):
        return "locked" in str(err.orig)
    code = err.orig.args[0] if err.orig is not None and err.orig.args else None
    return code in MYSQL_RETRYABLE
