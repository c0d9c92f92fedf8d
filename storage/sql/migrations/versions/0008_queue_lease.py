"""Outbound queue leases: several nodes work one queue without sending twice.

Revision ID: 0008_queue_lease
Revises: 0001
Create Date: 2026-12-05

``claimed_by``/``claimed_until`` on ``outbound_messages``: a node claims due
messages for a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), renews it while
the delivery runs and releases it once the attempt is recorded; a node that dies
mid-delivery loses its claim when the lease ends. Own branch (``queue_lease``)
off 0001, after the queue's tables (``depends_on`` 0002_queue).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.sql.models import UtcDateTime

revision: str = "0008_queue_lease"
down_revision: str | None = "0001"
branch_labels: tuple[str, ...] | None = ("queue_lease",)
depends_on: str | None = "0002_queue"


def upgrade() -> None:
    op.add_column("outbound_messages", sa.Column("claimed_by", sa.Text(), nullable=False, server_default=""))
    op.add_column("outbound_messages", sa.Column("claimed_until", UtcDateTime(), nullable=True))


def downgrade() -> None:
    op.drop_column("outbound_messages", "claimed_until")
    op.drop_column("outbound_messages", "claimed_by")
