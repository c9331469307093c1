"""DPU backends: where a job's runner runs. One small interface (:class:`Backend`);
nothing above this package knows whether a job runs here, over SSH or on Slurm."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from awe.dpu.backends.base import Backend

if TYPE_CHECKING:
    from awe.env import Env

__all__ = ["Backend", "make_backend"]


def make_backend(name: str, env: Env) -> Backend:
    """The backend for DPU ``name``: built-in ``local`` or a definition in ``env.dpus``."""
    if name == "local":
        from awe.dpu.backends.local import LocalBackend

        return LocalBackend(Path(env.home))
    definition = env.dpu_definitions()[name]
    if definition.scheduler == "slurm":
        from awe.dpu.backends.slurm import SlurmBackend

        return SlurmBackend(definition, env)
    from awe.dpu.backends.ssh import SSHBackend

    return SSHBackend(definition, env)
