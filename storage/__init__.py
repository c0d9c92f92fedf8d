"""Mail storage: SQL index (SQLAlchemy, SQLite or PostgreSQL) plus Maildir message files.

``open_store`` is the one entry point; everything else talks to ``storage.api.MailStore``.
"""

from __future__ import annotations

from pathlib import Path

from storage.api import MailStore


def open_store(url: str, maildir: Path, *, quota_bytes: int | None = None) -> MailStore:
    """Build the store for a SQLAlchemy async URL (``sqlite+aiosqlite:///…`` or
    ``postgresql+asyncpg://…``) and a Maildir root. Call ``await store.start()``."""
    from storage.sql.store import SqlMailStore

    return SqlMailStore(url, maildir, quota_bytes=quota_bytes)
