"""Account safety: TOTP (RFC 6238) enrolments of portal users and their recovery codes.

Revision ID: 0007_totp
Revises: 0001
Create Date: 2026-12-05

Own branch (``totp``) off the initial schema; hand-written to match
``storage/sql/credential_models.py``. ``last_step`` makes each code usable once
across processes (an atomic conditional update); recovery codes are stored as
SHA-256 of random codes and spent by setting ``used_at``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.sql.credential_models  # noqa: F401 - registers the tables on Base.metadata
from storage.sql.models import UtcDateTime

revision: str = "0007_totp"
down_revision: str | None = "0001"
branch_labels: tuple[str, ...] | None = ("totp",)
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "account_totp",
        sa.Column("account_id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("secret", sa.String(64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("last_step", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name="pk_account_totp"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_account_totp_account_id_accounts", ondelete="CASCADE"
        ),
    )
    op.create_table(
        "totp_recovery_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("used_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_totp_recovery_codes"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_totp_recovery_codes_account_id_accounts",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("account_id", "code_hash", name="uq_totp_recovery_codes_account_id_code_hash"),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("totp_recovery_codes")
    op.drop_table("account_totp")
