"""Where DES single-epoch processing finds its inputs and writes its outputs, and the
calibration sets it uses.

An archive folder stands for the DES file systems (``/pnfs/des/...``, CVMFS)::

    dts/<nite>/DECam_<exp8>.fits.fz              raw exposures, as DTS delivers them
    calib/sets.json                               calibration sets by exposure-number range
    calib/<set>/D_<set>_<cc>_calib.fits           per CCD: BIAS, FLAT, BPM (+ gain, noise,
                                                  linearity, saturation in the header)
    refcat/                                       HEALPix nside-32 reference catalogue
    <cache>/<schema>/exp/<nite>/<exp>/            outputs (cache: persistent | scratch)

:func:`build_calibration_from_truth` writes a calibration set from a simulated night's
truth (what a perfect bias, flat and BPM campaign would measure);
:func:`ingest_calibration` takes one made elsewhere (e.g. F6's stacks), file by file.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from awe.data.errors import DataError

SETS_FILE = "sets.json"
#: The DES calibration eras AWE knows by default: Y4 up to exposure 666747, then HEAD's
#: "Y7" set (the one boundary the gw_workflow scripts state; more are added in sets.json).
DEFAULT_SETS = [
    {"name": "Y4", "first": 0, "last": 666747},
    {"name": "Y7", "first": 666748, "last": None},
]
DEAD_CCDS = (2, 61)  # S30 and N30: never scheduled


def ccd_tag(ccd: int) -> str:
    return f"{int(ccd):02d}"


def product_stem(expnum: int, band: str, ccd: int, rnum: int, pnum: int) -> str:
    """``D<exp8>_<band>_<cc>_r<R>p<P>``, the DES name of a CCD's products."""
    return f"D{int(expnum):08d}_{band}_{ccd_tag(ccd)}_r{rnum}p{pnum}"


@dataclass(frozen=True)
class Archive:
    root: Path

    @classmethod
    def at(cls, root: str | os.PathLike[str]) -> Archive:
        return cls(Path(root).expanduser().resolve())

    def raw(self, nite: str, expnum: int) -> Path:
        return self.root / "dts" / str(nite) / f"DECam_{int(expnum):08d}.fits.fz"

    def refcat(self) -> Path:
        return self.root / "refcat"

    def output(self, cache: str, schema: str, nite: str, expnum: int) -> Path:
        return self.root / cache / schema / "exp" / str(nite) / str(int(expnum))

    def calibration_file(self, set_name: str, ccd: int) -> Path:
        return self.root / "calib" / set_name / f"D_{set_name}_{ccd_tag(ccd)}_calib.fits"

    def calibration_set(self, expnum: int, force: str | None = None) -> str:
        """The set whose exposure range holds ``expnum`` (``force``: that set, as ``-Y``)."""
        path = self.root / "calib" / SETS_FILE
        sets = json.loads(path.read_text()) if path.exists() else DEFAULT_SETS
        if force:
            if force not in [s["name"] for s in sets]:
                raise DataError(f"no calibration set {force!r} in {path}")
            return force
        for entry in sets:
            last = entry["last"] if entry["last"] is not None else float("inf")
            if entry["first"] <= expnum <= last:
                return str(entry["name"])
        raise DataError(
            f"no calibration set covers exposure {expnum}; the sets in {path} cover "
            + ", ".join(f"{s['name']} {s['first']}..{s['last'] or ''}" for s in sets)
        )


def read_calibration(path: Path) -> dict[str, Any]:
    """A CCD's calibration: bias, flat, bpm arrays and per-amplifier values."""
    from astropy.io import fits

    if not path.exists():
        raise DataError(
            f"calibration file {path} is missing: build the set with "
            f"awe.data.des_archive.build_calibration_from_truth or ingest_calibration"
        )
    with fits.open(path) as hdul:
        header = hdul["BIAS"].header
        amps = [a.strip() for a in header["AMPS"].split(",")]
        return {
            "bias": hdul["BIAS"].data.astype(np.float32),
            "flat": hdul["FLAT"].data.astype(np.float32),
            "bpm": hdul["BPM"].data.astype(bool),
            "gain": {a: float(header[f"GAIN{a}"]) for a in amps},
            "read_noise_e": {a: float(header[f"RDNOISE{a}"]) for a in amps},
            "saturation": {a: float(header[f"SATURAT{a}"]) for a in amps},
            "linearity": float(header.get("LINCOEF", 0.0)),
            "set": header.get("CALSET", ""),
        }


def write_calibration(path: Path, set_name: str, values: dict[str, Any]) -> None:
    from astropy.io import fits

    from awe.data.fits import write_hdus

    header = fits.Header()
    header["CALSET"] = set_name
    header["AMPS"] = ",".join(values["gain"])
    for amp in values["gain"]:
        header[f"GAIN{amp}"] = values["gain"][amp]
        header[f"RDNOISE{amp}"] = values["read_noise_e"][amp]
        header[f"SATURAT{amp}"] = values["saturation"][amp]
    header["LINCOEF"] = values.get("linearity", 0.0)
    hdus = fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(np.asarray(values["bias"], np.float32), header, name="BIAS"),
            fits.ImageHDU(np.asarray(values["flat"], np.float32), name="FLAT"),
            fits.ImageHDU(np.asarray(values["bpm"], np.uint8), name="BPM"),
        ]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_hdus(path, hdus)


def build_calibration_from_truth(
    night_folder: str | os.PathLike[str], archive: Archive, set_name: str
) -> list[Path]:
    """Write calibration set ``set_name`` for every working CCD of a simulated night.

    From the truth: the bias is the fixed column pattern left after a row-by-row
    overscan subtraction, plus the hot pixels' dark signal; the flat is the chip's
    response (``ChipModel.response``: sensitivity, pixel response, vignetting) times its
    nominal gain relative to the mean nominal gain, so that with the true gains applied
    one zeropoint holds for the whole focal plane; the BPM holds hot and cold
    pixels; gains and read noise are the true ones."""
    from awe.data.simulate import NightTruth

    truth = NightTruth(night_folder)
    instrument = truth.instrument
    reference_gain = float(np.mean([a.gain for a in instrument.detector.amplifiers]))
    written = []
    for chip in instrument.working_chips:
        model = truth.chip_model(chip.name)
        bias = model.overscan_corrected_bias()
        bias[model.hot] += model.hot_level
        bpm = np.zeros((model.ny, model.nx), bool)
        bpm[model.hot] = True
        bpm[model.cold] = True
        values = {
            "bias": bias,
            "flat": model.response * model.nominal_gain / reference_gain,
            "bpm": bpm,
            "gain": {a.name: a.gain for a in model.amplifiers},
            "read_noise_e": {a.name: a.read_noise for a in model.amplifiers},
            "saturation": {a.name: 0.98 * a.full_well / a.gain - 10.0 for a in model.amplifiers},
            "linearity": float(instrument.simulation.get("nonlinearity", 0.0)),
        }
        path = archive.calibration_file(set_name, chip.number)
        write_calibration(path, set_name, values)
        written.append(path)
    sets_path = archive.root / "calib" / SETS_FILE
    if not sets_path.exists():
        sets_path.write_text(json.dumps(DEFAULT_SETS, indent=1) + "\n")
    return written


def ingest_calibration(
    archive: Archive, set_name: str, files: dict[int, str | os.PathLike[str]]
) -> None:
    """Copy calibration files made elsewhere (one per CCD number, in the layout
    :func:`write_calibration` writes) into the archive's set ``set_name``, checking each."""
    for ccd, source in files.items():
        read_calibration(Path(source))  # refuses what is not a calibration file
        target = archive.calibration_file(set_name, ccd)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


def stage_night(night_folder: str | os.PathLike[str], archive: Archive, nite: str) -> list[Path]:
    """Put a simulated night's raw exposures and reference catalogue where SE looks."""
    night_folder = Path(night_folder)
    target = archive.root / "dts" / str(nite)
    target.mkdir(parents=True, exist_ok=True)
    staged = []
    for raw in sorted(night_folder.glob("DECam_*.fits*")):
        destination = target / raw.name
        if not destination.exists():
            shutil.copy(raw, destination)
        staged.append(destination)
    if not archive.refcat().exists():
        shutil.copytree(night_folder / "refcat", archive.refcat())
    return staged


def reference_stars(
    folder: Path, ra: np.ndarray, dec: np.ndarray, cache: dict[int, np.ndarray] | None = None
) -> dict[str, np.ndarray]:
    """Reference stars for a CCD whose corners (or detections) are at ``ra, dec``, as
    BLISS's ``getallccdfromGAIA`` takes them: every HEALPix pixel within 0.2 deg of the
    centre, then the stars inside the positions' box widened by 0.1 deg. ``cache``: the
    pixels read for earlier CCDs of the exposure (see ``refcat.read_pixels``)."""
    import astropy.units as u

    from awe.data import refcat

    ra, dec = np.asarray(ra, float), np.asarray(dec, float)
    centre_ra, centre_dec = float(np.median(ra)), float(np.median(dec))
    pixels = refcat.healpix().cone_search_lonlat(centre_ra * u.deg, centre_dec * u.deg, 0.2 * u.deg)
    stars = refcat.read_pixels(folder, sorted(int(p) for p in pixels), cache)
    pad = 0.1 / max(np.cos(np.radians(centre_dec)), 1e-3)
    dra = (stars["ra"] - centre_ra + 180) % 360 - 180
    own = (ra - centre_ra + 180) % 360 - 180
    keep = (dra >= own.min() - pad) & (dra <= own.max() + pad)
    keep &= (stars["dec"] >= dec.min() - 0.1) & (stars["dec"] <= dec.max() + 0.1)
    return {k: v[keep] for k, v in stars.items()}


def parse_ccds(text: str | int | Sequence[int] | None, all_ccds: Sequence[int]) -> list[int]:
    """``'1,3-60,62'`` (or an int, or a list) as CCD numbers; the dead CCDs 2 and 61 are
    dropped; unknown numbers are an error naming the valid range."""
    if text is None or text == "":
        wanted = list(all_ccds)
    elif isinstance(text, int):
        wanted = [text]
    elif isinstance(text, str):
        wanted = []
        for part in text.replace(" ", "").split(","):
            if not part:
                continue
            first, _, last = part.partition("-")
            if not first.isdigit() or (last and not last.isdigit()):
                raise DataError(f"CCD list {text!r}: {part!r} is not N or N-M (e.g. '1,3-60,62')")
            wanted.extend(range(int(first), int(last or first) + 1))
    else:
        wanted = [int(c) for c in text]
    unknown = sorted(set(wanted) - set(all_ccds) - set(DEAD_CCDS))
    if unknown:
        raise DataError(f"CCD list {text!r}: no CCD {unknown}; DECam CCDs are 1..62")
    return sorted(set(wanted) - set(DEAD_CCDS))
