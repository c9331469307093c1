"""Schema migrations with Alembic: upgrade, current and head revisions, and the automatic
upgrade every :func:`awe.db.engine.open_database` performs.

Two sessions opening a fresh database at once must not both run the migrations, so the
upgrade holds a lock: ``GET_LOCK`` on MySQL/MariaDB, an exclusive ``flock`` on a file beside
the SQLite database.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from awe.db.database import Database
from awe.errors import DatabaseError

SCRIPT_LOCATION = "awe.db:migrations"
MYSQL_LOCK_NAME = "awe_schema_upgrade"
LOCK_TIMEOUT = 120


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at AWE's migrations (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(database: Database) -> str | None:
    with database.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(database: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (default: the newest), under the upgrade lock."""
    with _upgrade_lock(database), database.engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)


def ensure_current(database: Database) -> None:
    """Upgrade a database whose schema is older than this AWE; refuse a newer one."""
    head = head_revision()
    current = current_revision(database)
    if current == head:
        return
    scripts = ScriptDirectory.from_config(alembic_config())
    known = {script.revision for script in scripts.walk_revisions()}
    if current is not None and current not in known:
        raise DatabaseError(
            f"the database schema is at revision {current}, which this AWE does not know "
            f"(newest known: {head}); it was written by a newer AWE. Fix: upgrade AWE."
        )
    upgrade(database)


@contextlib.contextmanager
def _upgrade_lock(database: Database) -> Iterator[None]:
    if database.dialect == "sqlite":
        path = database.engine.url.database
        if not path or path == ":memory:":
            yield
            return
        with open(Path(path).with_suffix(".upgrade.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield
        return
    with database.engine.connect() as connection:
        got = connection.execute(
            text("SELECT GET_LOCK(:name, :timeout)"),
            {"name": MYSQL_LOCK_NAME, "timeout": LOCK_TIMEOUT},
        ).scalar()
        if got != 1:
            raise DatabaseError(
                f"another session has been upgrading the database schema for over "
                f"{LOCK_TIMEOUT} s; try again when it has finished."
            )
        try:
            yield
        finally:
            connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": MYSQL_LOCK_NAME})
