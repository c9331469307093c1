"""The calibration overview (Astro-WISE's CalTS idea): per chip and calibration type, the
frame valid on a night, when it was made, by which job, and its quality flags; missing
ones marked.

``dpu.show_calibration(i='WFI', d='2000-04-28')`` and ``awe calibration -i WFI -d
2000-04-28`` print it. NightSkyFlatFrame and FringeFrame rows appear when the instrument
has such frames. Two queries in all: the valid calibration frames of the instrument
whose validity covers the night's midnight, and the frames of that night that were
flagged or invalidated (so a missing entry can say why).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import or_, select

#: Calibration types in pipeline order; the second part says whether they are per filter.
CALIBRATION_TYPES: tuple[tuple[str, bool], ...] = (
    ("ReadNoise", False),
    ("BiasFrame", False),
    ("HotPixelMap", False),
    ("GainLinearity", False),
    ("DomeFlatFrame", True),
    ("TwilightFlatFrame", True),
    ("ColdPixelMap", True),
    ("MasterFlatFrame", True),
)
#: Shown only when the instrument has one (not every night or filter needs them).
OPTIONAL_TYPES: tuple[tuple[str, bool], ...] = (
    ("NightSkyFlatFrame", True),
    ("FringeFrame", True),
)
RAW_WITH_FILTER = (
    "RawDomeFlatFrame",
    "RawTwilightFlatFrame",
    "RawScienceFrame",
    "RawStandardFrame",
)


@dataclass(frozen=True)
class OverviewRow:
    """One chip, type (and filter): the valid frame, or why there is none."""

    chip: str
    type: str
    filter: str | None
    frame_id: int | None
    filename: str | None
    created_at: datetime | None
    job_id: int | None
    quality_flags: int | None
    note: str  # "" when valid; "MISSING" or "FLAGGED ..." otherwise

    @property
    def missing(self) -> bool:
        return self.frame_id is None


def calibration_overview(
    database: Any,
    instrument: str,
    night: str | date,
    *,
    filters: list[str] | None = None,
    types: list[str] | None = None,
) -> list[OverviewRow]:
    """The overview rows of ``instrument`` for ``night`` (see the module docstring).

    ``filters``: default the filters of the night's raw frames and calibrations."""
    from awe.data.instruments import get_instrument
    from awe.db.frames import Frame, _night

    camera = get_instrument(instrument)
    night_date = _night(night)
    moment = camera.site.midnight(night_date)
    every = CALIBRATION_TYPES + OPTIONAL_TYPES
    candidates = [(t, per) for t, per in every if not types or t in types]
    names = [t for t, _ in candidates]
    with database.session() as session:
        valid = session.scalars(
            select(Frame)
            .where(
                Frame.instrument == camera.name,
                Frame.frame_type.in_(names),
                Frame.is_valid.is_(True),
                or_(Frame.valid_from.is_(None), Frame.valid_from <= moment),
                or_(Frame.valid_to.is_(None), Frame.valid_to > moment),
            )
            .order_by(Frame.created_at, Frame.id)
        ).all()
        flagged = session.scalars(
            select(Frame)
            .where(
                Frame.instrument == camera.name,
                Frame.frame_type.in_(names),
                Frame.night == night_date,
                or_(Frame.is_valid.is_(False), Frame.quality_flags != 0),
            )
            .order_by(Frame.created_at, Frame.id)
        ).all()
        if filters is None:
            raw_filters = session.scalars(
                select(Frame.filter)
                .where(
                    Frame.instrument == camera.name,
                    Frame.night == night_date,
                    Frame.frame_type.in_(RAW_WITH_FILTER),
                    Frame.filter.is_not(None),
                )
                .distinct()
            ).all()
            filters = sorted(set(raw_filters) | {f.filter for f in valid if f.filter})
    present = {f.frame_type for f in valid} | {f.frame_type for f in flagged}
    optional = {t for t, _ in OPTIONAL_TYPES}
    wanted = [(t, per) for t, per in candidates if t not in optional or t in present or types]
    newest: dict[tuple[str, str | None, str | None], Any] = {}
    for frame in valid:  # ordered by creation: the last one wins
        if not frame.quality_flags:
            newest[(frame.frame_type, frame.chip, frame.filter)] = frame
    bad: dict[tuple[str, str | None, str | None], Any] = {}
    for frame in flagged:
        bad[(frame.frame_type, frame.chip, frame.filter)] = frame
    rows = []
    for chip in [c.name for c in camera.working_chips]:
        for type_name, per_filter in wanted:
            for filt in filters if per_filter else [None]:
                key = (type_name, chip, filt)
                frame = newest.get(key)
                if frame is not None:
                    rows.append(_row(chip, type_name, filt, frame, ""))
                elif key in bad:
                    rejected = bad[key]
                    rows.append(
                        _row(
                            chip,
                            type_name,
                            filt,
                            None,
                            f"FLAGGED {rejected.filename} "
                            f"(flags {rejected.quality_flags}, job {rejected.job_id})",
                        )
                    )
                else:
                    rows.append(_row(chip, type_name, filt, None, "MISSING"))
    return rows


def _row(chip: str, type_name: str, filt: str | None, frame: Any, note: str) -> OverviewRow:
    return OverviewRow(
        chip=chip,
        type=type_name,
        filter=filt,
        frame_id=frame.id if frame is not None else None,
        filename=frame.filename if frame is not None else None,
        created_at=frame.created_at if frame is not None else None,
        job_id=frame.job_id if frame is not None else None,
        quality_flags=frame.quality_flags if frame is not None else None,
        note=note,
    )


def format_overview(rows: list[OverviewRow], instrument: str, night: str | date) -> str:
    """The overview as a table, one line per chip, type and filter."""
    missing = sum(row.missing for row in rows)
    lines = [
        f"Calibration of {instrument} for night {night}: {len(rows) - missing} valid, "
        f"{missing} missing",
        f"  {'chip':<8} {'type':<18} {'filter':<12} {'frame':>7} {'made (UTC)':<17} "
        f"{'job':>5} {'flags':>5}  file",
    ]
    for row in rows:
        if row.missing:
            lines.append(f"  {row.chip:<8} {row.type:<18} {row.filter or '-':<12} {row.note}")
            continue
        made = row.created_at.strftime("%Y-%m-%d %H:%M") if row.created_at else "-"
        lines.append(
            f"  {row.chip:<8} {row.type:<18} {row.filter or '-':<12} {row.frame_id:>7} "
            f"{made:<17} {row.job_id if row.job_id is not None else '-':>5} "
            f"{row.quality_flags:>5}  {row.filename}"
        )
    return "\n".join(lines)


def show_calibration(
    database: Any,
    i: str | None = None,
    d: str | None = None,
    *,
    instrument: str | None = None,
    date: str | None = None,
    f: str | None = None,
    c: str | None = None,
    filter: str | None = None,
    chip: str | None = None,
    out: Any = None,
) -> list[Any]:
    """Print the calibration overview of instrument ``i`` for night ``d`` (or by their
    long names, as ``dpu.run`` takes them); return its rows."""
    from awe.errors import AweError

    instrument = i or instrument
    night = d or date
    if not instrument or not night:
        raise AweError(
            "show_calibration needs an instrument and a night, e.g. "
            "dpu.show_calibration(i='WFI', d='2000-04-28')"
        )
    filt = f or filter
    try:
        rows = calibration_overview(database, instrument, night, filters=[filt] if filt else None)
    except ValueError as err:
        raise AweError(str(err)) from None
    wanted_chip = c or chip
    if wanted_chip:
        rows = [row for row in rows if row.chip == wanted_chip]
        if not rows:
            raise AweError(f"{instrument} has no working chip {wanted_chip!r}")
    print(format_overview(rows, instrument, night), file=out or sys.stdout)
    return rows
