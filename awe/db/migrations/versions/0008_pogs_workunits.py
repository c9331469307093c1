"""POGS work units: runs, filters, registrations, galaxies, areas, pixel results, tags.

Revision ID: 0008
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# Frozen copies of the model types (a migration must not change when pogs.py does).
UTC_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0008"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PARAMETERS = (
    "fmu_sfh",
    "fmu_ir",
    "mu",
    "tauv",
    "s_sfr",
    "m",
    "ldust",
    "t_c_ism",
    "t_w_bc",
    "xi_c_tot",
    "xi_pah_tot",
    "xi_mir_tot",
    "xi_w_tot",
    "tvism",
    "mdust",
    "sfr",
)
FILTERS = (
    (0, "GALEXFUV", 0.152, 123, 1, 0, 0, "FUV", "galex-fuv"),
    (1, "GALEXNUV", 0.231, 124, 1, 0, 0, "NUV", "galex-nuv"),
    (2, "SDSSu", 0.3534, 229, 0, 1, 0, "u", "sdss2010-u"),
    (3, "SDSSg", 0.4742, 230, 0, 1, 0, "g", "sdss2010-g"),
    (4, "PS1g", 0.481, 323, 0, 1, 0, "g", "panstarrs-g"),
    (5, "PS1r", 0.617, 324, 0, 1, 0, "r", "panstarrs-r"),
    (6, "SDSSr", 0.6189, 231, 0, 1, 0, "r", "sdss2010-r"),
    (7, "PS1i", 0.752, 325, 0, 1, 0, "i", "panstarrs-i"),
    (8, "SDSSi", 0.7595, 232, 0, 1, 0, "i", "sdss2010-i"),
    (9, "PS1z", 0.866, 326, 0, 1, 0, "z", "panstarrs-z"),
    (10, "SDSSz", 0.9032, 233, 0, 1, 0, "z", "sdss2010-z"),
    (11, "PS1y", 0.962, 327, 0, 1, 0, "y", "panstarrs-y"),
    (12, "WISEW1", 3.4, 280, 0, 0, 1, "3.4um", "wise2010-W1"),
    (13, "IRAC3.6", 3.550, 153, 0, 0, 1, "3.6um", None),
    (14, "IRAC4.5", 4.493, 154, 0, 0, 1, "4.5um", None),
    (15, "WISEW2", 4.6, 281, 0, 0, 1, "4.6um", "wise2010-W2"),
    (16, "IRAC5.8", 5.731, 155, 0, 0, 1, "5.8um", None),
    (17, "IRAC8.0", 7.872, 156, 0, 0, 1, "8.0um", None),
    (18, "WISEW3", 12.0, 282, 0, 0, 1, "12um", "wise2010-W3"),
    (19, "WISEW4", 22.0, 283, 0, 0, 1, "22um", "wise2010-W4"),
    (20, "MIPS24", 23.68, 157, 0, 0, 1, "24um", None),
    (21, "MIPS70", 71.42, 158, 0, 0, 1, "70um", None),
    (22, "PACS75", 75.0, 169, 0, 0, 1, "75um", None),
    (23, "PACS110", 110.0, 170, 0, 0, 1, "110um", None),
    (24, "MIPS160", 155.9, 159, 0, 0, 1, "160um", None),
    (25, "PACS170", 170.0, 171, 0, 0, 1, "170um", None),
    (26, "SPIRE250", 250.0, 172, 0, 0, 1, "250um", None),
    (27, "SPIRE350", 350.0, 173, 0, 0, 1, "350um", None),
    (28, "SPIRE500", 500.0, 174, 0, 0, 1, "500um", None),
    (29, "SDSSu", 0.354, 115, 0, 1, 0, "u", "sdss2010-u"),
    (30, "SDSSg", 0.477, 116, 0, 1, 0, "g", "sdss2010-g"),
    (31, "SDSSr", 0.623, 117, 0, 1, 0, "r", "sdss2010-r"),
    (32, "SDSSi", 0.763, 118, 0, 1, 0, "i", "sdss2010-i"),
    (33, "SDSSz", 0.913, 119, 0, 1, 0, "z", "sdss2010-z"),
)
STATUSES = ((0, "COMPUTING"), (1, "PROCESSED"), (2, "ARCHIVED"), (3, "STORED"), (4, "DELETED"))


def upgrade() -> None:
    filters = op.create_table(
        "pogs_filter",
        sa.Column("filter_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=30), nullable=False),
        sa.Column("eff_lambda", sa.Double(), nullable=False),
        sa.Column("filter_number", sa.Integer(), nullable=False),
        sa.Column("ultraviolet", sa.Boolean(), nullable=False),
        sa.Column("optical", sa.Boolean(), nullable=False),
        sa.Column("infrared", sa.Boolean(), nullable=False),
        sa.Column("label", sa.String(length=20), nullable=False),
        sa.Column("curve", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("filter_id"),
        sa.UniqueConstraint("filter_number"),
    )
    op.create_table(
        "pogs_run",
        sa.Column("run_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("short_description", sa.String(length=255), nullable=False),
        sa.Column("long_description", sa.Text(), nullable=False),
        sa.Column("directory", sa.String(length=1024), nullable=False),
        sa.Column("fpops_est", sa.Double(), nullable=False),
        sa.Column("cobblestone_factor", sa.Double(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("run_id"),
    )
    op.create_table(
        "pogs_run_filter",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("filter_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["filter_id"], ["pogs_filter.filter_id"]),
        sa.ForeignKeyConstraint(["run_id"], ["pogs_run.run_id"]),
        sa.PrimaryKeyConstraint("run_id", "filter_id"),
    )
    op.create_table(
        "pogs_run_file",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("file_type", sa.String(length=16), nullable=False),
        sa.Column("redshift", sa.Numeric(precision=7, scale=4), nullable=False),
        sa.Column("md5", sa.String(length=32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["pogs_run.run_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "name", name="uq_pogs_run_file_name"),
    )
    op.create_table(
        "pogs_tag",
        sa.Column("tag_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tag_text", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("tag_id"),
        sa.UniqueConstraint("tag_text"),
    )
    op.create_table(
        "pogs_register",
        sa.Column("register_id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("galaxy_name", sa.String(length=128), nullable=False),
        sa.Column("redshift", sa.Numeric(precision=10, scale=7), nullable=False),
        sa.Column("galaxy_type", sa.String(length=10), nullable=False),
        sa.Column("sigma", sa.Numeric(precision=3, scale=2), nullable=True),
        sa.Column("filename", sa.String(length=1024), nullable=False),
        sa.Column("sigma_filename", sa.String(length=1024), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("register_time", UTC_DATETIME, nullable=False),
        sa.Column("create_time", UTC_DATETIME, nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["pogs_run.run_id"]),
        sa.PrimaryKeyConstraint("register_id"),
    )
    statuses = op.create_table(
        "pogs_galaxy_status",
        sa.Column("galaxy_status_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("description", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("galaxy_status_id"),
    )
    op.create_table(
        "pogs_galaxy",
        sa.Column("galaxy_id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("register_id", BIG_ID, nullable=True),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("dimension_x", sa.Integer(), nullable=False),
        sa.Column("dimension_y", sa.Integer(), nullable=False),
        sa.Column("dimension_z", sa.Integer(), nullable=False),
        sa.Column("redshift", sa.Numeric(precision=10, scale=7), nullable=False),
        sa.Column("sigma", sa.Numeric(precision=3, scale=2), nullable=True),
        sa.Column("galaxy_type", sa.String(length=10), nullable=False),
        sa.Column("ra_cent", sa.Double(), nullable=True),
        sa.Column("dec_cent", sa.Double(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("pixel_count", sa.Integer(), nullable=False),
        sa.Column("pixels_processed", sa.Integer(), nullable=False),
        sa.Column("status_id", sa.Integer(), nullable=False),
        sa.Column("credit_per_pixel", sa.Double(), nullable=False),
        sa.Column("fpops_per_pixel", sa.Double(), nullable=False),
        sa.Column("create_time", UTC_DATETIME, nullable=False),
        sa.Column("image_time", UTC_DATETIME, nullable=True),
        sa.ForeignKeyConstraint(["register_id"], ["pogs_register.register_id"]),
        sa.ForeignKeyConstraint(["run_id"], ["pogs_run.run_id"]),
        sa.ForeignKeyConstraint(["status_id"], ["pogs_galaxy_status.galaxy_status_id"]),
        sa.PrimaryKeyConstraint("galaxy_id"),
    )
    op.create_table(
        "pogs_area",
        sa.Column("area_id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("galaxy_id", BIG_ID, nullable=False),
        sa.Column("top_x", sa.Integer(), nullable=False),
        sa.Column("top_y", sa.Integer(), nullable=False),
        sa.Column("bottom_x", sa.Integer(), nullable=False),
        sa.Column("bottom_y", sa.Integer(), nullable=False),
        sa.Column("workunit_name", sa.String(length=255), nullable=False),
        sa.Column("observations", sa.String(length=1024), nullable=False),
        sa.Column("pixels", sa.Integer(), nullable=False),
        sa.Column("credit", sa.Double(), nullable=False),
        sa.Column("fpops_est", sa.Double(), nullable=False),
        sa.Column("fpops_bound", sa.Double(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("workunit_id", BIG_ID, nullable=True),
        sa.Column("update_time", UTC_DATETIME, nullable=True),
        sa.ForeignKeyConstraint(["galaxy_id"], ["pogs_galaxy.galaxy_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("area_id"),
        sa.UniqueConstraint(
            "galaxy_id", "top_x", "top_y", "bottom_x", "bottom_y", name="uq_pogs_area_box"
        ),
    )
    op.create_table(
        "pogs_pixel_result",
        sa.Column("pxresult_id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("area_id", BIG_ID, nullable=False),
        sa.Column("galaxy_id", BIG_ID, nullable=False),
        sa.Column("x", sa.Integer(), nullable=False),
        sa.Column("y", sa.Integer(), nullable=False),
        sa.Column("workunit_id", BIG_ID, nullable=True),
        *[sa.Column(name, sa.Double(), nullable=True) for name in PARAMETERS],
        sa.ForeignKeyConstraint(["area_id"], ["pogs_area.area_id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["galaxy_id"], ["pogs_galaxy.galaxy_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("pxresult_id"),
        sa.UniqueConstraint("galaxy_id", "x", "y", name="uq_pogs_pixel_xy"),
    )
    with op.batch_alter_table("pogs_pixel_result", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pogs_pixel_result_area_id"), ["area_id"], unique=False)
    op.create_table(
        "pogs_tag_register",
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.Column("register_id", BIG_ID, nullable=False),
        sa.ForeignKeyConstraint(["register_id"], ["pogs_register.register_id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tag_id"], ["pogs_tag.tag_id"]),
        sa.PrimaryKeyConstraint("tag_id", "register_id"),
    )
    op.create_table(
        "pogs_tag_galaxy",
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.Column("galaxy_id", BIG_ID, nullable=False),
        sa.ForeignKeyConstraint(["galaxy_id"], ["pogs_galaxy.galaxy_id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tag_id"], ["pogs_tag.tag_id"]),
        sa.PrimaryKeyConstraint("tag_id", "galaxy_id"),
    )
    columns = (
        "filter_id",
        "name",
        "eff_lambda",
        "filter_number",
        "ultraviolet",
        "optical",
        "infrared",
        "label",
        "curve",
    )
    op.bulk_insert(
        filters,
        [
            {
                **dict(zip(columns, row, strict=True)),
                **{
                    k: bool(row[i])
                    for i, k in ((4, "ultraviolet"), (5, "optical"), (6, "infrared"))
                },
            }
            for row in FILTERS
        ],
    )
    op.bulk_insert(statuses, [{"galaxy_status_id": i, "description": d} for i, d in STATUSES])


def downgrade() -> None:
    for table in (
        "pogs_tag_galaxy",
        "pogs_tag_register",
        "pogs_pixel_result",
        "pogs_area",
        "pogs_galaxy",
        "pogs_galaxy_status",
        "pogs_register",
        "pogs_tag",
        "pogs_run_file",
        "pogs_run_filter",
        "pogs_run",
        "pogs_filter",
    ):
        op.drop_table(table)
