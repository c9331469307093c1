"""initial schema

Revision ID: 0001
Revises: -
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# Frozen copies of the model types (a migration must not change when models.py does).
UTC_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "awe_projects",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "awe_users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "awe_jobs",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.String(length=255), nullable=False),
        sa.Column("dpu_name", sa.String(length=64), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "QUEUED",
                "RUNNING",
                "FINISHED",
                "CANCELLED",
                name="job_state",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("code_snapshot_id", sa.String(length=64), nullable=True),
        sa.Column("submitted_at", UTC_DATETIME, nullable=False),
        sa.Column("started_at", UTC_DATETIME, nullable=True),
        sa.Column("finished_at", UTC_DATETIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["awe_projects.id"],
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["awe_users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("awe_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_awe_jobs_user_id_id", ["user_id", "id"], unique=False)

    op.create_table(
        "awe_tasks",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("job_id", BIG_ID, nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "QUEUED",
                "RUNNING",
                "N",
                "E",
                "A",
                "S",
                "U",
                name="task_state",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("started_at", UTC_DATETIME, nullable=True),
        sa.Column("finished_at", UTC_DATETIME, nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["awe_jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("job_id", "number", name="uq_awe_tasks_job_number"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "awe_log_records",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("job_id", BIG_ID, nullable=False),
        sa.Column("task_id", BIG_ID, nullable=True),
        sa.Column("time", UTC_DATETIME, nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["awe_jobs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["task_id"], ["awe_tasks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("awe_log_records", schema=None) as batch_op:
        batch_op.create_index("ix_awe_log_records_job_id_id", ["job_id", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_awe_log_records_task_id"), ["task_id"], unique=False)

    op.create_table(
        "awe_task_dependencies",
        sa.Column("task_id", BIG_ID, nullable=False),
        sa.Column("depends_on_id", BIG_ID, nullable=False),
        sa.ForeignKeyConstraint(["depends_on_id"], ["awe_tasks.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["task_id"], ["awe_tasks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("task_id", "depends_on_id"),
    )


def downgrade() -> None:
    # Indexes go with their tables (MySQL refuses to drop one a foreign key needs).
    for table in (
        "awe_task_dependencies",
        "awe_log_records",
        "awe_tasks",
        "awe_jobs",
        "awe_users",
        "awe_projects",
    ):
        op.drop_table(table)
