"""Ingest on SQLite and MariaDB: simulated nights of all three cameras become one frame per
working CCD with the right keys, headers and pixels; the same files twice add nothing;
every bad file gets its own error line while the rest goes on; and a failure half way
(a real database error) leaves neither rows nor store files."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from sqlalchemy import select, text

from awe.data.ingestion import ingest
from awe.data.store import DataStore
from awe.db.frames import Frame, RawBiasFrame, RawScienceFrame
from tests.simulated_nights import simulated_night


@pytest.fixture(scope="session")
def nights(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("nights")
    return {name: simulated_night(base, name) for name in ("WFI", "OmegaCAM", "DECam")}


@pytest.fixture
def store(tmp_path: Path) -> DataStore:
    return DataStore(tmp_path / "data")


def _stored_files(store: DataStore) -> list[Path]:
    return [p for p in store.root.rglob("*") if p.is_file() and p.parent.name != "tmp"]


def _frames(database) -> list[Frame]:
    with database.session() as session:
        return list(session.scalars(select(Frame).order_by(Frame.id)))


@pytest.mark.parametrize("instrument", ["WFI", "OmegaCAM", "DECam"])
def test_a_simulated_night_becomes_one_frame_per_working_ccd(
    database, store, nights, instrument: str
) -> None:
    night = nights[instrument]
    camera = night.instrument
    report = ingest([night.out], database=database, store=store, progress=False)
    assert report.ok, report.errors
    assert len(report.files) == len(night.exposures)  # the truth JSON files are not ingested

    frames = _frames(database)
    working = [c.name for c in camera.working_chips]
    expected = Counter({})
    for exposure in night.exposures:
        expected[exposure["frame_type"]] += len(working)
    assert Counter(f.frame_type for f in frames) == expected
    assert sum(report.added.values()) == len(frames) == len(_stored_files(store))
    dead = {c.name for c in camera.chips if c.dead}
    assert dead.isdisjoint(f.chip for f in frames)
    assert all(
        r.skipped_chips == sorted(dead, key=lambda n: camera.chip(n).number) for r in report.files
    )

    # Keys against the truth, exposure by exposure.
    by_exposure: dict[int, list[Frame]] = {}
    for frame in frames:
        by_exposure.setdefault(frame.exposure_number, []).append(frame)
    for exposure in night.exposures:
        group = by_exposure[exposure["exposure_number"]]
        assert sorted(f.chip for f in group) == sorted(working)
        for frame in group:
            assert frame.instrument == camera.name
            assert frame.frame_type == exposure["frame_type"]
            assert frame.night.isoformat() == night.night["night"]
            assert frame.object == exposure["object"]
            assert frame.exposure_time == exposure["exposure_time"]
            assert frame.mjd == pytest.approx(exposure["mjd"], abs=1e-7)
            assert frame.date_obs.isoformat(timespec="milliseconds")[:23] == exposure["date_obs"]
            assert frame.airmass == pytest.approx(exposure["airmass"], abs=1e-4)
            expected_filter = (
                None if exposure["frame_type"] == "RawBiasFrame" else exposure["filter"]
            )
            assert frame.filter == expected_filter
            assert frame.is_valid and frame.quality_flags == 0 and frame.job_id is None

    # Header values and pixels round-trip: the stored CCD file is the MEF's extension with
    # the primary header merged in.
    science = next(f for f in frames if f.frame_type == "RawScienceFrame")
    source = night.out / next(
        e["file"] for e in night.exposures if e["exposure_number"] == science.exposure_number
    )
    with fits.open(source) as mef, fits.open(store.get(science.sha256)) as single:
        extension = next(h for h in mef[1:] if h.header["EXTNAME"] == science.chip)
        header = single[0].header
        for key in ("INSTRUME", "OBJECT", "EXPTIME", "MJD-OBS", "DATE-OBS", "AWESEED"):
            assert header[key] == mef[0].header[key]
        for key in ("EXTNAME", "DATASEC", "CRPIX1", "CD1_1"):
            assert header[key] == extension.header[key]
        assert header[camera.keywords["frame_type"]] == mef[0].header[camera.keywords["frame_type"]]
        assert single[0].data.dtype == np.uint16
        assert np.array_equal(single[0].data, extension.data)
    assert (
        science.filename
        == f"{source.name.split('.fits')[0]}_{camera.chip(science.chip).number}.fits"
    )


def test_ingest_is_idempotent_and_the_prompt_query_finds_the_frames(
    database, store, nights
) -> None:
    files = sorted(nights["WFI"].out.glob("*.fits"))
    chosen = files[:3] + files[-2:]  # the three biases and the last two science exposures
    first = ingest(chosen, database=database, store=store, progress=False)
    rows, stored = len(_frames(database)), len(_stored_files(store))
    again = ingest(chosen[::-1], database=database, store=store, progress=False)
    assert again.ok and sum(again.added.values()) == 0
    assert again.present == sum(first.added.values()) == rows == 5 * 8
    assert len(_frames(database)) == rows and len(_stored_files(store)) == stored

    biases = RawBiasFrame.select(
        instrument="WFI", date="2000-04-28", chip="ccd50", database=database
    )
    assert len(biases) == 3 and all(b.chip == "ccd50" for b in biases)
    assert [b.exposure_number for b in biases] == [1001, 1002, 1003]
    assert RawBiasFrame.select(instrument="WFI", date="2000-04-29", database=database) == []
    science = RawScienceFrame.select(
        instrument="WFI", object="AWE_*", filter="#879", database=database
    )
    assert len(science) == 2 * 8 and {f.object for f in science} == {"AWE_DEEP_1"}


def _edit_header(source: Path, target: Path, **changes) -> None:
    with fits.open(source) as hdul:
        for key, value in changes.items():
            key = key.replace("_", "-") if key == "MJD_OBS" else key
            if value is None:
                del hdul[0].header[key]
            else:
                hdul[0].header[key] = value
        hdul.writeto(target)


def test_every_bad_file_gets_its_own_error_line_and_the_rest_goes_on(
    database, store, nights, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    good = sorted(nights["WFI"].out.glob("*.fits"))[:2]
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "notes.fits").write_text("observing log: seeing 0.9 arcsec\n" * 100)
    data = good[0].read_bytes()
    (bad / "truncated.fits").write_bytes(data[: len(data) // 2])
    (bad / "cut.fits").write_bytes(data[: 2880 * 50])  # whole blocks, but the data stops
    _edit_header(good[0], bad / "alien.fits", INSTRUME="HUBBLE-WFC3")
    _edit_header(good[1], bad / "noexptime.fits", EXPTIME=None)
    _edit_header(good[1], bad / "badtype.fits", **{"HIERARCH ESO DPR TYPE": "LAMP,WAVE"})
    names = ["notes", "truncated", "cut", "alien", "noexptime", "badtype", "missing"]
    inputs = [good[0], *(bad / f"{name}.fits" for name in names), good[1]]

    report = ingest(inputs, database=database, store=store, progress=False)

    errors = capsys.readouterr().err.splitlines()
    problems = {
        "notes.fits": "is not a FITS file",
        "truncated.fits": "is truncated",
        "cut.fits": "is truncated: HDU 1 needs",
        "alien.fits": "INSTRUME = 'HUBBLE-WFC3' is not an instrument AWE knows",
        "noexptime.fits": "lacks the keyword EXPTIME",
        "badtype.fits": "HIERARCH ESO DPR TYPE = 'LAMP,WAVE' is not a frame type",
        "missing.fits": "no such file",
    }
    assert len(report.errors) == len(problems)
    for name, problem in problems.items():
        lines = [e for e in errors if e.startswith(f"ERROR: {bad / name}: ")]
        assert len(lines) == 1 and problem in lines[0], (name, errors)
    assert sum(report.added.values()) == 16  # the two good files, 8 CCDs each
    assert {f.exposure_number for f in _frames(database)} == {1001, 1002}
    assert len(_stored_files(store)) == 16  # nothing of the bad files was stored
    assert "Ingested 2 of 9 files: 16 new frames" in errors[-1]


TRIGGERS = {
    "sqlite": """CREATE TRIGGER refuse_ccd54 BEFORE INSERT ON awe_frames WHEN NEW.chip = 'ccd54'
                 BEGIN SELECT RAISE(ABORT, 'ccd54 refused by a test trigger'); END""",
    "mysql": """CREATE TRIGGER refuse_ccd54 BEFORE INSERT ON awe_frames FOR EACH ROW
                BEGIN IF NEW.chip = 'ccd54' THEN SIGNAL SQLSTATE '45000'
                SET MESSAGE_TEXT = 'ccd54 refused by a test trigger'; END IF; END""",
}


def test_a_failed_database_write_leaves_neither_rows_nor_files(database, store, nights) -> None:
    exposure = sorted(nights["WFI"].out.glob("*.fits"))[0]
    with database.engine.begin() as connection:
        connection.execute(
            text(TRIGGERS[database.dialect if database.dialect == "sqlite" else "mysql"])
        )
    report = ingest([exposure], database=database, store=store, progress=False, verbose=False)
    assert len(report.errors) == 1 and "ccd54 refused by a test trigger" in report.errors[0]
    assert "nothing of it was kept" in report.errors[0]
    assert _frames(database) == [] and _stored_files(store) == []
    with database.engine.begin() as connection:
        connection.execute(text("DROP TRIGGER refuse_ccd54"))
    again = ingest([exposure], database=database, store=store, progress=False, verbose=False)
    assert again.ok and sum(again.added.values()) == 8 and len(_stored_files(store)) == 8
