"""Engine set-up for SQLite and PostgreSQL (asyncpg).

SQLite: WAL journal with ``synchronous=FULL`` so a commit is on disk when it
returns (a 250 reply to DATA promises that, RFC 5321 section 4.2.5), a busy
timeout, and foreign keys on (cascading deletes rely on them). SQLAlchemy
emits BEGIN itself instead of the sqlite3 module's legacy transaction control,
and write transactions use ``BEGIN IMMEDIATE``: a deferred transaction that
reads and later writes can fail with SQLITE_BUSY without waiting when another
process (the CLI) wrote in between.

The application engine is async (aiosqlite or asyncpg). The mail store also
opens a synchronous engine on the same database (``make_sync_engine``: pysqlite
with the same settings, or psycopg) and runs whole transactions on it in worker
threads: aiosqlite hops to its thread for every cursor operation, and asyncpg
statements awaited on a busy event loop each waited for the loop's other work.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

from sqlalchemy import URL, create_engine, event, make_url
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

__all__ = [
    "WRITE_OPTION",
    "is_file_sqlite",
    "make_engine",
    "make_sync_engine",
    "make_sync_sqlite_engine",
    "synchronous_normal",
]

WRITE_OPTION: Final = "mailstore_write"
"""Connection execution option marking a connection that will write."""

_BUSY_TIMEOUT_MS: Final = 30_000


def make_engine(url: str) -> AsyncEngine:
    engine = create_async_engine(url, pool_pre_ping=False)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine.sync_engine)
    return engine


def is_file_sqlite(url: URL) -> bool:
    """A SQLite database in a file, which a second engine can share (an
    in-memory one would be a different, empty database)."""
    if url.get_backend_name() != "sqlite":
        return False
    return url.database not in (None, "", ":memory:") and url.query.get("mode") != "memory"


def make_sync_sqlite_engine(url: str | URL, *, pool_size: int) -> Engine:
    """A synchronous pysqlite engine on the SQLite file behind the async ``url``,
    with the same pragmas and BEGIN handling as ``make_engine``. Its connections
    are used from worker threads (``check_same_thread=False``); ``pool_size``
    should cover the threads, so none waits for a connection or opens one per call."""
    sync_url = make_url(url).set(drivername="sqlite+pysqlite")
    engine = create_engine(
        sync_url,
        pool_size=pool_size,
        pool_pre_ping=False,
        connect_args={"check_same_thread": False},
    )
    _configure_sqlite(engine)
    return engine


def make_sync_engine(url: str | URL, *, pool_size: int) -> Engine:
    """The synchronous engine behind an async store URL, for the store's worker
    threads: pysqlite on a SQLite file (``make_sync_sqlite_engine``), psycopg on
    PostgreSQL (each statement a plain blocking round trip in the thread, none of
    them waiting for the event loop)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return make_sync_sqlite_engine(parsed, pool_size=pool_size)
    psycopg_url = parsed.set(drivername="postgresql+psycopg")
    return create_engine(psycopg_url, pool_size=pool_size, pool_pre_ping=False)


@contextmanager
def synchronous_normal(conn: Connection) -> Iterator[None]:
    """Commit the transactions run inside this block on SQLite with
    ``synchronous=NORMAL``, then restore ``FULL``; call it before BEGIN.

    In WAL mode NORMAL keeps the database consistent after a crash but leaves the
    WAL unsynced at commit, so a power loss may lose the last commits. Only
    writes whose loss a client tolerates (flags, \\Recent, last login,
    subscriptions) use it; the next FULL commit (any delivery, append or
    expunge) fsyncs the WAL and with it the earlier frames. The pragma is per
    connection and may change between transactions; it is set on the raw
    sqlite3 connection, which is in autocommit mode there (no SQLAlchemy
    autobegin)."""
    raw: Any = conn.connection.driver_connection
    raw.execute("PRAGMA synchronous=NORMAL")
    try:
        yield
    finally:
        try:
            raw.execute("PRAGMA synchronous=FULL")
        except BaseException:
            # Never hand a relaxed connection back to the pool for a durable commit.
            conn.invalidate()
            raise


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
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

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = bool(conn.get_execution_options().get(WRITE_OPTION))
        # On the DBAPI cursor: exec_driver_sql would cost as much as a point query.
        cursor = conn.connection.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        finally:
            cursor.close()
