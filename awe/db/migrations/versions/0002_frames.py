"""typed frames: raw data and products with provenance and validity

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# Frozen copies of the model types (a migration must not change when frames.py does).
UTC_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "awe_frames",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("frame_type", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("instrument", sa.String(length=64), nullable=False),
        sa.Column("chip", sa.String(length=64), nullable=True),
        sa.Column("filter", sa.String(length=64), nullable=True),
        sa.Column("night", sa.Date(), nullable=True),
        sa.Column("object", sa.String(length=255), nullable=False),
        sa.Column("exposure_number", sa.BigInteger(), nullable=True),
        sa.Column("mjd", sa.Double(), nullable=True),
        sa.Column("exposure_time", sa.Double(), nullable=True),
        sa.Column("date_obs", UTC_DATETIME, nullable=True),
        sa.Column("ra", sa.Double(), nullable=True),
        sa.Column("dec", sa.Double(), nullable=True),
        sa.Column("airmass", sa.Double(), nullable=True),
        sa.Column("job_id", BIG_ID, nullable=True),
        sa.Column("task_id", BIG_ID, nullable=True),
        sa.Column("code_snapshot_id", sa.String(length=64), nullable=True),
        sa.Column("process_params", sa.JSON(), nullable=False),
        sa.Column("results", sa.JSON(), nullable=False),
        sa.Column("is_valid", sa.Boolean(), nullable=False),
        sa.Column("quality_flags", sa.Integer(), nullable=False),
        sa.Column("valid_from", UTC_DATETIME, nullable=True),
        sa.Column("valid_to", UTC_DATETIME, nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["awe_jobs.id"]),
        sa.ForeignKeyConstraint(["task_id"], ["awe_tasks.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sha256", "frame_type", name="uq_awe_frames_sha256_type"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("awe_frames", schema=None) as batch_op:
        batch_op.create_index(
            "ix_awe_frames_calibration",
            ["frame_type", "instrument", "chip", "created_at"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_awe_frames_filename"), ["filename"], unique=False)
        batch_op.create_index(batch_op.f("ix_awe_frames_job_id"), ["job_id"], unique=False)
        batch_op.create_index(
            "ix_awe_frames_lookup", ["frame_type", "instrument", "night", "chip"], unique=False
        )

    op.create_table(
        "awe_frame_inputs",
        sa.Column("frame_id", BIG_ID, nullable=False),
        sa.Column("input_id", BIG_ID, nullable=False),
        sa.ForeignKeyConstraint(["frame_id"], ["awe_frames.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["input_id"], ["awe_frames.id"]),
        sa.PrimaryKeyConstraint("frame_id", "input_id"),
    )
    with op.batch_alter_table("awe_frame_inputs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_awe_frame_inputs_input_id"), ["input_id"], unique=False
        )


def downgrade() -> None:
    # Dropping a table drops its indexes; MySQL refuses to drop an index a foreign key uses.
    op.drop_table("awe_frame_inputs")
    op.drop_table("awe_frames")
