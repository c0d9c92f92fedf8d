"""Deleted-mail vault and legal holds.

Revision ID: 0007_vault
Revises: 0001 (depends on 0002_directory: an agency hold points at dir_agencies)
Create Date: 2026-12-05

Own branch (``vault``) off the initial schema; hand-written to match
``storage/sql/vault_models.py`` (imported here so its tables join
``Base.metadata``, which the contract test compares against).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.sql.vault_models  # noqa: F401 - registers the tables on Base.metadata
from storage.sql.models import BigId, UtcDateTime

revision: str = "0007_vault"
down_revision: str | None = "0001"
branch_labels: tuple[str, ...] | None = ("vault",)
depends_on: str | None = "0002_directory"


def upgrade() -> None:
    op.create_table(
        "vault",
        sa.Column("id", BigId, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("folder_id", sa.Integer(), nullable=True),
        sa.Column("folder_name", sa.Text(), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("blob", sa.Text(), nullable=False),
        sa.Column("flags", sa.Text(), nullable=False),
        sa.Column("internal_date", UtcDateTime(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("from_", sa.Text(), nullable=False),
        sa.Column("deleted_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_vault"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_vault_account_id_accounts", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["folder_id"], ["folders.id"], name="fk_vault_folder_id_folders", ondelete="SET NULL"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_vault_account_id_deleted_at", "vault", ["account_id", "deleted_at"])
    op.create_index("ix_vault_folder_id", "vault", ["folder_id"])
    op.create_index("ix_vault_deleted_at", "vault", ["deleted_at"])
    op.create_table(
        "holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("agency_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("set_by", sa.Text(), nullable=False),
        sa.Column("set_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_holds"),
        sa.UniqueConstraint("account_id", name="uq_holds_account_id"),
        sa.UniqueConstraint("agency_id", name="uq_holds_agency_id"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_holds_account_id_accounts", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["dir_agencies.id"], name="fk_holds_agency_id_dir_agencies", ondelete="CASCADE"
        ),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("holds")
    op.drop_index("ix_vault_deleted_at", table_name="vault")
    op.drop_index("ix_vault_folder_id", table_name="vault")
    op.drop_index("ix_vault_account_id_deleted_at", table_name="vault")
    op.drop_table("vault")
