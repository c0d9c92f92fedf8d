"""``DirectStatement``: the group commit's statements (quota read, target
folders, UID allocation, message INSERT, usage UPDATE) run on SQLite through
the DBAPI connection must do exactly what SQLAlchemy's execution of the same
statements does (the general path, used on PostgreSQL and in-memory SQLite).

Two ways: statement by statement in one transaction (rows, their types, and
the rows written), and whole stores, one with the fast path switched off,
given the same deliveries and APPENDs (results, refusals and every row)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import Executable, bindparam, insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, StatementError

from storage import open_store
from storage.api import OverQuota
from storage.sql.database import DirectStatement
from storage.sql.store import (
    _ACCOUNTS_USAGE,
    _ALLOCATE_UIDS,
    _CHARGE,
    _INBOX_TARGETS,
    _INSERT_MESSAGE,
    _SPECIAL_TARGETS,
    A,
    F,
    M,
    SqlMailStore,
)


async def _sqlite_store(path: Path, *, quota_bytes: int | None = None) -> SqlMailStore:
    store = cast(
        SqlMailStore,
        open_store(f"sqlite+aiosqlite:///{path / 'index.db'}", path / "maildir", quota_bytes=quota_bytes),
    )
    await store.start()
    return store


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqlMailStore]:
    store = await _sqlite_store(tmp_path)
    yield store
    await store.close()


def _same_rows(fast: Any, general: Any) -> None:
    assert [tuple(r) for r in fast] == [tuple(r) for r in general]
    for f, g in zip(fast, general, strict=True):
        assert [type(v) for v in f] == [type(v) for v in g]
        assert f._fields == tuple(g._fields)


def _message_values(i: int, folder_id: int, uid: int) -> dict[str, Any]:
    """Message rows of every kind of value: aware and naive dates, booleans
    both ways, NULL and bytes, non-ASCII text, empty strings."""
    zones = [UTC, timezone(timedelta(hours=7)), timezone(timedelta(hours=-5, minutes=-30)), None]
    zone = zones[i % len(zones)]
    date = datetime(2026, 1 + i % 12, 1 + i % 28, i % 24, i % 60, i % 60, i * 7919 % 1_000_000, tzinfo=zone)
    return {
        "envelope": f'["env {i}", "Nguyễn {i}"]',
        "envelope_imap": None if i % 3 == 0 else f"(NIL {i})".encode(),
        "bodystructure": f'{{"part": {i}}}',
        "subject": "" if i % 5 == 0 else f"chủ đề {i}",
        "from_": f"a{i}@example.org",
        "to_": "b@example.org",
        "cc": "",
        "bcc": "",
        "message_id": f"<{i}@example.org>",
        "size": 1000 + i,
        "flags": "" if i % 2 else "\\Seen \\Flagged",
        "seen": i % 2 == 0,
        "deleted": i % 4 == 1,
        "internal_date": date,
        "blob": f"cur/{i}.eml",
        "folder_id": folder_id,
        "uid": uid,
        "modseq": 10 + i,
    }


def _direct_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DirectStatement, "_direct", lambda self, conn, keys: None)
    monkeypatch.setattr(DirectStatement, "is_direct", lambda self, conn: False)


async def test_statements_give_sqlalchemys_rows(sqlite_store: SqlMailStore) -> None:
    store = sqlite_store
    accounts = [await store.create_account(f"u{i}@example.org", "U", "h") for i in range(5)]
    await store.create_folder(accounts[1].id, "Quarantine", special_use="\\Archive")
    await store.create_folder(accounts[2].id, "Old", special_use="\\Archive")
    await store.set_quota(accounts[3].id, 12345)
    await store.set_quota(accounts[4].id, 0)
    ids = [a.id for a in accounts]
    inbox = (await store.get_folder(ids[0], "INBOX")).id

    def check(conn: Connection) -> None:
        assert _INSERT_MESSAGE.is_direct(conn)
        cases: list[tuple[DirectStatement, dict[str, Any]]] = [
            (_ACCOUNTS_USAGE, {"b_accounts": ids}),
            (_ACCOUNTS_USAGE, {"b_accounts": ids[:1]}),
            (_ACCOUNTS_USAGE, {"b_accounts": [ids[3], 999, ids[0]]}),
            (_ACCOUNTS_USAGE, {"b_accounts": []}),  # SQLAlchemy's own empty set
            (_INBOX_TARGETS, {"b_accounts": ids}),
            (_INBOX_TARGETS, {"b_accounts": [ids[2], ids[1]]}),
            (_SPECIAL_TARGETS, {"b_accounts": ids, "b_use": "\\Junk"}),
            (_SPECIAL_TARGETS, {"b_accounts": ids, "b_use": "\\Sent"}),
        ]
        for statement, params in cases:
            _same_rows(statement.rows(conn, params), conn.execute(statement.statement, params).all())
        # The allocation, twice each way: the second sees the first's UPDATE.
        rows = []
        for count in (1, 3):
            rows.append(_ALLOCATE_UIDS.one_or_none(conn, {"b_folder": inbox, "b_count": count}))
            rows.append(
                conn.execute(_ALLOCATE_UIDS.statement, {"b_folder": inbox, "b_count": count}).one_or_none()
            )
        assert [r.uidnext for r in rows] == [2, 3, 6, 9]
        assert [r.highestmodseq for r in rows] == [rows[0].highestmodseq + k for k in range(4)]
        assert {(r.account_id, r.name) for r in rows} == {(ids[0], "INBOX")}
        for fast, general in (rows[0:2], rows[2:4]):
            assert [type(v) for v in fast] == [type(v) for v in general]
            assert fast._fields == tuple(general._fields)
        assert _ALLOCATE_UIDS.one_or_none(conn, {"b_folder": 999, "b_count": 1}) is None
        # The usage UPDATE: the same counters each way.
        charges = [{"b_account": a, "b_octets": 10 * a, "b_messages": a % 3} for a in ids]
        before = conn.execute(select(A.c.id, A.c.storage_used, A.c.message_count).order_by(A.c.id)).all()
        _CHARGE.execute(conn, charges)
        conn.execute(_CHARGE.statement, charges)
        after = conn.execute(select(A.c.id, A.c.storage_used, A.c.message_count).order_by(A.c.id)).all()
        assert [(a, u + 20 * a, m + 2 * (a % 3)) for a, u, m in before] == [tuple(r) for r in after]

    await store.db.run_write(check)


async def test_inserted_rows_are_sqlalchemys(sqlite_store: SqlMailStore) -> None:
    """The same values inserted both ways read back the same (through
    SQLAlchemy and as stored: the dates' text, booleans as integers)."""
    store = sqlite_store
    account = await store.create_account("a@example.org", "A", "h")
    inbox = (await store.get_folder(account.id, "INBOX")).id
    other = (await store.create_folder(account.id, "Other")).id

    def insert_both(conn: Connection) -> None:
        for i in range(60):
            fast_id = _INSERT_MESSAGE.insert_one(conn, _message_values(i, inbox, i + 1))
            general_id = conn.execute(
                _INSERT_MESSAGE.statement, _message_values(i, other, i + 1)
            ).scalar_one()
            assert general_id == fast_id + 1
        # Keys in another order and some columns left to their defaults:
        # compiled for that set of keys (or SQLAlchemy's, for the defaults).
        values = _message_values(100, inbox, 500)
        shuffled = dict(reversed(list(values.items())))
        _INSERT_MESSAGE.insert_one(conn, shuffled)
        conn.execute(_INSERT_MESSAGE.statement, {**shuffled, "folder_id": other})
        short = {k: v for k, v in values.items() if k not in {"subject", "cc", "flags", "seen"}}
        _INSERT_MESSAGE.insert_one(conn, {**short, "uid": 501})
        conn.execute(_INSERT_MESSAGE.statement, {**short, "uid": 501, "folder_id": other})

    await store.db.run_write(insert_both)

    def read(conn: Connection) -> tuple[list[Any], list[Any]]:
        columns = [c for c in M.c if c.key not in {"id", "folder_id"}]
        typed = [
            conn.execute(select(*columns).where(M.c.folder_id == f).order_by(M.c.uid)).all()
            for f in (inbox, other)
        ]
        names = ", ".join(c.name for c in columns)
        by_folder = f"SELECT {names} FROM messages WHERE folder_id = :f ORDER BY uid"  # noqa: S608
        raw = [conn.execute(text(by_folder), {"f": f}).all() for f in (inbox, other)]
        return typed, raw

    typed, raw = await store.db.run_read(read)
    assert len(typed[0]) == 62
    _same_rows(typed[0], typed[1])
    assert [tuple(r) for r in raw[0]] == [tuple(r) for r in raw[1]]
    assert all(r.internal_date.tzinfo is UTC for r in typed[0])


async def test_errors_are_sqlalchemys(sqlite_store: SqlMailStore) -> None:
    store = sqlite_store
    account = await store.create_account("a@example.org", "A", "h")
    inbox = (await store.get_folder(account.id, "INBOX")).id

    def duplicate_uid(conn: Connection) -> None:
        _INSERT_MESSAGE.insert_one(conn, _message_values(1, inbox, 7))
        _INSERT_MESSAGE.insert_one(conn, _message_values(2, inbox, 7))

    with pytest.raises(IntegrityError):
        await store.db.run_write(duplicate_uid)

    def no_such_folder(conn: Connection) -> None:
        _INSERT_MESSAGE.insert_one(conn, _message_values(1, 999, 1))

    with pytest.raises(IntegrityError):  # foreign_keys=ON
        await store.db.run_write(no_such_folder)
    assert await store.list_messages(account.id, inbox) == []

    def missing_parameter(conn: Connection, direct: bool) -> None:
        charge = [{"b_account": account.id, "b_octets": 5}]  # no b_messages
        if direct:
            _CHARGE.execute(conn, charge)
        else:
            conn.execute(_CHARGE.statement, charge)

    errors = []
    for direct in (True, False):
        with pytest.raises(StatementError) as caught:
            await store.db.run_write(missing_parameter, direct)
        errors.append((type(caught.value), str(caught.value.orig)))
    assert errors[0] == errors[1]


def test_a_statement_that_needs_sqlalchemy_is_not_direct() -> None:
    from sqlalchemy.dialects import sqlite

    dialect = sqlite.dialect()
    literal = select(A.c.id).where(A.c.id == bindparam("x", literal_execute=True))
    from storage.sql.database import _CompiledDirect

    assert not _CompiledDirect(literal, dialect, None).direct
    # A column with a Python-side default left out: SQLAlchemy computes it.
    keys = tuple(k for k in _message_values(0, 1, 1) if k != "subject")
    assert not _CompiledDirect(insert(M).returning(M.c.id), dialect, keys).direct
    assert _CompiledDirect(insert(M).returning(M.c.id), dialect, tuple(_message_values(0, 1, 1))).direct
    assert _CompiledDirect(
        F.update().values(name=bindparam("n")).where(F.c.id == bindparam("i")), dialect, None
    ).direct


# -- whole stores: the fast path and the general path given the same work -------


def _message(i: int, size: int) -> bytes:
    head = (
        f"From: Người gửi {i} <s{i}@example.org>\r\nTo: r@example.org\r\nSubject: thử {i}\r\n"
        f"Message-ID: <{i}@example.org>\r\nDate: Sun, 6 Dec 2026 04:00:00 +0000\r\n\r\n"
    ).encode()
    return head + b"x" * max(0, size - len(head))


async def _workload(store: SqlMailStore) -> list[Any]:
    """Deliveries alone and in concurrent batches, to several accounts at once,
    to SPECIAL-USE folders, refused and unrefused over quota; APPENDs with
    flags and dates. What each returned (or raised)."""
    ids = [(await store.create_account(f"u{i}@example.org", "U", "h")).id for i in range(4)]
    await store.create_folder(ids[1], "Quarantine", special_use="\\Archive")
    await store.set_quota(ids[2], 30_000)
    out: list[Any] = []

    async def deliver(i: int, accounts: list[int], **kwargs: Any) -> Any:
        try:
            result = await store.deliver(accounts, _message(i, 2000 + 997 * i % 5000), **kwargs)
        except OverQuota as exc:
            return ("refused", exc.account_id, exc.used, exc.limit, exc.size)
        return result.placed

    for i in range(12):  # one at a time
        out.append(
            await deliver(
                i,
                [ids[i % 4]],
                special_use="\\Junk" if i % 3 == 0 else None,
                internal_date=datetime(2026, 3, 1, 8, i),  # naive: taken as UTC
            )
        )
    for start in range(12, 60, 12):  # concurrent: one group commit for several
        out.extend(
            await asyncio.gather(
                *(
                    deliver(
                        i,
                        [ids[i % 4], ids[(i + 1) % 4]] if i % 5 == 0 else [ids[i % 4]],
                        special_use="\\Junk" if i % 7 == 0 else None,
                        quota=i % 11 != 0,
                        internal_date=datetime(2026, 2, 1 + i % 28, tzinfo=timezone(timedelta(hours=i % 5))),
                    )
                    for i in range(start, start + 12)
                )
            )
        )
    inbox = (await store.get_folder(ids[0], "INBOX")).id
    # One at a time: concurrent APPENDs queue in the order their files are written.
    appended = [
        await store.append(
            ids[0],
            inbox,
            _message(100 + i, 1500),
            flags=["\\Seen"] if i % 2 else [],
            internal_date=datetime(2025, 5, 1 + i, 12, tzinfo=UTC),
        )
        for i in range(6)
    ]
    out.extend((i.id, i.uid, i.modseq, sorted(i.flags), i.internal_date, i.size) for i in appended)
    return out


def _snapshot(conn: Connection) -> list[Any]:
    """Every row the work changed, without the file names (unique per store)."""
    tables: list[Executable] = [
        select(A.c.id, A.c.storage_used, A.c.message_count, A.c.quota_bytes).order_by(A.c.id),
        select(F.c.id, F.c.account_id, F.c.name, F.c.uidnext, F.c.highestmodseq).order_by(F.c.id),
        select(*[c for c in M.c if c.key != "blob"]).order_by(M.c.id),
        text("SELECT message_id FROM fts_pending ORDER BY message_id"),
    ]
    return [[tuple(r) for r in conn.execute(q).all()] for q in tables]


async def test_stores_with_and_without_the_fast_path_agree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast_store = await _sqlite_store(tmp_path / "fast")
    try:
        fast = await _workload(fast_store)
        fast_rows = await fast_store.db.run_read(_snapshot)
    finally:
        await fast_store.close()
    _direct_off(monkeypatch)
    general_store = await _sqlite_store(tmp_path / "general")
    try:
        general = await _workload(general_store)
        general_rows = await general_store.db.run_read(_snapshot)
    finally:
        await general_store.close()
    assert any(isinstance(r, tuple) and r and r[0] == "refused" for r in fast)
    assert fast == general
    assert fast_rows == general_rows
    assert len(fast_rows[2]) > 50


async def test_concurrent_appends_are_told_their_own_rows(sqlite_store: SqlMailStore) -> None:
    """Several APPENDs in one group commit (one INSERT each on the fast path):
    each is told the id and UID of its own row, whatever their order."""
    store = sqlite_store
    account = await store.create_account("a@example.org", "A", "h")
    inbox = (await store.get_folder(account.id, "INBOX")).id
    sizes = [900 + 37 * i for i in range(10)]
    infos = await asyncio.gather(
        *(store.append(account.id, inbox, _message(i, size)) for i, size in enumerate(sizes))
    )
    assert store.commit_count < len(sizes)  # some of them shared a transaction

    def stored(conn: Connection) -> dict[int, tuple[int, int]]:
        rows = conn.execute(select(M.c.id, M.c.uid, M.c.size).where(M.c.folder_id == inbox)).all()
        return {size: (id_, uid) for id_, uid, size in rows}

    assert {info.size: (info.id, info.uid) for info in infos} == await store.db.run_read(stored)
