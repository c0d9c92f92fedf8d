"""TLS reporting data (RFC 8460): what outbound delivery saw, and reports others sent us.

Theory of operation
-------------------
Every TLS outcome of outbound delivery (a session established under a policy,
or a failure to establish one) is one ``TlsResult`` row, keyed by the policy
domain (the recipient domain, RFC 8460 section 4.3.1). Rows are aggregated only
when a report is built (``mailserver.smtp.tlsrpt``): per policy, per result
type and per MX host, the counts of RFC 8460 section 4.4. Once a report has been
built for a range of time the rows of that range are marked ``reported`` so the
next report does not count them again; reported rows older than the retention
are deleted.

Reports other organisations send to our ``rua`` are kept whole (the JSON) with
a summary for the operators' listing (``ReceivedReport``).

Lifecycle: ``open_tlsrpt(url, store=...)``, ``await start()``, use from one
event loop, ``await close()`` (like ``storage.queue``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from storage.api import MailStore

SUCCESS = "success"
"""``TlsResult.result`` of a session established as the policy demands."""


@dataclass(frozen=True, slots=True)
class TlsResult:
    """One outbound TLS outcome (RFC 8460 section 4.3 and 4.4)."""

    at: datetime
    policy_domain: str
    policy_type: str
    """``sts``, ``tlsa`` or ``no-policy-found`` (RFC 8460 section 4.3.1.1)."""
    policy_strings: tuple[str, ...]
    """The policy as published: the MTA-STS policy lines or the TLSA records."""
    mx_host: str
    receiving_ip: str
    result: str
    """``success`` or a result type of RFC 8460 section 4.3.2.1 (``starttls-not-supported``...)."""
    detail: str = ""
    """Free text (``failure-reason-code``)."""
    id: int = 0


@dataclass(frozen=True, slots=True)
class ReceivedReport:
    """An aggregate report another organisation sent to our ``rua``."""

    id: int
    received_at: datetime
    organization: str
    report_id: str
    start: datetime
    end: datetime
    policy_domains: tuple[str, ...]
    success: int
    failure: int
    body: str
    """The report JSON as received (decompressed)."""


class TlsRptStore(Protocol):
    """The TLS-RPT tables (module docstring)."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def record(self, results: Sequence[TlsResult]) -> None:
        """Commit outcomes in one transaction."""
        ...

    async def unreported(self, before: datetime) -> list[TlsResult]:
        """Rows not yet reported with ``at < before``, oldest first."""
        ...

    async def mark_reported(self, ids: Sequence[int], now: datetime) -> None: ...

    async def purge(self, reported_before: datetime) -> int:
        """Delete rows reported before ``reported_before``; returns how many."""
        ...

    async def results(self, since: datetime) -> list[TlsResult]:
        """Every row since ``since`` (reported or not), oldest first."""
        ...

    async def add_received(self, report: ReceivedReport) -> int:
        """Keep a report sent to us; returns its id (``report.id`` is ignored)."""
        ...

    async def received(self, limit: int = 100) -> list[ReceivedReport]:
        """Reports sent to us, newest first."""
        ...


def open_tlsrpt(url: str, *, store: MailStore | None = None) -> TlsRptStore:
    """The TLS-RPT store beside ``store`` (``storage.storage_of``) or, without one,
    on its own connection to ``url`` (the CLI)."""
    if store is not None:
        from storage import storage_of

        return storage_of(store).tlsrpt
    from storage.sql.tlsrpt import SqlTlsRptStore

    return SqlTlsRptStore(url)
