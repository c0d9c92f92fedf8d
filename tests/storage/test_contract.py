"""MailStore contract suite, run against SQLite and PostgreSQL (see conftest.py)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from storage.api import (
    INBOX,
    SPECIAL_FOLDERS,
    Account,
    AccountExists,
    CannotDeleteFolder,
    FlagMode,
    FolderExists,
    InvalidFolderName,
    ModSeq,
    NoSuchAccount,
    NoSuchFolder,
    SearchQuery,
    Uid,
)
from storage.maildir import account_path, folder_path
from storage.sql.fulltext_models import FTS_TABLE_PREFIX
from storage.sql.models import Base
from storage.sql.store import SqlMailStore

from .conftest import StoreFactory


def message(n: int = 1, *, subject: str = "Hello", extra: bytes = b"") -> bytes:
    return (
        b"From: Nguyen Van An <annv@dongnai.gov.vn>\r\n"
        b"To: Alice <alice@example.org>\r\n"
        b"Subject: " + subject.encode() + b"\r\n"
        b"Message-ID: <msg"
        + str(n).encode()
        + b"@dongnai.gov.vn>\r\n"
        + extra
        + b"\r\nBody line "
        + str(n).encode()
        + b"\r\n"
    )


async def inbox_id(store: SqlMailStore, account: Account) -> int:
    return (await store.get_folder(account.id, INBOX)).id


async def fill(store: SqlMailStore, account: Account, folder_id: int, count: int) -> list[Uid]:
    return [(await store.append(account.id, folder_id, message(i))).uid for i in range(1, count + 1)]


# -- schema -------------------------------------------------------------------


async def test_migration_matches_models(store: SqlMailStore) -> None:
    def compare(sync_conn):  # type: ignore[no-untyped-def]
        # The full-text index is engine-specific DDL outside the models (storage.sql.fulltext).
        def include_name(name, type_, parent_names):  # type: ignore[no-untyped-def]
            return not (type_ == "table" and name and name.startswith(FTS_TABLE_PREFIX))

        opts = {"compare_type": False, "include_name": include_name}
        ctx = MigrationContext.configure(sync_conn, opts=opts)
        diffs = compare_metadata(ctx, Base.metadata)
        tables = set(inspect(sync_conn).get_table_names())
        return diffs, tables

    async with store.db.engine.connect() as conn:
        diffs, tables = await conn.run_sync(compare)
    assert diffs == []
    assert {"accounts", "folders", "messages", "expunged", "alembic_version"} <= tables


# -- accounts -----------------------------------------------------------------


async def test_account_crud(store: SqlMailStore, alice: Account) -> None:
    assert alice.address == "alice@example.org"
    assert alice.created_at.tzinfo is not None
    assert await store.get_account("ALICE@example.ORG") == alice
    assert await store.get_account_by_id(alice.id) == alice
    assert await store.get_account("nobody@example.org") is None
    with pytest.raises(AccountExists):
        await store.create_account("alice@EXAMPLE.org", "Dup", "x")
    await store.set_password(alice.id, "$new", must_change_password=True)
    await store.set_disabled(alice.id, True)
    when = datetime(2025, 3, 1, 8, 30, tzinfo=UTC)
    await store.record_login(alice.id, when)
    changed = await store.get_account_by_id(alice.id)
    assert changed is not None
    assert changed.password_hash == "$new" and changed.must_change_password and changed.disabled
    assert changed.password_changed_at is not None and changed.last_login_at == when
    bob = await store.create_account("bob@example.org", "Bob", "h")
    assert [a.address for a in await store.list_accounts()] == ["alice@example.org", "bob@example.org"]
    await store.delete_account(bob.address)
    assert await store.get_account("bob@example.org") is None
    with pytest.raises(NoSuchAccount):
        await store.delete_account("bob@example.org")
    with pytest.raises(NoSuchAccount):
        await store.set_disabled(9999, True)


async def test_create_account_makes_special_folders(store: SqlMailStore, alice: Account) -> None:
    folders = await store.list_folders(alice.id)
    assert [f.name for f in folders][0] == INBOX
    by_name = {f.name: f for f in folders}
    assert set(by_name) == {INBOX, *(name for name, _ in SPECIAL_FOLDERS)}
    for name, use in SPECIAL_FOLDERS:
        assert by_name[name].special_use == use
    assert all(f.subscribed for f in folders)
    assert len({f.uidvalidity for f in folders}) == len(folders)
    assert (store.maildir.root / "example.org" / "alice" / "cur").is_dir()
    assert (store.maildir.root / "example.org" / "alice" / ".Sent" / "tmp").is_dir()


async def test_delete_account_removes_maildir(store: SqlMailStore, alice: Account) -> None:
    await store.deliver([alice.id], message())
    root = store.maildir.root / "example.org" / "alice"
    assert root.is_dir()
    await store.delete_account("alice@example.org")
    assert not root.exists()
    assert await store.list_folders(alice.id) == []


@pytest.mark.parametrize(
    "address",
    ["../../etc@x", "a@..", "a/b@c/d", "/etc/passwd@/", "x\x00y@z", ".@.", "..@..", "a@" + "d" * 250],
)
async def test_address_cannot_escape_root(store: SqlMailStore, address: str) -> None:
    try:
        account = await store.create_account(address, "Evil", "h")
    except ValueError:
        return  # refused outright is fine too
    await store.deliver([account.id], message())
    root = store.maildir.root.resolve()
    for path in root.rglob("*"):
        assert path.resolve().is_relative_to(root)
    files = [p for p in root.rglob("*") if p.is_file()]
    assert len(files) == 1
    assert len(files[0].relative_to(root).parts) == 4  # domain/local/cur/file


# -- folders ------------------------------------------------------------------


async def test_folder_create_get_list(store: SqlMailStore, alice: Account) -> None:
    folder = await store.create_folder(alice.id, "Projects/2025/Hộp thư.đến")
    assert folder.name == "Projects/2025/Hộp thư.đến"
    assert folder.uidnext == 1 and folder.special_use is None
    names = [f.name for f in await store.list_folders(alice.id)]
    assert {"Projects", "Projects/2025", "Projects/2025/Hộp thư.đến"} <= set(names)
    assert (await store.get_folder(alice.id, "inbox")).name == INBOX
    assert (await store.get_folder(alice.id, "Projects/2025")).id != folder.id
    with pytest.raises(NoSuchFolder):
        await store.get_folder(alice.id, "projects")  # only INBOX is case-insensitive
    with pytest.raises(FolderExists):
        await store.create_folder(alice.id, "Projects/2025")
    with pytest.raises(FolderExists):
        await store.create_folder(alice.id, "inbox")
    inbox_child = await store.create_folder(alice.id, "inbox/Sub")
    assert inbox_child.name == "INBOX/Sub"
    # the Maildir++ directory is one component, '.' levels, mUTF-7 names
    account_dir = store.maildir.root / "example.org" / "alice"
    dirs = {p.name for p in account_dir.iterdir() if p.name.startswith(".")}
    assert ".Projects.2025.H&Htk-p th&AbAALgERHr8-n" in dirs


@pytest.mark.parametrize(
    "name",
    ["", "/a", "a/", "a//b", "a/../b", "..", ".", "a/./b", "a\x00b", "a\nb", "x" * 256, "a\x7fb"],
)
async def test_invalid_folder_names(store: SqlMailStore, alice: Account, name: str) -> None:
    with pytest.raises(InvalidFolderName):
        await store.create_folder(alice.id, name)


async def test_unicode_folder_name_is_safe(store: SqlMailStore, alice: Account) -> None:
    for name in ["&", "&-", "a.b", ".hidden", "%2F", "\\", "~", "Ñ/ü", "🙂"]:
        folder = await store.create_folder(alice.id, name)
        await store.append(alice.id, folder.id, message())
    root = store.maildir.root.resolve()
    for path in root.rglob("*"):
        assert path.resolve().is_relative_to(root)
    assert len([p for p in root.rglob("*") if p.is_file()]) == 9


async def test_rename_folder_with_children(store: SqlMailStore, alice: Account) -> None:
    parent = await store.create_folder(alice.id, "Work")
    child = await store.create_folder(alice.id, "Work/Reports")
    await store.create_folder(alice.id, "Workshop")  # shares a prefix, must not move
    data = message(7)
    await store.append(alice.id, child.id, data)
    await store.rename_folder(alice.id, parent.id, "Archive/2025/Work")
    names = {f.name for f in await store.list_folders(alice.id)}
    assert {"Archive/2025", "Archive/2025/Work", "Archive/2025/Work/Reports", "Workshop"} <= names
    assert "Work" not in names and "Work/Reports" not in names
    moved = await store.get_folder(alice.id, "Archive/2025/Work/Reports")
    assert moved.id == child.id and moved.uidvalidity == child.uidvalidity
    assert await store.read_message(alice.id, child.id, Uid(1)) == data
    with pytest.raises(FolderExists):
        await store.rename_folder(alice.id, moved.id, "Sent")
    with pytest.raises(InvalidFolderName):
        await store.rename_folder(alice.id, parent.id, "Archive/2025/Work/Reports/x")


async def test_rename_inbox(store: SqlMailStore, alice: Account) -> None:
    inbox = await inbox_id(store, alice)
    await store.deliver([alice.id], message(1))
    await store.deliver([alice.id], message(2))
    await store.create_folder(alice.id, "INBOX/Keep")
    before = await store.folder_status(alice.id, inbox)
    await store.rename_folder(alice.id, inbox, "Old Mail")
    old = await store.get_folder(alice.id, "Old Mail")
    assert [m.uid for m in await store.list_messages(alice.id, old.id)] == [1, 2]
    assert await store.read_message(alice.id, old.id, Uid(2)) == message(2)
    assert await store.list_messages(alice.id, inbox) == []
    assert (await store.get_folder(alice.id, INBOX)).id == inbox
    assert (await store.get_folder(alice.id, "INBOX/Keep")).name == "INBOX/Keep"
    changes = await store.changes_since(alice.id, inbox, before.highestmodseq)
    assert changes.vanished == (1, 2)
    # new deliveries still land in INBOX, with UIDs that continue
    placed = await store.deliver([alice.id], message(3))
    assert placed.placed == ((alice.id, inbox, 3),)


async def test_delete_folder(store: SqlMailStore, alice: Account) -> None:
    folder = await store.create_folder(alice.id, "Temp")
    await store.append(alice.id, folder.id, message())
    folder_dir = store.maildir.root / "example.org" / "alice" / ".Temp"
    assert folder_dir.is_dir()
    await store.delete_folder(alice.id, folder.id)
    assert not folder_dir.exists()
    with pytest.raises(NoSuchFolder):
        await store.get_folder(alice.id, "Temp")
    with pytest.raises(CannotDeleteFolder):
        await store.delete_folder(alice.id, await inbox_id(store, alice))
    parent = await store.create_folder(alice.id, "P/C")
    with pytest.raises(CannotDeleteFolder):
        await store.delete_folder(alice.id, (await store.get_folder(alice.id, "P")).id)
    await store.delete_folder(alice.id, parent.id)
    recreated = await store.create_folder(alice.id, "Temp")
    assert recreated.uidvalidity != folder.uidvalidity  # RFC 9051 section 2.3.1.1


async def test_subscribe(store: SqlMailStore, alice: Account) -> None:
    await store.set_subscribed(alice.id, "Sent", False)
    assert not (await store.get_folder(alice.id, "Sent")).subscribed
    await store.set_subscribed(alice.id, "sent".capitalize(), True)
    assert (await store.get_folder(alice.id, "Sent")).subscribed
    with pytest.raises(NoSuchFolder):
        await store.set_subscribed(alice.id, "Nope", True)


# -- messages -------------------------------------------------------------------


async def test_deliver_append_read_exact_bytes(store: SqlMailStore, alice: Account) -> None:
    inbox = await inbox_id(store, alice)
    data = message(1, extra=b"X-Binary: \xe1\xbb\x87\r\n") + b"no final newline"
    result = await store.deliver([alice.id], data)
    assert result.placed == ((alice.id, inbox, 1),)
    stored = await store.read_message(alice.id, inbox, Uid(1))
    assert hashlib.sha256(stored).digest() == hashlib.sha256(data).digest()
    when = datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC)
    info = await store.append(
        alice.id, inbox, b"Subject: x\r\n\r\nhi\r\n", flags=["\\seen", "$Label"], internal_date=when
    )
    assert info.uid == 2 and info.flags == {"\\Seen", "$Label"} and info.internal_date == when
    assert info.size == len(b"Subject: x\r\n\r\nhi\r\n")
    listed = await store.list_messages(alice.id, inbox)
    assert [m.uid for m in listed] == [1, 2]
    assert listed[1] == info
    assert listed[0].size == len(data) and listed[0].flags == frozenset()
    with pytest.raises(KeyError):
        await store.read_message(alice.id, inbox, Uid(99))


async def test_read_with_info_is_one_call_of_both(store: SqlMailStore, alice: Account, bob: Account) -> None:
    inbox = await inbox_id(store, alice)
    await store.deliver([alice.id], message(1))
    await store.append(alice.id, inbox, message(2), flags=["\\Flagged"])
    info, data = await store.read_with_info(alice.id, inbox, Uid(2))
    assert data == message(2) == await store.read_message(alice.id, inbox, Uid(2))
    assert [info] == await store.get_infos(alice.id, inbox, [Uid(2)])
    assert info.flags == {"\\Flagged"}
    with pytest.raises(KeyError):
        await store.read_with_info(alice.id, inbox, Uid(3))
    # Another account's folder is not reachable by id.
    with pytest.raises(NoSuchFolder):
        await store.read_with_info(bob.id, inbox, Uid(1))


async def test_read_headers_reads_only_the_header_section(
    store: SqlMailStore, alice: Account, bob: Account
) -> None:
    inbox = await inbox_id(store, alice)
    await store.deliver([alice.id], message(1))
    body = b"x" * 100_000
    big = b"Subject: big\r\nReferences: <a@x>\r\n <b@x>\r\n\r\n" + body
    await store.append(alice.id, inbox, big)
    bare = b"Subject: no body"  # no blank line at all
    await store.append(alice.id, inbox, bare)
    heads = await store.read_headers(alice.id, inbox, [Uid(3), Uid(2), Uid(99)])
    assert heads == [(Uid(2), b"Subject: big\r\nReferences: <a@x>\r\n <b@x>\r\n\r\n"), (Uid(3), bare)]
    first = (await store.read_headers(alice.id, inbox, [Uid(1)]))[0][1]
    assert message(1).startswith(first) and first.endswith(b"\r\n\r\n")
    assert await store.read_headers(alice.id, inbox, []) == []
    with pytest.raises(NoSuchFolder):
        await store.read_headers(bob.id, inbox, [Uid(1)])


async def test_deliver_to_many_accounts(store: SqlMailStore, alice: Account, bob: Account) -> None:
    data = message()
    result = await store.deliver([alice.id, bob.id, alice.id], data)
    assert len(result.placed) == 2
    for account_id, folder_id, uid in result.placed:
        assert await store.read_message(account_id, folder_id, uid) == data
    with pytest.raises(NoSuchAccount):
        await store.deliver([alice.id, 424242], data)
    # all or none: alice did not get a second copy
    assert len(await store.list_messages(alice.id, await inbox_id(store, alice))) == 1
    files = [p for p in store.maildir.root.rglob("*") if p.is_file()]
    assert len(files) == 2


async def test_deliver_to_special_use_folder(store: SqlMailStore, alice: Account, bob: Account) -> None:
    # Tagged spam goes to each recipient's \\Junk folder; an account without
    # one (bob deleted his) gets it in INBOX; all in one durable call.
    bob_junk = await store.get_folder(bob.id, "Junk")
    await store.delete_folder(bob.id, bob_junk.id)
    data = message()
    result = await store.deliver([alice.id, bob.id], data, special_use="\\Junk")
    alice_junk = await store.get_folder(alice.id, "Junk")
    assert result.placed == ((alice.id, alice_junk.id, 1), (bob.id, await inbox_id(store, bob), 1))
    assert await store.read_message(alice.id, alice_junk.id, Uid(1)) == data
    assert await store.list_messages(alice.id, await inbox_id(store, alice)) == []
    on_disk = [p for p in store.maildir.root.rglob("*") if p.is_file()]
    assert len(on_disk) == 2 and any("Junk" in str(p) for p in on_disk)
    # A renamed Junk keeps its attribute and still receives.
    await store.rename_folder(alice.id, alice_junk.id, "Thư rác")
    placed = (await store.deliver([alice.id], data, special_use="\\Junk")).placed
    assert placed == ((alice.id, alice_junk.id, 2),)


async def test_get_details(store: SqlMailStore, alice: Account) -> None:
    inbox = await inbox_id(store, alice)
    subject = "=?UTF-8?B?VGjDtG5nIGLDoW8gaOG7jXA=?="
    await store.deliver([alice.id], message(1, subject=subject))
    await store.deliver([alice.id], message(2))
    details = await store.get_details(alice.id, inbox, [Uid(2), Uid(1), Uid(5)])
    assert [d.info.uid for d in details] == [1, 2]
    assert details[0].envelope.subject == "Thông báo họp"
    assert details[0].envelope.from_[0].mailbox == "annv"
    assert details[0].body.maintype == "text" and details[0].body.lines == 1


async def test_store_flags_and_modseq(store: SqlMailStore, alice: Account) -> None:
    inbox = await inbox_id(store, alice)
    uids = await fill(store, alice, inbox, 3)
    start = (await store.folder_status(alice.id, inbox)).highestmodseq
    update = await store.store_flags(alice.id, inbox, uids[:2], ["\\Seen", "\\Flagged"], FlagMode.ADD)
    assert [m.uid for m in update.changed] == [1, 2]
    assert all(m.modseq > start for m in update.changed)
    assert update.changed[0].flags == {"\\Seen", "\\Flagged"}
    mid = (await store.folder_status(alice.id, inbox)).highestmodseq
    assert mid == update.changed[0].modseq
    # no-op change: nothing changes, modseq stays
    again = await store.store_flags(alice.id, inbox, uids[:2], ["\\Seen"], FlagMode.ADD)
    assert again.changed == () and (await store.folder_status(alice.id, inbox)).highestmodseq == mid
    removed = await store.store_flags(alice.id, inbox, uids, ["\\flagged"], FlagMode.REMOVE)
    assert [(m.uid, m.flags) for m in removed.changed] == [(1, {"\\Seen"}), (2, {"\\Seen"})]
    replaced = await store.store_flags(alice.id, inbox, uids, ["$Work", "\\Recent"], FlagMode.REPLACE)
    assert {m.flags for m in replaced.changed} == {frozenset({"$Work"})}
    status = await store.folder_status(alice.id, inbox)
    assert status.unseen == 3 and status.messages == 3


async def test_unchangedsince_conflicts(store: SqlMailStore, alice: Account) -> None:
    inbox = await inbox_id(store, alice)
    uids = await fill(store, alice, inbox, 3)
    first = await store.store_flags(alice.id, inbox, [uids[0]], ["\\Answered"], FlagMode.ADD)
    before_change = ModSeq(first.changed[0].modseq - 1)
    result = await store.store_flags(
        alice.id, inbox, uids, ["\\Seen"], FlagMode.ADD, unchanged_since=before_change
    )
    assert result.conflicts == (1,)
    assert [m.uid for m in result.changed] == [2, 3]


async def test_expunge_tombstones_changes_since(store: SqlMailStore, alice: Account) -> None:
    inbox = await inbox_id(store, alice)
    uids = await fill(store, alice, inbox, 5)
    mark = (await store.folder_status(alice.id, inbox)).highestmodseq
    await store.store_flags(alice.id, inbox, [uids[1], uids[3], uids[4]], ["\\Deleted"], FlagMode.ADD)
    assert await store.expunge(alice.id, inbox, [uids[3], uids[0]]) == [4]
    assert await store.expunge(alice.id, inbox) == [2, 5]
    assert await store.expunge(alice.id, inbox) == []
    assert [m.uid for m in await store.list_messages(alice.id, inbox)] == [1, 3]
    changes = await store.changes_since(alice.id, inbox, mark)
    assert changes.vanished == (2, 4, 5)
    assert changes.changed == ()
    assert changes.highestmodseq == (await store.folder_status(alice.id, inbox)).highestmodseq
    await store.store_flags(alice.id, inbox, [uids[2]], ["\\Seen"], FlagMode.ADD)
    later = await store.changes_since(alice.id, inbox, changes.highestmodseq)
    assert [m.uid for m in later.changed] == [3] and later.vanished == ()
    files = [p for p in (store.maildir.root / "example.org" / "alice" / "cur").iterdir()]
    assert len(files) == 2
    # UIDs are never reused
    assert (await store.append(alice.id, inbox, message())).uid == 6


async def test_copy_and_move(store: SqlMailStore, alice: Account) -> None:
    inbox = await inbox_id(store, alice)
    archive = (await store.get_folder(alice.id, "Archive")).id
    uids = await fill(store, alice, inbox, 4)
    await store.store_flags(alice.id, inbox, [uids[0]], ["\\Seen", "$A"], FlagMode.ADD)
    assert await store.copy(alice.id, inbox, [uids[0], uids[2], Uid(77)], archive) == [(1, 1), (3, 2)]
    copied = await store.list_messages(alice.id, archive)
    assert copied[0].flags == {"\\Seen", "$A"}
    assert await store.read_message(alice.id, archive, Uid(2)) == message(3)
    mark = (await store.folder_status(alice.id, inbox)).highestmodseq
    assert await store.move(alice.id, inbox, [uids[1], uids[2]], archive) == [(2, 3), (3, 4)]
    assert [m.uid for m in await store.list_messages(alice.id, inbox)] == [1, 4]
    assert (await store.changes_since(alice.id, inbox, mark)).vanished == (2, 3)
    assert await store.read_message(alice.id, archive, Uid(4)) == message(3)
    assert await store.copy(alice.id, inbox, [], archive) == []
    # a copy is \Recent anew: the destination's watermark has not been claimed
    assert (await store.folder_status(alice.id, archive)).recent == 4


async def test_search(store: SqlMailStore, alice: Account) -> None:
    inbox = await inbox_id(store, alice)
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    for i in range(1, 6):
        await store.append(
            alice.id,
            inbox,
            message(i, subject=f"Report 50%_{i}" if i % 2 else "=?UTF-8?Q?H=E1=BB=8Dp?="),
            internal_date=t0 + timedelta(days=i),
        )
    await store.store_flags(alice.id, inbox, [Uid(1), Uid(2)], ["\\Seen"], FlagMode.ADD)
    await store.store_flags(alice.id, inbox, [Uid(2), Uid(3)], ["$Work_1"], FlagMode.ADD)

    async def search(**kw: object) -> list[int]:
        return list(await store.search(alice.id, inbox, SearchQuery(**kw)))  # type: ignore[arg-type]

    assert await search() == [1, 2, 3, 4, 5]
    assert await search(flags_set=frozenset({"\\Seen"})) == [1, 2]
    assert await search(flags_unset=frozenset({"\\seen"})) == [3, 4, 5]
    assert await search(flags_set=frozenset({"$Work_1"})) == [2, 3]
    assert await search(flags_set=frozenset({"$Work%"})) == []
    assert await search(uids=((2, 3), (5, 9))) == [2, 3, 5]
    assert await search(since=t0 + timedelta(days=2), before=t0 + timedelta(days=4)) == [2, 3]
    report = len(message(1, subject="Report 50%_1"))
    assert await search(smaller=report + 1) == [1, 3, 5]
    assert await search(larger=report) == [2, 4]
    assert await search(header_contains=(("subject", "HỌP"),)) == [2, 4]
    assert await search(header_contains=(("subject", "50%_3"),)) == [3]
    assert await search(header_contains=(("subject", "50%_"),)) == [1, 3, 5]
    assert await search(header_contains=(("from", "annv@"), ("to", "alice"))) == [1, 2, 3, 4, 5]
    assert await search(header_contains=(("message-id", "<msg4@"),)) == [4]
    assert await search(header_contains=(("cc", "x"),)) == []
    mark = (await store.folder_status(alice.id, inbox)).highestmodseq
    await store.store_flags(alice.id, inbox, [Uid(4)], ["\\Answered"], FlagMode.ADD)
    assert await search(modseq_above=mark) == [4]
    with pytest.raises(ValueError):
        await search(header_contains=(("x-spam", "yes"),))


async def test_quota(make_store: StoreFactory) -> None:
    store = await make_store(quota_bytes=10_000)
    alice = await store.create_account("alice@example.org", "A", "h")
    bob = await store.create_account("bob@example.org", "B", "h")
    await store.deliver([alice.id, bob.id], message(1))
    sent = (await store.get_folder(alice.id, "Sent")).id
    await store.append(alice.id, sent, message(22))
    quota = await store.quota(alice.id)
    assert quota.storage_used == len(message(1)) + len(message(22))
    assert quota.messages_used == 2 and quota.storage_limit == 10_000
    assert (await store.quota(bob.id)).messages_used == 1


async def test_claim_recent(store: SqlMailStore, alice: Account) -> None:
    inbox = await inbox_id(store, alice)
    await fill(store, alice, inbox, 2)
    assert (await store.folder_status(alice.id, inbox)).recent == 2
    assert await store.claim_recent(alice.id, inbox) == 1
    assert (await store.folder_status(alice.id, inbox)).recent == 0
    await fill(store, alice, inbox, 1)
    assert await store.claim_recent(alice.id, inbox) == 3
    assert await store.claim_recent(alice.id, inbox) == 4


async def test_group_commit(store: SqlMailStore, alice: Account) -> None:
    inbox = await inbox_id(store, alice)
    before = store.commit_count
    results = await asyncio.gather(*(store.deliver([alice.id], message(i)) for i in range(200)))
    uids = sorted(r.placed[0][2] for r in results)
    assert uids == list(range(1, 201))
    commits = store.commit_count - before
    assert 1 <= commits < 200
    listed = await store.list_messages(alice.id, inbox)
    assert len(listed) == 200
    for result in results[:5]:
        _, folder_id, uid = result.placed[0]
        data = await store.read_message(alice.id, folder_id, uid)
        assert data.startswith(b"From: ")


async def test_group_commit_isolates_failures(store: SqlMailStore, alice: Account) -> None:
    folder = await store.create_folder(alice.id, "Doomed")
    inbox = await inbox_id(store, alice)

    async def append_then_vanish() -> None:
        await store.append(alice.id, folder.id, message(0))

    good = [store.append(alice.id, inbox, message(i)) for i in range(20)]
    # delete the folder while appends to it may be queued
    tasks = [asyncio.ensure_future(append_then_vanish()) for _ in range(5)]
    await store.delete_folder(alice.id, folder.id)
    outcomes = await asyncio.gather(*good, *tasks, return_exceptions=True)
    assert all(not isinstance(o, BaseException) for o in outcomes[:20])
    assert all(o is None or isinstance(o, NoSuchFolder) for o in outcomes[20:])
    assert len(await store.list_messages(alice.id, inbox)) == 20
    # files of failed appends were removed
    assert not (store.maildir.root / "example.org" / "alice" / ".Doomed").exists() or not any(
        (store.maildir.root / "example.org" / "alice" / ".Doomed" / "cur").iterdir()
    )


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


async def test_staged_delivery_isolates_failures(store: SqlMailStore, alice: Account, bob: Account) -> None:
    """Deliveries are staged, then placed by the group commit: one that cannot be
    placed (its account was removed; another's Maildir is broken) fails alone,
    the rest of its batch is stored, and no file is left behind for it."""
    carol = await store.create_account("carol@example.org", "C", "h")
    await store.delete_account("carol@example.org")
    dave = await store.create_account("dave@example.org", "D", "h")
    dave_dir = store.maildir.root / "example.org" / "dave"
    shutil.rmtree(dave_dir)
    dave_dir.write_bytes(b"not a directory")  # its INBOX cannot be made again
    good = [store.deliver([alice.id, bob.id], message(i)) for i in range(10)]
    bad = [store.deliver([carol.id], message(90)), store.deliver([dave.id], message(91))]
    outcomes = await asyncio.gather(*good, *bad, return_exceptions=True)
    assert all(not isinstance(o, BaseException) for o in outcomes[:10]), outcomes
    assert isinstance(outcomes[10], NoSuchAccount)
    assert isinstance(outcomes[11], OSError)
    for account in (alice, bob):
        listed = await store.list_messages(account.id, await inbox_id(store, account))
        assert len(listed) == 10
    assert not (store.maildir.staging).exists() or not any(store.maildir.staging.iterdir())
    # 10 files for alice, 10 links for bob: nothing else
    assert len(_files(store.maildir.root / "example.org" / "alice")) == 10
    assert len(_files(store.maildir.root / "example.org" / "bob")) == 10


async def test_delivery_is_placed_and_committed_only_after_its_staging_write(
    store: SqlMailStore, alice: Account
) -> None:
    """``deliver`` queues a message while its staging write runs: the commit waits
    for the file's fsync before it renames it into the folder and commits its
    row; a write that fails fails that delivery alone and leaves no file."""
    import errno
    import threading

    gate = threading.Event()
    real_stage = store.maildir._stage

    def stage(data: bytes, name: str | None = None) -> str:
        if data == message(1):
            assert gate.wait(10)
        elif data == message(2):
            raise OSError(errno.ENOSPC, "no space left")
        return real_stage(data, name)

    store.maildir._stage = stage  # type: ignore[method-assign]
    inbox = await inbox_id(store, alice)
    held = asyncio.ensure_future(store.deliver([alice.id], message(1)))
    failing = asyncio.ensure_future(store.deliver([alice.id], message(2)))
    await asyncio.sleep(0.3)
    assert not held.done()
    assert await store.list_messages(alice.id, inbox) == []
    assert _files(store.maildir.root / "example.org" / "alice") == []  # not renamed into cur/ either
    gate.set()
    (placed,) = (await held).placed
    with pytest.raises(OSError, match="no space left"):
        await failing
    assert await store.read_message(alice.id, inbox, placed[2]) == message(1)
    assert len(await store.list_messages(alice.id, inbox)) == 1
    assert not any(store.maildir.staging.iterdir())
    # Later deliveries, in batches of several, are not held up by what failed.
    results = await asyncio.gather(*(store.deliver([alice.id], message(i)) for i in range(3, 13)))
    assert len({r.placed[0][2] for r in results}) == 10
    assert len(_files(store.maildir.root / "example.org" / "alice")) == 11
    # A large message is staged first, then queued (its write holds up no batch).
    big = message(13) + b"x" * 300_000
    (placed,) = (await store.deliver([alice.id], big)).placed
    assert await store.read_message(alice.id, inbox, placed[2]) == big
    assert not any(store.maildir.staging.iterdir())


async def test_staged_delivery_to_another_file_system(store: SqlMailStore, alice: Account) -> None:
    """A folder on another file system than the staging directory (rename gives
    EXDEV): the staged file is copied there, fsynced, and dropped from staging."""
    elsewhere = Path("/dev/shm")
    if not elsewhere.is_dir() or elsewhere.stat().st_dev == store.maildir.root.stat().st_dev:
        pytest.skip("no second file system at /dev/shm")
    home = store.maildir.root / "example.org" / "alice"
    target = elsewhere / f"mailtest-{os.getpid()}-{time.monotonic_ns()}"
    shutil.move(home, target)
    home.symlink_to(target)
    try:
        placed = (await store.deliver([alice.id], message(7))).placed[0]
        assert await store.read_message(alice.id, placed[1], placed[2]) == message(7)
        assert len(_files(target / "cur")) == 1
        assert not any(store.maildir.staging.iterdir())
    finally:
        shutil.rmtree(target)


async def test_staging_leftovers_are_removed_at_start(make_store: StoreFactory, maildir_root: Path) -> None:
    """A crash between staging and commit leaves a file that was never
    acknowledged: removed at start once older than the Maildir spec's 36 hours."""
    store = await make_store()
    await store.close()
    staging = maildir_root / ".staging"
    staging.mkdir(exist_ok=True)
    (staging / "old").write_bytes(b"x")
    (staging / "new").write_bytes(b"y")
    day_and_half = time.time() - 37 * 3600
    os.utime(staging / "old", (day_and_half, day_and_half))
    await make_store()
    assert sorted(p.name for p in staging.iterdir()) == ["new"]


async def test_durability_across_reopen(make_store: StoreFactory, maildir_root: Path) -> None:
    store = await make_store()
    alice = await store.create_account("alice@example.org", "A", "h")
    data = message(1)
    placed = (await store.deliver([alice.id], data)).placed[0]
    await store.store_flags(alice.id, placed[1], [placed[2]], ["\\Seen"], FlagMode.ADD)
    await store.create_folder(alice.id, "Kept/Sub")
    status = await store.folder_status(alice.id, placed[1])
    await store.close()
    reopened = await make_store()
    assert (await reopened.get_account("alice@example.org")) is not None
    assert await reopened.read_message(alice.id, placed[1], placed[2]) == data
    assert (await reopened.list_messages(alice.id, placed[1]))[0].flags == {"\\Seen"}
    assert await reopened.folder_status(alice.id, placed[1]) == status
    assert (await reopened.get_folder(alice.id, "Kept/Sub")).name == "Kept/Sub"


async def test_ownership_checks(store: SqlMailStore, alice: Account, bob: Account) -> None:
    bob_inbox = await inbox_id(store, bob)
    await store.deliver([bob.id], message())
    alice_inbox = await inbox_id(store, alice)
    calls = [
        store.list_messages(alice.id, bob_inbox),
        store.folder_status(alice.id, bob_inbox),
        store.claim_recent(alice.id, bob_inbox),
        store.get_details(alice.id, bob_inbox, [Uid(1)]),
        store.read_message(alice.id, bob_inbox, Uid(1)),
        store.store_flags(alice.id, bob_inbox, [Uid(1)], ["\\Seen"], FlagMode.ADD),
        store.expunge(alice.id, bob_inbox),
        store.copy(alice.id, bob_inbox, [Uid(1)], alice_inbox),
        store.copy(alice.id, alice_inbox, [Uid(1)], bob_inbox),
        store.move(alice.id, bob_inbox, [Uid(1)], alice_inbox),
        store.changes_since(alice.id, bob_inbox, ModSeq(0)),
        store.search(alice.id, bob_inbox, SearchQuery()),
        store.append(alice.id, bob_inbox, message()),
        store.delete_folder(alice.id, bob_inbox),
        store.rename_folder(alice.id, bob_inbox, "Stolen"),
    ]
    for call in calls:
        with pytest.raises(NoSuchFolder):
            await call
    assert len(await store.list_messages(bob.id, bob_inbox)) == 1
    assert await store.list_messages(alice.id, alice_inbox) == []


async def test_change_notification(store: SqlMailStore, alice: Account) -> None:
    inbox = await inbox_id(store, alice)
    event = store.changes.subscribe(inbox)
    await store.deliver([alice.id], message())
    assert event.is_set()
    event.clear()
    await store.store_flags(alice.id, inbox, [Uid(1)], ["\\Deleted"], FlagMode.ADD)
    assert event.is_set()
    event.clear()
    await store.expunge(alice.id, inbox)
    assert event.is_set()
    store.changes.unsubscribe(inbox, event)


async def test_large_folder_single_query(store: SqlMailStore, alice: Account) -> None:
    inbox = await inbox_id(store, alice)
    await asyncio.gather(*(store.deliver([alice.id], message(i)) for i in range(300)))
    uids = [m.uid for m in await store.list_messages(alice.id, inbox)]
    # a fragmented UID set (more ranges than go into SQL) is filtered correctly
    odd = [u for u in uids if u % 2]
    update = await store.store_flags(alice.id, inbox, odd, ["\\Seen"], FlagMode.ADD)
    assert [m.uid for m in update.changed] == odd
    assert [d.info.uid for d in await store.get_details(alice.id, inbox, odd)] == odd
    assert (await store.folder_status(alice.id, inbox)).unseen == 150


async def test_get_infos_reads_only_the_asked_uids(store: SqlMailStore, alice: Account) -> None:
    inbox = await inbox_id(store, alice)
    for i in range(10):
        await store.deliver([alice.id], message(i))
    await store.expunge(alice.id, inbox, None)  # nothing flagged: nothing goes
    infos = await store.get_infos(alice.id, inbox, [Uid(7), Uid(2), Uid(9), Uid(42)])
    assert [i.uid for i in infos] == [2, 7, 9]
    everything = {i.uid: i for i in await store.list_messages(alice.id, inbox)}
    assert all(everything[i.uid] == i for i in infos)
    assert await store.get_infos(alice.id, inbox, []) == []


async def test_get_infos_checks_ownership(store: SqlMailStore, alice: Account, bob: Account) -> None:
    bob_inbox = await inbox_id(store, bob)
    await store.deliver([bob.id], message())
    with pytest.raises(NoSuchFolder):
        await store.get_infos(alice.id, bob_inbox, [Uid(1)])


async def test_folder_index_for_select(store: SqlMailStore, alice: Account) -> None:
    inbox = await inbox_id(store, alice)
    empty = await store.folder_index(alice.id, inbox)
    assert list(empty.uids) == [] and empty.first_unseen is None and empty.keywords == frozenset()
    for i in range(5):
        await store.deliver([alice.id], message(i))
    await store.store_flags(alice.id, inbox, [Uid(1), Uid(2)], ["\\Seen", "$Forwarded"], FlagMode.ADD)
    await store.store_flags(alice.id, inbox, [Uid(4)], ["\\Seen", "Quan_trong"], FlagMode.ADD)
    index = await store.folder_index(alice.id, inbox)
    assert list(index.uids) == [1, 2, 3, 4, 5]
    assert index.first_unseen == 3
    assert index.keywords == {"$Forwarded", "Quan_trong"}
    await store.store_flags(alice.id, inbox, [Uid(3), Uid(5)], ["\\Seen"], FlagMode.ADD)
    assert (await store.folder_index(alice.id, inbox)).first_unseen is None
    # list_flags: what (UID FLAGS) of the whole folder reads; the same flags as list_messages.
    await store.store_flags(alice.id, inbox, [Uid(2)], ["\\Deleted"], FlagMode.ADD)
    await store.expunge(alice.id, inbox, [Uid(2)])
    flags = await store.list_flags(alice.id, inbox)
    assert [u for u, _ in flags] == [1, 3, 4, 5]
    infos = await store.list_messages(alice.id, inbox)
    assert [frozenset(text.split()) for _, text in flags] == [i.flags for i in infos]
    assert frozenset(flags[2][1].split()) == {"\\Seen", "Quan_trong"}


def _account_files(maildir_root: Path, address: str) -> set[str]:
    """Message files under an account's Maildir (every folder's cur/ and tmp/)."""
    base = maildir_root / str(account_path(address))
    return {
        str(p.relative_to(maildir_root))
        for p in base.rglob("*")
        if p.is_file() and p.parent.name in ("cur", "tmp")
    }


async def test_append_after_another_process_renamed_or_deleted_the_folder(
    make_store: StoreFactory, maildir_root: Path
) -> None:
    """APPEND remembers folder directories; a rename or delete made by another
    process (a second store on the same database) must not make it commit a row
    whose file is in the wrong directory, nor leave the file behind."""
    here, other = await make_store(), await make_store()
    alice = await here.create_account("alice@example.org", "A", "h")
    work = await here.create_folder(alice.id, "Work")
    first = await here.append(alice.id, work.id, message(1))
    await other.rename_folder(alice.id, work.id, "Projects")
    second = await here.append(alice.id, work.id, message(2))
    assert (first.uid, second.uid) == (1, 2)
    for store in (here, other):
        assert await store.read_message(alice.id, work.id, Uid(2)) == message(2)
    blobs = await other.folder_blobs(alice.id, work.id)
    assert all(blob.startswith(str(folder_path("alice@example.org", "Projects"))) for blob in blobs)
    assert _account_files(maildir_root, "alice@example.org") == set(blobs)

    await other.delete_folder(alice.id, work.id)
    kept = _account_files(maildir_root, "alice@example.org")  # what the vault keeps of it
    with pytest.raises(NoSuchFolder):
        await here.append(alice.id, work.id, message(3))
    assert _account_files(maildir_root, "alice@example.org") == kept


async def test_append_into_another_accounts_folder_is_refused_even_when_remembered(
    store: SqlMailStore, alice: Account, bob: Account, maildir_root: Path
) -> None:
    inbox = await inbox_id(store, alice)
    await store.append(alice.id, inbox, message(1))
    with pytest.raises(NoSuchFolder):
        await store.append(bob.id, inbox, message(2))
    assert [m.uid for m in await store.list_messages(alice.id, inbox)] == [1]
    assert len(_account_files(maildir_root, alice.address)) == 1
    assert _account_files(maildir_root, bob.address) == set()
