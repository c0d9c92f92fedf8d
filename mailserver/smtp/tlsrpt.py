"""TLS-RPT (RFC 8460): aggregate reports of our outbound TLS, and reports sent to us.

Theory of operation
-------------------
Delivery records every TLS outcome (``storage.tlsrpt``; ``tlspolicy.py``
says which). ``send_reports`` turns the rows not yet reported into one report
per policy domain (section 4.4), for the domains whose ``_smtp._tls`` TXT
record (section 3) names at least one ``mailto:`` rua:

* JSON as section 4.4 defines it, gzip-compressed, attached as
  ``application/tlsrpt+gzip`` named ``<submitter>!<policy-domain>!<begin>!<end>!<id>.json.gz``
  (section 5.1, 5.3) to a ``multipart/report; report-type="tlsrpt"`` message
  with the ``TLS-Report-Domain`` and ``TLS-Report-Submitter`` fields and the
  Subject ``Report Domain: ... Submitter: ... Report-ID: <...>`` (section 5.3);
* queued through the outbound queue like any other mail, so it is DKIM-signed
  at enqueue for the From domain (section 5.3: signature required);
* ``https:`` rua destinations get the same gzip JSON by POST (section 5.2,
  ``Content-Type: application/tlsrpt+gzip``), the host resolved through the
  one resolver and its certificate checked against ``outbound.ca_file`` (or
  the system store); a refused or failed POST is tried again by the running
  server (section 5.4: for up to 24 hours, with exponential back-off:
  ``PostRetries``, kept in memory: a restart forgets them, the reports being
  optional), and by ``--send-now`` only logged;
* the rows are marked reported whether or not the domain asked for reports,
  so a domain that publishes a record later does not get a backlog.

The daily run (``report_loop``) reports the rows of every UTC day before the
current one once the hour is past ``tlsrpt.send_hour``;
``mailserver report tlsrpt --send-now`` reports everything unreported up to now.

Reports other organisations send to our rua (``tlsrpt.rua``, default
``tlsrpt@<first domain>``) are accepted by the MX without a mailbox, parsed
(``parse_report_message``: gzip or plain JSON, as attachment or body) and kept
with a summary for ``/admin/tlsrpt`` and ``mailserver report tlsrpt --received``.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import gzip
import io
import json
import logging
import secrets
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING, Any, Final

import aiohttp

from mailserver.smtp.mtasts import HttpResolver, verifying_context
from policy.dns import DnsTempError, Resolver
from storage.tlsrpt import SUCCESS, ReceivedReport, TlsResult, TlsRptStore

if TYPE_CHECKING:
    from mailserver.cluster import Cluster
    from mailserver.config import Config
    from mailserver.smtp.queue import Outbound

log = logging.getLogger(__name__)

MEDIA_TYPE: Final = "application/tlsrpt+gzip"
RETENTION: Final = timedelta(days=31)
"""How long reported results are kept (for /admin/tlsrpt and questions after a report)."""
MAX_REPORT_SIZE: Final = 10 * 1024 * 1024
"""Largest decompressed report accepted from others."""


MAX_RUAS: Final = 10
"""rua URIs used from one record (each is a report sent, or POSTed and retried)."""


def parse_tlsrpt_txt(records: Sequence[str]) -> list[str]:
    """The rua URIs of the one ``v=TLSRPTv1`` record (section 3), the first
    ``MAX_RUAS``; [] if none or several records."""
    found = [r for r in records if r.strip().startswith("v=TLSRPTv1")]
    if len(found) != 1:
        return []
    for part in found[0].split(";"):
        key, eq, value = part.strip().partition("=")
        if eq and key.strip() == "rua":
            return [u.strip() for u in value.split(",") if u.strip()][:MAX_RUAS]
    return []


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_report(
    results: Sequence[TlsResult], *, domain: str, organization: str, contact: str, report_id: str,
    start: datetime, end: datetime,
) -> dict[str, Any]:
    """The JSON report of section 4.4 for one policy domain."""
    groups: dict[tuple[str, tuple[str, ...]], list[TlsResult]] = {}
    for r in results:
        groups.setdefault((r.policy_type, r.policy_strings), []).append(r)
    policies: list[dict[str, Any]] = []
    for (ptype, strings), rows in groups.items():
        policy: dict[str, Any] = {"policy-type": ptype, "policy-domain": domain}
        if strings:
            policy["policy-string"] = list(strings)
        if ptype == "sts":
            mx = [s.partition(":")[2].strip() for s in strings if s.startswith("mx:")]
            if mx:
                policy["mx-host"] = mx
        failures = Counter(
            (r.result, r.mx_host, r.receiving_ip, r.detail) for r in rows if r.result != SUCCESS
        )
        details = []
        for (result, mx_host, ip, detail), count in sorted(failures.items()):
            item: dict[str, Any] = {"result-type": result, "failed-session-count": count}
            if mx_host:
                item["receiving-mx-hostname"] = mx_host
            if ip:
                item["receiving-ip"] = ip
            if detail:
                item["failure-reason-code"] = detail[:200]
            details.append(item)
        entry: dict[str, Any] = {
            "policy": policy,
            "summary": {
                "total-successful-session-count": sum(1 for r in rows if r.result == SUCCESS),
                "total-failure-session-count": sum(failures.values()),
            },
        }
        if details:
            entry["failure-details"] = details
        policies.append(entry)
    return {
        "organization-name": organization,
        "date-range": {"start-datetime": _stamp(start), "end-datetime": _stamp(end)},
        "contact-info": contact,
        "report-id": report_id,
        "policies": policies,
    }


def report_message(
    report: dict[str, Any], *, domain: str, submitter: str, sender: str, recipients: Sequence[str],
    now: datetime,
) -> bytes:
    """The report mail of section 5.3 (multipart/report, gzip JSON attached)."""
    start = report["date-range"]["start-datetime"]
    end = report["date-range"]["end-datetime"]
    report_id = report["report-id"]
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = f"Report Domain: {domain} Submitter: {submitter} Report-ID: <{report_id}>"
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid(domain=submitter)
    msg["TLS-Report-Domain"] = domain
    msg["TLS-Report-Submitter"] = submitter
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(
        "Báo cáo TLS (RFC 8460) về thư gửi tới tên miền của quý vị, đính kèm.\n"
        f"This is an aggregate TLS report (RFC 8460) from {submitter} for {domain}, {start} to {end}.\n"
    )
    payload = compressed(report)
    begin_ts, end_ts = (int(_when(t).timestamp()) for t in (start, end))
    filename = f"{submitter}!{domain}!{begin_ts}!{end_ts}!{secrets.token_hex(4)}.json.gz"
    msg.add_attachment(payload, maintype="application", subtype="tlsrpt+gzip", filename=filename)
    # Section 5.3: multipart/report (RFC 6522) with report-type "tlsrpt"; the boundary stays.
    msg.set_type("multipart/report")
    msg.set_param("report-type", "tlsrpt")
    return msg.as_bytes()


@dataclass(frozen=True, slots=True)
class SentReport:
    domain: str
    recipients: tuple[str, ...]
    report: dict[str, Any]
    posted: tuple[str, ...] = ()
    """The https rua URLs that accepted the report (2xx)."""


class PostError(Exception):
    """An https rua did not take the report."""


RETRY_FOR: Final = timedelta(hours=24)
"""Section 5.4: redelivery is attempted for up to 24 hours after the first attempt."""
FIRST_RETRY: Final = 300.0
"""Seconds before the first retry of a failed POST; doubled after each failure."""


@dataclass(slots=True)
class _Retry:
    url: str
    payload: bytes
    label: str
    """Report id and policy domain, for the log."""
    first: datetime
    next_at: datetime
    delay: float


class PostRetries:
    """Failed https POSTs of reports, tried again with exponential back-off until
    they succeed or 24 hours have passed since the first attempt (section 5.4)."""

    def __init__(self) -> None:
        self._items: list[_Retry] = []

    def __len__(self) -> int:
        return len(self._items)

    def add(self, url: str, payload: bytes, label: str, now: datetime) -> None:
        due = now + timedelta(seconds=FIRST_RETRY)
        self._items.append(_Retry(url, payload, label, now, due, FIRST_RETRY))

    def next_due(self) -> datetime | None:
        return min((r.next_at for r in self._items), default=None)

    async def run_due(self, resolver: Resolver, ca_file: str, timeout: float, now: datetime) -> list[str]:
        """POST what is due; returns the URLs that took their report this time."""
        posted: list[str] = []
        for item in [r for r in self._items if r.next_at <= now]:
            try:
                await post_report(item.url, item.payload, resolver, ca_file, timeout)
            except PostError as exc:
                item.delay *= 2
                item.next_at = now + timedelta(seconds=item.delay)
                if item.next_at - item.first > RETRY_FOR:
                    self._items.remove(item)
                    log.warning("tlsrpt: report %s not posted: %s; given up after 24 hours", item.label, exc)
                else:
                    log.info("tlsrpt: report %s not posted: %s; next try at %s", item.label, exc,
                             item.next_at.isoformat(timespec="seconds"))
            else:
                self._items.remove(item)
                log.info("tlsrpt: report %s posted to %s on a retry", item.label, item.url)
                posted.append(item.url)
        return posted


async def post_report(url: str, payload: bytes, resolver: Resolver, ca_file: str, timeout: float) -> None:
    """Section 5.2: POST the gzip JSON; any 2xx is success."""
    connector = aiohttp.TCPConnector(resolver=HttpResolver(resolver), ssl=verifying_context(ca_file),
                                     use_dns_cache=False)
    try:
        async with aiohttp.ClientSession(connector=connector,
                                         timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            async with session.post(url, data=payload, headers={"Content-Type": MEDIA_TYPE},
                                    allow_redirects=False) as response:
                if not 200 <= response.status < 300:
                    raise PostError(f"{url}: HTTP {response.status}")
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise PostError(f"{url}: {exc.__class__.__name__} {exc}") from None


def compressed(report: dict[str, Any]) -> bytes:
    return gzip.compress(json.dumps(report, ensure_ascii=False).encode(), mtime=0)


def _submitter(config: Config) -> str:
    return config.server.domains[0].lower()


async def send_reports(
    config: Config, store: TlsRptStore, resolver: Resolver, outbound: Outbound, *,
    until: datetime, now: datetime | None = None, retries: PostRetries | None = None,
) -> list[SentReport]:
    """Report every unreported row before ``until`` (module docstring); a failed
    POST goes to ``retries`` when given."""
    now = now or datetime.now(UTC)
    rows = await store.unreported(until)
    if not rows:
        return []
    by_domain: dict[str, list[TlsResult]] = {}
    for r in rows:
        by_domain.setdefault(r.policy_domain, []).append(r)
    submitter = _submitter(config)
    organization = config.tlsrpt.organization or submitter
    contact = config.tlsrpt.contact or f"postmaster@{submitter}"
    sender = f"postmaster@{submitter}"
    sent: list[SentReport] = []
    done: list[int] = []
    for domain, results in sorted(by_domain.items()):
        try:
            ruas = parse_tlsrpt_txt(await resolver.query(f"_smtp._tls.{domain}", "TXT"))
        except DnsTempError as exc:
            log.info("tlsrpt: %s: _smtp._tls lookup failed (%s); kept for the next run", domain, exc)
            continue
        done += [r.id for r in results]
        mailto = [u[len("mailto:"):] for u in ruas if u.lower().startswith("mailto:")]
        mailto = [a for a in mailto if "@" in a]
        https = [u for u in ruas if u.lower().startswith("https://")]
        if not mailto and not https:
            continue  # no report wanted
        start = min(r.at for r in results).replace(hour=0, minute=0, second=0, microsecond=0)
        end = min(until, max(r.at for r in results).replace(hour=0, minute=0, second=0, microsecond=0)
                  + timedelta(days=1))
        report_id = f"{start.strftime('%Y%m%d')}.{secrets.token_hex(6)}@{submitter}"
        report = build_report(results, domain=domain, organization=organization, contact=contact,
                              report_id=report_id, start=start, end=end)
        if mailto:
            data = report_message(report, domain=domain, submitter=submitter, sender=sender,
                                  recipients=mailto, now=now)
            await outbound.enqueue(sender, mailto, data, origin="tlsrpt")
            log.info("tlsrpt: report %s for %s queued to %s", report_id, domain, ", ".join(mailto))
        posted: list[str] = []
        for url in https:
            try:
                await post_report(url, compressed(report), resolver, config.outbound.ca_file,
                                  config.outbound.mta_sts_timeout)
            except PostError as exc:
                log.warning("tlsrpt: report %s for %s not posted: %s%s", report_id, domain, exc,
                            "; will try again" if retries is not None else "")
                if retries is not None:
                    retries.add(url, compressed(report), f"{report_id} for {domain}", now)
            else:
                log.info("tlsrpt: report %s for %s posted to %s", report_id, domain, url)
                posted.append(url)
        sent.append(SentReport(domain, tuple(mailto), report, tuple(posted)))
    await store.mark_reported(done, now)
    return sent


def previous_day_end(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


async def report_loop(
    config: Config, store: TlsRptStore, resolver: Resolver, outbound: Outbound,
    cluster: Cluster | None = None, interval: float = 3600.0,
) -> None:
    """The daily run: past ``tlsrpt.send_hour`` UTC, report the days before today;
    reported rows older than ``RETENTION`` are deleted. With several nodes on one
    database, one node per day does it (``Cluster.run_once``). Failed POSTs are
    tried again in between (``PostRetries``)."""
    retries = PostRetries()
    while True:
        now = datetime.now(UTC)
        if len(retries):
            try:
                await retries.run_due(resolver, config.outbound.ca_file, config.outbound.mta_sts_timeout, now)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("tlsrpt: retrying reports failed")
        if config.tlsrpt.send_reports and now.hour >= config.tlsrpt.send_hour:
            until = previous_day_end(now)

            async def job(now: datetime = now, until: datetime = until) -> None:
                await send_reports(config, store, resolver, outbound, until=until, now=now, retries=retries)
                await store.purge(now - RETENTION)

            try:
                if cluster is None:
                    await job()
                else:
                    await cluster.run_once("tlsrpt-reports", until.date().isoformat(), job)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("tlsrpt: daily reports failed")
        due = retries.next_due()
        wait = interval if due is None else max(1.0, min(interval, (due - datetime.now(UTC)).total_seconds()))
        await asyncio.sleep(wait)


# -- reports sent to us -------------------------------------------------------------


class ReportError(ValueError):
    """Mail to our rua that holds no readable TLS report."""


def _report_json(message: email.message.Message) -> bytes:
    for part in message.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        name = (part.get_filename() or "").lower()
        if ctype in ("application/tlsrpt+gzip", "application/gzip") or name.endswith(".json.gz"):
            raw = part.get_payload(decode=True)
            if isinstance(raw, bytes):
                try:
                    with gzip.GzipFile(fileobj=io.BytesIO(raw)) as fh:
                        data = fh.read(MAX_REPORT_SIZE + 1)
                except (OSError, EOFError) as exc:
                    raise ReportError(f"bad gzip: {exc}") from None
                if len(data) > MAX_REPORT_SIZE:
                    raise ReportError("report too large")
                return data
        if ctype in ("application/tlsrpt+json", "application/json") or name.endswith(".json"):
            raw = part.get_payload(decode=True)
            if isinstance(raw, bytes):
                return raw[: MAX_REPORT_SIZE + 1]
    raise ReportError("no application/tlsrpt+gzip or +json part")


def _when(text: Any) -> datetime:
    if not isinstance(text, str):
        raise ReportError("date-range missing")
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ReportError(f"bad datetime {text[:40]!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def parse_report(data: bytes, received_at: datetime) -> ReceivedReport:
    """The summary of a section 4.4 report; ``ReportError`` when it is not one."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ReportError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("policies"), list):
        raise ReportError("no policies")
    dates = _mapping(doc.get("date-range"))
    success = failure = 0
    domains: list[str] = []
    for entry in doc["policies"]:
        if not isinstance(entry, dict):
            raise ReportError("bad policy entry")
        policy, summary = _mapping(entry.get("policy")), _mapping(entry.get("summary"))
        domain = str(policy.get("policy-domain", ""))[:255]
        if domain and domain not in domains:
            domains.append(domain)
        ok = summary.get("total-successful-session-count", 0)
        bad = summary.get("total-failure-session-count", 0)
        if not isinstance(ok, int) or not isinstance(bad, int):
            raise ReportError("bad summary counts")
        success, failure = success + ok, failure + bad
    return ReceivedReport(
        id=0, received_at=received_at, organization=str(doc.get("organization-name", ""))[:255],
        report_id=str(doc.get("report-id", ""))[:255], start=_when(dates.get("start-datetime")),
        end=_when(dates.get("end-datetime")), policy_domains=tuple(domains), success=success,
        failure=failure, body=data.decode("utf-8", "replace"),
    )


def parse_report_message(message: bytes, received_at: datetime | None = None) -> ReceivedReport:
    parsed = email.message_from_bytes(message, policy=email.policy.default)
    return parse_report(_report_json(parsed), received_at or datetime.now(UTC))
