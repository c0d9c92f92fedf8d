"""``SqlActivityStore``: ``storage.activity`` on the mail index's database.

Runs on the shared ``database.Database`` (as the mail store and the directory
does), so the one write it makes is serialised with mail writes on SQLite.
Core statements and streamed tuples only: a six-month report over a province
reads every message row of the period once, never as ORM objects.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, Final, TypeAlias, cast

from sqlalchemy import ColumnElement, Row, Table, and_, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from storage.activity import CHECK_INTERVAL, SEARCHABLE_HEADERS, FoundMessage, MessageFact
from storage.sql import activity_models as am
from storage.sql import directory_models as dm
from storage.sql import models
from storage.sql.database import Database
from storage.sql.store import HEADER_COLUMNS

__all__ = ["SqlActivityStore"]

log = logging.getLogger(__name__)

AnyRow: TypeAlias = "Row[*tuple[Any, ...]]"

A: Final = cast(Table, models.Account.__table__)
F: Final = cast(Table, models.Folder.__table__)
M: Final = cast(Table, models.Message.__table__)
AD: Final = cast(Table, dm.DirAddress.__table__)
OPEN: Final = cast(Table, am.OpsMailboxOpen.__table__)
SHARED: Final = cast(Table, am.OpsSharedAccess.__table__)


def _like(value: str) -> str:
    escaped = value.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _found(row: AnyRow) -> FoundMessage:
    return FoundMessage(
        id=row.id,
        account_id=row.account_id,
        address=row.address,
        folder_id=row.folder_id,
        folder=row.name,
        uid=row.uid,
        internal_date=row.internal_date,
        size=row.size,
        subject=row.subject,
        from_=row.from_,
        message_id=row.message_id,
    )


_FOUND_COLUMNS: Final = (
    M.c.id, F.c.account_id, A.c.address, M.c.folder_id, F.c.name, M.c.uid, M.c.internal_date,
    M.c.size, M.c.subject, M.c.from_, M.c.message_id,
)


class SqlActivityStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record_mailbox_open(
        self, account_id: int, when: datetime, *, by: int | None = None
    ) -> bool | None:
        try:
            async with self._db.read() as conn:
                agency = (
                    await conn.execute(
                        select(AD.c.id).where(AD.c.account_id == account_id, AD.c.kind == "agency").limit(1)
                    )
                ).first()
            if agency is None:
                return None
            who = OPEN.c.by_account_id.is_(None) if by is None else OPEN.c.by_account_id == by
            recent = (
                select(OPEN.c.id)
                .where(
                    OPEN.c.account_id == account_id,
                    who,
                    OPEN.c.opened_at > when - CHECK_INTERVAL,
                    OPEN.c.opened_at < when + CHECK_INTERVAL,
                )
                .limit(1)
            )
            # Checked again inside the write transaction: writes are serialised, so
            # two sessions of one person never both count the same hour.
            async with self._db.write() as conn:
                if (await conn.execute(recent)).first() is not None:
                    return False
                await conn.execute(
                    insert(OPEN).values(account_id=account_id, opened_at=when, by_account_id=by)
                )
            return True
        except SQLAlchemyError:
            # A statistic must never make a mailbox unreadable; the fault is logged.
            log.exception("could not record the check of agency mailbox %d", account_id)
            return False

    async def record_shared_access(self, account_id: int, when: datetime, *, by: int) -> None:
        try:
            # A statistic, like the last login: a power cut may lose the latest one.
            await self._db.run_write(_shared_access_tx, account_id, by, when, durable=False)
        except IntegrityError:
            pass  # another session of the same person inserted the row first
        except SQLAlchemyError:
            log.exception("could not record the shared access to mailbox %d", account_id)

    async def shared_access(self) -> dict[int, tuple[datetime, int]]:
        stmt = select(SHARED.c.account_id, SHARED.c.last_at, SHARED.c.by_account_id).order_by(
            SHARED.c.last_at
        )
        async with self._db.read() as conn:
            rows = (await conn.execute(stmt)).all()
        # Ordered oldest first: the last row of each mailbox wins.
        return {r.account_id: (r.last_at, r.by_account_id) for r in rows}

    async def mailbox_opens(self, since: datetime, until: datetime) -> list[tuple[int, datetime]]:
        stmt = (
            select(OPEN.c.account_id, OPEN.c.opened_at)
            .where(OPEN.c.opened_at >= since, OPEN.c.opened_at < until)
            .order_by(OPEN.c.opened_at, OPEN.c.id)
        )
        async with self._db.read() as conn:
            return [(r.account_id, r.opened_at) for r in (await conn.execute(stmt)).all()]

    async def message_facts(self, since: datetime, until: datetime) -> AsyncIterator[MessageFact]:
        stmt = (
            select(
                M.c.id, F.c.account_id, F.c.special_use, M.c.internal_date, M.c.from_, M.c.to_, M.c.cc,
                M.c.bcc, M.c.message_id, M.c.size,
            )
            .join(F, F.c.id == M.c.folder_id)
            .where(M.c.internal_date >= since, M.c.internal_date < until)
            .order_by(M.c.id)
        )
        async with self._db.engine.connect() as conn:
            result = await conn.stream(stmt)
            async for row in result:
                yield MessageFact(
                    id=row.id,
                    account_id=row.account_id,
                    special_use=row.special_use,
                    internal_date=row.internal_date,
                    from_=row.from_ or "",
                    recipients=" ".join(x for x in (row.to_, row.cc, row.bcc) if x),
                    message_id=row.message_id or "",
                    size=row.size,
                )

    async def storage_used(self) -> dict[int, tuple[int, int]]:
        stmt = (
            select(F.c.account_id, func.coalesce(func.sum(M.c.size), 0), func.count(M.c.id))
            .join(M, M.c.folder_id == F.c.id)
            .group_by(F.c.account_id)
        )
        async with self._db.read() as conn:
            return {int(r[0]): (int(r[1]), int(r[2])) for r in (await conn.execute(stmt)).all()}

    async def inbox_arrivals(self, since: datetime) -> list[datetime]:
        stmt = (
            select(M.c.internal_date)
            .join(F, F.c.id == M.c.folder_id)
            .where(F.c.name == "INBOX", M.c.internal_date >= since)
        )
        async with self._db.read() as conn:
            return [when for (when,) in await conn.execute(stmt)]

    async def find_messages(
        self, header: str, value: str, *, since: datetime | None = None, limit: int = 1000
    ) -> list[FoundMessage]:
        column = HEADER_COLUMNS.get(header.strip().lower())
        if column is None:
            raise ValueError(
                f"cannot search header {header!r}; searchable: {', '.join(SEARCHABLE_HEADERS)}"
            )
        clauses: list[ColumnElement[bool]] = [column.like(_like(value), escape="\\")]
        if since is not None:
            clauses.append(M.c.internal_date >= since)
        stmt = (
            select(*_FOUND_COLUMNS)
            .join(F, F.c.id == M.c.folder_id)
            .join(A, A.c.id == F.c.account_id)
            .where(and_(*clauses))
            .order_by(M.c.internal_date, M.c.id)
            .limit(limit)
        )
        async with self._db.read() as conn:
            return [_found(r) for r in (await conn.execute(stmt)).all()]

    async def locate(self, message_id: int) -> FoundMessage | None:
        stmt = (
            select(*_FOUND_COLUMNS)
            .join(F, F.c.id == M.c.folder_id)
            .join(A, A.c.id == F.c.account_id)
            .where(M.c.id == message_id)
        )
        async with self._db.read() as conn:
            row = (await conn.execute(stmt)).one_or_none()
        return None if row is None else _found(row)


def _shared_access_tx(conn: Connection, account_id: int, by: int, when: datetime) -> None:
    key = and_(SHARED.c.account_id == account_id, SHARED.c.by_account_id == by)
    row = conn.execute(select(SHARED.c.last_at).where(key)).first()
    if row is None:
        conn.execute(insert(SHARED).values(account_id=account_id, by_account_id=by, last_at=when))
    elif row.last_at < when:
        conn.execute(update(SHARED).where(key).values(last_at=when))
