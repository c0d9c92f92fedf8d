"""DMARC aggregate reports: pending evaluations and reports received.

Revision ID: 0008_dmarc_reports
Revises: 0001
Create Date: 2026-12-05

Own branch (``dmarc_reports``) off the initial schema; hand-written to match
``storage/sql/dmarc_models.py`` (RFC 7489 section 7.2).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.sql.dmarc_models  # noqa: F401 - registers the tables on Base.metadata
from storage.sql.models import BigId, UtcDateTime

revision: str = "0008_dmarc_reports"
down_revision: str | None = "0001"
branch_labels: tuple[str, ...] | None = ("dmarc_reports",)
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "dmarc_pending",
        sa.Column("id", BigId, nullable=False),
        sa.Column("policy_domain", sa.String(255), nullable=False),
        sa.Column("row_key", sa.String(64), nullable=False),
        sa.Column("evaluation", sa.Text(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_seen", UtcDateTime(), nullable=False),
        sa.Column("last_seen", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dmarc_pending"),
        sa.UniqueConstraint("row_key", name="uq_dmarc_pending_row_key"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_dmarc_pending_policy_domain", "dmarc_pending", ["policy_domain"])
    op.create_table(
        "dmarc_received",
        sa.Column("id", BigId, nullable=False),
        sa.Column("reporter", sa.String(255), nullable=False),
        sa.Column("report_id", sa.String(255), nullable=False),
        sa.Column("email", sa.String(255), nullable=False),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("begin", sa.BigInteger(), nullable=False),
        sa.Column("end", sa.BigInteger(), nullable=False),
        sa.Column("source_ip", sa.String(64), nullable=False),
        sa.Column("header_from", sa.String(255), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("disposition", sa.String(16), nullable=False),
        sa.Column("dkim", sa.String(16), nullable=False),
        sa.Column("spf", sa.String(16), nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dmarc_received"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_dmarc_received_reporter_report_id", "dmarc_received", ["reporter", "report_id"])
    op.create_index("ix_dmarc_received_domain", "dmarc_received", ["domain"])


def downgrade() -> None:
    op.drop_index("ix_dmarc_received_domain", table_name="dmarc_received")
    op.drop_index("ix_dmarc_received_reporter_report_id", table_name="dmarc_received")
    op.drop_table("dmarc_received")
    op.drop_index("ix_dmarc_pending_policy_domain", table_name="dmarc_pending")
    op.drop_table("dmarc_pending")
