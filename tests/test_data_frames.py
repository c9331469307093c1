"""Typed frames on SQLite and MariaDB: provenance links, validity, and "the newest valid
calibration for this chip and night" as one query."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from sqlalchemy.exc import IntegrityError

import awe.startup
from awe.db.frames import BiasFrame, Frame, RawBiasFrame, frame_class
from awe.db.jobs import TaskSpec, record_job

UTC = timezone.utc


def _raw(n: int, chip: str = "ccd50") -> RawBiasFrame:
    return RawBiasFrame(
        filename=f"raw{n}.fits", sha256=f"{n:064x}", size=10, instrument="WFI", chip=chip,
        night=date(2000, 4, 28), object="BIAS", exposure_number=n, mjd=51663.0 + n / 100,
    )  # fmt: skip


def _bias(n: int, created: datetime, *, chip: str = "ccd50", **kwargs) -> BiasFrame:
    return BiasFrame(
        filename=f"bias{n}.fits", sha256=f"{n + 1000:064x}", size=10, instrument="WFI",
        chip=chip, created_at=created, **kwargs,
    )  # fmt: skip


def test_newest_valid_calibration_for_a_chip_and_night(database) -> None:
    with database.session() as session:
        session.add_all([
            _bias(1, datetime(2000, 4, 20, tzinfo=UTC)),
            _bias(2, datetime(2000, 4, 29, tzinfo=UTC)),
            _bias(3, datetime(2000, 4, 30, tzinfo=UTC), is_valid=False),  # newest, rejected
            _bias(4, datetime(2000, 5, 1, tzinfo=UTC),  # newest valid, but not for that night
                  valid_from=datetime(2000, 5, 1, tzinfo=UTC)),
            _bias(5, datetime(2000, 5, 2, tzinfo=UTC), chip="ccd51"),  # another chip
        ])  # fmt: skip
    found = BiasFrame.newest_valid(
        instrument="WFI", chip="ccd50", night="2000-04-28", database=database
    )
    assert found.filename == "bias2.fits"
    later = BiasFrame.newest_valid(
        instrument="WFI", chip="ccd50", at=datetime(2000, 5, 3, tzinfo=UTC), database=database
    )
    assert later.filename == "bias4.fits"
    assert BiasFrame.newest_valid(instrument="WFI", chip="ccd52", database=database) is None


def test_a_product_records_its_provenance(database) -> None:
    job_id = record_job(
        database, username="alice", project="P", sequence="Bias", dpu_name="local",
        tasks=[TaskSpec("Bias ccd50")], code_snapshot_id="c" * 64,
    )  # fmt: skip
    with database.session() as session:
        raws = [_raw(1), _raw(2)]
        session.add_all(raws)
        session.flush()
        product = _bias(
            1, datetime(2000, 4, 29, tzinfo=UTC), inputs=raws, job_id=job_id,
            code_snapshot_id="c" * 64, process_params={"SIGMA_CLIP": 3.0},
            results={"mean": 300.2}, quality_flags=0,
        )  # fmt: skip
        session.add(product)
    [bias] = BiasFrame.select(instrument="WFI", database=database)
    assert sorted(f.filename for f in bias.inputs) == ["raw1.fits", "raw2.fits"]
    assert bias.job_id == job_id and bias.process_params == {"SIGMA_CLIP": 3.0}
    assert bias.results == {"mean": 300.2} and bias.code_snapshot_id == "c" * 64
    # An input a product was made from cannot disappear from under it.
    with pytest.raises(IntegrityError), database.session() as session:
        session.delete(session.get(RawBiasFrame, bias.inputs[0].id))
        session.flush()


def test_the_same_content_is_one_frame_of_a_type(database) -> None:
    with database.session() as session:
        session.add(_raw(1))
    with pytest.raises(IntegrityError), database.session() as session:
        session.add(_raw(1))


def test_select_uses_the_session_database_by_default(
    database_url: str, database, monkeypatch: pytest.MonkeyPatch
) -> None:
    with database.session() as session:
        session.add_all([_raw(1), _raw(2, chip="ccd51")])
    monkeypatch.setenv("AWE_DATABASE_URL", database_url)
    monkeypatch.setenv("AWE_SESSION_LOG", "")
    monkeypatch.setattr(awe.startup, "_processor", None)  # a fresh session for this test
    try:
        found = RawBiasFrame.select(instrument="WFI", date="2000-04-28", chip="ccd51")
        assert [f.exposure_number for f in found] == [2]
        assert [f.frame_type for f in Frame.select(object="B?AS")] == ["RawBiasFrame"] * 2
    finally:
        if awe.startup._processor is not None and awe.startup._processor.jobs._database:
            awe.startup._processor.jobs._database.dispose()


def test_frame_types_are_named_as_in_astro_wise() -> None:
    for name in ("ReadNoise", "HotPixelMap", "ColdPixelMap", "GainLinearity", "MasterFlatFrame",
                 "NightSkyFlatFrame", "FringeFrame", "ReducedScienceFrame", "WeightFrame",
                 "SourceList", "AstrometricParameters", "PhotSrcCatalog", "PhotometricParameters",
                 "RegriddedFrame", "CoaddedRegriddedFrame", "RawTwilightFlatFrame"):  # fmt: skip
        assert frame_class(name).__name__ == name
    with pytest.raises(ValueError, match="'BiasFrames' is not a frame type; frame types: "):
        frame_class("BiasFrames")
