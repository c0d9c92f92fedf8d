"""What ``mailserver serve`` adds for operators around the protocol services:
metrics wiring, SIGHUP reload, the backup schedule, the daily check notice and
the CRL's upkeep (``mailserver.certs.crl_loop``).

``start_operations(app)`` runs at the end of ``App.start``: it registers the
counters as observers of the store's deliveries, the authenticator and the
outbound queue (``MetricsHooks``; nothing is wrapped or replaced), starts the
metrics endpoint when ``metrics.listen`` is set, and starts the background
loops. ``reload(app)`` is the SIGHUP handler: it loads new TLS certificates
into the live ``SSLContext`` (connections already open keep their session; new
handshakes use the new certificate, and the implicit-TLS listeners need not be
re-bound) and swaps in a pipeline built
from the re-read ``[policy]`` section, with nothing dropped.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailserver.auth import AuthOutcome
from mailserver.config import ConfigError, load
from mailserver.headers import POLICY
from mailserver.ops import metrics
from mailserver.ops.backup import backup_loop
from mailserver.ops.report import ReportError, build_check_report, parse_offset
from pki.tls import server_context
from storage.activity import activity_for
from storage.directory import open_directory

if TYPE_CHECKING:
    from mailserver.app import App

log = logging.getLogger(__name__)

_RETIRE_DELAY = 120.0
"""Seconds an old pipeline's checks live on after a reload, for sessions still using them."""


class MetricsHooks:
    """The counters of ``mailserver.ops.metrics``, fed by the objects they count:
    registered as their observer (``MailStore.observe_deliveries``,
    ``Authenticator.observe``, ``Outbound.observe``), so no method of theirs is
    replaced at run time and their hot paths stay as they are."""

    def delivered(self, recipients: int, seconds: float) -> None:
        metrics.DELIVERIES.inc("stored", amount=float(recipients))
        metrics.DELIVERY_LATENCY.observe(seconds)

    def delivery_failed(self, recipients: int) -> None:
        metrics.DELIVERIES.inc("failed", amount=float(recipients))

    def authenticated(self, outcome: AuthOutcome, seconds: float) -> None:
        metrics.AUTH_LATENCY.observe(seconds)
        status = outcome.status.name.lower()
        metrics.AUTH.inc(status)
        if status in ("failed", "throttled"):
            metrics.AUTH_FAILURES.inc()

    def enqueued(self, queue_id: int) -> None:
        metrics.QUEUED.inc()


def _instrument(app: App) -> None:
    hooks = MetricsHooks()
    app.store.observe_deliveries(hooks)
    app.authenticator.observe(hooks)
    if app.outbound is not None:
        app.outbound.observe(hooks)


def collectors(app: App) -> list[metrics.Collector]:
    async def connections() -> list[metrics._Metric]:
        gauge = metrics.Gauge("mailserver_connections", "Open client connections, by front end.", ["service"])
        for name, count in app.connection_counts().items():
            gauge.set(name, value=float(count))
        return [gauge]

    async def queue() -> list[metrics._Metric]:
        size = metrics.Gauge("mailserver_queue_messages", "Messages in the outbound queue.")
        pending = metrics.Gauge("mailserver_queue_recipients", "Recipients waiting for remote delivery.")
        age = metrics.Gauge("mailserver_queue_oldest_seconds", "Age of the oldest queued message.")
        messages = await app.queue.list()
        now = datetime.now(UTC)
        size.set(value=float(len(messages)))
        pending.set(value=float(sum(len(m.pending) for m in messages)))
        oldest = min((m.created_at for m in messages), default=None)
        age.set(value=(now - oldest).total_seconds() if oldest is not None else 0.0)
        return [size, pending, age]

    async def policy() -> list[metrics._Metric]:
        verdicts = metrics.Counter(
            "mailserver_policy_verdicts_total", "Non-accepting policy verdicts, by check and action.",
            ["check", "action"],
        )
        outcomes = metrics.Counter("mailserver_policy_outcomes_total", "Content policy outcomes at DATA.",
                                   ["action"])
        stats = getattr(getattr(app, "pipeline", None), "stats", {})
        for key, value in dict(stats).items():
            parts = str(key).split(".")
            if parts[0] == "check" and len(parts) == 3:
                verdicts.inc(parts[1], parts[2], amount=float(value))
            elif parts[0] == "action" and len(parts) == 2:
                outcomes.inc(parts[1], amount=float(value))
        return [verdicts, outcomes]

    return [connections, queue, policy]


async def start_operations(app: App) -> None:
    """Metrics, background loops; called at the end of ``App.start``."""
    _instrument(app)
    if app.config.metrics.listen:
        service = metrics.MetricsService(app.config.metrics.listen, collectors(app))
        app.addresses.update(await service.start())
        app.services.append(service)
    if app.config.backup.schedule:
        app.background.append(
            asyncio.create_task(backup_loop(app.config, app.cluster), name="backup-schedule")
        )
    if app.config.report.check_notice:
        app.background.append(asyncio.create_task(check_notice_loop(app), name="check-notice"))
    from mailserver.certs import crl_loop

    # Revocations made by other processes and the CRL's renewal (pki/ca.py).
    app.background.append(asyncio.create_task(crl_loop(app.config, cluster=app.cluster), name="crl"))


# -- SIGHUP ----------------------------------------------------------------------


def reload(app: App) -> list[str]:
    """Reload TLS certificates and the policy configuration; returns what changed.
    A broken new file is logged and the running configuration kept."""
    done: list[str] = []
    config = app.config
    if app.ssl_context is not None:
        try:
            # Validate on a fresh context first: a failed load_cert_chain must never
            # leave the live context with a certificate whose key does not match.
            server_context(config.tls_cert, config.tls_key)
            app.ssl_context.load_cert_chain(config.tls_cert, config.tls_key)
            if app.cert_login is not None and app.cert_login.context is not None:
                app.cert_login.context.load_cert_chain(config.tls_cert, config.tls_key)
            done.append("tls")
        except (OSError, ValueError) as exc:
            log.error("reload: keeping the old TLS certificate: %s", exc)
    if Path(config.source).is_file():
        try:
            fresh = load(config.source)
        except ConfigError as exc:
            log.error("reload: keeping the old configuration: %s", exc)
            return done
        if fresh.policy != config.policy and _swap_policy(app, fresh):
            done.append("policy")
            config = dataclasses.replace(config, policy=fresh.policy)
    workers = getattr(app, "smtp_workers", None)
    if workers is not None and done:  # they read certificates and [policy] as they start
        app.background.append(asyncio.get_running_loop().create_task(workers.restart(config)))
        done.append("smtp workers")
    log.info("reload: %s", ", ".join(done) or "nothing changed")
    return done


def _swap_policy(app: App, fresh: Any) -> bool:
    pipeline: Any = getattr(app, "pipeline", None)
    if pipeline is None:
        return False
    from policy.pipeline import Pipeline

    try:
        new = Pipeline.from_settings(fresh.policy, resolver=app.resolver, data_dir=app.config.data_dir,
                                     local_domains=app.config.server.domains)
    except Exception:
        log.exception("reload: the new [policy] section cannot be used; keeping the old one")
        return False
    old_checks = pipeline.checks
    # Swap in place: every service holds this object, and sessions mid-check keep
    # iterating the old list, whose checks are closed only later.
    pipeline.settings, pipeline.checks, pipeline.limits = new.settings, new.checks, new.limits
    app.config = dataclasses.replace(app.config, policy=fresh.policy)

    async def retire() -> None:
        await asyncio.sleep(_RETIRE_DELAY)
        for check in old_checks:
            try:
                await check.close()
            except Exception:
                log.exception("reload: closing an old policy check failed")

    app.background.append(asyncio.create_task(retire(), name="policy-retire"))
    return True


# -- the daily check notice (Điều 6 khoản 6) ---------------------------------------


def _notice(head: str, agency_name: str, mailbox: str, day: date, opens: int, need: int, sender: str,
            hostname: str) -> bytes:
    msg = EmailMessage(policy=POLICY)
    msg["From"] = f"Hệ thống thư điện tử tỉnh Đồng Nai <{sender}>"
    msg["To"] = head
    msg["Subject"] = (
        f"Hộp thư {mailbox} chưa được kiểm tra đủ {need} lần ngày {day:%d/%m/%Y} / "
        f"Agency mailbox not checked {need} times on {day}"
    )
    msg["Date"] = email.utils.format_datetime(datetime.now(UTC))
    msg["Message-ID"] = email.utils.make_msgid("checks", domain=hostname)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(
        f"Kính gửi Thủ trưởng {agency_name},\n\n"
        f"Ngày {day:%d/%m/%Y}, hộp thư điện tử của cơ quan ({mailbox}) được kiểm tra {opens} lần "
        "(có người đọc thư hoặc đổi cờ thư; đồng bộ chạy nền không được tính). "
        f"Theo Quyết định số 70/2009/QĐ-UBND, Điều 6 khoản 6, hộp thư cơ quan cần được kiểm tra "
        f"tối thiểu {need} lần trong ngày để hồi đáp kịp thời.\n\n"
        f"Dear head of {agency_name},\n\n"
        f"on {day} the agency mailbox {mailbox} was checked {opens} time(s) (someone read a message or "
        "changed a flag; background sync does not count); Decision 70/2009 "
        f"Article 6(6) asks for at least {need} checks a day.\n\n"
        "-- \nSở Thông tin và Truyền thông tỉnh Đồng Nai\n"
    )
    return msg.as_bytes()


async def send_check_notices(app: App, day: date) -> list[str]:
    """Mail each head whose agency mailbox was not checked often enough on ``day``;
    each notice goes out once (``record_notice``). Returns the agency codes."""
    directory = open_directory(app.store)
    report = await build_check_report(app.config, directory, activity_for(app.store), day)
    sent: list[str] = []
    domain = app.config.server.domains[0]
    key = datetime(day.year, day.month, day.day, tzinfo=UTC)
    for status in report.unchecked:
        agency = await directory.get_agency(status.code)
        if agency is None or agency.head_person_id is None:
            continue
        head = await directory.get_person(agency.head_person_id)
        account = await app.store.get_account(head.address) if head and head.address else None
        if account is None or not await directory.record_notice(account.id, "agency-check", key):
            continue
        message = _notice(account.address, agency.name, status.mailbox, day, status.opens,
                          report.min_checks, f"postmaster@{domain}", app.config.server.hostname)
        await app.store.deliver([account.id], message, quota=False)  # the server's own notice
        sent.append(status.code)
    return sent


async def _notices(app: App, day: date) -> None:
    codes = await send_check_notices(app, day)
    if codes:
        log.info("check notice sent for %s", ", ".join(codes))


async def check_notice_loop(app: App, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
    """After ``report.check_notice_time`` on each working day, send that day's notices
    (on one node of several, ``app.cluster``)."""
    try:
        tz = parse_offset(app.config.report.utc_offset)
        hour, minute = (int(x) for x in app.config.report.check_notice_time.split(":"))
    except (ReportError, ValueError):
        log.error("report.check_notice_time must be HH:MM; no check notices will be sent")
        return
    while True:
        now = datetime.now(tz)
        due = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if now >= due and now.weekday() < 5:
            day = now.date()
            try:
                job = functools.partial(_notices, app, day)
                await app.cluster.run_once("check-notices", day.isoformat(), job)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("check notices failed")
            due += timedelta(days=1)
        await sleep(min(max((due - datetime.now(tz)).total_seconds(), 1.0), 3600.0))
