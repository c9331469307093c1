"""DPU backends: where a job's tasks run. A backend (:class:`Backend`) is a transport (this
machine, or SSH) composed with a scheduler (AWE's pool, or Slurm); nothing above this
package knows which."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from awe.dpu.backends.base import Backend

if TYPE_CHECKING:
    from awe.dpu.backends.transport import Transport
    from awe.dpu_definitions import DPUDefinition
    from awe.env import Env

__all__ = ["Backend", "make_backend"]


def make_backend(name: str, env: Env) -> Backend:
    """The backend of DPU ``name``: the built-in ``local``, or a definition in ``env.dpus``
    whose ``host`` picks the transport and ``scheduler`` the scheduler."""
    if name == "local":
        from awe.dpu.backends.local import LocalBackend

        return LocalBackend(Path(env.home))
    definition = env.dpu_definitions()[name]
    transport = make_transport(definition, env)
    if definition.scheduler == "slurm":
        from awe.dpu.backends.slurm import SlurmBackend

        backend: Backend = SlurmBackend(definition, transport)
    else:
        from awe.dpu.backends.pool import PoolScheduler

        scheduler = PoolScheduler(transport, definition.max_workers)
        workers = definition.max_workers or 1  # for the estimate only
        backend = Backend(definition.name, transport, scheduler, workers, definition.python)
    if definition.poll_interval is not None:  # the DPU's own first pause, backing off to 10x
        backend.poll_interval = (definition.poll_interval, 10 * definition.poll_interval)
    return backend


def make_transport(definition: DPUDefinition, env: Env) -> Transport:
    """SSH to the definition's ``host``, or this machine when it has none."""
    from awe.dpu.backends.transport import LocalTransport, SSHTransport

    if definition.is_remote:
        return SSHTransport(definition)
    return LocalTransport(definition.work_dir, str(env.home), definition.command_timeout)
