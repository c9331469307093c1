"""The job database on SQLite and on the real MariaDB: schema, migrations, job records,
concurrent submission, and the errors users see when the database is out of reach."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import DataError, IntegrityError

from awe.db.engine import open_database
from awe.db.jobs import TaskSpec, job_ids, record_job
from awe.db.models import Base, Job, JobState, Task, TaskDependency, TaskState
from awe.db.schema import current_revision, head_revision, upgrade
from awe.errors import DatabaseError

TABLES = {
    "awe_users",
    "awe_projects",
    "awe_jobs",
    "awe_tasks",
    "awe_task_dependencies",
    "awe_log_records",
}


# The migrations themselves: every database here starts empty.
pytestmark = pytest.mark.fresh_database


def test_fresh_database_is_created_at_the_newest_schema(database) -> None:
    assert current_revision(database) == head_revision()
    assert set(inspect(database.engine).get_table_names()) >= TABLES


def test_migrations_match_the_models(database) -> None:
    with database.engine.connect() as connection:
        diffs = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diffs == []


def test_migrations_downgrade_and_upgrade_again(database) -> None:
    upgrade(database, "head")
    from alembic import command

    from awe.db.schema import alembic_config

    with database.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")
    assert not TABLES & set(inspect(database.engine).get_table_names())
    upgrade(database)
    assert current_revision(database) == head_revision()


def test_mysql_database_that_does_not_exist_is_created(mysql_server: str) -> None:
    name = f"awe_test_created_{int(time.time() * 1000)}"
    db = open_database(f"{mysql_server}/{name}")
    try:
        assert current_revision(db) == head_revision()
    finally:
        with db.engine.begin() as connection:
            connection.execute(text(f"DROP DATABASE `{name}`"))
        db.dispose()


def test_a_job_is_recorded_with_its_tasks_and_graph(database) -> None:
    job_id = record_job(
        database,
        username="alice",
        project="P",
        sequence="Bias>HotPixels",
        dpu_name="local",
        tasks=[TaskSpec("Bias[ccd50]"), TaskSpec("HotPixels[ccd50]", depends_on=[0])],
        options={"i": "WFI", "d": "2000-04-28"},
        parameters={"BiasFrame.process_params.SIGMA_CLIP": 5.0},
    )
    with database.session() as session:
        job = session.get(Job, job_id)
        assert job.state is JobState.QUEUED
        assert job.options == {"i": "WFI", "d": "2000-04-28"}
        assert job.parameters == {"BiasFrame.process_params.SIGMA_CLIP": 5.0}
        assert [t.name for t in job.tasks] == ["Bias[ccd50]", "HotPixels[ccd50]"]
        assert all(t.state is TaskState.QUEUED for t in job.tasks)
        assert job.tasks[1].depends_on == [job.tasks[0]]
        assert job.user.name == "alice" and job.project.name == "P"
        assert job.submitted_at.tzinfo is not None


def test_times_keep_microseconds_and_timezone(database) -> None:
    job_id = record_job(
        database, username="u", project="p", sequence="S", dpu_name="local", tasks=[TaskSpec("t")]
    )
    started = datetime(2000, 4, 28, 12, 10, 23, 123456, tzinfo=timezone.utc)
    finished = datetime(2000, 4, 28, 12, 10, 25, 654321, tzinfo=timezone.utc)
    with database.session() as session:
        task = session.scalars(select(Task).where(Task.job_id == job_id)).one()
        task.started_at, task.finished_at = started, finished
    with database.session() as session:
        task = session.scalars(select(Task).where(Task.job_id == job_id)).one()
        assert task.started_at == started
        assert task.duration == pytest.approx(2.530865)


@pytest.mark.parametrize(
    ("tasks", "message"),
    [([], "has no tasks"), ([TaskSpec("a", depends_on=[1])], "depends on \\[1\\]")],
)
def test_bad_jobs_write_nothing(database, tasks, message) -> None:
    with pytest.raises(ValueError, match=message):
        record_job(database, username="u", project="p", sequence="S", dpu_name="local", tasks=tasks)
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 0
        assert session.scalar(select(func.count()).select_from(Task)) == 0


def test_a_failed_transaction_leaves_no_job_without_tasks(database) -> None:
    # A name longer than the column makes the task insert fail after the job row was added
    # (MariaDB in strict mode refuses it; SQLite does not enforce lengths, so use a NULL).
    bad_name = None if database.dialect == "sqlite" else "x" * 1000
    refusal = (
        (IntegrityError, "NOT NULL constraint failed: awe_tasks.name")
        if database.dialect == "sqlite"
        else (DataError, "Data too long for column 'name'")
    )
    with pytest.raises(refusal[0], match=re.escape(refusal[1])):
        record_job(
            database,
            username="u",
            project="p",
            sequence="S",
            dpu_name="local",
            tasks=[TaskSpec("ok"), TaskSpec(bad_name)],
        )
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 0
        assert session.scalar(select(func.count()).select_from(TaskDependency)) == 0


def _submit_jobs(url: str, worker: int, count: int) -> list[int]:
    db = open_database(url)
    try:
        return [
            record_job(
                db,
                username=f"user{worker % 2}",
                project="shared",
                sequence="S",
                dpu_name="local",
                tasks=[TaskSpec("a"), TaskSpec("b", depends_on=[0])],
            )
            for _ in range(count)
        ]
    finally:
        db.dispose()


def test_concurrent_sessions_get_distinct_job_ids(database, database_url) -> None:
    workers, per_worker = 4, 15
    with ProcessPoolExecutor(workers) as pool:
        results = list(
            pool.map(_submit_jobs, [database_url] * workers, range(workers), [per_worker] * workers)
        )
    ids = [job_id for batch in results for job_id in batch]
    assert len(ids) == len(set(ids)) == workers * per_worker
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == len(ids)
        assert session.scalar(select(func.count()).select_from(Task)) == 2 * len(ids)
        assert session.scalar(select(func.count()).select_from(TaskDependency)) == len(ids)
    assert job_ids(database, "user0") == sorted(results[0] + results[2])


def _open_and_report(url: str) -> str | None:
    db = open_database(url)
    try:
        return current_revision(db)
    finally:
        db.dispose()


def test_concurrent_first_opens_upgrade_once(database_url: str) -> None:
    with ProcessPoolExecutor(4) as pool:
        revisions = list(pool.map(_open_and_report, [database_url] * 4))
    assert revisions == [head_revision()] * 4


def test_schema_newer_than_this_awe_is_refused(database) -> None:
    with database.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'f00dfeed'"))
    with pytest.raises(DatabaseError, match="newer AWE"):
        open_database(database.url)


@pytest.mark.parametrize(
    ("kind", "reason"),
    [("closed_port", "Connection refused"), ("silent_server", "no answer within")],
)
def test_unreachable_mysql_is_a_quick_clear_error(kind: str, reason: str, request) -> None:
    host = request.getfixturevalue(kind)
    started = time.monotonic()
    with pytest.raises(DatabaseError) as err:
        open_database(f"mysql+pymysql://alice:s3cret@{host}/awe")
    elapsed = time.monotonic() - started
    message = str(err.value)
    assert host in message and reason in message
    assert "s3cret" not in message and "alice:***@" in message
    assert elapsed < 10


def test_awe_db_commands(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWE_DATABASE_URL", database_url)
    upgraded = subprocess.run(
        [sys.executable, "-m", "awe.cli", "db", "upgrade"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"schema revision {head_revision()}" in upgraded.stdout
    current = subprocess.run(
        [sys.executable, "-m", "awe.cli", "db", "current"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"schema revision {head_revision()} (newest: {head_revision()})" in current.stdout


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////tmp/x.db",
        "sqlite://",
        "mysql+pymysql://root@127.0.0.1:3306/test",
        "mysql+pymysql://alice:s3cret@db.example.org:3307/awe?charset=utf8mb4",
        "mysql+pymysql://alice:p%40ss%3Aword@[::1]:3306/awe",
        "mariadb+pymysql://bob:@host/awe",
    ],
)
def test_light_url_parsing_agrees_with_sqlalchemy(url: str) -> None:
    from sqlalchemy.engine import make_url

    from awe.database_url import mask_url, parse_url

    reference = make_url(url)
    assert mask_url(url) == reference.render_as_string(hide_password=True)
    parsed = parse_url(url)
    assert (parsed.drivername, parsed.host, parsed.port, parsed.database) == (
        reference.drivername,
        reference.host,
        reference.port,
        reference.database,
    )
