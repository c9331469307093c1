"""Galaxy morphology against the simulator's truth: Sersic fits (index, effective radius,
shape, flux) of the simulated galaxies on reduced frames, their isophotes against those of
the true, PSF-convolved light, and GalFit and GalPhot through the local DPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from awe.data.simulate import NightTruth, simulate_night
from awe.science.galaxies import (
    fit_sersic,
    frame_psf,
    galaxy_cutout,
    initial_guess,
    isophote_photometry,
    model_image,
    select_galaxies,
)
from awe.science.sources import extract
from tests.pipeline_night import NIGHT, PLAN, add_true_calibration, reduce_with_truth

CHIPS = ("ccd50", "ccd51")
#: Chips at a quarter of their size (the pipeline night's eighth crowds the galaxies with
#: stars), six galaxies on each.
SCALE = 0.25
GALAXIES = 6
GAIN = 2.0
_made: dict[str, Path] = {}


def _plan() -> dict:
    """One science exposure, no raw calibration frames (the calibration comes from the
    truth), good seeing, bright galaxies, enough stars for a PSF on each chip, and no
    saturating stars (their bleed trails would cross galaxies)."""
    nothing = {"count": 0}
    plan = PLAN | {"science": {"count": 1}, "stars_per_chip": 100, "standard": nothing}
    plan |= {"bias": nothing, "dome_flat": nothing, "twilight_flat": nothing}
    plan |= {"seeing_fwhm_arcsec": [0.8, 0.9], "galaxies": {"mag_range": [17.0, 18.3]}}
    return plan | {"bright_stars_per_field": 0}


def galaxy_night(base: Path) -> NightTruth:
    """One science exposure in #842 with galaxies, simulated once."""
    if "night" not in _made:
        out = base / "galaxy-night-WFI"
        simulate_night(
            "WFI", NIGHT, out, progress=False, scale=SCALE, filters=["#842"], plan=_plan(),
            galaxies=GALAXIES,
        )  # fmt: skip
        _made["night"] = out
    return NightTruth(_made["night"])


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory):
    """The five brightest true galaxies (of at least 5e4 ADU) with no star of more than
    2 % of their light in their cutout: truth (frame pixels), cutout (of the source
    :func:`select_galaxies` chose there; every such galaxy must be chosen), PSF."""
    night = galaxy_night(tmp_path_factory.getbasetemp())
    (entry,) = [e for e in night.exposures if e["frame_type"] == "RawScienceFrame"]
    exposure = night.exposure(entry["file"])
    found = []
    for chip in CHIPS:
        model = night.chip_model(chip)
        reduced = reduce_with_truth(night, entry["file"], chip)
        extraction = extract(
            reduced.image, reduced.weight, aperture_radius=1.5 * exposure["fwhm_pixels"], gain=GAIN
        )
        sources = extraction.sources
        psf, profile = frame_psf(reduced.image, sources, 15)
        chosen = select_galaxies(sources, profile["flux_radius"])
        truth = exposure["chips"][chip]["galaxies"]
        stars = exposure["chips"][chip]["stars"]
        sx, sy, sf = np.array(stars["x"]), np.array(stars["y"]), np.array(stars["flux_adu"])
        inverse_variance = reduced.weight / extraction.background_rms**2
        for j in range(len(truth["x"])):
            galaxy = {k: truth[k][j] for k in truth}
            half = int(np.clip(5 * galaxy["r_eff"], 15, 60))
            near = (np.abs(sx - galaxy["x"]) < half) & (np.abs(sy - galaxy["y"]) < half)
            if galaxy["flux_adu"] < 5e4 or (sf[near] > 0.02 * galaxy["flux_adu"]).any():
                continue  # faint, or a star in its cutout bright enough to disturb it
            x, y = galaxy["x"] - model.x0, galaxy["y"] - model.y0
            distance = np.hypot(sources["x"][chosen] - x, sources["y"][chosen] - y)
            assert distance.min() < 2.0, f"galaxy {galaxy} of {chip} not selected"
            index = int(chosen[np.argmin(distance)])
            data, weight, origin = galaxy_cutout(
                reduced.image, inverse_variance, sources, index, half
            )
            found.append((galaxy | {"x": x, "y": y}, data, weight, origin, psf, profile))
    assert len(found) >= 4, len(found)
    return sorted(found, key=lambda item: -item[0]["flux_adu"])[:5]  # the brightest


def test_sersic_fits_recover_the_true_galaxies(measured) -> None:
    """Against the truth, and the fitted model's light against photutils' elliptical
    aperture photometry of the cutout (within 2 r_eff, on the pixels the fit used)."""
    from photutils.aperture import EllipticalAperture

    for galaxy, data, weight, (ox, oy), psf, _profile in measured:
        fit = fit_sersic(data, weight, psf, gain=GAIN)
        aperture = EllipticalAperture(
            (fit.x, fit.y), 2 * fit.r_eff, 2 * fit.r_eff * (1 - fit.ellipticity), theta=fit.theta
        )
        model = model_image(fit, data.shape, psf) - fit.background
        masked = weight <= 0  # the pixels the fit left out
        measured_light = aperture.do_photometry(data - fit.background, mask=masked)[0][0]
        assert abs(measured_light / aperture.do_photometry(model, mask=masked)[0][0] - 1) < 0.01
        assert abs(fit.n / galaxy["n"] - 1) < 0.10, (fit, galaxy)
        assert abs(fit.r_eff / galaxy["r_eff"] - 1) < 0.05, (fit, galaxy)
        assert abs(fit.ellipticity - galaxy["ellipticity"]) < 0.03, (fit, galaxy)
        turn = abs(fit.theta - galaxy["theta"]) % np.pi
        assert min(turn, np.pi - turn) < 0.1, (fit, galaxy)
        assert abs(fit.flux / galaxy["flux_adu"] - 1) < 0.03, (fit, galaxy)
        assert np.hypot(fit.x + ox - galaxy["x"], fit.y + oy - galaxy["y"]) < 0.2
        assert 0.8 < fit.chi2 < 2.0 and fit.errors["n"] > 0


def test_isophotes_follow_the_true_light(measured) -> None:
    """GalPhot's isophotes on the noisy frame against those of the true light (the same
    galaxy drawn without noise by the simulator) and against the true position angle;
    their ellipticity is below the galaxy's own, which the PSF rounds."""
    from awe.data.sim_galaxies import render

    for galaxy, data, weight, (ox, oy), _psf, profile in measured[:2]:
        half = data.shape[0] // 2
        clean = np.zeros(data.shape)
        at = {k: [v] for k, v in galaxy.items()} | {"x": [galaxy["x"]], "y": [galaxy["y"]]}
        render(clean, at, ox, oy, profile["fwhm"], profile["beta"])
        r_eff = galaxy["r_eff"]
        x, y = galaxy["x"] - ox, galaxy["y"] - oy
        options = {"x": x, "y": y, "sma": r_eff, "maxsma": min(3 * r_eff, half - 1), "step": 0.25}
        background = initial_guess(data, weight)["background"]
        noisy = isophote_photometry(data - background, mask=weight <= 0, **options)
        true = isophote_photometry(clean, **options)
        outer = (noisy["sma"] >= r_eff) & (noisy["sma"] <= 3 * r_eff)
        assert outer.sum() >= 3
        expected = np.interp(noisy["sma"][outer], true["sma"], true["ellipticity"])
        assert np.median(np.abs(noisy["ellipticity"][outer] - expected)) < 0.05
        assert np.median(noisy["ellipticity"][outer]) < galaxy["ellipticity"] + 0.03
        if galaxy["ellipticity"] > 0.25:
            turn = np.abs(noisy["pa"][outer] - galaxy["theta"]) % np.pi
            assert np.median(np.minimum(turn, np.pi - turn)) < 0.12
        growth = noisy["tflux_e"][noisy["sma"] >= 2]
        assert np.all(np.diff(growth) > 0)  # a curve of growth


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_galfit_and_galphot_through_the_dpu(tmp_path_factory, database_url) -> None:
    """'Reduce>SourceList>GalFit' with a position list (the sky position that the frame's
    header WCS gives the brightest galaxy), then GalPhot from the stored SourceList. On
    SQLite only: the products are plain frames, committed as test_associate's are on both
    databases."""
    from astropy.io import fits
    from astropy.wcs import WCS

    from awe.data.ingestion import ingest
    from awe.data.store import DataStore
    from awe.db.engine import open_database
    from awe.db.frames import GalFitList, GalPhotList, SourceList
    from awe.dpu import Processor

    database = open_database(database_url)
    night = galaxy_night(tmp_path_factory.getbasetemp())
    dpu = Processor(database_url=database_url, username="alice")
    report = ingest([night.out], database=database, store=DataStore(dpu.env.data_root))
    assert report.ok, report.summary()
    add_true_calibration(night, database, dpu.env.data_root, ("ccd51",))
    (entry,) = [e for e in night.exposures if e["frame_type"] == "RawScienceFrame"]
    truth = night.exposure(entry["file"])["chips"]["ccd51"]["galaxies"]
    j = int(np.argmax(truth["flux_adu"]))
    header = fits.getheader(night.out / entry["file"], "ccd51")
    ra, dec = WCS(header).all_pix2world(truth["x"][j], truth["y"][j], 0)
    options = {"i": "WFI", "d": NIGHT, "c": "ccd51", "f": "#842", "o": "AWE*", "C": 1}
    job_id = dpu.run("Reduce>SourceList>GalFit", pos=[[float(ra), float(dec)]], **options)
    (status,) = dpu.wait(job_id, timeout=300)
    logs = "\n".join(dpu.get_logs(job_id)[job_id])
    assert status.counts["N"] == 3, logs
    (product,) = GalFitList.select(database=dpu.database, instrument="WFI", chip="ccd51")
    (row,) = product.get_fits(data_root=dpu.env.data_root)
    model = night.chip_model("ccd51")
    assert np.hypot(row["x"] - truth["x"][j] + model.x0, row["y"] - truth["y"][j] + model.y0) < 0.3
    assert abs(row["n"] / truth["n"][j] - 1) < 0.1, (row, truth)
    assert abs(row["r_eff"] / truth["r_eff"][j] - 1) < 0.05, (row, truth)
    assert row["n_err"] > 0 and np.isfinite(row["mag"]) and abs(row["ra"] - ra) < 1e-5
    assert not row["at_bound"]
    (catalogue,) = SourceList.select(database=dpu.database, instrument="WFI", chip="ccd51")
    assert {f.sha256 for f in product.inputs} >= {catalogue.sha256}  # provenance
    assert "PSF from" in logs and "Fitted 1 galaxies" in logs

    job_id = dpu.run("GalPhot", p={"GalPhot.process_params.MAX_GALAXIES": 1}, **options)
    (status,) = dpu.wait(job_id, timeout=300)
    logs = "\n".join(dpu.get_logs(job_id)[job_id])
    assert status.counts["N"] == 1, logs
    (phot,) = GalPhotList.select(database=dpu.database, instrument="WFI", chip="ccd51")
    galaxies = phot.get_galaxies(data_root=dpu.env.data_root)
    assert len(galaxies) == phot.results["galaxies"] == 1
    first = phot.get_isophotes(0, data_root=dpu.env.data_root)
    assert len(first) == galaxies["isophotes"][0] > 5
    assert "Isophotes of 1 galaxies" in logs
    database.dispose()


def test_galaxies_leave_the_stars_alone(tmp_path_factory, tmp_path) -> None:
    """Galaxies are opt-in and drawn from a stream of their own: the same night without
    them has the same stars, and no galaxies in its truth."""
    night = galaxy_night(tmp_path_factory.getbasetemp())
    (entry,) = [e for e in night.exposures if e["frame_type"] == "RawScienceFrame"]
    plain_out = tmp_path / "plain"
    simulate_night("WFI", NIGHT, plain_out, progress=False, scale=SCALE, filters=["#842"],
                   plan=_plan(), exposures=[entry["exposure_number"]])  # fmt: skip
    plain = NightTruth(plain_out)
    assert "galaxies" not in plain.night and len(night.night["galaxies"]) >= GALAXIES
    with_galaxies, without = night.exposure(entry["file"]), plain.exposure(entry["file"])
    for chip, truth in without["chips"].items():
        assert truth["stars"] == with_galaxies["chips"][chip]["stars"]
        assert "galaxies" not in truth and len(with_galaxies["chips"][chip]["galaxies"]["x"])
