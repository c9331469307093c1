"""DPU backends: where a job's runner runs. One small interface (:class:`Backend`);
nothing above this package knows whether a job runs here, over SSH or on Slurm."""

from awe.dpu.backends.base import Backend

__all__ = ["Backend"]
