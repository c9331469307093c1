"""Global astrometry over the chips and dithers of the pipeline night, against the
simulator's true TAN-SIP WCS: better than the per-chip solutions it starts from."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from awe.data import refcat
from awe.data.sim_sky import wcs_from_cards
from awe.science.astrometry import angular_distance_arcsec, solve
from awe.science.gastrom import (
    Frame,
    GlobalAstrometryError,
    gnomonic,
    inverse_gnomonic,
    solve_global,
)
from awe.science.sources import extract
from tests.pipeline_night import pipeline_night, reduce_with_truth
from tests.test_astrometry import trimmed_guess

CHIPS = ("ccd50", "ccd55")


def _errors(night, entry, chip, wcs) -> np.ndarray:
    """Distance (arcsec) between ``wcs`` and the true WCS on a grid of the chip."""
    model = night.chip_model(chip)
    truth = wcs_from_cards(night.exposure(entry["file"])["chips"][chip]["wcs"])
    yy, xx = np.mgrid[0 : model.ny : 16, 0 : model.nx : 16]
    true_ra, true_dec = truth.all_pix2world(xx.ravel() + model.x0, yy.ravel() + model.y0, 0)
    fit_ra, fit_dec = wcs.all_pix2world(xx.ravel(), yy.ravel(), 0)
    return angular_distance_arcsec(fit_ra, fit_dec, true_ra, true_dec)


def test_global_solution_beats_the_per_chip_ones(tmp_path_factory) -> None:
    night = pipeline_night(tmp_path_factory.getbasetemp())
    entries = [
        e for e in night.exposures if e["frame_type"] == "RawScienceFrame" and e["filter"] == "#842"
    ]
    assert len(entries) == 3  # the dithers of one pointing set
    frames, where, catalogues = [], [], []
    for entry in entries:
        for chip in CHIPS:
            model = night.chip_model(chip)
            reduced = reduce_with_truth(night, entry["file"], chip)
            found = extract(reduced.image, reduced.weight, threshold=5.0, aperture_radius=6.0)
            s = found.sources
            usable = (s["flags"] <= 3) & (s["flux_aper"] > 10 * s["fluxerr_aper"])
            header = fits.getheader(night.out / entry["file"], extname=chip)
            guess = trimmed_guess(header, model.x0, model.y0)
            centre = guess.all_pix2world([[model.nx / 2, model.ny / 2]], 0)[0]
            stars = refcat.read_cone(night.out / "refcat", centre[0], centre[1], 0.2)
            catalogues.append(stars)
            x, y = s["x"][usable], s["y"][usable]
            per_chip = solve(x, y, stars["ra"], stars["dec"], guess, shape=reduced.image.shape)
            frames.append(Frame(x=x, y=y, wcs=per_chip.wcs, chip=chip, shape=reduced.image.shape))
            where.append((entry, chip))
    ra = np.concatenate([c["ra"] for c in catalogues])
    dec = np.concatenate([c["dec"] for c in catalogues])
    ra, index = np.unique(ra, return_index=True)
    dec = dec[index]
    solution = solve_global(frames, ra, dec)
    assert solution.n_overlap > 0 and solution.n_reference >= 30
    assert solution.rms_reference_arcsec < 0.1
    before = np.concatenate(
        [_errors(night, e, c, f.wcs) for (e, c), f in zip(where, frames, strict=True)]
    )
    after = np.concatenate(
        [_errors(night, e, c, w) for (e, c), w in zip(where, solution.wcs, strict=True)]
    )
    rms_before, rms_after = np.sqrt(np.mean(before**2)), np.sqrt(np.mean(after**2))
    assert rms_after < 0.05, (rms_before, rms_after)
    assert rms_after < rms_before, (rms_before, rms_after)
    assert np.median(after) < np.median(before)


def test_gnomonic_round_trip_and_too_few_references() -> None:
    ra = np.array([150.0, 150.1, 149.95])
    dec = np.array([-29.0, -29.05, -28.9])
    xi, eta = gnomonic(ra, dec, 150.02, -29.01)
    back_ra, back_dec = inverse_gnomonic(xi, eta, 150.02, -29.01)
    assert angular_distance_arcsec(ra, dec, back_ra, back_dec).max() < 1e-6
    from astropy.wcs import WCS

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval, wcs.wcs.crpix = [150.0, -29.0], [50, 50]
    wcs.wcs.cdelt = [-0.2 / 3600, 0.2 / 3600]
    frame = Frame(x=np.array([10.0]), y=np.array([10.0]), wcs=wcs, chip="a", shape=(100, 100))
    with pytest.raises(GlobalAstrometryError, match="only 0 reference-star matches"):
        solve_global([frame], ra, dec)


def test_reduce_gastrometry_regrid_coadd_in_one_job(tmp_path_factory, database_url) -> None:
    """The chain astronomers run: Regrid after the global GAstrom resumes the chips, with
    each chip's reduced frame from Reduce and its own global solution."""
    from astropy.wcs import WCS
    from sqlalchemy import select

    from awe.data.store import DataStore
    from awe.db.engine import open_database
    from awe.db.frames import AstrometricParameters, CoaddedRegriddedFrame, GAstromSourceList
    from awe.db.models import Task
    from awe.dpu import Processor
    from tests.pipeline_night import NIGHT, ingested_night

    database = open_database(database_url)
    night = ingested_night(tmp_path_factory.getbasetemp(), database, chips=("ccd51",))
    dpu = Processor(database_url=database_url, username="alice")
    folder = str(night.out / "refcat")
    chain = "Reduce>GAstrometry>Regrid>Coadd"
    job_id = dpu.run(chain, i="WFI", d=NIGHT, c="ccd51", f="#842", o="AWE*", refcat=folder, C=1)
    (status,) = dpu.wait(job_id, timeout=300)
    logs = "\n".join(dpu.get_logs(job_id)[job_id])
    # Reduce, GAstromSL and Regrid per exposure; GAstrom and Coadd once
    assert status.counts["N"] == 3 + 3 + 1 + 3 + 1, logs
    with dpu.database.session() as session:
        tasks = session.scalars(select(Task).where(Task.job_id == job_id)).all()
        waits = {t.name: sorted(d.name for d in t.depends_on) for t in tasks}
    regrids = [name for name in waits if name.startswith("Regrid[")]
    assert len(regrids) == 3
    for name in regrids:  # the global solution, and its own chip's earlier tasks
        own = [name.replace("Regrid", step) for step in ("GAstromSL", "Reduce")]
        assert waits[name] == ["GAstrom", *own], waits
    assert len(GAstromSourceList.select(database=dpu.database, instrument="WFI")) == 3
    solutions = AstrometricParameters.select(database=dpu.database, instrument="WFI")
    assert len(solutions) == 3 and all(s.results["global"] for s in solutions)
    assert "Global solution of 3 frames (1 chips)" in logs
    store = DataStore(dpu.env.data_root)
    errors = []
    for solution in solutions:
        entry = next(e for e in night.exposures if e["exposure_number"] == solution.exposure_number)
        wcs = WCS(fits.getheader(store.path(solution.sha256)))
        errors.append(_errors(night, entry, "ccd51", wcs))
        assert f"Using AstrometricParameters {solution.filename}" in logs
    assert np.sqrt(np.mean(np.concatenate(errors) ** 2)) < 0.05
    assert "No AstrometricParameters" not in logs
    (coadd,) = CoaddedRegriddedFrame.select(database=dpu.database, instrument="WFI")
    assert coadd.results["frames"] == 3
    with pytest.raises(Exception, match="GAstrom needs a filter"):
        dpu.run("GAstrom", i="WFI", d=NIGHT, refcat=folder)
    database.dispose()
