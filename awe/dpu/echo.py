"""Values the Processor has just printed, so that an interactive shell does not print them
again.

``dpu.get_status()`` prints the Astro-WISE lines and returns the same facts as data; at the
``awe>`` prompt (and in a notebook) IPython would then echo that return value, showing
everything twice. The Processor marks what it printed (:func:`printed`); the shell
extension (:mod:`awe.shell`) turns the marks on, forgets them when a cell starts, and does
not echo a marked value, so ``dpu.get_status()`` shows its lines once, while ``statuses``
typed in a later cell shows as a table. Outside IPython nothing is kept.

Marks are by identity and last one cell: a job id ``dpu.run`` printed is not echoed, and
in the rare cell whose last expression is, by chance, the very same small ``int`` object
(Python shares those), that is not echoed either; ask again in the next cell.
"""

from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T")

#: The values printed in the current cell, by identity (held until the next cell starts).
_printed: dict[int, Any] = {}
_shell_active = False


def activate() -> None:
    """An interactive shell is there to honour the marks: keep them from now on."""
    global _shell_active
    _shell_active = True


def printed(value: T) -> T:
    """Mark ``value`` as shown already (in a shell); return it."""
    if _shell_active:
        _printed[id(value)] = value
    return value


def was_printed(value: Any) -> bool:
    """Whether ``value`` was marked since the current cell started."""
    return _printed.get(id(value)) is value


def forget_printed() -> None:
    """A new cell starts: what earlier cells printed may be echoed again."""
    _printed.clear()
