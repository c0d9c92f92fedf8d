"""``SqlTlsRptStore``: the TLS-RPT tables (``storage.tlsrpt``) on SQL.

Inside the server it runs on the shared ``storage.sql.Database`` (``Storage.tlsrpt``),
as ``storage.sql.queue`` does; the CLI opens its own.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Final, cast

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.sql import tlsrpt_models
from storage.sql.database import Database
from storage.tlsrpt import ReceivedReport, TlsResult

__all__ = ["SqlTlsRptStore"]

RS: Final = cast(Table, tlsrpt_models.TlsRptResult.__table__)
RC: Final = cast(Table, tlsrpt_models.TlsRptReceived.__table__)


def _result(row: Any) -> TlsResult:
    return TlsResult(
        at=row.at, policy_domain=row.policy_domain, policy_type=row.policy_type,
        policy_strings=tuple(json.loads(row.policy_strings or "[]")), mx_host=row.mx_host,
        receiving_ip=row.receiving_ip, result=row.result, detail=row.detail, id=row.id,
    )


def _received(row: Any) -> ReceivedReport:
    return ReceivedReport(
        id=row.id, received_at=row.received_at, organization=row.organization, report_id=row.report_id,
        start=row.start_at, end=row.end_at, policy_domains=tuple(row.policy_domains.split()),
        success=row.success, failure=row.failure, body=row.body,
    )


class SqlTlsRptStore:
    """TlsRptStore on the shared ``Database``; given a URL (the CLI) it opens and closes its own."""

    def __init__(self, db: Database | str) -> None:
        self._owns_db = isinstance(db, str)
        self._db = Database(db) if isinstance(db, str) else db
        self.url = self._db.url

    async def start(self) -> None:
        if self._owns_db:
            await self._db.start()  # applies every migration branch

    async def close(self) -> None:
        if self._owns_db:
            await self._db.close()

    def _read(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return self._db.read()

    def _write(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return self._db.write()

    async def record(self, results: Sequence[TlsResult]) -> None:
        if not results:
            return
        rows = [
            {
                "at": r.at, "policy_domain": r.policy_domain.lower(), "policy_type": r.policy_type,
                "policy_strings": json.dumps(list(r.policy_strings), ensure_ascii=False),
                "mx_host": r.mx_host, "receiving_ip": r.receiving_ip, "result": r.result,
                "detail": r.detail[:500], "reported_at": None,
            }
            for r in results
        ]
        async with self._write() as conn:
            await conn.execute(insert(RS), rows)

    async def unreported(self, before: datetime) -> list[TlsResult]:
        stmt = select(RS).where(RS.c.reported_at.is_(None), RS.c.at < before).order_by(RS.c.id)
        async with self._read() as conn:
            return [_result(r) for r in (await conn.execute(stmt)).all()]

    async def mark_reported(self, ids: Sequence[int], now: datetime) -> None:
        if not ids:
            return
        async with self._write() as conn:
            for start in range(0, len(ids), 500):
                chunk = list(ids[start : start + 500])
                await conn.execute(update(RS).where(RS.c.id.in_(chunk)).values(reported_at=now))

    async def purge(self, reported_before: datetime) -> int:
        async with self._write() as conn:
            result = await conn.execute(delete(RS).where(RS.c.reported_at < reported_before))
            return int(result.rowcount or 0)

    async def results(self, since: datetime) -> list[TlsResult]:
        stmt = select(RS).where(RS.c.at >= since).order_by(RS.c.id)
        async with self._read() as conn:
            return [_result(r) for r in (await conn.execute(stmt)).all()]

    async def add_received(self, report: ReceivedReport) -> int:
        async with self._write() as conn:
            result = await conn.execute(
                insert(RC).values(
                    received_at=report.received_at, organization=report.organization,
                    report_id=report.report_id, start_at=report.start, end_at=report.end,
                    policy_domains=" ".join(report.policy_domains), success=report.success,
                    failure=report.failure, body=report.body,
                ).returning(RC.c.id)
            )
            return int(result.scalar_one())

    async def received(self, limit: int = 100) -> list[ReceivedReport]:
        stmt = select(RC).order_by(RC.c.received_at.desc(), RC.c.id.desc()).limit(limit)
        async with self._read() as conn:
            return [_received(r) for r in (await conn.execute(stmt)).all()]
