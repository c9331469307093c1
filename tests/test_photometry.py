"""Photcat and Photom against the simulator's truth: standard fields at three airmasses,
reduced with the true calibration; the fitted zeropoint of each chip and the extinction
against the filter's true zeropoint and extinction."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from awe.data import refcat
from awe.science.photometry import (
    PhotometryError,
    frame_zeropoint,
    instrumental_magnitudes,
    solve_photometry,
)
from sequences.photcal import measure_standards
from tests.pipeline_night import reduce_with_truth, standards_night
from tests.test_astrometry import trimmed_guess

CHIPS = ("ccd50", "ccd55")


def _effective_zeropoints(night) -> list[tuple[str, float, float, float]]:
    """(chip, ZP - k X, its error, airmass) of every standard-field CCD."""
    rows = []
    standards = [e for e in night.exposures if e["frame_type"] == "RawStandardFrame"]
    assert len({round(e["airmass"], 1) for e in standards}) == 3 and len(standards) == 6
    for entry in standards:
        for chip in CHIPS:
            model = night.chip_model(chip)
            reduced = reduce_with_truth(night, entry["file"], chip)
            header = fits.getheader(night.out / entry["file"], extname=chip)
            guess = trimmed_guess(header, model.x0, model.y0)
            centre = guess.all_pix2world([[model.nx / 2, model.ny / 2]], 0)[0]
            stars = refcat.read_cone(night.out / "refcat", centre[0], centre[1], 0.2)
            band = night.instrument.filter(entry["filter"]).band
            measured = measure_standards(
                reduced.image, reduced.weight, guess, stars, band, entry["exposure_time"]
            )
            try:
                zp = frame_zeropoint(
                    measured["mag_inst"], measured["magerr_inst"], measured["mag_ref"]
                )
            except PhotometryError:  # too few clean stars on this scaled-down chip
                continue
            rows.append((chip, zp.value, zp.error, entry["airmass"]))
    # most frames have enough stars, at every airmass
    assert len(rows) >= 10 and len({round(r[3], 1) for r in rows}) == 3
    return rows


def test_zeropoints_and_extinction_match_the_truth(tmp_path_factory) -> None:
    night = standards_night(tmp_path_factory.getbasetemp())
    truth = night.night["filters"]["#842"]
    rows = _effective_zeropoints(night)
    chips, effective, errors, airmass = zip(*rows, strict=True)
    # each frame alone: ZP - k X near the truth (a scaled-down chip has few bright stars)
    expected = truth["zeropoint"] - truth["extinction"] * np.array(airmass)
    offsets = np.abs(np.array(effective) - expected)
    assert np.median(offsets) < 0.01 and offsets.max() < 0.1
    solution = solve_photometry(effective, errors, airmass, chips)
    assert set(solution.zeropoints) == set(CHIPS)
    for zeropoint, error in solution.zeropoints.values():
        assert abs(zeropoint - truth["zeropoint"]) < 0.02 and error < 0.05
    assert abs(solution.extinction - truth["extinction"]) < 0.02
    # with the extinction given, only the zeropoints are fitted
    fixed = solve_photometry(effective, errors, airmass, chips, extinction=truth["extinction"])
    assert fixed.extinction_error is None
    for zeropoint, _ in fixed.zeropoints.values():  # a chip's few frames, nothing to share
        assert abs(zeropoint - truth["zeropoint"]) < 0.03


def test_solve_photometry_recovers_a_known_model_and_refuses_one_airmass() -> None:
    rng = np.random.default_rng(3)
    airmass = np.repeat([1.1, 1.5, 2.0], 4)
    chips = ["a", "b", "c", "d"] * 3
    true_zp = {"a": 24.0, "b": 24.1, "c": 23.9, "d": 24.05}
    effective = np.array([true_zp[c] for c in chips]) - 0.12 * airmass
    effective += 0.003 * rng.standard_normal(effective.size)
    solution = solve_photometry(effective, np.full(effective.size, 0.003), airmass, chips)
    assert abs(solution.extinction - 0.12) < 0.01
    for chip, (zeropoint, _) in solution.zeropoints.items():
        assert abs(zeropoint - true_zp[chip]) < 0.015
    with pytest.raises(PhotometryError, match="too little .* give the extinction"):
        solve_photometry([24.0, 24.01], [0.01, 0.01], [1.2, 1.21], ["a", "a"])


def test_frame_zeropoint_clips_outliers_and_needs_stars() -> None:
    rng = np.random.default_rng(5)
    reference = rng.uniform(15, 19, 40)
    instrumental = reference - 24.5 + 0.01 * rng.standard_normal(40)
    instrumental[:4] -= 0.8  # blends: too bright
    zp = frame_zeropoint(instrumental, np.full(40, 0.01), reference)
    assert abs(zp.value - 24.5) < 0.01 and zp.n_stars <= 36
    mag, err = instrumental_magnitudes(np.array([100.0, -1.0]), np.array([1.0, 1.0]), 10.0)
    assert mag[0] == pytest.approx(-2.5) and np.isnan(mag[1]) and err[0] > 0
    with pytest.raises(PhotometryError, match=r"only 2 standard stars measured \(need 5\)"):
        frame_zeropoint(np.array([1.0, 2.0]), np.array([0.1, 0.1]), np.array([3.0, 4.0]))


def test_photcat_then_photom_through_the_dpu(tmp_path_factory, database_url) -> None:
    from awe.db.engine import open_database
    from awe.db.frames import PhotometricParameters, PhotSrcCatalog
    from awe.dpu import Processor
    from tests.pipeline_night import NIGHT, ingested_standards_night

    database = open_database(database_url)
    night = ingested_standards_night(tmp_path_factory.getbasetemp(), database, chips=("ccd50",))
    dpu = Processor(database_url=database_url, username="alice")
    folder = str(night.out / "refcat")
    job_id = dpu.run(
        "Reduce>Photcat", i="WFI", d=NIGHT, c="ccd50", f="#842", o="SA*", refcat=folder, C=1
    )
    (status,) = dpu.wait(job_id, timeout=600)
    logs = "\n".join(dpu.get_logs(job_id)[job_id])
    assert status.counts["N"] == 2 * 6, logs  # Reduce and Photcat, 2 frames at 3 airmasses
    catalogues = PhotSrcCatalog.select(database=dpu.database, instrument="WFI")
    assert len(catalogues) == 6
    assert "standard stars, ZP - k X = " in logs
    job_id = dpu.run("Photom", i="WFI", d=NIGHT, f="#842", C=1)
    (status,) = dpu.wait(job_id, timeout=300)
    logs = "\n".join(dpu.get_logs(job_id)[job_id])
    assert status.counts["N"] == 1, logs
    truth = night.night["filters"]["#842"]
    for chip in ("ccd50",):
        found = PhotometricParameters.newest_valid(
            instrument="WFI", chip=chip, filter="#842", night=NIGHT, database=dpu.database
        )
        assert abs(found.results["zeropoint"] - truth["zeropoint"]) < 0.02, logs
        assert abs(found.results["extinction"] - truth["extinction"]) < 0.02, logs
    assert "Extinction 0." in logs and "Zeropoint ccd50 #842: " in logs
    with pytest.raises(Exception, match="found none; run Photcat on the standard fields"):
        dpu.run("Photom", i="WFI", d=NIGHT, f="#879", C=0)
    database.dispose()


def test_the_demos_image_pipeline_prints_zeropoints_astrometry_and_the_coadd(
    tmp_path_factory, capsys
) -> None:
    """``awe demo --pipeline``'s part after calibration, on one calibrated chip of a night
    with standard fields at three airmasses: every job ends N and what it prints is true."""
    import re

    from awe.db.engine import open_database
    from awe.dpu import Processor
    from awe.pipeline_demo import run_pipeline_demo
    from tests.pipeline_night import NIGHT, ingested_standards_night

    url = f"sqlite:///{tmp_path_factory.mktemp('demo-pipeline') / 'jobs.db'}"
    database = open_database(url)
    night = ingested_standards_night(tmp_path_factory.getbasetemp(), database, chips=("ccd50",))
    dpu = Processor(database_url=url, username="alice")
    refcat = night.out / "refcat"
    assert run_pipeline_demo(dpu, "WFI", NIGHT, refcat, filters=["#842"], chip="ccd50")
    out = capsys.readouterr().out
    truth = night.night["filters"]["#842"]
    found = re.search(r"#842: zeropoints ([\d.]+)-([\d.]+) over 1 CCDs, extinction ([\d.]+)", out)
    assert found, out
    assert abs(float(found[1]) - truth["zeropoint"]) < 0.02
    assert abs(float(found[3]) - truth["extinction"]) < 0.02
    rms = re.search(r"#842: global astrometric rms ([\d.]+) arcsec \(GAstrom\)", out)
    assert rms and float(rms[1]) < 0.1, out
    assert re.search(r"#842: coadd of 1 frames, \d+ x \d+ pixels, median", out), out
    database.dispose()
