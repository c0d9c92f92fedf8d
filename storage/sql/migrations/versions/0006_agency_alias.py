"""Agency aliases: extra names dispatch and the portal search resolve to an agency.

Revision ID: 0006_agency_alias
Revises: 0001 (depends on 0002_directory: the aliases point at dir_agencies)
Create Date: 2026-12-05

Own branch (``agency_alias``) off the initial schema; hand-written to match
``storage/sql/alias_models.py`` (imported here so its table joins
``Base.metadata``, which the contract test compares against).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.sql.alias_models  # noqa: F401 - registers the table on Base.metadata
from storage.sql.models import UtcDateTime

revision: str = "0006_agency_alias"
down_revision: str | None = "0001"
branch_labels: tuple[str, ...] | None = ("agency_alias",)
depends_on: str | None = "0002_directory"


def upgrade() -> None:
    op.create_table(
        "dir_agency_aliases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dir_agency_aliases"),
        sa.UniqueConstraint("key", name="uq_dir_agency_aliases_key"),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["dir_agencies.id"],
            name="fk_dir_agency_aliases_agency_id_dir_agencies",
            ondelete="CASCADE",
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_dir_agency_aliases_agency_id", "dir_agency_aliases", ["agency_id"])


def downgrade() -> None:
    op.drop_index("ix_dir_agency_aliases_agency_id", table_name="dir_agency_aliases")
    op.drop_table("dir_agency_aliases")
