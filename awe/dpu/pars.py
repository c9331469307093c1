"""``Pars``: show and edit a sequence's process parameters before running it.

As in Astro-WISE::

    awe> pars = Pars('Bias')
    awe> pars.show()
    awe> pars.BiasFrame.process_params.SIGMA_CLIP = 5.0
    awe> dpu.run('Bias', i='WFI', d='2000-04-28', p=pars.get())

Parameters are flat dotted keys declared by the sequence; attribute access walks the dots.
An unknown name or a value of the wrong type is refused at once.
"""

from __future__ import annotations

from typing import Any

from awe.context import current_session
from awe.dpu.echo import printed
from awe.dpu.options import OptionError, check_parameters
from awe.tables import Table


class Pars:
    """The process parameters of sequence (or chain) ``sequence``."""

    def __init__(self, sequence: str, dpu: Any = None) -> None:
        if dpu is None:
            dpu = current_session()
        steps = dpu.registry.resolve(sequence)
        object.__setattr__(self, "_steps", steps)
        defaults: dict[str, Any] = {}
        for step in steps:
            defaults.update(step.parameters)
        object.__setattr__(self, "_defaults", defaults)
        object.__setattr__(self, "_values", {})

    def get(self) -> dict[str, Any]:
        """The parameters you changed, ready for ``dpu.run(..., p=...)``."""
        return dict(self._values)

    def show(self) -> list[str]:
        """Print the parameter tree with current values; return the printed lines."""
        lines: list[str] = []
        shown: list[str] = []
        for key in sorted(self._defaults):
            parts = key.split(".")
            for depth, part in enumerate(parts[:-1]):
                prefix = ".".join(parts[: depth + 1])
                if prefix not in shown:
                    shown.append(prefix)
                    lines.append("    " * depth + part)
            value = self._values.get(key, self._defaults[key])
            note = "" if key in self._values else " (default)"
            lines.append("    " * (len(parts) - 1) + f"{parts[-1]} : {value!r}{note}")
        print("\n".join(lines))
        return printed(lines)

    def _set(self, key: str, value: Any) -> None:
        check_parameters(self._steps, {key: value})
        self._values[key] = value

    def _node(self, prefix: str) -> Any:
        if prefix in self._defaults:
            return self._values.get(prefix, self._defaults[prefix])
        if any(key.startswith(prefix + ".") for key in self._defaults):
            return _Node(self, prefix)
        raise AttributeError(
            f"no process parameter {prefix!r}; parameters: {', '.join(sorted(self._defaults))}"
        )

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._node(name)

    def __setattr__(self, name: str, value: Any) -> None:
        self._set(name, value)

    def __repr__(self) -> str:
        return f"Pars({'>'.join(s.name for s in self._steps)!r}, changed={self._values!r})"

    def _table(self) -> Table:
        """Every parameter with its value and default (a method of ``Pars``, not a
        parameter: names with ``_`` are not parameters)."""
        rows = [
            [key, repr(self._values.get(key, default)), repr(default), key in self._values]
            for key, default in sorted(self._defaults.items())
        ]
        name = ">".join(step.name for step in self._steps)
        return Table(("parameter", "value", "default", "changed"), rows, f"Pars({name!r})")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self._table().text())

    def _repr_html_(self) -> str:
        return self._table().html()


class _Node:
    """One level of the dotted parameter tree (``pars.BiasFrame.process_params``)."""

    def __init__(self, pars: Pars, prefix: str) -> None:
        object.__setattr__(self, "_pars", pars)
        object.__setattr__(self, "_prefix", prefix)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._pars._node(f"{self._prefix}.{name}")

    def __setattr__(self, name: str, value: Any) -> None:
        key = f"{self._prefix}.{name}"
        if key not in self._pars._defaults:
            raise OptionError(f"no process parameter {key!r}")
        self._pars._set(key, value)
