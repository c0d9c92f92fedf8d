"""messages.envelope_imap (migration 0005_envelope_wire): written at delivery and
COPY, filled in for rows stored before the migration. SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Connection

from storage.api import Account, Uid
from storage.imapwire import envelope_wire
from storage.sql.migrate import alembic_config
from storage.sql.store import SqlMailStore

from .conftest import StoreFactory

MESSAGE = (
    b'From: "Tr\xe1\xba\xa7n V\xc4\x83n A" <vana@example.com>\r\nTo: alice@example.org\r\n'
    b"Subject: =?utf-8?b?Q8O0bmcgdsSDbg==?=\r\nMessage-ID: <w1@example.com>\r\n\r\nBody.\r\n"
)


async def _inbox(store: SqlMailStore, account: Account) -> int:
    return next(f.id for f in await store.list_folders(account.id) if f.name == "INBOX")


async def _wires(store: SqlMailStore, account: Account, folder_id: int) -> list[tuple[bytes | None, str]]:
    details = await store.get_details(account.id, folder_id, [Uid(1), Uid(2)])
    return [(d.envelope_wire, d.envelope_json or "") for d in details]


async def test_written_at_delivery_and_copied(store: SqlMailStore, alice: Account) -> None:
    inbox = await _inbox(store, alice)
    await store.deliver([alice.id], MESSAGE)
    archive = await store.create_folder(alice.id, "Saved")
    await store.copy(alice.id, inbox, [Uid(1)], archive.id)
    for folder in (inbox, archive.id):
        ((wire, cached),) = await _wires(store, alice, folder)
        assert wire is not None and wire == envelope_wire(cached, False)
        assert b'"=?utf-8?b?Q8O0bmcgdsSDbg==?="' in wire


async def test_migration_fills_rows_stored_before_it(
    make_store: StoreFactory, store: SqlMailStore, alice: Account
) -> None:
    inbox = await _inbox(store, alice)
    await store.deliver([alice.id], MESSAGE)
    await store.deliver([alice.id], b"Subject: plain\r\n\r\nx\r\n")
    before = await _wires(store, alice, inbox)

    def back_to_0004(conn: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "0004_message_index")

    async with store.db.engine.begin() as conn:
        await conn.run_sync(back_to_0004)
    await store.close()
    reopened = await make_store()  # upgrades to the heads again, backfilling
    after = await _wires(reopened, alice, inbox)
    assert [wire for wire, _ in after] == [wire for wire, _ in before]
    assert all(wire is not None and wire == envelope_wire(cached, False) for wire, cached in after)
