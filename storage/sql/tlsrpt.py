"""``SqlTlsRptStore``: the TLS-RPT tables (``storage.tlsrpt``) on SQL.

Inside the server it borrows the mail store's engine and write serialisation,
as ``storage.sql.queue`` does; the CLI opens its own engine.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Final, cast

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storage.sql import tlsrpt_models
from storage.sql.engine import WRITE_OPTION, make_engine
from storage.sql.migrate import upgrade_engine
from storage.sql.store import SqlMailStore
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
    def __init__(self, url: str, *, store: SqlMailStore | None = None) -> None:
        self.url = url
        self._store = store
        self._engine_or_none: AsyncEngine | None = None
        self._write_lock = asyncio.Lock()

    async def start(self) -> None:
        if self._store is not None:
            return  # the store's start() applied every migration branch
        engine = make_engine(self.url)
        try:
            await upgrade_engine(engine)
        except BaseException:
            await engine.dispose()
            raise
        self._engine_or_none = engine

    async def close(self) -> None:
        if self._engine_or_none is not None:
            await self._engine_or_none.dispose()
            self._engine_or_none = None

    @property
    def _engine(self) -> AsyncEngine:
        if self._engine_or_none is None:
            raise RuntimeError("SqlTlsRptStore.start() has not been awaited")
        return self._engine_or_none

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        if self._store is not None:
            async with self._store._read() as conn:  # noqa: SLF001 - same package, shared engine
                yield conn
            return
        async with self._engine.connect() as conn:
            async with conn.begin():
                yield conn

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        if self._store is not None:
            async with self._store._write() as conn:  # noqa: SLF001
                yield conn
            return
        async with self._write_lock:
            async with self._engine.connect() as conn:
                await conn.execution_options(**{WRITE_OPTION: True})
                async with conn.begin():
                    yield conn

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
