"""The full-text index on SQLite FTS5 and PostgreSQL full-text search: the SQL
side of ``SqlMailStore``'s ``index_jobs``, ``save_index``, ``text_search``,
``queue_reindex`` and ``index_status``.

Theory of operation
-------------------
Work list: a trigger on ``messages`` (migration ``0008_fts``) queues every new
row in ``fts_pending`` within the inserting transaction, so the SMTP 250 and the
APPEND OK wait for nothing but that one row. The server's indexer
(``mailserver.search.indexer``) takes batches of jobs, extracts and folds the
text outside any transaction, and writes entries with ``save_index``, which
deletes the jobs in the same transaction: a crash before that commit leaves the
jobs queued, after it the entries exist. Expunge: on SQLite a trigger deletes
the entry with the message row (an FTS5 table has no foreign keys); on
PostgreSQL the entry's foreign key cascades.

Engines (the documents and query words come from ``storage.fulltext``):

* SQLite: one FTS5 table, ``rowid`` = message id, columns ``hdr``/``body``
  (folded words) and ``hdr_x``/``body_x`` (exact words), tokenizer
  ``unicode61 remove_diacritics 0`` (folding is ours). A query is an FTS5
  phrase with a column filter, the last word a prefix: ``{hdr body} : "quyet
  dinh"*``; joined to ``messages`` by rowid and filtered by folder.
* PostgreSQL: ``doc`` = header words with weight A and body words with weight
  D in one ``tsvector`` of the ``simple`` configuration (no stemming, no stop
  words), ``doc_x`` the same for exact words, both GIN-indexed; a query is
  ``'quyet' <-> 'dinh':*`` (``:*D`` restricts BODY to body words).

Header keys (SUBJECT, FROM, TO, CC, BCC) are substring matches (RFC 9051
section 6.4.4) over the folded header fields kept in the entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    bindparam,
    column,
    delete,
    func,
    literal,
    select,
    table,
    text,
    true,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import REGCONFIG
from sqlalchemy.engine import Connection

from storage.api import IndexDoc, IndexStatus, TextHits, Uid
from storage.fulltext import field_text, query_words
from storage.sql import fulltext_models, models

__all__ = [
    "index_jobs_tx",
    "index_status_tx",
    "queue_reindex_tx",
    "save_index_tx",
    "text_search_tx",
]

M: Final = cast(Table, models.Message.__table__)
F: Final = cast(Table, models.Folder.__table__)
P: Final = cast(Table, fulltext_models.FtsPending.__table__)

HEADER_FIELDS: Final = {"subject": "subject", "from": "from_", "to": "to_", "cc": "cc", "bcc": "bcc"}
"""IMAP header key -> column of the entry's folded header fields."""


def _sqlite(conn: Connection) -> bool:
    return conn.dialect.name == "sqlite"


def index_jobs_tx(conn: Connection, limit: int) -> list[tuple[int, str, int]]:
    """(message id, blob, size) of the oldest ``limit`` jobs."""
    rows = conn.execute(
        select(P.c.message_id, M.c.blob, M.c.size)
        .join(M, M.c.id == P.c.message_id)
        .order_by(P.c.message_id)
        .limit(limit)
    )
    return [(int(r[0]), str(r[1]), int(r[2])) for r in rows]


def _values(doc: IndexDoc) -> dict[str, Any]:
    return {
        "id": doc.message_id,
        "hdr": doc.header,
        "body": doc.body,
        "hdr_x": doc.header_exact,
        "body_x": doc.body_exact,
        "subject": doc.subject,
        "from_": doc.from_,
        "to_": doc.to,
        "cc": doc.cc,
        "bcc": doc.bcc,
    }


_SQLITE_SAVE: Final = text(
    "INSERT INTO fts_text (rowid, hdr, body, hdr_x, body_x, subject, from_, to_, cc, bcc)"
    " VALUES (:id, :hdr, :body, :hdr_x, :body_x, :subject, :from_, :to_, :cc, :bcc)"
)
_SQLITE_FORGET: Final = text("DELETE FROM fts_text WHERE rowid IN :ids").bindparams(
    bindparam("ids", expanding=True)
)
_PG_SAVE: Final = text(
    "INSERT INTO fts_text (message_id, doc, doc_x, subject, from_, to_, cc, bcc) VALUES (:id,"
    " setweight(to_tsvector('simple', :hdr), 'A') || setweight(to_tsvector('simple', :body), 'D'),"
    " setweight(to_tsvector('simple', :hdr_x), 'A') || setweight(to_tsvector('simple', :body_x), 'D'),"
    " :subject, :from_, :to_, :cc, :bcc)"
    " ON CONFLICT (message_id) DO UPDATE SET doc = excluded.doc, doc_x = excluded.doc_x,"
    " subject = excluded.subject, from_ = excluded.from_, to_ = excluded.to_, cc = excluded.cc,"
    " bcc = excluded.bcc"
)


def _sqlite_values(doc: IndexDoc) -> dict[str, Any]:
    # Exact words that are the folded ones (text without diacritics, e.g. all ASCII)
    # are not stored twice: the FTS5 write (tokenising, the index, the stored text)
    # is about half as long, and an exact query answers such rows from the folded
    # column (``_word_hits``). PostgreSQL keeps both vectors.
    values = _values(doc)
    if values["hdr_x"] == values["hdr"]:
        values["hdr_x"] = ""
    if values["body_x"] == values["body"]:
        values["body_x"] = ""
    return values


def save_index_tx(conn: Connection, docs: Sequence[IndexDoc], done: Sequence[int]) -> None:
    """Write the entries of messages that still exist and clear their jobs."""
    ids = sorted({d.message_id for d in docs} | set(done))
    if not ids:
        return
    alive = set(conn.execute(select(M.c.id).where(M.c.id.in_(ids))).scalars())
    kept = [d for d in docs if d.message_id in alive]
    if _sqlite(conn):
        conn.execute(_SQLITE_FORGET, {"ids": ids})
        if kept:
            conn.execute(_SQLITE_SAVE, [_sqlite_values(d) for d in kept])
    elif kept:
        conn.execute(_PG_SAVE, [_values(d) for d in kept])
    conn.execute(delete(P).where(P.c.message_id.in_(ids)))


def _fts5_phrase(words: Sequence[str]) -> str:
    # One FTS5 string is one phrase, and "*" after it makes its last token a prefix;
    # our words are letters and digits only (no quote to escape).
    return '"' + " ".join(words) + '"*'


def _tsquery(words: Sequence[str], weight: str) -> str:
    # Lexemes are quoted; our words are letters and digits only (no quote to escape).
    parts = [f"'{w}'{':' + weight if weight else ''}" for w in words[:-1]]
    parts.append(f"'{words[-1]}':*{weight}")
    return " <-> ".join(parts)


_FTS: Final = table(
    "fts_text",
    *(column(name) for name in ("rowid", "message_id", "fts_text", "doc", "doc_x", "hdr_x", "body_x")),
    *(column(name) for name in HEADER_FIELDS.values()),
)
"""The index table as SQLAlchemy sees it (engine-specific DDL, no model)."""


def _key(conn: Connection) -> ColumnElement[Any]:
    return _FTS.c.rowid if _sqlite(conn) else _FTS.c.message_id


def _word_hits(conn: Connection, folder_id: int, field: str, words: list[str], exact: bool) -> set[Uid]:
    suffix = "_x" if exact else ""
    hits: Any
    if _sqlite(conn):
        names = ["body"] if field == "body" else ["hdr", "body"]
        phrase = _fts5_phrase(words)

        def matching(columns: list[str]) -> ColumnElement[bool]:
            # The hidden column named like the table takes a whole FTS5 query.
            return _FTS.c.fts_text.op("MATCH")("{" + " ".join(columns) + "} : " + phrase)

        hits = select(_key(conn)).where(matching([name + suffix for name in names]))
        if exact:
            # A row whose exact words are its folded words keeps only the folded
            # ones (``_sqlite_values``): its folded column answers for it. Rows
            # that keep both never answer here from the folded column.
            hits = hits.union_all(*(
                select(_key(conn)).where(matching([name]), _FTS.c[name + "_x"] == "") for name in names
            ))
        hits = hits.scalar_subquery()
    else:
        vector = _FTS.c.doc_x if exact else _FTS.c.doc
        query = _tsquery(words, "D" if field == "body" else "")
        match = vector.op("@@")(func.to_tsquery(literal("simple", REGCONFIG), query))
        hits = select(_key(conn)).where(match).scalar_subquery()
    # The index first, then the folder: as a join, SQLite may walk the folder's
    # messages and test MATCH on each one (a scan of the folder, not a lookup).
    found = select(M.c.uid).where(M.c.id.in_(hits), M.c.folder_id == folder_id)
    return {Uid(u) for u in conn.execute(found).scalars()}


def _field_hits(conn: Connection, folder_id: int, name: str, needle: str) -> set[Uid]:
    pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    found = (
        select(M.c.uid)
        .join(_FTS, _key(conn) == M.c.id)
        .where(M.c.folder_id == folder_id, _FTS.c[name].like(pattern, escape="\\"))
    )
    return {Uid(u) for u in conn.execute(found).scalars()}


def _unindexed(conn: Connection, folder_id: int) -> set[Uid]:
    rows = conn.execute(select(M.c.uid).join(P, P.c.message_id == M.c.id).where(M.c.folder_id == folder_id))
    return {Uid(u) for u in rows.scalars()}


def text_search_tx(conn: Connection, folder_id: int, field: str, needle: str, exact: bool) -> TextHits:
    """See ``MailStore.text_search`` (the caller has checked the folder's owner)."""
    column = HEADER_FIELDS.get(field)
    if column is not None:
        hits = _field_hits(conn, folder_id, column, field_text(needle))
    elif field in ("text", "body"):
        words = query_words(needle, exact_form=exact)
        hits = _word_hits(conn, folder_id, field, words, exact) if words else set()
    else:
        raise ValueError(f"unknown full-text field {field!r}")
    return TextHits(uids=frozenset(hits), unindexed=frozenset(_unindexed(conn, folder_id)))


def queue_reindex_tx(conn: Connection, account_id: int | None) -> int:
    """Queue every message (of one account); already queued ones stay as they are."""
    # "WHERE true": SQLite would read ON CONFLICT after a bare FROM as a join constraint.
    query = select(M.c.id).where(true())
    if account_id is not None:
        query = query.join(F, F.c.id == M.c.folder_id).where(F.c.account_id == account_id)
    count = int(conn.execute(select(func.count()).select_from(query.subquery())).scalar_one())
    dialect = sqlite if _sqlite(conn) else postgresql
    stmt = dialect.insert(P).from_select(["message_id"], query).on_conflict_do_nothing()
    conn.execute(stmt)
    return count


def index_status_tx(conn: Connection) -> IndexStatus:
    pending = int(conn.execute(select(func.count()).select_from(P)).scalar_one())
    message_bytes = int(conn.execute(select(func.coalesce(func.sum(M.c.size), 0))).scalar_one())
    if _sqlite(conn):
        indexed = int(conn.execute(text("SELECT count(*) FROM fts_text")).scalar_one())
        # The FTS5 index blocks, the stored columns and the per-row sizes.
        size = conn.execute(
            text(
                "SELECT (SELECT coalesce(sum(length(block)), 0) FROM fts_text_data)"
                " + (SELECT coalesce(sum(length(c0) + length(c1) + length(c2) + length(c3)"
                " + length(c4) + length(c5) + length(c6) + length(c7) + length(c8)), 0)"
                " FROM fts_text_content) + (SELECT coalesce(sum(length(sz)), 0) FROM fts_text_docsize)"
            )
        ).scalar_one()
    else:
        indexed = int(conn.execute(text("SELECT count(*) FROM fts_text")).scalar_one())
        size = conn.execute(text("SELECT pg_total_relation_size('fts_text')")).scalar_one()
    return IndexStatus(pending=pending, indexed=indexed, index_bytes=int(size), message_bytes=message_bytes)
