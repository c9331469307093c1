"""Session defaults for the lower layers (awe.context): a call without ``database=`` uses the
innermost ``using(dpu)``, per thread; the sites of instruments come from the instrument files."""

from __future__ import annotations

import threading
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from awe import context
from awe.data.store import DataStore
from awe.db.frames import RawBiasFrame, frame_counts
from awe.dpu import Processor


def _raw(database, exposure: int) -> None:
    with database.session() as session:
        session.add(
            RawBiasFrame(
                filename=f"b{exposure}.fits", sha256=f"{exposure:064x}", size=1, instrument="WFI",
                chip="ccd50", night=date(2000, 4, 28), exposure_number=exposure,
            )
        )  # fmt: skip


def test_using_makes_a_processor_the_default_of_its_block_only(tmp_path: Path) -> None:
    first = Processor(database_url=f"sqlite:///{tmp_path / 'a.db'}", session_log="")
    second = Processor(database_url=f"sqlite:///{tmp_path / 'b.db'}", session_log="")
    _raw(first.database, 1)
    _raw(second.database, 2)
    seen_in_thread = []
    with context.using(first):
        assert [f.exposure_number for f in RawBiasFrame.select(instrument="WFI")] == [1]
        with context.using(second):
            assert context.session_database() is second.database
            counts = frame_counts("WFI", "2000-04-28")
            assert [(c.frame_type, c.frames, c.chips) for c in counts] == [("RawBiasFrame", 1, 1)]
            assert DataStore.for_session().root == Path(second.env.data_root).resolve()
        assert context.session_database() is first.database
        # Another thread starts from the defaults, not from this block.
        with context.using(second):
            thread = threading.Thread(
                target=lambda: seen_in_thread.append(context._current.get() is None)
            )
            thread.start()
            thread.join()
    assert seen_in_thread == [True]
    assert context.session_database(first.database) is first.database  # given wins


def test_nights_end_at_local_midnight_of_the_instruments_site() -> None:
    # La Silla is UTC-4: midnight inside the night of 2000-04-28 is 04:00 UTC on the 29th.
    midnight = context.site_midnight("WFI", date(2000, 4, 28))
    assert midnight == datetime(2000, 4, 29, 4, tzinfo=timezone.utc)


def test_a_bad_night_is_a_clear_error(database) -> None:
    with pytest.raises(
        ValueError, match="night '28/04/2000' is not a date; write it as YYYY-MM-DD"
    ):
        RawBiasFrame.select(database=database, date="28/04/2000")


def test_without_a_session_a_call_says_what_to_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(context, "_open_session", None)
    monkeypatch.setattr(context, "_site_midnight", None)
    with pytest.raises(context.NoSession, match="pass database="):
        RawBiasFrame.select(instrument="WFI")
    with pytest.raises(context.NoSession, match="pass at="):
        RawBiasFrame.newest_valid(instrument="WFI", night="2000-04-28")
