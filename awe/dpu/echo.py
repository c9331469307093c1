"""Values the Processor has just printed, so that an interactive shell does not print them
again.

``dpu.get_status()`` prints the Astro-WISE lines and returns the same facts as data; at the
``awe>`` prompt (and in the AWE kernel) IPython would then echo that return value, showing
everything twice. The Processor marks what it printed (:func:`printed`); the shell
extension (:mod:`awe.shell`) forgets the marks when a cell starts and does not echo a
marked value, so ``dpu.get_status()`` shows its lines once, while ``statuses`` typed later
shows as a table. Outside IPython the marks do nothing. Marks are weak: a value that is
gone is forgotten.
"""

from __future__ import annotations

import weakref
from typing import Any, TypeVar

T = TypeVar("T")

_printed: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()


class PrintedList(list):
    """A list the Processor printed (names, rows, lines): a plain list that can be marked."""


class PrintedDict(dict):
    """A dict the Processor printed (a DPU check, logs by job): a plain dict that can be
    marked."""


def printed(value: T) -> T:
    """Mark ``value`` as shown already; return it."""
    _printed[id(value)] = value
    return value


def was_printed(value: Any) -> bool:
    """Whether ``value`` was marked since the marks were last forgotten."""
    return _printed.get(id(value)) is value


def forget_printed() -> None:
    """A new cell starts: what earlier cells printed may be echoed again."""
    _printed.clear()
