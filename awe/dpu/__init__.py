"""The Distributed Processing Unit: the :class:`Processor` users hold as ``dpu``."""

from awe.dpu.pars import Pars
from awe.dpu.processor import Processor

__all__ = ["Pars", "Processor"]
