"""Async engine set-up for SQLite (aiosqlite) and PostgreSQL (asyncpg).

SQLite: WAL journal with ``synchronous=FULL`` so a commit is on disk when it
returns (a 250 reply to DATA promises that, RFC 5321 section 4.2.5), a busy
timeout, and foreign keys on (cascading deletes rely on them). SQLAlchemy
emits BEGIN itself instead of the sqlite3 module's legacy transaction control,
and write transactions use ``BEGIN IMMEDIATE``: a deferred transaction that
reads and later writes can fail with SQLITE_BUSY without waiting when another
process (the CLI) wrote in between.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

__all__ = ["WRITE_OPTION", "make_engine"]

WRITE_OPTION: Final = "mailstore_write"
"""Connection execution option marking a connection that will write."""

_BUSY_TIMEOUT_MS: Final = 30_000


def make_engine(url: str) -> AsyncEngine:
    engine = create_async_engine(url, pool_pre_ping=False)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN away from the driver; _on_begin below emits it.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = bool(conn.get_execution_options().get(WRITE_OPTION))
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
