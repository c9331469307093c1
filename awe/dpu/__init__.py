"""The Distributed Processing Unit: the :class:`Processor` users hold as ``dpu``.

``Processor`` and ``Pars`` are imported on first use, so the DPU-side programs
(``awe.dpu.runner``, ``awe.dpu.worker``) start without the client's configuration and
database machinery: less to import, and less memory to copy at every task's fork.
"""

from typing import Any

__all__ = ["Pars", "Processor"]


def __getattr__(name: str) -> Any:
    if name == "Processor":
        from awe.dpu.processor import Processor

        return Processor
    if name == "Pars":
        from awe.dpu.pars import Pars

        return Pars
    raise AttributeError(f"module 'awe.dpu' has no attribute {name!r}")
