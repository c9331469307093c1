"""Photcat and Photom: the photometric pipeline of Astro-WISE, on standard fields.

**Photcat** (per CCD of each reduced standard-field exposure) extracts the sources with
sep in an aperture of several FWHM (total fluxes), solves the CCD's astrometry against the
reference catalogue (so that the stars pair up whatever the pointing error), and keeps the
matched standard stars with their instrumental and catalogue magnitudes in a
PhotSrcCatalog (a FITS table), with the frame's effective zeropoint ``ZP - k X``.

**Photom** (one task per filter) fits every chip's zeropoint and the night's extinction
to the PhotSrcCatalogs of all chips and airmasses (:mod:`awe.science.photometry`) and
writes one PhotometricParameters per chip, which Regrid applies. With standard fields at
a single airmass, give the extinction: ``ext=0.08``.

``dpu.run('Reduce>Photcat', i='WFI', d='2000-04-28', o='SA*', refcat='~/night/refcat', C=1)``
then ``dpu.run('Photom', i='WFI', d='2000-04-28', f='#842', C=1)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from awe.sequence import NoInputs, Option, SelectionContext, TaskContext, Unit, sequence
from sequences.astrometry import REFCAT, read_refcat, with_refcat
from sequences.imaging import (
    CHIP,
    DATE,
    FILTER,
    INSTRUMENT,
    OBJECT,
    frame_input,
    inputs_of,
    per_chip_units,
    product_keys,
    select_frames,
    stem,
)

PHOTCAT_PARAMETERS = {
    "PhotSrcCatalog.process_params.DETECT_THRESH": 5.0,
    "PhotSrcCatalog.process_params.MIN_SNR": 20.0,
    "PhotSrcCatalog.process_params.MAX_OFFSET_ARCSEC": 40.0,
}


def measure_standards(
    image: Any,
    weight: Any,
    guess: Any,
    stars: Mapping[str, Any],
    band: str,
    exposure_time: float,
    params: Mapping[str, float] = PHOTCAT_PARAMETERS,
) -> dict[str, Any]:
    """The standard stars of one reduced CCD: total instrumental magnitudes (per second)
    paired with the catalogue's ``mag_<band>``, through an astrometric solution of the CCD
    (``guess``: its header WCS)."""
    import numpy as np

    from awe.science.astrometry import proj_plane_scale_arcsec, solve
    from awe.science.photometry import (
        APERTURE_FWHM,
        TOTAL_FWHM,
        aperture_correction,
        instrumental_magnitudes,
        point_like,
    )
    from awe.science.sources import FLAG_BAD_PIXELS, extract

    threshold = params["PhotSrcCatalog.process_params.DETECT_THRESH"]
    first = extract(image, weight, threshold=threshold, aperture_radius=6.0).sources
    clean = (first["flags"] == 0) & (first["flux_aper"] > 20 * first["fluxerr_aper"])
    fwhm = float(np.median(first["fwhm"][clean])) if clean.any() else 3.0
    # the same detections measured in a small and in a "total" aperture
    s = extract(image, weight, threshold=threshold, aperture_radius=APERTURE_FWHM * fwhm).sources
    total = extract(image, weight, threshold=threshold, aperture_radius=TOTAL_FWHM * fwhm).sources
    snr = s["flux_aper"] / np.maximum(s["fluxerr_aper"], 1e-30)
    # clean cores (no saturated or masked pixel); a masked pixel (a cosmic ray) in the
    # outskirts of the large aperture hardly matters
    stellar = point_like(s["peak"], s["flux_aper"])
    bright = stellar & (s["flags"] == 0) & ((total["flags"] & ~FLAG_BAD_PIXELS) == 0) & (snr > 30)
    correction, n_bright = aperture_correction(
        s["x"], s["y"], s["flux_aper"], total["flux_aper"], bright, (TOTAL_FWHM + 1) * fwhm
    )
    min_snr = params["PhotSrcCatalog.process_params.MIN_SNR"]
    usable = np.flatnonzero((s["flags"] <= 3) & (snr > min_snr))
    scale = proj_plane_scale_arcsec(guess)
    reach = params["PhotSrcCatalog.process_params.MAX_OFFSET_ARCSEC"] / scale
    ref_x, ref_y = guess.all_world2pix(stars["ra"], stars["dec"], 0)
    near = np.flatnonzero(
        (ref_x > -reach)
        & (ref_x < image.shape[1] + reach)
        & (ref_y > -reach)
        & (ref_y < image.shape[0] + reach)
    )
    solution = solve(
        s["x"][usable],
        s["y"][usable],
        stars["ra"][near],
        stars["dec"][near],
        guess,
        search_radius=reach,
        sip_degree=None,
    )
    reference = near[solution.reference_index]
    index = usable[solution.source_index]
    keep = stellar[index]  # all pairs placed the chip; only unsaturated stars measure it
    index, reference = index[keep], reference[keep]
    mag, err = instrumental_magnitudes(
        correction * s["flux_aper"][index], correction * s["fluxerr_aper"][index], exposure_time
    )
    key = f"mag_{band}"
    if key not in stars:
        raise NoInputs(f"the reference catalogue has no {key}: bands {sorted(stars)}")
    return {
        "x": s["x"][index],
        "y": s["y"][index],
        "ra": stars["ra"][reference],
        "dec": stars["dec"][reference],
        "mag_inst": mag,
        "magerr_inst": err,
        "mag_ref": stars[key][reference],
        "fwhm_pixels": fwhm,
        "aperture_correction": correction,
        "aperture_correction_stars": n_bright,
        "astrometric_rms_arcsec": solution.rms_arcsec,
    }


# ---- Photcat ----------------------------------------------------------------------------------
PHOTCAT_OPTIONS = [
    INSTRUMENT,
    DATE,
    CHIP,
    FILTER,
    OBJECT,
    Option("red", "red_filenames", list, help="reduced standard-field frames by file name"),
    REFCAT,
]


def select_standards(options: Mapping[str, Any], context: SelectionContext) -> list[Unit]:
    """Each reduced CCD of a standard field (object one of the instrument's standard
    fields, or ``o=``), with the catalogue files around it."""
    from awe.data.instruments import get_instrument
    from awe.db.frames import ReducedScienceFrame

    units = per_chip_units(
        ReducedScienceFrame,
        "image",
        options,
        context,
        options.get("red_filenames"),
        hint="; run Reduce on the standard fields first, or chain it: 'Reduce>Photcat'",
    )
    if not options.get("object") and not options.get("red_filenames"):
        fields = {
            f["name"]
            for f in get_instrument(options["instrument"]).simulation["standard"]["fields"]
        }
        units = [u for u in units if _unit_object(u) in fields]
        if not units:
            raise NoInputs(
                f"no reduced frame of a standard field ({', '.join(sorted(fields))}) for "
                f"{options['instrument']} {options.get('date') or ''}: give o= for another field"
            )
    return with_refcat(units, options)


def _unit_object(unit: Unit) -> str | None:
    from sequences.imaging import unit_frame_keys

    return unit_frame_keys(unit).get("object")


@sequence(
    options=PHOTCAT_OPTIONS,
    parameters=PHOTCAT_PARAMETERS,
    fan_out="chip",
    select=select_standards,
    estimate=3.0,
)
def Photcat(task: TaskContext) -> None:
    """Standard stars of a reduced standard field, matched to the reference catalogue."""
    import numpy as np
    from astropy.io import fits
    from astropy.wcs import WCS

    from awe.data.instruments import get_instrument
    from awe.science.photometry import frame_zeropoint

    stars = read_refcat(list(task.unit.inputs))
    for image in inputs_of(task, "ReducedScienceFrame", "image"):
        keys = image["keys"]
        with fits.open(image["path"], memmap=False) as hdul:
            data, header = hdul[0].data.astype(np.float32), hdul[0].header
            names = [h.name for h in hdul]
            weight = (hdul["FLAGS"].data == 0).astype(np.float32) if "FLAGS" in names else None
        band = get_instrument(keys["instrument"]).filter(keys["filter"]).band
        exposure_time = float(keys.get("exposure_time") or header["EXPTIME"])
        measured = measure_standards(
            data, weight, WCS(header), stars, band, exposure_time, task.parameters
        )
        zp = frame_zeropoint(measured["mag_inst"], measured["magerr_inst"], measured["mag_ref"])
        airmass = float(keys.get("airmass") or header.get("AIRMASS", 1.0))
        task.log.info(
            "%s: %d standard stars, ZP - k X = %.3f +- %.3f (rms %.3f) at airmass %.3f",
            image["name"],
            zp.n_stars,
            zp.value,
            zp.error,
            zp.rms,
            airmass,
        )
        columns = ("x", "y", "ra", "dec", "mag_inst", "magerr_inst", "mag_ref")
        table = fits.BinTableHDU.from_columns(
            [fits.Column(name=c.upper(), format="D", array=measured[c]) for c in columns],
            name="STANDARDS",
        )
        primary = fits.PrimaryHDU()
        for key in ("INSTRUME", "CHIPNAME", "FILTER", "OBJECT", "EXPTIME"):
            if key in header:
                primary.header[key] = header[key]
        primary.header["AIRMASS"] = airmass
        primary.header["ZPEFF"] = (zp.value, "effective zeropoint ZP - k X (mag)")
        primary.header["ZPERR"] = (zp.error, "its error (mag)")
        out = task.work_dir / f"{stem(image['name']).removesuffix('.red')}.photcat.fits"
        fits.HDUList([primary, table]).writeto(out, overwrite=True)
        results = {
            "effective_zeropoint": zp.value,
            "error": zp.error,
            "rms": zp.rms,
            "n_stars": zp.n_stars,
            "airmass": airmass,
            "fwhm_pixels": measured["fwhm_pixels"],
            "reduced": image["name"],
            "inputs": [image.get("frame_id")],
        }
        task.add_product(out, "PhotSrcCatalog", **product_keys(keys, results=results))


# ---- Photom -----------------------------------------------------------------------------------
PHOTOM_OPTIONS = [
    INSTRUMENT,
    DATE,
    FILTER,
    OBJECT,
    Option("ext", "extinction", float, help="extinction (mag/airmass) when not fitted"),
]


def select_catalogues(options: Mapping[str, Any], context: SelectionContext) -> list[Unit]:
    """One global task: the step before's PhotSrcCatalogs, or the stored ones."""
    from awe.db.frames import PhotSrcCatalog

    if not options.get("date"):
        raise NoInputs("Photom needs a night (d='YYYY-MM-DD'): it fits that night's extinction")
    if context.previous:
        return [Unit()]
    if not options.get("filter"):
        raise NoInputs("Photom needs a filter (f='#842'): the extinction is fitted per filter")
    found = select_frames(PhotSrcCatalog, {**options, "chip": None}, context)
    if not found:
        raise NoInputs(
            f"searched PhotSrcCatalog for {options['instrument']} night {options['date']} "
            f"filter {options['filter']}: found none; run Photcat on the standard fields"
        )
    root = context.env.data_root
    return [Unit(inputs=tuple(frame_input(f, root, "photcat") for f in found))]


@sequence(
    options=PHOTOM_OPTIONS,
    fan_out="global",
    select=select_catalogues,
    estimate=1.0,
    tolerant=True,  # a frame whose catalogue failed is left out of the fit, not fatal to it
)
def Photom(task: TaskContext) -> None:
    """Zeropoint per chip and the extinction of one filter and night."""
    from astropy.io import fits

    from awe.data.instruments import get_instrument
    from awe.science.photometry import solve_photometry
    from sequences.calibration_common import validity

    catalogues = inputs_of(task, "PhotSrcCatalog", "photcat")
    wanted = task.options.get("filter")
    if wanted:
        catalogues = [c for c in catalogues if c["keys"].get("filter") == wanted]
    filters = {c["keys"].get("filter") for c in catalogues}
    if len(filters) != 1:
        raise NoInputs(f"PhotSrcCatalogs of filters {sorted(filters, key=str)}: give one f=")
    rows = []
    for catalogue in catalogues:
        header = fits.getheader(catalogue["path"])
        rows.append((header["ZPEFF"], catalogue, header))
    effective = [r[0] for r in rows]
    errors = [float(h["ZPERR"]) for _, _, h in rows]
    airmass = [float(h["AIRMASS"]) for _, _, h in rows]
    chips = [c["keys"]["chip"] for _, c, _ in rows]
    solution = solve_photometry(
        effective, errors, airmass, chips, extinction=task.options.get("extinction")
    )
    keys = catalogues[0]["keys"]
    instrument = get_instrument(keys["instrument"])
    (filter_name,) = filters
    if solution.extinction_error is None:
        task.log.info("Extinction given: %.3f mag/airmass", solution.extinction)
    else:
        task.log.info(
            "Extinction %.3f +- %.3f mag/airmass from %d frames at airmass %.2f to %.2f",
            solution.extinction,
            solution.extinction_error,
            solution.n_frames,
            min(airmass),
            max(airmass),
        )
    valid_from, valid_to = validity(instrument, task.options["date"])
    for chip, (zeropoint, error) in solution.zeropoints.items():
        task.log.info("Zeropoint %s %s: %.3f +- %.3f", chip, filter_name, zeropoint, error)
        primary = fits.PrimaryHDU()
        primary.header["INSTRUME"], primary.header["CHIPNAME"] = instrument.name, chip
        primary.header["FILTER"] = filter_name
        primary.header["ZEROPNT"] = (zeropoint, "mag giving 1 ADU/s above the atmosphere")
        primary.header["EXTINCT"] = (solution.extinction, "mag per airmass")
        safe = "".join(ch for ch in filter_name if ch.isalnum())
        out = (
            task.work_dir
            / f"PhotometricParameters_{instrument.name}_{task.options['date']}_{chip}_{safe}.fits"
        )
        primary.writeto(out, overwrite=True)
        task.add_product(
            out,
            "PhotometricParameters",
            instrument=instrument.name,
            chip=chip,
            filter=filter_name,
            night=task.options["date"],
            is_valid=True,
            valid_from=valid_from,
            valid_to=valid_to,
            input_ids=[
                c["frame_id"] for c in catalogues if c.get("frame_id") and c["keys"]["chip"] == chip
            ],
            results={
                "zeropoint": zeropoint,
                "zeropoint_error": error,
                "extinction": solution.extinction,
                "extinction_error": solution.extinction_error,
                "rms": solution.rms,
                "frames": solution.n_frames,
            },
        )
