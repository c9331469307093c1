"""The AWE environment: who you are, which database and DPU you use, where files go.

:class:`Env` is a traitlets ``Configurable``. :func:`load_env` fills it from layers, lowest
first:

1. the defaults below;
2. ``awe_config.py`` in the AWE home (traitlets Python config: ``c.Env.dpu_name = 'local'``);
3. environment variables (``AWE_HOME``, ``AWE_DATABASE_URL``, ``AWE_DPU_NAME``, ...);
4. keyword arguments and assignments made at run time (``env.project = 'MYPROJ'``).

Each value remembers where it came from (:attr:`Env.sources`), so a bad value is reported
with its key and its origin. A config file that cannot be executed is skipped with a
warning naming the file and line (:attr:`Env.warnings`); AWE then starts on the lower layers.
"""

from __future__ import annotations

import getpass
import os
import re
import tempfile
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from traitlets import Dict, List, TraitError, Unicode, default, observe, validate
from traitlets.config import Config, Configurable

from awe.errors import ConfigError

CONFIG_FILE_NAME = "awe_config.py"
DEFAULT_HOME = "~/.awe"
SQLITE_FILE_NAME = "awe.db"

#: Database drivers AWE supports, and the name users often type instead.
SUPPORTED_DRIVERS = ("sqlite", "mysql+pymysql", "mariadb+pymysql")
DRIVER_HINTS = {"mysql": "mysql+pymysql", "mariadb": "mariadb+pymysql", "sqlite3": "sqlite"}

#: Environment variable for each Env key.
ENV_VARIABLES = {
    "home": "AWE_HOME",
    "database_url": "AWE_DATABASE_URL",
    "dpu_name": "AWE_DPU_NAME",
    "project": "AWE_PROJECT",
    "username": "AWE_USERNAME",
    "data_root": "AWE_DATA_ROOT",
    "session_log": "AWE_SESSION_LOG",
}

_NAME = re.compile(r"^[A-Za-z0-9_.@-]+$")
DEFAULT_SOURCE = "default"
RUNTIME_SOURCE = "set at run time"


#: Keys only a config file (or run-time code) can set: no environment variable.
CONFIG_ONLY_KEYS = ("dpus", "code_paths")


def configured_dpu_names(env: Env | None = None) -> list[str]:
    """``local`` and the names of the DPUs defined in ``env.dpus``."""
    return ["local", *sorted(env.dpus if env is not None else {})]


class Env(Configurable):
    """Settings of one AWE session. Create it with :func:`load_env`."""

    home = Unicode(
        help="AWE home folder: config file, default SQLite database, data and user sequences. "
        "Only settable by AWE_HOME (the config file lives inside it)."
    )
    database_url = Unicode(
        help="SQLAlchemy URL of the job database: sqlite:///PATH or "
        "mysql+pymysql://USER:PASSWORD@HOST:PORT/DATABASE. Default: awe.db in home."
    ).tag(config=True)
    dpu_name = Unicode("local", help="Name of the DPU jobs are sent to by default.").tag(
        config=True
    )
    project = Unicode("default", help="Project your jobs and products belong to.").tag(config=True)
    username = Unicode(help="User name recorded with your jobs. Default: the login name.").tag(
        config=True
    )
    data_root = Unicode(help="Folder of the data store. Default: data/ in home.").tag(config=True)
    dpus = Dict(
        help="DPU definitions: name -> settings (host, user, work_dir, python, scheduler, "
        "setup, slurm, ...); see docs/dpus.md. 'local' is built in."
    ).tag(config=True)
    code_paths = List(
        Unicode(),
        help="More folders of your own code to ship with every job (each becomes a "
        "top-level package on the DPU), besides awe/, sequences/ and home/sequences/.",
    ).tag(config=True)
    session_log = Unicode(
        ".",
        help="Folder for the per-session log file YYYYMMDD_HHMMSS.log; '' turns it off. "
        "Default: the working directory.",
    ).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        self._loading = True
        self.sources: dict[str, str] = {}
        self.warnings: list[str] = []
        super().__init__(**kwargs)
        self._loading = False

    # ---- defaults that depend on other keys ----
    @default("home")
    def _default_home(self) -> str:
        return os.path.abspath(os.path.expanduser(DEFAULT_HOME))

    @default("database_url")
    def _default_database_url(self) -> str:
        return "sqlite:///" + os.path.join(self.home, SQLITE_FILE_NAME)

    @default("username")
    def _default_username(self) -> str:
        try:
            return getpass.getuser()
        except (KeyError, OSError):  # no passwd entry, e.g. in some containers
            return "awe"

    @default("data_root")
    def _default_data_root(self) -> str:
        return os.path.join(self.home, "data")

    # ---- validation ----
    @validate("home", "data_root")
    def _validate_folder(self, proposal: Any) -> str:
        value = proposal["value"]
        if not value.strip():
            raise TraitError("must be a folder path, not empty")
        return os.path.abspath(os.path.expanduser(value))

    @validate("session_log")
    def _validate_session_log(self, proposal: Any) -> str:
        value = proposal["value"]
        return os.path.expanduser(value) if value.strip() else ""

    @validate("database_url")
    def _validate_database_url(self, proposal: Any) -> str:
        from awe.database_url import parse_url  # imported on use: the prompt starts faster

        value = proposal["value"].strip()
        try:
            url = parse_url(value)
        except ValueError as err:
            raise TraitError(
                f"is not usable ({err}); expected sqlite:///PATH or "
                "mysql+pymysql://USER:PASSWORD@HOST:PORT/DATABASE"
            ) from None
        if url.drivername not in SUPPORTED_DRIVERS:
            hint = DRIVER_HINTS.get(url.drivername)
            suggestion = f"; did you mean {hint}://...?" if hint else ""
            raise TraitError(
                f"uses driver {url.drivername!r}; AWE supports {', '.join(SUPPORTED_DRIVERS)}"
                + suggestion
            )
        if url.drivername != "sqlite" and not url.database:
            raise TraitError("names no database; add it at the end: .../DATABASE")
        return value

    @validate("dpus")
    def _validate_dpus(self, proposal: Any) -> dict[str, Any]:
        from awe.dpu_definitions import parse_dpus

        try:
            parse_dpus(proposal["value"])
        except ValueError as err:
            raise TraitError(str(err)) from None
        return proposal["value"]

    @validate("dpu_name")
    def _validate_dpu_name(self, proposal: Any) -> str:
        value = proposal["value"]
        known = configured_dpu_names(self)
        if value not in known:
            raise TraitError(
                f"{value!r} is not a configured DPU; configured DPUs: {', '.join(known)}"
            )
        return value

    @validate("username", "project")
    def _validate_name(self, proposal: Any) -> str:
        value = proposal["value"]
        if not _NAME.match(value):
            raise TraitError(f"{value!r} is not a valid name; use letters, digits and _ . @ - only")
        return value

    @observe(
        "home",
        "database_url",
        "dpu_name",
        "project",
        "username",
        "data_root",
        "session_log",
        "dpus",
    )
    def _record_runtime_change(self, change: Any) -> None:
        if not self._loading:
            self.sources[change["name"]] = RUNTIME_SOURCE

    # ---- helpers ----
    @classmethod
    def keys(cls) -> list[str]:
        """The configurable keys, in documentation order."""
        return [*ENV_VARIABLES, *CONFIG_ONLY_KEYS]

    def dpu_definitions(self) -> dict[str, Any]:
        """The parsed DPU definitions (:class:`awe.dpu_definitions.DPUDefinition` by name)."""
        from awe.dpu_definitions import parse_dpus

        return parse_dpus(self.dpus)

    def source_of(self, key: str) -> str:
        """Where the current value of ``key`` came from."""
        return self.sources.get(key, DEFAULT_SOURCE)

    @property
    def config_file(self) -> Path:
        return Path(self.home) / CONFIG_FILE_NAME

    def set(self, key: str, value: Any, source: str = RUNTIME_SOURCE) -> None:
        """Set ``key``; a bad value raises :class:`ConfigError` naming key and source."""
        if key not in self.keys():
            raise ConfigError(_unknown_key_message(key, source))
        try:
            setattr(self, key, value)
        except TraitError as err:
            raise ConfigError(f"{key} = {value!r} ({source}) {_trait_message(err)}") from None
        self.sources[key] = source

    def ensure_home(self) -> Path:
        """Create the home folder if needed and prove it can be written."""
        home = Path(self.home)
        try:
            home.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=home, prefix=".awe-write-test-"):
                pass
        except OSError as err:
            raise ConfigError(
                f"AWE home {home} cannot be written ({err.strerror or err}). Fix: make it "
                f"writable, or point AWE_HOME at a folder you own, e.g. "
                f"export AWE_HOME=$HOME/awe-home (home came from {self.source_of('home')})."
            ) from None
        return home

    def describe(self) -> list[tuple[str, str, str]]:
        """(key, shown value, source) for every key; passwords in URLs are masked."""
        from awe.database_url import mask_url

        rows = []
        for key in self.keys():
            value = getattr(self, key)
            shown = mask_url(value) if key == "database_url" else value
            rows.append((key, shown, self.source_of(key)))
        return rows


def _trait_message(err: TraitError) -> str:
    """Our validators raise short messages; traitlets' own type errors are long."""
    text = str(err)
    if text.startswith("The '"):
        return "is not valid: " + text
    return text


def _unknown_key_message(key: str, source: str) -> str:
    from awe.suggest import did_you_mean

    valid = Env.keys()
    hint = did_you_mean(key, valid)
    return f"Unknown Env key {key!r} ({source}).{hint} Valid keys: {', '.join(valid)}."


def _read_config_file(path: Path) -> tuple[Config | None, str | None]:
    """Execute ``awe_config.py``; on failure return a warning naming file, line and error."""
    from traitlets.config.loader import PyFileConfigLoader

    loader = PyFileConfigLoader(path.name, path=str(path.parent))
    try:
        return loader.load_config(), None
    except SyntaxError as err:
        line = err.lineno or 0
        problem = f"SyntaxError: {err.msg}"
    except Exception as err:  # noqa: BLE001 - any error in user code must not stop AWE
        frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename == str(path)]
        line = frames[-1].lineno if frames else 0
        problem = f"{type(err).__name__}: {err}"
    return None, (
        f"{path}, line {line}: {problem}. The file was ignored; AWE starts on the defaults "
        f"and environment variables. Fix the file and restart."
    )


def load_env(environ: Mapping[str, str] | None = None, **overrides: Any) -> Env:
    """Build the session's :class:`Env` from defaults, config file, environment and overrides.

    Raises :class:`ConfigError` for a bad value (naming key and source) or an AWE home that
    cannot be written. A config file that fails to execute only adds to ``env.warnings``.
    """
    environ = os.environ if environ is None else environ
    env = Env()
    env._loading = True
    home_var = ENV_VARIABLES["home"]
    if "home" in overrides:
        env.set("home", overrides.pop("home"), RUNTIME_SOURCE)
    elif environ.get(home_var):
        env.set("home", environ[home_var], f"environment variable {home_var}")
    env.ensure_home()

    if env.config_file.exists():
        config, warning = _read_config_file(env.config_file)
        if warning:
            env.warnings.append(warning)
        else:
            _apply_config_file(env, config)

    for key, variable in ENV_VARIABLES.items():
        if key != "home" and environ.get(variable):
            env.set(key, environ[variable], f"environment variable {variable}")
    for key, value in sorted(overrides.items(), key=lambda item: item[0] != "dpus"):
        env.set(key, value, RUNTIME_SOURCE)
    env._loading = False
    return env


def _apply_config_file(env: Env, config: Config) -> None:
    source = str(env.config_file)
    for section in config:
        if section != "Env":
            env.warnings.append(
                f"{source}: section c.{section} is not used by AWE and was ignored "
                f"(settings go in c.Env)."
            )
    # DPU definitions first: dpu_name is checked against them.
    items = sorted(config.get("Env", {}).items(), key=lambda item: item[0] != "dpus")
    for key, value in items:
        if key == "home":
            raise ConfigError(
                f"home cannot be set in {source} (the file lives in home); "
                f"set the environment variable AWE_HOME instead."
            )
        env.set(key, value, source)
