"""How ``Database`` runs the stores' transactions: one function per call on a
synchronous connection (SQLite worker threads, PostgreSQL ``run_sync``), undo of
file work when a transaction does not commit, cancellation, durability levels."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from storage.api import INBOX, Account, FlagMode, Uid
from storage.sql.database import Undo
from storage.sql.store import F, SqlMailStore

from .test_contract import fill, inbox_id, message


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqlMailStore]:
    store = SqlMailStore(f"sqlite+aiosqlite:///{tmp_path / 'index.db'}", tmp_path / "maildir")
    await store.start()
    yield store
    await store.close()


def _synchronous(conn: Connection) -> int:
    return int(conn.exec_driver_sql("PRAGMA synchronous").scalar_one())


def _subscribed(conn: Connection, folder_id: int) -> bool:
    return bool(conn.execute(select(F.c.subscribed).where(F.c.id == folder_id)).scalar_one())


def _unsubscribe(conn: Connection, folder_id: int) -> None:
    conn.execute(update(F).where(F.c.id == folder_id).values(subscribed=False))


async def test_only_flag_writes_commit_with_synchronous_normal(sqlite_store: SqlMailStore) -> None:
    store = sqlite_store
    alice = await store.create_account("alice@example.org", "Alice", "h")
    folder = await inbox_id(store, alice)
    (uid,) = await fill(store, alice, folder, 1)
    assert await store.db.run_write(_synchronous, durable=False) == 1  # NORMAL
    await store.store_flags(alice.id, folder, [uid], ["\\Seen"], FlagMode.ADD)
    # Restored for the next transaction on the writer's connection, and durable
    # writes never see the relaxed setting.
    assert await store.db.run_write(_synchronous) == 2  # FULL
    assert await store.db.run_read(_synchronous) == 2


async def test_undo_runs_when_the_transaction_fails(store: SqlMailStore, alice: Account) -> None:
    folder = await inbox_id(store, alice)
    undone: list[str] = []

    def failing(conn: Connection, undo: Undo) -> None:
        _unsubscribe(conn, folder)
        undo.append(lambda: undone.append("first"))
        undo.append(lambda: undone.append("second"))
        raise ValueError("boom")

    undo: Undo = []
    with pytest.raises(ValueError, match="boom"):
        await store.db.run_write(failing, undo, undo=undo)
    assert undone == ["second", "first"]
    assert await store.db.run_read(_subscribed, folder)  # rolled back


async def test_undo_is_not_run_when_the_transaction_commits(store: SqlMailStore, alice: Account) -> None:
    folder = await inbox_id(store, alice)
    undone: list[str] = []

    def succeeding(conn: Connection, undo: Undo) -> None:
        _unsubscribe(conn, folder)
        undo.append(lambda: undone.append("undone"))

    undo: Undo = []
    await store.db.run_write(succeeding, undo, undo=undo)
    assert undone == []
    assert not await store.db.run_read(_subscribed, folder)


async def test_cancelled_write_keeps_the_lock_until_its_thread_is_done(sqlite_store: SqlMailStore) -> None:
    store = sqlite_store
    alice = await store.create_account("alice@example.org", "Alice", "h")
    folder = await inbox_id(store, alice)
    started, go = threading.Event(), threading.Event()

    def slow(conn: Connection) -> None:
        started.set()
        go.wait(30)
        _unsubscribe(conn, folder)

    task = asyncio.create_task(store.db.run_write(slow))
    assert await asyncio.to_thread(started.wait, 30)
    task.cancel()
    for _ in range(5):
        await asyncio.sleep(0)
    # The thread cannot be interrupted: the task waits for it, holding the lock.
    assert not task.done()
    assert store.db._write_lock.locked()
    go.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not store.db._write_lock.locked()
    assert not await store.db.run_read(_subscribed, folder)  # its commit stands


async def test_concurrent_flag_writes_reads_and_async_writers(store: SqlMailStore, alice: Account) -> None:
    folder = await inbox_id(store, alice)
    uids = await fill(store, alice, folder, 20)
    before = (await store.folder_status(alice.id, folder)).highestmodseq

    async def borrowed_write() -> None:
        # The outbound queue, directory and activity stores write through Database.write().
        async with store.db.write() as conn:
            await conn.execute(update(F).where(F.c.id == folder).values(subscribed=True))

    await asyncio.gather(
        *(store.store_flags(alice.id, folder, [uid], ["\\Flagged"], FlagMode.ADD) for uid in uids),
        *(store.get_infos(alice.id, folder, uids) for _ in range(20)),
        *(borrowed_write() for _ in range(5)),
    )
    infos = await store.get_infos(alice.id, folder, uids)
    assert all("\\Flagged" in i.flags for i in infos)
    # One modseq per STORE: serialised writers never hand out the same one twice.
    assert sorted(i.modseq for i in infos) == list(range(before + 1, before + 21))


async def test_close_shuts_threads_and_connections(sqlite_store: SqlMailStore) -> None:
    store = sqlite_store
    await store.create_account("alice@example.org", "Alice", "h")
    assert await store.get_account("alice@example.org") is not None
    threads = store.db._threads
    assert threads is not None
    await store.close()
    with pytest.raises(RuntimeError):
        threads.readers.submit(int)
    with pytest.raises(RuntimeError):
        threads.writer.submit(int)
    assert threads._connections and all(c.closed for c in threads._connections)


async def test_in_memory_sqlite_runs_on_the_async_engine(tmp_path: Path) -> None:
    # A second engine cannot share an in-memory database: the same functions
    # run through run_sync, file work in them through a thread.
    store = SqlMailStore("sqlite+aiosqlite://", tmp_path / "maildir")
    await store.start()
    try:
        assert store.db._threads is None
        alice = await store.create_account("alice@example.org", "Alice", "h")
        inbox = await store.get_folder(alice.id, INBOX)
        info = await store.append(alice.id, inbox.id, message(1))
        archive = await store.create_folder(alice.id, "Saved")
        assert await store.copy(alice.id, inbox.id, [info.uid], archive.id) == [(info.uid, Uid(1))]
        assert await store.read_message(alice.id, archive.id, Uid(1)) == message(1)
        await store.rename_folder(alice.id, archive.id, "Old")
        assert await store.read_message(alice.id, archive.id, Uid(1)) == message(1)
    finally:
        await store.close()


async def test_a_point_read_never_waits_for_a_lock_on_the_event_loop(sqlite_store: SqlMailStore) -> None:
    """Point reads (an account, a quota) run on the event loop's own connection, whose
    busy timeout is 0 (a reader thread's is 30 s: waiting there would stop the whole
    server); a read that finds the database locked is done again in a reader thread."""
    import sqlite3

    from sqlalchemy.exc import OperationalError

    db = sqlite_store.db

    def busy_timeout(conn: Connection) -> int:
        return int(conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one())

    assert await db.run_point_read(busy_timeout) == 0
    assert await db.run_read(busy_timeout) == 30_000
    loop_thread = threading.get_ident()
    threads: list[int] = []

    def locked_on_the_loop(conn: Connection) -> str:
        threads.append(threading.get_ident())
        if threading.get_ident() == loop_thread:
            raise OperationalError("SELECT 1", {}, sqlite3.OperationalError("database is locked"))
        return "read"

    assert await db.run_point_read(locked_on_the_loop) == "read"
    assert threads[0] == loop_thread and threads[1] != loop_thread

    def broken(conn: Connection) -> str:
        raise OperationalError("SELECT 1", {}, sqlite3.OperationalError("no such table: x"))

    with pytest.raises(OperationalError):  # other errors are not hidden by a second try
        await db.run_point_read(broken)
