"""DMARC aggregate reports (RFC 7489 section 7.2): counting, sending, receiving.

Theory of operation
-------------------
``DmarcReports`` is built by the wiring (the App, each SMTP worker process,
the CLI) over the store's ``storage.dmarc`` tables:

* ``observe(evaluation)`` (the ``policy.aggregate.EvaluationObserver`` the
  MX calls for each DMARC-evaluated message) counts in memory; the counts are
  written in one batch at most every ``dmarc.flush_interval`` seconds and at
  shutdown (``flush``), never on the message's own path.
* ``send_due(force=False)`` makes one report per policy domain whose oldest
  pending evaluation is older than its ``ri`` (all of them with ``force``:
  ``mailserver report dmarc --send-now``): it looks the domain's DMARC record
  up again for the current ``rua``, checks each destination (section 7.1,
  size limit), and queues one gzip-attached report per destination through
  the outbound queue, which signs it with our DKIM key like any mail of ours.
  The rows are deleted once every destination has its copy queued; a DNS
  failure leaves them for the next round. The App runs it every
  ``dmarc.check_interval`` seconds.
* ``delivered(addresses, message)``: a message just stored for our own
  ``dmarc.rua`` mailbox is parsed as an aggregate report in the background
  (``ingest``); the summary (who sends as our domains, from where, passing or
  not) is on ``/admin/dmarc`` and ``mailserver report dmarc``. The mail stays
  in the mailbox whatever the parser thinks of it.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING

from mailserver.config import Config
from policy.aggregate import (
    AggregateReport,
    Evaluation,
    PolicyPublished,
    ReportFormatError,
    destination_verified,
    evaluation_from_json,
    evaluation_json,
    extract_report,
    parse_report,
    parse_rua,
    report_filename,
    report_subject,
    report_xml,
)
from policy.checks.authentication import lookup_dmarc, normalise_domain
from policy.dns import DnsTempError, Resolver
from storage.api import MailStore
from storage.dmarc import DmarcStore, PendingEvaluation, ReceivedRecord

if TYPE_CHECKING:
    from mailserver.smtp.queue import Outbound

log = logging.getLogger(__name__)


def report_org(config: Config) -> str:
    return config.dmarc.report_org or config.server.domains[0]


def report_from(config: Config) -> str:
    return config.dmarc.report_from or f"noreply-dmarc@{config.server.domains[0]}"


def report_rua(config: Config, domain: str) -> str:
    """The rua address we publish for ``domain`` (``dns records``)."""
    return config.dmarc.rua or f"postmaster@{domain}"


@dataclass(frozen=True, slots=True)
class SentReport:
    domain: str
    destination: str
    report_id: str
    records: int
    messages: int
    queue_id: int


@dataclass
class SendOutcome:
    sent: list[SentReport] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Why a domain or destination got nothing (for the operator)."""


class DmarcReports:
    """See the module docstring. ``outbound`` is needed only for sending."""

    def __init__(
        self, config: Config, store: DmarcStore, resolver: Resolver, outbound: Outbound | None = None
    ) -> None:
        self._config = config
        self._store = store
        self._resolver = resolver
        self._outbound = outbound
        self._counts: dict[str, tuple[Evaluation, int]] = {}
        self._flusher: asyncio.Task[None] | None = None
        self._ingesting: set[asyncio.Task[None]] = set()

    # -- counting ----------------------------------------------------------------

    def observe(self, evaluation: Evaluation) -> None:
        key = evaluation.key()
        _, count = self._counts.get(key, (evaluation, 0))
        self._counts[key] = (evaluation, count + 1)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_later(), name="dmarc-flush")

    async def _flush_later(self) -> None:
        await asyncio.sleep(self._config.dmarc.flush_interval)
        try:
            await self.flush()
        except Exception:  # noqa: BLE001 - statistics must never take the server down
            log.exception("dmarc: cannot write evaluations")

    async def flush(self) -> None:
        """Write the counted evaluations now (one transaction)."""
        counts, self._counts = self._counts, {}
        rows = [(e.policy_domain, key, evaluation_json(e), n) for key, (e, n) in counts.items()]
        await self._store.count_evaluations(rows, datetime.now(UTC))

    async def close(self) -> None:
        if self._flusher is not None and not self._flusher.done():
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
        await asyncio.gather(*self._ingesting, return_exceptions=True)
        await self.flush()

    # -- sending -------------------------------------------------------------------

    async def send_due(self, *, force: bool = False, now: datetime | None = None) -> SendOutcome:
        """Queue the reports that are due (all pending with ``force``)."""
        if self._outbound is None:
            raise RuntimeError("DmarcReports built without an outbound queue")
        await self.flush()
        now = now or datetime.now(UTC)
        outcome = SendOutcome()
        by_domain: dict[str, list[PendingEvaluation]] = {}
        for row in await self._store.pending():
            by_domain.setdefault(row.policy_domain, []).append(row)
        for domain, rows in by_domain.items():
            evaluations = [(evaluation_from_json(r.evaluation), r.count) for r in rows]
            interval = min(e.ri for e, _ in evaluations)
            begin = min(r.first_seen for r in rows)
            if not force and (now - begin).total_seconds() < interval:
                continue
            try:
                sent = await self._send_domain(domain, evaluations, begin, now, outcome)
            except DnsTempError as exc:
                outcome.skipped.append(f"{domain}: DNS failed, kept for later ({exc})")
                continue
            outcome.sent += sent
            await self._store.remove_pending([r.id for r in rows])
        return outcome

    async def _send_domain(
        self, domain: str, evaluations: list[tuple[Evaluation, int]], first: datetime, now: datetime,
        outcome: SendOutcome,
    ) -> list[SentReport]:
        record, found_at = await asyncio.to_thread(lookup_dmarc, self._resolver, domain)
        if record is None or found_at != domain or not record.rua:
            # Section 7.2: the rua in force when the report is sent decides.
            outcome.skipped.append(f"{domain}: no longer asks for aggregate reports; dropped")
            return []
        published = PolicyPublished(domain, record.adkim, record.aspf, record.policy,
                                    record.subdomain_policy, record.pct)
        org, sender = report_org(self._config), report_from(self._config)
        begin, end = int(first.timestamp()), int(now.timestamp())
        # Without "@": parsedmarc, for one, keeps only what precedes it.
        report_id = f"{begin}.{secrets.token_hex(8)}"
        report = AggregateReport(org, sender, report_id, begin, end, published, tuple(evaluations))
        gz = gzip.compress(report_xml(report), mtime=0)
        filename = report_filename(normalise_domain(org), domain, begin, end)
        sent: list[SentReport] = []
        for dest in parse_rua(record.rua):
            if not await destination_verified(self._resolver, domain, dest):
                outcome.skipped.append(f"{domain}: {dest.address} has not agreed to receive its reports "
                                       f"(RFC 7489 section 7.1)")
                continue
            subject = report_subject(domain, org, report_id)
            message = self._message(sender, dest.address, subject, filename, gz, domain, begin, end)
            if dest.max_size is not None and len(message) > dest.max_size:
                outcome.skipped.append(f"{domain}: report of {len(message)} octets exceeds "
                                       f"{dest.address}'s limit of {dest.max_size}")
                continue
            assert self._outbound is not None  # noqa: S101 - checked by send_due
            queue_id = await self._outbound.enqueue(sender, [dest.address], message, origin="report")
            log.info("dmarc: report %s for %s (%d records) queued to %s as %d",
                     report_id, domain, len(evaluations), dest.address, queue_id)
            sent.append(SentReport(domain, dest.address, report_id, len(evaluations),
                                   sum(n for _, n in evaluations), queue_id))
        return sent

    def _message(
        self, sender: str, to: str, subject: str, filename: str, gz: bytes, domain: str, begin: int, end: int
    ) -> bytes:
        msg = EmailMessage()
        msg["From"] = sender
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = format_datetime(datetime.now(UTC))
        msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
        start = datetime.fromtimestamp(begin, UTC).strftime("%Y-%m-%d %H:%M")
        stop = datetime.fromtimestamp(end, UTC).strftime("%Y-%m-%d %H:%M")
        msg.set_content(
            f"Báo cáo tổng hợp DMARC cho {domain}, từ {start} đến {stop} (UTC).\n"
            f"DMARC aggregate report for {domain}, {start} to {stop} UTC (RFC 7489 section 7.2).\n"
        )
        msg.add_attachment(gz, maintype="application", subtype="gzip", filename=filename)
        return msg.as_bytes(policy=SMTP)

    # -- receiving ---------------------------------------------------------------------

    def delivered(self, addresses: Sequence[str], message: bytes) -> None:
        """A message was stored for ``addresses``: parse it in the background if
        one of them is our ``dmarc.rua``."""
        rua = self._config.dmarc.rua.strip().lower()
        if not rua or rua not in (a.lower() for a in addresses):
            return
        task = asyncio.get_running_loop().create_task(self._ingest_quietly(message), name="dmarc-ingest")
        self._ingesting.add(task)
        task.add_done_callback(self._ingesting.discard)

    async def _ingest_quietly(self, message: bytes) -> None:
        try:
            await self.ingest(message)
        except ReportFormatError as exc:
            log.info("dmarc: message to %s is not an aggregate report we can read: %s",
                     self._config.dmarc.rua, exc)
        except Exception:  # noqa: BLE001 - the mail is stored; parsing is a nicety
            log.exception("dmarc: cannot store a received report")

    async def ingest(self, message: bytes) -> bool:
        """Parse a report message (or a bare XML/gzip/zip report) and store its
        records; False when that report was stored before. ``ReportFormatError``
        when it is not a report."""
        try:
            xml = extract_report(message)
        except ReportFormatError:
            from policy.aggregate import decompress

            xml = decompress(message)  # a bare report file (`report dmarc --import`)
        report = await asyncio.to_thread(parse_report, xml)
        records = [
            ReceivedRecord(report.org_name, report.report_id, report.email, report.domain, report.begin,
                           report.end, r.source_ip, r.header_from or report.domain, r.count, r.disposition,
                           r.dkim, r.spf)
            for r in report.rows
        ]
        if not records:
            return False
        stored = await self._store.add_received(records, datetime.now(UTC))
        log.info("dmarc: report %s from %s for %s: %d records%s", report.report_id, report.org_name,
                 report.domain, len(records), "" if stored else " (seen before)")
        return stored


async def report_loop(reports: DmarcReports, interval: float) -> None:
    """Send due reports every ``interval`` seconds (App background task)."""
    while True:
        await asyncio.sleep(interval)
        try:
            outcome = await reports.send_due()
            for line in outcome.skipped:
                log.info("dmarc: %s", line)
        except Exception:  # noqa: BLE001 - try again next round
            log.exception("dmarc: sending reports failed")


async def send_reports_now(config: Config, store: MailStore) -> SendOutcome:
    """Every pending report, queued now (``mailserver report dmarc --send-now``):
    the outbound queue and DKIM signer of ``config`` on ``store``'s database."""
    from mailserver.smtp.outbound_settings import spool_path
    from mailserver.smtp.queue import Outbound
    from pki.dkim import DkimSigner, key_directory
    from pki.keystore import DkimKeyStore
    from policy.dns import build_resolver
    from storage.dmarc import dmarc_for
    from storage.queue import open_queue

    queue = open_queue(config.storage_url, spool_path(config.outbound, config.data_dir))
    await queue.start()
    try:
        signer = DkimSigner(DkimKeyStore(key_directory(config.dkim, config.data_dir)), config.dkim)
        reports = DmarcReports(config, dmarc_for(store), build_resolver(config.dns), Outbound(queue, signer))
        return await reports.send_due(force=True)
    finally:
        await queue.close()
