"""Operations: opens of agency mailboxes (Decision 70/2009 Điều 6 khoản 6 check compliance).

Revision ID: 0003_operations
Revises: 0001
Create Date: 2025-03-01

Own branch (``operations``) off the initial schema; hand-written to match
``storage/sql/activity_models.py`` (imported here so its table joins
``Base.metadata``, which the contract test compares against).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.sql.activity_models  # noqa: F401 - registers the table on Base.metadata
from storage.sql.models import BigId, UtcDateTime

revision: str = "0003_operations"
down_revision: str | None = "0001"
branch_labels: tuple[str, ...] | None = ("operations",)
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "ops_mailbox_opens",
        sa.Column("id", BigId, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("opened_at", UtcDateTime(), nullable=False),
        sa.Column("by_account_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_ops_mailbox_opens"),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_ops_mailbox_opens_account_id_accounts",
            ondelete="CASCADE",
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_ops_mailbox_opens_account_id_opened_at", "ops_mailbox_opens", ["account_id", "opened_at"]
    )
    op.create_index("ix_ops_mailbox_opens_opened_at", "ops_mailbox_opens", ["opened_at"])


def downgrade() -> None:
    op.drop_table("ops_mailbox_opens")
