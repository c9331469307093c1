"""The POGS work-unit tables: runs, filters, registrations, galaxies, areas, pixel results.

As theSkyNet POGS has them (its ``create_database.sql``), prefixed ``pogs_`` so they sit
beside the job tables: a *run* fixes the filters and the model library; a *registration*
is a galaxy waiting to be cut into work units; a *galaxy* is cut into *areas* (one area =
one work unit = one DPU task); each accepted pixel has a *pixel_result* row that receives
the medians of the 16 MAGPHYS parameters when its work unit is assimilated.

Redshift is ``DECIMAL(10,7)`` as in POGS (the observations file writes it as stored);
``sigma`` ``DECIMAL(3,2)``. Times are aware UTC like every AWE table.
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    Double,
    ForeignKey,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from awe.db.models import Base, BigId, UTCDateTime, utcnow


class GalaxyStatus(enum.IntEnum):
    """POGS' ``galaxy_status`` rows."""

    COMPUTING = 0
    PROCESSED = 1
    ARCHIVED = 2
    STORED = 3
    DELETED = 4


class AreaState(str, enum.Enum):
    """Where a work unit is: written, queued on a DPU, fitted (and validated), assimilated."""

    CREATED = "CREATED"
    QUEUED = "QUEUED"
    DONE = "DONE"
    INVALID = "INVALID"


class PogsFilter(Base):
    """A photometric band POGS knows (34 seeded, as POGS' ``filter`` table); ``curve``
    names its transmission curve in speclite, or a file, or is empty when none ships."""

    __tablename__ = "pogs_filter"

    filter_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(30))
    eff_lambda: Mapped[float] = mapped_column(Double)  # microns
    filter_number: Mapped[int] = mapped_column(Integer, unique=True)  # MAGPHYS id
    ultraviolet: Mapped[bool] = mapped_column(Boolean, default=False)
    optical: Mapped[bool] = mapped_column(Boolean, default=False)
    infrared: Mapped[bool] = mapped_column(Boolean, default=False)
    label: Mapped[str] = mapped_column(String(20))
    curve: Mapped[str | None] = mapped_column(String(255))


class PogsRun(Base):
    """A run: its filters and its model library (``pogs_run_file``)."""

    __tablename__ = "pogs_run"

    run_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    short_description: Mapped[str] = mapped_column(String(255))
    long_description: Mapped[str] = mapped_column(Text, default="")
    directory: Mapped[str] = mapped_column(String(1024))
    fpops_est: Mapped[float] = mapped_column(Double)
    cobblestone_factor: Mapped[float] = mapped_column(Double)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    filters: Mapped[list[PogsFilter]] = relationship(
        secondary="pogs_run_filter", order_by="PogsFilter.eff_lambda"
    )
    files: Mapped[list[PogsRunFile]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="PogsRunFile.name"
    )


class PogsRunFilter(Base):
    __tablename__ = "pogs_run_filter"

    run_id: Mapped[int] = mapped_column(ForeignKey("pogs_run.run_id"), primary_key=True)
    filter_id: Mapped[int] = mapped_column(ForeignKey("pogs_filter.filter_id"), primary_key=True)


class PogsRunFile(Base):
    """A model-library file of a run, as POGS' ``file_details.dat`` recorded it."""

    __tablename__ = "pogs_run_file"
    __table_args__ = (UniqueConstraint("run_id", "name", name="uq_pogs_run_file_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("pogs_run.run_id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    file_type: Mapped[str] = mapped_column(String(16))  # "sfh" or "ir"
    redshift: Mapped[Decimal] = mapped_column(Numeric(7, 4))
    md5: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)

    run: Mapped[PogsRun] = relationship(back_populates="files")


class PogsRegister(Base):
    """A galaxy waiting for fits2wu (``create_time`` NULL) or already converted."""

    __tablename__ = "pogs_register"

    register_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    galaxy_name: Mapped[str] = mapped_column(String(128))
    redshift: Mapped[Decimal] = mapped_column(Numeric(10, 7))
    galaxy_type: Mapped[str] = mapped_column(String(10))
    sigma: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    filename: Mapped[str] = mapped_column(String(1024))
    sigma_filename: Mapped[str | None] = mapped_column(String(1024))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    register_time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    create_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    run_id: Mapped[int] = mapped_column(ForeignKey("pogs_run.run_id"))
    error: Mapped[str | None] = mapped_column(Text)

    tags: Mapped[list[PogsTag]] = relationship(secondary="pogs_tag_register")


class PogsGalaxyStatus(Base):
    __tablename__ = "pogs_galaxy_status"

    galaxy_status_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    description: Mapped[str] = mapped_column(String(64))


class PogsGalaxy(Base):
    __tablename__ = "pogs_galaxy"

    galaxy_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("pogs_run.run_id"))
    register_id: Mapped[int | None] = mapped_column(ForeignKey("pogs_register.register_id"))
    name: Mapped[str] = mapped_column(String(128))
    dimension_x: Mapped[int] = mapped_column(Integer)
    dimension_y: Mapped[int] = mapped_column(Integer)
    dimension_z: Mapped[int] = mapped_column(Integer)
    redshift: Mapped[Decimal] = mapped_column(Numeric(10, 7))
    sigma: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    galaxy_type: Mapped[str] = mapped_column(String(10))
    ra_cent: Mapped[float | None] = mapped_column(Double)
    dec_cent: Mapped[float | None] = mapped_column(Double)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    pixel_count: Mapped[int] = mapped_column(Integer, default=0)
    pixels_processed: Mapped[int] = mapped_column(Integer, default=0)
    status_id: Mapped[int] = mapped_column(
        ForeignKey("pogs_galaxy_status.galaxy_status_id"), default=GalaxyStatus.COMPUTING
    )
    credit_per_pixel: Mapped[float] = mapped_column(Double, default=0.0)
    fpops_per_pixel: Mapped[float] = mapped_column(Double, default=0.0)
    create_time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    image_time: Mapped[datetime | None] = mapped_column(UTCDateTime)

    areas: Mapped[list[PogsArea]] = relationship(
        back_populates="galaxy", order_by="PogsArea.area_id", cascade="all, delete-orphan"
    )
    tags: Mapped[list[PogsTag]] = relationship(secondary="pogs_tag_galaxy")


class PogsArea(Base):
    """One work unit: a rectangle of the galaxy and the pixels accepted in it."""

    __tablename__ = "pogs_area"
    __table_args__ = (
        UniqueConstraint(
            "galaxy_id", "top_x", "top_y", "bottom_x", "bottom_y", name="uq_pogs_area_box"
        ),
    )

    area_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    galaxy_id: Mapped[int] = mapped_column(ForeignKey("pogs_galaxy.galaxy_id", ondelete="CASCADE"))
    top_x: Mapped[int] = mapped_column(Integer)
    top_y: Mapped[int] = mapped_column(Integer)
    bottom_x: Mapped[int] = mapped_column(Integer)
    bottom_y: Mapped[int] = mapped_column(Integer)
    workunit_name: Mapped[str] = mapped_column(String(255))
    observations: Mapped[str] = mapped_column(String(1024))  # path of the observations file
    pixels: Mapped[int] = mapped_column(Integer)
    credit: Mapped[float] = mapped_column(Double)
    fpops_est: Mapped[float] = mapped_column(Double)
    fpops_bound: Mapped[float] = mapped_column(Double)
    state: Mapped[str] = mapped_column(String(16), default=AreaState.CREATED.value)
    #: The AWE job that fitted it (POGS' ``workunit_id``).
    workunit_id: Mapped[int | None] = mapped_column(BigId)
    update_time: Mapped[datetime | None] = mapped_column(UTCDateTime)

    galaxy: Mapped[PogsGalaxy] = relationship(back_populates="areas")


class PogsPixelResult(Base):
    """One pixel of an area; the 16 parameters are the medians of its fit."""

    __tablename__ = "pogs_pixel_result"
    __table_args__ = (UniqueConstraint("galaxy_id", "x", "y", name="uq_pogs_pixel_xy"),)

    pxresult_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    area_id: Mapped[int] = mapped_column(
        ForeignKey("pogs_area.area_id", ondelete="CASCADE"), index=True
    )
    galaxy_id: Mapped[int] = mapped_column(ForeignKey("pogs_galaxy.galaxy_id", ondelete="CASCADE"))
    x: Mapped[int] = mapped_column(Integer)
    y: Mapped[int] = mapped_column(Integer)
    workunit_id: Mapped[int | None] = mapped_column(BigId)
    fmu_sfh: Mapped[float | None] = mapped_column(Double)
    fmu_ir: Mapped[float | None] = mapped_column(Double)
    mu: Mapped[float | None] = mapped_column(Double)
    tauv: Mapped[float | None] = mapped_column(Double)
    s_sfr: Mapped[float | None] = mapped_column(Double)
    m: Mapped[float | None] = mapped_column(Double)
    ldust: Mapped[float | None] = mapped_column(Double)
    t_c_ism: Mapped[float | None] = mapped_column(Double)
    t_w_bc: Mapped[float | None] = mapped_column(Double)
    xi_c_tot: Mapped[float | None] = mapped_column(Double)
    xi_pah_tot: Mapped[float | None] = mapped_column(Double)
    xi_mir_tot: Mapped[float | None] = mapped_column(Double)
    xi_w_tot: Mapped[float | None] = mapped_column(Double)
    tvism: Mapped[float | None] = mapped_column(Double)
    mdust: Mapped[float | None] = mapped_column(Double)
    sfr: Mapped[float | None] = mapped_column(Double)


class PogsTag(Base):
    __tablename__ = "pogs_tag"

    tag_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tag_text: Mapped[str] = mapped_column(String(100), unique=True)


class PogsTagRegister(Base):
    __tablename__ = "pogs_tag_register"

    tag_id: Mapped[int] = mapped_column(ForeignKey("pogs_tag.tag_id"), primary_key=True)
    register_id: Mapped[int] = mapped_column(
        ForeignKey("pogs_register.register_id", ondelete="CASCADE"), primary_key=True
    )


class PogsTagGalaxy(Base):
    __tablename__ = "pogs_tag_galaxy"

    tag_id: Mapped[int] = mapped_column(ForeignKey("pogs_tag.tag_id"), primary_key=True)
    galaxy_id: Mapped[int] = mapped_column(
        ForeignKey("pogs_galaxy.galaxy_id", ondelete="CASCADE"), primary_key=True
    )
