"""``PointQuery``: the MAIL/RCPT point reads (an account, a quota, the routing
serial) run on SQLite through the DBAPI connection must give exactly the rows
SQLAlchemy's execution of the same statement gives (the general path, used on
PostgreSQL, in-memory SQLite and when the database is locked)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import MultipleResultsFound

from storage import open_store
from storage.directory import By
from storage.routes import open_routes
from storage.sieve import NoSuchScriptOwner, sieve_scripts_for
from storage.sql.database import PointQuery
from storage.sql.routes import _POINT_SERIAL
from storage.sql.sieve import _POINT_ACTIVE
from storage.sql.store import _POINT_ACCOUNT_BY_ADDRESS, _POINT_ACCOUNT_BY_ID, _POINT_USAGE, A, SqlMailStore


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqlMailStore]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'index.db'}"
    store = cast(SqlMailStore, open_store(url, tmp_path / "maildir"))
    await store.start()
    yield store
    await store.close()


async def _both(store: SqlMailStore, query: PointQuery, params: dict[str, Any]) -> tuple[Any, Any]:
    """(the fast path's row, SQLAlchemy's row) for the same query."""
    threads = store.db._threads
    assert threads is not None and threads.sqlite
    assert query.compiled(threads.dialect).direct
    fast = await store.db.run_point_query(query, params)
    general = await store.db.run_read(query.one_or_none, params)
    return fast, general


def _same(fast: Any, general: Any) -> None:
    if general is None:
        assert fast is None
        return
    assert tuple(fast) == tuple(general)
    assert [type(v) for v in fast] == [type(v) for v in general]
    assert fast._fields == tuple(general._fields)


async def test_account_rows_are_sqlalchemys(sqlite_store: SqlMailStore) -> None:
    store = sqlite_store
    plain = await store.create_account("a@example.org", "Nguyễn Văn A", "h1")
    other = await store.create_account("b@example.org", "", "h2")
    # Every kind of column set: dates, booleans, a NULL and a non-NULL quota.
    await store.record_login(other.id, datetime(2026, 3, 4, 10, 0, 5, tzinfo=UTC))
    await store.set_password(other.id, "h3", must_change_password=True)
    await store.set_disabled(other.id, True)
    await store.set_cert_login(other.id, True)
    await store.set_quota(other.id, 12345)
    for account in (plain, other):
        for query, params in (
            (_POINT_ACCOUNT_BY_ID, {"account_id": account.id}),
            (_POINT_ACCOUNT_BY_ADDRESS, {"address": account.address}),
        ):
            fast, general = await _both(store, query, params)
            _same(fast, general)
        assert await store.get_account(account.address) == await store.get_account_by_id(account.id)
    got = await store.get_account("b@example.org")
    assert got is not None and got.disabled and got.must_change_password and got.cert_login
    assert got.quota_bytes == 12345 and got.last_login_at is not None
    for query, params in (
        (_POINT_ACCOUNT_BY_ID, {"account_id": 999}),
        (_POINT_ACCOUNT_BY_ADDRESS, {"address": "nobody@example.org"}),
    ):
        fast, general = await _both(store, query, params)
        assert fast is None and general is None
    assert await store.get_account("nobody@example.org") is None


async def test_quota_and_serial_rows_are_sqlalchemys(sqlite_store: SqlMailStore) -> None:
    store = sqlite_store
    account = await store.create_account("a@example.org", "A", "h")
    _same(*await _both(store, _POINT_USAGE, {"account_id": account.id}))
    await store.set_quota(account.id, 5000)
    _same(*await _both(store, _POINT_USAGE, {"account_id": account.id}))
    quota = await store.quota(account.id)
    assert quota.storage_limit == 5000 and quota.messages_used == 0
    # The serial: no row before the first routing change, then counted up.
    fast, general = await _both(store, _POINT_SERIAL, {})
    assert fast is None and general is None
    routes = open_routes(store)
    assert await routes.serial() == 0
    await routes.add_address_alias("x@example.org", "a@example.org", by=By("test"))
    _same(*await _both(store, _POINT_SERIAL, {}))
    assert await routes.serial() == 1


async def test_active_script_rows_are_sqlalchemys(sqlite_store: SqlMailStore) -> None:
    """The recipient's active Sieve script (asked at every delivery): the same
    row with and without a script, the account unknown, and an account that
    somehow has two active scripts (only code prevents it) still delivers."""
    store = sqlite_store
    account = await store.create_account("a@example.org", "A", "h")
    scripts = sieve_scripts_for(store)
    _same(*await _both(store, _POINT_ACTIVE, {"address": "a@example.org"}))
    assert await scripts.active_script("A@example.org") is None
    await scripts.put_script("a@example.org", "lọc", "keep;")
    await scripts.set_active("a@example.org", "lọc")
    fast, general = await _both(store, _POINT_ACTIVE, {"address": "a@example.org"})
    _same(fast, general)
    assert fast.active is True and fast.updated_at.tzinfo is not None
    active = await scripts.active_script("a@example.org")
    assert active is not None and (active.name, active.text, active.active) == ("lọc", "keep;", True)
    assert await store.db.run_point_query(_POINT_ACTIVE, {"address": "x@example.org"}) is None
    with pytest.raises(NoSuchScriptOwner):
        await scripts.active_script("x@example.org")
    await scripts.put_script("a@example.org", "khác", "discard;")

    def second_active(conn: Connection) -> None:
        conn.exec_driver_sql(
            "UPDATE sieve_scripts SET active = 1 WHERE account_id = ? AND name = ?", (account.id, "khác")
        )

    await store.db.run_write(second_active)
    active = await scripts.active_script("a@example.org")
    assert active is not None and active.name in {"lọc", "khác"} and active.active


async def test_more_than_one_row_raises_as_one_or_none_does(sqlite_store: SqlMailStore) -> None:
    store = sqlite_store
    await store.create_account("a@example.org", "A", "h")
    await store.create_account("b@example.org", "B", "h")
    query = PointQuery(select(A.c.id, A.c.address).where(A.c.name != bindparam("name")))
    with pytest.raises(MultipleResultsFound):
        await store.db.run_point_query(query, {"name": "C"})
    with pytest.raises(MultipleResultsFound):
        await store.db.run_read(query.one_or_none, {"name": "C"})
    fast, general = await _both(store, query, {"name": "B"})
    _same(fast, general)
    assert fast.address == "a@example.org"


async def test_a_locked_database_is_read_in_a_reader_thread(
    sqlite_store: SqlMailStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = sqlite_store
    account = await store.create_account("a@example.org", "A", "h")
    threads = store.db._threads
    assert threads is not None

    def locked(query: PointQuery, params: Any) -> Any:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(threads, "point_query", locked)
    seen: list[int] = []
    original = PointQuery.one_or_none

    def general(self: PointQuery, conn: Connection, params: Any) -> Any:
        seen.append(threading.get_ident())
        return original(self, conn, params)

    monkeypatch.setattr(PointQuery, "one_or_none", general)
    got = await store.get_account(account.address)
    assert got == account or (got is not None and got.id == account.id)
    assert seen and seen[0] != threading.get_ident()

    def broken(query: PointQuery, params: Any) -> Any:
        raise sqlite3.OperationalError("no such table: accounts")

    monkeypatch.setattr(threads, "point_query", broken)
    with pytest.raises(sqlite3.OperationalError):  # other errors are not hidden by a second try
        await store.get_account(account.address)


def test_statements_with_converted_parameters_take_the_general_path() -> None:
    from sqlalchemy.dialects import sqlite

    dialect = sqlite.dialect()
    assert PointQuery(select(A.c.id).where(A.c.id == bindparam("i"))).compiled(dialect).direct
    expanding = PointQuery(select(A.c.id).where(A.c.id.in_(bindparam("ids", expanding=True))))
    assert not expanding.compiled(dialect).direct
    dated = PointQuery(select(A.c.id).where(A.c.created_at == bindparam("when")))
    assert not dated.compiled(dialect).direct  # SQLite stores dates as text: a bind processor
    twice = PointQuery(select(A.c.id, A.c.id.label("id")).where(A.c.id == bindparam("i")))
    assert not twice.compiled(dialect).direct  # rows with a key twice: SQLAlchemy's
