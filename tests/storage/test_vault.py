"""The deleted-mail vault and holds (storage/sql/vault.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage.api import (
    INBOX,
    Account,
    FlagMode,
    HoldError,
    NoSuchDeleted,
    NoSuchFolder,
    OnHold,
    Uid,
)
from storage.maildir import vault_path
from storage.sql.store import SqlMailStore

from .test_contract import inbox_id, message


def _vault_files(root: Path, account: Account) -> list[Path]:
    cur = root / vault_path(account.address) / "cur"
    return sorted(cur.iterdir()) if cur.is_dir() else []


async def _expunge(store: SqlMailStore, account: Account, folder_id: int, uids: list[Uid]) -> None:
    await store.store_flags(account.id, folder_id, uids, ["\\Deleted"], FlagMode.ADD)
    assert await store.expunge(account.id, folder_id, uids) == sorted(uids)


async def test_expunged_message_comes_back_byte_for_byte(
    store: SqlMailStore, alice: Account, maildir_root: Path
) -> None:
    inbox = await inbox_id(store, alice)
    data = message(7, subject="=?utf-8?b?QsOhbyBjw6FvIHF1w70gSUlJ?=")
    when = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    info = await store.append(alice.id, inbox, data, flags=["\\Seen", "\\Flagged", "$Label1"],
                              internal_date=when)
    before = await store.quota(alice.id)
    await _expunge(store, alice, inbox, [info.uid])
    assert await store.list_messages(alice.id, inbox) == []
    assert (await store.quota(alice.id)).storage_used == before.storage_used - len(data)  # not counted

    (entry,) = await store.deleted_messages(alice.id)
    assert entry.folder == INBOX and entry.uid == info.uid and entry.size == len(data)
    assert entry.subject == "Báo cáo quý III"
    assert entry.from_ == "Nguyen Van An <annv@dongnai.gov.vn>"
    assert "\\Deleted" in entry.flags and "$Label1" in entry.flags
    assert entry.internal_date == when
    assert await store.read_deleted(alice.id, entry.id) == data
    assert len(_vault_files(maildir_root, alice)) == 1

    (restored,) = await store.undelete([entry.id])
    assert restored.folder == INBOX and restored.uid > info.uid and not restored.recreated
    (back,) = await store.list_messages(alice.id, inbox)
    assert back.uid == restored.uid
    assert back.flags == {"\\Seen", "\\Flagged", "$Label1"}
    assert back.internal_date == when
    assert await store.read_message(alice.id, inbox, back.uid) == data
    assert await store.deleted_messages(alice.id) == []
    assert _vault_files(maildir_root, alice) == []
    assert (await store.quota(alice.id)).storage_used == before.storage_used
    (detail,) = await store.get_details(alice.id, inbox, [back.uid])
    assert detail.envelope.subject == "Báo cáo quý III"


async def test_deleted_folder_is_recreated_on_undelete(store: SqlMailStore, alice: Account) -> None:
    folder = await store.create_folder(alice.id, "Dự án/2026")
    data = message(1)
    await store.append(alice.id, folder.id, data, flags=["\\Answered"])
    await store.delete_folder(alice.id, folder.id)
    parent = await store.get_folder(alice.id, "Dự án")
    await store.delete_folder(alice.id, parent.id)
    with pytest.raises(NoSuchFolder):
        await store.get_folder(alice.id, "Dự án/2026")
    (entry,) = await store.deleted_messages(alice.id)
    assert entry.folder == "Dự án/2026"
    (restored,) = await store.undelete([entry.id], account_id=alice.id)
    assert restored.recreated and restored.folder == "Dự án/2026"
    again = await store.get_folder(alice.id, "Dự án/2026")
    assert again.uidvalidity != folder.uidvalidity
    await store.get_folder(alice.id, "Dự án")  # the parent too
    (info,) = await store.list_messages(alice.id, again.id)
    assert info.flags == {"\\Answered"}
    assert await store.read_message(alice.id, again.id, info.uid) == data


async def test_renamed_folder_is_followed(store: SqlMailStore, alice: Account) -> None:
    folder = await store.create_folder(alice.id, "Old")
    info = await store.append(alice.id, folder.id, message(1))
    await _expunge(store, alice, folder.id, [info.uid])
    await store.rename_folder(alice.id, folder.id, "New")
    (entry,) = await store.deleted_messages(alice.id)
    assert entry.folder == "New"
    (restored,) = await store.undelete([entry.id])
    assert restored.folder_id == folder.id and not restored.recreated


async def test_move_and_rename_are_not_deletions(store: SqlMailStore, alice: Account) -> None:
    inbox = await inbox_id(store, alice)
    archive = await store.get_folder(alice.id, "Archive")
    info = await store.append(alice.id, inbox, message(1))
    await store.move(alice.id, inbox, [info.uid], archive.id)
    await store.rename_folder(alice.id, archive.id, "Lưu trữ")
    await store.expunge(alice.id, archive.id)  # nothing flagged
    assert await store.deleted_messages(alice.id) == []


async def test_undelete_is_all_or_none_and_per_account(
    store: SqlMailStore, alice: Account, bob: Account
) -> None:
    inbox = await inbox_id(store, alice)
    info = await store.append(alice.id, inbox, message(1))
    await _expunge(store, alice, inbox, [info.uid])
    (entry,) = await store.deleted_messages(alice.id)
    with pytest.raises(NoSuchDeleted) as caught:
        await store.undelete([entry.id], account_id=bob.id)
    assert caught.value.ids == (entry.id,)
    with pytest.raises(NoSuchDeleted):
        await store.read_deleted(bob.id, entry.id)
    with pytest.raises(NoSuchDeleted) as caught:
        await store.undelete([entry.id, entry.id + 1000])
    assert caught.value.ids == (entry.id + 1000,)
    assert [e.id for e in await store.deleted_messages(alice.id)] == [entry.id]
    assert await store.list_messages(alice.id, inbox) == []


async def test_purge_removes_only_entries_past_retention(
    store: SqlMailStore, alice: Account, maildir_root: Path
) -> None:
    inbox = await inbox_id(store, alice)
    uids = [(await store.append(alice.id, inbox, message(i))).uid for i in range(3)]
    await _expunge(store, alice, inbox, uids)
    old = await store.deleted_messages(alice.id)
    assert len(old) == 3
    # Retention of 30 days: two entries deleted 31 days ago go, the recent one stays.
    await _age(store, [e.id for e in old if e.uid in uids[:2]], days=31)
    cutoff = datetime.now(UTC) - timedelta(days=30)
    assert await store.purge_deleted(cutoff) == 2
    (left,) = await store.deleted_messages(alice.id)
    assert left.uid == uids[2]
    assert len(_vault_files(maildir_root, alice)) == 1
    assert await store.purge_deleted(cutoff) == 0


async def _age(store: SqlMailStore, entry_ids: list[int], *, days: int) -> None:
    """Move the deletion time of vault entries back (drives retention without waiting)."""
    from sqlalchemy import update

    from storage.sql.vault import V

    when = datetime.now(UTC) - timedelta(days=days)
    await store.db.run_write(
        lambda conn: conn.execute(update(V).where(V.c.id.in_(entry_ids)).values(deleted_at=when))
    )


async def test_hold_keeps_the_vault_and_the_mailbox(store: SqlMailStore, alice: Account) -> None:
    inbox = await inbox_id(store, alice)
    info = await store.append(alice.id, inbox, message(1))
    await _expunge(store, alice, inbox, [info.uid])
    hold = await store.set_hold("address", "ALICE@example.org", "Thanh tra số 12", by="op")
    assert (hold.scope, hold.target, hold.reason) == ("address", "alice@example.org", "Thanh tra số 12")
    assert await store.holds_on(alice.id) == [hold]
    await _age(store, [e.id for e in await store.deleted_messages(alice.id)], days=400)
    assert await store.purge_deleted(datetime.now(UTC)) == 0
    assert len(await store.deleted_messages(alice.id)) == 1
    # An operator's removal is vaulted anyway while the hold lasts.
    other = await store.append(alice.id, inbox, message(2))
    await store.store_flags(alice.id, inbox, [other.uid], ["\\Deleted"], FlagMode.ADD)
    await store.expunge(alice.id, inbox, [other.uid], vault=False)
    assert len(await store.deleted_messages(alice.id)) == 2
    with pytest.raises(OnHold) as refused:
        await store.delete_account(alice.address)
    assert "Thanh tra số 12" in str(refused.value) and "on hold" in str(refused.value)
    assert await store.get_account(alice.address) is not None
    cleared = await store.clear_hold("address", alice.address)
    assert cleared.id == hold.id
    assert await store.list_holds() == []
    with pytest.raises(HoldError):
        await store.clear_hold("address", alice.address)
    with pytest.raises(HoldError):
        await store.set_hold("address", "nobody@example.org", "x", by="op")
    with pytest.raises(HoldError):
        await store.set_hold("agency", "NO-SUCH", "x", by="op")
    assert await store.purge_deleted(datetime.now(UTC)) == 2
    await store.delete_account(alice.address)


async def test_operator_removal_skips_the_vault(store: SqlMailStore, alice: Account) -> None:
    inbox = await inbox_id(store, alice)
    info = await store.append(alice.id, inbox, message(1))
    await store.store_flags(alice.id, inbox, [info.uid], ["\\Deleted"], FlagMode.ADD)
    assert await store.expunge(alice.id, inbox, [info.uid], vault=False) == [info.uid]
    assert await store.deleted_messages(alice.id) == []


async def test_deleting_the_account_removes_its_vault(
    store: SqlMailStore, alice: Account, maildir_root: Path
) -> None:
    inbox = await inbox_id(store, alice)
    info = await store.append(alice.id, inbox, message(1))
    await _expunge(store, alice, inbox, [info.uid])
    await store.delete_account(alice.address)
    assert not (maildir_root / vault_path(alice.address)).exists()
    assert not os.path.exists(maildir_root / vault_path(alice.address).parent)


async def test_crash_leftovers_around_the_vault_are_never_lost_found(
    store: SqlMailStore, alice: Account, tmp_path: Path
) -> None:
    """What a crash at each step of expunge, undelete or purge leaves: the start-up
    check removes redundant names and keeps every indexed message, and never
    takes a vault file (or a folder file whose content the vault holds) for
    mail without a row."""
    from storage.reconcile import Reconciler

    inbox = await inbox_id(store, alice)
    first = await store.append(alice.id, inbox, message(1))
    second = await store.append(alice.id, inbox, message(2))
    blobs = set(await store.folder_blobs(alice.id, inbox))
    await _expunge(store, alice, inbox, [first.uid])
    (kept_blob,) = await store.folder_blobs(alice.id, inbox)
    (folder_blob,) = blobs - {kept_blob}
    (entry,) = await store.deleted_messages(alice.id)
    (vault_file,) = _vault_files(store.maildir.root, alice)
    # 1. The expunge committed, the folder's name was not unlinked yet.
    os.link(vault_file, store.maildir.absolute(folder_blob))
    # 2. An expunge of the second message that never committed: its vault link only.
    uncommitted = vault_file.with_name("1700000000.M9P9R9.host:2,")
    os.link(store.maildir.absolute(kept_blob), uncommitted)
    # 3. A purge that committed and did not unlink: a vault file alone.
    purged = vault_file.with_name("1700000001.M9P9R9.host:2,")
    purged.write_bytes(message(3))

    check = Reconciler(store, store.maildir.root, tmp_path / "lost+found", min_age=0)
    assert await check.run(None)
    assert check.stats.moved == [] and not (tmp_path / "lost+found").exists()
    assert check.stats.unlinked == 3
    assert not store.maildir.absolute(folder_blob).exists()
    assert not uncommitted.exists() and not purged.exists() and vault_file.exists()
    assert await store.read_message(alice.id, inbox, second.uid) == message(2)
    (restored,) = await store.undelete([entry.id])
    assert await store.read_message(alice.id, inbox, restored.uid) == message(1)
