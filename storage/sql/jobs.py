"""SQL side of ``storage.jobs.JobLedger``: the ``cluster_jobs`` table (migration 0008_cluster_jobs)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final, cast

from sqlalchemy import Table, Text, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from storage.sql.models import Base, UtcDateTime


class ClusterJob(Base):
    __tablename__ = "cluster_jobs"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    slot: Mapped[str] = mapped_column(Text, primary_key=True)
    node: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


J: Final = cast(Table, ClusterJob.__table__)


def claim_tx(conn: Connection, name: str, slot: str, node: str, now: datetime, lease: timedelta) -> bool:
    try:
        with conn.begin_nested():
            conn.execute(insert(J).values(name=name, slot=slot, node=node, started_at=now, finished_at=None))
        return True
    except IntegrityError:
        pass
    row = conn.execute(
        select(J.c.node, J.c.started_at, J.c.finished_at).where(J.c.name == name, J.c.slot == slot)
    ).one_or_none()
    if row is None or row.finished_at is not None:
        return False
    started = row.started_at
    if started > now - lease:
        return False
    # The node that claimed it died inside the job (or is stuck): take the slot over.
    taken = conn.execute(
        update(J)
        .where(J.c.name == name, J.c.slot == slot, J.c.node == row.node, J.c.finished_at.is_(None))
        .values(node=node, started_at=now)
    )
    return bool(taken.rowcount)


def finish_tx(conn: Connection, name: str, slot: str, node: str, now: datetime) -> None:
    conn.execute(
        update(J).where(J.c.name == name, J.c.slot == slot, J.c.node == node).values(finished_at=now)
    )
