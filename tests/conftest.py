"""Shared fixtures: an isolated AWE home per test, and job databases on SQLite and on the
real MariaDB server (a database of its own per test, dropped afterwards).

``database_url`` gives each test a copy of a database migrated once per session: Alembic's
migrations cost half a second per SQLite database and two and a half per MariaDB one, over
hundreds of tests. Tests of the migrations themselves (``@pytest.mark.fresh_database``, as
all of tests/test_db.py) get an empty database that ``open_database`` creates and upgrades.

MariaDB is not optional: if it cannot be reached the tests fail, naming the command that
starts it (``bash tests/services/start.sh``). Set ``AWE_TEST_MYSQL_URL`` to use another
server (default ``mysql+pymysql://root@127.0.0.1:3306``).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

MYSQL_SERVER_URL = os.environ.get("AWE_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306")
DATABASE_KINDS = ["sqlite", "mariadb"]


@pytest.fixture(autouse=True)
def awe_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own AWE home, IPython directory and working directory."""
    for name in list(os.environ):
        if name.startswith("AWE_") and name != "AWE_TEST_MYSQL_URL":
            monkeypatch.delenv(name)
    home = tmp_path / "awe-home"
    monkeypatch.setenv("AWE_HOME", str(home))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.chdir(tmp_path)
    return home


@pytest.fixture(scope="session")
def mysql_server() -> Iterator[str]:
    """URL of the MariaDB server (without a database); fails loudly when it is down."""
    engine = create_engine(MYSQL_SERVER_URL, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as err:
        pytest.fail(
            f"MariaDB is not reachable at {MYSQL_SERVER_URL} ({err.orig}). "
            f"Start it with: bash tests/services/start.sh",
            pytrace=False,
        )
    finally:
        engine.dispose()
    yield MYSQL_SERVER_URL


@pytest.fixture
def mysql_database_url(mysql_server: str) -> Iterator[str]:
    """A fresh, empty MariaDB database for one test; dropped afterwards."""
    name = f"awe_test_{uuid.uuid4().hex[:12]}"
    server = create_engine(mysql_server)
    with server.begin() as connection:
        connection.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    try:
        yield f"{mysql_server}/{name}"
    finally:
        with server.begin() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        server.dispose()


@dataclass(frozen=True)
class MigratedMySQL:
    """A MariaDB database at the newest schema: its tables' DDL and the tables with rows."""

    name: str
    tables: list[tuple[str, str]]
    filled: list[str]


@pytest.fixture(scope="session")
def migrated_mysql(mysql_server: str) -> Iterator[MigratedMySQL]:
    """A MariaDB database made and upgraded once per session, the template of each test's."""
    from awe.db.engine import open_database

    name = f"awe_template_{uuid.uuid4().hex[:12]}"
    server = create_engine(mysql_server)
    with server.begin() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        open_database(f"{mysql_server}/{name}").dispose()
        with server.connect() as connection:
            names = connection.exec_driver_sql(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (name,),
            ).scalars()
            tables = [
                (
                    table,
                    connection.exec_driver_sql(f"SHOW CREATE TABLE `{name}`.`{table}`").one()[1],
                )
                for table in names
            ]
            filled = [
                table
                for table, _ in tables
                if connection.exec_driver_sql(f"SELECT COUNT(*) FROM `{name}`.`{table}`").scalar()
            ]
        yield MigratedMySQL(name, tables, filled)
    finally:
        with server.begin() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        server.dispose()


@pytest.fixture
def migrated_mysql_database_url(mysql_server: str, migrated_mysql: MigratedMySQL) -> Iterator[str]:
    """A MariaDB database of one test's own, a copy of the session's migrated one."""
    name = f"awe_test_{uuid.uuid4().hex[:12]}"
    server = create_engine(mysql_server)
    with server.begin() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        connection.exec_driver_sql(f"USE `{name}`")
        connection.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 0")  # tables in any order
        for _, create in migrated_mysql.tables:
            connection.exec_driver_sql(create)
        for table in migrated_mysql.filled:
            connection.exec_driver_sql(
                f"INSERT INTO `{name}`.`{table}` SELECT * FROM `{migrated_mysql.name}`.`{table}`"
            )
        connection.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 1")
    try:
        yield f"{mysql_server}/{name}"
    finally:
        with server.begin() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        server.dispose()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite job database made and upgraded once per session."""
    from awe.db.engine import open_database

    path = tmp_path_factory.mktemp("migrated") / "jobs.db"
    open_database(f"sqlite:///{path}").dispose()
    return path


@pytest.fixture(params=DATABASE_KINDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The job database URL, once for SQLite and once for MariaDB: a copy of a database
    at the newest schema, or an empty one for a test marked ``fresh_database``."""
    fresh = request.node.get_closest_marker("fresh_database") is not None
    if request.param == "sqlite":
        path = tmp_path / "jobs.db"
        if not fresh:
            template = request.getfixturevalue("migrated_sqlite")
            source, copy = sqlite3.connect(template), sqlite3.connect(path)
            try:
                source.backup(copy)  # the pages, whatever the template's WAL holds
            finally:
                source.close()
                copy.close()
        return f"sqlite:///{path}"
    return request.getfixturevalue("mysql_database_url" if fresh else "migrated_mysql_database_url")


@pytest.fixture
def database(database_url: str):
    """An opened (created and upgraded) job database on both backends."""
    from awe.db.engine import open_database

    db = open_database(database_url)
    yield db
    db.dispose()


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory):
    """A real OpenSSH server on 127.0.0.1 (started once per test session)."""
    from tests.sshd import SSHServer

    server = SSHServer(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


@pytest.fixture
def silent_server() -> Iterator[str]:
    """``host:port`` of a loopback listener that accepts connections and never answers
    (what a firewall or a hung server looks like), without any traffic off this machine."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # the kernel completes the handshake; nobody ever speaks
        host, port = listener.getsockname()
        yield f"{host}:{port}"


@pytest.fixture
def closed_port() -> str:
    """``host:port`` on loopback where nothing listens (connection refused at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        host, port = probe.getsockname()
    return f"{host}:{port}"
