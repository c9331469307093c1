"""Agent programs: standard-library modules sent as one ``python -c`` text to a DPU's
machine, or imported here, and their verbs.

A program is a list of module names. Sent, each module's source is installed under its
own name (parent packages as empty stand-ins, so ``from awe.dpu.remote.commands import
run`` works the same in both places and nothing else of AWE needs to be there), then
``awe.dpu.remote.agent.main`` answers one verb over the verbs of every module. Here, the
same modules are imported and their verbs called directly: one set of verbs, two ways of
getting to them.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from functools import cache
from typing import Any

#: The pool agent: job files, runners, journals, code snapshots, checks.
AGENT = ("awe.messages", "awe.dpu.remote.commands", "awe.dpu.remote.agent")
#: The Slurm agent rides on the pool agent (journals, snapshots, checks are the same).
SLURM_AGENT = (*AGENT, "awe.dpu.remote.slurm_agent")

_BOOT = """import sys, types
def _install(name, source):
    parent, _, child = name.rpartition(".")
    if parent and parent not in sys.modules:
        _install(parent, "")
    module = types.ModuleType(name)
    module.__path__ = []
    module.__file__ = "<awe agent: " + name + ">"
    sys.modules[name] = module
    if parent:
        setattr(sys.modules[parent], child, module)
    exec(compile(source, module.__file__, "exec"), module.__dict__)
"""


@cache
def source(modules: tuple[str, ...]) -> str:
    """The program text of ``modules`` for ``python -c TEXT VERB`` (arguments on stdin)."""
    parts = [_BOOT]
    for name in modules:
        spec = importlib.util.find_spec(name)
        text = spec.loader.get_source(name) if spec and spec.loader else None
        if text is None:
            raise RuntimeError(f"the agent module {name} has no source to send")
        parts.append(f"_install({name!r}, {text!r})")
    verbs = ", ".join(f"**sys.modules[{name!r}].VERBS" for name in modules if _has_verbs(name))
    parts.append(f"sys.exit(sys.modules['awe.dpu.remote.agent'].main(sys.argv, {{{verbs}}}))")
    return "\n".join(parts) + "\n"


@cache
def verbs(modules: tuple[str, ...]) -> dict[str, Callable[[dict[str, Any]], Any]]:
    """The verbs of ``modules``, imported in this process."""
    table: dict[str, Callable[[dict[str, Any]], Any]] = {}
    for name in modules:
        table.update(getattr(importlib.import_module(name), "VERBS", {}))
    return table


def _has_verbs(name: str) -> bool:
    return hasattr(importlib.import_module(name), "VERBS")
