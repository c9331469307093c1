"""BLISS calibration of one SE exposure: read the CCDs' fullcats and the reference stars,
compute the zeropoints (:mod:`awe.science.des_bliss`), write the DES files::

    Zero_D<exp8>_<cc>_r<R>p<P>.csv    one CCD's zeropoint
    allZP_D<exp8>_r<R>p<P>.csv        every CCD's zeropoint after the exposure's rules
    D<exp8>_<cc>_r<R>p<P>_ZP.csv      the calibrated catalogue of one CCD
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from awe.data import refcat
from awe.data.des_archive import Archive, ccd_tag, reference_stars
from awe.science import des_bliss
from awe.science.astrometry import nearest_match

ZERO_COLUMNS = ["EXPNUM", "CCDNUM", "BAND", "NSTARS", "NCLIPPED", "ZP", "ZPERR", "ZPRMS", "FLAG"]


def _write_csv(path: Path, columns: list[str], rows: list[list[object]]) -> None:
    temporary = path.with_name(f".{path.name}.part")
    with temporary.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(columns)
        writer.writerows(rows)
    temporary.replace(path)


def calibrate_exposure(
    archive: Archive,
    out: Path,
    expnum: int,
    band: str,
    rnum: int,
    pnum: int,
    catalogues: dict[int, Path],
    log: logging.Logger | None = None,
) -> list[tuple[str, Path, int | None]]:
    """Zeropoints of every CCD in ``catalogues`` (CCD -> fullcat); returns what it wrote as
    (kind, path, ccd)."""
    from astropy.io import fits

    log = log or logging.getLogger(__name__)
    tag = f"r{rnum}p{pnum}"
    per_ccd: dict[int, des_bliss.Zeropoint] = {}
    all_deltas = []
    tables = {}
    pixels: dict[int, np.ndarray] = {}  # the reference pixels read, shared by the CCDs
    for ccd, path in sorted(catalogues.items()):
        with fits.open(path) as hdul:
            table = hdul[1].data
            tables[ccd] = {name: np.asarray(table[name]) for name in table.names}
        t = tables[ccd]
        chosen = des_bliss.select_stars(
            t["FLUX_PSF"], t["FLAGS"], t["CLASS_STAR"], t["SPREAD_MODEL"]
        )
        ra, dec = t["ALPHAWIN_J2000"][chosen], t["DELTAWIN_J2000"][chosen]
        if ra.size:
            reference = reference_stars(archive.refcat(), ra, dec, pixels)
            match, _ = nearest_match(ra, dec, reference["ra"], reference["dec"], 1.0)
            found = match >= 0
            ref_mag = refcat.band_magnitudes(reference, band)[match[found]]
            delta = des_bliss.deltas(t["FLUX_PSF"][chosen][found], ref_mag)
        else:
            delta = np.empty(0)
        all_deltas.append(delta)
        per_ccd[ccd] = des_bliss.clipped_zeropoint(delta)
    everything = des_bliss.clipped_zeropoint(np.concatenate(all_deltas) if all_deltas else [])
    final = des_bliss.exposure_zeropoints(per_ccd, everything)
    written: list[tuple[str, Path, int | None]] = []
    rows = []
    for ccd, zp in final.items():
        row = [expnum, ccd, band, zp.stars, zp.clipped, zp.zp, zp.error, zp.rms, zp.flag]
        rows.append(row)
        first = per_ccd[ccd]
        zero = out / f"Zero_D{expnum:08d}_{ccd_tag(ccd)}_{tag}.csv"
        _write_csv(
            zero,
            ZERO_COLUMNS,
            [
                [
                    expnum,
                    ccd,
                    band,
                    first.stars,
                    first.clipped,
                    first.zp,
                    first.error,
                    first.rms,
                    first.flag,
                ]
            ],
        )
        written.append(("SEZeropointCCD", zero, ccd))
        t = tables[ccd]
        usable = zp.zp > des_bliss.NO_STARS
        with np.errstate(invalid="ignore", divide="ignore"):
            mag = np.where(
                (t["FLUX_PSF"] > 0) & usable, -2.5 * np.log10(t["FLUX_PSF"]) - zp.zp, 99.0
            )
        calibrated = out / f"D{expnum:08d}_{ccd_tag(ccd)}_{tag}_ZP.csv"
        _write_csv(
            calibrated,
            ["NUMBER", "RA", "DEC", "MAG_PSF", "MAGERR_PSF", "FLAGS", "ZP"],
            [
                [int(n), f"{a:.7f}", f"{d:.7f}", f"{m:.4f}", f"{e:.4f}", int(f), zp.zp]
                for n, a, d, m, e, f in zip(
                    t["NUMBER"],
                    t["ALPHAWIN_J2000"],
                    t["DELTAWIN_J2000"],
                    mag,
                    t["MAGERR_PSF"],
                    t["FLAGS"],
                    strict=False,
                )
            ],
        )
        written.append(("SECalibratedCatalog", calibrated, ccd))
        log.info(
            "CCD %02d: ZP %.4f +- %.4f from %d of %d stars (flag %d)",
            ccd,
            zp.zp,
            zp.error,
            zp.clipped,
            zp.stars,
            zp.flag,
        )
    rows.append(
        [
            expnum,
            0,
            band,
            everything.stars,
            everything.clipped,
            everything.zp,
            everything.error,
            everything.rms,
            everything.flag,
        ]
    )
    all_zp = out / f"allZP_D{expnum:08d}_{tag}.csv"
    _write_csv(all_zp, ZERO_COLUMNS, rows)
    written.append(("SEZeropoints", all_zp, None))
    log.info(
        "exposure %d: all-CCD ZP %.4f +- %.4f from %d stars",
        expnum,
        everything.zp,
        everything.error,
        everything.clipped,
    )
    return written


def read_zeropoints(path: Path) -> list[dict[str, object]]:
    """Rows of an ``allZP`` file (CCDNUM 0 is the all-CCD value)."""
    with path.open(newline="") as stream:
        return [
            {
                k: (v if k == "BAND" else float(v) if k.startswith("ZP") else int(float(v)))
                for k, v in row.items()
            }
            for row in csv.DictReader(stream)
        ]
