"""The session log: every line the Processor prints, also kept in ``YYYYMMDD_HHMMSS.log``.

As in Astro-WISE, one file per session, named after the session's start time, in the
working directory unless ``Env.session_log`` names another folder ('' turns it off). The
file is created with the first line, so sessions that print nothing leave nothing behind.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import TextIO


class SessionLog:
    def __init__(self, folder: str, started: datetime) -> None:
        self.path: Path | None = (
            Path(folder) / started.strftime("%Y%m%d_%H%M%S.log") if folder else None
        )
        self._file: TextIO | None = None

    def write(self, line: str) -> None:
        if self.path is None:
            return
        try:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
            self._file.write(line + "\n")
            self._file.flush()
        except OSError as err:
            print(
                f"WARNING: cannot write the session log {self.path} ({err.strerror or err}); "
                f"session logging is off. Set Env.session_log (AWE_SESSION_LOG) to a "
                f"writable folder to keep one.",
                file=sys.stderr,
            )
            self.path = None
