"""Account safety: app passwords and login history.

Revision ID: 0007_app_passwords
Revises: 0001
Create Date: 2026-12-05

Own branch (``app_passwords``) off the initial schema; hand-written to match
``storage/sql/credential_models.py``. App passwords are Argon2id hashes with a
4-hex-digit selector (``storage.credentials``); the login history keeps the
newest rows of each account (pruned by the batched writer).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.sql.credential_models  # noqa: F401 - registers the tables on Base.metadata
from storage.sql.models import BigId, UtcDateTime

revision: str = "0007_app_passwords"
down_revision: str | None = "0001"
branch_labels: tuple[str, ...] | None = ("app_passwords",)
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "app_passwords",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("scopes", sa.String(100), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("selector", sa.String(8), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("last_used_at", UtcDateTime(), nullable=True),
        sa.Column("last_used_ip", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_app_passwords"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_app_passwords_account_id_accounts", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("account_id", "name", name="uq_app_passwords_account_id_name"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "login_history",
        sa.Column("id", BigId, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("remote_ip", sa.String(64), nullable=False),
        sa.Column("protocol", sa.String(16), nullable=False),
        sa.Column("client", sa.String(200), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_login_history"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_login_history_account_id_accounts", ondelete="CASCADE"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_login_history_account_id_id", "login_history", ["account_id", "id"])


def downgrade() -> None:
    op.drop_table("login_history")
    op.drop_table("app_passwords")
