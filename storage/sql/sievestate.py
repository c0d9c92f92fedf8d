"""``SqlSieveState``: ``storage.sievestate`` on the mail index's database,
borrowing the ``SqlMailStore``'s reader and writer threads. An upsert is a
delete and an insert in one transaction (the same SQL on SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final, cast

from sqlalchemy import Table, and_, delete, insert, select
from sqlalchemy.engine import Connection

from storage.sql import sievestate_models as sm
from storage.sql.database import Database

__all__ = ["SqlSieveState"]

V: Final = cast(Table, sm.SieveVacationRow.__table__)
D: Final = cast(Table, sm.SieveDuplicateRow.__table__)


class SqlSieveState:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def vacation_recent(self, owner: str, handle: str, sender: str, now: datetime) -> bool:
        where = and_(
            V.c.owner == owner.lower(), V.c.handle == handle, V.c.sender == sender.lower(), V.c.expires > now
        )

        def tx(conn: Connection) -> bool:
            return conn.execute(select(V.c.owner).where(where)).first() is not None

        return await self._db.run_read(tx)

    async def vacation_sent(self, owner: str, handle: str, sender: str, expires: datetime) -> None:
        key = {"owner": owner.lower(), "handle": handle, "sender": sender.lower()}

        def tx(conn: Connection) -> None:
            conn.execute(
                delete(V).where(V.c.owner == key["owner"], V.c.handle == handle, V.c.sender == key["sender"])
            )
            conn.execute(insert(V).values(**key, expires=expires))

        await self._db.run_write(tx)

    async def duplicates(self, owner: str, now: datetime) -> frozenset[str]:
        def tx(conn: Connection) -> frozenset[str]:
            rows = conn.execute(select(D.c.key).where(D.c.owner == owner.lower(), D.c.expires > now))
            return frozenset(str(r.key) for r in rows)

        return await self._db.run_read(tx)

    async def track(self, owner: str, entries: Sequence[tuple[str, datetime]]) -> None:
        if not entries:
            return
        owner = owner.lower()
        latest = dict(entries)

        def tx(conn: Connection) -> None:
            conn.execute(delete(D).where(D.c.owner == owner, D.c.key.in_(list(latest))))
            conn.execute(insert(D), [{"owner": owner, "key": k, "expires": e} for k, e in latest.items()])

        await self._db.run_write(tx)

    async def purge(self, now: datetime) -> int:
        def tx(conn: Connection) -> int:
            gone = conn.execute(delete(V).where(V.c.expires <= now)).rowcount
            return int(gone) + int(conn.execute(delete(D).where(D.c.expires <= now)).rowcount)

        return await self._db.run_write(tx)
