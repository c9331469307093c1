"""Configuration layers: defaults < awe_config.py < environment < run time, with sources."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from awe.env import ENV_VARIABLES, Env, load_env
from awe.errors import ConfigError


def write_config(home: Path, text: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "awe_config.py"
    path.write_text(text)
    return path


def test_defaults_live_in_home(awe_home: Path) -> None:
    env = load_env()
    assert env.home == str(awe_home)
    assert env.database_url == f"sqlite:///{awe_home / 'awe.db'}"
    assert env.data_root == str(awe_home / "data")
    assert env.dpu_name == "local"
    assert env.username  # the login name
    assert env.source_of("dpu_name") == "default"
    assert awe_home.is_dir()


def test_layers_override_in_order(awe_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_config(
        awe_home, "c.Env.project = 'FROMFILE'\nc.Env.username = 'filer'\nc.Env.session_log = ''\n"
    )
    monkeypatch.setenv("AWE_USERNAME", "envuser")
    env = load_env(project="RUNTIME")
    assert env.project == "RUNTIME" and env.source_of("project") == "set at run time"
    assert env.username == "envuser"
    assert env.source_of("username") == "environment variable AWE_USERNAME"
    assert env.session_log == "" and env.source_of("session_log") == str(config)
    env.username = "later"
    assert env.source_of("username") == "set at run time"


def test_every_key_has_an_environment_variable(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    values = {
        "database_url": f"sqlite:///{tmp_path / 'x.db'}",
        "dpu_name": "local",
        "project": "P1",
        "username": "u1",
        "data_root": str(tmp_path / "store"),
        "session_log": str(tmp_path / "logs"),
    }
    for key, value in values.items():
        monkeypatch.setenv(ENV_VARIABLES[key], value)
    env = load_env()
    for key, value in values.items():
        assert getattr(env, key) == value
        assert env.source_of(key) == f"environment variable {ENV_VARIABLES[key]}"
    traits = set(Env.class_trait_names()) - {"config", "parent", "log"}
    assert set(ENV_VARIABLES) == traits - {"dpus", "code_paths"}  # config file only
    assert Env.keys() == [*ENV_VARIABLES, "dpus", "code_paths"]


def test_bad_value_names_key_and_source(awe_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWE_DATABASE_URL", "postgresql://db/x")
    with pytest.raises(ConfigError) as err:
        load_env()
    assert "database_url" in str(err.value)
    assert "AWE_DATABASE_URL" in str(err.value)
    assert "mysql+pymysql" in str(err.value)  # what would be right


def test_mysql_without_driver_suggests_pymysql(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWE_DATABASE_URL", "mysql://root@127.0.0.1/test")
    with pytest.raises(ConfigError, match="did you mean mysql\\+pymysql"):
        load_env()


def test_bad_value_in_config_file_names_the_file(awe_home: Path) -> None:
    config = write_config(awe_home, "c.Env.username = 'has space'\n")
    with pytest.raises(ConfigError) as err:
        load_env()
    assert "username" in str(err.value) and str(config) in str(err.value)


def test_unknown_key_in_config_file_suggests_the_right_one(awe_home: Path) -> None:
    write_config(awe_home, "c.Env.dpu_nmae = 'local'\n")
    with pytest.raises(ConfigError, match="Did you mean 'dpu_name'"):
        load_env()


def test_unconfigured_dpu_lists_the_configured_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWE_DPU_NAME", "lisa")
    with pytest.raises(ConfigError) as err:
        load_env()
    message = str(err.value)
    assert "'lisa' is not a configured DPU" in message
    assert "configured DPUs: local" in message
    assert "AWE_DPU_NAME" in message


@pytest.mark.parametrize(
    ("text", "line", "error"),
    [
        ("c.Env.project = 'ok'\nc.Env.dpu_name = 'local\n", 2, "SyntaxError"),
        ("c.Env.project = 'ok'\n\nx = 1 / 0\n", 3, "ZeroDivisionError"),
        ("import nonexistent_module_xyz\n", 1, "ModuleNotFoundError"),
    ],
)
def test_malformed_config_file_warns_and_falls_back(
    awe_home: Path, text: str, line: int, error: str
) -> None:
    config = write_config(awe_home, text)
    env = load_env()
    assert env.project == "default"  # the file was ignored as a whole
    assert len(env.warnings) == 1
    assert f"{config}, line {line}: {error}" in env.warnings[0]


def test_unwritable_home_names_path_and_fix(tmp_path: Path, monkeypatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("AWE_HOME", str(blocker / "home"))
    with pytest.raises(ConfigError) as err:
        load_env()
    message = str(err.value)
    assert str(blocker / "home") in message
    assert "AWE_HOME" in message and "cannot be written" in message


def test_home_cannot_be_set_from_inside_home(awe_home: Path) -> None:
    write_config(awe_home, "c.Env.home = '/elsewhere'\n")
    with pytest.raises(ConfigError, match="AWE_HOME"):
        load_env()


def test_describe_masks_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWE_DATABASE_URL", "mysql+pymysql://alice:s3cret@db.example:3306/awe")
    env = load_env()
    shown = dict((key, value) for key, value, _ in env.describe())
    assert "s3cret" not in shown["database_url"]
    assert shown["database_url"] == "mysql+pymysql://alice:***@db.example:3306/awe"
    assert "s3cret" not in repr(env.describe())
    assert os.environ["AWE_DATABASE_URL"].endswith("/awe")


def test_dpu_definitions_from_the_config_file(awe_home: Path) -> None:
    write_config(
        awe_home,
        "c.Env.dpu_name = 'lisa'\n"  # before the definition: still valid
        "c.Env.dpus = {'lisa': {'host': 'lisa.example.org', 'user': 'alice',\n"
        "    'scheduler': 'slurm', 'slurm': {'partition': 'short', 'memory': '2G'}}}\n",
    )
    env = load_env()
    assert env.dpu_name == "lisa"
    lisa = env.dpu_definitions()["lisa"]
    assert (lisa.host, lisa.user, lisa.scheduler) == ("lisa.example.org", "alice", "slurm")
    assert lisa.slurm.partition == "short" and lisa.host_key_policy == "reject"
    from awe.dpu import Processor

    assert Processor(env).get_dpu_identifiers() == ["local", "lisa"]


@pytest.mark.parametrize(
    ("dpus", "message"),
    [
        ({"lisa": {"hots": "x"}}, "DPU 'lisa': unknown setting 'hots'. Did you mean 'host'"),
        ({"lisa": {"host": "x", "port": "22"}}, "DPU 'lisa': port must be int"),
        (
            {"lisa": {"host": "x", "host_key_policy": "yes"}},
            "choose one of reject, trust_on_first_use",
        ),
        (
            {"lisa": {"host": "x", "slurm": {"qeue": "a"}}},
            "DPU 'lisa' slurm: unknown setting 'qeue'",
        ),
        ({"local": {"host": "x"}}, "'local' is built in"),
        ({"lisa": {"scheduler": "local"}}, "give a host"),
    ],
)
def test_bad_dpu_definitions_name_dpu_and_setting(awe_home: Path, dpus, message) -> None:
    config = write_config(awe_home, f"c.Env.dpus = {dpus!r}\n")
    with pytest.raises(ConfigError, match=message) as err:
        load_env()
    assert str(config) in str(err.value)
