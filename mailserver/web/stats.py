"""Figures for the operator dashboard: open connections, queue and quarantine
sizes, and deliveries per hour.

Deliveries per hour are counted from the store's index (messages that arrived
in an INBOX, by ``internal_date``, which a delivery sets to its arrival time,
RFC 9051 section 2.3.3) through ``ActivityStore.inbox_arrivals``, a read that
never waits on the store's writers. Hours are those of the province
(``report.utc_offset``), as staff read the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from storage.activity import ActivityStore
from storage.quarantine import Quarantine
from storage.queue import OutboundQueue


@dataclass(frozen=True, slots=True)
class Counters:
    connections: dict[str, int]
    queue_messages: int
    queue_waiting: int
    quarantined: int
    accounts: int

    def as_dict(self) -> dict[str, object]:
        return {
            "connections": self.connections,
            "connections_total": sum(self.connections.values()),
            "queue_messages": self.queue_messages,
            "queue_waiting": self.queue_waiting,
            "quarantined": self.quarantined,
            "accounts": self.accounts,
        }


async def queue_counts(queue: OutboundQueue) -> tuple[int, int]:
    messages = await queue.list()
    return len(messages), sum(len(m.pending) for m in messages)


def quarantine_count(quarantine: Quarantine) -> int:
    return len(quarantine.list())


async def deliveries_per_hour(
    activity: ActivityStore, *, hours: int = 24, now: datetime | None = None, tz: tzinfo = UTC
) -> tuple[list[str], list[int]]:
    """(hour labels "HH" in ``tz``, counts), oldest first, for the last ``hours`` hours.
    Slots are whole hours of ``tz`` (Viet Nam's offset is whole hours too)."""
    now = (now or datetime.now(UTC)).astimezone(tz)
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(hours=hours)
    counts = [0] * hours
    for when in await activity.inbox_arrivals(start):
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
        slot = int((when - start).total_seconds() // 3600)
        if 0 <= slot < hours:
            counts[slot] += 1
    labels = [f"{(start + timedelta(hours=i)).hour:02d}" for i in range(hours)]
    return labels, counts
