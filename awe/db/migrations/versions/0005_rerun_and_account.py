"""Recovery and ownership: a job may be the rerun of another (``rerun_of``), and on
MySQL/MariaDB a job records the database account that submitted it (``account``).

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("awe_jobs") as batch:
        batch.add_column(
            sa.Column("rerun_of", sa.BigInteger().with_variant(sa.Integer(), "sqlite"))
        )
        batch.add_column(sa.Column("account", sa.String(320), nullable=True))
        batch.create_foreign_key(
            "fk_awe_jobs_rerun_of", "awe_jobs", ["rerun_of"], ["id"], ondelete="SET NULL"
        )
        batch.create_index("ix_awe_jobs_rerun_of", ["rerun_of"])


def downgrade() -> None:
    with op.batch_alter_table("awe_jobs") as batch:
        batch.drop_constraint("fk_awe_jobs_rerun_of", type_="foreignkey")
        batch.drop_index("ix_awe_jobs_rerun_of")
        batch.drop_column("account")
        batch.drop_column("rerun_of")
