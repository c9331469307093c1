"""AWE inside IPython (the ``awe>`` prompt, the AWE kernel, ``from awe import dpu`` in a
notebook): its own errors as one message, and no echo of what was just printed.

- Every :class:`~awe.errors.AweError` shows as ``OptionError: Unknown option 'x' ...``,
  the way Astro-WISE showed its errors; the traceback through the Processor and the
  planner is one ``%tb`` away. Other exceptions keep IPython's full traceback: they are
  bugs, and the traceback is what a bug report needs.
- A value the Processor printed in this cell (the statuses ``dpu.get_status()`` returns
  after printing their lines) is not echoed again; the same value typed in a later cell
  shows as usual (a compact line at the prompt, a table in a notebook). See
  :mod:`awe.dpu.echo`.
- One frame shows in a notebook as a one-row table with a preview of its image (the web
  page's preview: :func:`awe.report.render.inline_preview`).

:func:`install` is idempotent and is called by :func:`awe.startup.start_session` and when
a notebook first asks for ``awe.dpu``.
"""

from __future__ import annotations

import builtins
import keyword
import re
from typing import Any

#: Said after an AWE error's message, once per error.
TRACEBACK_HINT = "(%tb shows the traceback)"


def install(shell: Any) -> None:
    """Give ``shell`` (an IPython InteractiveShell) AWE's error display and echo rule."""
    from awe.dpu.echo import activate, forget_printed
    from awe.errors import AweError

    if getattr(shell, "_awe_installed", False):
        return
    shell._awe_installed = True
    activate()
    shell.set_custom_exc((AweError,), show_awe_error)
    shell.events.register("pre_run_cell", lambda *_info: forget_printed())
    _quiet_after_print(shell.displayhook)
    html = shell.display_formatter.formatters["text/html"]
    html.for_type_by_name("awe.db.frames", "Frame", frame_html)  # no import until shown


def frame_classes_on_first_use(shell: Any) -> None:
    """Put ``Frame``, ``RawBiasFrame``, ``BiasFrame``, ... in the namespace just before the
    first cell that names anything the namespace does not have yet.

    The frame classes are SQLAlchemy models; importing them at startup would cost the
    prompt a third of a second (SQLAlchemy is otherwise imported when the database is
    first used). ``awe -c pass`` and a cell of known names never pay it; a cell that says
    ``BiasFrame.select(...)`` finds the class there."""
    known = set(dir(builtins)) | set(keyword.kwlist)

    def push_if_named(info: Any) -> None:
        names = set(re.findall(r"[A-Za-z_]\w*", getattr(info, "raw_cell", "") or ""))
        if names - known - shell.user_ns.keys():
            shell.events.unregister("pre_run_cell", push_if_named)
            from awe.db.frames import Frame, frame_classes

            shell.push({"Frame": Frame, **frame_classes()})

    shell.events.register("pre_run_cell", push_if_named)


def show_awe_error(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset=None):
    """IPython's custom exception handler: one line, the traceback kept for ``%tb``."""
    shell._get_exc_info((etype, value, tb))  # keeps it as sys.last_* for %tb and %debug
    stb = [f"{etype.__name__}: {value} {TRACEBACK_HINT}"]
    shell._showtraceback(etype, value, stb)  # a terminal prints it; a kernel sends an error
    return stb


def _quiet_after_print(hook: Any) -> None:
    """Make the display hook skip values marked as printed (they still become ``_``)."""
    from awe.dpu.echo import was_printed

    base = type(hook)

    class QuietAfterPrint(base):
        def __call__(self, result: Any = None) -> None:
            if result is not None and was_printed(result):
                self.update_user_ns(result)
                return
            super().__call__(result)

    QuietAfterPrint.__name__ = f"AweQuiet{base.__name__}"
    hook.__class__ = QuietAfterPrint


def frame_html(frame: Any) -> str:
    """A frame as a one-row table, and its image as a PNG preview when it is one and its
    file is in this session's data store."""
    from html import escape

    from awe.data.store import DataStore
    from awe.db.frame_list import FRAME_COLUMNS, frame_row
    from awe.report.render import inline_preview
    from awe.report.view import IMAGE_SUFFIXES
    from awe.tables import Table

    table = Table(FRAME_COLUMNS, [frame_row(frame)]).html()
    if not frame.filename.lower().endswith(IMAGE_SUFFIXES):
        return table
    uri = inline_preview(DataStore.for_session(), frame)
    if uri is None:
        return table
    return f'{table}<img src="{uri}" alt="preview of {escape(frame.filename)}">'
