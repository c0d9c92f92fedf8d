"""``SqlRoutesStore``: the routing tables (``storage.routes``) on the mail index's
database (the shared ``database.Database``, as the directory).
Every change bumps ``dir_route_serial`` and writes its audit entry in the same
transaction."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final, cast

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.directory import By
from storage.routes import AddressAlias, Domain, Forward, RoutesStore, RouteTaken, RoutingTable
from storage.sql import routes_models as rm
from storage.sql.audit import audit
from storage.sql.database import Database, PointQuery

__all__ = ["SqlRoutesStore"]

DO: Final = cast(Table, rm.DirDomain.__table__)
AA: Final = cast(Table, rm.DirAddressAlias.__table__)
FW: Final = cast(Table, rm.DirForward.__table__)
SE: Final = cast(Table, rm.DirRouteSerial.__table__)


_SERIAL: Final = select(SE.c.serial).where(SE.c.id == 1)


_POINT_SERIAL: Final = PointQuery(_SERIAL)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _low(text: str) -> str:
    return text.strip().lower().rstrip(".")


class SqlRoutesStore(RoutesStore):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def _changed(
        self, conn: AsyncConnection, action: str, subject: str, by: By, detail: Mapping[str, object]
    ) -> None:
        bumped = await conn.execute(update(SE).where(SE.c.id == 1).values(serial=SE.c.serial + 1))
        if bumped.rowcount == 0:
            await conn.execute(insert(SE).values(id=1, serial=1))
        await audit(conn, action, subject, by, detail)

    async def serial(self) -> int:
        # Asked at every MAIL: a statement built once (the async connection
        # path costs ten times more per call), a point read without thread hop.
        row = await self._db.run_point_query(_POINT_SERIAL, {})
        return int((row.serial if row is not None else None) or 0)

    async def table(self) -> RoutingTable:
        async with self._db.read() as conn:
            serial = (await conn.execute(select(SE.c.serial).where(SE.c.id == 1))).scalar_one_or_none()
            domains = (await conn.execute(select(DO).order_by(DO.c.name))).all()
            aliases = (await conn.execute(select(AA).order_by(AA.c.alias, AA.c.id))).all()
            forwards = (await conn.execute(select(FW).order_by(FW.c.address))).all()
        return RoutingTable(
            int(serial or 0),
            tuple(Domain(r.name, r.alias_of, r.created_at) for r in domains),
            tuple(AddressAlias(r.alias, r.target, r.created_at) for r in aliases),
            tuple(Forward(r.address, r.target, bool(r.keep_copy), r.created_at) for r in forwards),
        )

    # -- domains ----------------------------------------------------------------
    async def add_domain(self, name: str, alias_of: str | None, *, by: By) -> Domain:
        name, now = _low(name), _now()
        target = _low(alias_of) if alias_of else None
        try:
            async with self._db.write() as conn:
                await conn.execute(insert(DO).values(name=name, alias_of=target, created_at=now))
                await self._changed(conn, "domain.add", name, by, {"alias_of": target})
        except IntegrityError as exc:
            raise RouteTaken(f"tên miền đã có / domain exists: {name}") from exc
        return Domain(name, target, now)

    async def remove_domain(self, name: str, *, by: By) -> Domain | None:
        name = _low(name)
        async with self._db.write() as conn:
            row = (await conn.execute(select(DO).where(DO.c.name == name))).one_or_none()
            if row is None:
                return None
            await conn.execute(delete(DO).where(DO.c.name == name))
            await self._changed(conn, "domain.remove", name, by, {"alias_of": row.alias_of})
        return Domain(row.name, row.alias_of, row.created_at)

    async def domains(self) -> list[Domain]:
        return list((await self.table()).domains)

    # -- address aliases ------------------------------------------------------------
    async def add_address_alias(self, alias: str, target: str, *, by: By) -> AddressAlias:
        alias, target, now = _low(alias), _low(target), _now()
        try:
            async with self._db.write() as conn:
                await conn.execute(insert(AA).values(alias=alias, target=target, created_at=now))
                await self._changed(conn, "alias.add", alias, by, {"target": target})
        except IntegrityError as exc:
            raise RouteTaken(f"{alias} -> {target} đã có / exists already") from exc
        return AddressAlias(alias, target, now)

    async def remove_address_alias(self, alias: str, target: str | None, *, by: By) -> list[AddressAlias]:
        alias = _low(alias)
        where = [AA.c.alias == alias] + ([AA.c.target == _low(target)] if target else [])
        async with self._db.write() as conn:
            rows = (await conn.execute(select(AA).where(*where).order_by(AA.c.id))).all()
            if rows:
                await conn.execute(delete(AA).where(*where))
                await self._changed(conn, "alias.remove", alias, by, {"targets": [r.target for r in rows]})
        return [AddressAlias(r.alias, r.target, r.created_at) for r in rows]

    async def address_aliases(
        self, *, alias: str | None = None, target: str | None = None
    ) -> list[AddressAlias]:
        stmt = select(AA).order_by(AA.c.alias, AA.c.id)
        if alias is not None:
            stmt = stmt.where(AA.c.alias == _low(alias))
        if target is not None:
            stmt = stmt.where(AA.c.target == _low(target))
        async with self._db.read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [AddressAlias(r.alias, r.target, r.created_at) for r in rows]

    # -- forwarding -----------------------------------------------------------------
    async def set_forward(self, address: str, target: str, keep_copy: bool, *, by: By) -> Forward:
        address, target, now = _low(address), _low(target), _now()
        async with self._db.write() as conn:
            await conn.execute(delete(FW).where(FW.c.address == address))
            await conn.execute(
                insert(FW).values(address=address, target=target, keep_copy=keep_copy, created_at=now)
            )
            await self._changed(conn, "forward.set", address, by, {"to": target, "keep_copy": keep_copy})
        return Forward(address, target, keep_copy, now)

    async def clear_forward(self, address: str, *, by: By) -> Forward | None:
        address = _low(address)
        async with self._db.write() as conn:
            row = (await conn.execute(select(FW).where(FW.c.address == address))).one_or_none()
            if row is None:
                return None
            await conn.execute(delete(FW).where(FW.c.address == address))
            await self._changed(conn, "forward.clear", address, by, {"to": row.target})
        return Forward(row.address, row.target, bool(row.keep_copy), row.created_at)

    async def forwards(self, address: str | None = None) -> list[Forward]:
        stmt = select(FW).order_by(FW.c.address)
        if address is not None:
            stmt = stmt.where(FW.c.address == _low(address))
        async with self._db.read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [Forward(r.address, r.target, bool(r.keep_copy), r.created_at) for r in rows]
