"""The ReadNoise sequence on a simulated WFI night, run for real on the local DPU, checked
against the simulator's truth and against an independent robust estimate."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from awe.dpu import Processor
from tests.simulated_nights import simulated_night

QUANTISATION = 1 / 12  # ADU^2: the variance integer read-out adds


@pytest.fixture
def night(tmp_path_factory: pytest.TempPathFactory, database):
    from awe.data.ingestion import ingest
    from awe.data.store import DataStore
    from awe.env import load_env

    truth = simulated_night(tmp_path_factory.getbasetemp(), "WFI")
    report = ingest(
        [truth.out], database=database, store=DataStore(load_env().data_root), progress=False
    )
    assert report.ok
    return truth


def biweight_read_noise(first: np.ndarray, second: np.ndarray) -> float:
    """An independent estimate: the biweight scale (not sigma clipping; robust and, unlike
    the median absolute deviation, not fooled by integer-valued pixels) of the row-levelled
    difference, over sqrt(2)."""
    from astropy.stats import biweight_scale

    difference = first - second
    difference -= np.median(difference, axis=1, keepdims=True)
    return float(biweight_scale(difference.ravel()) / np.sqrt(2))


def test_read_noise_matches_truth_and_an_independent_estimate(night, database_url) -> None:
    dpu = Processor(database_url=database_url, username="alice")
    job_id = dpu.run("ReadNoise", i="WFI", d="2000-04-28", C=1)
    (status,) = dpu.wait(job_id, timeout=300)
    assert status.counts["N"] == 8
    frames = {frame.chip: frame for frame in dpu.get_job_result(job_id)}
    assert sorted(frames) == [f"ccd5{i}" for i in range(8)]
    biases = [e for e in night.exposures if e["frame_type"] == "RawBiasFrame"][:2]
    section = night.instrument.detector.data_section.slices
    for chip, frame in frames.items():
        truth = night.night["chips"][chip]["amplifiers"][0]["read_noise_adu"]
        expected = np.sqrt(truth**2 + QUANTISATION)
        measured = frame.results["read_noise"]
        assert measured == pytest.approx(expected, rel=0.02), chip
        first, second = (
            fits.getdata(night.out / e["file"], extname=chip).astype(float)[section] for e in biases
        )
        assert measured == pytest.approx(biweight_read_noise(first, second), rel=0.03), chip
        assert frame.instrument == "WFI" and str(frame.night) == "2000-04-28"
    logs = "\n".join(dpu.get_logs(job_id)[job_id])
    assert "The read noise (ADU) for ccd ccd50 is : " in logs
    assert "Maximum number of iterations : 5" in logs


def test_read_noise_of_a_night_without_biases_says_what_it_searched(database_url) -> None:
    dpu = Processor(database_url=database_url, username="alice")
    with pytest.raises(Exception, match="searched RawBiasFrame for WFI on night 1999-01-01"):
        dpu.run("ReadNoise", i="WFI", d="1999-01-01")
    assert dpu.get_jobids() == []
