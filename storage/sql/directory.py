"""``SqlDirectoryStore``: the directory (``storage.directory``) on the mail index's database.

It runs on the shared ``database.Database`` (as the mail store does), so directory
writes are serialised with mail writes on SQLite and a reservation and its
audit entry always commit together. Core statements only, as in ``store``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, TypeAlias, cast

from sqlalchemy import Row, Table, and_, bindparam, delete, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.directory import (
    ALL_RIGHTS,
    AddressEntry,
    AddressKind,
    AddressState,
    AddressTaken,
    Agency,
    AgencyAlias,
    AgencyExists,
    AliasTaken,
    AuditEntry,
    By,
    Delegation,
    MailboxGrant,
    NewPerson,
    NoSuchAgency,
    NoSuchEntry,
    NoSuchPerson,
    Person,
    PersonHasMailbox,
    PersonStatus,
    canonical_rights,
)
from storage.sql import alias_models, models
from storage.sql import directory_models as dm
from storage.sql.audit import audit
from storage.sql.database import Database

__all__ = ["SqlDirectoryStore"]

AnyRow: TypeAlias = "Row[*tuple[Any, ...]]"

AG: Final = cast(Table, dm.DirAgency.__table__)
PE: Final = cast(Table, dm.DirPerson.__table__)
AD: Final = cast(Table, dm.DirAddress.__table__)
DE: Final = cast(Table, dm.DirDelegation.__table__)
PH: Final = cast(Table, dm.DirPasswordHistory.__table__)
NO: Final = cast(Table, dm.DirNotice.__table__)
AU: Final = cast(Table, dm.DirAudit.__table__)
ACC: Final = cast(Table, models.Account.__table__)
AL: Final = cast(Table, alias_models.DirAgencyAlias.__table__)

_ORDER: Final = {AddressState.ACTIVE: 0, AddressState.OFFBOARDED: 1, AddressState.RETIRED: 2}


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _addr(address: str) -> str:
    return address.strip().lower()


def _like(token: str) -> str:
    escaped = token.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _entry(row: AnyRow) -> AddressEntry:
    return AddressEntry(
        address=row.address,
        kind=AddressKind(row.kind),
        state=AddressState(row.state),
        person_id=row.person_id,
        agency_id=row.agency_id,
        account_id=row.account_id,
        created_at=row.created_at,
        offboarded_at=row.offboarded_at,
        purge_after=row.purge_after,
        retired_at=row.retired_at,
        archive=row.archive,
    )


_PARENT: Final = AG.alias("parent")
_AGENCY_ADDR: Final = AD.alias("agency_addr")
_PERSON_ADDR: Final = AD.alias("person_addr")


def _agency_select() -> Any:
    return (
        select(
            AG,
            _PARENT.c.code.label("parent_code"),
            _AGENCY_ADDR.c.address.label("address"),
            _AGENCY_ADDR.c.account_id.label("account_id"),
        )
        .outerjoin(_PARENT, _PARENT.c.id == AG.c.parent_id)
        .outerjoin(_AGENCY_ADDR, _AGENCY_ADDR.c.agency_id == AG.c.id)
    )


def _agency(row: AnyRow) -> Agency:
    return Agency(
        id=row.id,
        code=row.code,
        name=row.name,
        parent_code=row.parent_code,
        head_person_id=row.head_person_id,
        address=row.address,
        account_id=row.account_id,
        created_at=row.created_at,
    )


def _person_select() -> Any:
    return (
        select(
            PE,
            AG.c.code.label("agency_code"),
            _PERSON_ADDR.c.address.label("address"),
            _PERSON_ADDR.c.state.label("address_state"),
        )
        .join(AG, AG.c.id == PE.c.agency_id)
        .outerjoin(_PERSON_ADDR, _PERSON_ADDR.c.person_id == PE.c.id)
    )


def _person(row: AnyRow) -> Person:
    return Person(
        id=row.id,
        full_name=row.full_name,
        family=row.family,
        middle=row.middle,
        given=row.given,
        agency_code=row.agency_code,
        position=row.position,
        phone=row.phone,
        status=PersonStatus(row.status),
        created_at=row.created_at,
        left_at=row.left_at,
        address=row.address,
        address_state=AddressState(row.address_state) if row.address_state else None,
    )


class SqlDirectoryStore:
    """DirectoryStore on a started ``Database`` (the mail index's)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- helpers ------------------------------------------------------------
    async def _log(
        self,
        conn: AsyncConnection,
        action: str,
        subject: str,
        by: By,
        detail: Mapping[str, object] | None = None,
    ) -> None:
        await audit(conn, action, subject, by, detail)

    async def _agency_id(self, conn: AsyncConnection, code: str) -> int:
        agency_id = (await conn.execute(select(AG.c.id).where(AG.c.code == code))).scalar_one_or_none()
        if agency_id is None:
            raise NoSuchAgency(code)
        return int(agency_id)

    async def _address_free(self, conn: AsyncConnection, address: str) -> None:
        row = (await conn.execute(select(AD.c.state).where(AD.c.address == address))).first()
        if row is not None:
            raise AddressTaken(f"{address} ({row.state})")

    async def _agency_by(self, conn: AsyncConnection, code: str) -> Agency:
        row = (await conn.execute(_agency_select().where(AG.c.code == code))).one_or_none()
        if row is None:
            raise NoSuchAgency(code)
        return _agency(row)

    async def _person_by(self, conn: AsyncConnection, person_id: int) -> Person:
        row = (await conn.execute(_person_select().where(PE.c.id == person_id))).one_or_none()
        if row is None:
            raise NoSuchPerson(str(person_id))
        return _person(row)

    # -- namespace ------------------------------------------------------------
    async def lookup_address(self, address: str) -> AddressEntry | None:
        async with self._db.read() as conn:
            row = (await conn.execute(select(AD).where(AD.c.address == _addr(address)))).one_or_none()
        return None if row is None else _entry(row)

    async def reserve_address(
        self, address: str, kind: AddressKind, *, by: By, agency_code: str | None = None
    ) -> AddressEntry:
        address = _addr(address)
        try:
            async with self._db.write() as conn:
                await self._address_free(conn, address)
                agency_id = await self._agency_id(conn, agency_code) if agency_code else None
                await conn.execute(
                    insert(AD).values(
                        address=address,
                        kind=kind.value,
                        state=AddressState.ACTIVE.value,
                        agency_id=agency_id,
                        created_at=_now(),
                    )
                )
                await self._log(conn, "address.reserve", address, by, {"kind": kind.value})
                row = (await conn.execute(select(AD).where(AD.c.address == address))).one()
        except IntegrityError as exc:
            raise AddressTaken(address) from exc
        return _entry(row)

    async def link_account(self, address: str, account_id: int) -> None:
        async with self._db.write() as conn:
            result = await conn.execute(
                update(AD).where(AD.c.address == _addr(address)).values(account_id=account_id)
            )
            if result.rowcount == 0:
                raise NoSuchEntry(address)

    async def set_address_state(
        self,
        address: str,
        state: AddressState,
        *,
        by: By,
        purge_after: datetime | None = None,
        archive: str | None = None,
        detail: Mapping[str, object] | None = None,
    ) -> AddressEntry:
        address = _addr(address)
        async with self._db.write() as conn:
            row = (await conn.execute(select(AD).where(AD.c.address == address))).one_or_none()
            if row is None:
                raise NoSuchEntry(address)
            current = AddressState(row.state)
            if _ORDER[state] < _ORDER[current]:
                raise ValueError(f"{address} is {current}; it cannot become {state} again")
            values: dict[str, Any] = {"state": state.value}
            now = _now()
            if state is AddressState.OFFBOARDED:
                values.update(offboarded_at=now, purge_after=purge_after)
            if state is AddressState.RETIRED:
                values.update(retired_at=now, account_id=None)
            if archive is not None:
                values["archive"] = archive
            await conn.execute(update(AD).where(AD.c.id == row.id).values(**values))
            await self._log(conn, f"address.{state.value}", address, by, detail)
            row = (await conn.execute(select(AD).where(AD.c.id == row.id))).one()
        return _entry(row)

    async def due_for_purge(self, now: datetime) -> list[AddressEntry]:
        async with self._db.read() as conn:
            rows = (
                await conn.execute(
                    select(AD)
                    .where(AD.c.state == AddressState.OFFBOARDED.value, AD.c.purge_after <= now)
                    .order_by(AD.c.address)
                )
            ).all()
        return [_entry(r) for r in rows]

    # -- agencies -------------------------------------------------------------
    async def add_agency(
        self, code: str, name: str, parent_code: str | None, address: str, *, by: By, search_text: str = ""
    ) -> Agency:
        address = _addr(address)
        now = _now()
        try:
            async with self._db.write() as conn:
                if (await conn.execute(select(AG.c.id).where(AG.c.code == code))).first() is not None:
                    raise AgencyExists(code)
                parent_id = await self._agency_id(conn, parent_code) if parent_code else None
                await self._address_free(conn, address)
                agency_id = (
                    await conn.execute(
                        insert(AG)
                        .values(
                            code=code,
                            name=name,
                            parent_id=parent_id,
                            head_person_id=None,
                            search_text=search_text,
                            created_at=now,
                        )
                        .returning(AG.c.id)
                    )
                ).scalar_one()
                await conn.execute(
                    insert(AD).values(
                        address=address,
                        kind=AddressKind.AGENCY.value,
                        state=AddressState.ACTIVE.value,
                        agency_id=agency_id,
                        created_at=now,
                    )
                )
                await self._log(
                    conn, "agency.add", code, by, {"name": name, "parent": parent_code, "address": address}
                )
                agency = await self._agency_by(conn, code)
        except IntegrityError as exc:
            raise AgencyExists(f"{code} or {address}") from exc
        return agency

    async def rename_agency(
        self,
        code: str,
        *,
        name: str,
        search_text: str,
        by: By,
        new_code: str | None = None,
        new_address: str | None = None,
        account_id: int | None = None,
        purge_after: datetime | None = None,
    ) -> Agency:
        now = _now()
        target = new_code or code
        try:
            async with self._db.write() as conn:
                old = await self._agency_by(conn, code)
                if target != code and (
                    await conn.execute(select(AG.c.id).where(AG.c.code == target))
                ).first() is not None:
                    raise AgencyExists(target)
                await conn.execute(
                    update(AG)
                    .where(AG.c.id == old.id)
                    .values(code=target, name=name, search_text=search_text)
                )
                if new_address is not None:
                    new_address = _addr(new_address)
                    await self._address_free(conn, new_address)
                    # The old address leaves the agency: kept (offboarded, then
                    # purged like any mailbox) as the history of what it was.
                    await conn.execute(
                        update(AD)
                        .where(AD.c.agency_id == old.id)
                        .values(
                            agency_id=None, state=AddressState.OFFBOARDED.value,
                            offboarded_at=now, purge_after=purge_after,
                        )
                    )
                    await conn.execute(
                        insert(AD).values(
                            address=new_address, kind=AddressKind.AGENCY.value,
                            state=AddressState.ACTIVE.value, agency_id=old.id, account_id=account_id,
                            created_at=now,
                        )
                    )
                await self._log(conn, "agency.rename", target, by, {
                    "old_code": code, "old_name": old.name, "new_code": target, "new_name": name,
                    "old_address": old.address, "new_address": new_address or old.address,
                })
                agency = await self._agency_by(conn, target)
        except IntegrityError as exc:
            raise AgencyExists(f"{target} or {new_address}") from exc
        return agency

    async def get_agency(self, code: str) -> Agency | None:
        async with self._db.read() as conn:
            row = (await conn.execute(_agency_select().where(AG.c.code == code))).one_or_none()
        return None if row is None else _agency(row)

    async def list_agencies(self) -> list[Agency]:
        async with self._db.read() as conn:
            rows = (await conn.execute(_agency_select().order_by(AG.c.code))).all()
        return [_agency(r) for r in rows]

    async def set_head(
        self, code: str, person_id: int | None, *, by: By, action: str = "agency.set-head"
    ) -> Agency:
        async with self._db.write() as conn:
            before = await self._agency_by(conn, code)
            detail: dict[str, object] = {
                "old_head_person_id": before.head_person_id,
                "head_person_id": person_id,
            }
            if person_id is not None:
                person = await self._person_by(conn, person_id)
                detail["head"] = person.address
                # The head holds every right; a delegation of theirs would be noise.
                account_id = (
                    await conn.execute(select(AD.c.account_id).where(AD.c.person_id == person_id))
                ).scalar_one_or_none()
                if account_id is not None:
                    await conn.execute(
                        delete(DE).where(DE.c.agency_id == before.id, DE.c.account_id == account_id)
                    )
            await conn.execute(update(AG).where(AG.c.id == before.id).values(head_person_id=person_id))
            await self._log(conn, action, code, by, detail)
            return await self._agency_by(conn, code)

    async def delegate(
        self, code: str, account_id: int, rights: str, may_send: bool, *, by: By
    ) -> Delegation:
        rights = canonical_rights(rights)
        now = _now()
        async with self._db.write() as conn:
            agency_id = await self._agency_id(conn, code)
            address = (
                await conn.execute(select(ACC.c.address).where(ACC.c.id == account_id))
            ).scalar_one_or_none()
            if address is None:
                raise NoSuchEntry(f"account {account_id}")
            await conn.execute(delete(DE).where(DE.c.agency_id == agency_id, DE.c.account_id == account_id))
            await conn.execute(
                insert(DE).values(
                    agency_id=agency_id,
                    account_id=account_id,
                    rights=rights,
                    may_send=may_send,
                    granted_at=now,
                )
            )
            await self._log(
                conn,
                "agency.delegate",
                code,
                by,
                {"delegate": address, "rights": rights, "may_send": may_send},
            )
        return Delegation(code, account_id, address, rights, may_send, now)

    async def revoke(self, code: str, account_id: int, *, by: By) -> bool:
        async with self._db.write() as conn:
            agency_id = await self._agency_id(conn, code)
            result = await conn.execute(
                delete(DE).where(DE.c.agency_id == agency_id, DE.c.account_id == account_id)
            )
            if result.rowcount == 0:
                return False
            address = (
                await conn.execute(select(ACC.c.address).where(ACC.c.id == account_id))
            ).scalar_one_or_none()
            await self._log(conn, "agency.revoke", code, by, {"delegate": address})
        return True

    async def revoke_all(self, account_id: int, *, by: By) -> list[str]:
        async with self._db.write() as conn:
            rows = (
                await conn.execute(
                    select(AG.c.code, ACC.c.address)
                    .select_from(
                        DE.join(AG, AG.c.id == DE.c.agency_id).join(ACC, ACC.c.id == DE.c.account_id)
                    )
                    .where(DE.c.account_id == account_id)
                    .order_by(AG.c.code)
                )
            ).all()
            await conn.execute(delete(DE).where(DE.c.account_id == account_id))
            for row in rows:
                await self._log(conn, "agency.revoke", row.code, by, {"delegate": row.address})
        return [row.code for row in rows]

    # -- aliases ----------------------------------------------------------------
    async def add_alias(self, code: str, name: str, key: str, *, by: By) -> AgencyAlias:
        now = _now()
        try:
            async with self._db.write() as conn:
                agency_id = await self._agency_id(conn, code)
                owner = select(AG.c.code).select_from(AL.join(AG, AG.c.id == AL.c.agency_id))
                row = (await conn.execute(owner.where(AL.c.key == key))).first()
                if row is not None:
                    raise AliasTaken(f"{name!r} is already a name of {row.code}")
                await conn.execute(insert(AL).values(agency_id=agency_id, name=name, key=key, created_at=now))
                await self._log(conn, "agency.alias-add", code, by, {"alias": name})
        except IntegrityError as exc:
            raise AliasTaken(f"{name!r} is already a name of an agency") from exc
        return AgencyAlias(code, name, key, now)

    async def remove_alias(self, code: str, key: str, *, by: By) -> AgencyAlias | None:
        async with self._db.write() as conn:
            agency_id = await self._agency_id(conn, code)
            row = (
                await conn.execute(select(AL).where(AL.c.agency_id == agency_id, AL.c.key == key))
            ).one_or_none()
            if row is None:
                return None
            await conn.execute(delete(AL).where(AL.c.id == row.id))
            await self._log(conn, "agency.alias-remove", code, by, {"alias": row.name})
        return AgencyAlias(code, row.name, row.key, row.created_at)

    async def aliases(self, code: str | None = None) -> list[AgencyAlias]:
        stmt = (
            select(AG.c.code, AL.c.name, AL.c.key, AL.c.created_at)
            .select_from(AL.join(AG, AG.c.id == AL.c.agency_id))
            .order_by(AG.c.code, AL.c.name)
        )
        if code is not None:
            stmt = stmt.where(AG.c.code == code)
        async with self._db.read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [AgencyAlias(r.code, r.name, r.key, r.created_at) for r in rows]

    async def delegations(self, code: str) -> list[Delegation]:
        async with self._db.read() as conn:
            rows = (
                await conn.execute(
                    select(AG.c.code, DE, ACC.c.address)
                    .select_from(
                        DE.join(AG, AG.c.id == DE.c.agency_id).join(ACC, ACC.c.id == DE.c.account_id)
                    )
                    .where(AG.c.code == code)
                    .order_by(ACC.c.address)
                )
            ).all()
        return [Delegation(r.code, r.account_id, r.address, r.rights, r.may_send, r.granted_at) for r in rows]

    # -- IMAP ACL / submission queries ----------------------------------------
    async def mailbox_access(self, account_id: int) -> list[MailboxGrant]:
        # Asked at every IMAP login: one hop on the store's reader threads with
        # statements built once (building aliased selects per call was the heap
        # peak of a login burst).
        return await self._db.run_read(_mailbox_access_tx, account_id)

    async def mailbox_acl(self, mailbox_account_id: int) -> list[tuple[str, str]]:
        own = AD.alias("own")
        async with self._db.read() as conn:
            agency = (
                await conn.execute(
                    select(AG.c.id, AG.c.head_person_id)
                    .select_from(AG.join(AD, AD.c.agency_id == AG.c.id))
                    .where(AD.c.account_id == mailbox_account_id)
                )
            ).one_or_none()
            if agency is None:
                return []
            out: list[tuple[str, str]] = []
            if agency.head_person_id is not None:
                head = (
                    await conn.execute(
                        select(own.c.address).where(
                            own.c.person_id == agency.head_person_id, own.c.state == AddressState.ACTIVE.value
                        )
                    )
                ).scalar_one_or_none()
                if head is not None:
                    out.append((head, ALL_RIGHTS))
            rows = (
                await conn.execute(
                    select(ACC.c.address, DE.c.rights)
                    .select_from(DE.join(ACC, ACC.c.id == DE.c.account_id))
                    .where(DE.c.agency_id == agency.id)
                    .order_by(ACC.c.address)
                )
            ).all()
        out.extend((r.address, r.rights) for r in rows)
        return out

    # -- persons --------------------------------------------------------------
    async def add_persons(self, people: Sequence[NewPerson], *, by: By) -> list[Person]:
        now = _now()
        ids: list[int] = []
        try:
            async with self._db.write() as conn:
                agency_ids: dict[str, int] = {}
                for p in people:
                    if p.agency_code not in agency_ids:
                        agency_ids[p.agency_code] = await self._agency_id(conn, p.agency_code)
                    address = _addr(p.address)
                    await self._address_free(conn, address)
                    person_id = (
                        await conn.execute(
                            insert(PE)
                            .values(
                                full_name=p.full_name,
                                family=p.family,
                                middle=p.middle,
                                given=p.given,
                                agency_id=agency_ids[p.agency_code],
                                position=p.position,
                                phone=p.phone,
                                status=PersonStatus.ACTIVE.value,
                                search_text=p.search_text,
                                created_at=now,
                                left_at=None,
                            )
                            .returning(PE.c.id)
                        )
                    ).scalar_one()
                    await conn.execute(
                        insert(AD).values(
                            address=address,
                            kind=AddressKind.PERSONAL.value,
                            state=AddressState.ACTIVE.value,
                            person_id=person_id,
                            created_at=now,
                        )
                    )
                    await self._log(
                        conn,
                        "person.add",
                        address,
                        by,
                        {
                            "name": p.full_name,
                            "agency": p.agency_code,
                            "position": p.position,
                            "phone": p.phone,
                        },
                    )
                    ids.append(int(person_id))
                rows = (await conn.execute(_person_select().where(PE.c.id.in_(ids)))).all()
        except IntegrityError as exc:
            raise AddressTaken(str(exc.orig)) from exc
        by_id = {r.id: _person(r) for r in rows}
        return [by_id[i] for i in ids]

    async def issue_personal_address(self, person_id: int, address: str, *, by: By) -> AddressEntry:
        address = _addr(address)
        try:
            async with self._db.write() as conn:
                person = await self._person_by(conn, person_id)
                if person.address is not None:
                    held = f"{person.address} ({person.address_state})"
                    raise PersonHasMailbox(f"{person.full_name} already has the address {held}")
                await self._address_free(conn, address)
                await conn.execute(
                    insert(AD).values(
                        address=address,
                        kind=AddressKind.PERSONAL.value,
                        state=AddressState.ACTIVE.value,
                        person_id=person_id,
                        created_at=_now(),
                    )
                )
                await self._log(conn, "person.issue-address", address, by, {"person_id": person_id})
                row = (await conn.execute(select(AD).where(AD.c.address == address))).one()
        except IntegrityError as exc:
            # Two administrators at once: the unique person_id is the last word.
            raise PersonHasMailbox(f"person {person_id} already has an address") from exc
        return _entry(row)

    async def discard(self, addresses: Sequence[str], *, by: By, reason: str) -> None:
        wanted = [_addr(a) for a in addresses]
        if not wanted:
            return
        async with self._db.write() as conn:
            rows = (
                await conn.execute(
                    select(AD.c.id, AD.c.person_id, AD.c.agency_id).where(AD.c.address.in_(wanted))
                )
            ).all()
            await conn.execute(delete(AD).where(AD.c.id.in_([r.id for r in rows])))
            person_ids = [r.person_id for r in rows if r.person_id is not None]
            agency_ids = [r.agency_id for r in rows if r.agency_id is not None]
            if person_ids:
                await conn.execute(delete(PE).where(PE.c.id.in_(person_ids)))
            if agency_ids:
                await conn.execute(delete(AG).where(AG.c.id.in_(agency_ids)))
            for address in wanted:
                await self._log(conn, "address.discard", address, by, {"reason": reason})

    async def get_person(self, person_id: int) -> Person | None:
        async with self._db.read() as conn:
            row = (await conn.execute(_person_select().where(PE.c.id == person_id))).one_or_none()
        return None if row is None else _person(row)

    async def person_by_address(self, address: str) -> Person | None:
        async with self._db.read() as conn:
            row = (
                await conn.execute(_person_select().where(_PERSON_ADDR.c.address == _addr(address)))
            ).one_or_none()
        return None if row is None else _person(row)

    async def list_persons(
        self, *, agency_code: str | None = None, include_left: bool = False
    ) -> list[Person]:
        stmt = _person_select().order_by(AG.c.code, _PERSON_ADDR.c.address, PE.c.id)
        if agency_code is not None:
            stmt = stmt.where(AG.c.code == agency_code)
        if not include_left:
            stmt = stmt.where(PE.c.status == PersonStatus.ACTIVE.value)
        async with self._db.read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_person(r) for r in rows]

    async def search(self, tokens: Sequence[str]) -> tuple[list[Agency], list[Person]]:
        if not tokens:
            return [], []
        agency_where = and_(*(AG.c.search_text.like(_like(t), escape="\\") for t in tokens))
        person_where = and_(
            *(
                or_(
                    PE.c.search_text.like(_like(t), escape="\\"),
                    _PERSON_ADDR.c.address.like(_like(t), escape="\\"),
                )
                for t in tokens
            )
        )
        async with self._db.read() as conn:
            agencies = (await conn.execute(_agency_select().where(agency_where).order_by(AG.c.code))).all()
            persons = (
                await conn.execute(_person_select().where(person_where).order_by(PE.c.search_text, PE.c.id))
            ).all()
        return [_agency(r) for r in agencies], [_person(r) for r in persons]

    async def transfer(self, person_id: int, agency_code: str, *, by: By) -> Person:
        async with self._db.write() as conn:
            before = await self._person_by(conn, person_id)
            agency_id = await self._agency_id(conn, agency_code)
            await conn.execute(update(PE).where(PE.c.id == person_id).values(agency_id=agency_id))
            await self._log(
                conn,
                "person.transfer",
                before.address or str(person_id),
                by,
                {"from": before.agency_code, "to": agency_code},
            )
            return await self._person_by(conn, person_id)

    async def mark_left(self, person_id: int, *, by: By) -> Person:
        async with self._db.write() as conn:
            before = await self._person_by(conn, person_id)
            await conn.execute(
                update(PE).where(PE.c.id == person_id).values(status=PersonStatus.LEFT.value, left_at=_now())
            )
            headed = list(
                (await conn.execute(select(AG.c.code).where(AG.c.head_person_id == person_id))).scalars()
            )
            await conn.execute(update(AG).where(AG.c.head_person_id == person_id).values(head_person_id=None))
            await self._log(
                conn, "person.left", before.address or str(person_id), by, {"agency": before.agency_code}
            )
            for code in headed:
                await self._log(conn, "agency.head-removed", code, by, {"old_head": before.address})
            return await self._person_by(conn, person_id)

    # -- passwords ------------------------------------------------------------
    async def add_password_hash(self, account_id: int, password_hash: str, *, keep: int) -> None:
        async with self._db.write() as conn:
            await conn.execute(
                insert(PH).values(
                    account_id=account_id, password_hash=password_hash, created_at=datetime.now(UTC)
                )
            )
            old = list(
                (
                    await conn.execute(
                        select(PH.c.id)
                        .where(PH.c.account_id == account_id)
                        .order_by(PH.c.id.desc())
                        .offset(max(keep, 1))
                    )
                ).scalars()
            )
            if old:
                await conn.execute(delete(PH).where(PH.c.id.in_(old)))

    async def password_hashes(self, account_id: int, limit: int) -> list[str]:
        async with self._db.read() as conn:
            rows = (
                await conn.execute(
                    select(PH.c.password_hash)
                    .where(PH.c.account_id == account_id)
                    .order_by(PH.c.id.desc())
                    .limit(limit)
                )
            ).scalars()
            return list(rows)

    async def record_notice(self, account_id: int, kind: str, key: datetime) -> bool:
        try:
            async with self._db.write() as conn:
                exists = (
                    await conn.execute(
                        select(NO.c.account_id).where(
                            NO.c.account_id == account_id, NO.c.kind == kind, NO.c.key == key
                        )
                    )
                ).first()
                if exists is not None:
                    return False
                await conn.execute(
                    insert(NO).values(account_id=account_id, kind=kind, key=key, sent_at=_now())
                )
        except IntegrityError:
            return False
        return True

    # -- audit ----------------------------------------------------------------
    async def audit(
        self, action: str, subject: str, *, by: By, detail: Mapping[str, object] | None = None
    ) -> None:
        async with self._db.write() as conn:
            await self._log(conn, action, subject, by, detail)

    async def audit_log(
        self, *, since: datetime | None = None, subject: str | None = None, limit: int | None = None
    ) -> list[AuditEntry]:
        stmt = select(AU).order_by(AU.c.id)
        if since is not None:
            stmt = stmt.where(AU.c.at >= since)
        if subject is not None:
            stmt = stmt.where(AU.c.subject == subject.strip().lower())
        if limit is not None:
            stmt = stmt.order_by(None).order_by(AU.c.id.desc()).limit(limit)
        async with self._db.read() as conn:
            rows = list((await conn.execute(stmt)).all())
        if limit is not None:
            rows.reverse()
        return [
            AuditEntry(
                id=r.id,
                at=r.at,
                actor=r.actor,
                action=r.action,
                subject=r.subject,
                decision=r.decision,
                detail=json.loads(r.detail or "{}"),
            )
            for r in rows
        ]


_OWN: Final = AD.alias("own")
_BOX: Final = AD.alias("box")
_OWN_STATE: Final = select(_OWN.c.state).where(_OWN.c.account_id == bindparam("account_id"))
_HEADS: Final = (
    select(AG.c.code, _BOX.c.address, _BOX.c.account_id)
    .select_from(
        AG.join(_BOX, _BOX.c.agency_id == AG.c.id).join(_OWN, _OWN.c.person_id == AG.c.head_person_id)
    )
    .where(
        _OWN.c.account_id == bindparam("account_id"),
        _BOX.c.state == AddressState.ACTIVE.value,
        _BOX.c.account_id.is_not(None),
    )
)
_DELEGATED: Final = (
    select(AG.c.code, _BOX.c.address, _BOX.c.account_id, DE.c.rights, DE.c.may_send)
    .select_from(DE.join(AG, AG.c.id == DE.c.agency_id).join(_BOX, _BOX.c.agency_id == AG.c.id))
    .where(
        DE.c.account_id == bindparam("account_id"),
        _BOX.c.state == AddressState.ACTIVE.value,
        _BOX.c.account_id.is_not(None),
    )
)


def _mailbox_access_tx(conn: Connection, account_id: int) -> list[MailboxGrant]:
    params = {"account_id": account_id}
    # The account must not be an offboarded personal address.
    own_state = conn.execute(_OWN_STATE, params).scalar_one_or_none()
    if own_state is not None and own_state != AddressState.ACTIVE.value:
        return []
    grants = {
        r.code: MailboxGrant(r.code, r.address, r.account_id, ALL_RIGHTS, True, "head")
        for r in conn.execute(_HEADS, params)
    }
    for r in conn.execute(_DELEGATED, params):
        grant = MailboxGrant(r.code, r.address, r.account_id, r.rights, r.may_send, "delegate")
        grants.setdefault(r.code, grant)
    return [grants[code] for code in sorted(grants)]
