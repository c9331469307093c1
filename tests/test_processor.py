"""The Processor of F1: DPU selection, job ids from the database, the session log."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from awe.db.jobs import TaskSpec, record_job
from awe.dpu import Processor
from awe.errors import ConfigError, DatabaseError

LINE = re.compile(r"^\[(?P<user>[^\]]+)\] \d\d:\d\d:\d\d - (?P<message>.*)$")


def submit(database, username: str) -> int:
    return record_job(
        database,
        username=username,
        project="P",
        sequence="Bias",
        dpu_name="local",
        tasks=[TaskSpec("Bias[ccd50]")],
    )


def test_get_jobids_lists_this_users_jobs_from_every_session(database, database_url) -> None:
    mine = [submit(database, "alice"), submit(database, "alice")]
    submit(database, "bob")
    dpu = Processor(database_url=database_url, username="alice")
    assert dpu.get_jobids() == mine
    other_session = Processor(database_url=database_url, username="alice")
    assert other_session.get_jobids() == mine


def test_database_is_opened_on_first_use_and_errors_name_the_source(monkeypatch) -> None:
    monkeypatch.setenv("AWE_DATABASE_URL", "mysql+pymysql://u:pw@127.0.0.1:1/awe")
    dpu = Processor()  # no connection yet: the prompt starts even when the server is down
    with pytest.raises(DatabaseError) as err:
        dpu.get_jobids()
    assert "127.0.0.1:1" in str(err.value)
    assert "environment variable AWE_DATABASE_URL" in str(err.value)
    assert "pw" not in str(err.value).replace("pymysql", "")


def test_changing_database_url_switches_database(tmp_path: Path) -> None:
    first, second = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    dpu = Processor(database_url=first, username="alice")
    job_id = submit(dpu.database, "alice")
    assert dpu.get_jobids() == [job_id]
    dpu.env.database_url = second
    assert dpu.get_jobids() == []


def test_dpu_identifiers_and_selection(capsys: pytest.CaptureFixture) -> None:
    dpu = Processor(username="alice")
    assert dpu.get_dpu_identifiers() == ["local"]
    assert dpu.show_dpu_identifiers() == ["local"]
    shown = capsys.readouterr().out
    assert LINE.match(shown.splitlines()[0])["message"].startswith("local (selected): this machine")
    assert dpu.select_dpu("local") == "local"
    with pytest.raises(ConfigError, match="configured DPUs: local"):
        dpu.select_dpu("lisa")
    assert dpu.env.dpu_name == "local"


def test_printed_lines_go_to_the_session_log(tmp_path: Path, capsys) -> None:
    dpu = Processor(username="alice")
    dpu.select_dpu("local")
    printed = capsys.readouterr().out.splitlines()
    logs = list(tmp_path.glob("*.log"))
    assert len(logs) == 1 and re.fullmatch(r"\d{8}_\d{6}\.log", logs[0].name)
    assert logs[0].read_text().splitlines() == printed
    assert LINE.match(printed[0]).groupdict() == {"user": "alice", "message": "Selected DPU local"}


def test_session_log_can_move_or_be_off(tmp_path: Path) -> None:
    Processor(session_log=str(tmp_path / "logs")).select_dpu("local")
    assert len(list((tmp_path / "logs").glob("*.log"))) == 1
    Processor(session_log="").select_dpu("local")
    assert list(tmp_path.glob("*.log")) == []
