"""Tables of DES single-epoch processing: seasons (unique, as the DESGW automation needs
them) and BLISS zeropoints per exposure and CCD (CCD 0: the all-CCD value)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Double, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from awe.db.models import NAME_LENGTH, Base, BigId, UTCDateTime, utcnow


class DesSeason(Base):
    """A season (``dpNN``): one set of exposures processed together; never reused."""

    __tablename__ = "awe_des_seasons"

    season: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    username: Mapped[str] = mapped_column(String(NAME_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    exposures: Mapped[str] = mapped_column(Text, default="")  # the list as submitted


class DesZeropoint(Base):
    """One CCD's BLISS zeropoint (the sign BLISS stores: mag = -2.5 log10 flux - zp)."""

    __tablename__ = "awe_des_zeropoints"
    __table_args__ = (
        UniqueConstraint("expnum", "ccdnum", "rnum", "pnum", name="uq_awe_des_zeropoints"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    expnum: Mapped[int] = mapped_column(Integer, index=True)
    ccdnum: Mapped[int] = mapped_column(Integer)
    band: Mapped[str] = mapped_column(String(8))
    rnum: Mapped[int] = mapped_column(Integer)
    pnum: Mapped[int] = mapped_column(Integer)
    season: Mapped[int | None] = mapped_column(Integer, index=True)
    zp: Mapped[float] = mapped_column(Double)
    zp_error: Mapped[float] = mapped_column(Double)
    zp_rms: Mapped[float] = mapped_column(Double)
    stars: Mapped[int] = mapped_column(Integer)
    clipped: Mapped[int] = mapped_column(Integer)
    flag: Mapped[int] = mapped_column(Integer)
    job_id: Mapped[int | None] = mapped_column(BigId)
