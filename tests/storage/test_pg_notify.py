"""Folder changes between processes and nodes on PostgreSQL (LISTEN/NOTIFY,
storage/sql/notify.py): two stores on one real database stand for two nodes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from storage.api import INBOX, FlagMode, Uid
from storage.sql import notify
from storage.sql.notify import PgChangeHub, parse_payload, payloads
from storage.sql.store import SqlMailStore
from tests.conftest import PG_HOST, eventually, pg_execute

MESSAGE = b"From: a@example.org\r\nSubject: hello\r\n\r\nbody\r\n"


def test_payloads_are_chunked_under_the_limit_and_parse_back() -> None:
    ids = list(range(1, 5000))
    chunks = payloads(ids + ids[:10])
    assert len(chunks) > 1 and all(len(c) <= 7900 for c in chunks)
    assert sorted(i for c in chunks for i in parse_payload(c)) == ids
    assert parse_payload("12,x,,7") == [12, 7]
    assert payloads([]) == []


@pytest.fixture
def check_interval() -> float:
    """How often the listeners check their connection (the module's default)."""
    return notify._CHECK_INTERVAL


@pytest.fixture
async def two_nodes(
    pg_database: str, tmp_path: Path, check_interval: float, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[list[SqlMailStore]]:
    monkeypatch.setattr(notify, "_CHECK_INTERVAL", check_interval)
    dsn = f"postgresql://{PG_HOST}/{pg_database}"
    await pg_execute(dsn, "DROP SCHEMA public CASCADE", "CREATE SCHEMA public")
    url = f"postgresql+asyncpg://{PG_HOST}/{pg_database}"
    stores = [SqlMailStore(url, tmp_path / "maildir") for _ in range(2)]
    for store in stores:
        await store.start()
    yield stores
    for store in stores:
        await store.close()


@pytest.mark.postgres
async def test_a_delivery_on_one_node_wakes_the_other(two_nodes: list[SqlMailStore]) -> None:
    a, b = two_nodes
    assert isinstance(a.changes, PgChangeHub) and isinstance(b.changes, PgChangeHub)
    account = await a.create_account("an@example.org", "An", "h")
    inbox = (await b.get_folder(account.id, INBOX)).id
    woken = b.changes.next_change(inbox)
    before = b.changes.received  # creating an account publishes no folder change
    placed = (await a.deliver([account.id], MESSAGE)).placed[0]
    await asyncio.wait_for(woken, 5)  # not the 5-30 s polls of the sessions
    assert b.changes.received > before
    # flag changes travel too, and a node does not hear itself twice
    watch = b.changes.watch(inbox)
    version, own = watch.version, a.changes.received
    await a.store_flags(account.id, inbox, [Uid(placed[2])], ["\\Seen"], FlagMode.ADD)
    await eventually(lambda: watch.version > version, "the flag change heard")
    assert a.changes.received == own
    b.changes.unwatch(inbox, watch)


@pytest.mark.postgres
@pytest.mark.parametrize("check_interval", [0.1])
async def test_the_listener_reconnects_after_losing_its_connection(
    two_nodes: list[SqlMailStore], pg_database: str
) -> None:
    a, b = two_nodes
    assert isinstance(b.changes, PgChangeHub)
    account = await a.create_account("an@example.org", "An", "h")
    inbox = (await b.get_folder(account.id, INBOX)).id
    lost = b.changes._conn
    admin = await asyncpg.connect(f"postgresql://{PG_HOST}/{pg_database}")
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", lost.get_server_pid())
    finally:
        await admin.close()
    def reconnected() -> bool:
        conn = b.changes._conn
        return conn is not None and conn is not lost and not conn.is_closed()

    await eventually(reconnected, "the listener reconnected")
    woken = b.changes.next_change(inbox)
    await a.deliver([account.id], MESSAGE)
    await asyncio.wait_for(woken, 5)
