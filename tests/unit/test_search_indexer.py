"""The background indexer (``mailserver.search.indexer``) over a real SQLite store: the
batch handed to the workers ahead of each save is neither lost nor indexed twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailserver.search.indexer import Indexer
from mailserver.search.settings import SearchSettings
from policy.extract.walk import Limits
from storage.api import INBOX
from storage.sql.store import SqlMailStore


def _message(i: int) -> bytes:
    return (
        f"From: vanthu@dongnai.gov.vn\r\nTo: alice@example.org\r\nSubject: Công văn {i}\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\nQuyết định số {i}/QĐ-UBND tỉnh Đồng Nai\r\n"
    ).encode()


@pytest.mark.parametrize("processes", [0, 1])
async def test_batches_ahead_are_indexed_once_each(tmp_path: Path, processes: int) -> None:
    store = SqlMailStore(f"sqlite+aiosqlite:///{tmp_path / 'index.db'}", tmp_path / "maildir")
    await store.start()
    indexer = Indexer(store, Limits(), SearchSettings(batch=3, processes=processes))
    try:
        account = await store.create_account("alice@example.org", "Alice", "$argon2id$fake")
        inbox = (await store.get_folder(account.id, INBOX)).id
        uids = [(await store.append(account.id, inbox, _message(i))).uid for i in range(8)]
        done = [await indexer.run_once()]
        # A message stored while the next batch is being extracted is taken later.
        late = (await store.append(account.id, inbox, _message(8))).uid
        while done[-1]:
            done.append(await indexer.run_once())
        assert done == [3, 3, 3, 0]
        assert indexer.indexed == 9
        status = await store.index_status()
        assert (status.pending, status.indexed) == (0, 9)
        hits = await store.text_search(account.id, inbox, "text", "quyet dinh so")
        assert hits.uids == {*uids, late} and not hits.unindexed
        hits = await store.text_search(account.id, inbox, "text", "5/qd-ubnd")
        assert hits.uids == {uids[5]}
    finally:
        indexer.close()
        await store.close()


async def test_close_leaves_the_batch_ahead_on_the_work_list(tmp_path: Path) -> None:
    store = SqlMailStore(f"sqlite+aiosqlite:///{tmp_path / 'index.db'}", tmp_path / "maildir")
    await store.start()
    indexer = Indexer(store, Limits(), SearchSettings(batch=2, processes=0))
    try:
        account = await store.create_account("alice@example.org", "Alice", "$argon2id$fake")
        inbox = (await store.get_folder(account.id, INBOX)).id
        for i in range(4):
            await store.append(account.id, inbox, _message(i))
        assert await indexer.run_once() == 2
        indexer.close()  # the second batch was handed out, not saved
        assert (await store.index_status()).pending == 2
        again = Indexer(store, Limits(), SearchSettings(batch=2, processes=0))
        assert await again.run_once() == 2
        assert await again.run_once() == 0
        again.close()
        assert (await store.index_status()).pending == 0
    finally:
        indexer.close()
        await store.close()
