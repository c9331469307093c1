"""Tables for people: aligned text at the ``awe>`` prompt, escaped HTML in a notebook.

Job lists, a sequence's options, ``Pars``, frames and query results all show as a table;
this is the one place that lays one out, so that every value shows the same way in a
terminal (IPython's ``_repr_pretty_``) and in Jupyter (``_repr_html_``). Cells are shown
with ``str``; every cell and heading is HTML-escaped, since file names, objects and log
text come from users and FITS headers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

#: Rows shown before a long table is cut (the rest is counted, not shown).
MAX_ROWS = 200


@dataclass(frozen=True)
class Table:
    """Headings, rows of cells, and an optional caption (``5 BiasFrame``)."""

    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    caption: str = ""

    def _shown(self) -> tuple[list[list[str]], str]:
        rows = [[_cell(value) for value in row] for row in self.rows[:MAX_ROWS]]
        more = len(self.rows) - len(rows)
        return rows, f"... and {more} more rows" if more > 0 else ""

    def text(self) -> str:
        """Columns aligned with two spaces between them, a rule under the headings."""
        rows, more = self._shown()
        widths = [len(heading) for heading in self.columns]
        for row in rows:
            widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
        lines = [self.caption] if self.caption else []
        for row in [list(self.columns), ["-" * width for width in widths], *rows]:
            cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            lines.append("  ".join(cells).rstrip())
        if more:
            lines.append(more)
        return "\n".join(lines)

    def html(self) -> str:
        """An HTML ``<table>``, every heading and cell escaped."""
        rows, more = self._shown()
        head = "".join(f"<th>{escape(heading)}</th>" for heading in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
        )
        caption = f"<caption>{escape(self.caption)}</caption>" if self.caption else ""
        tail = f"<p>{escape(more)}</p>" if more else ""
        return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{tail}"


def _cell(value: Any) -> str:
    """How a value reads in a table: booleans as ``yes`` or blank, floats to 4 digits."""
    if value is None or value is False:
        return ""
    if value is True:
        return "yes"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("\n", " ")


class ShowsAsTable:
    """Mixin: IPython shows the object as its :meth:`table` (text at the prompt, HTML in a
    notebook)."""

    def table(self) -> Table:
        raise NotImplementedError

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text("..." if cycle else self.table().text())

    def _repr_html_(self) -> str:
        return self.table().html()
