"""The calibration sequences on a simulated WFI night, run for real on the local DPU
(SQLite; one end-to-end run on MariaDB), checked against the simulator's truth, against
ccdproc's combine, and fed bad input."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from awe.data.simulate import NightTruth, simulate_night
from awe.dpu import Processor
from awe.science.combine import clipped_mean
from awe.science.overscan import correct
from tests.test_calibration_science import ccdproc_combine

NIGHT = "2000-04-28"
CHIP = "ccd50"
QUANTISATION = 1 / 12  # ADU^2: the variance integer read-out adds
#: A night made for calibration: ten biases, a photon-transfer series of dome flats at five
#: levels (two per level), four twilight flats, four dithered science exposures, a
#: non-linear response; a blue and a red filter.
PLAN = {
    "nonlinearity": 0.02,
    "bias": {"count": 10},
    "dome_flat": {"count": 2, "levels": [4000, 8000, 16000, 24000, 32000]},
    "twilight_flat": {"count": 4},
    "standard": {"count": 1},
    "science": {"count": 4},
}


@pytest.fixture(scope="module")
def night_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("calibration-night")
    simulate_night(
        "WFI", NIGHT, out, scale=0.125, filters=["#842", "#879"], plan=PLAN, progress=False
    )
    return out


def ingested(night_dir: Path, database_url: str) -> Processor:
    from awe.data.ingestion import ingest
    from awe.data.store import DataStore
    from awe.db.engine import open_database
    from awe.env import load_env

    database = open_database(database_url)
    try:
        report = ingest(
            [night_dir], database=database, store=DataStore(load_env().data_root), progress=False
        )
    finally:
        database.dispose()
    assert report.ok
    return Processor(database_url=database_url, username="alice")


def run(dpu: Processor, sequence: str, **options) -> tuple[int, list]:
    """Run a step with C=1, wait; (job id, committed frames)."""
    job_id = dpu.run(sequence, i="WFI", d=NIGHT, C=1, **options)
    (status,) = dpu.wait(job_id, timeout=600)
    assert status.counts["N"] == status.total, "\n".join(dpu.get_logs(job_id)[job_id])
    return job_id, with_inputs(dpu, dpu.get_job_result(job_id))


def with_inputs(dpu: Processor, frames: list) -> list:
    """The frames again, with their input frames loaded (provenance)."""
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from awe.db.frames import Frame

    ids = [f.id for f in frames]
    with dpu.database.session() as session:
        query = select(Frame).options(selectinload(Frame.inputs)).where(Frame.id.in_(ids))
        return sorted(session.scalars(query), key=lambda f: ids.index(f.id))


def image(frame) -> np.ndarray:
    from awe.data.store import DataStore
    from awe.env import load_env

    return fits.getdata(DataStore(load_env().data_root).path(frame.sha256))


def raw_images(truth: NightTruth, frame_type: str, filt: str | None = None) -> list:
    return [
        (e, fits.getdata(truth.out / e["file"], extname=CHIP))
        for e in truth.exposures
        if e["frame_type"] == frame_type and (filt is None or e["filter"] == filt)
    ]


def regions(truth: NightTruth):
    from awe.science.overscan import Region

    return [
        Region(a.data.slices, a.overscan.slices, a.prescan.slices if a.prescan else None)
        for a in truth.instrument.detector.amplifiers
    ]


def logs(dpu: Processor, job_id: int) -> str:
    return "\n".join(dpu.get_logs(job_id)[job_id])


def test_master_bias_stack_adds_no_noise_or_structure(night_dir: Path) -> None:
    """oc=0 keeps the bias level, so the master bias can be compared with the truth: its
    mean within 0.1 ADU, its difference from the true structure read noise / sqrt(N)."""
    truth = NightTruth(night_dir)
    model = truth.chip_model(CHIP)
    biases = raw_images(truth, "RawBiasFrame")
    stack = np.array([correct(raw, regions(truth), 0) for _e, raw in biases])
    master = clipped_mean(stack, 3.0).image
    expected = np.mean(
        [
            model.bias(
                truth.exposure(e["file"])["chips"][CHIP]["bias_level"],
                truth.exposure(e["file"])["row_wave_phase"],
            )[truth.instrument.detector.data_section.slices]
            for e, _raw in biases
        ],
        axis=0,
    )
    good = np.ones(master.shape, bool)
    good[model.hot] = False
    difference = (master - expected)[good]
    assert abs(difference.mean()) < 0.1
    read_noise = model.amplifiers[0].read_noise_adu
    limit = np.sqrt(read_noise**2 + QUANTISATION) / np.sqrt(len(biases))
    assert difference.std() <= 1.05 * limit, (difference.std(), limit)


def test_a_night_is_calibrated_accurately(night_dir: Path, tmp_path: Path) -> None:
    from awe.db.frames import BiasFrame

    truth = NightTruth(night_dir)
    model = truth.chip_model(CHIP)
    dpu = ingested(night_dir, f"sqlite:///{tmp_path / 'jobs.db'}")

    bias_job, (bias,) = run(dpu, "Bias", c=CHIP)
    text = logs(dpu, bias_job)
    assert "Overscan correction method 6" in text
    assert "Quality check MAXIMUM_STDEV: " in text and "(limit 10) ok" in text
    assert bias.quality_flags == 0 and bias.is_valid
    midnight = truth.instrument.site.midnight(date.fromisoformat(NIGHT))
    assert bias.valid_from <= midnight < bias.valid_to
    assert (
        BiasFrame.newest_valid(
            instrument="WFI", chip=CHIP, night="2000-04-29", database=dpu.database
        )
        is None
    )
    assert len(bias.inputs) == 10
    raws = [correct(raw, regions(truth), 6) for _e, raw in raw_images(truth, "RawBiasFrame")]
    np.testing.assert_allclose(image(bias), clipped_mean(np.array(raws)).image, atol=1e-5)
    assert abs(bias.results["mean"]) < 0.2

    _job, (hot,) = run(dpu, "HotPixels", c=CHIP)
    found = image(hot) == 0
    true_hot = np.zeros(found.shape, bool)
    true_hot[model.hot] = True
    assert found[true_hot].mean() >= 0.99
    assert found[~true_hot].mean() <= 1e-4

    dome_job, domes = run(dpu, "DomeFlat", c=CHIP)  # both filters, never mixed
    assert sorted(f.filter for f in domes) == ["#842", "#879"]
    for dome in domes:
        raw_inputs = [f for f in dome.inputs if f.frame_type == "RawDomeFlatFrame"]
        assert len(raw_inputs) == 10 and {f.filter for f in raw_inputs} == {dome.filter}
    assert f"Using BiasFrame {bias.filename}" in logs(dpu, dome_job)
    dome = next(f for f in domes if f.filter == "#842")
    # the same stack through ccdproc's combine (median scaling, same clipping)
    store_paths = sorted(
        (f.mjd, f.filename) for f in dome.inputs if f.frame_type == "RawDomeFlatFrame"
    )
    flats = [
        correct(fits.getdata(night_dir / _raw_file(name)), regions(truth), 6) - image(bias)
        for _mjd, name in store_paths
    ]
    # ccdproc clips before it scales, so it gets the flats already divided by their medians
    flats = np.array([f / np.median(f) for f in flats], dtype=np.float32)
    expected = ccdproc_combine(flats)
    expected /= np.median(expected)
    np.testing.assert_allclose(image(dome), expected, rtol=1e-5)

    run(dpu, "TwilightFlat", c=CHIP, f="#842")
    _job, (cold,) = run(dpu, "ColdPixels", c=CHIP, f="#842")
    found = image(cold) == 0
    true_cold = np.zeros(found.shape, bool)
    true_cold[model.cold] = True
    assert found[true_cold].mean() >= 0.99
    assert found[~true_cold].mean() <= 1e-4

    _job, (master,) = run(dpu, "MasterFlat", c=CHIP, f="#842")
    from awe.science.flat import shape_rms

    assert shape_rms(image(master), truth.flat(CHIP), ~true_cold) < 0.005

    _job, (night_sky,) = run(dpu, "NightSkyFlat", c=CHIP, f="#842")
    from awe.science.flat import large_scale

    shape = large_scale(image(night_sky)) / large_scale(truth.flat(CHIP))
    assert np.std(shape / np.median(shape)) < 0.01

    # fringes in the red filter, from the science frames reduced with its master flat
    run(dpu, "TwilightFlat", c=CHIP, f="#879")
    run(dpu, "MasterFlat", c=CHIP, f="#879")
    fringe_job, (fringe,) = run(dpu, "FringeFlat", c=CHIP, f="#879")
    from awe.data.sim_chip import fringe_pattern

    filters = [f.name for f in truth.instrument.filters]
    true_fringes = truth.night["filters"]["#879"]["fringe_amplitude"] * fringe_pattern(
        truth.instrument, truth.instrument.chip(CHIP), truth.night["seed"], filters.index("#879")
    )
    true_amplitude = np.sqrt(2) * np.std(true_fringes)
    assert fringe.results["amplitude"] == pytest.approx(true_amplitude, rel=0.05)
    # the frame is the true pattern plus noise (4 frames of sky noise ~2x the fringes): it
    # correlates with the truth about as well as that noise allows (~0.45), by chance ~0
    assert np.corrcoef(image(fringe).ravel(), true_fringes.ravel())[0, 1] > 0.35
    assert "The fringe amplitude for ccd ccd50 filter #879 is : " in logs(dpu, fringe_job)

    gain_job, (gain,) = run(dpu, "Gain", c=CHIP, f="#842")
    amplifier = truth.night["chips"][CHIP]["amplifiers"][0]
    measured = gain.results["per_amplifier"]["A"]
    assert measured["gain"] == pytest.approx(amplifier["gain"], rel=0.03)
    linearity = -amplifier["nonlinearity"] / (amplifier["full_well_e"] / amplifier["gain"])
    assert measured["linearity"] == pytest.approx(linearity, rel=0.1)
    assert "The gain (e-/ADU) for ccd ccd50 is : " in logs(dpu, gain_job)

    check_job = dpu.run("QuickCheck", i="WFI", d=NIGHT, c=CHIP)
    dpu.wait(check_job, timeout=600)
    lines = [line for line in dpu.get_logs(check_job)[check_job] if "PASS" in line]
    assert len(lines) == len(truth.exposures)

    rows = {(r.type, r.filter): r for r in dpu.show_calibration(i="WFI", d=NIGHT, c=CHIP)}
    for made in (bias, hot, dome, cold, master, gain, night_sky, fringe):
        row = rows[(made.frame_type, made.filter)]
        assert (row.frame_id, row.job_id, row.quality_flags) == (made.id, made.job_id, 0)
    assert rows[("ReadNoise", None)].missing


def _raw_file(stored_name: str) -> str:
    """The simulated file a stored chip came from ('WFI.<date>_1.fits' -> 'WFI.<date>.fits')."""
    stem, _chip = stored_name[: -len(".fits")].rsplit("_", 1)
    return f"{stem}.fits"


def test_missing_inputs_are_named(night_dir: Path, tmp_path: Path) -> None:
    from awe.db.frames import RawDomeFlatFrame

    dpu = ingested(night_dir, f"sqlite:///{tmp_path / 'jobs.db'}")
    with pytest.raises(Exception, match="searched RawBiasFrame for WFI on night 1999-01-01"):
        dpu.run("Bias", i="WFI", d="1999-01-01")
    with pytest.raises(
        Exception, match=f"no valid, unflagged BiasFrame for WFI chip {CHIP} covering night {NIGHT}"
    ):
        dpu.run("DomeFlat", i="WFI", d=NIGHT, c=CHIP, f="#842")
    with pytest.raises(Exception, match="searched RawDomeFlatFrame for WFI on night 1999-01-01"):
        dpu.run("Gain", i="WFI", d="1999-01-01")
    # every dome flat of the chip but one flagged bad: one is not enough, and the
    # message names the frames left out
    flats = RawDomeFlatFrame.select(
        database=dpu.database, instrument="WFI", date=NIGHT, chip=CHIP, filter="#842"
    )
    with dpu.database.session() as session:
        for frame in flats[1:]:
            session.get(RawDomeFlatFrame, frame.id).quality_flags = 16
        session.commit()
    with pytest.raises(Exception) as raised:
        dpu.run("DomeFlat", i="WFI", d=NIGHT, c=CHIP, f="#842")
    message = str(raised.value)
    assert f"RawDomeFlatFrame for WFI chip {CHIP} filter #842 on night {NIGHT}" in message
    assert "found 1 usable and 9 flagged or invalid" in message
    assert flats[1].filename in message and "needs 2" in message
    assert dpu.get_jobids() == []


def test_flagged_calibration_is_not_used_unless_asked(night_dir: Path, tmp_path: Path) -> None:
    from awe.db.frames import DomeFlatFrame

    dpu = ingested(night_dir, f"sqlite:///{tmp_path / 'jobs.db'}")
    job_id, (bias,) = run(dpu, "Bias", c=CHIP, p={"BiasFrame.process_params.MAXIMUM_STDEV": 0.01})
    assert bias.quality_flags == 4 and not bias.is_valid
    assert "(limit 0.01) FAILED" in logs(dpu, job_id)
    with pytest.raises(Exception, match="no valid, unflagged BiasFrame.*F=1"):
        dpu.run("DomeFlat", i="WFI", d=NIGHT, c=CHIP, f="#842")
    rows = dpu.show_calibration(i="WFI", d=NIGHT, c=CHIP)
    assert next(r for r in rows if r.type == "BiasFrame").note.startswith("FLAGGED ")
    # a task that fails leaves no product behind
    job_id = dpu.run(
        "DomeFlat",
        i="WFI",
        d=NIGHT,
        c=CHIP,
        f="#842",
        F=1,
        C=1,
        p={"DomeFlatFrame.process_params.MINIMUM_LEVEL": 1e6},
    )
    (status,) = dpu.wait(job_id, timeout=600)
    assert status.counts["E"] == 1
    text = logs(dpu, job_id)
    assert f"Using BiasFrame {bias.filename}" in text
    assert "has a level inside [1e+06, 50000] ADU; a flat needs 2" in text
    assert DomeFlatFrame.select(database=dpu.database, instrument="WFI") == []
    # asked for (F=1), the flagged bias is used
    _job, (dome,) = run(dpu, "DomeFlat", c=CHIP, f="#842", F=1)
    assert bias.id in {f.id for f in dome.inputs}
    # a flat corrected with another overscan method than its bias is refused
    job_id = dpu.run("DomeFlat", i="WFI", d=NIGHT, c=CHIP, f="#842", F=1, oc=0)
    (status,) = dpu.wait(job_id, timeout=600)
    assert status.counts["E"] == 1
    assert "oc=0 but the BiasFrame" in logs(dpu, job_id)


def test_calibration_steps_chain_in_one_job(night_dir: Path, tmp_path: Path) -> None:
    """'Bias>HotPixels' with no bias stored: the map is made from the bias the job makes
    (provenance and log say so); per-filter steps after per-chip ones need one filter; a
    bias the chain made that fails its checks is not used unless F=1."""
    dpu = ingested(night_dir, f"sqlite:///{tmp_path / 'jobs.db'}")
    job_id, (hot,) = run(dpu, "Bias>HotPixels", c=CHIP)  # the last step's products
    (bias,) = hot.inputs
    assert type(bias).__name__ == "BiasFrame" and bias.job_id == hot.job_id == job_id
    assert f"Using BiasFrame {bias.filename} (made by Bias in this chain by job" in logs(
        dpu, job_id
    )
    with pytest.raises(Exception, match=r"after Bias in a chain.*give one filter.*#842, #879"):
        dpu.run("Bias>DomeFlat", i="WFI", d=NIGHT, c=CHIP)
    job_id, (cold,) = run(dpu, "Bias>DomeFlat>ColdPixels", c=CHIP, f="#842")
    (dome,) = with_inputs(dpu, cold.inputs)
    assert type(dome).__name__ == "DomeFlatFrame" and dome.job_id == job_id
    assert [f.sha256 for f in dome.inputs if type(f).__name__ == "BiasFrame"] == [bias.sha256]
    # the chain's own bias fails a check: the flat is refused, with what to do
    strict = {"BiasFrame.process_params.MAXIMUM_STDEV": 0.01}
    job_id = dpu.run("Bias>DomeFlat", i="WFI", d=NIGHT, c=CHIP, f="#842", C=1, p=strict)
    (status,) = dpu.wait(job_id, timeout=600)
    assert (status.counts["N"], status.counts["E"]) == (1, 1)
    assert "that Bias made in this job failed a quality check" in logs(dpu, job_id)
    job_id, _frames = run(dpu, "Bias>DomeFlat", c=CHIP, f="#842", F=1, p=strict)
    assert "flagged (quality flags 4)" in logs(dpu, job_id)
    assert (
        "Using BiasFrame BiasFrame_WFI_2000-04-28_ccd50.fits (made by Bias in this chain"
        in logs(dpu, job_id)
    )


def test_calibration_end_to_end_on_mariadb(night_dir: Path, mysql_database_url: str) -> None:
    dpu = ingested(night_dir, mysql_database_url)
    _job, (bias,) = run(dpu, "Bias", c="ccd51")
    _job, (hot,) = run(dpu, "HotPixels", c="ccd51")
    assert hot.inputs[0].id == bias.id
    rows = {r.type: r for r in dpu.show_calibration(i="WFI", d=NIGHT, c="ccd51")}
    assert rows["BiasFrame"].frame_id == bias.id and rows["HotPixelMap"].frame_id == hot.id
    assert rows["MasterFlatFrame"].missing


def test_process_parameters_have_astro_wise_defaults(tmp_path: Path, capsys) -> None:
    from awe.dpu import Pars
    from awe.errors import AweError

    dpu = Processor(database_url=f"sqlite:///{tmp_path / 'jobs.db'}", username="alice")
    identifiers = dpu.get_sequence_identifiers()
    for name in (
        "NightSkyFlat",
        "FringeFlat",
        "Bias",
        "HotPixels",
        "DomeFlat",
        "TwilightFlat",
        "ColdPixels",
        "MasterFlat",
        "Gain",
        "QuickCheck",
    ):
        assert name in identifiers
    assert dpu.get_sequence_options("DomeFlat")[:6] == ["i", "d", "c", "f", "oc", "F"]
    pars = Pars("Bias", dpu=dpu)
    shown = "\n".join(pars.show())
    for line in (
        "SIGMA_CLIP : 3.0 (default)",
        "OVERSCAN_CORRECTION : 6 (default)",
        "MAXIMUM_ABS_MEAN : 10.0 (default)",
        "MAXIMUM_STDEV_DIFFERENCE : 10.0 (default)",
        "MAXIMUM_SUBWIN_FLATNESS : 100000.0 (default)",
    ):
        assert line in shown
    pars.BiasFrame.process_params.SIGMA_CLIP = 5.0
    assert pars.get() == {"BiasFrame.process_params.SIGMA_CLIP": 5.0}
    with pytest.raises(AweError):
        pars.BiasFrame.process_params.SIGMA_CLIPPING = 5.0
    with pytest.raises(ValueError, match="overscan method 11 unknown; choose one of 0"):
        dpu.run("Bias", i="WFI", d=NIGHT, oc=11)
    assert dpu.get_jobids() == []


def test_awe_calibration_command_marks_what_is_missing(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "AWE_DATABASE_URL": f"sqlite:///{tmp_path / 'jobs.db'}"}
    command = [sys.executable, "-m", "awe.cli", "calibration", "-i", "WFI", "-d", NIGHT]
    result = subprocess.run(
        [*command, "-c", CHIP, "-f", "#842"], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 1, result.stderr
    assert f"Calibration of WFI for night {NIGHT}: 0 valid, 8 missing" in result.stdout
    assert f"  {CHIP}    BiasFrame          -            MISSING" in result.stdout
    wrong = subprocess.run(
        [*command, "-c", "ccd99"], capture_output=True, text=True, env=env, timeout=120
    )
    assert wrong.returncode == 2 and "WFI has no working chip 'ccd99'" in wrong.stderr
