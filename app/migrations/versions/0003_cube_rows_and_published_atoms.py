"""one cube row per area and month; the published atoms of disclosure control

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 06:10:00

The cube now keeps every measure of an area and month in one row (one read per area-month instead of
one per measure), without key sums: the builder hands those straight to disclosure control, which
stores only published values. Releases of the earlier cube layout cannot be read by this version, so
they are removed; `portal ingest` and `portal demo` publish them again from their sources.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _cube_cell(with_measure: bool) -> None:
    keyed = ["release_id", "measure", "geography", "area_code", "month"] if with_measure else None
    columns: list[sa.Column[object]] = [
        sa.Column("release_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    ]
    if with_measure:
        columns.append(sa.Column("measure", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False))
    columns += [
        sa.Column("geography", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("area_code", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("month", sa.Integer(), nullable=False),
        sa.Column("counts", sa.LargeBinary(), nullable=False),
    ]
    if with_measure:
        columns.append(sa.Column("keysums", sa.LargeBinary(), nullable=True))
    op.create_table(
        "cube_cell",
        *columns,
        sa.ForeignKeyConstraint(["release_id"], ["release.id"]),
        sa.PrimaryKeyConstraint(*(keyed or ["release_id", "geography", "area_code", "month"])),
    )


def upgrade() -> None:
    op.drop_table("cube_cell")
    op.execute("UPDATE register_load SET release_id = NULL")
    op.execute("DELETE FROM release")
    _cube_cell(with_measure=False)
    op.create_table(
        "published_cell",
        sa.Column("release_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("geography", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("area_code", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("time_unit", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("values", sa.LargeBinary(), nullable=False),
        sa.Column("exact", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(["release_id"], ["release.id"]),
        sa.PrimaryKeyConstraint("release_id", "geography", "area_code", "time_unit", "period"),
    )


def downgrade() -> None:
    op.drop_table("published_cell")
    op.drop_table("cube_cell")
    op.execute("UPDATE register_load SET release_id = NULL")
    op.execute("DELETE FROM release")
    _cube_cell(with_measure=True)
