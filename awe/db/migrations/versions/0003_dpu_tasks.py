"""DPU task graph and journal sync: task step, key, reason, time limit, journal offset;
job work folder, commit and cancel request.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("awe_jobs") as batch:
        batch.add_column(sa.Column("work_dir", sa.String(1024), nullable=True))
        batch.add_column(
            sa.Column("commit", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("awe_tasks") as batch:
        batch.add_column(sa.Column("sequence", sa.String(255), nullable=False, server_default=""))
        batch.add_column(sa.Column("step", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("key", sa.String(255), nullable=True))
        batch.add_column(sa.Column("reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("time_limit", sa.Double(), nullable=True))
        batch.add_column(
            sa.Column("journal_offset", sa.BigInteger(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("awe_tasks") as batch:
        for column in ("journal_offset", "time_limit", "reason", "key", "step", "sequence"):
            batch.drop_column(column)
    with op.batch_alter_table("awe_jobs") as batch:
        for column in ("cancel_requested", "commit", "work_dir"):
            batch.drop_column(column)
