"""Observing nights as users write them: ``'YYYY-MM-DD'``, the date on which a night starts.

One reader for every layer (the frame queries, the simulator), so a night is accepted, and
refused, the same way everywhere.
"""

from __future__ import annotations

from datetime import date

from awe.errors import AweError


class NightError(AweError, ValueError):
    """A night that is not a date."""


def parse_night(value: str | date) -> date:
    """``value`` as a date; a date passes through unchanged."""
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise NightError(f"night {value!r} is not a date; write it as YYYY-MM-DD") from None
