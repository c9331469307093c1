"""Shared fixtures: an isolated AWE home per test, and job databases on SQLite and on the
real MariaDB server (a fresh database per test, dropped afterwards).

MariaDB is not optional: if it cannot be reached the tests fail, naming the command that
starts it (``bash tests/services/start.sh``). Set ``AWE_TEST_MYSQL_URL`` to use another
server (default ``mysql+pymysql://root@127.0.0.1:3306``).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
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


@pytest.fixture(params=DATABASE_KINDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The job database URL, once for SQLite and once for MariaDB."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.db'}"
    return request.getfixturevalue("mysql_database_url")


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
