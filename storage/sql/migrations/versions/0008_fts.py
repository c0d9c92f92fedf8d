"""Full-text search index: the work list and the per-engine index table.

Revision ID: 0008_fts
Revises: 0001
Create Date: 2026-12-05

Own branch (``fts``) off the initial schema. ``fts_pending`` matches
``storage/sql/fulltext_models.py``; ``fts_text`` is engine-specific DDL
(``storage.sql.fulltext``): SQLite FTS5 or PostgreSQL tsvector + GIN. Every
message already stored is queued, so the running server indexes existing mail.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.sql.fulltext_models  # noqa: F401 - registers the table on Base.metadata
from storage.sql.models import BigId

revision: str = "0008_fts"
down_revision: str | None = "0001"
branch_labels: tuple[str, ...] | None = ("fts",)
depends_on: str | None = None

_SQLITE = (
    # Header words (subject, names, addresses) and body words (text, HTML, attachments),
    # folded and exact; the folded header fields, unindexed, for SUBJECT/FROM/... substrings.
    "CREATE VIRTUAL TABLE fts_text USING fts5(hdr, body, hdr_x, body_x, subject UNINDEXED,"
    " from_ UNINDEXED, to_ UNINDEXED, cc UNINDEXED, bcc UNINDEXED,"
    " tokenize = 'unicode61 remove_diacritics 0')",
    "CREATE TRIGGER fts_queue AFTER INSERT ON messages BEGIN"
    " INSERT INTO fts_pending (message_id) VALUES (new.id); END",
    "CREATE TRIGGER fts_forget AFTER DELETE ON messages BEGIN DELETE FROM fts_text WHERE rowid = old.id; END",
)
_POSTGRES = (
    "CREATE TABLE fts_text (message_id BIGINT PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,"
    " doc TSVECTOR NOT NULL, doc_x TSVECTOR NOT NULL, subject TEXT NOT NULL, from_ TEXT NOT NULL,"
    " to_ TEXT NOT NULL, cc TEXT NOT NULL, bcc TEXT NOT NULL)",
    "CREATE INDEX ix_fts_text_doc ON fts_text USING GIN (doc)",
    "CREATE INDEX ix_fts_text_doc_x ON fts_text USING GIN (doc_x)",
    "CREATE FUNCTION fts_queue() RETURNS trigger LANGUAGE plpgsql AS"
    " $$ BEGIN INSERT INTO fts_pending (message_id) VALUES (NEW.id); RETURN NULL; END $$",
    "CREATE TRIGGER fts_queue AFTER INSERT ON messages FOR EACH ROW EXECUTE FUNCTION fts_queue()",
)


def upgrade() -> None:
    op.create_table(
        "fts_pending",
        sa.Column("message_id", BigId, autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("message_id", name="pk_fts_pending"),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name="fk_fts_pending_message_id_messages", ondelete="CASCADE"
        ),
    )
    for statement in _SQLITE if op.get_context().dialect.name == "sqlite" else _POSTGRES:
        op.execute(statement)
    op.execute("INSERT INTO fts_pending (message_id) SELECT id FROM messages")


def downgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        op.execute("DROP TRIGGER fts_forget")
        op.execute("DROP TRIGGER fts_queue")
    else:
        op.execute("DROP TRIGGER fts_queue ON messages")
        op.execute("DROP FUNCTION fts_queue()")
    op.execute("DROP TABLE fts_text")
    op.drop_table("fts_pending")
