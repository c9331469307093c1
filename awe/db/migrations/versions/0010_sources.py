"""sources of a SourceList as rows, queryable by list, position and flags

Revision ID: 0010
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# Frozen copy of the model type (a migration must not change when models.py does).
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0010"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MEASURES = (
    "flux_aper", "fluxerr_aper", "mag_aper", "magerr_aper", "flux_auto", "fluxerr_auto",
    "mag_auto", "magerr_auto", "a", "b", "theta", "fwhm", "flux_radius", "kron_radius",
)  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "awe_sources",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("source_list_id", BIG_ID, nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("x", sa.Double(), nullable=False),
        sa.Column("y", sa.Double(), nullable=False),
        sa.Column("ra", sa.Double(), nullable=True),
        sa.Column("dec", sa.Double(), nullable=True),
        *(sa.Column(name, sa.Double(), nullable=True) for name in MEASURES),
        sa.Column("flags", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["source_list_id"], ["awe_frames.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("awe_sources", schema=None) as batch_op:
        batch_op.create_index("ix_awe_sources_position", ["dec", "ra"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_awe_sources_source_list_id"), ["source_list_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("awe_sources")
