"""Per-account Sieve scripts.

Revision ID: 0008_sieve
Revises: 0001
Create Date: 2026-12-05

Own branch (``sieve``) off the initial schema; hand-written to match
``storage/sql/sieve_models.py`` (imported here so its table joins
``Base.metadata``, which the contract test compares against).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.sql.sieve_models  # noqa: F401 - registers the table on Base.metadata
from storage.sql.models import UtcDateTime

revision: str = "0008_sieve"
down_revision: str | None = "0001"
branch_labels: tuple[str, ...] | None = ("sieve",)
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "sieve_scripts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(512), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sieve_scripts"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_sieve_scripts_account_id_accounts", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("account_id", "name", name="uq_sieve_scripts_account_id_name"),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("sieve_scripts")
