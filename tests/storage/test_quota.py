"""Quota enforcement in the store (RFC 9208 STORAGE), on SQLite and PostgreSQL:
APPEND, deliveries (group commit), COPY refused beyond the quota with nothing
stored; MOVE, EXPUNGE and folder deletion keep the usage counters exact."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Connection

from storage.api import INBOX, Account, FlagMode, NoSuchAccount, OverQuota, Uid
from storage.sql.migrate import alembic_config
from storage.sql.store import SqlMailStore

from .conftest import StoreFactory
from .test_contract import message

SIZE = len(message(1))


async def exact_usage(store: SqlMailStore, account: Account) -> tuple[int, int]:
    """(octets, messages) counted from the messages themselves."""
    octets = messages = 0
    for folder in await store.list_folders(account.id):
        for info in await store.list_messages(account.id, folder.id):
            octets += info.size
            messages += 1
    return octets, messages


async def assert_counted(store: SqlMailStore, account: Account) -> None:
    quota = await store.quota(account.id)
    assert (quota.storage_used, quota.messages_used) == await exact_usage(store, account)


def cur_files(root: Path) -> set[str]:
    return {p.name for p in root.rglob("*") if p.parent.name == "cur"}


async def test_append_beyond_the_quota_stores_nothing(
    make_store: StoreFactory, maildir_root: Path
) -> None:
    store = await make_store(quota_bytes=3 * SIZE)
    alice = await store.create_account("alice@example.org", "A", "h")
    inbox = (await store.get_folder(alice.id, INBOX)).id
    for n in range(3):
        await store.append(alice.id, inbox, message(n))
    files = cur_files(maildir_root)
    with pytest.raises(OverQuota) as refused:
        await store.append(alice.id, inbox, message(9))
    assert not refused.value.whole and refused.value.used == 3 * SIZE and refused.value.limit == 3 * SIZE
    assert cur_files(maildir_root) == files  # the written file was removed again
    assert (await store.folder_status(alice.id, inbox)).messages == 3
    # Space freed by EXPUNGE is usable again.
    await store.store_flags(alice.id, inbox, [Uid(1)], ["\\Deleted"], FlagMode.ADD)
    await store.expunge(alice.id, inbox)
    await store.append(alice.id, inbox, message(9))
    await assert_counted(store, alice)


async def test_per_account_quota_overrides_the_default(make_store: StoreFactory) -> None:
    store = await make_store(quota_bytes=SIZE)
    agency = await store.create_account("stttt@dongnai.gov.vn", "Sở TT&TT", "h")
    person = await store.create_account("annv@dongnai.gov.vn", "An", "h")
    await store.set_quota(agency.id, 0)  # unlimited, whatever the default
    await store.set_quota(person.id, 2 * SIZE)
    assert (await store.get_account_by_id(person.id)).quota_bytes == 2 * SIZE  # type: ignore[union-attr]
    for n in range(4):
        await store.deliver([agency.id], message(n))
    assert (await store.quota(agency.id)).storage_limit is None
    await store.deliver([person.id], message(1))
    await store.deliver([person.id], message(2))
    with pytest.raises(OverQuota):
        await store.deliver([person.id], message(3))
    await store.set_quota(person.id, None)  # back to the default (one message)
    assert (await store.quota(person.id)).storage_limit == SIZE
    with pytest.raises(NoSuchAccount):
        await store.set_quota(99999, SIZE)


async def test_delivery_is_all_or_none_and_notices_may_pass(make_store: StoreFactory) -> None:
    store = await make_store()
    alice = await store.create_account("alice@example.org", "A", "h")
    bob = await store.create_account("bob@example.org", "B", "h")
    await store.set_quota(bob.id, SIZE + 10)
    await store.deliver([bob.id], message(1))
    with pytest.raises(OverQuota) as refused:
        await store.deliver([alice.id, bob.id], message(2))
    assert refused.value.account_id == bob.id
    assert (await store.quota(alice.id)).messages_used == 0  # not delivered to anyone
    big = message(3, extra=b"X-Pad: " + b"x" * 200 + b"\r\n")
    with pytest.raises(OverQuota) as too_big:
        await store.deliver([bob.id], big)
    assert too_big.value.whole
    # The server's own notices (bounces, warnings) are stored even so.
    await store.deliver([bob.id], message(4), quota=False)
    await assert_counted(store, bob)


async def test_concurrent_deliveries_fill_the_quota_exactly(make_store: StoreFactory) -> None:
    store = await make_store()
    alice = await store.create_account("alice@example.org", "A", "h")
    bob = await store.create_account("bob@example.org", "B", "h")
    size = len(message(10))  # every message(10..29) has this size
    await store.set_quota(alice.id, 5 * size)
    results = await asyncio.gather(
        *(store.deliver([alice.id], message(n)) for n in range(10, 30)),
        *(store.deliver([bob.id], message(n)) for n in range(10, 30)),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, OverQuota)]
    assert len(refused) == 15 and all(r.account_id == alice.id for r in refused)
    assert not [r for r in results if isinstance(r, BaseException) and not isinstance(r, OverQuota)]
    assert (await store.quota(alice.id)).messages_used == 5
    assert (await store.quota(bob.id)).messages_used == 20
    await assert_counted(store, alice)
    await assert_counted(store, bob)


async def test_copy_counts_move_does_not(make_store: StoreFactory) -> None:
    store = await make_store()
    alice = await store.create_account("alice@example.org", "A", "h")
    await store.set_quota(alice.id, 3 * SIZE)
    inbox = (await store.get_folder(alice.id, INBOX)).id
    archive = (await store.get_folder(alice.id, "Archive")).id
    for n in range(2):
        await store.append(alice.id, inbox, message(n))
    with pytest.raises(OverQuota):
        await store.copy(alice.id, inbox, [Uid(1), Uid(2)], archive)
    assert (await store.folder_status(alice.id, archive)).messages == 0
    await store.copy(alice.id, inbox, [Uid(1)], archive)  # fits: 3 of 3
    # Full, yet a MOVE (to Trash, say) is allowed: it adds nothing.
    trash = (await store.get_folder(alice.id, "Trash")).id
    assert len(await store.move(alice.id, inbox, [Uid(1), Uid(2)], trash)) == 2
    await assert_counted(store, alice)
    await store.delete_folder(alice.id, trash)
    assert (await store.quota(alice.id)).messages_used == 1
    await assert_counted(store, alice)


async def test_recount_and_migration_count_existing_mail(make_store: StoreFactory) -> None:
    store = await make_store()
    alice = await store.create_account("alice@example.org", "A", "h")
    inbox = (await store.get_folder(alice.id, INBOX)).id
    for n in range(3):
        await store.append(alice.id, inbox, message(n))
    async with store.db.write() as conn:
        await conn.execute(text("UPDATE accounts SET storage_used = 7, message_count = 9"))
    await store.recount_usage()
    await assert_counted(store, alice)

    def remigrate(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "quota@-1")
        command.upgrade(config, "heads")

    async with store.db.write() as conn:
        await conn.run_sync(remigrate)
    # The revision counted the messages stored before it.
    await assert_counted(store, alice)
