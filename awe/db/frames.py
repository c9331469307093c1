"""Typed frames: raw data and products, one row per CCD, in one table.

Every frame type (RawBiasFrame, BiasFrame, MasterFlatFrame, ...) is a class here and a value
of ``frame_type`` in the single ``awe_frames`` table (SQLAlchemy single-table inheritance).
One table because the types share almost all their keys (instrument, chip, filter, night,
object, exposure), because "every frame of this night" and provenance links between types
are then plain queries, and because a new type is a new class, not a migration.

Each frame points at its file in the content-addressed data store (``sha256``; see
:mod:`awe.data.store`); the row never exists without the file. Products also carry their
provenance (job, task, input frames, code snapshot, process parameters) and validity
(``is_valid``, ``quality_flags``, ``valid_from``/``valid_to``), so that

    BiasFrame.newest_valid(instrument='WFI', chip='ccd50', night='2000-04-28')

(the calibration a reduction must use) is one query. At the prompt::

    RawBiasFrame.select(instrument='WFI', date='2000-04-28', chip='ccd50')

Helpers take ``database=``; without it they use the session's database (``dpu.database``,
through :mod:`awe.context`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
    and_,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship, selectinload

from awe.context import session_database, site_midnight
from awe.db.frame_list import FrameList, SourceRows
from awe.db.models import NAME_LENGTH, SNAPSHOT_ID_LENGTH, Base, BigId, UTCDateTime, utcnow
from awe.messages import FileRef
from awe.nights import parse_night

if TYPE_CHECKING:
    from awe.db.database import Database

FRAME_TYPE_LENGTH = 64
FILENAME_LENGTH = 255
OBJECT_LENGTH = 255
SHA256_LENGTH = 64

F = TypeVar("F", bound="Frame")


class FileStore(Protocol):
    """What :meth:`Frame.as_input` needs of a data store: where a file with a hash lives."""

    def path(self, digest: str) -> Path: ...


class QualityFlag:
    """Bits of ``Frame.quality_flags``; 0 means no known problem."""

    DEAD_CHIP = 1
    TOO_FEW_INPUTS = 2
    OUTSIDE_LIMITS = 4  # a quality check of the producing sequence failed
    SATURATED = 8
    MANUAL = 16  # flagged by a person


frame_inputs = Table(
    "awe_frame_inputs",
    Base.metadata,
    Column("frame_id", BigId, ForeignKey("awe_frames.id", ondelete="CASCADE"), primary_key=True),
    # No cascade here: a frame that others were made from cannot silently disappear.
    Column("input_id", BigId, ForeignKey("awe_frames.id"), primary_key=True, index=True),
)


class Frame(Base):
    """A file in the data store with the keys that find it. Not instantiated directly: use
    a concrete type such as RawBiasFrame or BiasFrame."""

    __tablename__ = "awe_frames"
    __table_args__ = (
        UniqueConstraint("sha256", "frame_type", name="uq_awe_frames_sha256_type"),
        Index("ix_awe_frames_lookup", "frame_type", "instrument", "night", "chip"),
        Index("ix_awe_frames_calibration", "frame_type", "instrument", "chip", "created_at"),
        {"sqlite_autoincrement": True},
    )

    #: Raw frames and per-chip products depend on the filter unless this says otherwise.
    filter_dependent: ClassVar[bool] = True
    #: Set on the classes that are categories, not types (Frame, RawFrame, ...).
    abstract_frame: ClassVar[bool] = True

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    frame_type: Mapped[str] = mapped_column(String(FRAME_TYPE_LENGTH))
    filename: Mapped[str] = mapped_column(String(FILENAME_LENGTH), index=True)
    sha256: Mapped[str] = mapped_column(String(SHA256_LENGTH))
    size: Mapped[int] = mapped_column(BigInteger)

    instrument: Mapped[str] = mapped_column(String(NAME_LENGTH))
    chip: Mapped[str | None] = mapped_column(String(NAME_LENGTH))  # None: whole mosaic
    filter: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    night: Mapped[date | None] = mapped_column(Date)  # noon-to-noon, local time of the site
    object: Mapped[str] = mapped_column(String(OBJECT_LENGTH), default="")
    exposure_number: Mapped[int | None] = mapped_column(BigInteger)
    mjd: Mapped[float | None] = mapped_column(Double)
    exposure_time: Mapped[float | None] = mapped_column(Double)  # seconds
    date_obs: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ra: Mapped[float | None] = mapped_column(Double)  # degrees, pointing of the exposure
    dec: Mapped[float | None] = mapped_column(Double)
    airmass: Mapped[float | None] = mapped_column(Double)

    # provenance (products)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("awe_jobs.id"), index=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("awe_tasks.id"))
    code_snapshot_id: Mapped[str | None] = mapped_column(String(SNAPSHOT_ID_LENGTH))
    process_params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    results: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # e.g. read_noise

    # validity
    is_valid: Mapped[bool] = mapped_column(Boolean, default=True)
    quality_flags: Mapped[int] = mapped_column(Integer, default=0)
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None: since always
    valid_to: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None: for ever
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    inputs: Mapped[list[Frame]] = relationship(
        secondary=frame_inputs,
        primaryjoin=lambda: Frame.id == frame_inputs.c.frame_id,
        secondaryjoin=lambda: Frame.id == frame_inputs.c.input_id,
    )

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        if cls.__name__ == "Frame":
            return {"polymorphic_on": "frame_type", "polymorphic_abstract": True}
        if cls.__dict__.get("abstract_frame", False):
            return {"polymorphic_abstract": True}
        return {"polymorphic_identity": cls.__name__}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        if "abstract_frame" not in cls.__dict__:
            cls.abstract_frame = False
        super().__init_subclass__(**kwargs)

    # ---- queries ----------------------------------------------------------------------
    @classmethod
    def select(
        cls: type[F],
        *,
        database: Database | None = None,
        instrument: str | None = None,
        date: str | date | None = None,
        chip: str | None = None,
        filter: str | None = None,
        object: str | None = None,
        exposure_number: int | None = None,
        filename: str | None = None,
        valid_only: bool = False,
    ) -> FrameList:
        """Frames of this type (and its subtypes) that match every key given.

        ``date`` is the observing night (``'YYYY-MM-DD'``); ``object`` may hold the
        wildcards ``*`` and ``?``; names are matched exactly as stored (chips by name,
        e.g. ``'ccd50'`` or DECam's ``'N4'``; filters by AWE name, e.g. ``'#842'``).
        Ordered by time of observation, then chip. Input frames are loaded one level deep.
        """
        query = select(cls).options(selectinload(cls.inputs))
        conditions = _key_conditions(
            cls,
            instrument=instrument,
            night=_night(date),
            chip=chip,
            filter=filter,
            exposure_number=exposure_number,
            filename=filename,
        )
        if object is not None:
            conditions.append(_wildcard(cls.object, object))
        if valid_only:
            conditions.append(cls.is_valid.is_(True))
        query = query.where(*conditions).order_by(cls.mjd, cls.night, cls.chip, cls.id)
        with session_database(database).session() as session:
            return FrameList(session.scalars(query))

    @classmethod
    def newest_valid(
        cls: type[F],
        *,
        instrument: str,
        chip: str | None = None,
        night: str | date | None = None,
        at: datetime | None = None,
        filter: str | None = None,
        database: Database | None = None,
    ) -> F | None:
        """The most recently created valid frame of this type whose validity covers the
        instant ``at`` (default: midnight of ``night`` at the instrument's site, or now),
        for this instrument, chip and filter. One query; None if there is none."""
        moment = at or _moment(instrument, _night(night))
        if moment.tzinfo is None:
            raise ValueError(f"naive datetime {moment!r}: pass an aware (UTC) datetime")
        conditions = _key_conditions(cls, instrument=instrument, chip=chip, filter=filter)
        conditions += [
            cls.is_valid.is_(True),
            or_(cls.valid_from.is_(None), cls.valid_from <= moment),
            or_(cls.valid_to.is_(None), cls.valid_to > moment),
        ]
        query = (
            select(cls)
            .options(selectinload(cls.inputs))
            .where(and_(*conditions))
            .order_by(cls.created_at.desc(), cls.id.desc())
            .limit(1)
        )
        with session_database(database).session() as session:
            return session.scalar(query)

    def as_input(self, store: FileStore) -> dict[str, Any]:
        """This frame as a task input: a file reference (path in ``store``, sha256, file
        name, frame id) that a remote DPU receives once, by content. ``store`` is the data
        store holding the frame's file (``awe.data.store.DataStore(env.data_root)``),
        given explicitly: no session is consulted."""
        path = str(store.path(self.sha256))
        return FileRef(path, self.sha256, self.filename, self.id).to_json()

    def record_contents(self, session: Any, path: Any) -> None:
        """Rows a committed frame adds beside its own (a SourceList's sources); the file
        is at ``path`` in the data store. Most frames add none."""

    def __repr__(self) -> str:
        keys = [self.instrument, self.chip, str(self.night) if self.night else None, self.filter]
        text = " ".join(k for k in keys if k)
        if self.object:
            text += f" {self.object!r}"
        if self.exposure_number is not None:
            text += f" exp {self.exposure_number}"
        return f"{type(self).__name__}({self.id}, {text})"


def _key_conditions(cls: type[Frame], **keys: Any) -> list[Any]:
    return [getattr(cls, name) == value for name, value in keys.items() if value is not None]


def _night(value: str | date | None) -> date | None:
    return None if value is None else parse_night(value)


def _moment(instrument: str, night: date | None) -> datetime:
    if night is None:
        return datetime.now(timezone.utc)
    return site_midnight(instrument, night)  # the site lives in the instrument files


def frames_with_sha256(digests: Sequence[str], *, database: Database | None = None) -> FrameList:
    """The frames of any type whose files have these hashes, in the order they were made."""
    query = select(Frame).where(Frame.sha256.in_(list(digests))).order_by(Frame.id)
    with session_database(database).session() as session:
        return FrameList(session.scalars(query))


@dataclass(frozen=True)
class FrameCount:
    """How many frames of one type a night has, on how many chips, in which filters."""

    frame_type: str
    frames: int
    chips: int
    filters: list[str]


def frame_counts(
    instrument: str, night: str | date, *, database: Database | None = None
) -> list[FrameCount]:
    """The frames of ``instrument`` on ``night``, counted per type (sorted by type)."""
    keys = (Frame.instrument == instrument, Frame.night == parse_night(night))
    counts = (
        select(Frame.frame_type, func.count(), func.count(func.distinct(Frame.chip)))
        .where(*keys)
        .group_by(Frame.frame_type)
        .order_by(Frame.frame_type)
    )
    filters_used = select(Frame.frame_type, Frame.filter).where(*keys).distinct()
    with session_database(database).session() as session:
        rows = session.execute(counts).all()
        filters: dict[str, list[str]] = {}
        for frame_type, name in session.execute(filters_used):
            if name:
                filters.setdefault(frame_type, []).append(name)
    return [
        FrameCount(frame_type, count, chips, sorted(filters.get(frame_type, [])))
        for frame_type, count, chips in rows
    ]


def _wildcard(column: Any, pattern: str) -> Any:
    if "*" not in pattern and "?" not in pattern:
        return column == pattern
    escaped = re.sub(r"([\\%_])", r"\\\1", pattern).replace("*", "%").replace("?", "_")
    return column.like(escaped, escape="\\")


# ---- categories -------------------------------------------------------------------------------
class RawFrame(Frame):
    """One CCD of an exposure as the telescope wrote it (split out of the MEF at ingest)."""

    abstract_frame = True


class CalibrationFrame(Frame):
    """A calibration product; reductions use the newest valid one (see newest_valid)."""

    abstract_frame = True


class ScienceProduct(Frame):
    """A product of the image pipeline (reduced, regridded, coadded frames, catalogues)."""

    abstract_frame = True


# ---- raw frames -------------------------------------------------------------------------------
class RawBiasFrame(RawFrame):
    """A zero-second, unexposed read-out (ESO DPR TYPE 'BIAS', DECam OBSTYPE 'zero')."""

    filter_dependent = False


class RawDarkFrame(RawFrame):
    """An exposure with the shutter closed."""

    filter_dependent = False


class RawDomeFlatFrame(RawFrame):
    """An exposure of the illuminated dome screen."""


class RawTwilightFlatFrame(RawFrame):
    """An exposure of the twilight sky."""


class RawScienceFrame(RawFrame):
    """An exposure of a science target."""


class RawStandardFrame(RawFrame):
    """An exposure of a photometric standard field."""


# ---- calibration products (Astro-WISE names) --------------------------------------------------
class ReadNoise(CalibrationFrame):
    """Read noise of a chip from pairs of raw biases (results['read_noise'], ADU)."""

    filter_dependent = False


class BiasFrame(CalibrationFrame):
    """Master bias: the clipped combination of a night's RawBiasFrames."""

    filter_dependent = False


class HotPixelMap(CalibrationFrame):
    """Mask of hot pixels (1 good, 0 bad) found in a BiasFrame."""

    filter_dependent = False


class ColdPixelMap(CalibrationFrame):
    """Mask of cold pixels (1 good, 0 bad) found in a DomeFlatFrame."""


class GainLinearity(CalibrationFrame):
    """Gain and linearity of a chip from pairs of dome flats."""

    filter_dependent = False


class DomeFlatFrame(CalibrationFrame):
    """Master dome flat: the pixel-to-pixel response."""


class TwilightFlatFrame(CalibrationFrame):
    """Master twilight flat: the large-scale illumination as the sky gives it."""


class MasterFlatFrame(CalibrationFrame):
    """The flat applied to science frames, from dome and twilight flats."""


class NightSkyFlatFrame(CalibrationFrame):
    """A flat from the night's dithered science frames."""


class IlluminationCorrectionFrame(CalibrationFrame):
    """Optional large-scale photometric correction from dithered standard fields."""


class FringeFrame(CalibrationFrame):
    """The fringe pattern of a red filter, scaled and subtracted after bias and flat."""


class PhotometricParameters(CalibrationFrame):
    """Zeropoint and extinction of a chip and filter (results['zeropoint'], ...)."""


# ---- science products ---------------------------------------------------------------------
class ReducedScienceFrame(ScienceProduct):
    """A RawScienceFrame with bias, flat (and fringes) removed."""


class WeightFrame(ScienceProduct):
    """The relative inverse variance of a ReducedScienceFrame, zero where pixels are bad."""


class SourceList(ScienceProduct):
    """Sources extracted from a reduced, regridded or coadded frame: a FITS table in the
    store and, once committed, one :class:`Source` row per source (``get_sources``)."""

    def record_contents(self, session: Any, path: Any) -> None:
        import numpy as np
        from astropy.io import fits
        from sqlalchemy import insert

        with fits.open(path, memmap=False) as hdul:
            table = hdul["SOURCES"].data
            columns = {name: np.asarray(table[name]) for name in SOURCE_COLUMNS}
        session.flush()  # the list's id
        rows = [
            {"source_list_id": self.id}
            | {name: _finite_or_none(columns[name][i]) for name in SOURCE_COLUMNS}
            for i in range(len(table))
        ]
        if rows:
            session.execute(insert(Source), rows)

    def get_sources(self, *, database: Database | None = None, **conditions: Any) -> list[Source]:
        """This list's sources (see :meth:`Source.select` for the conditions)."""
        return Source.select(source_list=self, database=database, **conditions)


class AstrometricParameters(ScienceProduct):
    """The astrometric solution (WCS with distortion) of a reduced frame."""


class GAstromSourceList(ScienceProduct):
    """Sources of a reduced frame prepared for a global astrometric solution."""


class AssociateList(ScienceProduct):
    """Sources of several SourceLists linked within a radius (chains across the lists)."""


class GalFitList(ScienceProduct):
    """Sersic fits of the galaxies of one frame (GalFit): a FITS table ``GALFIT``, one row
    per galaxy; ``get_fits()`` reads it as a Table."""

    def get_fits(self, data_root: str | None = None) -> Any:
        """The fits as an astropy Table (columns in docs/pipeline.md), from the data store
        of ``data_root`` (default: the session's)."""
        return _stored_table(self.sha256, "GALFIT", data_root)


class GalPhotList(ScienceProduct):
    """Elliptical isophotes of the galaxies of one frame (GalPhot): a FITS table
    ``ISOPHOTES``, one row per isophote, ``GALAXY`` numbering the galaxies of ``GALAXIES``."""

    def get_isophotes(self, galaxy: int | None = None, data_root: str | None = None) -> Any:
        """The isophotes (of one galaxy, by its ``GALAXY`` number) as an astropy Table."""
        table = _stored_table(self.sha256, "ISOPHOTES", data_root)
        return table if galaxy is None else table[table["galaxy"] == galaxy]

    def get_galaxies(self, data_root: str | None = None) -> Any:
        """One row per galaxy: number, position, and the source it was selected as."""
        return _stored_table(self.sha256, "GALAXIES", data_root)


def _stored_table(digest: str, hdu: str, data_root: str | None) -> Any:
    """A table HDU of a stored product file (the store's layout: ``root/ab/cd/<sha256>``)."""
    from astropy.table import Table

    from awe.context import session_data_root

    root = Path(data_root or session_data_root()).expanduser().resolve()
    return Table.read(root / digest[:2] / digest[2:4] / digest, hdu=hdu)


class PhotSrcCatalog(ScienceProduct):
    """Standard stars measured in a reduced standard field, matched to the catalogue."""


class RegriddedFrame(ScienceProduct):
    """A reduced frame resampled onto a common sky grid, photometrically scaled."""


class CoaddedRegriddedFrame(ScienceProduct):
    """RegriddedFrames of all chips and dithers added together (chip is None)."""


# The POGS products, so that C=1 commits them and get_job_result returns them.


class SEDFitFile(ScienceProduct):
    """MAGPHYS-structured fit results of one work unit (``object`` = galaxy)."""

    filter_dependent = False


class ParameterMap(ScienceProduct):
    """FITS maps of the 16 parameters of a galaxy, one plane per parameter and statistic."""

    filter_dependent = False


class ParameterPreview(ScienceProduct):
    """A PNG preview of one parameter map (asinh stretch)."""

    filter_dependent = False


class GalaxySNRCube(ScienceProduct):
    """The S/N cube of a registered galaxy (its sigma = flux / S/N)."""

    filter_dependent = False


class GalaxyCube(ScienceProduct):
    """A galaxy's FITS cube checked by RegisterGalaxy; committing it records the
    ``pogs_register`` row (``results``: the registration) with the stored file."""

    filter_dependent = False

    def record_contents(self, session: Any, path: Any) -> None:
        from awe.db.pogs_records import record_registration

        values = dict(self.results or {})
        snr = values.get("snr_sha256")
        root = Path(path).parents[2]  # the data store: root/ab/cd/<sha256>
        snr_path = str(root / snr[:2] / snr[2:4] / snr) if snr else None
        record_registration(session, values, str(path), snr_path)


class WorkUnitPlan(ScienceProduct):
    """fits2wu's plan of one galaxy (areas, pixels, fluxes); committing it records the
    galaxy, its areas and pixels and writes their observations files in the data root's
    ``pogs/<galaxy>/``, as ``awe wu fits2wu`` does."""

    filter_dependent = False

    def record_contents(self, session: Any, path: Any) -> None:
        from awe.db.pogs_records import GalaxyPlan, record_galaxy

        plan = GalaxyPlan.load(path)
        root = Path(path).parents[2]  # the data store's root is the data root
        record_galaxy(session, plan, root / "pogs" / plan.meta["name"])


#: The columns of a source list's FITS table that are kept as rows.
SOURCE_COLUMNS = (
    "number", "x", "y", "ra", "dec", "flux_aper", "fluxerr_aper", "mag_aper", "magerr_aper",
    "flux_auto", "fluxerr_auto", "mag_auto", "magerr_auto", "a", "b", "theta", "fwhm",
    "flux_radius", "kron_radius", "flags",
)  # fmt: skip


def _finite_or_none(value: Any) -> Any:
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float) and not math.isfinite(value):
        return None  # MySQL stores no NaN
    return value


class Source(Base):
    """One source of a SourceList: position (pixels 0-based, sky in degrees), fluxes and
    magnitudes (aperture and auto) with errors, shape and SExtractor flags.

    ``Source.select(ra=150.1, dec=-29.0, radius=5.0)`` finds the sources within 5 arcsec;
    ``source_list.get_sources(max_flags=3)`` the clean ones of a list."""

    __tablename__ = "awe_sources"
    __table_args__ = (Index("ix_awe_sources_position", "dec", "ra"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source_list_id: Mapped[int] = mapped_column(
        ForeignKey("awe_frames.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    x: Mapped[float] = mapped_column(Double)
    y: Mapped[float] = mapped_column(Double)
    ra: Mapped[float | None] = mapped_column(Double)
    dec: Mapped[float | None] = mapped_column(Double)
    flux_aper: Mapped[float | None] = mapped_column(Double)
    fluxerr_aper: Mapped[float | None] = mapped_column(Double)
    mag_aper: Mapped[float | None] = mapped_column(Double)
    magerr_aper: Mapped[float | None] = mapped_column(Double)
    flux_auto: Mapped[float | None] = mapped_column(Double)
    fluxerr_auto: Mapped[float | None] = mapped_column(Double)
    mag_auto: Mapped[float | None] = mapped_column(Double)
    magerr_auto: Mapped[float | None] = mapped_column(Double)
    a: Mapped[float | None] = mapped_column(Double)
    b: Mapped[float | None] = mapped_column(Double)
    theta: Mapped[float | None] = mapped_column(Double)
    fwhm: Mapped[float | None] = mapped_column(Double)
    flux_radius: Mapped[float | None] = mapped_column(Double)
    kron_radius: Mapped[float | None] = mapped_column(Double)
    flags: Mapped[int] = mapped_column(Integer, default=0)

    @classmethod
    def select(
        cls,
        *,
        source_list: SourceList | int | None = None,
        ra: float | None = None,
        dec: float | None = None,
        radius: float | None = None,
        max_flags: int | None = None,
        database: Database | None = None,
    ) -> SourceRows:
        """Sources of one list (a SourceList or its id), within ``radius`` arcsec of
        (ra, dec), with flags at most ``max_flags``; any combination. Ordered by list and
        number."""
        conditions = []
        if source_list is not None:
            list_id = source_list if isinstance(source_list, int) else source_list.id
            conditions.append(cls.source_list_id == list_id)
        if ra is not None or dec is not None or radius is not None:
            if ra is None or dec is None or radius is None:
                raise ValueError("a cone needs ra, dec and radius (arcsec) together")
            half = radius / 3600.0
            widen = half / max(math.cos(math.radians(min(abs(dec) + half, 89.9))), 1e-3)
            conditions += [cls.dec.between(dec - half, dec + half)]
            conditions += [cls.ra.between(ra - widen, ra + widen)]
        if max_flags is not None:
            conditions.append(cls.flags <= max_flags)
        query = select(cls).where(*conditions).order_by(cls.source_list_id, cls.number)
        with session_database(database).session() as session:
            found = SourceRows(session.scalars(query))
        if radius is None:
            return found
        return SourceRows(s for s in found if _separation_arcsec(s.ra, s.dec, ra, dec) <= radius)

    def __repr__(self) -> str:
        where = f"ra={self.ra:.6f} dec={self.dec:.6f}" if self.ra is not None else ""
        return f"Source({self.source_list_id}#{self.number} x={self.x:.2f} y={self.y:.2f} {where})"


def _separation_arcsec(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    r1, d1, r2, d2 = (math.radians(v) for v in (ra1, dec1, ra2, dec2))
    h = math.sin((d2 - d1) / 2) ** 2 + math.cos(d1) * math.cos(d2) * math.sin((r2 - r1) / 2) ** 2
    return math.degrees(2 * math.asin(min(1.0, math.sqrt(h)))) * 3600.0


def frame_classes() -> dict[str, type[Frame]]:
    """Every concrete frame type by name (the values ``frame_type`` can hold)."""
    found: dict[str, type[Frame]] = {}
    pending: list[type[Frame]] = [Frame]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if not cls.__dict__.get("abstract_frame", False):
            found[cls.__name__] = cls
    return dict(sorted(found.items()))


def frame_class(name: str) -> type[Frame]:
    """The frame type called ``name``; an unknown name is an error listing the valid ones."""
    classes = frame_classes()
    if name not in classes:
        raise ValueError(f"{name!r} is not a frame type; frame types: {', '.join(classes)}")
    return classes[name]


def raw_frame_classes() -> Sequence[str]:
    return [n for n, c in frame_classes().items() if issubclass(c, RawFrame)]
