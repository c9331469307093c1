"""Regrid and Coadd: flux conservation against the input frames, the coadd against
reproject's own reproject_and_coadd, and 'Reduce>Regrid>Coadd' through the local DPU."""

from __future__ import annotations

import numpy as np
import pytest

from awe.data.sim_sky import wcs_from_cards
from awe.science.coadd import coadd
from awe.science.regrid import grid_wcs, regrid
from tests.pipeline_night import NIGHT, pipeline_night, reduce_with_truth

CHIP = "ccd51"


def _true_trimmed_wcs(night, entry, model):
    wcs = wcs_from_cards(night.exposure(entry["file"])["chips"][CHIP]["wcs"])
    wcs.wcs.crpix = wcs.wcs.crpix - [model.x0, model.y0]
    if wcs.sip is not None:
        from astropy.wcs import Sip

        wcs.sip = Sip(wcs.sip.a, wcs.sip.b, None, None, wcs.wcs.crpix)
    wcs.wcs.set()
    return wcs


@pytest.fixture(scope="module")
def dithers(tmp_path_factory):
    """The three dithered #842 exposures of one chip, reduced, sky subtracted, with their
    true WCS."""
    night = pipeline_night(tmp_path_factory.getbasetemp())
    model = night.chip_model(CHIP)
    frames = []
    for entry in night.exposures:
        if entry["frame_type"] == "RawScienceFrame" and entry["filter"] == "#842":
            reduced = reduce_with_truth(night, entry["file"], CHIP)
            sky = night.exposure(entry["file"])["sky_adu"]
            image = np.where(reduced.weight > 0, reduced.image - sky, 0).astype(np.float32)
            frames.append((image, reduced.weight, _true_trimmed_wcs(night, entry, model)))
    assert len(frames) == 3
    return frames


def test_regrid_conserves_flux_onto_a_rotated_finer_grid(dithers) -> None:
    from astropy.wcs import WCS

    image, weight, wcs = dithers[0]
    ny, nx = image.shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    # smooth sources away from the edges: exact totals are known
    synthetic = np.zeros_like(image)
    for x0, y0 in ((60, 100), (180, 250), (120, 400)):
        synthetic += 1000.0 * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * 3.0**2))
    centre = wcs.all_pix2world([[nx / 2, ny / 2]], 0)[0]
    grid: WCS = grid_wcs(centre[0], centre[1], 0.17)
    grid.wcs.pc = [[np.cos(0.3), -np.sin(0.3)], [np.sin(0.3), np.cos(0.3)]]
    grid.wcs.set()
    result = regrid(synthetic, None, wcs, grid, scale=2.0)
    assert result.image.sum() == pytest.approx(2.0 * synthetic.sum(), rel=0.005)


def test_coadd_conserves_flux_and_equals_reproject_and_coadd(dithers) -> None:
    from reproject import reproject_interp
    from reproject.mosaicking import reproject_and_coadd

    images, weights, wcses = zip(*dithers, strict=True)
    centre = wcses[0].all_pix2world([[128, 256]], 0)[0]
    grid = grid_wcs(round(centre[0], 4), round(centre[1], 4), 0.238)
    regridded = [regrid(i, w, c, grid) for i, w, c in dithers]
    result = coadd(
        [r.image for r in regridded], [r.weight for r in regridded], [r.offset for r in regridded]
    )
    # flux: the coadd's total over pixels every frame covers equals each frame's total there
    full = (result.weight > 0) & np.all(
        [_placed(r.weight, r.offset, result) > 0 for r in regridded], axis=0
    )
    totals = [(_placed(r.image, r.offset, result))[full].sum() for r in regridded]
    assert result.image[full].sum() == pytest.approx(np.mean(totals), rel=0.005)
    # reproject's own coadd of the same frames and weights, on the same canvas
    from awe.science.regrid import cutout_wcs

    canvas = cutout_wcs(grid, result.offset)
    theirs, footprint = reproject_and_coadd(
        list(zip(images, wcses, strict=True)),
        canvas,
        shape_out=result.image.shape,
        input_weights=list(weights),
        reproject_function=reproject_interp,
        combine_function="mean",
    )
    bright = full & (result.image > 50 * np.std(result.image[full]) ** 0.5) & (footprint > 0)
    assert bright.sum() > 100
    # within 0.2%: reproject_interp does not correct for the pixel area the distortion
    # changes (ours does, which is what keeps flux), and resamples weights bilinearly
    assert np.median(np.abs(result.image[bright] / theirs[bright] - 1)) < 2e-3


def _placed(array, offset, result):
    out = np.zeros(result.image.shape, np.float32)
    y, x = offset[1] - result.offset[1], offset[0] - result.offset[0]
    out[y : y + array.shape[0], x : x + array.shape[1]] = array
    return out


def test_reduce_regrid_coadd_through_the_dpu(tmp_path_factory, database_url) -> None:
    from astropy.io import fits

    from awe.data.store import DataStore
    from awe.db.engine import open_database
    from awe.db.frames import CoaddedRegriddedFrame, RegriddedFrame, SourceList
    from awe.dpu import Processor
    from tests.pipeline_night import ingested_night

    database = open_database(database_url)
    ingested_night(tmp_path_factory.getbasetemp(), database, chips=(CHIP,))
    dpu = Processor(database_url=database_url, username="alice")
    job_id = dpu.run("Reduce>Regrid>Coadd", i="WFI", d=NIGHT, c=CHIP, f="#842", o="AWE_DEEP*", C=1)
    (status,) = dpu.wait(job_id, timeout=300)
    logs = "\n".join(dpu.get_logs(job_id)[job_id])
    assert status.counts["N"] == 7, logs  # 3 Reduce, 3 Regrid, 1 Coadd
    assert len(RegriddedFrame.select(database=dpu.database, instrument="WFI")) == 3
    (coadded,) = CoaddedRegriddedFrame.select(database=dpu.database, instrument="WFI")
    assert coadded.filter == "#842" and coadded.chip is None and coadded.results["frames"] == 3
    with fits.open(DataStore(dpu.env.data_root).path(coadded.sha256)) as hdul:
        image, weight = hdul[0].data, hdul["WEIGHT"].data
        assert hdul[0].header["NCOMBINE"] == 3 and hdul[0].header["MAGZP"] == 30.0
    assert image.shape == tuple(coadded.results["shape"]) and (weight > 0).mean() > 0.5
    assert "No AstrometricParameters for chip ccd51" in logs  # no Astrometry in this chain
    assert "Coadded 3 frames into" in logs and "Preview written to" in logs

    # the stored regridded frames again, then a catalogue of the coadd
    job_id = dpu.run("Regrid>Coadd>SourceList", i="WFI", d=NIGHT, f="#842", C=1)
    (status,) = dpu.wait(job_id, timeout=300)
    logs = "\n".join(dpu.get_logs(job_id)[job_id])
    assert status.counts["N"] == 5, logs  # 3 Regrid, 1 Coadd, 1 SourceList
    (catalogue,) = [
        s for s in SourceList.select(database=dpu.database, instrument="WFI") if s.chip is None
    ]
    assert catalogue.results["sources"] > 20 and catalogue.filter == "#842"
    sources = catalogue.get_sources(database=dpu.database, max_flags=3)
    assert all(s.ra is not None for s in sources)
    database.dispose()
