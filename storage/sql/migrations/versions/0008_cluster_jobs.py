"""Scheduled jobs once per period across nodes: ``cluster_jobs`` (storage.jobs).

Revision ID: 0008_cluster_jobs
Revises: 0001
Create Date: 2026-12-05

One row per (job, period slot); inserting it is the claim. Own branch
(``cluster_jobs``) off 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.sql.jobs  # noqa: F401 - registers the table on Base.metadata
from storage.sql.models import UtcDateTime

revision: str = "0008_cluster_jobs"
down_revision: str | None = "0001"
branch_labels: tuple[str, ...] | None = ("cluster_jobs",)
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "cluster_jobs",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("slot", sa.Text(), nullable=False),
        sa.Column("node", sa.Text(), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("name", "slot"),
    )


def downgrade() -> None:
    op.drop_table("cluster_jobs")
