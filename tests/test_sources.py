"""Source extraction on reduced simulated frames: recovery and purity against the
simulator's truth, aperture fluxes against photutils on the same image."""

from __future__ import annotations

import numpy as np
import pytest

from awe.science.sources import extract
from tests.pipeline_night import pipeline_night, reduce_with_truth

CHIPS = ("ccd51", "ccd56")
GAIN = 2.0


@pytest.fixture(scope="module")
def reduced_frames(tmp_path_factory: pytest.TempPathFactory):
    """(reduced, exposure truth, chip model) for every science exposure and chip."""
    night = pipeline_night(tmp_path_factory.getbasetemp())
    frames = []
    for entry in night.exposures:
        if entry["frame_type"] != "RawScienceFrame":
            continue
        exposure = night.exposure(entry["file"])
        for chip in CHIPS:
            reduced = reduce_with_truth(night, entry["file"], chip)
            frames.append((reduced, exposure, chip, night.chip_model(chip)))
    return frames


def _truth(exposure, chip, model, shape):
    stars = exposure["chips"][chip]["stars"]
    x = np.array(stars["x"]) - model.x0
    y = np.array(stars["y"]) - model.y0
    return x, y, np.array(stars["flux_adu"]), np.array(stars["saturated"])


def test_sources_recover_true_stars_with_few_spurious(reduced_frames) -> None:
    recovered = wanted = spurious = detected = 0
    for reduced, exposure, chip, model in reduced_frames:
        radius = exposure["fwhm_pixels"] * 1.5
        found = extract(reduced.image, reduced.weight, aperture_radius=radius, gain=GAIN)
        sources = found.sources
        x, y, flux, saturated = _truth(exposure, chip, model, reduced.image.shape)
        ny, nx = reduced.image.shape
        sigma = found.background_rms
        snr = flux / np.sqrt(flux / GAIN + np.pi * radius**2 * sigma**2)
        distance = np.hypot(x[:, None] - sources["x"][None], y[:, None] - sources["y"][None])
        # a star is separable if no brighter true star lies within 2 FWHM
        pair = np.hypot(x[:, None] - x[None], y[:, None] - y[None])
        brighter = (flux[None] > flux[:, None]) & (pair < 2 * exposure["fwhm_pixels"])
        clean = ~brighter.any(axis=1) & ~saturated
        clean &= (x > 3) & (x < nx - 4) & (y > 3) & (y < ny - 4)
        bad = reduced.weight[np.clip(np.rint(y).astype(int), 0, ny - 1),
                             np.clip(np.rint(x).astype(int), 0, nx - 1)] == 0  # fmt: skip
        chosen = (snr > 10) & clean & ~bad
        wanted += int(chosen.sum())
        match = 0.5 * exposure["fwhm_pixels"]
        recovered += int((distance[chosen].min(axis=1, initial=np.inf) < match).sum())
        measured_snr = sources["flux_aper"] / sources["fluxerr_aper"]
        # clean detections: aperture neither cut by the edge (16) nor touching masked
        # pixels (32, 1024: saturated stars' fragments, cosmic rays, bad columns)
        good = (measured_snr > 10) & ((sources["flags"] & (16 | 32 | 1024)) == 0)
        nearest = distance.min(axis=0, initial=np.inf)
        detected += int(good.sum())
        spurious += int((good & (nearest > exposure["fwhm_pixels"])).sum())
    assert wanted > 150
    assert recovered / wanted >= 0.95, (recovered, wanted)
    assert spurious / detected <= 0.01, (spurious, detected)


def test_aperture_fluxes_equal_photutils(reduced_frames) -> None:
    import sep
    from photutils.aperture import CircularAperture, aperture_photometry

    compared = 0
    for reduced, exposure, _chip, _model in reduced_frames[:4]:
        radius = 1.5 * exposure["fwhm_pixels"]
        found = extract(reduced.image, None, aperture_radius=radius, gain=GAIN)
        data = reduced.image.astype(np.float64)
        background = sep.Background(data, bw=64, bh=64, fw=3, fh=3)
        subtracted = data - background.back()
        positions = np.column_stack([found.sources["x"], found.sources["y"]])
        aperture = CircularAperture(positions, r=radius)
        theirs = np.asarray(
            aperture_photometry(subtracted, aperture, method="exact")["aperture_sum"]
        )
        ours = found.sources["flux_aper"]
        inside = (found.sources["flags"] & 16) == 0  # apertures not cut by the edge
        significant = inside & (ours > 10 * found.sources["fluxerr_aper"])
        compared += int(significant.sum())
        assert np.max(np.abs(ours[significant] / theirs[significant] - 1)) < 1e-3
    assert compared > 50


def test_reduce_then_sourcelist_stores_queryable_sources(tmp_path_factory, database_url) -> None:
    from awe.db.engine import open_database
    from awe.db.frames import Source, SourceList
    from awe.dpu import Processor
    from tests.pipeline_night import NIGHT, ingested_night

    database = open_database(database_url)
    ingested_night(tmp_path_factory.getbasetemp(), database, chips=("ccd51",))
    dpu = Processor(database_url=database_url, username="alice")
    job_id = dpu.run("Reduce>SourceList", i="WFI", d=NIGHT, c="ccd51", f="#842", C=1)
    (status,) = dpu.wait(job_id, timeout=300)
    logs = "\n".join(dpu.get_logs(job_id)[job_id])
    assert status.counts["N"] == 8, logs  # 4 Reduce, 4 SourceList
    lists = SourceList.select(database=dpu.database, instrument="WFI", filter="#842")
    assert len(lists) == 4 and {sl.chip for sl in lists} == {"ccd51"}
    first = lists[0]
    sources = first.get_sources(database=dpu.database)
    assert len(sources) == first.results["sources"] > 20
    clean = first.get_sources(database=dpu.database, max_flags=3)
    assert 0 < len(clean) <= len(sources) and all(s.flags <= 3 for s in clean)
    bright = max(clean, key=lambda s: s.flux_aper)
    near = Source.select(ra=bright.ra, dec=bright.dec, radius=1.0, database=dpu.database)
    assert bright.id in {s.id for s in near}
    assert all(s.source_list_id in {sl.id for sl in lists} for s in near)
    assert "Found " in logs and "median FWHM" in logs
    database.dispose()


SEXTRACTOR_PARAMETERS = ("X_IMAGE", "Y_IMAGE", "FLUX_APER", "FLUXERR_APER", "FLUX_AUTO",
                         "FLUXERR_AUTO", "FLAGS")  # fmt: skip


def source_extractor(image: np.ndarray, folder, radius: float) -> dict[str, np.ndarray]:
    """The catalogue of Debian's ``source-extractor`` (SExtractor 2.25) on ``image``,
    configured as :func:`extract` is (threshold, minimum area, SExtractor's default 3x3
    filter, deblending, cleaning, 64-pixel background mesh, aperture, Kron parameters,
    gain)."""
    import subprocess

    from astropy.io import fits
    from astropy.table import Table

    folder.mkdir(parents=True, exist_ok=True)
    fits.PrimaryHDU(image.astype(np.float32)).writeto(folder / "image.fits", overwrite=True)
    (folder / "default.conv").write_text("CONV NORM\n1 2 1\n2 4 2\n1 2 1\n")
    (folder / "wanted.param").write_text("\n".join(SEXTRACTOR_PARAMETERS) + "\n")
    settings = {
        "CATALOG_NAME": "catalogue.fits", "CATALOG_TYPE": "FITS_1.0",
        "PARAMETERS_NAME": "wanted.param", "DETECT_THRESH": "2.0", "ANALYSIS_THRESH": "2.0",
        "DETECT_MINAREA": "5", "FILTER": "Y", "FILTER_NAME": "default.conv",
        "DEBLEND_NTHRESH": "32", "DEBLEND_MINCONT": "0.005", "CLEAN": "Y", "CLEAN_PARAM": "1.0",
        "BACK_SIZE": "64", "BACK_FILTERSIZE": "3", "BACKPHOTO_TYPE": "GLOBAL",
        "PHOT_APERTURES": f"{2 * radius:.6f}", "PHOT_AUTOPARAMS": "2.5,3.5", "GAIN": str(GAIN),
        "SATUR_LEVEL": "1e9", "MAG_ZEROPOINT": "0", "VERBOSE_TYPE": "QUIET",
        "CHECKIMAGE_TYPE": "NONE", "MASK_TYPE": "NONE",  # neither masks neighbours
    }  # fmt: skip
    argv = ["source-extractor", "image.fits", "-c", "/dev/null"]
    for key, value in settings.items():
        argv += [f"-{key}", value]
    done = subprocess.run(argv, cwd=folder, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    table = Table.read(folder / "catalogue.fits", hdu=1)
    return {name: np.asarray(table[name]) for name in SEXTRACTOR_PARAMETERS}


def test_sources_agree_with_source_extractor(reduced_frames, tmp_path) -> None:
    """The same frames through Debian's SExtractor: >= 98 % of its S/N > 10 detections
    are ours within a pixel, median aperture and auto flux ratios within 1 %."""
    matched = wanted = 0
    aper, auto = [], []
    for index, (reduced, exposure, _chip, _model) in enumerate(reduced_frames[:4]):
        radius = 1.5 * exposure["fwhm_pixels"]
        ours = extract(reduced.image, None, aperture_radius=radius, gain=GAIN).sources
        theirs = source_extractor(reduced.image, tmp_path / str(index), radius)
        x, y = theirs["X_IMAGE"] - 1, theirs["Y_IMAGE"] - 1  # 1-based pixels
        significant = (theirs["FLUX_AUTO"] > 10 * theirs["FLUXERR_AUTO"]) & (theirs["FLAGS"] < 4)
        distance = np.hypot(x[:, None] - ours["x"][None], y[:, None] - ours["y"][None])
        nearest = distance.argmin(axis=1)
        close = distance[np.arange(x.size), nearest] < 1.0
        wanted += int(significant.sum())
        matched += int((significant & close).sum())
        both = significant & close & (ours["flags"][nearest] < 4)
        aper.extend(ours["flux_aper"][nearest[both]] / theirs["FLUX_APER"][both])
        auto.extend(ours["flux_auto"][nearest[both]] / theirs["FLUX_AUTO"][both])
    assert wanted > 100
    assert matched / wanted >= 0.98, (matched, wanted)
    assert abs(np.median(aper) - 1) < 0.01, np.percentile(aper, [5, 50, 95])
    assert abs(np.median(auto) - 1) < 0.01, np.percentile(auto, [5, 50, 95])
