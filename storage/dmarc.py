"""DMARC aggregate reporting data (interface and value types; RFC 7489 section 7.2).

Theory of operation
-------------------
*Pending* rows count the DMARC evaluations of inbound mail per distinct
evaluation (a key the caller computes: same policy domain, source IP, results
and domains -> same key); the caller adds counts in batches
(``count_evaluations``), reads a domain's rows when its report is due
(``pending``) and deletes exactly those rows once the report is queued
(``remove_pending``; evaluations counted meanwhile stay for the next report).
What an evaluation contains is the caller's business: stored as JSON text.

*Received* rows are the records of aggregate reports other receivers sent to
our ``rua``; a report (reporter, report id) is stored once
(``add_received`` answers False for a repeat). ``senders`` sums them per
author domain and source IP: who sends as our domains, and whether it passed.

Lifecycle: ``dmarc_for(store)`` after ``await store.start()``; it borrows the
store's engine, like the credential store, and is cached per store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from storage.api import MailStore


@dataclass(frozen=True, slots=True)
class PendingEvaluation:
    id: int
    policy_domain: str
    row_key: str
    evaluation: str
    """JSON, as given to ``count_evaluations``."""
    count: int
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class ReceivedRecord:
    """One ``record`` of a received aggregate report."""

    reporter: str
    report_id: str
    email: str
    domain: str
    begin: int
    end: int
    source_ip: str
    header_from: str
    count: int
    disposition: str
    dkim: str
    spf: str


@dataclass(frozen=True, slots=True)
class SenderSummary:
    """Everything the received reports say about one source sending as one domain."""

    header_from: str
    source_ip: str
    messages: int
    passed: int
    """Messages with an aligned DKIM or SPF pass."""
    reporters: tuple[str, ...]
    last_end: int
    """End of the latest report period that mentions it (seconds since the epoch)."""


class DmarcStore(Protocol):
    """Coroutines on the store's loop."""

    async def count_evaluations(self, rows: list[tuple[str, str, str, int]], when: datetime) -> None:
        """Add ``(policy_domain, row_key, evaluation_json, count)`` rows in one
        transaction: an existing key's count grows, a new key is inserted."""
        ...

    async def pending(self) -> list[PendingEvaluation]:
        """Every pending row, by domain then id."""
        ...

    async def remove_pending(self, ids: list[int]) -> None:
        """Delete these rows (their report was queued)."""
        ...

    async def add_received(self, records: list[ReceivedRecord], when: datetime) -> bool:
        """Store one report's records; False (nothing stored) when a report with
        the same reporter and report id was stored before."""
        ...

    async def senders(self, domains: list[str] | None = None, limit: int = 500) -> list[SenderSummary]:
        """Received report rows summed per (header_from, source_ip), most mail first;
        only those whose policy domain is in ``domains`` when given."""
        ...


def dmarc_for(store: MailStore) -> DmarcStore:
    """The DMARC report store on the same database as ``store`` (``storage.storage_of``)."""
    from storage import storage_of

    return storage_of(store).dmarc
