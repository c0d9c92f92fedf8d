"""TLS-RPT (RFC 8460): outbound TLS outcomes and the reports others send us.

Revision ID: 0008_tlsrpt
Revises: 0001
Create Date: 2026-12-05

Own branch (``tlsrpt``) off the initial revision; hand-written to match
``storage/sql/tlsrpt_models.py`` (imported here so its tables join
``Base.metadata``, which the contract test compares against).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.sql import tlsrpt_models as _tlsrpt_models  # noqa: F401 - registers the tables
from storage.sql.models import BigId, UtcDateTime

revision: str = "0008_tlsrpt"
down_revision: str | None = "0001"
branch_labels: tuple[str, ...] | None = ("tlsrpt",)
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "tlsrpt_results",
        sa.Column("id", BigId, nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("policy_domain", sa.Text(), nullable=False),
        sa.Column("policy_type", sa.String(24), nullable=False),
        sa.Column("policy_strings", sa.Text(), nullable=False),
        sa.Column("mx_host", sa.Text(), nullable=False),
        sa.Column("receiving_ip", sa.Text(), nullable=False),
        sa.Column("result", sa.String(40), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("reported_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tlsrpt_results"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_tlsrpt_results_reported_at_at", "tlsrpt_results", ["reported_at", "at"])
    op.create_table(
        "tlsrpt_received",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.Column("organization", sa.Text(), nullable=False),
        sa.Column("report_id", sa.Text(), nullable=False),
        sa.Column("start_at", UtcDateTime(), nullable=False),
        sa.Column("end_at", UtcDateTime(), nullable=False),
        sa.Column("policy_domains", sa.Text(), nullable=False),
        sa.Column("success", sa.Integer(), nullable=False),
        sa.Column("failure", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tlsrpt_received"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_tlsrpt_received_received_at", "tlsrpt_received", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_tlsrpt_received_received_at", table_name="tlsrpt_received")
    op.drop_table("tlsrpt_received")
    op.drop_index("ix_tlsrpt_results_reported_at_at", table_name="tlsrpt_results")
    op.drop_table("tlsrpt_results")
