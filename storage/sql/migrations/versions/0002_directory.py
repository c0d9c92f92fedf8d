"""Directory (danh bạ điện tử): agencies, persons, address namespace, delegations,
password history, notices, audit log.

Revision ID: 0002_directory
Revises: 0001
Create Date: 2025-02-01

Own branch (``directory``) off the initial schema; hand-written to match
``storage/sql/directory_models.py`` (a test compares the migrated database
against the models). Importing the models here also registers their tables on
``Base.metadata`` whenever this revision is loaded.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.sql.directory_models  # noqa: F401 - registers the tables on Base.metadata
from storage.sql.models import BigId, UtcDateTime

revision: str = "0002_directory"
down_revision: str | None = "0001"
branch_labels: tuple[str, ...] | None = ("directory",)
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "dir_agencies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("head_person_id", sa.Integer(), nullable=True),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dir_agencies"),
        sa.UniqueConstraint("code", name="uq_dir_agencies_code"),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["dir_agencies.id"], name="fk_dir_agencies_parent_id_dir_agencies"
        ),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "dir_persons",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("full_name", sa.Text(), nullable=False),
        sa.Column("family", sa.Text(), nullable=False),
        sa.Column("middle", sa.Text(), nullable=False),
        sa.Column("given", sa.Text(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Text(), nullable=False),
        sa.Column("phone", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("left_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_dir_persons"),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["dir_agencies.id"], name="fk_dir_persons_agency_id_dir_agencies"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_dir_persons_agency_id", "dir_persons", ["agency_id"])
    op.create_table(
        "dir_addresses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("agency_id", sa.Integer(), nullable=True),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("offboarded_at", UtcDateTime(), nullable=True),
        sa.Column("purge_after", UtcDateTime(), nullable=True),
        sa.Column("retired_at", UtcDateTime(), nullable=True),
        sa.Column("archive", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_dir_addresses"),
        sa.UniqueConstraint("address", name="uq_dir_addresses_address"),
        sa.UniqueConstraint("person_id", name="uq_dir_addresses_person_id"),
        sa.UniqueConstraint("agency_id", name="uq_dir_addresses_agency_id"),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["dir_persons.id"],
            name="fk_dir_addresses_person_id_dir_persons",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["dir_agencies.id"],
            name="fk_dir_addresses_agency_id_dir_agencies",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_dir_addresses_account_id_accounts", ondelete="SET NULL"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_dir_addresses_account_id", "dir_addresses", ["account_id"])
    op.create_table(
        "dir_delegations",
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("rights", sa.String(16), nullable=False),
        sa.Column("may_send", sa.Boolean(), nullable=False),
        sa.Column("granted_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("agency_id", "account_id", name="pk_dir_delegations"),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["dir_agencies.id"],
            name="fk_dir_delegations_agency_id_dir_agencies",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_dir_delegations_account_id_accounts", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_dir_delegations_account_id", "dir_delegations", ["account_id"])
    op.create_table(
        "dir_password_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dir_password_history"),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_dir_password_history_account_id_accounts",
            ondelete="CASCADE",
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_dir_password_history_account_id", "dir_password_history", ["account_id"])
    op.create_table(
        "dir_notices",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("key", UtcDateTime(), nullable=False),
        sa.Column("sent_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "kind", "key", name="pk_dir_notices"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_dir_notices_account_id_accounts", ondelete="CASCADE"
        ),
    )
    op.create_table(
        "dir_audit",
        sa.Column("id", BigId, nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(320), nullable=False),
        sa.Column("decision", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dir_audit"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_dir_audit_at", "dir_audit", ["at"])
    op.create_index("ix_dir_audit_subject", "dir_audit", ["subject"])


def downgrade() -> None:
    op.drop_table("dir_audit")
    op.drop_table("dir_notices")
    op.drop_table("dir_password_history")
    op.drop_table("dir_delegations")
    op.drop_table("dir_addresses")
    op.drop_table("dir_persons")
    op.drop_table("dir_agencies")
