"""Diagnose: what a DPU's workers see (host, Python, libraries, cores, disk).

The first thing to run on a new DPU: ``dpu.run('Diagnose')`` then ``dpu.get_logs()``.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import sys
from importlib import metadata

from awe.sequence import TaskContext, sequence

LIBRARIES = ("awe", "numpy", "astropy", "SQLAlchemy", "paramiko")


@sequence(fan_out="global", estimate=1.0)
def Diagnose(task: TaskContext) -> None:
    """Report the worker's host, Python, library versions, cores and free disk."""
    task.log.info("Host: %s (%s %s)", socket.gethostname(), platform.system(), platform.machine())
    task.log.info("Python: %s (%s)", platform.python_version(), sys.executable)
    for library in LIBRARIES:
        try:
            version = metadata.version(library)
        except metadata.PackageNotFoundError:
            version = "not installed"
        task.log.info("%s: %s", library, version)
    task.log.info("Cores: %d", os.cpu_count() or 0)
    free = shutil.disk_usage(task.work_dir).free / 2**30
    task.log.info("Free disk in %s: %.1f GiB", task.work_dir, free)
