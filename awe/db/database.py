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
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from awe.database_url import describe_location, mask_url
from awe.errors import DatabaseError

#: MySQL errors after which the whole transaction may simply be run again.
MYSQL_RETRYABLE = {1205, 1213}  # lock wait timeout, deadlock
#: MySQL client errors that mean the server is out of reach or went away.
MYSQL_CONNECTION_LOST = {2003, 2006, 2013, 2055}
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
        """A session in one transaction: committed on success, rolled back on error.

        A server that went away (restarting, unreachable) is a :class:`DatabaseError` naming
        it; the pool checks each connection before use, so the next call after the server
        is back simply works. Such a transaction is not retried: whether a lost COMMIT
        happened cannot be known, and running an insert twice would duplicate it."""
        try:
            with self._sessions.begin() as session:
                yield session
        except OperationalError as err:
            if error_code(err) not in MYSQL_CONNECTION_LOST:
                raise
            raise unreachable(
                self.url,
                f"{reason(err)}. Jobs go on on their DPUs and are followed again once the "
                f"database is back",
            ) from None

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


def error_code(err: OperationalError) -> Any:
    """The driver's error number (MySQL), or None."""
    return err.orig.args[0] if err.orig is not None and err.orig.args else None


def _retryable(err: OperationalError) -> bool:
    """A transaction the database turned away but would take if tried again."""
    if isinstance(err.orig, sqlite3.OperationalError):
        return "locked" in str(err.orig)
    return error_code(err) in MYSQL_RETRYABLE


def reason(err: OperationalError) -> str:
    """What the driver said went wrong, in one line."""
    if err.orig is not None and len(err.orig.args) > 1:
        return str(err.orig.args[1])
    return str(err.orig or err).splitlines()[0]


def unreachable(url: str, why: str) -> DatabaseError:
    """The error for a database server out of reach, with the fix."""
    return DatabaseError(
        f"cannot reach the database at {describe_location(url)} ({mask_url(url)}): "
        f"{why}. Fix: start the server or correct database_url "
        f"(AWE_DATABASE_URL or c.Env.database_url); `awe config` shows where it was set."
    )
