"""Astrometry per chip against the simulated night's reference catalogue: the fitted WCS
against the simulator's true TAN-SIP WCS, and the rms of the fit."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from awe.data import refcat
from awe.data.sim_sky import wcs_from_cards
from awe.science.astrometry import angular_distance_arcsec, solve
from awe.science.sources import extract
from tests.pipeline_night import pipeline_night, reduce_with_truth

CHIPS = ("ccd50", "ccd55")


def trimmed_guess(header, x0: int, y0: int) -> WCS:
    """The raw header's WCS (commanded pointing, no distortion) for the trimmed image."""
    wcs = WCS(header)
    wcs.wcs.crpix = wcs.wcs.crpix - [x0, y0]
    return wcs


@pytest.mark.parametrize("chip", CHIPS)
def test_astrometry_matches_the_true_wcs(tmp_path_factory, chip) -> None:
    night = pipeline_night(tmp_path_factory.getbasetemp())
    entries = [e for e in night.exposures if e["frame_type"] == "RawScienceFrame"][:3]
    for entry in entries:
        exposure = night.exposure(entry["file"])
        model = night.chip_model(chip)
        reduced = reduce_with_truth(night, entry["file"], chip)
        found = extract(reduced.image, reduced.weight, threshold=5.0, aperture_radius=6.0)
        s, s_shape = found.sources, reduced.image.shape
        usable = (s["flags"] <= 3) & (s["flux_aper"] > 10 * s["fluxerr_aper"])
        header = fits.getheader(night.out / entry["file"], extname=chip)
        guess = trimmed_guess(header, model.x0, model.y0)
        centre = guess.all_pix2world([[model.nx / 2, model.ny / 2]], 0)[0]
        stars = refcat.read_cone(night.out / "refcat", centre[0], centre[1], 0.2)
        solution = solve(
            s["x"][usable], s["y"][usable], stars["ra"], stars["dec"], guess, shape=s_shape
        )
        assert solution.rms_arcsec < 0.1 and solution.n_stars >= 10
        truth = wcs_from_cards(exposure["chips"][chip]["wcs"])
        yy, xx = np.mgrid[0 : model.ny : 32, 0 : model.nx : 32]
        true_ra, true_dec = truth.all_pix2world(xx.ravel() + model.x0, yy.ravel() + model.y0, 0)
        fit_ra, fit_dec = solution.wcs.all_pix2world(xx.ravel(), yy.ravel(), 0)
        error = angular_distance_arcsec(fit_ra, fit_dec, true_ra, true_dec)
        assert np.median(error) < 0.05 and error.max() < 0.15, (chip, error.max())
        # the first guess was off by the pointing error (arcseconds), so this was real work
        guess_ra, guess_dec = guess.all_pix2world(xx.ravel(), yy.ravel(), 0)
        assert np.median(angular_distance_arcsec(guess_ra, guess_dec, true_ra, true_dec)) > 0.5


def test_reduce_then_astrometry_through_the_dpu(tmp_path_factory, database_url) -> None:
    from astropy.io import fits as pyfits

    from awe.data.store import DataStore
    from awe.db.engine import open_database
    from awe.db.frames import AstrometricParameters
    from awe.dpu import Processor
    from tests.pipeline_night import NIGHT, ingested_night

    database = open_database(database_url)
    night = ingested_night(tmp_path_factory.getbasetemp(), database, chips=("ccd51",))
    dpu = Processor(database_url=database_url, username="alice")
    folder = str(night.out / "refcat")
    job_id = dpu.run(
        "Reduce>Astrometry",
        i="WFI",
        d=NIGHT,
        c="ccd51",
        f="#879",
        o="AWE_DEEP*",
        refcat=folder,
        C=1,
    )
    (status,) = dpu.wait(job_id, timeout=300)
    logs = "\n".join(dpu.get_logs(job_id)[job_id])
    assert status.counts["N"] == 6, logs  # the 3 science exposures
    solutions = AstrometricParameters.select(database=dpu.database, instrument="WFI")
    assert len(solutions) == 3
    store = DataStore(dpu.env.data_root)
    model = night.chip_model("ccd51")
    for solution in solutions:
        assert solution.results["rms_arcsec"] < 0.1 and solution.results["n_stars"] >= 5
        fitted = WCS(pyfits.getheader(store.path(solution.sha256)))
        entry = next(e for e in night.exposures if e["exposure_number"] == solution.exposure_number)
        truth = wcs_from_cards(night.exposure(entry["file"])["chips"]["ccd51"]["wcs"])
        yy, xx = np.mgrid[0 : model.ny : 64, 0 : model.nx : 64]
        true_ra, true_dec = truth.all_pix2world(xx.ravel() + model.x0, yy.ravel() + model.y0, 0)
        fit_ra, fit_dec = fitted.all_pix2world(xx.ravel(), yy.ravel(), 0)
        assert angular_distance_arcsec(fit_ra, fit_dec, true_ra, true_dec).max() < 0.15
    assert "Astrometric rms " in logs and "Reference catalogue: " in logs
    database.dispose()


def test_astrometry_without_a_catalogue_says_how_to_give_one(tmp_path_factory, database_url):
    from awe.db.engine import open_database
    from awe.dpu import Processor
    from tests.pipeline_night import NIGHT, ingested_night

    database = open_database(database_url)
    ingested_night(tmp_path_factory.getbasetemp(), database, chips=("ccd51",))
    dpu = Processor(database_url=database_url, username="alice")
    with pytest.raises(Exception, match="no reference catalogue: give refcat="):
        dpu.run("Reduce>Astrometry", i="WFI", d=NIGHT, c="ccd51", f="#879")
    database.dispose()
