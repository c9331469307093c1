"""Instruments as data: the three built-in cameras, chip and filter lookup, section
geometry (also shrunk for fast simulations), and the noon-to-noon observing night."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone

import pytest

from awe.data.errors import InstrumentError
from awe.data.instruments import (
    INSTRUMENT_DIR,
    get_instrument,
    instrument_for_header,
    instrument_names,
    load_instrument,
)
from awe.db.frames import raw_frame_classes


def test_the_three_cameras_and_their_chips() -> None:
    assert sorted(instrument_names()) == ["DECam", "OmegaCAM", "WFI"]
    wfi = get_instrument("wfi")
    assert [c.name for c in wfi.chips] == [f"ccd{n}" for n in range(50, 58)]
    assert len(get_instrument("OMEGACAM").chips) == 32
    decam = get_instrument("DECam")
    assert [c.number for c in decam.chips] == list(range(1, 63))
    names = [c.name for c in decam.chips]
    assert (
        sum(n.startswith("S") for n in names) == 31 and sum(n.startswith("N") for n in names) == 31
    )
    assert {c.number: c.name for c in decam.chips if c.dead} == {2: "S30", 61: "N30"}
    assert [c.number for c in decam.chips if not c.difference_imaging] == [31]
    assert decam.chip(31).name == "S7" and decam.chip("n4").number == 35
    assert len(decam.working_chips) == 60
    assert len(decam.detector.amplifiers) == 2


def test_unknown_names_are_errors_that_list_the_valid_ones() -> None:
    with pytest.raises(InstrumentError, match=r"'ccd99' is not a chip of WFI.*ccd50"):
        get_instrument("WFI").chip("ccd99")
    with pytest.raises(InstrumentError, match=r"'Hubble' is not a known instrument.*WFI"):
        get_instrument("Hubble")
    with pytest.raises(InstrumentError, match=r"not a filter of WFI; known filters: #841"):
        get_instrument("WFI").filter("Halpha")
    assert get_instrument("WFI").filter("BB#B/99_ESO842").name == "#842"
    assert instrument_for_header("OMEGACAM").name == "OmegaCAM"
    assert instrument_for_header("NOTACAM") is None


@pytest.mark.parametrize("name", ["WFI", "OmegaCAM", "DECam"])
@pytest.mark.parametrize("scale", [1.0, 0.125, 0.0625])
def test_sections_fit_and_survive_scaling(name: str, scale: float) -> None:
    instrument = get_instrument(name).scaled(scale)
    detector = instrument.detector
    full = get_instrument(name).detector
    assert detector.data_section.shape == tuple(round(n * scale) for n in full.data_section.shape)
    for amp in detector.amplifiers:
        for section in (amp.data, amp.overscan, amp.prescan):
            assert 1 <= section.x1 <= section.x2 <= detector.naxis[0]
            assert 1 <= section.y1 <= section.y2 <= detector.naxis[1]
        assert amp.overscan.x2 < amp.data.x1 or amp.overscan.x1 > amp.data.x2  # no overlap
    # The header a simulated chip carries gives the same layout back.
    assert full.from_header({**detector.header_cards(), "NAXIS1": detector.naxis[0],
                             "NAXIS2": detector.naxis[1]}) == detector  # fmt: skip


def test_the_night_runs_from_local_noon_to_local_noon() -> None:
    site = get_instrument("WFI").site  # La Silla, UTC-4
    assert site.night_of(datetime(2000, 4, 29, 15, 59, tzinfo=timezone.utc)) == date(2000, 4, 28)
    assert site.night_of(datetime(2000, 4, 29, 16, 1, tzinfo=timezone.utc)) == date(2000, 4, 29)
    assert site.night_of(datetime(2000, 4, 28, 23, 0)) == date(2000, 4, 28)  # naive means UTC
    assert site.midnight(date(2000, 4, 28)) == datetime(2000, 4, 29, 4, tzinfo=timezone.utc)


def test_every_frame_type_of_the_instrument_files_is_a_raw_frame_class() -> None:
    for name in instrument_names():
        assert set(get_instrument(name).frame_types.values()) <= set(raw_frame_classes())


def test_an_instrument_is_a_data_file(tmp_path) -> None:
    raw = json.loads((INSTRUMENT_DIR / "wfi.json").read_text())
    raw.update(name="TestCam", header_names=["TESTCAM"])
    raw["chips"] = raw["chips"][:2]
    path = tmp_path / "testcam.json"
    path.write_text(json.dumps(raw))
    camera = load_instrument(path)
    assert camera.name == "TestCam" and [c.name for c in camera.chips] == ["ccd50", "ccd51"]
    del raw["site"]
    path.write_text(json.dumps(raw))
    with pytest.raises(InstrumentError, match=r"testcam.json lacks the field 'site'"):
        load_instrument(path)
