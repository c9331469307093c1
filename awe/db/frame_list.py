"""Frames as a table: what ``RawBiasFrame.select(...)`` and ``dpu.get_job_result(...)``
return, a plain list that shows as aligned text at the prompt and as an HTML table in a
notebook (one row per frame, the keys that find it and the job that made it)."""

from __future__ import annotations

from awe.tables import ShowsAsTable, Table

FRAME_COLUMNS = ("id", "type", "instrument", "chip", "filter", "night", "object", "exposure")
FRAME_COLUMNS += ("filename", "job", "valid")


def frame_row(frame: object) -> list[object]:
    """One frame as a row of :data:`FRAME_COLUMNS`."""
    keys = ("instrument", "chip", "filter", "night", "object", "exposure_number", "filename")
    values = [getattr(frame, key) for key in keys]
    valid = "yes" if frame.is_valid else f"no (flags {frame.quality_flags})"
    return [frame.id, type(frame).__name__, *values, frame.job_id, valid]


class FrameList(ShowsAsTable, list):
    """Frames (a query's result, a job's products), shown as a table."""

    def table(self) -> Table:
        kinds = sorted({type(frame).__name__ for frame in self})
        caption = f"{len(self)} frames ({', '.join(kinds)})" if self else "no frames"
        return Table(FRAME_COLUMNS, [frame_row(frame) for frame in self], caption)
