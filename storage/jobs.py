"""Scheduled jobs run once per period across several nodes (``JobLedger``).

Nodes sharing one database each run the same schedule loops (backups, CRL
renewal, password warnings, the vault purge, check notices). Before a run, a
loop asks the ledger for the period's slot — a key every node computes alike,
such as the scheduled time of the backup or ``floor(now / interval)`` — and only
the node whose claim succeeds runs it. A claim is a row keyed by (job, slot):
inserting it is atomic on SQLite and PostgreSQL alike, so exactly one node wins
whatever the timing, and the ledger survives restarts. A node that dies inside
a job leaves its row unfinished; once ``lease`` has passed since it started,
another node may take the slot over.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable


@runtime_checkable
class JobLedger(Protocol):
    async def claim_job(self, name: str, slot: str, *, node: str, now: datetime, lease: timedelta) -> bool:
        """True when this node is to run ``name`` for ``slot`` (first claim, or a
        takeover of an unfinished run started longer than ``lease`` ago)."""
        ...

    async def finish_job(self, name: str, slot: str, *, node: str, now: datetime) -> None:
        """Mark ``node``'s run of ``name`` for ``slot`` done."""
        ...


__all__ = ["JobLedger"]
