"""``storage.open_storage``: every store on one ``Database``, started and closed
together; ``storage_of`` finds the parts of a mail store opened alone, and
forgets a store once it is gone."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import pytest

from storage import Storage, open_storage, open_store, storage_of
from storage.directory import By, open_directory


async def test_the_parts_share_one_database(tmp_path: Path) -> None:
    storage = open_storage(f"sqlite+aiosqlite:///{tmp_path / 'index.db'}", tmp_path / "maildir",
                           spool_dir=tmp_path / "spool")
    await storage.start()
    try:
        account = await storage.mail.create_account("an@dongnai.gov.vn", "An", "h")
        await storage.directory.audit("account.add", account.address, by=By("test"))
        # Written through the directory, read through the mail store's parts: one database.
        (entry,) = await storage_of(storage.mail).directory.audit_log()
        assert entry.subject == "an@dongnai.gov.vn"
        queued = await storage.outbound_queue().enqueue("an@dongnai.gov.vn", ["x@example.org"], b"x",
                                                        origin="test")
        assert await storage.outbound_queue().get(queued) is not None
        assert await storage.credentials.list_app_passwords(account.id) == []
    finally:
        await storage.close()


async def test_a_store_opened_alone_finds_its_parts(tmp_path: Path) -> None:
    store = open_store(f"sqlite+aiosqlite:///{tmp_path / 'index.db'}", tmp_path / "maildir")
    await store.start()
    try:
        assert open_directory(store) is storage_of(store).directory
        await open_directory(store).audit("x.y", "subject", by=By("test"))
        assert len(await storage_of(store).directory.audit_log()) == 1
        with pytest.raises(RuntimeError):
            storage_of(store).outbound_queue()
    finally:
        await store.close()
    gone = weakref.ref(store)
    del store
    gc.collect()
    assert gone() is None  # the registry does not keep a closed store alive


def test_a_store_from_elsewhere_is_refused() -> None:
    class Elsewhere:
        pass

    with pytest.raises(TypeError, match="not opened by storage.open_storage"):
        storage_of(Elsewhere())  # type: ignore[arg-type]


def test_storage_is_what_open_storage_returns(tmp_path: Path) -> None:
    assert isinstance(open_storage("sqlite+aiosqlite://", tmp_path), Storage)
