"""Operations: last access of agency mailboxes through the shared namespace.

Revision ID: 0006_shared_access
Revises: 0001
Create Date: 2026-12-02

Own branch (``shared_access``) off the initial schema; hand-written to match
``storage/sql/activity_models.py``. Heads and delegates open the agency mailbox
as ``Shared/<code>/…`` with their own login, which the mailbox's own
``last_login_at`` never sees; the usage report (Decision 70/2009 Điều 13) reads
this table so such a mailbox is not reported as never used.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.sql.activity_models  # noqa: F401 - registers the table on Base.metadata
from storage.sql.models import UtcDateTime

revision: str = "0006_shared_access"
down_revision: str | None = "0001"
branch_labels: tuple[str, ...] | None = ("shared_access",)
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "ops_shared_access",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("by_account_id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("last_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "by_account_id", name="pk_ops_shared_access"),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_ops_shared_access_account_id_accounts",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("ops_shared_access")
