"""What a selected IMAP session reports of changes made elsewhere, and when it
asks the store (RFC 9051 section 7.5.1 EXISTS/EXPUNGE, section 7.5.2 FETCH
FLAGS; RFC 7162 MODSEQ): sessions ask only when the store's ChangeHub says the
folder changed in this process, or after ``change_poll_interval`` for changes
made by another process. Two sessions over one real SQLite store, no sockets."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from mailserver.auth import Authenticator, hash_password
from mailserver.config import AuthSettings, ImapSettings
from mailserver.imap.connection import NEED_DATA, Connection
from mailserver.imap.parser import Command
from mailserver.imap.selected import FolderCache
from mailserver.imap.session import Session
from storage import open_store
from storage.api import Account, Changes, FlagMode, FolderIndex, MailStore, ModSeq, Uid

ADDRESS = "annv@dongnai.gov.vn"
PASSWORD = "S3cret-pass-word"


def message(n: int) -> bytes:
    return (
        f"From: t@example.com\r\nTo: {ADDRESS}\r\nSubject: m{n}\r\n"
        f"Message-ID: <{n}@example.com>\r\n\r\nBody {n}.\r\n"
    ).encode()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


_CACHES: weakref.WeakKeyDictionary[MailStore, FolderCache] = weakref.WeakKeyDictionary()
"""One FolderCache per store, as ``ImapService`` holds one for its sessions."""


class Client:
    """One session fed whole command lines; returns the lines the server sent."""

    def __init__(self, store: MailStore, clock: Clock) -> None:
        self.session = Session(
            store,
            Authenticator(store, AuthSettings(failure_delay=0)),
            ImapSettings(),
            secure=True,
            remote_ip="127.0.0.1",
            starttls_available=False,
            clock=clock,
            change_poll_interval=5.0,
            folders=_CACHES.setdefault(store, FolderCache()),
        )
        self.connection = Connection(self.session, self.session.settings)
        self.n = 0

    async def cmd(self, line: str) -> list[str]:
        self.n += 1
        tag = f"t{self.n}"
        out: list[str] = []
        self.connection.receive_data(f"{tag} {line}\r\n".encode())
        while (event := self.connection.next_event()) is not NEED_DATA:
            assert isinstance(event, Command), event
            for resp in await self.session.handle(event):
                out += resp.to_bytes().decode().split("\r\n")[:-1]
        assert out[-1].startswith(f"{tag} OK"), out
        return out[:-1]


@pytest.fixture
async def account(store: MailStore) -> Account:
    account = await store.create_account(ADDRESS, "An", hash_password(PASSWORD), must_change_password=False)
    for n in range(1, 4):
        await store.deliver([account.id], message(n))
    return account


@pytest.fixture
def queries(store: MailStore, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts store.changes_since calls."""
    calls: list[int] = []
    real: Callable[[int, int, ModSeq], Awaitable[Changes]] = store.changes_since

    async def counting(account_id: int, folder_id: int, modseq: ModSeq) -> Changes:
        calls.append(folder_id)
        return await real(account_id, folder_id, modseq)

    monkeypatch.setattr(store, "changes_since", counting)
    return calls


async def selected(store: MailStore, clock: Clock, mailbox: str = "INBOX") -> Client:
    client = Client(store, clock)
    await client.cmd(f"LOGIN {ADDRESS} {PASSWORD}")
    await client.cmd(f"SELECT {mailbox}")
    return client


@pytest.fixture
async def seen_before(store: MailStore, account: Account) -> None:
    """A first session claimed \\Recent for the delivered messages (RFC 3501 2.3.2)."""
    await selected(store, Clock())


async def test_changes_by_other_sessions_and_deliveries_reach_noop(
    store: MailStore, account: Account, seen_before: None, queries: list[int]
) -> None:
    clock = Clock()
    a, b = await selected(store, clock), await selected(store, clock)
    # Nothing changed: NOOP reports nothing and does not ask the store.
    before = len(queries)
    assert await a.cmd("NOOP") == []
    assert len(queries) == before

    await b.cmd("STORE 1 +FLAGS.SILENT (\\Flagged)")
    assert await a.cmd("NOOP") == ["* 1 FETCH (UID 1 FLAGS (\\Flagged))"]

    await store.deliver([account.id], message(4))  # what the SMTP handler calls
    assert await a.cmd("NOOP") == ["* 4 EXISTS", "* 1 RECENT"]

    await b.cmd("STORE 2 +FLAGS.SILENT (\\Deleted)")
    await b.cmd("EXPUNGE")
    assert await a.cmd("NOOP") == ["* 2 EXPUNGE"]

    await b.cmd("COPY 1 INBOX")
    assert await a.cmd("NOOP") == ["* 4 EXISTS", "* 1 RECENT"]
    assert await a.cmd("UID SEARCH ALL") == ["* SEARCH 1 3 4 5"]

    # Caught up again: no store question for the next NOOP.
    before = len(queries)
    assert await a.cmd("NOOP") == []
    assert len(queries) == before


async def test_own_store_reports_modseq_and_is_not_repeated(
    store: MailStore, account: Account, seen_before: None, queries: list[int]
) -> None:
    clock = Clock()
    a = await selected(store, clock)
    await a.cmd("ENABLE CONDSTORE")
    assert await a.cmd("STORE 1 +FLAGS (\\Seen)") == ["* 1 FETCH (FLAGS (\\Seen) MODSEQ (5))"]
    assert await a.cmd("UID STORE 2 +FLAGS.SILENT (\\Flagged)") == ["* 2 FETCH (UID 2 MODSEQ (6))"]
    # The session's own changes were the folder's only ones: nothing to report, and
    # no need to ask.
    before = len(queries)
    assert await a.cmd("NOOP") == []
    assert len(queries) == before
    # Another session changes a message between two of ours: reported, once.
    b = await selected(store, clock)
    await b.cmd("STORE 3 +FLAGS.SILENT (\\Answered)")
    assert await a.cmd("STORE 1 -FLAGS (\\Seen)") == ["* 1 FETCH (FLAGS () MODSEQ (8))"]
    assert await a.cmd("NOOP") == ["* 3 FETCH (UID 3 FLAGS (\\Answered) MODSEQ (7))"]
    assert await a.cmd("NOOP") == []


async def test_change_behind_the_hub_seen_after_poll_interval(
    store: MailStore, account: Account, seen_before: None, tmp_path: Path, queries: list[int]
) -> None:
    """A second store on the same database (the CLI, another node) publishes on its
    own hub only: the session sees its changes at the first command after
    ``change_poll_interval``."""
    clock = Clock()
    a = await selected(store, clock)
    # A second store on the fixture's database (tests/conftest.py): changes behind this hub.
    other = open_store(f"sqlite+aiosqlite:///{tmp_path / 'index.db'}", tmp_path / "maildir")
    await other.start()
    try:
        inbox = await other.get_folder(account.id, "INBOX")
        await other.store_flags(account.id, inbox.id, [Uid(2)], ["\\Flagged"], FlagMode.ADD)
        before = len(queries)
        assert await a.cmd("NOOP") == []  # inside the interval: not asked
        assert len(queries) == before
        clock.now += 5.0
        assert await a.cmd("NOOP") == ["* 2 FETCH (UID 2 FLAGS (\\Flagged))"]
        # An expunge by the other process (as `mailserver mail remove` does).
        await other.store_flags(account.id, inbox.id, [Uid(1)], ["\\Deleted"], FlagMode.ADD)
        await other.expunge(account.id, inbox.id, [Uid(1)])
        clock.now += 5.0
        assert await a.cmd("NOOP") == ["* 1 EXPUNGE"]
        assert await a.cmd("UID SEARCH ALL") == ["* SEARCH 2 3"]
    finally:
        await other.close()


async def test_sessions_share_uids_and_diverge_on_write(store: MailStore, account: Account) -> None:
    clock = Clock()
    a, b = await selected(store, clock), await selected(store, clock)
    assert a.session.mailbox is not None and b.session.mailbox is not None
    assert a.session.mailbox.uids is b.session.mailbox.uids  # one shared array
    shared = a.session.mailbox.uids
    await b.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert await b.cmd("EXPUNGE") == ["* 1 EXPUNGE"]
    # b's expunge did not touch a's view: a still numbers message 1 until told.
    assert list(shared) == [1, 2, 3]
    assert a.session.mailbox.uids is shared
    assert await a.cmd("NOOP") == ["* 1 EXPUNGE"]
    await b.cmd("NOOP")
    # Both caught up with the same state: shared again.
    assert a.session.mailbox.uids is b.session.mailbox.uids
    assert list(a.session.mailbox.uids) == [2, 3]
    # A third session selecting the folder now reuses the array without reading it.
    c = await selected(store, clock)
    assert c.session.mailbox is not None and c.session.mailbox.uids is a.session.mailbox.uids


async def test_close_releases_the_watch(store: MailStore, account: Account) -> None:
    clock = Clock()
    a = await selected(store, clock)
    mb = a.session.mailbox
    assert mb is not None and mb.watch is not None
    watch = mb.watch
    assert watch.holders == 1
    b = await selected(store, clock)
    assert b.session.mailbox is not None and b.session.mailbox.watch is watch  # one per folder
    assert watch.holders == 2
    await a.cmd("SELECT INBOX")  # re-select: the old watch released, the folder's held again
    assert watch.holders == 2
    await a.cmd("CLOSE")
    assert watch.holders == 1
    b.session.close()  # the connection ended
    assert watch.holders == 0
    assert b.session.mailbox is None


async def test_concurrent_selects_read_the_index_once(
    store: MailStore, account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[int] = []
    real = store.folder_index

    async def counting(account_id: int, folder_id: int) -> FolderIndex:
        reads.append(folder_id)
        return await real(account_id, folder_id)

    monkeypatch.setattr(store, "folder_index", counting)
    clock = Clock()
    clients = [Client(store, clock) for _ in range(4)]
    for client in clients:
        await client.cmd(f"LOGIN {ADDRESS} {PASSWORD}")
    answers = await asyncio.gather(*(client.cmd("SELECT INBOX") for client in clients))
    assert all("* 3 EXISTS" in lines for lines in answers)
    assert len(reads) == 1
    arrays = {id(client.session.mailbox.uids) for client in clients if client.session.mailbox is not None}
    assert len(arrays) == 1


async def test_sessions_on_one_folder_ask_once_per_change(
    store: MailStore, account: Account, seen_before: None, queries: list[int]
) -> None:
    clock = Clock()
    a, b, c = [await selected(store, clock) for _ in range(3)]
    await b.cmd("STORE 2 +FLAGS.SILENT (\\Flagged)")
    before = len(queries)
    assert await a.cmd("NOOP") == ["* 2 FETCH (UID 2 FLAGS (\\Flagged))"]
    assert await c.cmd("NOOP") == ["* 2 FETCH (UID 2 FLAGS (\\Flagged))"]  # a's answer, reused
    assert len(queries) == before + 1
    await store.deliver([account.id], message(4))
    assert await c.cmd("NOOP") == ["* 4 EXISTS", "* 1 RECENT"]
    assert await a.cmd("NOOP") == ["* 4 EXISTS", "* 0 RECENT"]
    assert len(queries) == before + 2
    # Past the poll interval an old answer is not reused: the store is asked again.
    clock.now += 5.0
    assert await a.cmd("NOOP") == []
    assert len(queries) == before + 3
