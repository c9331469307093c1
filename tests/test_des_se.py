"""DES single-epoch processing (SE) on a simulated DECam exposure, run by the local DPU,
checked against the simulator's truth: zeropoints, astrometry, PSF photometry; and the
pure BLISS rules, crosstalk, CCD lists, failures and reruns."""

from __future__ import annotations

import csv
import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
from astropy.io import fits
from sqlalchemy import select

from awe.data import refcat
from awe.data.des_archive import parse_ccds
from awe.data.errors import DataError
from awe.db.models import Task, TaskState
from awe.dpu import Processor
from awe.errors import AweError
from awe.science import des_bliss
from awe.science.astrometry import pixel_to_sky
from awe.science.des_detrend import AmpLayout, crosstalk_correct
from tests.des_archive import EXPOSURE, NITE, SCALE, make_archive

TIMEOUT = 600


def tasks_of(dpu: Processor, job_id: int) -> dict[str, Task]:
    with dpu.database.session() as session:
        rows = session.scalars(select(Task).where(Task.job_id == job_id)).all()
        return {t.name: t for t in rows}


@pytest.fixture(scope="module")
def se(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("se")
    archive, truth = make_archive(base)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWE_HOME", str(base / "home"))
        dpu = Processor(database_url=f"sqlite:///{base}/awe.db", username="alice")
        job = dpu.run(
            "SE", E=EXPOSURE, b="i", n=NITE, r=4, p=7, c="1-5,61", d="persistent", m="gw",
            C=1, a=str(archive.root),
        )  # fmt: skip
        (status,) = dpu.wait(job, timeout=TIMEOUT)
        yield SimpleNamespace(
            dpu=dpu, job=job, status=status, archive=archive, truth=truth, patch=patch,
            out=archive.output("persistent", "gw", NITE, EXPOSURE),
        )  # fmt: skip


def test_one_task_per_working_ccd_and_des_product_names(se) -> None:
    assert se.status.counts == {"N": 10, "E": 0, "A": 0, "S": 0, "U": 0}
    tasks = tasks_of(se.dpu, se.job)
    ccds = sorted(n for n in tasks if n.startswith("SEDetrend"))
    assert ccds == [f"SEDetrend[668439/{c:02d}]" for c in (1, 3, 4, 5)]  # 2, 61 never
    with se.dpu.database.session() as session:
        sky = session.get(Task, tasks["SESky[668439]"].id)
        assert sorted(t.name for t in sky.depends_on) == ccds
    for ccd in (1, 3, 4, 5):
        stem = f"D00668439_i_{ccd:02d}_r4p7"
        for name in (f"{stem}_immask.fits.fz", f"{stem}_fullcat.fits", f"{stem}.out",
                     f"{stem}.psf", f"Zero_D00668439_{ccd:02d}_r4p7.csv",
                     f"D00668439_{ccd:02d}_r4p7_ZP.csv"):  # fmt: skip
            assert (se.out / name).is_file(), name
    assert (se.out / "allZP_D00668439_r4p7.csv").is_file()
    with fits.open(se.out / "D00668439_i_03_r4p7_immask.fits.fz") as hdul:
        assert [h.name for h in hdul[1:]] == ["SCI", "MSK", "WGT"]
        assert hdul["SCI"].header["CTYPE1"] == "RA---TAN-SIP"
        assert 3 < hdul["SCI"].header["FWHM"] < 6
    corners = (se.out / "D00668439_i_03_r4p7.out").read_text().split()
    assert corners[:4] == ["D00668439_i_03_r4p7_immask.fits.fz", "668439", "i", "03"]
    assert len(corners) == 4 + 10


def expected_bliss_zeropoint(se) -> float:
    """BLISS's ZP (sign of m_inst - m_ref - 25) for fluxes in electrons after the flat:
    -(ZP - k X + 2.5 log10(t G)), G the mean nominal gain the flat is relative to."""
    (entry,) = se.truth.exposures
    exposure = se.truth.exposure(entry["file"])
    band = se.truth.instrument.filter("i")
    gain = np.mean([a.gain for a in se.truth.instrument.detector.amplifiers])
    return -(
        band.zeropoint
        - band.extinction * exposure["airmass"]
        + 2.5 * np.log10(exposure["exposure_time"] * gain)
    )


def test_zeropoints_match_the_truth_within_0_02_mag(se) -> None:
    expected = expected_bliss_zeropoint(se)
    with (se.out / "allZP_D00668439_r4p7.csv").open() as stream:
        rows = {int(r["CCDNUM"]): r for r in csv.DictReader(stream)}
    assert sorted(rows) == [0, 1, 3, 4, 5]
    for ccd, row in rows.items():
        assert abs(float(row["ZP"]) - expected) < 0.02, (ccd, row["ZP"], expected)
        assert int(row["NCLIPPED"]) >= 10


def chip_truth(se, ccd: int):
    chip = se.truth.instrument.chip(ccd)
    (entry,) = se.truth.exposures
    stars = se.truth.exposure(entry["file"])["chips"][chip.name]["stars"]
    data = se.truth.instrument.detector.data_section
    x = np.array(stars["x"]) - (data.x1 - 1)  # 0-based in the trimmed image
    y = np.array(stars["y"]) - (data.y1 - 1)
    return stars, x, y


def test_astrometric_rms_against_truth_below_0_1_arcsec(se) -> None:
    for ccd in (1, 3, 4, 5):
        stars, x, y = chip_truth(se, ccd)
        with fits.open(se.out / f"D00668439_i_{ccd:02d}_r4p7_immask.fits.fz") as hdul:
            header = hdul["SCI"].header
        cards = {k: header[k] for k in header if k.startswith(("CRPIX", "CRVAL", "CD", "A_", "B_"))}
        ra, dec = pixel_to_sky(cards, x + 1, y + 1)
        reference = refcat.read_cone(se.archive.refcat(), float(ra.mean()), float(dec.mean()), 0.3)
        where = {star: i for i, star in enumerate(reference["id"])}
        index = np.array([where[i] for i in stars["id"]])
        offset = np.hypot(
            (ra - reference["ra"][index]) * np.cos(np.radians(dec)), dec - reference["dec"][index]
        )
        rms = float(np.sqrt(np.mean(offset**2)) * 3600)
        assert rms < 0.1, (ccd, rms)


def test_psf_photometry_of_bright_isolated_stars_within_1_percent(se) -> None:
    gain = np.mean([a.gain for a in se.truth.instrument.detector.amplifiers])
    ratios = []
    for ccd in (1, 3, 4, 5):
        stars, x, y = chip_truth(se, ccd)
        flux = np.array(stars["flux_adu"]) * gain
        distance = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])
        np.fill_diagonal(distance, np.inf)
        crowded = ((distance < 12) & (flux[None, :] > 0.01 * flux[:, None])).any(axis=1)
        bright = (flux > 4e4) & ~np.array(stars["saturated"]) & ~crowded
        with fits.open(se.out / f"D00668439_i_{ccd:02d}_r4p7_fullcat.fits") as hdul:
            table = hdul[1].data
        gap = np.hypot(table["X_IMAGE"][:, None] - 1 - x, table["Y_IMAGE"][:, None] - 1 - y)
        nearest = gap.argmin(axis=1)
        found = (gap[np.arange(len(nearest)), nearest] < 1.0) & bright[nearest]
        found &= table["FLAGS"] == 0
        ratios.extend(table["FLUX_PSF"][found] / flux[nearest[found]])
    assert len(ratios) >= 8
    assert abs(np.median(ratios) - 1) < 0.01, np.round(np.sort(ratios), 3)


def test_psf_model_is_the_truths_moffat_and_photutils_agrees(se) -> None:
    """The CCD's Moffat model against the simulator's (FWHM, beta), and its PSF fluxes
    against photutils' PSF photometry with the same model on the same image."""
    from astropy.table import QTable
    from photutils.psf import MoffatPSF, PSFPhotometry

    (entry,) = se.truth.exposures
    exposure = se.truth.exposure(entry["file"])
    beta = float(se.truth.instrument.simulation["moffat_beta"])
    for ccd in (1, 3, 4, 5):
        stem = f"D00668439_i_{ccd:02d}_r4p7"
        header = fits.getheader(se.out / f"{stem}.psf")
        assert abs(header["FWHM"] / exposure["fwhm_pixels"] - 1) < 0.03, (ccd, header["FWHM"])
        assert abs(header["BETA"] / beta - 1) < 0.15, (ccd, header["BETA"])
    with fits.open(se.out / f"{stem}_immask.fits.fz") as hdul:
        image, weight = hdul["SCI"].data.astype(float), hdul["WGT"].data.astype(float)
    with fits.open(se.out / f"{stem}_fullcat.fits") as hdul:
        table = hdul[1].data
    ny, nx = image.shape
    x, y = table["X_IMAGE"] - 1, table["Y_IMAGE"] - 1
    chosen = (table["FLUX_PSF"] > 4e4) & (table["FLAGS"] == 0)
    chosen &= (x > 16) & (x < nx - 17) & (y > 16) & (y < ny - 17)
    assert chosen.sum() >= 3
    alpha = header["FWHM"] / (2 * np.sqrt(2 ** (1 / header["BETA"]) - 1))
    photometry = PSFPhotometry(MoffatPSF(alpha=alpha, beta=header["BETA"]), (31, 31))
    init = QTable({"x": x[chosen], "y": y[chosen], "flux": table["FLUX_PSF"][chosen]})
    error = np.where(weight > 0, 1 / np.sqrt(np.where(weight > 0, weight, 1)), 1e6)
    theirs = photometry(image, error=error, init_params=init)["flux_fit"]
    ratio = table["FLUX_PSF"][chosen] / np.asarray(theirs)
    assert abs(np.median(ratio) - 1) < 0.01, np.round(ratio, 4)


def test_pca_sky_over_all_ccds_matches_the_simulated_sky(se) -> None:
    from awe.science.des_sky import evaluate_pca_sky

    pars = {"SE.process_params.SKY_METHOD": "pca", "SE.process_params.SKY_PCA_COMPONENTS": 2}
    job = se.dpu.run(
        "SE", E=EXPOSURE, b="i", n=NITE, c="1-5", O=1, p=9, a=str(se.archive.root), pars=pars
    )
    (status,) = se.dpu.wait(job, timeout=TIMEOUT)
    assert status.counts["N"] == 9, status.counts  # SECalibrate ends S without C=1
    model = json.loads((se.out / "D00668439_i_r4p9_skyfit.json").read_text())
    assert model["method"] == "pca" and model["ccds"] == [1, 3, 4, 5]
    assert np.shape(model["components"])[0] == 2
    (entry,) = se.truth.exposures
    gain = np.mean([a.gain for a in se.truth.instrument.detector.amplifiers])
    truth = se.truth.exposure(entry["file"])["sky_adu"] * gain  # electrons, flat after the flat
    for row, ccd in enumerate(model["ccds"]):
        # The block medians sit 0.2-0.5 % above the sky (faint stars; the polynomial has the
        # same); with 4 CCDs the shared shape still carries the blocks' noise (up to 1.2 %).
        sky = evaluate_pca_sky(model, row) / truth - 1
        assert abs(np.median(sky)) < 0.006 and np.abs(sky).max() < 0.015, (ccd, sky)
        left = {}  # what the sky subtraction left, after the PCA and the polynomial sky
        for pnum in (9, 7):
            with fits.open(se.out / f"D00668439_i_{ccd:02d}_r4p{pnum}_immask.fits.fz") as hdul:
                noise = hdul["SCI"].header["SKYSIGMA"]
                left[pnum] = np.median(hdul["SCI"].data[hdul["MSK"].data == 0])
        assert abs(left[9] - left[7]) < 0.05 * noise, (ccd, left, noise)
    assert "(pca)" in "\n".join(se.dpu.get_logs(job)[job])


def test_pca_sky_follows_a_pattern_repeated_on_every_ccd() -> None:
    """An amplifier step and a gradient along each CCD, at a level of its own per CCD, with
    a bright star in one block and a masked block: the PCA sky recovers them within the
    blocks' noise; a polynomial over the focal plane cannot."""
    from awe.science.des_sky import evaluate_pca_sky, evaluate_sky, fit_pca_sky, fit_sky

    rng = np.random.default_rng(1)
    n, ny, nx = 30, 8, 4
    yy, xx = np.mgrid[0:ny, 0:nx]
    pattern = np.where(xx < 2, 1.0, 1.02) + 0.01 * yy / ny
    truth = rng.uniform(990, 1010, n)[:, None, None] * pattern
    blocks = truth + rng.normal(0, 0.5, truth.shape)
    blocks[3, 2, 1] += 400
    blocks[5, 0, 0] = np.nan
    model = fit_pca_sky(blocks, 2)
    fitted = np.array([evaluate_pca_sky(model, row) for row in range(n)])
    assert np.abs(fitted - truth).max() < 1.5  # 3 sigma of a block
    assert model["blocks"] - model["blocks_used"] < 0.02 * model["blocks"]  # the star's out
    u = np.arange(n)[:, None, None] * nx + xx  # the CCDs side by side on the focal plane
    polynomial = fit_sky(u + 0.0 * yy, yy + 0.0 * u, blocks, order=2)
    assert np.abs(evaluate_sky(polynomial, u + 0.0 * yy, yy + 0.0 * u) - truth).max() > 10


def test_a_ccd_that_fails_is_reported_while_the_others_go_on(se, tmp_path) -> None:
    # Y=1 forces the Y4 calibration set, which only CCD 1 has: CCD 3 fails, 1 runs.
    shutil.copy(se.archive.calibration_file("Y7", 1), tmp_path / "ccd1.fits")
    target = se.archive.calibration_file("Y4", 1)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(tmp_path / "ccd1.fits", target)
    job = se.dpu.run(
        "SE", E=EXPOSURE, b="i", n=NITE, c="1,3", Y=1, O=1, r=4, p=8, a=str(se.archive.root)
    )
    se.dpu.wait(job, timeout=TIMEOUT)
    tasks = tasks_of(se.dpu, job)
    assert tasks["SEDetrend[668439/01]"].state is TaskState.N
    failed = tasks["SEDetrend[668439/03]"]
    assert failed.state is TaskState.E and "D_Y4_03_calib.fits is missing" in failed.reason
    # the exposure goes on with the CCD that worked: its sky, CCD 1's catalogue
    assert tasks["SESky[668439]"].state is TaskState.N
    assert "sky over 1 CCDs" in "\n".join(se.dpu.get_logs(job)[job])
    assert tasks["SECatalog[668439/01]"].state is TaskState.N
    skipped = tasks["SECatalog[668439/03]"]
    assert skipped.state is TaskState.S and "CCD 3 was not detrended" in skipped.reason


def test_a_rerun_skips_ccds_the_database_knows_complete(se) -> None:
    fullcat = se.out / "D00668439_i_04_r4p7_fullcat.fits"
    before = fullcat.stat().st_mtime_ns
    job = se.dpu.run("SE", E=EXPOSURE, b="i", n=NITE, c="4", C=1, a=str(se.archive.root))
    (status,) = se.dpu.wait(job, timeout=TIMEOUT)
    assert status.counts["N"] == 4
    assert fullcat.stat().st_mtime_ns == before
    logs = "\n".join(se.dpu.get_logs(job)[job])
    assert f"CCD complete in job {se.job}" in logs and "not remade (O=1 redoes it)" in logs


def test_options_as_se_job_mod_sh_names_them(se) -> None:
    options = se.dpu.get_sequence_options("SE")
    for short, long in [("E", "expnum"), ("p", "pnum"), ("C", "calibrate"), ("O", "overwrite"),
                        ("S", "season"), ("j", "justcalib"), ("s", "single"), ("Y", "y4"),
                        ("t", "template"), ("d", "destcache"), ("m", "schema")]:  # fmt: skip
        assert short in options and long in options
    assert "pars" in options and "commit" in options  # the common ones, by long name
    with pytest.raises(AweError, match="no CCD \\[63\\]; DECam CCDs are 1..62"):
        se.dpu.run("SE", E=EXPOSURE, b="i", n=NITE, c="1,63", a=str(se.archive.root))
    with pytest.raises(AweError, match="nite '2017-08-17' is not YYYYMMDD"):
        se.dpu.run("SE", E=EXPOSURE, b="i", n="2017-08-17", a=str(se.archive.root))


def test_ccd_lists_with_ranges_never_hold_the_dead_ccds() -> None:
    every = list(range(1, 63))
    assert parse_ccds("1,3-60,62", every) == [1, *range(3, 61), 62]
    assert parse_ccds("1-62", every) == [1, *range(3, 61), 62]
    assert parse_ccds("2", every) == []
    with pytest.raises(DataError, match="'x-3' is not N or N-M"):
        parse_ccds("x-3", every)


def test_crosstalk_correction_undoes_the_simulated_leak() -> None:
    from awe.data.instruments import get_instrument
    from awe.data.simulate import _add_crosstalk

    decam = get_instrument("DECam").scaled(SCALE)
    rng = np.random.default_rng(3)
    raw = rng.integers(2800, 3200, decam.detector.shape).astype(np.uint16)
    amps = decam.detector.amplifiers
    raw[amps[0].data.slices][50:60, 10:20] = 40000  # a bright star on amplifier A
    leaked = _add_crosstalk(decam, raw, [a.bias_level for a in amps])
    data = decam.detector.data_section
    layouts = [
        AmpLayout(a.name, a.data.slices, a.overscan.slices,
                  slice(a.data.x1 - data.x1, a.data.x2 - data.x1 + 1), a.overscan.x2 < a.data.x1)
        for a in amps
    ]  # fmt: skip

    def trimmed(image):
        out = np.empty(data.shape, np.float32)
        for a, layout in zip(amps, layouts, strict=True):
            out[:, layout.trimmed_columns] = image[a.data.slices].astype(np.float32) - a.bias_level
        return out

    ghost = trimmed(leaked) - trimmed(raw)
    assert ghost.max() > 25  # 0.0008 of the star leaks, mirrored, into amplifier B
    fixed = crosstalk_correct(trimmed(leaked), layouts, decam.crosstalk)
    assert np.abs(fixed - trimmed(raw)).max() < 1.0


def test_bliss_rules() -> None:
    assert des_bliss.clipped_zeropoint(np.array([-31.0, -31.1])).zp == -999.0
    rng = np.random.default_rng(1)
    good = des_bliss.clipped_zeropoint(np.r_[rng.normal(-31.4, 0.02, 50), -25.0])
    assert abs(good.zp + 31.4) < 0.01 and 45 <= good.clipped <= 50 and good.stars == 51
    assert des_bliss.deltas(np.array([1e5, 1e5]), np.array([0.0, 35.0])).size == 1
    every = des_bliss.Zeropoint(-31.4, 0.001, 0.02, 500, 490)
    per_ccd = {c: des_bliss.Zeropoint(-31.4 + 0.001 * c, 0.01, 0.02, 40, 40) for c in range(1, 11)}
    per_ccd[3] = des_bliss.Zeropoint(-31.0, 0.01, 0.02, 40, 40)  # 0.4 off: flagged
    per_ccd[4] = des_bliss.Zeropoint(-31.45, 0.1, 0.5, 40, 40)  # rms > 0.3: all-CCD value
    per_ccd[5] = des_bliss.Zeropoint(-31.41, 0.1, 0.05, 3, 3)  # < 4 clipped: all-CCD value
    final = des_bliss.exposure_zeropoints(per_ccd, every)
    assert final[3].zp == -1000.0 and final[4].zp == -31.4 and final[5].flag == 1
    per_ccd[6] = per_ccd[7] = des_bliss.Zeropoint(-30.0, 0.01, 0.02, 40, 40)
    final = des_bliss.exposure_zeropoints(per_ccd, every)  # 3 of 10 flagged: >= 20 %
    assert {z.zp for z in final.values()} == {-9999.0}


def test_fewer_than_three_stars_give_minus_999_in_the_files(se, tmp_path) -> None:
    from awe.data.des_bliss import calibrate_exposure, read_zeropoints

    with fits.open(se.out / "D00668439_i_03_r4p7_fullcat.fits") as hdul:
        table = hdul[1].data
        keep = np.argsort(-table["FLUX_PSF"])[:2]
        fits.BinTableHDU(table[keep]).writeto(tmp_path / "two.fits")
    written = calibrate_exposure(
        se.archive, tmp_path, EXPOSURE, "i", 4, 7, {3: tmp_path / "two.fits"}
    )
    (all_zp,) = [path for kind, path, _ in written if kind == "SEZeropoints"]
    rows = read_zeropoints(all_zp)
    assert [r["ZP"] for r in rows] == [-999.0, -999.0]
    assert json.dumps(rows)  # plain data


def test_j_goes_straight_to_calibration_and_t_stops_before_it(se) -> None:
    job = se.dpu.run("SE", E=EXPOSURE, b="i", n=NITE, c="3,4", j=1, C=1, a=str(se.archive.root))
    (status,) = se.dpu.wait(job, timeout=TIMEOUT)
    assert status.counts["N"] == 6
    logs = "\n".join(se.dpu.get_logs(job)[job])
    assert "j=1: SE skipped, going straight to calibration" in logs
    assert "exposure 668439: all-CCD ZP" in logs
    job = se.dpu.run("SE", E=EXPOSURE, b="i", n=NITE, c="3", j=1, C=1, t=1, a=str(se.archive.root))
    se.dpu.wait(job, timeout=TIMEOUT)
    calibrate = tasks_of(se.dpu, job)["SECalibrate[668439]"]
    assert calibrate.state is TaskState.S and "template mode (t=1)" in calibrate.reason
