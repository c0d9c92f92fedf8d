"""Routing: other local domains, alias domains, address aliases, forwarding.

Revision ID: 0007_domains_aliases
Revises: 0001
Create Date: 2026-12-05

Own branch (``domains_aliases``) off the initial schema; hand-written to match
``storage/sql/routes_models.py`` (imported here so its tables join
``Base.metadata``, which the contract test compares against).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.sql.routes_models  # noqa: F401 - registers the tables on Base.metadata
from storage.sql.models import UtcDateTime

revision: str = "0007_domains_aliases"
down_revision: str | None = "0001"
branch_labels: tuple[str, ...] | None = ("domains_aliases",)
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "dir_domains",
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("alias_of", sa.String(253), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_dir_domains"),
    )
    op.create_table(
        "dir_address_aliases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(320), nullable=False),
        sa.Column("target", sa.String(320), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dir_address_aliases"),
        sa.UniqueConstraint("alias", "target", name="uq_dir_address_aliases_alias_target"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_dir_address_aliases_alias", "dir_address_aliases", ["alias"])
    op.create_index("ix_dir_address_aliases_target", "dir_address_aliases", ["target"])
    op.create_table(
        "dir_forwards",
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("target", sa.String(320), nullable=False),
        sa.Column("keep_copy", sa.Boolean(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("address", name="pk_dir_forwards"),
    )
    op.create_table(
        "dir_route_serial",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("serial", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dir_route_serial"),
    )


def downgrade() -> None:
    op.drop_table("dir_route_serial")
    op.drop_table("dir_forwards")
    op.drop_index("ix_dir_address_aliases_target", table_name="dir_address_aliases")
    op.drop_index("ix_dir_address_aliases_alias", table_name="dir_address_aliases")
    op.drop_table("dir_address_aliases")
    op.drop_table("dir_domains")
