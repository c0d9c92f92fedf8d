"""Initial schema: accounts, folders, messages, expunged tombstones.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Hand-written to match ``storage/sql/models.py`` (a test compares the migrated
database against the models).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.sql.models import BigId, UtcDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("must_change_password", sa.Boolean(), nullable=False),
        sa.Column("password_changed_at", UtcDateTime(), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("last_login_at", UtcDateTime(), nullable=True),
        sa.Column("next_uidvalidity", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_accounts"),
        sa.UniqueConstraint("address", name="uq_accounts_address"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "folders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("uidnext", sa.BigInteger(), nullable=False),
        sa.Column("highestmodseq", sa.BigInteger(), nullable=False),
        sa.Column("recent_watermark", sa.BigInteger(), nullable=False),
        sa.Column("special_use", sa.String(32), nullable=True),
        sa.Column("subscribed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_folders"),
        sa.UniqueConstraint("account_id", "name", name="uq_folders_account_id_name"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_folders_account_id_accounts", ondelete="CASCADE"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_folders_account_id", "folders", ["account_id"])
    op.create_table(
        "messages",
        sa.Column("id", BigId, nullable=False),
        sa.Column("folder_id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("modseq", sa.BigInteger(), nullable=False),
        sa.Column("flags", sa.Text(), nullable=False),
        sa.Column("seen", sa.Boolean(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("internal_date", UtcDateTime(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("blob", sa.Text(), nullable=False),
        sa.Column("envelope", sa.Text(), nullable=False),
        sa.Column("bodystructure", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("from_", sa.Text(), nullable=False),
        sa.Column("to_", sa.Text(), nullable=False),
        sa.Column("cc", sa.Text(), nullable=False),
        sa.Column("bcc", sa.Text(), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_messages"),
        sa.UniqueConstraint("folder_id", "uid", name="uq_messages_folder_id_uid"),
        sa.ForeignKeyConstraint(
            ["folder_id"], ["folders.id"], name="fk_messages_folder_id_folders", ondelete="CASCADE"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_messages_folder_id_modseq", "messages", ["folder_id", "modseq"])
    op.create_table(
        "expunged",
        sa.Column("folder_id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("modseq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("folder_id", "uid", name="pk_expunged"),
        sa.ForeignKeyConstraint(
            ["folder_id"], ["folders.id"], name="fk_expunged_folder_id_folders", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_expunged_folder_id_modseq", "expunged", ["folder_id", "modseq"])


def downgrade() -> None:
    op.drop_table("expunged")
    op.drop_table("messages")
    op.drop_table("folders")
    op.drop_table("accounts")
