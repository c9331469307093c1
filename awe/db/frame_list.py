"""Query results as tables: what ``RawBiasFrame.select(...)``, ``dpu.get_job_result(...)``
and ``Source.select(...)`` return, plain lists that show as aligned text at the prompt and
as an HTML table in a notebook (one row per frame, the keys that find it and the job that
made it; one row per source, its position, magnitude and flags)."""

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


SOURCE_COLUMNS = ("list", "number", "x", "y", "ra", "dec", "mag_auto", "magerr_auto", "fwhm")
SOURCE_COLUMNS += ("flags",)


class SourceRows(ShowsAsTable, list):
    """Sources (``Source.select``, ``source_list.get_sources``), shown as a table."""

    def table(self) -> Table:
        keys = ("x", "y", "ra", "dec", "mag_auto", "magerr_auto", "fwhm", "flags")
        rows = [[s.source_list_id, s.number, *(getattr(s, key) for key in keys)] for s in self]
        return Table(SOURCE_COLUMNS, rows, f"{len(self)} sources")
