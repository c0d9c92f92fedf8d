"""``SqlOutboundQueue``: the outbound queue (``storage.queue``) on SQL plus spool files.

Spool files are written like Maildir deliveries: ``tmp/`` + write + fsync,
rename into ``msg/``, fsync the directory; only then is the row inserted, so a
committed row always points at a durable file (a crash in between leaves an
orphan file, never a dangling row). Files are unlinked after the transaction
that deleted their row committed.

Inside the server the queue runs on the mail store's ``database.Database``;
the CLI opens one of its own. On SQLite both use ``BEGIN IMMEDIATE`` and a busy
timeout, so they (and the CLI in another process) take turns writing.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, cast

from sqlalchemy import Table, and_, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.maildir import fsync_dir, write_new_file
from storage.queue import Outcome, QueuedMessage, QueuedRecipient, RecipientState
from storage.sql import queue_models
from storage.sql.database import Database

__all__ = ["SqlOutboundQueue"]

QM: Final = cast(Table, queue_models.OutboundMessage.__table__)
QR: Final = cast(Table, queue_models.OutboundRecipient.__table__)


def _now() -> datetime:
    return datetime.now(UTC)


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower().rstrip(".")


class _Spool:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _prepare(self) -> None:
        for sub in ("tmp", "msg"):
            (self.root / sub).mkdir(parents=True, exist_ok=True, mode=0o700)

    async def prepare(self) -> None:
        await asyncio.to_thread(self._prepare)

    def _write(self, data: bytes) -> str:
        name = f"{int(time.time())}.{os.getpid()}.{secrets.token_hex(8)}"
        tmp = self.root / "tmp" / name
        write_new_file(tmp, data)
        os.rename(tmp, self.root / "msg" / name)
        fsync_dir(self.root / "msg")
        return name

    async def write(self, data: bytes) -> str:
        return await asyncio.to_thread(self._write, data)

    def _path(self, name: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"bad spool name {name!r}")
        return self.root / "msg" / name

    async def read(self, name: str) -> bytes:
        return await asyncio.to_thread(self._path(name).read_bytes)

    def _remove(self, names: Sequence[str]) -> None:
        for name in names:
            try:
                self._path(name).unlink(missing_ok=True)
            except (OSError, ValueError):
                continue  # an orphan costs disk space only

    async def remove(self, names: Sequence[str]) -> None:
        await asyncio.to_thread(self._remove, names)


def _recipient(row: Any) -> QueuedRecipient:
    return QueuedRecipient(
        id=row.id,
        address=row.address,
        domain=row.domain,
        state=RecipientState(row.state),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_attempt_at=row.last_attempt_at,
        last_error=row.last_error,
        status=row.status,
        remote_mta=row.remote_mta,
        notified=row.notified,
    )


class SqlOutboundQueue:
    """OutboundQueue on SQLAlchemy async (SQLite or PostgreSQL) and a spool directory."""

    def __init__(self, db: Database | str, spool_dir: Path) -> None:
        # Inside the server the queue shares the mail store's Database (one SQLite
        # writer, one pool); given a URL (the CLI) it opens and closes its own.
        self._owns_db = isinstance(db, str)
        self._db = Database(db) if isinstance(db, str) else db
        self.url = self._db.url
        self._spool = _Spool(Path(spool_dir))

    async def start(self) -> None:
        await self._spool.prepare()
        if self._owns_db:
            await self._db.start()  # applies every migration branch

    async def close(self) -> None:
        if self._owns_db:
            await self._db.close()

    async def enqueue(
        self,
        sender: str,
        recipients: Sequence[str],
        data: bytes,
        *,
        origin: str,
        account: str = "",
        now: datetime | None = None,
    ) -> int:
        if not recipients:
            raise ValueError("a queued message needs at least one recipient")
        when = now or _now()
        blob = await self._spool.write(data)
        try:
            async with self._db.write() as conn:
                message_id = (
                    await conn.execute(
                        insert(QM)
                        .values(
                            sender=sender,
                            blob=blob,
                            size=len(data),
                            created_at=when,
                            origin=origin,
                            account=account,
                            delay_warned=False,
                            bounce_requested=False,
                        )
                        .returning(QM.c.id)
                    )
                ).scalar_one()
                await conn.execute(
                    insert(QR),
                    [
                        {
                            "message_id": message_id,
                            "address": rcpt,
                            "domain": _domain(rcpt),
                            "state": RecipientState.QUEUED.value,
                            "attempts": 0,
                            "next_attempt_at": when,
                            "last_attempt_at": None,
                            "last_error": "",
                            "status": "",
                            "remote_mta": "",
                            "notified": False,
                        }
                        for rcpt in dict.fromkeys(recipients)
                    ],
                )
        except BaseException:
            await self._spool.remove([blob])
            raise
        return int(message_id)

    async def record(self, outcomes: Sequence[Outcome], now: datetime) -> None:
        if not outcomes:
            return
        async with self._db.write() as conn:
            for outcome in outcomes:
                values: dict[str, Any] = {
                    "state": outcome.state.value,
                    "attempts": QR.c.attempts + 1,
                    "last_attempt_at": now,
                    "last_error": outcome.diagnostic,
                    "status": outcome.status,
                    "remote_mta": outcome.remote_mta,
                }
                if outcome.state is RecipientState.QUEUED:
                    values["next_attempt_at"] = outcome.next_attempt_at or now
                await conn.execute(
                    update(QR)
                    .where(QR.c.id == outcome.recipient_id, QR.c.state == RecipientState.QUEUED.value)
                    .values(**values)
                )

    async def mark_notified(self, recipient_ids: Sequence[int]) -> None:
        if not recipient_ids:
            return
        async with self._db.write() as conn:
            await conn.execute(update(QR).where(QR.c.id.in_(list(recipient_ids))).values(notified=True))

    async def mark_delay_warned(self, message_id: int) -> None:
        async with self._db.write() as conn:
            await conn.execute(update(QM).where(QM.c.id == message_id).values(delay_warned=True))

    async def finish(self, message_id: int) -> bool:
        async with self._db.write() as conn:
            open_work = (
                await conn.execute(
                    select(func.count(QR.c.id)).where(
                        QR.c.message_id == message_id,
                        or_(
                            QR.c.state == RecipientState.QUEUED.value,
                            and_(QR.c.state == RecipientState.FAILED.value, QR.c.notified.is_(False)),
                        ),
                    )
                )
            ).scalar_one()
            if open_work:
                return False
            blob = await self._delete(conn, message_id)
        if blob is None:
            return False
        await self._spool.remove([blob])
        return True

    async def _delete(self, conn: AsyncConnection, message_id: int) -> str | None:
        blob = (await conn.execute(select(QM.c.blob).where(QM.c.id == message_id))).scalar_one_or_none()
        if blob is None:
            return None
        # Explicit, so it does not depend on SQLite's foreign_keys pragma.
        await conn.execute(delete(QR).where(QR.c.message_id == message_id))
        await conn.execute(delete(QM).where(QM.c.id == message_id))
        return str(blob)

    async def delete(self, message_id: int) -> bool:
        async with self._db.write() as conn:
            blob = await self._delete(conn, message_id)
        if blob is None:
            return False
        await self._spool.remove([blob])
        return True

    async def retry(self, message_id: int | None, now: datetime) -> int:
        stmt = update(QR).where(QR.c.state == RecipientState.QUEUED.value).values(next_attempt_at=now)
        if message_id is not None:
            stmt = stmt.where(QR.c.message_id == message_id)
        async with self._db.write() as conn:
            result = await conn.execute(stmt)
        return int(result.rowcount)

    async def request_bounce(self, message_id: int, now: datetime) -> bool:
        async with self._db.write() as conn:
            result = await conn.execute(
                update(QM).where(QM.c.id == message_id).values(bounce_requested=True)
            )
            if not result.rowcount:
                return False
            await conn.execute(
                update(QR)
                .where(QR.c.message_id == message_id, QR.c.state == RecipientState.QUEUED.value)
                .values(next_attempt_at=now)
            )
        return True

    # -- reading ----------------------------------------------------------------
    async def _messages(self, conn: AsyncConnection, ids: Sequence[int] | None) -> list[QueuedMessage]:
        stmt = select(QM).order_by(QM.c.created_at, QM.c.id)
        if ids is not None:
            if not ids:
                return []
            stmt = stmt.where(QM.c.id.in_(list(ids)))
        rows = (await conn.execute(stmt)).all()
        if not rows:
            return []
        rcpt_stmt = select(QR).order_by(QR.c.id)
        if ids is not None:
            rcpt_stmt = rcpt_stmt.where(QR.c.message_id.in_(list(ids)))
        by_message: dict[int, list[QueuedRecipient]] = {}
        for r in (await conn.execute(rcpt_stmt)).all():
            by_message.setdefault(r.message_id, []).append(_recipient(r))
        return [
            QueuedMessage(
                id=row.id,
                sender=row.sender,
                size=row.size,
                created_at=row.created_at,
                origin=row.origin,
                account=row.account,
                delay_warned=row.delay_warned,
                bounce_requested=row.bounce_requested,
                recipients=tuple(by_message.get(row.id, ())),
            )
            for row in rows
        ]

    async def due(self, now: datetime, *, limit: int = 100) -> list[QueuedMessage]:
        async with self._db.read() as conn:
            ids = (
                (
                    await conn.execute(
                        select(QR.c.message_id)
                        .join(QM, QM.c.id == QR.c.message_id)
                        .where(
                            or_(
                                and_(
                                    QR.c.state == RecipientState.QUEUED.value,
                                    or_(QR.c.next_attempt_at <= now, QM.c.bounce_requested.is_(True)),
                                ),
                                and_(QR.c.state == RecipientState.FAILED.value, QR.c.notified.is_(False)),
                            )
                        )
                        .group_by(QR.c.message_id)
                        .order_by(QR.c.message_id)
                        .limit(limit)
                    )
                )
                .scalars()
                .all()
            )
            return await self._messages(conn, list(ids))

    async def claim(
        self, now: datetime, *, node: str, lease: timedelta, limit: int = 100
    ) -> list[QueuedMessage]:
        work = (
            select(QR.c.id)
            .where(
                QR.c.message_id == QM.c.id,
                or_(
                    and_(
                        QR.c.state == RecipientState.QUEUED.value,
                        or_(QR.c.next_attempt_at <= now, QM.c.bounce_requested.is_(True)),
                    ),
                    and_(QR.c.state == RecipientState.FAILED.value, QR.c.notified.is_(False)),
                ),
            )
            .exists()
        )
        free = or_(QM.c.claimed_until.is_(None), QM.c.claimed_until <= now, QM.c.claimed_by == node)
        # SKIP LOCKED (PostgreSQL): a row another node is claiming right now is
        # passed over instead of waited for; SQLite has one writer at a time.
        pick = (
            select(QM.c.id).where(work, free).order_by(QM.c.id).limit(limit).with_for_update(skip_locked=True)
        )
        async with self._db.write() as conn:
            ids = list((await conn.execute(pick)).scalars().all())
            if not ids:
                return []
            await conn.execute(
                update(QM).where(QM.c.id.in_(ids)).values(claimed_by=node, claimed_until=now + lease)
            )
            return await self._messages(conn, ids)

    async def renew(self, message_ids: Sequence[int], *, node: str, until: datetime) -> None:
        if not message_ids:
            return
        async with self._db.write() as conn:
            await conn.execute(
                update(QM)
                .where(QM.c.id.in_(list(message_ids)), QM.c.claimed_by == node)
                .values(claimed_until=until)
            )

    async def release(self, message_id: int, *, node: str) -> None:
        async with self._db.write() as conn:
            await conn.execute(
                update(QM)
                .where(QM.c.id == message_id, QM.c.claimed_by == node)
                .values(claimed_by="", claimed_until=None)
            )

    async def next_due(self) -> datetime | None:
        async with self._db.read() as conn:
            value = (
                await conn.execute(
                    select(func.min(QR.c.next_attempt_at)).where(QR.c.state == RecipientState.QUEUED.value)
                )
            ).scalar_one_or_none()
        if not isinstance(value, datetime):
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value

    async def get(self, message_id: int) -> QueuedMessage | None:
        async with self._db.read() as conn:
            found = await self._messages(conn, [message_id])
        return found[0] if found else None

    async def list(self) -> list[QueuedMessage]:
        async with self._db.read() as conn:
            return await self._messages(conn, None)

    async def read(self, message_id: int) -> bytes:
        async with self._db.read() as conn:
            blob = (await conn.execute(select(QM.c.blob).where(QM.c.id == message_id))).scalar_one_or_none()
        if blob is None:
            raise KeyError(message_id)
        return await self._spool.read(str(blob))
