"""Opening the job database: one engine per URL, clear errors, the schema made current.

SQLite is tuned for several processes at once (WAL, a busy timeout, and ``BEGIN IMMEDIATE``
so a writer queues for the lock instead of failing with "database is locked" when it
upgrades a read lock). MySQL/MariaDB connections time out after a few seconds, so an
unreachable server is an error naming host and port, never a hang. A database that does
not exist yet is created, and its schema brought to the newest Alembic revision.
"""

from __future__ import annotations

import random
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import OperationalError

from awe.database_url import describe_location, mask_url
from awe.db.database import Database, error_code, reason, unreachable
from awe.db.schema import ensure_current
from awe.errors import DatabaseError

__all__ = ["Database", "open_database"]

#: Seconds PyMySQL waits for the TCP connection.
MYSQL_CONNECT_TIMEOUT = 5
#: Seconds the first contact (TCP connection plus the server's greeting) may take in all.
MYSQL_PROBE_DEADLINE = 6
#: Seconds a SQLite writer waits for another process's lock.
SQLITE_BUSY_TIMEOUT = 60
MYSQL_UNKNOWN_DATABASE = 1049


def open_database(url: str, *, upgrade: bool = True) -> Database:
    """Connect to ``url``, creating the database if missing and (by default) upgrading its
    schema to the newest revision. Raises :class:`DatabaseError` with host and port
    (password masked) when the server cannot be reached."""
    parsed = make_url(url)
    engine = (
        _sqlite_engine(parsed) if parsed.get_backend_name() == "sqlite" else _mysql_engine(parsed)
    )
    database = Database(engine)
    _check_connection(database)
    if upgrade:
        ensure_current(database)
    return database


def _sqlite_engine(url: URL) -> Engine:
    if url.database and url.database != ":memory:":
        folder = Path(url.database).expanduser().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise DatabaseError(
                f"cannot create the folder {folder} for the SQLite database {url.database}: "
                f"{err.strerror or err}. Fix: choose a writable path in database_url."
            ) from None
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT * 1000}")
        if url.database and url.database != ":memory:":
            _use_wal(cursor)
            # With WAL, NORMAL stays consistent after a crash and skips an fsync per commit;
            # a commit lost to a power cut is folded again from the journals.
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _use_wal(cursor: Any) -> None:
    """Put the SQLite file in WAL mode (a property of the file: the first connection sets
    it). Changing the journal mode fails at once with "database is locked" while another
    connection is busy (SQLite's busy timeout does not cover it), so it is retried."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT
    while cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0.01, 0.05))


def _mysql_engine(url: URL) -> Engine:
    if "charset" not in url.query:
        url = url.update_query_dict({"charset": "utf8mb4"})
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_recycle=3600,
        connect_args={"connect_timeout": MYSQL_CONNECT_TIMEOUT},
    )


def _probe_mysql_server(url: str) -> None:
    """Fail fast unless a server at the URL's host:port sends its greeting in time.

    PyMySQL's connect_timeout covers only the TCP connection: a firewall or proxy that
    accepts the connection but never answers would otherwise hang the first query."""
    parsed = make_url(url)
    deadline = time.monotonic() + MYSQL_PROBE_DEADLINE
    try:
        with socket.create_connection(
            (parsed.host or "localhost", parsed.port or 3306), timeout=MYSQL_PROBE_DEADLINE
        ) as sock:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            if not sock.recv(4):
                raise ConnectionError("the server closed the connection without a greeting")
    except (OSError, ConnectionError) as err:
        why = "no answer" if isinstance(err, socket.timeout) else (err.strerror or str(err))
        raise unreachable(url, f"{why} within {MYSQL_PROBE_DEADLINE} s") from None


def _check_connection(database: Database) -> None:
    if database.dialect != "sqlite":
        _probe_mysql_server(database.url)
    try:
        database.run(lambda session: session.execute(text("SELECT 1")))
    except OperationalError as err:
        if database.dialect != "sqlite" and error_code(err) == MYSQL_UNKNOWN_DATABASE:
            _create_mysql_database(database)
            return
        raise unreachable(database.url, reason(err)) from None


def _create_mysql_database(database: Database) -> None:
    url = database.engine.url
    name = url.database
    server = create_engine(
        url.set(database=""), connect_args={"connect_timeout": MYSQL_CONNECT_TIMEOUT}
    )
    quoted = server.dialect.identifier_preparer.quote_identifier(name)
    try:
        with server.begin() as connection:
            connection.execute(
                text(f"CREATE DATABASE IF NOT EXISTS {quoted} CHARACTER SET utf8mb4")
            )
    except OperationalError as err:
        raise DatabaseError(
            f"database {name!r} does not exist on {describe_location(database.url)} and "
            f"could not be created ({reason(err)}). Fix: ask the administrator to create it, "
            f"or grant CREATE to the user in {mask_url(database.url)}."
        ) from None
    finally:
        server.dispose()
