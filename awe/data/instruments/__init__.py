"""Instruments as data: each camera is one JSON file in this folder.

A file gives the camera's chips (name, number, centre and rotation in the focal plane, dead
or not), the detector layout shared by its chips (raw size, and per amplifier the data,
overscan and prescan sections, gain, read noise, saturation, bias level), its filters (with
the nominal zeropoint, extinction and sky brightness the simulator uses), the site (for the
noon-to-noon observing night), the header keywords its files carry, how header values map
to AWE's raw frame types, and the plan of a simulated night. Adding an instrument means
adding a file here; no code changes.

Sections are written as FITS headers write them, ``[x1:x2,y1:y2]``, 1-based and inclusive,
so they can be compared with a file's DATASEC/BIASSEC by eye. Values are nominal: they are
what AWE simulates and what it falls back on when a header says nothing, not the calibrated
values of the real detectors (those are what the calibration sequences measure).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

from awe.data.errors import InstrumentError

INSTRUMENT_DIR = Path(__file__).resolve().parent
_SECTION = re.compile(r"^\[\s*(\d+)\s*:\s*(\d+)\s*,\s*(\d+)\s*:\s*(\d+)\s*\]$")


@dataclass(frozen=True)
class Section:
    """A rectangle of a raw image, ``[x1:x2,y1:y2]`` in FITS convention (1-based, inclusive)."""

    x1: int
    x2: int
    y1: int
    y2: int

    @classmethod
    def parse(cls, text: str) -> Section:
        match = _SECTION.match(str(text).strip())
        if not match:
            raise InstrumentError(
                f"{text!r} is not a section; write it as FITS headers do: [x1:x2,y1:y2]"
            )
        x1, x2, y1, y2 = (int(v) for v in match.groups())
        if x1 > x2 or y1 > y2 or x1 < 1 or y1 < 1:
            raise InstrumentError(f"section {text} is empty or starts below 1")
        return cls(x1, x2, y1, y2)

    def __str__(self) -> str:
        return f"[{self.x1}:{self.x2},{self.y1}:{self.y2}]"

    @property
    def slices(self) -> tuple[slice, slice]:
        """The numpy index (rows, columns) of this section."""
        return slice(self.y1 - 1, self.y2), slice(self.x1 - 1, self.x2)

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns), numpy order."""
        return self.y2 - self.y1 + 1, self.x2 - self.x1 + 1

    def union(self, other: Section) -> Section:
        return Section(
            min(self.x1, other.x1),
            max(self.x2, other.x2),
            min(self.y1, other.y1),
            max(self.y2, other.y2),
        )


@dataclass(frozen=True)
class Amplifier:
    """One read-out amplifier: the part of the chip it reads and its electronics."""

    name: str
    data: Section
    overscan: Section
    prescan: Section | None
    gain: float  # electrons per ADU
    read_noise: float  # electrons
    saturation: float  # ADU
    bias_level: float  # ADU


@dataclass(frozen=True)
class Detector:
    """The raw layout every chip of an instrument shares: size and amplifiers."""

    naxis: tuple[int, int]  # (NAXIS1, NAXIS2) = (columns, rows)
    amplifiers: tuple[Amplifier, ...]

    @property
    def data_section(self) -> Section:
        """The light-sensitive part of the chip, all amplifiers together."""
        section = self.amplifiers[0].data
        for amp in self.amplifiers[1:]:
            section = section.union(amp.data)
        return section

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns) of a raw chip image."""
        return self.naxis[1], self.naxis[0]

    def header_cards(self) -> dict[str, Any]:
        """The keywords that describe this layout in a chip's header (DECam style for
        several amplifiers: DATASECA, BIASSECA, GAINA, ...; plain DATASEC, GAIN, ... for one)."""
        cards: dict[str, Any] = {"DATASEC": str(self.data_section)}
        single = len(self.amplifiers) == 1
        for amp in self.amplifiers:
            suffix = "" if single else amp.name
            if not single:
                cards[f"DATASEC{suffix}"] = str(amp.data)
            cards[f"BIASSEC{suffix}"] = str(amp.overscan)
            if amp.prescan is not None:
                cards[f"PRESEC{suffix}"] = str(amp.prescan)
            cards[f"GAIN{suffix}"] = amp.gain
            cards[f"RDNOISE{suffix}"] = amp.read_noise
            cards[("SATURATE" if single else "SATURAT") + suffix] = amp.saturation
        return cards

    def from_header(self, header: Mapping[str, Any]) -> Detector:
        """This layout as a chip's header describes it (frames simulated with ``--scale``
        are smaller than the instrument's chips); keywords it lacks keep their default."""
        single = len(self.amplifiers) == 1
        amps = []
        for amp in self.amplifiers:
            suffix = "" if single else amp.name
            data_key = "DATASEC" if single else f"DATASEC{suffix}"
            saturation_key = ("SATURATE" if single else "SATURAT") + suffix
            prescan = header.get(f"PRESEC{suffix}")
            amps.append(
                replace(
                    amp,
                    data=Section.parse(header[data_key]) if data_key in header else amp.data,
                    overscan=Section.parse(header.get(f"BIASSEC{suffix}", str(amp.overscan))),
                    prescan=Section.parse(prescan) if prescan else amp.prescan,
                    gain=float(header.get(f"GAIN{suffix}", amp.gain)),
                    read_noise=float(header.get(f"RDNOISE{suffix}", amp.read_noise)),
                    saturation=float(header.get(saturation_key, amp.saturation)),
                )
            )
        naxis = (int(header.get("NAXIS1", self.naxis[0])), int(header.get("NAXIS2", self.naxis[1])))
        return Detector(naxis=naxis, amplifiers=tuple(amps))

    def scaled(self, scale: float) -> Detector:
        """The same layout shrunk by ``scale``: every stretch between section edges keeps
        at least one pixel, so overscans survive and the data sections stay contiguous."""
        sections = [s for a in self.amplifiers for s in (a.data, a.overscan, a.prescan) if s]
        x_map = _scaled_edges(
            [self.naxis[0]] + [e for s in sections for e in (s.x1 - 1, s.x2)], scale
        )
        y_map = _scaled_edges(
            [self.naxis[1]] + [e for s in sections for e in (s.y1 - 1, s.y2)], scale
        )

        def shrink(s: Section | None) -> Section | None:
            if s is None:
                return None
            return Section(x_map[s.x1 - 1] + 1, x_map[s.x2], y_map[s.y1 - 1] + 1, y_map[s.y2])

        amps = tuple(
            replace(a, data=shrink(a.data), overscan=shrink(a.overscan), prescan=shrink(a.prescan))
            for a in self.amplifiers
        )
        return Detector(naxis=(x_map[self.naxis[0]], y_map[self.naxis[1]]), amplifiers=amps)


def _scaled_edges(edges: list[int], scale: float) -> dict[int, int]:
    """Map each section edge (0-based, exclusive end) to its place on the shrunk axis."""
    ordered = sorted({0, *edges})
    mapped = {0: 0}
    for low, high in zip(ordered, ordered[1:], strict=False):
        mapped[high] = mapped[low] + max(1, round((high - low) * scale))
    return mapped


@dataclass(frozen=True)
class Chip:
    """One CCD: its names, where it sits in the focal plane, and whether it works."""

    name: str
    number: int
    center: tuple[float, float]  # focal-plane pixels from the optical axis
    rotation_deg: float  # angle from the chip's x axis to the focal plane's u axis
    dead: bool = False
    difference_imaging: bool = True  # False: skipped in difference imaging (DECam 31)


@dataclass(frozen=True)
class Filter:
    """A filter, its name as AWE keys frames by it, and the values the simulator uses."""

    name: str
    band: str  # the reference-catalogue band its magnitudes are compared with
    zeropoint: float  # magnitude giving 1 ADU/s at airmass 0
    extinction: float  # magnitudes per airmass
    sky_mag: float  # dark-sky brightness, magnitudes per square arcsecond
    fringe_amplitude: float  # fringe peak-to-mean as a fraction of the sky
    wavelength_nm: float | None = None
    header_value: str | None = None  # what the instrument writes in its filter keyword
    aliases: tuple[str, ...] = ()

    def matches(self, value: str) -> bool:
        names = {self.name, *self.aliases} | ({self.header_value} if self.header_value else set())
        return value.strip() in names

    @property
    def written_as(self) -> str:
        return self.header_value or self.name


@dataclass(frozen=True)
class Site:
    """Where the telescope is. A night runs from local noon to local noon, and is named by
    the date on which it starts, as in Astro-WISE; the offset is the site's standard time
    (observations are never near noon, so daylight saving time changes no night)."""

    name: str
    longitude_deg: float
    latitude_deg: float
    utc_offset_hours: float

    def night_of(self, when: datetime) -> date:
        """The observing night an instant (aware, or naive meaning UTC) belongs to."""
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        local = when.astimezone(timezone.utc) + timedelta(hours=self.utc_offset_hours)
        return (local - timedelta(hours=12)).date()

    def local_time(self, night: date, hours_after_noon: float) -> datetime:
        """The UTC instant ``hours_after_noon`` hours after the noon that starts ``night``."""
        noon = datetime.combine(night, time(12), tzinfo=timezone.utc)
        return noon + timedelta(hours=hours_after_noon - self.utc_offset_hours)

    def midnight(self, night: date) -> datetime:
        """Local midnight inside ``night`` (the instant a night's calibrations are valid at)."""
        return self.local_time(night, 12.0)


@dataclass(frozen=True)
class Instrument:
    """A camera as AWE knows it; see the module docstring for what its JSON file holds."""

    name: str
    description: str
    header_names: tuple[str, ...]  # values of INSTRUME that mean this instrument
    telescope: str
    site: Site
    pixel_scale: float  # arcseconds per pixel
    file_name: str  # format of raw file names, fields date_obs and exposure_number
    keywords: Mapping[str, str]  # AWE field -> header keyword
    frame_types: Mapping[str, str]  # header value of the frame_type keyword -> frame class
    detector: Detector
    chips: tuple[Chip, ...]
    filters: tuple[Filter, ...]
    simulation: Mapping[str, Any] = field(default_factory=dict)
    #: Amplifier crosstalk within a chip: ``crosstalk[victim][source]`` is the fraction of
    #: the source amplifier's signal seen, mirrored, in the victim (DECam's xtalk matrix).
    crosstalk: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    scale: float = 1.0  # 1 for the real camera; <1 for the shrunk copies the simulator makes
    path: Path | None = None

    @property
    def working_chips(self) -> tuple[Chip, ...]:
        return tuple(c for c in self.chips if not c.dead)

    def chip(self, key: str | int) -> Chip:
        """The chip named ``key`` (any case: ``'ccd50'``, ``'N4'``) or numbered ``key`` (``31``)."""
        text = str(key).strip()
        for chip in self.chips:
            if text.lower() == chip.name.lower() or (text.isdigit() and int(text) == chip.number):
                return chip
        raise InstrumentError(
            f"{key!r} is not a chip of {self.name}; its chips are {_span(self.chips)} "
            f"(names or numbers 1..{len(self.chips)})"
        )

    def filter(self, value: str) -> Filter:
        """The filter called ``value`` (its AWE name, header value or an alias)."""
        for candidate in self.filters:
            if candidate.matches(value):
                return candidate
        names = ", ".join(f.name for f in self.filters)
        raise InstrumentError(
            f"{value!r} is not a filter of {self.name}; known filters: {names}. A new filter "
            f"is added to {self.path.name if self.path else 'the instrument file'}."
        )

    def frame_type(self, header_value: str) -> str:
        """The raw frame class named by a value of the frame-type keyword."""
        wanted = str(header_value).strip().lower()
        for value, frame_type in self.frame_types.items():
            if value.lower() == wanted:
                return frame_type
        raise InstrumentError(
            f"{self.keywords['frame_type']} = {header_value!r} is not a frame type AWE knows "
            f"for {self.name}; known values: {', '.join(self.frame_types)}"
        )

    def header_value(self, frame_type: str) -> str:
        """The value this instrument writes for ``frame_type`` (first listed wins)."""
        for value, name in self.frame_types.items():
            if name == frame_type:
                return value
        raise InstrumentError(f"{self.name} has no header value for {frame_type}")

    def scaled(self, scale: float) -> Instrument:
        """A shrunk copy for fast simulations: chips and focal plane shrink by ``scale``
        while the pixel scale stays, so stars keep their size in pixels; the radial
        distortion coefficient grows by 1/scale**2 to keep the same shape over the field."""
        if not 0 < scale <= 1:
            raise InstrumentError(f"scale must be in (0, 1], not {scale}")
        if scale == self.scale:
            return self
        factor = scale / self.scale
        chips = tuple(
            replace(c, center=(c.center[0] * factor, c.center[1] * factor)) for c in self.chips
        )
        simulation = dict(self.simulation)
        if "distortion_k3" in simulation:
            simulation["distortion_k3"] = simulation["distortion_k3"] / factor**2
        return replace(
            self,
            detector=self.detector.scaled(factor),
            chips=chips,
            simulation=simulation,
            scale=scale,
        )

    def __repr__(self) -> str:
        scale = f", scale={self.scale:g}" if self.scale != 1 else ""
        return f"Instrument({self.name!r}, {len(self.chips)} chips{scale})"


def _span(chips: tuple[Chip, ...]) -> str:
    names = [c.name for c in chips]
    return ", ".join(names) if len(names) <= 8 else f"{', '.join(names[:4])}, ..., {names[-1]}"


# ---- loading ----------------------------------------------------------------------------------
def instrument_files() -> list[Path]:
    return sorted(INSTRUMENT_DIR.glob("*.json"))


@functools.cache
def _registry() -> dict[str, Instrument]:
    instruments: dict[str, Instrument] = {}
    for path in instrument_files():
        instrument = load_instrument(path)
        if instrument.name.lower() in instruments:
            raise InstrumentError(f"{path}: instrument {instrument.name} is defined twice")
        instruments[instrument.name.lower()] = instrument
    return instruments


def instrument_names() -> list[str]:
    return [i.name for i in _registry().values()]


def get_instrument(name: str) -> Instrument:
    """The instrument called ``name`` (case does not matter; INSTRUME values work too)."""
    found = _registry().get(str(name).strip().lower()) or instrument_for_header(name)
    if found is not None:
        return found
    raise InstrumentError(
        f"{name!r} is not a known instrument; known: {', '.join(instrument_names())}. "
        f"An instrument is added as a JSON file in {INSTRUMENT_DIR}."
    )


def instrument_for_header(instrume: str) -> Instrument | None:
    """The instrument whose files carry ``INSTRUME = instrume``, or None."""
    wanted = str(instrume).strip().lower()
    for instrument in _registry().values():
        if wanted in (h.lower() for h in instrument.header_names):
            return instrument
    return None


REQUIRED_KEYWORDS = ("frame_type", "chip", "exposure_time", "mjd", "date_obs")


def load_instrument(path: Path) -> Instrument:
    """Read one instrument file; a malformed file is an error naming file and field."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InstrumentError(f"cannot read instrument file {path}: {err}") from None
    try:
        return _build(raw, Path(path))
    except KeyError as err:
        raise InstrumentError(f"instrument file {path} lacks the field {err.args[0]!r}") from None
    except (TypeError, ValueError) as err:
        raise InstrumentError(f"instrument file {path} is malformed: {err}") from None


def _build(raw: dict[str, Any], path: Path) -> Instrument:
    missing = [k for k in REQUIRED_KEYWORDS if k not in raw["keywords"]]
    if missing:
        raise InstrumentError(f"{path}: keywords lacks {', '.join(missing)}")
    detector = Detector(
        naxis=(int(raw["detector"]["naxis"][0]), int(raw["detector"]["naxis"][1])),
        amplifiers=tuple(
            Amplifier(
                name=a["name"],
                data=Section.parse(a["data"]),
                overscan=Section.parse(a["overscan"]),
                prescan=Section.parse(a["prescan"]) if a.get("prescan") else None,
                gain=float(a["gain"]),
                read_noise=float(a["read_noise"]),
                saturation=float(a["saturation"]),
                bias_level=float(a["bias_level"]),
            )
            for a in raw["detector"]["amplifiers"]
        ),
    )
    for amp in detector.amplifiers:
        for section in (amp.data, amp.overscan, amp.prescan):
            if section and (section.x2 > detector.naxis[0] or section.y2 > detector.naxis[1]):
                raise InstrumentError(f"{path}: section {section} lies outside {detector.naxis}")
    chips = tuple(
        Chip(
            name=c["name"],
            number=int(c["number"]),
            center=(float(c["center"][0]), float(c["center"][1])),
            rotation_deg=float(c.get("rotation_deg", 0.0)),
            dead=bool(c.get("dead", False)),
            difference_imaging=bool(c.get("difference_imaging", True)),
        )
        for c in raw["chips"]
    )
    for attribute in ("name", "number"):
        values = [getattr(c, attribute) for c in chips]
        if len(set(values)) != len(values):
            raise InstrumentError(f"{path}: two chips share a {attribute}")
    filters = tuple(
        Filter(
            name=f["name"],
            band=f["band"],
            zeropoint=float(f["zeropoint"]),
            extinction=float(f["extinction"]),
            sky_mag=float(f["sky_mag"]),
            fringe_amplitude=float(f.get("fringe_amplitude", 0.0)),
            wavelength_nm=f.get("wavelength_nm"),
            header_value=f.get("header_value"),
            aliases=tuple(f.get("aliases", ())),
        )
        for f in raw["filters"]
    )
    return Instrument(
        name=raw["name"],
        description=raw.get("description", ""),
        header_names=tuple(raw["header_names"]),
        telescope=raw.get("telescope", ""),
        site=Site(**raw["site"]),
        pixel_scale=float(raw["pixel_scale_arcsec"]),
        file_name=raw["file_name"],
        keywords=dict(raw["keywords"]),
        frame_types=dict(raw["frame_types"]),
        detector=detector,
        chips=chips,
        filters=filters,
        simulation=dict(raw.get("simulation", {})),
        crosstalk={
            victim: {source: float(c) for source, c in sources.items()}
            for victim, sources in raw.get("crosstalk", {}).items()
        },
        path=path,
    )
