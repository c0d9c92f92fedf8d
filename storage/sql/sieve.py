"""``SqlSieveScripts``: ``storage.sieve`` on the mail index's database.

Runs on the shared ``database.Database`` and its write serialisation (as the
credential store does). Each method is one transaction, so the invariants of
``storage.sieve`` (one active script, the active one not deletable, names
unique) hold against concurrent writers; the unique constraint on
``(account_id, name)`` backs the last one up across processes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final, cast

from sqlalchemy import Row, Table, bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from storage.sieve import (
    NoSuchScript,
    NoSuchScriptOwner,
    ScriptActive,
    ScriptExists,
    SieveScript,
    TooManyScripts,
)
from storage.sql import models
from storage.sql import sieve_models as sm
from storage.sql.database import Database, PointQuery

__all__ = ["SqlSieveScripts"]

A: Final = cast(Table, models.Account.__table__)
S: Final = cast(Table, sm.SieveScriptRow.__table__)


def _account(conn: Connection, address: str) -> tuple[int, str]:
    canonical = address.strip().lower()
    account_id = conn.execute(select(A.c.id).where(A.c.address == canonical)).scalar()
    if account_id is None:
        raise NoSuchScriptOwner(address)
    return int(account_id), canonical


_ACTIVE: Final = (
    select(A.c.id, S.c.name, S.c.text, S.c.active, S.c.updated_at)
    .select_from(A.outerjoin(S, (S.c.account_id == A.c.id) & S.c.active.is_(True)))
    .where(A.c.address == bindparam("address"))
    .limit(1)
)
"""The account and its active script (NULLs when none) in one statement, built
once: asked for every recipient of every message at delivery (Sieve), where
two statements built per call cost ~3x a point query. ``LIMIT 1``: only code
keeps an account to one active script (no constraint does), and a second one
must not fail deliveries (``.first()`` took one before)."""
_POINT_ACTIVE: Final = PointQuery(_ACTIVE)


def _script(owner: str, row: Row[Any]) -> SieveScript:
    return SieveScript(
        owner=owner, name=row.name, text=row.text, active=bool(row.active), updated=row.updated_at
    )


class SqlSieveScripts:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def active_script(self, address: str) -> SieveScript | None:
        owner = address.strip().lower()

        # Every recipient of every delivery: a point query (Database.run_point_query).
        row: Any = await self._db.run_point_query(_POINT_ACTIVE, {"address": owner})
        if row is None:
            raise NoSuchScriptOwner(address)
        return None if row.name is None else _script(owner, row)

    async def get_script(self, address: str, name: str) -> SieveScript | None:
        def tx(conn: Connection) -> SieveScript | None:
            account_id, owner = _account(conn, address)
            row = conn.execute(select(S).where(S.c.account_id == account_id, S.c.name == name)).first()
            return None if row is None else _script(owner, row)

        return await self._db.run_read(tx)

    async def list_scripts(self, address: str) -> list[SieveScript]:
        def tx(conn: Connection) -> list[SieveScript]:
            account_id, owner = _account(conn, address)
            rows = conn.execute(select(S).where(S.c.account_id == account_id).order_by(S.c.name))
            return [_script(owner, r) for r in rows]

        return await self._db.run_read(tx)

    async def put_script(self, address: str, name: str, text: str, *, max_scripts: int | None = None) -> None:
        now = datetime.now(UTC)

        def tx(conn: Connection) -> None:
            account_id, _ = _account(conn, address)
            done = conn.execute(
                update(S)
                .where(S.c.account_id == account_id, S.c.name == name)
                .values(text=text, updated_at=now)
            )
            if done.rowcount:
                return
            if max_scripts is not None:
                count = conn.execute(
                    select(func.count()).select_from(S).where(S.c.account_id == account_id)
                ).scalar_one()
                if count >= max_scripts:
                    raise TooManyScripts(name)
            conn.execute(
                insert(S).values(account_id=account_id, name=name, text=text, active=False, updated_at=now)
            )

        try:
            await self._db.run_write(tx)
        except IntegrityError:
            # Another writer created the same name between our UPDATE and INSERT:
            # replacing it again is what this caller asked for.
            await self._db.run_write(tx)

    async def set_active(self, address: str, name: str | None) -> None:
        def tx(conn: Connection) -> None:
            account_id, _ = _account(conn, address)
            if name is not None:
                found = conn.execute(
                    select(S.c.id).where(S.c.account_id == account_id, S.c.name == name)
                ).scalar()
                if found is None:
                    raise NoSuchScript(name)
            conn.execute(
                update(S)
                .where(S.c.account_id == account_id, S.c.active.is_(True), S.c.name != (name or ""))
                .values(active=False)
            )
            if name is not None:
                conn.execute(
                    update(S).where(S.c.account_id == account_id, S.c.name == name).values(active=True)
                )

        await self._db.run_write(tx)

    async def delete_script(self, address: str, name: str) -> None:
        def tx(conn: Connection) -> None:
            account_id, _ = _account(conn, address)
            active = conn.execute(
                select(S.c.active).where(S.c.account_id == account_id, S.c.name == name)
            ).scalar()
            if active is None:
                raise NoSuchScript(name)
            if active:
                raise ScriptActive(name)
            conn.execute(delete(S).where(S.c.account_id == account_id, S.c.name == name))

        await self._db.run_write(tx)

    async def rename_script(self, address: str, old: str, new: str) -> None:
        def tx(conn: Connection) -> None:
            account_id, _ = _account(conn, address)
            names = set(
                conn.execute(
                    select(S.c.name).where(S.c.account_id == account_id, S.c.name.in_((old, new)))
                ).scalars()
            )
            if old not in names:
                raise NoSuchScript(old)
            if new in names:  # old == new too: the new name is taken (RFC 5804 section 2.11.1)
                raise ScriptExists(new)
            conn.execute(
                update(S)
                .where(S.c.account_id == account_id, S.c.name == old)
                .values(name=new, updated_at=datetime.now(UTC))
            )

        try:
            await self._db.run_write(tx)
        except IntegrityError:
            raise ScriptExists(new) from None
