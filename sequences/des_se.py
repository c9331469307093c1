"""SE: DES single-epoch processing of one DECam exposure, CCD by CCD (``SE_job_mod.sh``).

``dpu.run('SE', E=668439, b='i', n='20170817', r=4, p=7, c='1,3-60,62', d='persistent',
m='gw', C=1, a='/data/des')`` runs four steps, each CCD its own task:

1. ``SEDetrend`` per CCD: overscan and crosstalk, bias, BPM, linearity, gain and flat with a
   weight plane; saturation and bleed-trail masks; detections at 10 sigma (sep); the
   astrometric solution (TAN-SIP) against the HEALPix reference catalogue; cosmic-ray mask;
   the compressed sky.
2. ``SESky`` per exposure: waits for exactly that exposure's CCDs, combines their
   compressed skies and fits one model over the focal plane.
3. ``SECatalog`` per CCD: subtracts the exposure's sky model, detects at 1.5 sigma, builds
   the CCD's PSF and measures PSF photometry into ``..._fullcat.fits``; writes the
   ``..._immask.fits.fz`` image (SCI, MSK, WGT), the ``.psf`` model and the ``.out``
   corners.
4. ``SECalibrate`` per exposure (``C=1``, not with ``t=1``): BLISS zeropoints,
   ``Zero_D<exp8>_<cc>_rRpP.csv``, ``allZP_D<exp8>_rRpP.csv`` and the calibrated catalogues.

A CCD already complete in an earlier job of the same exposure, band and rXpY (the job
database says so, not the presence of files) is not processed again: its files, checked
by hash, are reported once more. ``O=1`` processes it anyway.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from awe.sequence import NothingToDo, Option, SelectionContext, TaskContext, Unit, declare_chain
from awe.sequence import sequence as declare

OPTIONS = [
    Option("E", "expnum", int, required=True, help="exposure number, e.g. 668439"),
    Option("b", "band", str, required=True, help="band: u, g, r, i, z or Y"),
    Option("n", "nite", str, required=True, help="night of the exposure, YYYYMMDD"),
    Option("r", "rnum", int, 4, help="RNUM of the rXpY tag"),
    Option("p", "pnum", int, 7, help="PNUM of the rXpY tag (process parameters: pars=...)"),
    Option("c", "ccds", str, "1,3-60,62", help="CCDs, e.g. '1,3-60,62' (2 and 61 never run)"),
    Option("d", "destcache", str, "persistent", help="output cache: persistent or scratch"),
    Option("m", "schema", str, "gw", help="schema: gw or wsdiff"),
    Option("S", "season", int, help="season (dpNN) the exposure belongs to"),
    Option("C", "calibrate", int, 0, help="1: BLISS zeropoints (commit: commit=1)"),
    Option("j", "justcalib", int, 0, help="1: reuse the SE products, go straight to C"),
    Option("s", "single", int, 0, help="1: single-threaded (each CCD task already is)"),
    Option("Y", "y4", int, 0, help="1: force the Y4 calibration set"),
    Option("O", "overwrite", int, 0, help="1: redo CCDs already complete"),
    Option("t", "template", int, 0, help="1: template mode, stop after SE (no BLISS)"),
    Option("a", "archive", str, required=True, help="archive folder: dts/, calib/, refcat/"),
]
PARAMETERS = {
    "SE.process_params.DETECT_THRESH_ASTROMETRY": 10.0,
    "SE.process_params.DETECT_THRESH": 1.5,
    "SE.process_params.SKY_BLOCK": 128,
    "SE.process_params.SKY_ORDER": 2,
    "SE.process_params.SKY_METHOD": "polynomial",  # or "pca"
    "SE.process_params.SKY_PCA_COMPONENTS": 2,
    "SE.process_params.PSF_RADIUS": 15,
    "SE.process_params.SIP_DEGREE": 3,
}
DES_BANDS = ("u", "g", "r", "i", "z", "Y")
#: Overscan method (awe.science.overscan): the per-row median of the overscan, unsmoothed.
DES_OVERSCAN = 5
STEPS = ("SEDetrend", "SESky", "SECatalog", "SECalibrate")
#: What the tasks import, imported once by the local runner before it forks its workers:
#: about 1 s a task otherwise, and the exposure steps run alone.
PRELOAD = (
    "astropy.io.fits",
    "astropy.wcs",
    "sep",
    "awe.data.des_archive",
    "awe.data.des_bliss",
    "awe.data.fits",
    "awe.science.des_detrend",
    "awe.science.des_psf",
    "awe.science.des_sky",
    "awe.science.sources",
)


# ---- selection ----
def _check(options: Mapping[str, Any]) -> None:
    from awe.sequence import NoInputs

    if options["band"] not in DES_BANDS:
        raise NoInputs(f"band {options['band']!r} is not a DECam band; use one of {DES_BANDS}")
    nite = str(options["nite"])
    if len(nite) != 8 or not nite.isdigit():
        raise NoInputs(f"nite {nite!r} is not YYYYMMDD (e.g. '20170817')")
    for name, allowed in (("destcache", ("persistent", "scratch")), ("schema", ("gw", "wsdiff"))):
        if options[name] not in allowed:
            raise NoInputs(f"{name} {options[name]!r}: choose {' or '.join(allowed)}")


def _ccds(options: Mapping[str, Any]) -> list[int]:
    from awe.data.des_archive import parse_ccds
    from awe.data.errors import DataError
    from awe.data.instruments import get_instrument
    from awe.sequence import NoInputs

    decam = get_instrument("DECam")
    try:
        return parse_ccds(options["ccds"], [c.number for c in decam.working_chips])
    except DataError as err:
        raise NoInputs(str(err)) from None


def complete_ccds(database: Any, options: Mapping[str, Any]) -> dict[int, int]:
    """CCD -> the earlier job in which it completed (its SECatalog ended N) for the same
    exposure, band, rXpY, archive and cache."""
    from sqlalchemy import select

    from awe.db.models import Job, Task, TaskState

    same = ("expnum", "band", "rnum", "pnum", "archive", "destcache", "schema", "nite")
    done: dict[int, int] = {}
    with database.session() as session:
        rows = session.execute(
            select(Job.id, Job.options, Task.key)
            .join(Task, Task.job_id == Job.id)
            .where(Task.sequence == "SECatalog", Task.state == TaskState.N)
        ).all()
    for job_id, job_options, key in rows:
        if all(job_options.get(k) == options.get(k) for k in same) and key:
            done[int(key.split("/")[1])] = job_id
    return done


def select_ccds(options: Mapping[str, Any], context: SelectionContext) -> list[Unit]:
    """One unit per CCD, in its exposure's group; completed CCDs carry the job they
    completed in, unless ``overwrite``."""
    _check(options)
    done = {} if options["overwrite"] else complete_ccds(context.database, options)
    expnum = int(options["expnum"])
    return [
        Unit(key=f"{expnum}/{ccd:02d}", inputs=({"complete_in": done.get(ccd)},), group=str(expnum))
        for ccd in _ccds(options)
    ]


def select_exposure(options: Mapping[str, Any], context: SelectionContext) -> list[Unit]:
    _check(options)
    return [Unit(key=str(int(options["expnum"])))]


# ---- helpers of the tasks ----
class _Run:
    """What every SE task derives from its options: names and folders."""

    def __init__(self, task: TaskContext) -> None:
        from awe.data.des_archive import Archive

        o = task.options
        self.options = o
        self.expnum, self.band, self.nite = int(o["expnum"]), o["band"], str(o["nite"])
        self.rnum, self.pnum = int(o["rnum"]), int(o["pnum"])
        self.archive = Archive.at(o["archive"])
        self.out = self.archive.output(o["destcache"], o["schema"], self.nite, self.expnum)
        self.out.mkdir(parents=True, exist_ok=True)
        self.parameters = task.parameters

    def stem(self, ccd: int) -> str:
        from awe.data.des_archive import product_stem

        return product_stem(self.expnum, self.band, ccd, self.rnum, self.pnum)

    def exposure_tag(self) -> str:
        return f"D{self.expnum:08d}_r{self.rnum}p{self.pnum}"

    def parameter(self, name: str) -> Any:
        return self.parameters[f"SE.process_params.{name}"]


def _ccd_of(task: TaskContext) -> int:
    return int(str(task.unit.key).split("/")[1])


def _report(task: TaskContext, path: Path, kind: str, **metadata: Any) -> None:
    task.add_product(path, kind, exposure_number=int(task.options["expnum"]), **metadata)


def _reuse(task: TaskContext, files: dict[str, Path], why: str) -> bool:
    """Report existing files again instead of remaking them; False if one is missing."""
    if not all(path.exists() for path in files.values()):
        missing = [str(p) for p in files.values() if not p.exists()]
        task.log.warning("%s, but %s is missing: processing again", why, ", ".join(missing))
        return False
    for kind, path in files.items():
        _report(task, path, kind, ccd=_ccd_of(task), reused=True)
    task.log.info("%s: its products are reported again, not remade (O=1 redoes it)", why)
    return True


def _detrend_files(run: _Run, ccd: int) -> dict[str, Path]:
    return {
        "SEReducedCCD": run.out / f"{run.stem(ccd)}_red.fits",
        "SECompressedSky": run.out / f"{run.stem(ccd)}_bkg.fits",
    }


def _catalog_files(run: _Run, ccd: int) -> dict[str, Path]:
    stem = run.stem(ccd)
    return {
        "SEImmask": run.out / f"{stem}_immask.fits.fz",
        "SEFullcat": run.out / f"{stem}_fullcat.fits",
        "SEPsf": run.out / f"{stem}.psf",
        "SECorners": run.out / f"{stem}.out",
    }


def _skip_reason(task: TaskContext) -> str | None:
    complete_in = task.unit.inputs[0].get("complete_in") if task.unit.inputs else None
    if task.options["justcalib"]:
        return "j=1: SE skipped, going straight to calibration"
    if complete_in is not None:
        return f"CCD complete in job {complete_in}"
    return None


def _amp_layout(header: Any) -> list[Any]:
    from awe.data.instruments import Section
    from awe.science.des_detrend import AmpLayout

    data = Section.parse(header["DATASEC"])
    layouts = []
    for amp in ("A", "B"):
        section = Section.parse(header[f"DATASEC{amp}"])
        overscan = Section.parse(header[f"BIASSEC{amp}"])
        layouts.append(
            AmpLayout(
                name=amp,
                data=section.slices,
                overscan=(section.slices[0], overscan.slices[1]),
                trimmed_columns=slice(section.x1 - data.x1, section.x2 - data.x1 + 1),
                reads_left=overscan.x2 < section.x1,
            )
        )
    return layouts


def _per_pixel(layouts: list[Any], shape: tuple[int, int], values: Mapping[str, float]):
    out = np.empty(shape, np.float32)
    for amp in layouts:
        out[:, amp.trimmed_columns] = values[amp.name]
    return out


# ---- step 1: per CCD ----
@declare(
    options=OPTIONS,
    parameters=PARAMETERS,
    preload=PRELOAD,
    fan_out="chip",
    select=select_ccds,
    estimate=30.0,
)
def SEDetrend(task: TaskContext) -> None:
    """DES SE per CCD: crosstalk, detrending, masks, astrometry, compressed sky."""
    from astropy.io import fits
    from astropy.wcs import WCS

    from awe.data.des_archive import read_calibration, reference_stars
    from awe.data.fits import write_hdus
    from awe.data.instruments import get_instrument
    from awe.science import des_detrend as dt
    from awe.science import overscan
    from awe.science.astrometry import pixel_to_sky, solve_tan_sip, tangent_plane
    from awe.science.sources import detect, masked_background

    run, ccd = _Run(task), _ccd_of(task)
    files = _detrend_files(run, ccd)
    why = _skip_reason(task)
    if why and _reuse(task, files, why):
        return
    raw_path = run.archive.raw(run.nite, run.expnum)
    if not raw_path.exists():
        raise FileNotFoundError(
            f"raw exposure {raw_path} not found: stage it into the archive's dts/{run.nite}/"
        )
    with fits.open(raw_path) as hdul:
        primary = hdul[0].header.copy()
        found = [h for h in hdul[1:] if h.header.get("CCDNUM") == ccd]
        if not found:
            raise ValueError(f"{raw_path.name} has no extension with CCDNUM = {ccd}")
        header = found[0].header.copy()
        raw = found[0].data
    if str(primary.get("BAND", "")).strip() not in ("", run.band):
        raise ValueError(f"{raw_path.name} was taken in band {primary['BAND']}, not {run.band}")
    decam = get_instrument("DECam")
    layouts = _amp_layout(header)
    image = overscan.correct(raw, [a.region() for a in layouts], method=DES_OVERSCAN)
    image = dt.crosstalk_correct(image, layouts, decam.crosstalk)
    set_name = run.archive.calibration_set(run.expnum, force="Y4" if task.options["y4"] else None)
    calibration = read_calibration(run.archive.calibration_file(set_name, ccd))
    task.log.info("CCD %02d: calibration set %s", ccd, set_name)
    shape = image.shape
    if calibration["bias"].shape != shape:
        raise ValueError(
            f"calibration {set_name} CCD {ccd} is {calibration['bias'].shape}, the image {shape}"
        )
    gain = _per_pixel(layouts, shape, calibration["gain"])
    science, mask = dt.detrend(
        image,
        bias=calibration["bias"],
        flat=calibration["flat"],
        bpm=calibration["bpm"],
        gain=gain,
        linearity=calibration["linearity"],
        saturation=_per_pixel(layouts, shape, calibration["saturation"]),
    )
    mask = dt.bleed_mask(mask)
    background, noise = masked_background(science, mask)
    mask = dt.cosmic_ray_mask(science - background, mask, noise)
    sky = float(np.median(background))
    read_noise = _per_pixel(layouts, shape, calibration["read_noise_e"])
    weight = dt.weight_plane(science, sky, read_noise, calibration["flat"], mask)
    # Astrometry: detections at 10 sigma against the reference catalogue.
    header_wcs = WCS(header)
    data_x0 = int(header["DATASEC"].strip("[]").split(",")[0].split(":")[0]) - 1
    data_y0 = int(header["DATASEC"].strip("[]").split(",")[1].split(":")[0]) - 1

    def guess(x, y):  # trimmed 1-based pixels -> sky, through the raw header's WCS
        return header_wcs.all_pix2world(np.asarray(x) + data_x0, np.asarray(y) + data_y0, 1)

    subtracted = science - background
    objects, x, y, _ = detect(
        subtracted, np.full(shape, noise), mask, run.parameter("DETECT_THRESH_ASTROMETRY")
    )
    ny, nx = shape
    corners_ra, corners_dec = guess(np.array([1, nx, nx, 1]), np.array([1, 1, ny, ny]))
    reference = reference_stars(run.archive.refcat(), corners_ra, corners_dec)
    cards, fit = solve_tan_sip(
        x + 1,
        y + 1,
        guess,
        reference["ra"],
        reference["dec"],
        ((nx + 1) / 2, (ny + 1) / 2),
        degree=int(run.parameter("SIP_DEGREE")),
    )
    task.log.info(
        "CCD %02d: %d detections, astrometry %d matched, rms %.3f\"",
        ccd, len(objects), fit["matched"], fit["rms_arcsec"],
    )  # fmt: skip
    # The compressed sky, with each block's place in the exposure's tangent plane.
    block = int(min(run.parameter("SKY_BLOCK"), max(8, min(shape) // 4)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        blocks = dt.sky_compress(science, mask, block)
    by, bx = np.mgrid[0 : blocks.shape[0], 0 : blocks.shape[1]]
    block_ra, block_dec = pixel_to_sky(cards, (bx + 0.5) * block + 0.5, (by + 0.5) * block + 0.5)
    pointing = (_ra_degrees(primary["TELRA"]), _degrees(primary["TELDEC"]))
    u, v = tangent_plane(block_ra, block_dec, *pointing)
    # Write the reduced CCD (image, mask, weight) with its solved WCS, and the blocks.
    out_header = fits.Header()
    for key in ("EXPNUM", "BAND", "EXPTIME", "MJD-OBS", "AIRMASS", "TELRA", "TELDEC", "OBJECT"):
        if key in primary:
            out_header[key] = primary[key]
    out_header["CCDNUM"] = ccd
    out_header["DETPOS"] = header.get("EXTNAME", "")
    out_header["CALSET"] = set_name
    out_header["SKYBRITE"] = (sky, "sky level (electrons)")
    out_header["SKYSIGMA"] = (noise, "sky noise (electrons)")
    out_header["ASTRMS"] = (fit["rms_arcsec"], "astrometric rms (arcsec)")
    out_header["ASTNMAT"] = (fit["matched"], "stars in the astrometric fit")
    for key, value in cards.items():
        out_header[key] = value
    write_hdus(
        files["SEReducedCCD"],
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(science, out_header, name="SCI"),
            fits.ImageHDU(mask, name="MSK"),
            fits.ImageHDU(weight, name="WGT"),
        ],
    )
    columns = [
        fits.Column(name="U", format="D", array=u.ravel()),
        fits.Column(name="V", format="D", array=v.ravel()),
        fits.Column(name="SKY", format="D", array=blocks.ravel()),
    ]
    sky_header = fits.Header(
        {
            "CCDNUM": ccd,
            "BLOCK": block,
            "NBLOCKX": blocks.shape[1],
            "NBLOCKY": blocks.shape[0],
            "PNTRA": pointing[0],
            "PNTDEC": pointing[1],
        }
    )
    write_hdus(
        files["SECompressedSky"],
        [fits.PrimaryHDU(), fits.BinTableHDU.from_columns(columns, sky_header)],
    )
    for kind, path in files.items():
        _report(task, path, kind, ccd=ccd, astrometric_rms=fit["rms_arcsec"])
    _log_peak_memory(task, ccd)


def _log_peak_memory(task: TaskContext, ccd: int) -> None:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    task.log.info("CCD %02d: peak memory %.0f MB", ccd, peak)


def _ra_degrees(value: Any) -> float:
    """TELRA as degrees: DECam writes it sexagesimal in hours."""
    return 15.0 * _degrees(value) if isinstance(value, str) else float(value)


def _degrees(value: Any) -> float:
    if not isinstance(value, str):
        return float(value)
    sign = -1.0 if value.strip().startswith("-") else 1.0
    d, m, s = (abs(float(part)) for part in value.split(":"))
    return sign * (d + m / 60 + s / 3600)


# ---- step 2: per exposure ----
@declare(
    options=OPTIONS,
    parameters=PARAMETERS,
    preload=PRELOAD,
    fan_out="exposure",
    select=select_exposure,
    tolerant=True,  # the CCDs that worked go on: a failed one is reported, not contagious
    estimate=5.0,
)
def SESky(task: TaskContext) -> None:
    """DES SE per exposure: combine the CCDs' compressed skies and fit one sky model."""
    from astropy.io import fits

    from awe.science.des_sky import fit_pca_sky, fit_sky

    run = _Run(task)
    pieces = sorted(
        (p for p in task.upstream if p.kind == "SECompressedSky"), key=lambda p: p.metadata["ccd"]
    )
    if not pieces:
        raise ValueError("no compressed sky from any CCD of this exposure")
    u, v, values, grids = [], [], [], []
    pointing = None
    for product in pieces:
        with fits.open(product.path) as hdul:
            table, header = hdul[1].data, hdul[1].header
            pointing = (header["PNTRA"], header["PNTDEC"])
            u.append(table["U"])
            v.append(table["V"])
            values.append(table["SKY"])
            grids.append((header["BLOCK"], header["NBLOCKY"], header["NBLOCKX"]))
    method = run.parameter("SKY_METHOD")
    if method == "pca":
        if len(set(grids)) > 1:
            raise ValueError(f"the CCDs' sky blocks differ ({sorted(set(grids))}): no PCA sky")
        blocks = np.array(values).reshape(len(pieces), *grids[0][1:])
        model = fit_pca_sky(blocks, int(run.parameter("SKY_PCA_COMPONENTS")))
        model["block"] = grids[0][0]
    elif method == "polynomial":
        # The polynomial's order grows with the CCDs it spans: a few CCDs cannot hold a curve.
        order = int(run.parameter("SKY_ORDER"))
        order = min(order, 0 if len(pieces) < 3 else 1 if len(pieces) < 10 else order)
        model = fit_sky(np.concatenate(u), np.concatenate(v), np.concatenate(values), order)
        model["method"] = "polynomial"
    else:
        raise ValueError(f"SKY_METHOD {method!r}: choose 'polynomial' or 'pca'")
    model.update(pointing=list(pointing), ccds=[p.metadata["ccd"] for p in pieces])
    path = run.out / f"D{run.expnum:08d}_{run.band}_r{run.rnum}p{run.pnum}_skyfit.json"
    path.write_text(json.dumps(model, indent=1) + "\n")
    task.log.info(
        "sky over %d CCDs (%s): %d of %d blocks used, rms %.2f e-",
        len(pieces), method, model["blocks_used"], model["blocks"], model["rms"],
    )  # fmt: skip
    _report(task, path, "SESkyFit")


# ---- step 3: per CCD ----
@declare(
    options=OPTIONS,
    parameters=PARAMETERS,
    preload=PRELOAD,
    fan_out="chip",
    select=select_ccds,
    estimate=30.0,
)
def SECatalog(task: TaskContext) -> None:
    """DES SE per CCD: sky subtraction, PSF model, PSF photometry (fullcat), immask, corners."""
    from astropy.io import fits

    from awe.data.fits import write_hdus
    from awe.science import des_psf
    from awe.science.astrometry import pixel_to_sky, tangent_plane
    from awe.science.des_sky import evaluate_pca_sky, evaluate_sky, interpolate_grid
    from awe.science.sources import detect, masked_background

    run, ccd = _Run(task), _ccd_of(task)
    files = _catalog_files(run, ccd)
    why = _skip_reason(task)
    if why and _reuse(task, files, why):
        return
    (sky_fit,) = [p for p in task.upstream if p.kind == "SESkyFit"]
    model = json.loads(Path(sky_fit.path).read_text())
    if ccd not in model["ccds"]:  # its SEDetrend failed: the exposure went on without it
        raise NothingToDo(f"CCD {ccd} was not detrended in this job: the sky was fit without it")
    reduced = _detrend_files(run, ccd)["SEReducedCCD"]
    with fits.open(reduced) as hdul:
        header = hdul["SCI"].header.copy()
        science = hdul["SCI"].data.astype(np.float32)
        mask = hdul["MSK"].data.astype(np.int32)
        weight = hdul["WGT"].data.astype(np.float32)
    cards = {k: header[k] for k in header if k.startswith(("CRPIX", "CRVAL", "CD", "A_", "B_"))}
    ny, nx = science.shape
    # The exposure's sky at this CCD, on a coarse grid, interpolated to every pixel.
    if model.get("method") == "pca":
        coarse = evaluate_pca_sky(model, model["ccds"].index(ccd))
        block = int(model["block"])
        gx = (np.arange(coarse.shape[1]) + 0.5) * block - 0.5  # block centres, 0-based
        gy = (np.arange(coarse.shape[0]) + 0.5) * block - 0.5
    else:
        step = 16
        gx, gy = np.arange(0, nx + step, step, float), np.arange(0, ny + step, step, float)
        ra, dec = pixel_to_sky(cards, gx[None, :] + 1, gy[:, None] + 1)
        coarse = evaluate_sky(model, *tangent_plane(ra, dec, *model["pointing"]))
    sky = interpolate_grid(coarse, gx, gy, nx, ny)
    science -= sky.astype(np.float32)
    # SExtractor's own background map on top of the exposure's sky, as DES runs it.
    local, _ = masked_background(science, mask, box=64)
    science -= local.astype(np.float32)
    noise = np.where(weight > 0, 1 / np.sqrt(np.where(weight > 0, weight, 1)), 1e6).astype(
        np.float32
    )
    objects, x, y, aperture = detect(science, noise, mask, run.parameter("DETECT_THRESH"))
    # PSF from bright, unsaturated, isolated stars well inside the CCD.
    radius = int(run.parameter("PSF_RADIUS"))
    radius = min(radius, (min(nx, ny) - 3) // 4)
    peak = objects["peak"]
    saturated = des_psf.cut_stamps(mask & 2, x, y, 2).any(axis=(1, 2))  # within 2 pixels
    inside = (x > radius + 2) & (x < nx - radius - 3) & (y > radius + 2) & (y < ny - radius - 3)
    # Isolated: no neighbour within the stamp brighter than 5 % of the star.
    distance = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])
    np.fill_diagonal(distance, np.inf)
    bright = objects["flux"][None, :] > 0.05 * objects["flux"][:, None]
    isolated = ~((distance < radius) & bright).any(axis=1)
    candidates = np.flatnonzero(
        inside & isolated & ~saturated & (objects["flag"] == 0) & (peak > 20 * np.median(noise))
    )
    chosen = candidates[np.argsort(-objects["flux"][candidates])][:40]
    stack = des_psf.build_psf(science, x[chosen], y[chosen], radius)
    profile = des_psf.fit_moffat(stack)
    psf = des_psf.moffat(radius, profile["fwhm"], profile["beta"])
    flux, flux_err, chi2 = des_psf.psf_photometry(science, weight, profile, x, y, radius)
    fwhm = profile["fwhm"]
    # Star-likeness: the aperture flux against what the PSF predicts inside the same circle.
    grid = np.arange(-radius, radius + 1)
    fraction = psf[np.hypot(grid[None, :], grid[:, None]) <= 3.0].sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = aperture / (flux * fraction) - 1
    class_star = np.where(np.abs(spread) < 0.05, 0.95, 0.05)
    flags = objects["flag"].astype(np.int32) & 3
    flags |= np.where(saturated, 4, 0)
    flags |= np.where((x < 3) | (x > nx - 4) | (y < 3) | (y > ny - 4), 8, 0)
    ra_obj, dec_obj = pixel_to_sky(cards, x + 1, y + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mag = np.where(flux > 0, -2.5 * np.log10(flux) + 25.0, 99.0)
        magerr = np.where(flux > 0, 1.0857 * flux_err / flux, 99.0)
    columns = {
        "NUMBER": ("J", np.arange(1, len(x) + 1)),
        "X_IMAGE": ("D", x + 1),
        "Y_IMAGE": ("D", y + 1),
        "ALPHAWIN_J2000": ("D", ra_obj),
        "DELTAWIN_J2000": ("D", dec_obj),
        "FLUX_PSF": ("D", flux),
        "FLUXERR_PSF": ("D", flux_err),
        "MAG_PSF": ("D", mag),
        "MAGERR_PSF": ("D", magerr),
        "FLUX_APER": ("D", aperture),
        "CHI2_PSF": ("D", chi2),
        "SPREAD_MODEL": ("D", spread),
        "CLASS_STAR": ("D", class_star),
        "FLAGS": ("J", flags),
        "FWHM_IMAGE": ("D", np.full(len(x), fwhm)),
        "A_IMAGE": ("D", objects["a"]),
        "B_IMAGE": ("D", objects["b"]),
        "THETA_IMAGE": ("D", np.degrees(objects["theta"])),
    }
    header["FWHM"] = (fwhm, "PSF FWHM (pixels)")
    header["ELLIPTIC"] = (
        float(np.median(1 - objects["b"][chosen] / objects["a"][chosen])),
        "median ellipticity of the PSF stars",
    )
    header["NPSFSTAR"] = (len(chosen), "stars in the PSF model")
    table = fits.BinTableHDU.from_columns(
        [fits.Column(name=n, format=f, array=a) for n, (f, a) in columns.items()],
        name="LDAC_OBJECTS",
    )
    table.header["EXPNUM"], table.header["CCDNUM"], table.header["BAND"] = run.expnum, ccd, run.band
    write_hdus(files["SEFullcat"], [fits.PrimaryHDU(), table])
    write_hdus(
        files["SEImmask"],
        [
            fits.PrimaryHDU(),
            fits.CompImageHDU(science, header, name="SCI", compression_type="RICE_1"),
            fits.CompImageHDU(mask, name="MSK", compression_type="RICE_1"),
            fits.CompImageHDU(weight, name="WGT", compression_type="RICE_1"),
        ],
    )
    write_hdus(
        files["SEPsf"],
        [
            fits.PrimaryHDU(
                psf.astype(np.float32),
                fits.Header({"FWHM": fwhm, "BETA": profile["beta"], "NSTARS": len(chosen)}),
            )
        ],
    )
    corner_ra, corner_dec = pixel_to_sky(
        cards, np.array([(nx + 1) / 2, 1, nx, nx, 1]), np.array([(ny + 1) / 2, 1, 1, ny, ny])
    )
    files["SECorners"].write_text(
        " ".join(
            [files["SEImmask"].name, str(run.expnum), run.band, f"{ccd:02d}"]
            + [f"{a:.6f} {d:.6f}" for a, d in zip(corner_ra, corner_dec, strict=False)]
        )
        + "\n"
    )
    task.log.info(
        "CCD %02d: %d objects, PSF from %d stars, FWHM %.2f px", ccd, len(x), len(chosen), fwhm
    )
    for kind, path in files.items():
        _report(task, path, kind, ccd=ccd)
    _log_peak_memory(task, ccd)


# ---- step 4: per exposure ----
@declare(
    options=OPTIONS,
    parameters=PARAMETERS,
    preload=PRELOAD,
    fan_out="exposure",
    select=select_exposure,
    tolerant=True,  # the CCDs that worked go on: a failed one is reported, not contagious
    estimate=10.0,
)
def SECalibrate(task: TaskContext) -> None:
    """DES SE per exposure: BLISS zeropoints of every CCD (with C=1)."""
    if not task.options["calibrate"]:
        raise NothingToDo("BLISS calibration not asked for (C=0)")
    if task.options["template"]:
        raise NothingToDo("template mode (t=1) stops after SE")
    from awe.data.des_bliss import calibrate_exposure

    run = _Run(task)
    catalogues = {
        int(p.metadata["ccd"]): Path(p.path) for p in task.upstream if p.kind == "SEFullcat"
    }
    written = calibrate_exposure(
        run.archive, run.out, run.expnum, run.band, run.rnum, run.pnum, catalogues, task.log
    )
    for kind, path, ccd in written:
        _report(task, path, kind, ccd=ccd) if ccd is not None else _report(task, path, kind)


declare_chain(
    "SE", STEPS, "DES single-epoch processing of an exposure, CCD by CCD (+ BLISS with C=1)"
)
