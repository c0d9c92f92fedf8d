"""Quotas enforced: per-account limit and usage counters on ``accounts``.

Revision ID: 0006_quota
Revises: 0001
Create Date: 2026-12-05

``quota_bytes`` is the account's own STORAGE limit in octets (RFC 9208): NULL
follows ``storage.quota``, 0 is unlimited. ``storage_used`` and
``message_count`` are kept by every transaction that adds or removes messages
(deliveries, APPEND, COPY, EXPUNGE, MOVE, folder deletion), so checking a
quota costs one primary-key read instead of a sum over the account's
messages. Rows already stored are counted here. Own branch (``quota``) off 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006_quota"
down_revision: str | None = "0001"
branch_labels: tuple[str, ...] | None = ("quota",)
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("quota_bytes", sa.BigInteger(), nullable=True))
    op.add_column("accounts", sa.Column("storage_used", sa.BigInteger(), nullable=False, server_default="0"))
    op.add_column("accounts", sa.Column("message_count", sa.BigInteger(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE accounts SET "
        "storage_used = (SELECT COALESCE(SUM(m.size), 0) FROM messages m JOIN folders f "
        "ON f.id = m.folder_id WHERE f.account_id = accounts.id), "
        "message_count = (SELECT COUNT(m.id) FROM messages m JOIN folders f "
        "ON f.id = m.folder_id WHERE f.account_id = accounts.id)"
    )


def downgrade() -> None:
    op.drop_column("accounts", "message_count")
    op.drop_column("accounts", "storage_used")
    op.drop_column("accounts", "quota_bytes")
