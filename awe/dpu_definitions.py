"""DPU definitions: the remote machines and clusters jobs can go to, from the configuration.

In ``~/.awe/awe_config.py``::

    c.Env.dpus = {
        "lisa": {
            "host": "lisa.surf.nl",          # or an alias from ~/.ssh/config
            "user": "alice",
            "work_dir": "/scratch/alice/awe",
            "python": "python3",
            "scheduler": "slurm",            # or "local": a pool of workers on the host
            "setup": ["module load Python/3.11"],
            "slurm": {"partition": "normal", "time_limit": "01:00:00", "memory": "4G"},
        },
    }

``local`` (this machine, a pool of workers) always exists. A definition without ``host``
runs on this machine too, which is how a local Slurm installation is used.

The definitions are configuration: :mod:`awe.env` checks them when it loads, so this module
sits at the bottom of AWE beside it, and the DPU layer (:mod:`awe.dpu.backends`) reads them.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from awe.suggest import did_you_mean

LOCAL = "local"
HOST_KEY_POLICIES = ("reject", "trust_on_first_use")
SCHEDULERS = ("local", "slurm")


@dataclass(frozen=True)
class SlurmSettings:
    """How tasks are submitted to Slurm on this DPU."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time_limit: str | None = None  # default per task, Slurm's format: "01:00:00"
    memory: str | None = None  # per task: "2G"
    cpus_per_task: int = 1
    extra: tuple[str, ...] = ()  # more "#SBATCH ..." lines
    mode: str = "per-task"  # or "pilot": the tasks run inside `nodes` pilot allocations
    nodes: int = 1  # pilot mode: allocations at once
    cpus_per_node: int = 1  # pilot mode: tasks at once in each
    walltime: str = "01:00:00"  # pilot mode: each allocation's --time


@dataclass(frozen=True)
class DPUDefinition:
    """One configured DPU."""

    name: str
    host: str | None = None  # None: this machine
    port: int | None = None  # None: from ~/.ssh/config, else 22
    user: str | None = None
    identity_file: str | None = None
    host_key_policy: str = "reject"
    known_hosts: str | None = None  # default ~/.ssh/known_hosts
    work_dir: str = "~/.awe-dpu"
    python: str = "python3"
    scheduler: str = "local"
    max_workers: int | None = None
    setup: tuple[str, ...] = ()
    connect_timeout: float = 10.0
    command_timeout: float = 120.0
    poll_interval: float | None = None  # None: the scheduler's own (pool 0.2 s, Slurm 1 s)
    slurm: SlurmSettings = field(default_factory=SlurmSettings)

    @property
    def is_remote(self) -> bool:
        return self.host is not None

    def describe(self) -> str:
        if self.host is None:
            where = "this machine"
        else:
            user = f"{self.user}@" if self.user else ""
            port = f":{self.port}" if self.port else ""
            where = f"{user}{self.host}{port}"
        return f"{where}, {self.scheduler} scheduler, work dir {self.work_dir}"


_TYPES = {
    "host": str,
    "port": int,
    "user": str,
    "identity_file": str,
    "host_key_policy": str,
    "known_hosts": str,
    "work_dir": str,
    "python": str,
    "scheduler": str,
    "max_workers": int,
    "setup": list,
    "connect_timeout": (int, float),
    "command_timeout": (int, float),
    "poll_interval": (int, float),
    "slurm": dict,
}
_SLURM_TYPES = {
    "partition": str,
    "account": str,
    "qos": str,
    "time_limit": str,
    "memory": str,
    "cpus_per_task": int,
    "extra": list,
    "mode": str,
    "nodes": int,
    "cpus_per_node": int,
    "walltime": str,
}
SLURM_MODES = ("per-task", "pilot")


def parse_dpus(raw: Mapping[str, Any]) -> dict[str, DPUDefinition]:
    """Check and convert ``c.Env.dpus``; ``ValueError`` names the DPU and key at fault."""
    if not isinstance(raw, Mapping):
        raise ValueError("must be a dict of DPU name -> settings dict")
    definitions = {}
    for name, settings in raw.items():
        if name == LOCAL:
            raise ValueError("'local' is built in and cannot be redefined; choose another name")
        if not isinstance(settings, Mapping):
            raise ValueError(f"DPU {name!r}: settings must be a dict, got {settings!r}")
        values = _check(f"DPU {name!r}", settings, _TYPES)
        if "slurm" in values:
            slurm = _check(f"DPU {name!r} slurm", values["slurm"], _SLURM_TYPES)
            if "extra" in slurm:
                slurm["extra"] = tuple(slurm["extra"])
            if slurm.get("mode", "per-task") not in SLURM_MODES:
                raise ValueError(
                    f"DPU {name!r} slurm: mode {slurm['mode']!r}; choose one of "
                    f"{', '.join(SLURM_MODES)}"
                )
            for key in ("nodes", "cpus_per_node"):
                if key in slurm and slurm[key] < 1:
                    raise ValueError(f"DPU {name!r} slurm: {key} must be 1 or more")
            values["slurm"] = SlurmSettings(**slurm)
            check_sbatch_values(f"DPU {name!r}", values["slurm"])
        if values.get("scheduler") == "slurm" and "work_dir" in values:
            check_sbatch_value(f"DPU {name!r}", "work_dir", values["work_dir"])
        if "poll_interval" in values and not values["poll_interval"] > 0:
            raise ValueError(
                f"DPU {name!r}: poll_interval is seconds between two looks at a job (> 0), "
                f"got {values['poll_interval']!r}"
            )
        if "setup" in values:
            values["setup"] = tuple(str(line) for line in values["setup"])
        if values.get("host_key_policy", "reject") not in HOST_KEY_POLICIES:
            raise ValueError(
                f"DPU {name!r}: host_key_policy {values['host_key_policy']!r}; choose one of "
                f"{', '.join(HOST_KEY_POLICIES)}"
            )
        if values.get("scheduler", "local") not in SCHEDULERS:
            raise ValueError(
                f"DPU {name!r}: scheduler {values['scheduler']!r}; choose one of "
                f"{', '.join(SCHEDULERS)}"
            )
        if values.get("host") is None and values.get("scheduler", "local") == "local":
            raise ValueError(
                f"DPU {name!r} has no host and the local scheduler, which is the built-in "
                f"'local' DPU; give a host, or scheduler 'slurm' for this machine's Slurm"
            )
        definitions[name] = DPUDefinition(name=name, **values)
    return definitions


def _check(where: str, settings: Mapping[str, Any], types: dict[str, Any]) -> dict[str, Any]:
    values = {}
    for key, value in settings.items():
        if key not in types:
            hint = did_you_mean(key, types)
            raise ValueError(
                f"{where}: unknown setting {key!r}.{hint} Settings: {', '.join(types)}"
            )
        expected = types[key]
        if value is not None and (not isinstance(value, expected) or isinstance(value, bool)):
            names = expected.__name__ if isinstance(expected, type) else "number"
            raise ValueError(f"{where}: {key} must be {names}, got {value!r}")
        values[key] = value
    return values


#: Slurm settings written into ``#SBATCH --key=value`` lines, where one value must stay one
#: argument of one line.
SBATCH_VALUES = ("partition", "account", "qos", "time_limit", "memory", "walltime")


def check_sbatch_value(where: str, key: str, value: str, spaces: bool = False) -> str:
    """``value`` when it can go into an ``#SBATCH`` line as it is; else a ValueError naming
    ``key`` and the character at fault. A line break would start a command of the batch
    script; white space (unless ``spaces``) would make a second sbatch option."""
    for character in value:
        control = unicodedata.category(character) in ("Cc", "Cf", "Zl", "Zp")
        if control or (character.isspace() and not spaces):
            raise ValueError(
                f"{where}: {key} {value!r} holds {_describe(character)}, which an #SBATCH "
                f"line cannot carry; give one value without "
                f"{'control characters' if spaces else 'white space or control characters'}"
            )
    return value


def check_sbatch_values(where: str, settings: SlurmSettings) -> None:
    """Every Slurm setting of a DPU that reaches its batch scripts, checked."""
    for key in SBATCH_VALUES:
        value = getattr(settings, key)
        if value is not None:
            check_sbatch_value(f"{where} slurm", key, value)
    for line in settings.extra:
        check_sbatch_value(f"{where} slurm", "extra line", line, spaces=True)


def _describe(character: str) -> str:
    names = {
        "\n": "a line break (\\n)",
        "\r": "a carriage return (\\r)",
        "\t": "a tab (\\t)",
        " ": "a space",
    }
    if character in names:
        return names[character]
    name = unicodedata.name(character, "").lower() or "a control character"
    return f"{name} ({character!r})"
