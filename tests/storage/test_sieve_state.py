"""Contract suite of the Sieve interpreter's memory (``storage.sievestate``):
SQL on SQLite and PostgreSQL, and the in-memory variant, behave alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from storage.sievestate import MemorySieveState, SieveState, sieve_state_for
from storage.sql.store import SqlMailStore

NOW = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)


@pytest.fixture(params=["sql", "memory"])
def state(request: pytest.FixtureRequest, store: SqlMailStore) -> SieveState:
    return sieve_state_for(store) if request.param == "sql" else MemorySieveState()


async def test_vacation_period(state: SieveState) -> None:
    owner, sender = "annv@dongnai.gov.vn", "doitac@partner.test"
    assert not await state.vacation_recent(owner, "h", sender, NOW)
    await state.vacation_sent("AnNV@dongnai.gov.vn", "h", "DoiTac@partner.test", NOW + timedelta(days=7))
    assert await state.vacation_recent(owner, "h", sender, NOW + timedelta(days=6))
    assert not await state.vacation_recent(owner, "h", sender, NOW + timedelta(days=7))
    assert not await state.vacation_recent(owner, "other-handle", sender, NOW)
    assert not await state.vacation_recent("binhtt@dongnai.gov.vn", "h", sender, NOW)
    await state.vacation_sent(owner, "h", sender, NOW + timedelta(days=1))  # replaced, not duplicated
    assert not await state.vacation_recent(owner, "h", sender, NOW + timedelta(days=2))
    assert await state.purge(NOW + timedelta(days=2)) == 1


async def test_duplicate_tracking(state: SieveState) -> None:
    owner = "annv@dongnai.gov.vn"
    assert await state.duplicates(owner, NOW) == frozenset()
    await state.track(owner, [("k1", NOW + timedelta(hours=1)), ("k2", NOW + timedelta(days=1))])
    await state.track(owner, [("k1", NOW + timedelta(days=2))])  # seen again: new expiry
    assert await state.duplicates(owner, NOW + timedelta(hours=2)) == {"k1", "k2"}
    assert await state.duplicates(owner, NOW + timedelta(days=1, hours=1)) == {"k1"}
    assert await state.duplicates("binhtt@dongnai.gov.vn", NOW) == frozenset()
    assert await state.purge(NOW + timedelta(days=3)) == 2
