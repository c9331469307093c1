"""Simulated raw nights (``awe simulate``): what a camera would have written, and the truth.

A night follows the instrument file's ``simulation`` plan: biases and dome flats in the
afternoon, twilight flats at dusk, a standard field, then dithered science exposures of a
field that transits at local midnight (so any date works). Every exposure is one raw file in
the instrument's own format (ESO MEF for WFI and OmegaCAM, tile-compressed MEF for DECam)
with the header keywords ingest reads. Beside the files:

- ``refcat/``: the reference catalogue the stars come from, partitioned by HEALPix;
- ``truth/night.json``: seed, scale, per chip the true gains, read noise, bias levels, hot
  and cold pixels; per filter zeropoint and extinction; the list of exposures;
- ``truth/<file>.json``: per exposure the true pointing, seeing, sky, bias drift, and per
  chip the TAN-SIP WCS and the stars (x, y, flux in ADU, magnitude) and cosmic rays;
- with ``galaxies`` (off by default), Sersic galaxies in the science fields: their
  catalogue in ``night.json`` and, per science exposure and chip, what was drawn
  (:mod:`awe.data.sim_galaxies`).

Pixel positions in the truth are 0-based (numpy) in the raw image; the WCS cards are FITS
(1-based), as WCS always is. Everything is drawn from ``seed``: the same call writes the
same bytes. ``scale`` < 1 shrinks chips and focal plane (not the pixel scale), for fast
tests; a scaled night keeps the same number of stars per chip, so its catalogue is denser.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from awe.data import refcat, sim_galaxies, sim_sky
from awe.data.fits import fits_stem, write_mef
from awe.data.instruments import Chip, Filter, Instrument, get_instrument
from awe.data.sim_chip import ChipModel, Stars, fringe_pattern, rng_for
from awe.nights import parse_night

DEFAULT_SEED = 1
STARRY = ("RawScienceFrame", "RawStandardFrame", "RawTwilightFlatFrame")  # frames with stars
MODEL_CACHE_BYTES = 2_000_000_000  # keep every chip's hardware in memory below this
TRUTH_FOLDER = "truth"
REFCAT_FOLDER = "refcat"
DITHER_PATTERN = ((0, 0), (1, 1), (-1, 1), (-1, -1), (1, -1), (0, 2), (0, -2), (2, 0), (-2, 0))
DEFAULT_NIGHTS = {"WFI": "2000-04-28", "OmegaCAM": "2017-10-01", "DECam": "2017-08-17"}


@dataclass
class Exposure:
    """One planned exposure (the whole mosaic)."""

    index: int
    frame_type: str
    filter: Filter | None
    exposure_time: float
    start: datetime
    object: str
    field: tuple[float, float]  # centre of the observed field, before dithering
    pointing: tuple[float, float]  # commanded (what the header says)
    true_pointing: tuple[float, float]
    airmass: float
    exposure_number: int
    fwhm_arcsec: float
    level: float = 0.0  # flats: the lamp or sky level in ADU

    @property
    def mjd(self) -> float:
        return (self.start - datetime(1858, 11, 17, tzinfo=timezone.utc)).total_seconds() / 86400

    @property
    def date_obs(self) -> str:
        return self.start.strftime("%Y-%m-%dT%H:%M:%S.") + f"{self.start.microsecond // 1000:03d}"


@dataclass
class SimulatedNight:
    """What :func:`simulate_night` wrote."""

    out: Path
    instrument: Instrument
    night: date
    seed: int
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def truth_path(self) -> Path:
        return self.out / TRUTH_FOLDER / "night.json"


def simulate_night(
    instrument: str | Instrument,
    night: str | date | None,
    out: str | os.PathLike[str],
    *,
    seed: int = DEFAULT_SEED,
    scale: float = 1.0,
    exposures: Sequence[int] | None = None,
    filters: Sequence[str] | None = None,
    plan: Mapping[str, Any] | None = None,
    galaxies: int = 0,
    progress: bool | None = None,
) -> SimulatedNight:
    """Write a simulated night of ``instrument`` into ``out`` (see the module docstring).

    ``exposures``: only science exposures, numbered so (DECam style ``--exposure``);
    ``filters``: a subset of the plan's filters; ``plan``: overrides of the instrument
    file's simulation plan, e.g. ``{'bias': {'count': 2}}`` for a smaller night;
    ``galaxies``: Sersic galaxies per chip in the science fields (default none; the plan's
    ``galaxies`` section sets their ranges, see :mod:`awe.data.sim_galaxies`)."""
    from tqdm import tqdm

    started = time.perf_counter()
    base = instrument if isinstance(instrument, Instrument) else get_instrument(instrument)
    merged = _merge(base.simulation, plan or {})
    if filters:
        merged["filters"] = [base.filter(f).name for f in filters]
    if galaxies:
        merged["galaxies"] = dict(merged.get("galaxies") or {}) | {"per_chip": int(galaxies)}
    camera = _with_plan(base, merged).scaled(scale)
    night_date = parse_night(night if night is not None else DEFAULT_NIGHTS.get(base.name))
    out = Path(out)
    (out / TRUTH_FOLDER).mkdir(parents=True, exist_ok=True)
    result = SimulatedNight(out=out, instrument=camera, night=night_date, seed=seed)

    planned = plan_night(camera, night_date, seed, exposures)
    catalogue = _catalogue(camera, planned, seed)
    galaxy_catalogue = _galaxies(camera, planned, seed)
    refcat.write_partitioned(catalogue, out / REFCAT_FOLDER)
    models = _ModelCache(camera, seed)
    entries = []
    disable = None if progress is None else not progress
    for exposure in tqdm(planned, desc="Simulating", unit="exp", disable=disable, file=sys.stderr):
        path, truth = _write_exposure(
            camera, exposure, catalogue, models, seed, out, galaxy_catalogue
        )
        truth_name = f"{TRUTH_FOLDER}/{fits_stem(path.name)}.json"
        _write_json(out / truth_name, truth)
        result.files.append(path)
        entries.append(_exposure_entry(exposure, path, truth_name))
    night_truth = _night_truth(camera, night_date, seed, models, catalogue, entries)
    if galaxy_catalogue["ra"].size:
        night_truth["galaxies"] = sim_galaxies.catalogue_truth(galaxy_catalogue)
    _write_json(result.truth_path, night_truth)
    result.seconds = time.perf_counter() - started
    return result


def _merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _with_plan(instrument: Instrument, plan: dict[str, Any]) -> Instrument:
    from dataclasses import replace

    return replace(instrument, simulation=plan)


# ---- the plan ---------------------------------------------------------------------------------
def plan_night(
    instrument: Instrument, night: date, seed: int, numbers: Sequence[int] | None = None
) -> list[Exposure]:
    """The exposures of the night, in time order (or only science ones, if ``numbers``)."""
    plan = instrument.simulation
    rng = rng_for(seed, 4)
    site = instrument.site
    filters = [instrument.filter(name) for name in plan["filters"]]
    midnight = site.midnight(night)
    target_ra = round(sim_sky.local_sidereal_time(_mjd(midnight), site.longitude_deg), 1)
    science = (target_ra, float(plan["science"]["dec"]))
    dither = float(plan["science"]["dither_arcsec"]) * instrument.scale
    exposures: list[Exposure] = []
    number = iter(numbers) if numbers else iter(range(int(plan["first_exposure_number"]), 10**9))

    def add(kind, filt, exptime, hours, obj, pointing, offset=(0.0, 0.0), level=0.0):
        start = site.local_time(night, hours)
        commanded = sim_sky.offset(*pointing, offset[0], offset[1])
        error = plan["pointing_error_arcsec"] * rng.standard_normal(2)
        true = sim_sky.offset(*commanded, error[0], error[1])
        mjd = _mjd(start)
        exposures.append(
            Exposure(
                index=len(exposures),
                frame_type=kind,
                filter=filt,
                exposure_time=float(exptime),
                start=start,
                object=obj,
                field=tuple(pointing),
                pointing=commanded,
                true_pointing=true,
                airmass=sim_sky.airmass(*commanded, mjd, site.longitude_deg, site.latitude_deg),
                exposure_number=next(number),
                fwhm_arcsec=float(rng.uniform(*plan["seeing_fwhm_arcsec"])),
                level=level,
            )
        )

    science_plan = plan["science"]
    step = (float(science_plan["exposure_time"]) + 60.0) / 3600.0
    if numbers:
        for i in range(len(numbers)):
            filt = filters[i % len(filters)]
            hours = 9.0 + i * step
            add(
                "RawScienceFrame",
                filt,
                science_plan["exposure_time"],
                hours,
                science_plan["object"],
                science,
                _dither(i, dither),
            )
        return exposures

    hours = 3.0
    for _ in range(plan["bias"]["count"]):
        add("RawBiasFrame", None, 0.0, hours, "BIAS", science)
        hours += 1 / 60
    dome = plan["dome_flat"]
    # ``levels`` (optional): a photon-transfer series, ``count`` flats at each lamp level,
    # the exposure time scaled with the level.
    levels = [float(v) for v in dome.get("levels", [dome["level_adu"]])]
    for filt in filters:
        for level in levels:
            exptime = float(dome["exposure_time"]) * level / float(dome["level_adu"])
            for _ in range(dome["count"]):
                add("RawDomeFlatFrame", filt, exptime, hours, "DOME", science, level=level)
                hours += 1 / 60
    twilight = plan["twilight_flat"]
    hours = 6.8
    for filt in filters:
        for i in range(twilight["count"]):  # the sky darkens from one flat to the next
            level = float(twilight["level_adu"]) * 0.8**i
            offset = _dither(i + 1, 5 * dither)
            exptime = twilight["exposure_time"]
            add("RawTwilightFlatFrame", filt, exptime, hours, "SKYFLAT", science, offset, level)
            hours += 2 / 60
    standard = plan["standard"]
    # ``hours`` (optional): the same standard field observed again as it sets, so that its
    # airmass grows and Photom can fit the extinction (default: once, at 8 h).
    visits = [float(h) for h in standard.get("hours", [8.0])]
    field_ = _standard_field(standard["fields"], _mjd(site.local_time(night, visits[0])), site)
    for hours in visits:
        for filt in filters:
            for _ in range(standard["count"]):
                where = (field_["ra"], field_["dec"])
                exptime = standard["exposure_time"]
                add("RawStandardFrame", filt, exptime, hours, field_["name"], where)
                hours += 2 / 60
    hours = 9.0
    for filt in filters:
        for i in range(science_plan["count"]):
            exptime = science_plan["exposure_time"]
            add(
                "RawScienceFrame",
                filt,
                exptime,
                hours,
                science_plan["object"],
                science,
                _dither(i, dither),
            )
            hours += step
    return _in_time_order(exposures) if "hours" in standard else exposures


def _in_time_order(exposures: list[Exposure]) -> list[Exposure]:
    """The exposures sorted by start and numbered in that order: late standard-field visits
    come after the science."""
    from dataclasses import replace

    ordered = sorted(exposures, key=lambda e: e.start)
    numbers = sorted(e.exposure_number for e in exposures)
    return [
        replace(e, index=i, exposure_number=n)
        for i, (e, n) in enumerate(zip(ordered, numbers, strict=True))
    ]


def _dither(index: int, size: float) -> tuple[float, float]:
    """The index-th offset (arcsec east, north) of the dither pattern."""
    east, north = DITHER_PATTERN[index % len(DITHER_PATTERN)]
    return east * size, north * size


def _mjd(moment: datetime) -> float:
    return (moment - datetime(1858, 11, 17, tzinfo=timezone.utc)).total_seconds() / 86400


def _standard_field(
    fields: Sequence[Mapping[str, Any]], mjd: float, site: Any
) -> Mapping[str, Any]:
    """The standard field nearest to the meridian at ``mjd``."""
    lst = sim_sky.local_sidereal_time(mjd, site.longitude_deg)
    return min(fields, key=lambda f: abs((f["ra"] - lst + 180.0) % 360.0 - 180.0))


# ---- the sky ----------------------------------------------------------------------------------
def _catalogue(
    instrument: Instrument, exposures: Sequence[Exposure], seed: int
) -> refcat.Catalogue:
    """Stars around every field observed, dense enough for ``stars_per_chip`` per chip, plus
    a few bright (saturating) stars placed on chips of each field."""
    plan = instrument.simulation
    rng = rng_for(seed, 3)
    _x0, _y0, nx, ny = sim_sky.data_origin(instrument)
    chip_area = nx * ny * (instrument.pixel_scale / 3600.0) ** 2
    density = plan["stars_per_chip"] / chip_area
    margin = max(abs(e.pointing[1] - e.true_pointing[1]) for e in exposures) if exposures else 0
    radius = sim_sky.field_radius_pixels(instrument) * instrument.pixel_scale / 3600.0
    fields = sorted({e.field for e in exposures if e.frame_type in STARRY})
    dither = (
        max(float(refcat.angular_distance(*e.field, *e.true_pointing)) for e in exposures)
        if exposures
        else 0.0
    )
    discs = [(ra, dec, radius * 1.1 + margin + dither + 0.01) for ra, dec in fields]
    parts = (
        [refcat.synthetic_catalogue(discs, density, plan["star_mag_range"], rng)] if discs else []
    )
    bright_chips = [c for c in instrument.working_chips]
    for ra, dec in fields:
        count = min(int(plan["bright_stars_per_field"]), len(bright_chips))
        for chip_index in rng.choice(len(bright_chips), size=count, replace=False):
            chip = bright_chips[chip_index]
            cards = sim_sky.chip_wcs_cards(instrument, chip, ra, dec)
            x = _x0 + rng.uniform(0.2, 0.8) * nx
            y = _y0 + rng.uniform(0.2, 0.8) * ny
            star_ra, star_dec = sim_sky.pixel_to_sky(cards, np.array([x]), np.array([y]))
            mag = np.array([plan["bright_star_mag"] + rng.uniform(-0.5, 0.5)])
            parts.append(refcat.make_catalogue(star_ra, star_dec, mag, np.array([0.6])))
    if not parts:
        return refcat.make_catalogue(*(np.empty(0) for _ in range(4)))
    return refcat.concatenate(parts)


def _galaxies(
    instrument: Instrument, exposures: Sequence[Exposure], seed: int
) -> dict[str, np.ndarray]:
    """The galaxy catalogue of the science fields (empty unless the plan asks for any);
    drawn from a stream of its own, so that the stars stay the same with or without."""
    if not int(sim_galaxies.galaxy_plan(instrument.simulation)["per_chip"]):
        return sim_galaxies.galaxy_catalogue(instrument, [], rng_for(seed, 8))
    fields = sorted({e.field for e in exposures if e.frame_type == "RawScienceFrame"})
    return sim_galaxies.galaxy_catalogue(instrument, fields, rng_for(seed, 8))


# ---- rendering --------------------------------------------------------------------------------
class _ModelCache:
    """Chip hardware (and fringe patterns) made once per night when they fit in memory,
    otherwise made again when needed (full-size DECam nights)."""

    def __init__(self, instrument: Instrument, seed: int) -> None:
        self.instrument, self.seed = instrument, seed
        _x0, _y0, nx, ny = sim_sky.data_origin(instrument)
        self.keep = len(instrument.chips) * nx * ny * 8 * 3 <= MODEL_CACHE_BYTES
        self._models: dict[str, ChipModel] = {}
        self._fringes: dict[tuple[str, str], np.ndarray] = {}

    def model(self, chip: Chip) -> ChipModel:
        if chip.name in self._models:
            return self._models[chip.name]
        model = ChipModel(self.instrument, chip, self.seed)
        if self.keep:
            self._models[chip.name] = model
        return model

    def fringes(self, chip: Chip, filt: Filter) -> np.ndarray:
        key = (chip.name, filt.name)
        if key in self._fringes:
            return self._fringes[key]
        index = [f.name for f in self.instrument.filters].index(filt.name)
        pattern = fringe_pattern(self.instrument, chip, self.seed, index)
        if self.keep:
            self._fringes[key] = pattern
        return pattern

    def truths(self) -> dict[str, Any]:
        return {chip.name: self.model(chip).truth() for chip in self.instrument.chips}


def _write_exposure(
    instrument: Instrument,
    exposure: Exposure,
    catalogue: refcat.Catalogue,
    models: _ModelCache,
    seed: int,
    out: Path,
    galaxies: Mapping[str, np.ndarray],
) -> tuple[Path, dict[str, Any]]:
    plan = instrument.simulation
    fwhm = exposure.fwhm_arcsec / instrument.pixel_scale
    sky = _sky_adu(instrument, exposure)
    stars_visible = exposure.frame_type in STARRY
    flux = _star_fluxes(instrument, exposure, catalogue) if stars_visible else None
    near = _near(instrument, exposure, catalogue) if stars_visible else None
    with_galaxies = exposure.frame_type == "RawScienceFrame" and galaxies["ra"].size > 0
    galaxy_flux = _fluxes(exposure, galaxies["mag"]) if with_galaxies else None
    images, chips_truth = [], {}
    row_phase = float(rng_for(seed, 6, exposure.index).uniform(0, 2 * np.pi))
    for chip in instrument.chips:
        model = models.model(chip)
        rng = rng_for(seed, 2, exposure.index, chip.number)
        truth_cards = sim_sky.chip_wcs_cards(instrument, chip, *exposure.true_pointing)
        signal = _signal(instrument, exposure, chip, model, models, sky)
        galaxy_truth = None
        if with_galaxies:
            origin = (model.x0, model.y0, model.nx, model.ny)
            galaxy_truth = sim_galaxies.chip_galaxies(truth_cards, galaxies, galaxy_flux, origin)
            beta = float(plan["moffat_beta"])
            sim_galaxies.render(signal, galaxy_truth, model.x0, model.y0, fwhm, beta)
        stars, star_truth = None, None
        if stars_visible:
            stars, star_truth = _chip_stars(
                instrument, chip, model, truth_cards, catalogue, near, flux, fwhm
            )
        image, truth = model.expose(
            rng,
            signal=signal,
            exposure_time=exposure.exposure_time,
            stars=stars,
            row_wave_phase=row_phase,
        )
        if instrument.crosstalk and plan.get("crosstalk", False):
            image = _add_crosstalk(instrument, image, truth["bias_level"])
        if chip.dead:  # a dead chip reads out garbage
            image = rng.integers(0, 65535, image.shape, dtype=np.uint16)
        truth["wcs"] = truth_cards
        if star_truth is not None:
            truth["stars"] = star_truth
        if galaxy_truth is not None:
            truth["galaxies"] = galaxy_truth
        chips_truth[chip.name] = truth
        images.append((_extension_cards(instrument, chip, exposure), image))
    name = instrument.file_name.format(
        date_obs=exposure.date_obs, exposure_number=exposure.exposure_number
    )
    # Tile compression (.fz, as DECam's archive keeps raws) unless the plan turns it off.
    compress = bool(plan.get("compress", name.endswith(".fz")))
    name = name if compress or not name.endswith(".fz") else name[: -len(".fz")]
    path = out / name
    write_mef(path, _primary_cards(instrument, exposure, seed, name), images, compress=compress)
    return path, {
        "file": name,
        "frame_type": exposure.frame_type,
        "filter": exposure.filter.name if exposure.filter else None,
        "exposure_number": exposure.exposure_number,
        "mjd": exposure.mjd,
        "exposure_time": exposure.exposure_time,
        "airmass": exposure.airmass,
        "pointing": list(exposure.pointing),
        "true_pointing": list(exposure.true_pointing),
        "seeing_fwhm_arcsec": exposure.fwhm_arcsec,
        "fwhm_pixels": fwhm,
        "moffat_beta": plan["moffat_beta"],
        "sky_adu": sky,
        "level_adu": exposure.level,
        "row_wave_phase": row_phase,
        "chips": chips_truth,
    }


def _add_crosstalk(instrument: Instrument, image: np.ndarray, levels: list[float]) -> np.ndarray:
    """Each amplifier's signal (above its bias level) leaks, mirrored, into the others by
    the instrument's crosstalk matrix (only when the plan asks: ``crosstalk: true``)."""
    amps = {
        a.name: (a, float(level))
        for a, level in zip(instrument.detector.amplifiers, levels, strict=False)
    }
    out = image.astype(np.float32)
    for victim, sources in instrument.crosstalk.items():
        rows, columns = amps[victim][0].data.slices
        for source, coefficient in sources.items():
            amp, level = amps[source]
            signal = image[amp.data.slices].astype(np.float32) - level
            out[rows, columns] += np.float32(coefficient) * signal[:, ::-1]
    return np.clip(np.rint(out), 0, 65535).astype(np.uint16)


def _sky_adu(instrument: Instrument, exposure: Exposure) -> float:
    """Sky per pixel in nominal ADU: dark sky at night, the given level for twilight."""
    if exposure.frame_type == "RawTwilightFlatFrame":
        return exposure.level
    if exposure.frame_type in ("RawScienceFrame", "RawStandardFrame") and exposure.filter:
        surface = 10 ** (-0.4 * (exposure.filter.sky_mag - exposure.filter.zeropoint))
        return exposure.exposure_time * instrument.pixel_scale**2 * surface
    return 0.0


def _signal(instrument, exposure, chip, model, models, sky) -> np.ndarray | None:
    if exposure.frame_type == "RawBiasFrame":
        return None
    if exposure.frame_type == "RawDomeFlatFrame":
        return exposure.level * model.dome_illumination
    signal = np.full((model.ny, model.nx), sky)
    if (
        exposure.filter
        and exposure.filter.fringe_amplitude
        and exposure.frame_type != "RawTwilightFlatFrame"
    ):
        signal += exposure.filter.fringe_amplitude * sky * models.fringes(chip, exposure.filter)
    return signal


def _star_fluxes(
    instrument: Instrument, exposure: Exposure, catalogue: refcat.Catalogue
) -> np.ndarray:
    """Nominal ADU of every catalogue star."""
    return _fluxes(exposure, refcat.band_magnitudes(catalogue, exposure.filter.band))


def _fluxes(exposure: Exposure, mags: np.ndarray) -> np.ndarray:
    """Nominal ADU of magnitudes ``mags`` in an exposure: t * 10**(-0.4 (m - ZP + k X))."""
    filt = exposure.filter
    return exposure.exposure_time * 10 ** (
        -0.4 * (mags - filt.zeropoint + filt.extinction * exposure.airmass)
    )


@dataclass
class _FieldStars:
    """The catalogue stars near one exposure's pointing, with their undistorted
    focal-plane positions: the cheap first cut for every chip."""

    index: np.ndarray
    u: np.ndarray
    v: np.ndarray


def _near(instrument: Instrument, exposure: Exposure, catalogue: refcat.Catalogue) -> _FieldStars:
    radius = sim_sky.field_radius_pixels(instrument) * instrument.pixel_scale / 3600.0 * 1.1 + 0.01
    ra, dec = exposure.true_pointing
    index = np.flatnonzero(
        refcat.angular_distance(catalogue["ra"], catalogue["dec"], ra, dec) <= radius
    )
    u, v = sim_sky.focal_plane_of_sky(
        instrument, ra, dec, catalogue["ra"][index], catalogue["dec"][index]
    )
    return _FieldStars(index, u, v)


def _chip_stars(instrument, chip, model: ChipModel, cards, catalogue, near, flux, fwhm):
    """The stars that fall on (or near enough to shine onto) this chip, and their truth."""
    beta = float(instrument.simulation["moffat_beta"])
    # First cut in the undistorted focal plane, with room for the largest stamp and the
    # distortion; then exact positions through the chip's TAN-SIP WCS.
    k = float(instrument.simulation.get("distortion_k3", 0.0))
    margin = 20 * fwhm + abs(k) * sim_sky.field_radius_pixels(instrument) ** 3 + 2
    du, dv = sim_sky.chip_local(chip, near.u, near.v)
    first = (np.abs(du) <= model.nx / 2 + margin) & (np.abs(dv) <= model.ny / 2 + margin)
    index = near.index[first]
    x, y = sim_sky.sky_to_pixel(cards, catalogue["ra"][index], catalogue["dec"][index])
    pad = Stars(x=x, y=y, flux=flux[index], fwhm=fwhm, beta=beta).stamp_radius()
    on = (x + pad >= model.x0) & (x - pad < model.x0 + model.nx)
    on &= (y + pad >= model.y0) & (y - pad < model.y0 + model.ny)
    index, x, y = index[on], x[on], y[on]
    stars = Stars(x=x, y=y, flux=flux[index], fwhm=fwhm, beta=beta)
    inside = (x >= model.x0 - 0.5) & (x < model.x0 + model.nx - 0.5)
    inside &= (y >= model.y0 - 0.5) & (y < model.y0 + model.ny - 0.5)
    peak = stars.flux * (stars.beta - 1) / (np.pi * stars.alpha**2)
    well = min(a.full_well for a in model.amplifiers) / float(model.nominal_gain.max())
    truth = {
        "id": catalogue["id"][index[inside]].tolist(),
        "x": np.round(x[inside], 4).tolist(),
        "y": np.round(y[inside], 4).tolist(),
        "flux_adu": np.round(stars.flux[inside], 3).tolist(),
        "saturated": (peak[inside] > well).tolist(),
    }
    return stars, truth


def _primary_cards(
    instrument: Instrument, exposure: Exposure, seed: int, name: str
) -> dict[str, Any]:
    keys = instrument.keywords
    ra, dec = exposure.pointing
    sexagesimal = bool(instrument.simulation.get("sexagesimal_pointing", False))
    cards: dict[str, Any] = {
        "ORIGIN": "AWE simulator",
        "TELESCOP": instrument.telescope,
        "INSTRUME": instrument.header_names[0],
        "NEXTEND": len(instrument.chips),
        keys["object"]: exposure.object,
        keys["frame_type"]: instrument.header_value(exposure.frame_type),
        keys["exposure_number"]: exposure.exposure_number,
        keys["exposure_time"]: exposure.exposure_time,
        keys["mjd"]: round(exposure.mjd, 8),
        keys["date_obs"]: exposure.date_obs,
        keys["ra"]: _sexagesimal(ra / 15.0) if sexagesimal else round(ra, 6),
        keys["dec"]: _sexagesimal(dec) if sexagesimal else round(dec, 6),
        keys["airmass"]: round(exposure.airmass, 4),
        "AWESIM": (True, "simulated by AWE; truth in AWETRUTH"),
        "AWESEED": seed,
        "AWESCALE": instrument.scale,
        "AWETRUTH": f"{TRUTH_FOLDER}/{fits_stem(name)}.json",
    }
    if exposure.filter is not None:
        cards[keys["filter"]] = exposure.filter.written_as
    return cards


def _extension_cards(instrument: Instrument, chip: Chip, exposure: Exposure) -> dict[str, Any]:
    cards: dict[str, Any] = {"EXTNAME": chip.name}
    if instrument.keywords["chip"] != "EXTNAME":
        cards[instrument.keywords["chip"]] = chip.number
    cards.update(instrument.detector.header_cards())
    cards.update(sim_sky.chip_wcs_cards(instrument, chip, *exposure.pointing, distortion=False))
    return cards


def _sexagesimal(value: float) -> str:
    sign = "-" if value < 0 else ""
    value = abs(value)
    hours = int(value)
    minutes = int((value - hours) * 60)
    seconds = (value - hours - minutes / 60) * 3600
    return f"{sign}{hours:02d}:{minutes:02d}:{seconds:05.2f}"


# ---- truth ------------------------------------------------------------------------------------
def _exposure_entry(exposure: Exposure, path: Path, truth_name: str) -> dict[str, Any]:
    return {
        "file": path.name,
        "truth": truth_name,
        "frame_type": exposure.frame_type,
        "filter": exposure.filter.name if exposure.filter else None,
        "object": exposure.object,
        "exposure_number": exposure.exposure_number,
        "exposure_time": exposure.exposure_time,
        "mjd": exposure.mjd,
        "date_obs": exposure.date_obs,
        "airmass": exposure.airmass,
    }


def _night_truth(instrument, night, seed, models, catalogue, entries) -> dict[str, Any]:
    plan = instrument.simulation
    return {
        "instrument": instrument.name,
        "night": night.isoformat(),
        "seed": seed,
        "scale": instrument.scale,
        "pixel_scale_arcsec": instrument.pixel_scale,
        "zeropoint_definition": "magnitude giving 1 ADU/s at airmass 0 in (raw - bias) / flat",
        "filters": {
            f.name: {
                "band": f.band,
                "zeropoint": f.zeropoint,
                "extinction": f.extinction,
                "sky_mag": f.sky_mag,
                "fringe_amplitude": f.fringe_amplitude,
            }
            for f in instrument.filters
        },
        "vignetting": plan["vignetting"],
        "dome_gradient": plan["dome_gradient"],
        "distortion_k3": plan["distortion_k3"],
        "field_radius_pixels": sim_sky.field_radius_pixels(instrument),
        "chips": models.truths(),
        "dead_chips": [c.name for c in instrument.chips if c.dead],
        "refcat": {
            "path": REFCAT_FOLDER,
            "nside": refcat.NSIDE,
            "order": refcat.ORDER,
            "stars": int(catalogue["ra"].size),
        },
        "exposures": entries,
    }


def _write_json(path: Path, data: Any) -> None:
    temp = path.with_name(f".{path.name}.part")
    temp.write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")
    os.replace(temp, path)


class NightTruth:
    """Read a simulated night's truth back, and remake what the JSON does not hold (the
    true flat of a chip) from the same seed."""

    def __init__(self, out: str | os.PathLike[str]) -> None:
        self.out = Path(out)
        self.night = json.loads(
            (self.out / TRUTH_FOLDER / "night.json").read_text(encoding="utf-8")
        )
        base = get_instrument(self.night["instrument"])
        self.instrument = base.scaled(self.night["scale"])

    @property
    def exposures(self) -> list[dict[str, Any]]:
        return self.night["exposures"]

    def exposure(self, file_name: str) -> dict[str, Any]:
        for entry in self.exposures:
            if entry["file"] == file_name:
                return json.loads((self.out / entry["truth"]).read_text(encoding="utf-8"))
        raise KeyError(f"{file_name} is not an exposure of the night in {self.out}")

    def chip_model(self, chip: str) -> ChipModel:
        return ChipModel(self.instrument, self.instrument.chip(chip), int(self.night["seed"]))

    def flat(self, chip: str) -> np.ndarray:
        """The true flat of ``chip`` over its data section (see :mod:`awe.data.sim_chip`)."""
        return self.chip_model(chip).flat
