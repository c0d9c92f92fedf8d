"""Changes reaching selected IMAP sessions through a real server (SQLite and
PostgreSQL): SMTP deliveries and other sessions' commands are seen at the next
NOOP (the ChangeHub); changes made by another process on the same database are
seen by an IDLE session after the poll interval on SQLite, and at once on
PostgreSQL (LISTEN/NOTIFY between processes and nodes)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import aiosmtplib
import pytest

from mailserver.app import App
from mailserver.imap import server as imap_server
from mailserver.imap import session as imap_session
from storage import open_store
from storage.api import FlagMode, MailStore, Uid
from tests.clients.test_imap_clients import ANNV, PASSWORD, Raw, message
from tests.conftest import RunningServer, _pg_database, make_config


@pytest.fixture
def server(any_server: RunningServer) -> RunningServer:
    return any_server


async def login_select(server: RunningServer) -> Raw:
    raw = await Raw.connect(server)
    assert (await raw.command(b"a", f"LOGIN {ANNV} {PASSWORD}".encode()))[-1].startswith(b"a OK")
    assert (await raw.command(b"b", b"SELECT INBOX"))[-1].startswith(b"b OK")
    return raw


async def test_noop_sees_smtp_delivery_and_other_sessions(server: RunningServer) -> None:
    account = await server.add_account(ANNV, PASSWORD)
    inbox = await server.app.store.get_folder(account.id, "INBOX")
    for n in range(2):
        await server.app.store.deliver([account.id], message(f"m{n}"))
    watcher, actor = await login_select(server), await login_select(server)
    try:
        assert await watcher.command(b"n1", b"NOOP") == [b"n1 OK NOOP completed\r\n"]
        await aiosmtplib.send(message("Over SMTP"), sender="citizen@example.org", recipients=[ANNV],
                              hostname="127.0.0.1", port=server.port("smtp"), start_tls=False)
        assert b"* 3 EXISTS\r\n" in await watcher.command(b"n2", b"NOOP")
        await actor.command(b"s1", b"STORE 1 +FLAGS.SILENT (\\Flagged)")
        assert b"* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent))\r\n" in await watcher.command(b"n3", b"NOOP")
        await actor.command(b"s2", b"STORE 2 +FLAGS.SILENT (\\Deleted)")
        await actor.command(b"s3", b"EXPUNGE")
        assert await watcher.command(b"n4", b"NOOP") == [b"* 2 EXPUNGE\r\n", b"n4 OK NOOP completed\r\n"]
        assert [i.uid for i in await server.app.store.list_messages(account.id, inbox.id)] == [1, 3]
    finally:
        await watcher.close()
        await actor.close()


async def idle_while_another_store_acts(
    server: RunningServer, act: Callable[[MailStore, int], Awaitable[object]]
) -> bytes:
    """Deliver one message, IDLE on INBOX, let a second store on the same database
    (another process: the CLI, or another node) ``act(store, account_id)``, and
    return the first line the idling session got within 10 s."""
    account = await server.add_account(ANNV, PASSWORD)
    await server.app.store.deliver([account.id], message("one"))
    raw = await login_select(server)
    other = open_store(server.config.storage_url, server.config.maildir)
    await other.start()
    try:
        await raw.send(b"c IDLE\r\n")
        assert (await raw.line()).startswith(b"+ ")
        await act(other, account.id)
        line = await raw.line(timeout=10.0)
        await raw.send(b"DONE\r\n")
        assert (await raw.until(b"c"))[-1].startswith(b"c OK")
        return line
    finally:
        await other.close()
        await raw.close()


async def test_idle_sees_change_by_another_process(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite a second store publishes nothing to the server's hub: the idling
    session finds the change at its next poll (on PostgreSQL it is notified)."""
    monkeypatch.setattr(imap_server, "IDLE_POLL_INTERVAL", 0.2)
    monkeypatch.setattr(imap_session, "CHANGE_POLL_INTERVAL", 0.1)

    async def flag(other: MailStore, account_id: int) -> None:
        inbox = await other.get_folder(account_id, "INBOX")
        await other.store_flags(account_id, inbox.id, [Uid(1)], ["\\Flagged"], FlagMode.ADD)

    line = await idle_while_another_store_acts(server, flag)
    assert line == b"* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent))\r\n"


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from _pg_database()


@pytest.fixture
async def pg_server(tmp_path: Path, pg_url: str) -> AsyncIterator[RunningServer]:
    config = make_config(tmp_path / "data", pg_url)
    async with App(config) as app:
        yield RunningServer(app, config)


@pytest.mark.postgres
async def test_idle_hears_another_node_at_once_on_postgresql(pg_server: RunningServer) -> None:
    """A second store on the same PostgreSQL database (another node, or the CLI)
    notifies this server: the idling session reports the change well before its
    30 s poll, which is left as it is."""
    assert imap_server.IDLE_POLL_INTERVAL >= 30

    async def deliver(other: MailStore, account_id: int) -> None:
        await other.deliver([account_id], message("two"))

    start = time.monotonic()
    assert await idle_while_another_store_acts(pg_server, deliver) == b"* 2 EXISTS\r\n"
    assert time.monotonic() - start < 5
