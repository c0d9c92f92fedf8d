"""SQL schema of the full-text index's work list, on the shared metadata.

``fts_pending``: one row per message still to be indexed. A trigger on
``messages`` inserts it in the very transaction that inserts the message
(deliver, APPEND, COPY, undelete, import: every path), so a crash can never
leave a stored message that nobody will index; the indexer deletes it in the
transaction that writes the message's index entry.

The index itself (``fts_text``) differs per engine and is created by migration
``0008_fts`` only: an FTS5 virtual table on SQLite, a table of ``tsvector``
columns with GIN indexes on PostgreSQL (``storage.sql.fulltext``). It is not
part of ``Base.metadata``; the schema comparison skips it.
"""

from __future__ import annotations

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from storage.sql.models import Base, BigId

__all__ = ["FTS_TABLE_PREFIX", "FtsPending"]

FTS_TABLE_PREFIX = "fts_text"
"""The index table and (SQLite) its FTS5 shadow tables, which are not in ``Base.metadata``."""


class FtsPending(Base):
    __tablename__ = "fts_pending"

    message_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
