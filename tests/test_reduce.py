"""Reduce on a simulated WFI night: through the local DPU against the simulator's truth,
and as a science function against ccdproc's ccd_process on the same frames."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from awe.dpu import Processor
from awe.science.overscan import Region
from awe.science.reduce import reduce_ccd
from tests.pipeline_night import (
    NIGHT,
    add_true_calibration,
    ingested_night,
    pipeline_night,
    true_calibration,
)

CHIP = "ccd51"


@pytest.fixture
def night(tmp_path_factory: pytest.TempPathFactory):
    return pipeline_night(tmp_path_factory.getbasetemp())


@pytest.fixture
def ingested(tmp_path_factory: pytest.TempPathFactory, database):
    return ingested_night(tmp_path_factory.getbasetemp(), database, chips=())


def _raw(night, entry):
    path = night.out / entry["file"]
    with fits.open(path) as hdul:
        return hdul[CHIP].data, hdul[CHIP].header


def _layout(night, header):
    detector = night.instrument.detector.from_header(header)
    return [Region(a.data.slices, a.overscan.slices) for a in detector.amplifiers]


def near_stars(exposure, model, shape) -> np.ndarray:
    """Pixels within the light of a true star (radius growing with its flux)."""
    stars = exposure["chips"][CHIP]["stars"]
    fwhm = exposure["fwhm_pixels"]
    yy, xx = np.indices(shape)
    near = np.zeros(shape, bool)
    for x, y, flux in zip(stars["x"], stars["y"], stars["flux_adu"], strict=True):
        radius = fwhm * (3 if flux < 2e4 else 6 if flux < 2e6 else 20)
        x0, y0 = x - model.x0, y - model.y0
        box = (
            slice(max(0, int(y0 - radius)), int(y0 + radius) + 1),
            slice(max(0, int(x0 - radius)), int(x0 + radius) + 1),
        )
        near[box] |= (xx[box] - x0) ** 2 + (yy[box] - y0) ** 2 <= radius**2
    return near


def test_reduce_equals_ccdproc_with_the_same_calibration(night) -> None:
    import ccdproc
    from astropy.nddata import CCDData

    entry = next(e for e in night.exposures if e["frame_type"] == "RawScienceFrame")
    raw, header = _raw(night, entry)
    calibration = true_calibration(night, CHIP, entry["filter"])
    flat = calibration["MasterFlatFrame"] / np.float32(calibration["MasterFlatFrame"].mean())
    bias = calibration["BiasFrame"]
    ours = reduce_ccd(raw, _layout(night, header), bias=bias, flat=flat, overscan=5, cosmics=False)
    rows = night.instrument.detector.amplifiers[0].overscan.slices[0]  # ccdproc wants equal rows
    theirs = ccdproc.ccd_process(
        CCDData(raw[rows].astype(np.float32), unit="adu"),
        oscan=header["BIASSEC"],
        trim=header["DATASEC"],
        master_bias=CCDData(bias, unit="adu"),
        master_flat=CCDData(flat, unit="adu"),
        oscan_median=True,
    )
    assert ours.image.shape == theirs.data.shape
    scale = np.abs(theirs.data).max()
    assert np.max(np.abs(ours.image - theirs.data)) / scale < 1e-5


def test_reduce_recovers_the_true_sky_and_flags_defects(night) -> None:
    entry = next(
        e for e in night.exposures if e["frame_type"] == "RawScienceFrame" and e["filter"] == "#879"
    )
    raw, header = _raw(night, entry)
    exposure = night.exposure(entry["file"])
    calibration = true_calibration(night, CHIP, entry["filter"])
    reduced = reduce_ccd(
        raw,
        _layout(night, header),
        bias=calibration["BiasFrame"],
        flat=calibration["MasterFlatFrame"],
        fringe=calibration["FringeFrame"],
        hot=calibration["HotPixelMap"],
        cold=calibration["ColdPixelMap"],
        gain=2.0,
        read_noise=4.5,
    )
    sky = exposure["sky_adu"]
    model = night.chip_model(CHIP)
    good = (reduced.weight > 0) & ~near_stars(exposure, model, reduced.image.shape)
    assert np.median(reduced.image[good]) == pytest.approx(sky, rel=0.01)
    # fringes scaled right: the true amplitude is fringe_amplitude * sky per unit pattern
    amplitude = night.night["filters"]["#879"]["fringe_amplitude"] * sky
    assert reduced.stats["fringe_scale"] == pytest.approx(amplitude, rel=0.1)
    assert (reduced.weight[model.hot] == 0).all() and (reduced.weight[model.cold] == 0).all()
    rays = np.array(exposure["chips"][CHIP]["cosmic_rays"]) - [model.x0, model.y0]
    x, y = np.floor(rays[:, 0]).astype(int), np.floor(rays[:, 1]).astype(int)
    # the first pixel of each track holds 600-6000 e-: L.A.Cosmic finds nearly all of them
    assert np.mean(reduced.weight[y, x] == 0) >= 0.9
    assert reduced.stats["bad_fraction"] < 0.01


def test_reduce_through_the_dpu_commits_reduced_frames_and_weights(ingested, database_url):
    from awe.db.frames import ReducedScienceFrame, WeightFrame
    from awe.env import load_env

    dpu = Processor(database_url=database_url, username="alice")
    add_true_calibration(ingested, dpu.database, load_env().data_root, [CHIP])
    job_id = dpu.run("Reduce", i="WFI", d=NIGHT, c=CHIP, f="#879", C=1)
    (status,) = dpu.wait(job_id, timeout=300)
    logs = "\n".join(dpu.get_logs(job_id)[job_id])
    assert status.counts["N"] == 4, logs  # 3 science + 1 standard exposure
    frames = dpu.get_job_result(job_id)
    reduced = [f for f in frames if isinstance(f, ReducedScienceFrame)]
    weights = [f for f in frames if isinstance(f, WeightFrame)]
    assert len(reduced) == 4 and len(weights) == 4
    assert {f.chip for f in reduced} == {CHIP} and {f.filter for f in reduced} == {"#879"}
    assert all(str(f.night) == NIGHT and f.exposure_number for f in reduced)
    assert "Using BiasFrame BiasFrame_ccd51_all.fits" in logs
    assert "Using MasterFlatFrame MasterFlatFrame_ccd51_879.fits" in logs
    assert "Using FringeFrame FringeFrame_ccd51_879.fits" in logs


def test_reduce_without_calibration_says_what_it_looked_for(ingested, database_url):
    dpu = Processor(database_url=database_url, username="alice")
    with pytest.raises(Exception, match="BiasFrame for WFI chip ccd52 night 2000-04-28"):
        dpu.run("Reduce", i="WFI", d=NIGHT, c="ccd52", f="#842")
    assert dpu.get_jobids() == []
