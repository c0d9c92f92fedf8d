"""``SqlDmarcStore``: ``storage.dmarc`` on the mail index's database.

Runs on the shared ``database.Database`` and its write serialisation (as the
credential store does). Counting is written with ``durable=False``: a few
counts lost to a power cut make a report slightly low, which RFC 7489 section
7.2 tolerates (reports are statistics), and it keeps the batch cheap.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, cast

from sqlalchemy import Table, case, delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from storage.dmarc import PendingEvaluation, ReceivedRecord, SenderSummary
from storage.sql import dmarc_models as dm
from storage.sql.database import Database

__all__ = ["SqlDmarcStore"]

P: Final = cast(Table, dm.DmarcPendingRow.__table__)
R: Final = cast(Table, dm.DmarcReceivedRow.__table__)


class SqlDmarcStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def count_evaluations(self, rows: list[tuple[str, str, str, int]], when: datetime) -> None:
        if not rows:
            return

        def tx(conn: Connection) -> None:
            for domain, key, evaluation, count in rows:
                done = conn.execute(
                    update(P).where(P.c.row_key == key).values(count=P.c.count + count, last_seen=when)
                ).rowcount
                if not done:
                    conn.execute(insert(P).values(
                        policy_domain=domain[:255], row_key=key, evaluation=evaluation, count=count,
                        first_seen=when, last_seen=when,
                    ))

        try:
            await self._db.run_write(tx, durable=False)
        except IntegrityError:
            # Another process inserted one of these keys first (PostgreSQL with
            # SMTP worker processes): the second attempt updates it.
            await self._db.run_write(tx, durable=False)

    async def pending(self) -> list[PendingEvaluation]:
        def tx(conn: Connection) -> list[PendingEvaluation]:
            # Plain tuples in the dataclass's field order (a Row's ``count`` is tuple.count).
            columns = (P.c.id, P.c.policy_domain, P.c.row_key, P.c.evaluation, P.c.count, P.c.first_seen,
                       P.c.last_seen)
            rows = conn.execute(select(*columns).order_by(P.c.policy_domain, P.c.id))
            return [PendingEvaluation(*row) for row in rows]

        return await self._db.run_read(tx)

    async def remove_pending(self, ids: list[int]) -> None:
        if not ids:
            return

        def tx(conn: Connection) -> None:
            conn.execute(delete(P).where(P.c.id.in_(ids)))

        await self._db.run_write(tx)

    async def add_received(self, records: list[ReceivedRecord], when: datetime) -> bool:
        if not records:
            return False
        first = records[0]

        def tx(conn: Connection) -> bool:
            seen = conn.execute(
                select(R.c.id).where(R.c.reporter == first.reporter[:255],
                                     R.c.report_id == first.report_id[:255]).limit(1)
            ).first()
            if seen is not None:
                return False
            conn.execute(insert(R), [
                {"reporter": r.reporter[:255], "report_id": r.report_id[:255], "email": r.email[:255],
                 "domain": r.domain[:255], "begin": r.begin, "end": r.end, "source_ip": r.source_ip[:64],
                 "header_from": r.header_from[:255], "count": r.count, "disposition": r.disposition[:16],
                 "dkim": r.dkim[:16], "spf": r.spf[:16], "received_at": when}
                for r in records
            ])
            return True

        return await self._db.run_write(tx)

    async def senders(self, domains: list[str] | None = None, limit: int = 500) -> list[SenderSummary]:
        def tx(conn: Connection) -> list[SenderSummary]:
            passed = func.sum(case(((R.c.dkim == "pass") | (R.c.spf == "pass"), R.c.count), else_=0))
            query = (
                select(R.c.header_from, R.c.source_ip, func.sum(R.c.count).label("messages"),
                       passed.label("passed"), func.max(R.c.end).label("last_end"))
                .group_by(R.c.header_from, R.c.source_ip)
                .order_by(func.sum(R.c.count).desc(), R.c.header_from, R.c.source_ip)
                .limit(limit)
            )
            if domains is not None:
                query = query.where(R.c.domain.in_(domains))
            out: list[SenderSummary] = []
            for row in conn.execute(query).all():
                who = conn.execute(
                    select(R.c.reporter).distinct()
                    .where(R.c.header_from == row.header_from, R.c.source_ip == row.source_ip)
                    .order_by(R.c.reporter)
                ).scalars().all()
                out.append(SenderSummary(row.header_from, row.source_ip, int(row.messages or 0),
                                         int(row.passed or 0), tuple(who), int(row.last_end or 0)))
            return out

        return await self._db.run_read(tx)
