"""Agent programs: standard-library modules sent as one ``python -c`` text to a DPU's
machine, or imported here, and their verbs.

A program is a list of module names. Sent, the modules' sources travel in the program and
are imported from there under their own names (parent packages as empty stand-ins, so
``from awe.dpu.remote.commands import run`` works the same in both places and nothing else
of AWE needs to be there), then ``awe.dpu.remote.agent.main`` answers one verb over the
verbs of every module. Here, the
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

_BOOT = '''import sys
from importlib.machinery import ModuleSpec


class _Sent:
    """Imports the modules sent with this program, on first import (as packages, so
    their parents need nothing of AWE to be installed here)."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        return ModuleSpec(name, cls, is_package=True) if name in SOURCES else None

    @staticmethod
    def create_module(spec):
        return None

    @staticmethod
    def exec_module(module):
        code = compile(SOURCES[module.__name__], "<awe agent: " + module.__name__ + ">", "exec")
        exec(code, module.__dict__)


sys.meta_path.insert(0, _Sent)
'''


@cache
def source(modules: tuple[str, ...]) -> str:
    """The program text of ``modules`` for ``python -c TEXT VERB`` (arguments on stdin).
    A module is executed only when a verb imports it (the job format only for verbs that
    write a job), so a poll pays for the agent alone."""
    sources = {}
    for name in modules:
        parts = name.split(".")
        for end in range(1, len(parts)):
            sources.setdefault(".".join(parts[:end]), "")
        spec = importlib.util.find_spec(name)
        text = spec.loader.get_source(name) if spec and spec.loader else None
        if text is None:
            raise RuntimeError(f"the agent module {name} has no source to send")
        sources[name] = text
    tables = [name for name in modules if _has_verbs(name)]
    imports = "".join(f"import {name}\n" for name in tables)
    verbs = ", ".join(f"**{name}.VERBS" for name in tables)
    return (
        f"SOURCES = {sources!r}\n{_BOOT}{imports}"
        f"sys.exit(awe.dpu.remote.agent.main(sys.argv, {{{verbs}}}))\n"
    )


@cache
def verbs(modules: tuple[str, ...]) -> dict[str, Callable[[dict[str, Any]], Any]]:
    """The verbs of ``modules``, imported in this process."""
    table: dict[str, Callable[[dict[str, Any]], Any]] = {}
    for name in modules:
        table.update(getattr(importlib.import_module(name), "VERBS", {}))
    return table


def _has_verbs(name: str) -> bool:
    return hasattr(importlib.import_module(name), "VERBS")
