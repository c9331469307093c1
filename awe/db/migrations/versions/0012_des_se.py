"""DES single-epoch processing: unique seasons and BLISS zeropoints.

Revision ID: 0012
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0012"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "awe_des_seasons",
        sa.Column("season", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("exposures", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("season"),
    )
    op.create_table(
        "awe_des_zeropoints",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("expnum", sa.Integer(), nullable=False),
        sa.Column("ccdnum", sa.Integer(), nullable=False),
        sa.Column("band", sa.String(8), nullable=False),
        sa.Column("rnum", sa.Integer(), nullable=False),
        sa.Column("pnum", sa.Integer(), nullable=False),
        sa.Column("season", sa.Integer(), nullable=True),
        sa.Column("zp", sa.Double(), nullable=False),
        sa.Column("zp_error", sa.Double(), nullable=False),
        sa.Column("zp_rms", sa.Double(), nullable=False),
        sa.Column("stars", sa.Integer(), nullable=False),
        sa.Column("clipped", sa.Integer(), nullable=False),
        sa.Column("flag", sa.Integer(), nullable=False),
        sa.Column("job_id", BIG_ID, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("expnum", "ccdnum", "rnum", "pnum", name="uq_awe_des_zeropoints"),
    )
    op.create_index("ix_awe_des_zeropoints_expnum", "awe_des_zeropoints", ["expnum"])
    op.create_index("ix_awe_des_zeropoints_season", "awe_des_zeropoints", ["season"])


def downgrade() -> None:
    op.drop_table("awe_des_zeropoints")
    op.drop_table("awe_des_seasons")
