"""Account safety: opt-in to TLS client certificate login (SASL EXTERNAL, RFC 4422).

Revision ID: 0007_cert_login
Revises: 0001
Create Date: 2026-12-05

Own branch (``cert_login``) off the initial schema; hand-written to match
``storage/sql/credential_models.py``: a row per account that opted in.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.sql.credential_models  # noqa: F401 - registers the tables on Base.metadata
from storage.sql.models import UtcDateTime

revision: str = "0007_cert_login"
down_revision: str | None = "0001"
branch_labels: tuple[str, ...] | None = ("cert_login",)
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "account_cert_login",
        sa.Column("account_id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("enabled_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name="pk_account_cert_login"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_account_cert_login_account_id_accounts",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("account_cert_login")
