"""Several nodes on one database (issue 26), at the store level, on SQLite and
PostgreSQL: queue claims are disjoint and lapse with their lease; a scheduled
job's slot goes to exactly one of many concurrent claimants."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from storage.queue import open_queue
from storage.sql.store import SqlMailStore
from tests.storage.conftest import StoreFactory

NOW = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)


async def test_two_nodes_claim_disjoint_messages_and_a_dead_nodes_lease_lapses(
    store_url: str, tmp_path: Path, make_store: StoreFactory
) -> None:
    await make_store()  # migrations
    # Two queues with their own engines, as two nodes have.
    first, second = open_queue(store_url, tmp_path / "spool"), open_queue(store_url, tmp_path / "spool")
    await first.start()
    await second.start()
    try:
        ids = [
            await first.enqueue("a@dongnai.gov.vn", [f"r{n}@example.org"], b"Subject: x\r\n\r\nx\r\n",
                                origin="test", now=NOW)
            for n in range(20)
        ]
        lease = timedelta(seconds=60)
        got_a, got_b = await asyncio.gather(
            first.claim(NOW, node="a", lease=lease, limit=12),
            second.claim(NOW, node="b", lease=lease, limit=12),
        )
        claimed_a, claimed_b = {m.id for m in got_a}, {m.id for m in got_b}
        assert not claimed_a & claimed_b
        assert claimed_a | claimed_b == set(ids)
        # Within the lease nobody else gets them; node a renews, b stops renewing (dies).
        assert await second.claim(NOW + timedelta(seconds=30), node="c", lease=lease) == []
        await first.renew(sorted(claimed_a), node="a", until=NOW + timedelta(seconds=200))
        later = await second.claim(NOW + timedelta(seconds=61), node="c", lease=lease)
        assert {m.id for m in later} == claimed_b
        # A release makes a message claimable at once.
        some = sorted(claimed_a)[0]
        await first.release(some, node="a")
        again = await second.claim(NOW + timedelta(seconds=62), node="c", lease=lease)
        assert {m.id for m in again} == claimed_b | {some}  # c's own claims come back to it too
    finally:
        await first.close()
        await second.close()


async def test_one_claimant_per_job_slot_and_takeover_after_the_lease(make_store: StoreFactory) -> None:
    stores: list[SqlMailStore] = [await make_store() for _ in range(4)]
    lease = timedelta(hours=1)
    results = await asyncio.gather(
        *(s.claim_job("backup", "2026-12-05T02:00", node=f"n{i}", now=NOW, lease=lease)
          for i, s in enumerate(stores) for _ in range(3))
    )
    assert results.count(True) == 1
    winner = results.index(True) // 3
    # Another slot is a new claim; the finished slot is never run again.
    await stores[winner].finish_job("backup", "2026-12-05T02:00", node=f"n{winner}", now=NOW)
    assert not await stores[0].claim_job("backup", "2026-12-05T02:00", node="late", now=NOW + 2 * lease,
                                         lease=lease)
    assert await stores[1].claim_job("backup", "2026-12-06T02:00", node="n1", now=NOW, lease=lease)
    # n1 dies inside that run: before the lease ends nobody takes it, after it one node does.
    assert not await stores[2].claim_job("backup", "2026-12-06T02:00", node="n2",
                                         now=NOW + timedelta(minutes=30), lease=lease)
    takeovers = await asyncio.gather(
        *(s.claim_job("backup", "2026-12-06T02:00", node=f"t{i}", now=NOW + 2 * lease, lease=lease)
          for i, s in enumerate(stores))
    )
    assert takeovers.count(True) == 1
