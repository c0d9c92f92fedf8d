"""Sieve memory: vacation replies sent and duplicate tracking.

Revision ID: 0008_sieve_state
Revises: 0001
Create Date: 2026-12-05

Own branch (``sieve_state``) off the initial schema; hand-written to match
``storage/sql/sievestate_models.py`` (imported here so its tables join
``Base.metadata``, which the contract test compares against).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.sql.sievestate_models  # noqa: F401 - registers the tables on Base.metadata
from storage.sql.models import UtcDateTime

revision: str = "0008_sieve_state"
down_revision: str | None = "0001"
branch_labels: tuple[str, ...] | None = ("sieve_state",)
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "sieve_vacation",
        sa.Column("owner", sa.String(320), nullable=False),
        sa.Column("handle", sa.String(128), nullable=False),
        sa.Column("sender", sa.String(320), nullable=False),
        sa.Column("expires", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("owner", "handle", "sender", name="pk_sieve_vacation"),
    )
    op.create_index("ix_sieve_vacation_expires", "sieve_vacation", ["expires"])
    op.create_table(
        "sieve_duplicate",
        sa.Column("owner", sa.String(320), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("expires", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("owner", "key", name="pk_sieve_duplicate"),
    )
    op.create_index("ix_sieve_duplicate_expires", "sieve_duplicate", ["expires"])


def downgrade() -> None:
    op.drop_index("ix_sieve_duplicate_expires", table_name="sieve_duplicate")
    op.drop_table("sieve_duplicate")
    op.drop_index("ix_sieve_vacation_expires", table_name="sieve_vacation")
    op.drop_table("sieve_vacation")
