"""Finding sequences by name, and resolving chains such as ``'Reduce>Astrometry'``.

Three sources, all registering through :func:`awe.sequence.sequence`:

1. the built-in ``sequences`` package (every module in it);
2. the entry-point group ``awe.sequences`` (installed packages: the entry point names a
   module, which is imported);
3. ``*.py`` files in ``$AWE_HOME/sequences/``: a user's own sequences, no packaging needed.
   A changed file is imported again on the next lookup; a broken one is reported with its
   file and line and skipped, so one typo does not hide every other sequence.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys
import traceback
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path

from awe.errors import AweError
from awe.sequence import DECLARED, SequenceSpec
from awe.suggest import did_you_mean

ENTRY_POINT_GROUP = "awe.sequences"
USER_FOLDER = "sequences"
CHAIN_SEPARATOR = ">"
#: Fan-outs that chain through ``Unit.group``: a chip names its exposure.
GROUPED = {"chip", "exposure"}


class UnknownSequence(AweError):
    """A sequence name nobody declared."""


@dataclass
class Registry:
    """The sequences of this registry's sources (the built-in ``sequences`` package, the
    ``awe.sequences`` entry points, and the files in ``home/sequences``), and the problems
    met while loading them. Declarations live in one table per process; a registry shows
    only those its own sources made, so a second home in the same process (a web service,
    a test) never sees another home's sequences."""

    home: Path
    problems: list[str] = field(default_factory=list)
    _user_files: dict[Path, float] = field(default_factory=dict)
    _loaded_builtins: bool = False
    _source_modules: set[str] = field(default_factory=set)

    def refresh(self) -> None:
        """Import what is new or changed since the last call."""
        if not self._loaded_builtins:
            self._load_builtins()
            self._load_entry_points()
            self._loaded_builtins = True
        self._load_user_files()

    def identifiers(self) -> list[str]:
        return sorted(self._declared())

    def get(self, name: str) -> SequenceSpec:
        declared = self._declared()
        try:
            return declared[name]
        except KeyError:
            raise UnknownSequence(_unknown_message(name, sorted(declared))) from None

    def _declared(self) -> dict[str, SequenceSpec]:
        """The declarations this registry's sources made (refreshed first)."""
        self.refresh()
        folder = self.home / USER_FOLDER
        users = {_user_module_name(p) for p in folder.glob("*.py")} if folder.is_dir() else set()
        mine = self._source_modules | users
        return {name: spec for name, spec in DECLARED.items() if spec.module in mine}

    def resolve(self, chain: str) -> list[SequenceSpec]:
        """The steps of ``'A>B>C'`` (or of a single name), checked to fit together."""
        names = [part.strip() for part in chain.split(CHAIN_SEPARATOR)]
        if not all(names):
            raise UnknownSequence(f"{chain!r} has an empty step; write a chain as 'Bias>HotPixels'")
        steps = [step for name in names for step in self._expand(self.get(name))]
        for before, after in zip(steps, steps[1:], strict=False):
            fan_outs = {before.fan_out, after.fan_out}
            if len(fan_outs) == 2 and "global" not in fan_outs and fan_outs != GROUPED:
                raise AweError(
                    f"the steps of {chain!r} disagree: {before.name} fans out per "
                    f"{before.fan_out} but {after.name} per {after.fan_out}, so {after.name}'s "
                    f"tasks cannot wait for matching {before.name} tasks. Run them as "
                    f"separate jobs, or put a global step between them."
                )
        return steps

    def _expand(self, spec: SequenceSpec) -> list[SequenceSpec]:
        """A named chain (``declare_chain``) becomes its steps."""
        return [self.get(name) for name in spec.chain] if spec.chain else [spec]

    # ---- loading ----
    def _load_builtins(self) -> None:
        try:
            package = importlib.import_module("sequences")
        except ImportError as err:
            self.problems.append(f"built-in sequences not importable: {err}")
            return
        for module in pkgutil.iter_modules(package.__path__, prefix="sequences."):
            self._import(module.name, module.name)
            self._source_modules.add(module.name)

    def _load_entry_points(self) -> None:
        for entry_point in entry_points(group=ENTRY_POINT_GROUP):
            module_name = entry_point.value.split(":")[0]
            self._import(module_name, f"entry point {entry_point.name}")
            self._source_modules.add(module_name)

    def _import(self, module_name: str, origin: str) -> None:
        try:
            importlib.import_module(module_name)
        except Exception as err:  # noqa: BLE001 - one broken module must not hide the rest
            self.problems.append(f"{origin}: {type(err).__name__}: {err}")

    def _load_user_files(self) -> None:
        folder = self.home / USER_FOLDER
        if not folder.is_dir():
            return
        for path in sorted(folder.glob("*.py")):
            mtime = path.stat().st_mtime_ns
            if self._user_files.get(path) == mtime:
                continue
            self._user_files[path] = mtime
            self._forget_declarations_from(_user_module_name(path))
            self._exec_user_file(path)

    def _forget_declarations_from(self, module_name: str) -> None:
        for name in [n for n, spec in DECLARED.items() if spec.module == module_name]:
            del DECLARED[name]

    def _exec_user_file(self, path: Path) -> None:
        module_name = _user_module_name(path)
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as err:  # noqa: BLE001 - report and go on
            frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename == str(path)]
            line = getattr(err, "lineno", None) or (frames[-1].lineno if frames else 0)
            self.problems.append(f"{path}, line {line}: {type(err).__name__}: {err}")
            sys.modules.pop(module_name, None)


def _user_module_name(path: Path) -> str:
    return f"awe_user_sequences.{path.stem}"


def _unknown_message(name: str, known: list[str]) -> str:
    hint = did_you_mean(name, known, n=3, cutoff=0.5)
    listing = ", ".join(known) if known else "(none: add one, see docs/sequences.md)"
    return f"Unknown sequence {name!r}.{hint} Known sequences: {listing}."
