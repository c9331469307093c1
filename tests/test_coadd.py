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


def _exact_mapping(wcs_out, wcs_in, shape):
    """Every output pixel's input position, one full WCS transform per pixel, and the
    pixel-area ratio from central differences of that exact mapping."""
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx].astype(float)

    def to_input(x, y):
        return wcs_in.all_world2pix(*wcs_out.all_pix2world(x, y, 0), 0)

    x, y = to_input(xx, yy)
    xa, ya = to_input(xx + 0.5, yy)
    xb, yb = to_input(xx - 0.5, yy)
    xc, yc = to_input(xx, yy + 0.5)
    xd, yd = to_input(xx, yy - 0.5)
    return x, y, np.abs((xa - xb) * (yc - yd) - (xc - xd) * (ya - yb))


def test_regrid_mapping_and_area_match_the_wcs_at_every_pixel(dithers) -> None:
    """The mapping is computed on coarse nodes: bilinear interpolation of a linear ramp is
    exact, so regridding the ramps x and y and a constant gives back, at every output
    pixel, where it falls on the input and the area ratio, to compare with the true TAN-SIP
    WCS transformed pixel by pixel."""
    image, _weight, wcs = dithers[0]
    ny, nx = image.shape
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float32)
    centre = wcs.all_pix2world([[nx / 2, ny / 2]], 0)[0]
    grid = grid_wcs(centre[0], centre[1], 0.2)
    ones = regrid(np.ones_like(image), None, wcs, grid)
    ramp_x = regrid(xx, None, wcs, grid)
    ramp_y = regrid(yy, None, wcs, grid)
    x, y, area = _exact_mapping(ones.wcs, wcs, ones.image.shape)
    # (within the outer half of a border pixel the border value is taken, as reproject does)
    inside = (ones.weight > 0) & (x >= 0) & (x <= nx - 1) & (y >= 0) & (y <= ny - 1)
    assert inside.sum() > 0.5 * inside.size
    assert np.abs(ramp_x.image[inside] / ones.image[inside] - x[inside]).max() < 1e-3
    assert np.abs(ramp_y.image[inside] / ones.image[inside] - y[inside]).max() < 1e-3
    assert np.abs(ones.image[inside] / area[inside] - 1).max() < 1e-5
    assert area.max() - area.min() > 1e-3  # the distortion is there to be corrected


def test_regrid_equals_reproject_interp_times_the_area(dithers) -> None:
    """Image and weight against reproject_interp (bilinear) of each on the same cutout,
    the image times the exact pixel-area ratio: the same interpolation."""
    from reproject import reproject_interp

    image, weight, wcs = dithers[1]
    centre = wcs.all_pix2world([[128, 256]], 0)[0]
    grid = grid_wcs(round(centre[0], 4), round(centre[1], 4), 0.238)
    mine = regrid(image, weight, wcs, grid)
    shape = mine.image.shape
    theirs, _ = reproject_interp((image, wcs), mine.wcs, shape_out=shape, order="bilinear")
    their_weight, _ = reproject_interp((weight, wcs), mine.wcs, shape_out=shape, order="bilinear")
    area = _exact_mapping(mine.wcs, wcs, shape)[2]
    ok = mine.weight > 0
    assert ok.sum() > 0.8 * np.isfinite(theirs).sum()
    assert np.abs(mine.weight[ok] / their_weight[ok] - 1).max() < 1e-4
    bright = ok & (theirs > 50 * np.std(theirs[ok]) ** 0.5)
    assert bright.sum() > 100
    difference = np.abs(mine.image[bright] / (theirs[bright] * area[bright]) - 1)
    # 3e-5 and 7e-5 here: the nodes every 16 pixels under the distortion of a chip scaled
    # down 8 times (64 times the curvature per pixel of a full-size one); 0.1 % is the target
    assert np.median(difference) < 1e-4 and np.percentile(difference, 99) < 2e-4


def test_a_bad_pixel_stays_bad() -> None:
    """A hot pixel of weight 0 does not leak into its neighbours: every output pixel whose
    interpolation touches it has weight 0, the others keep theirs."""
    image = np.zeros((200, 100), np.float32)
    weight = np.ones_like(image)
    image[120, 40], weight[120, 40] = 1e6, 0.0
    wcs = grid_wcs(150.0, -29.0, 0.238)
    wcs.wcs.crpix = [50, 100]
    wcs.wcs.set()
    grid = grid_wcs(150.0002, -29.0001, 0.238)
    result = regrid(image, weight, wcs, grid)
    assert np.abs(result.image).max() < 1e-3
    zero = np.argwhere(result.weight[5:-5, 5:-5] == 0)
    assert 1 <= len(zero) <= 4
    x, y = grid.all_world2pix(*wcs.all_pix2world([[40, 120]], 0).T, 0)
    assert np.abs(zero[:, ::-1] + 5 + result.offset - [x[0], y[0]]).max() < 1.0


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
