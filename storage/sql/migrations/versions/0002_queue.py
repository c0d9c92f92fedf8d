"""Outbound queue: messages waiting for remote delivery and per-recipient state.

Revision ID: 0002_queue
Revises: 0001
Create Date: 2025-01-02

Own branch (``queue``) off the initial revision; ``upgrade heads`` applies it.
Hand-written to match ``storage/sql/queue_models.py`` (imported here so its
tables join ``Base.metadata``, which the contract test compares against).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.sql import queue_models as _queue_models  # noqa: F401 - registers the tables
from storage.sql.models import BigId, UtcDateTime

revision: str = "0002_queue"
down_revision: str | None = "0001"
branch_labels: tuple[str, ...] | None = ("queue",)
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "outbound_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sender", sa.Text(), nullable=False),
        sa.Column("blob", sa.Text(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("account", sa.Text(), nullable=False),
        sa.Column("delay_warned", sa.Boolean(), nullable=False),
        sa.Column("bounce_requested", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_outbound_messages"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "outbound_recipients",
        sa.Column("id", BigId, nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("domain", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=False),
        sa.Column("last_attempt_at", UtcDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("remote_mta", sa.Text(), nullable=False),
        sa.Column("notified", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_outbound_recipients"),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["outbound_messages.id"],
            name="fk_outbound_recipients_message_id_outbound_messages",
            ondelete="CASCADE",
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_outbound_recipients_message_id", "outbound_recipients", ["message_id"])
    op.create_index(
        "ix_outbound_recipients_state_next_attempt_at",
        "outbound_recipients",
        ["state", "next_attempt_at"],
    )


def downgrade() -> None:
    op.drop_table("outbound_recipients")
    op.drop_table("outbound_messages")
