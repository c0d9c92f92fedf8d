"""Outbound delivery: enqueueing, the delivery worker, routing, retries, notices.

Implements the sending side of RFC 5321: MX lookup with fall-back to the
address records of the domain (section 5.1; a null MX, RFC 7505, fails at
once), hosts tried in preference order, opportunistic STARTTLS (RFC 3207,
RFC 7435; ``outbound.require_tls`` domains refuse plaintext), MTA-STS (RFC
8461) and DANE (RFC 7672) as ``mailserver.smtp.tlspolicy`` plans them, every
TLS outcome recorded for TLS-RPT (RFC 8460), per-recipient
replies (section 4.2.5), retries with exponential back-off for temporary
failures until ``outbound.max_queue_days`` (section 4.5.4.1), one delay
notice and RFC 3464 bounces (``mailserver.smtp.dsn``).

Theory of operation
-------------------
``Outbound.enqueue`` signs the message once (``OutboundSigner``; retries send
the same bytes), writes it durably to the queue and wakes the worker.

``QueueRunner`` is one asyncio task. Each round it claims due messages
(``OutboundQueue.claim``: leased to this node for ``outbound.lease`` seconds,
renewed each round while the delivery runs, released once its outcome is
recorded; on PostgreSQL ``FOR UPDATE SKIP LOCKED``, so several nodes working
one queue never take the same message, and a dead node's messages are taken
over when its leases end) and starts one task per message not already
in flight (at most ``outbound.max_concurrent``), then sleeps until the
earliest ``next_attempt_at``, at most ``outbound.poll_interval`` seconds, or
until woken by ``enqueue``. Because every round re-reads the database, changes
made by ``mailserver queue`` in another process take effect within one poll.

One message is handled as follows:

1. an operator bounce request fails all queued recipients (5.0.0);
2. queued recipients are grouped by domain; each domain gets one SMTP
   transaction and its outcomes are committed in one database transaction
   right after the remote host answered (a 250 is recorded before anything
   else happens, so a restart never sends it again);
3. temporary failures get ``next_attempt_at = now + min(base * 2**n, cap)``,
   or fail with 4.4.7 once the message is older than ``max_queue_days``;
4. failed recipients not yet notified get one bounce, then are marked
   notified; if recipients are still waiting past ``delay_warning_hours`` the
   sender gets one delay notice;
5. the message is removed when nothing is left to do.

A notice to a local sender goes straight into their INBOX; to a remote sender
it is queued with the null sender. A message with the null sender (a bounce
itself) is never bounced (RFC 5321 section 4.5.5 / RFC 3464 section 1).
"""

from __future__ import annotations

import _ssl
import asyncio
import contextlib
import ipaddress
import logging
import re
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, Protocol

import aiosmtplib

from mailserver.cluster import node_id
from mailserver.config import Config, ConfigError, parse_hostport
from mailserver.directory.routing import Router as AddressRouter
from mailserver.smtp import dsn
from mailserver.smtp.hooks import OutboundSigner
from mailserver.smtp.mtasts import MtaSts, verifying_context
from mailserver.smtp.tlspolicy import DANE, NONE, STS, HopTls, TlsPolicies
from pki.dane import verify_chain
from policy.dns import DnsTempError, Resolver, build_dnssec_resolver, lookup_addresses, lookup_mx
from storage import headers
from storage.api import Account, MailStore
from storage.queue import OutboundQueue, Outcome, QueuedMessage, QueuedRecipient, RecipientState
from storage.tlsrpt import SUCCESS, TlsResult, TlsRptStore

log = logging.getLogger(__name__)

STOP_GRACE: Final = 5.0
"""Seconds ``stop`` lets deliveries in progress finish before cancelling them."""
_ENHANCED: Final = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})\b")


def utcnow() -> datetime:
    return datetime.now(UTC)


def from_domain(message: bytes) -> str:
    """Domain of the first address in the From header field, "" if none."""
    for addr in headers.from_addresses(message):
        if "@" in addr:
            return addr.rpartition("@")[2].lower()
    return ""


class EnqueueObserver(Protocol):
    """Told of every message ``Outbound.enqueue`` queued (metrics), by the
    ``Outbound`` itself; must be quick and never raise."""

    def enqueued(self, queue_id: int) -> None: ...


class Outbound:
    """Entry point for protocol handlers: sign, queue durably, wake the worker."""

    def __init__(self, queue: OutboundQueue, signer: OutboundSigner) -> None:
        self.queue = queue
        self.signer = signer
        self.runner: QueueRunner | None = None
        self._observers: list[EnqueueObserver] = []

    def observe(self, observer: EnqueueObserver) -> None:
        """Call ``observer`` on every message queued from now on."""
        self._observers.append(observer)

    async def enqueue(
        self, sender: str, recipients: Sequence[str], data: bytes, *, origin: str, account: str = ""
    ) -> int:
        """Durable on return. Signing happens here, exactly once (see hooks)."""
        signed = await asyncio.to_thread(self.signer.sign, data, from_domain(data))
        queue_id = await self.queue.enqueue(sender, recipients, signed, origin=origin, account=account)
        for observer in self._observers:
            observer.enqueued(queue_id)
        if self.runner is not None:
            self.runner.wake()
        return queue_id


# -- routing ---------------------------------------------------------------------


class PermanentRouteError(Exception):
    """The domain cannot receive mail (null MX, no address): RFC 3463 code in ``status``."""

    def __init__(self, status: str, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


@dataclass(frozen=True, slots=True)
class Hop:
    name: str
    """Host name for logs, Remote-MTA and TLS SNI."""
    address: str
    port: int
    smarthost: bool = False
    mx: bool = False
    """Found through MX (or the implicit MX): MTA-STS and DANE apply (tlspolicy.py)."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """The reply for one recipient of one SMTP transaction."""

    code: int
    status: str
    text: str
    remote: str

    @property
    def diagnostic(self) -> str:
        return f"smtp; {self.code} {self.text}".strip() if self.code else f"x-local; {self.text}"


def _status_of(code: int, text: str) -> str:
    match = _ENHANCED.match(text)
    if match and match.group(1) == str(code)[0]:
        return match.group(0)
    return f"{str(code)[0]}.0.0" if code >= 400 else "2.0.0"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


class Router:
    """Where mail for a domain goes: smarthost, static route, MX, or A/AAAA."""

    def __init__(self, config: Config, resolver: Resolver) -> None:
        settings = config.outbound
        self._settings = settings
        self._resolver = resolver
        try:
            self._relay = parse_hostport(settings.relay_host) if settings.relay_host else None
            self._static = {
                d.lower().rstrip("."): parse_hostport(v) for d, v in settings.static_routes.items()
            }
        except ValueError as exc:
            raise ConfigError(f"{config.source}: outbound: {exc}") from None

    async def hops(self, domain: str) -> list[Hop]:
        if self._relay is not None:
            host, port = self._relay
            return [Hop(host, address, port, smarthost=True) for address in await self._addresses(host)]
        static = self._static.get(domain)
        if static is not None:
            host, port = static
            return [Hop(host, address, port) for address in await self._addresses(host)]
        mx = await lookup_mx(self._resolver, domain)
        if len(mx) == 1 and mx[0][1] in ("", "."):
            raise PermanentRouteError("5.1.10", f"{domain} accepts no mail (null MX, RFC 7505)")
        names = [host for _, host in mx if host not in ("", ".")] or [domain]
        hops: list[Hop] = []
        for name in names:
            for address in await self._addresses(name):
                hops.append(Hop(name, address, self._settings.port, mx=True))
        if not hops:
            if mx:
                raise DnsTempError(f"no address for the MX hosts of {domain}")
            raise PermanentRouteError("5.1.2", f"{domain} has no MX or address record")
        return hops

    async def _addresses(self, host: str) -> list[str]:
        if _is_ip(host):
            return [host.strip("[]")]
        return await lookup_addresses(self._resolver, host)


# -- one SMTP transaction ----------------------------------------------------------


class _HopFailedError(Exception):
    """This host could not take the mail now; try the next one."""

    def __init__(self, attempt: Attempt) -> None:
        super().__init__(attempt.text)
        self.attempt = attempt


class _DowngradeError(Exception):
    """A ``testing`` policy's checks failed on this hop: try it again without them."""


def tls_failure(exc: BaseException) -> tuple[str, str]:
    """RFC 8460 section 4.3.2.1 result type and text for a failed handshake."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            code = seen.verify_code
            text = seen.verify_message or str(seen)
            if code == 62:  # X509_V_ERR_HOSTNAME_MISMATCH
                return "certificate-host-mismatch", text
            if code in (9, 10):  # X509_V_ERR_CERT_NOT_YET_VALID, X509_V_ERR_CERT_HAS_EXPIRED
                return "certificate-expired", text
            if code in (2, 18, 19, 20, 21):  # unknown issuer, self-signed, untrusted chain
                return "certificate-not-trusted", text
            return "validation-failure", text
        seen = seen.__cause__ or seen.__context__
    return "validation-failure", f"{exc.__class__.__name__}: {exc}"


def peer_chain(smtp: aiosmtplib.SMTP) -> list[bytes]:
    """The certificates the server sent, leaf first, DER (for DANE-TA, RFC 7672 3.1.2)."""
    obj = smtp.transport.get_extra_info("ssl_object") if smtp.transport is not None else None
    if obj is None:
        return []
    getter = getattr(obj, "get_unverified_chain", None)  # public from Python 3.13
    if getter is None:
        inner = getattr(obj, "_sslobj", None)
        getter = getattr(inner, "get_unverified_chain", None)
    if getter is not None:
        chain = getter() or []
        return [c if isinstance(c, bytes) else c.public_bytes(_ssl.ENCODING_DER) for c in chain]
    leaf = obj.getpeercert(binary_form=True)
    return [leaf] if leaf else []


def _client_tls_context() -> ssl.SSLContext:
    # Opportunistic TLS (RFC 7435): encrypt without authenticating the peer.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class Deliverer:
    """Delivers one message to one hop for a list of recipients."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._settings = config.outbound
        self._require_tls = {d.lower().rstrip(".") for d in config.outbound.require_tls}
        self._tls = _client_tls_context()
        self._verify = verifying_context(config.outbound.ca_file)
        """MTA-STS: chain to ``outbound.ca_file`` (or the system store) and host name (RFC 8461 4.2)."""
        self._relay_password: str | None = None

    def _password(self) -> str:
        if self._relay_password is None:
            path = self._settings.relay_password_file
            self._relay_password = (
                Path(path).read_text(encoding="utf-8").splitlines()[0].strip() if path else ""
            )
        return self._relay_password

    async def send(
        self,
        hop: Hop,
        domain: str,
        sender: str,
        recipients: Sequence[str],
        data: bytes,
        rule: HopTls | None = None,
        results: list[TlsResult] | None = None,
    ) -> list[Attempt]:
        """One SMTP transaction; one Attempt per recipient, in order.
        Raises ``_HopFailedError`` when the host could not be used at all.
        ``rule`` is the hop's TLS rule (tlspolicy.py); outcomes go to ``results``."""
        rule = rule or HopTls()
        results = results if results is not None else []
        try:
            return await self._send(hop, domain, sender, recipients, data, rule, results)
        except _DowngradeError:
            # RFC 8461 section 5 ("testing"): the failure is reported; deliver as without a policy.
            return await self._send(hop, domain, sender, recipients, data, rule.opportunistic(), results)

    async def _send(
        self,
        hop: Hop,
        domain: str,
        sender: str,
        recipients: Sequence[str],
        data: bytes,
        rule: HopTls,
        results: list[TlsResult],
    ) -> list[Attempt]:
        remote = hop.name
        smtp = aiosmtplib.SMTP(
            hostname=hop.address,
            port=hop.port,
            local_hostname=self._config.server.hostname,
            timeout=self._settings.timeout,
            start_tls=False,
            use_tls=False,
        )
        try:
            try:
                await smtp.connect()
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                raise _HopFailedError(
                    Attempt(0, "4.4.1", f"cannot connect to {remote}: {exc}", remote)
                ) from None
            try:
                return await self._transaction(smtp, hop, domain, sender, recipients, data, rule, results)
            except (_HopFailedError, _DowngradeError):
                raise
            except aiosmtplib.SMTPResponseException as exc:
                if exc.code >= 500:
                    # A permanent refusal of the whole transaction (MAIL FROM, DATA).
                    attempt = Attempt(exc.code, _status_of(exc.code, exc.message), exc.message, remote)
                    return [attempt] * len(recipients)
                raise _HopFailedError(
                    Attempt(exc.code, _status_of(exc.code, exc.message), exc.message, remote)
                ) from None
            except (aiosmtplib.SMTPException, OSError, TimeoutError, ssl.SSLError) as exc:
                raise _HopFailedError(
                    Attempt(0, "4.4.2", f"connection to {remote} failed: {exc}", remote)
                ) from None
        finally:
            if smtp.is_connected:
                try:
                    await smtp.quit()
                except (aiosmtplib.SMTPException, OSError, TimeoutError):
                    smtp.close()

    async def _starttls(
        self, smtp: aiosmtplib.SMTP, hop: Hop, rule: HopTls, results: list[TlsResult]
    ) -> None:
        """STARTTLS as ``rule`` demands (tlspolicy.py); raises ``_HopFailedError``
        (enforced) or ``_DowngradeError`` (testing) when the checks fail."""
        remote = hop.name
        sni = None if _is_ip(hop.name) else hop.name
        if rule.kind == STS:
            try:
                await smtp.starttls(tls_context=self._verify, server_hostname=hop.name)
            except (ssl.SSLError, aiosmtplib.SMTPException, OSError) as exc:
                result, text = tls_failure(exc)
                rule.report(results, hop, result, text)
                if rule.enforce:
                    # RFC 8461 section 4.2: no valid TLS, no delivery (X.7.5 cryptographic failure).
                    raise _HopFailedError(
                        Attempt(0, "4.7.5", f"{remote}: TLS required by MTA-STS failed: {text}", remote)
                    ) from None
                raise _DowngradeError from None
            rule.report(results, hop, SUCCESS)
            return
        try:
            await smtp.starttls(tls_context=self._tls, server_hostname=sni)
        except (ssl.SSLError, OSError) as exc:
            rule.report(results, hop, "validation-failure", f"TLS handshake failed: {exc}")
            raise
        if rule.kind == DANE and rule.authenticate:
            problem = verify_chain(peer_chain(smtp), rule.tlsa, [hop.name])
            if problem is not None:
                rule.report(results, hop, "validation-failure", problem)
                # RFC 7672 section 2.2: authenticated TLS is mandatory; defer.
                raise _HopFailedError(Attempt(0, "4.7.5", f"{remote}: DANE: {problem}", remote))
        rule.report(results, hop, SUCCESS)

    async def _transaction(
        self,
        smtp: aiosmtplib.SMTP,
        hop: Hop,
        domain: str,
        sender: str,
        recipients: Sequence[str],
        data: bytes,
        rule: HopTls,
        results: list[TlsResult],
    ) -> list[Attempt]:
        remote = hop.name
        await smtp.ehlo()
        relay_auth = hop.smarthost and bool(self._settings.relay_username)
        tls_required = relay_auth or domain in self._require_tls or rule.enforce
        if smtp.supports_extension("starttls"):
            await self._starttls(smtp, hop, rule, results)
            await smtp.ehlo()
        else:
            if rule.kind != NONE:
                rule.report(results, hop, "starttls-not-supported")
            if tls_required:
                # RFC 3463 X.7.10 "Encryption needed"; temporary, another host may offer it.
                raise _HopFailedError(Attempt(0, "4.7.10", f"{remote} does not offer STARTTLS", remote))
        if hop.smarthost and self._settings.relay_username:
            await smtp.login(self._settings.relay_username, self._password())
        utf8 = not sender.isascii() or any(not r.isascii() for r in recipients)
        options: list[str] = []
        if utf8:
            if not smtp.supports_extension("smtputf8"):
                # RFC 6531 section 3.4: the message cannot be delivered.
                text = f"{remote} does not support SMTPUTF8"
                return [Attempt(0, "5.6.7", text, remote)] * len(recipients)
            options.append("SMTPUTF8")
        if not data.isascii() and smtp.supports_extension("8bitmime"):
            options.append("BODY=8BITMIME")
        if smtp.supports_extension("size"):
            options.append(f"SIZE={len(data)}")
        await smtp.mail(sender, options=options, encoding="utf-8" if utf8 else "ascii")
        attempts: list[Attempt | None] = []
        for rcpt in recipients:
            try:
                reply = await smtp.rcpt(rcpt, encoding="utf-8" if utf8 else "ascii")
            except aiosmtplib.SMTPRecipientRefused as exc:
                attempts.append(Attempt(exc.code, _status_of(exc.code, exc.message), exc.message, remote))
            else:
                attempts.append(None if reply.code < 400 else Attempt(
                    reply.code, _status_of(reply.code, reply.message), reply.message, remote))
        if all(a is not None for a in attempts):
            await smtp.rset()
            return [a for a in attempts if a is not None]
        try:
            reply = await smtp.data(data)
        except aiosmtplib.SMTPDataError as exc:
            failure = Attempt(exc.code, _status_of(exc.code, exc.message), exc.message, remote)
            return [a if a is not None else failure for a in attempts]
        accepted = Attempt(reply.code, _status_of(reply.code, reply.message), reply.message, remote)
        return [a if a is not None else accepted for a in attempts]


# -- the worker ------------------------------------------------------------------


class QueueRunner:
    """The delivery worker (see module docstring). ``start``/``stop`` with the app."""

    def __init__(
        self,
        config: Config,
        queue: OutboundQueue,
        store: MailStore,
        resolver: Resolver,
        outbound: Outbound,
        tlsrpt: TlsRptStore | None = None,
    ) -> None:
        self._config = config
        self._settings = config.outbound
        self._queue = queue
        self._store = store
        self._outbound = outbound
        self._router = Router(config, resolver)
        self._deliverer = Deliverer(config)
        self._tlsrpt = tlsrpt
        """Where TLS outcomes are recorded (RFC 8460); None: not recorded."""
        sts = None
        if self._settings.mta_sts:
            sts = MtaSts(resolver, config.data_dir / "mta-sts", ca_file=self._settings.ca_file,
                         port=self._settings.mta_sts_port, timeout=self._settings.mta_sts_timeout)
        self._policies = TlsPolicies(sts, build_dnssec_resolver(config.dns), self._settings.port)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._cooldown: dict[int, float] = {}
        """Message id -> monotonic time before which a message that raised is left alone."""
        self._slots = asyncio.Semaphore(max(1, self._settings.max_concurrent))
        self.node = node_id()
        """Who holds this runner's leases on queued messages (several nodes, one queue)."""
        self._lease = timedelta(seconds=max(1.0, self._settings.lease))
        outbound.runner = self

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbound-queue")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        inflight = list(self._inflight.values())
        if inflight:
            # Let transactions in progress finish and record their 250s, so a
            # restart does not send those messages again.
            await asyncio.wait(inflight, timeout=STOP_GRACE)
        for t in inflight:
            t.cancel()
        await asyncio.gather(task, *inflight, return_exceptions=True)
        self._inflight.clear()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.run_once()
                delay = await self._sleep_time()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbound: queue round failed")
                delay = self._settings.poll_interval
            try:
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def _sleep_time(self) -> float:
        poll = max(0.01, self._settings.poll_interval)
        next_due = await self._queue.next_due()
        if next_due is None:
            return poll
        wait = (next_due - utcnow()).total_seconds()
        # Due already: in flight (its task wakes us when done) or cooling down.
        return poll if wait <= 0 else min(poll, max(0.01, wait))

    async def run_once(self) -> None:
        """Start work on every due message not already in flight."""
        clock = time.monotonic()
        self._cooldown = {k: v for k, v in self._cooldown.items() if v > clock}
        now = utcnow()
        if self._inflight:
            # Deliveries still running keep their leases (a dead node's lapse).
            await self._queue.renew(list(self._inflight), node=self.node, until=now + self._lease)
        claimed = await self._queue.claim(
            now, node=self.node, lease=self._lease, limit=max(1, self._settings.max_concurrent) * 4
        )
        for message in claimed:
            if message.id in self._inflight or message.id in self._cooldown:
                continue
            task = asyncio.create_task(self._guarded(message), name=f"outbound-{message.id}")
            self._inflight[message.id] = task

    async def _guarded(self, message: QueuedMessage) -> None:
        try:
            async with self._slots:
                await self.process(message)
        except asyncio.CancelledError:
            raise
        except Exception:
            # A local fault (spool file unreadable, store down): leave the
            # message alone for a while instead of retrying in a tight loop.
            log.exception("outbound: message %d failed", message.id)
            self._cooldown[message.id] = time.monotonic() + max(1.0, self._settings.retry_base)
        finally:
            self._inflight.pop(message.id, None)
            self.wake()
        with contextlib.suppress(Exception):  # a lapsed lease ends the claim anyway
            await self._queue.release(message.id, node=self.node)

    # -- one message ---------------------------------------------------------
    def _expires_at(self, message: QueuedMessage) -> datetime:
        return message.created_at + timedelta(days=self._settings.max_queue_days)

    def _backoff(self, recipient: QueuedRecipient, now: datetime) -> datetime:
        doubling = 2 ** min(recipient.attempts, 30)
        seconds = min(self._settings.retry_base * doubling, self._settings.retry_cap)
        return now + timedelta(seconds=max(0.0, seconds))

    async def process(self, message: QueuedMessage) -> None:
        now = utcnow()
        pending = [r for r in message.pending if r.next_attempt_at <= now or message.bounce_requested]
        if message.bounce_requested and pending:
            await self._queue.record(
                [
                    Outcome(r.id, RecipientState.FAILED, "5.0.0",
                            "x-local; returned to sender by the postmaster")
                    for r in pending
                ],
                now,
            )
            pending = []
        if pending:
            data = await self._queue.read(message.id)
            by_domain: dict[str, list[QueuedRecipient]] = {}
            for r in pending:
                by_domain.setdefault(r.domain, []).append(r)
            await asyncio.gather(
                *(self._deliver_domain(message, domain, rcpts, data) for domain, rcpts in by_domain.items())
            )
        await self._notify(message.id)
        if await self._queue.finish(message.id):
            log.info("outbound: message %d done", message.id)

    async def _deliver_domain(
        self, message: QueuedMessage, domain: str, recipients: list[QueuedRecipient], data: bytes
    ) -> None:
        addresses = [r.address for r in recipients]
        attempts: list[Attempt]
        try:
            hops = await self._router.hops(domain)
        except PermanentRouteError as exc:
            attempts = [Attempt(0, exc.status, exc.text, "")] * len(recipients)
        except DnsTempError as exc:
            attempts = [Attempt(0, "4.4.3", f"DNS lookup failed: {exc}", "")] * len(recipients)
        else:
            attempts = []
            last: Attempt | None = None
            results: list[TlsResult] = []
            try:
                planned = await self._policies.plan(domain, hops, results)
                if not planned:
                    # RFC 8461 section 4.1 / RFC 7672 section 2.2: no host may be used now.
                    last = Attempt(0, "4.7.5", "no MX host is usable under the domain's TLS policy", "")
                for hop, rule in planned:
                    try:
                        attempts = await self._deliverer.send(
                            hop, domain, message.sender, addresses, data, rule, results
                        )
                        break
                    except _HopFailedError as failed:
                        last = failed.attempt
                        log.info("outbound: message %d to %s via %s: %s",
                                 message.id, domain, hop.address, last.text)
            finally:
                await self._record_tls(results)
            if not attempts:
                fallback = last or Attempt(0, "4.4.4", "no usable route", "")
                attempts = [fallback] * len(recipients)
        now = utcnow()
        expired = now >= self._expires_at(message)
        outcomes: list[Outcome] = []
        for rcpt, attempt in zip(recipients, attempts, strict=True):
            if 200 <= attempt.code < 300:
                outcomes.append(Outcome(rcpt.id, RecipientState.DELIVERED, attempt.status,
                                        attempt.diagnostic, attempt.remote))
                log.info("outbound: message %d delivered to <%s> via %s", message.id, rcpt.address,
                         attempt.remote)
            elif attempt.code >= 500 or attempt.status.startswith("5"):
                outcomes.append(Outcome(rcpt.id, RecipientState.FAILED, attempt.status,
                                        attempt.diagnostic, attempt.remote))
                log.info("outbound: message %d to <%s> failed: %s", message.id, rcpt.address,
                         attempt.diagnostic)
            elif expired:
                # RFC 3463 X.4.7 "Delivery time expired".
                outcomes.append(Outcome(rcpt.id, RecipientState.FAILED, "4.4.7",
                                        attempt.diagnostic, attempt.remote))
            else:
                outcomes.append(Outcome(rcpt.id, RecipientState.QUEUED, attempt.status,
                                        attempt.diagnostic, attempt.remote, self._backoff(rcpt, now)))
        # One transaction for the whole domain, right after the remote replies.
        await self._queue.record(outcomes, now)

    async def _record_tls(self, results: list[TlsResult]) -> None:
        if not results or self._tlsrpt is None:
            return
        try:
            await self._tlsrpt.record(results)
        except Exception:  # noqa: BLE001 - reporting must never stop delivery
            log.exception("outbound: TLS-RPT results not recorded")

    # -- notices -------------------------------------------------------------
    async def _notify(self, message_id: int) -> None:
        message = await self._queue.get(message_id)
        if message is None:
            return
        failed = [r for r in message.recipients if r.state is RecipientState.FAILED and not r.notified]
        now = utcnow()
        if failed:
            reports = [
                dsn.RecipientReport(r.address, dsn.FAILED, r.status or "5.0.0", r.last_error, r.remote_mta,
                                    r.last_attempt_at)
                for r in failed
            ]
            await self._send_notice(message, reports, now)
            await self._queue.mark_notified([r.id for r in failed])
        warn_hours = self._settings.delay_warning_hours
        waiting = message.pending
        if (
            waiting
            and warn_hours > 0
            and not message.delay_warned
            and now >= message.created_at + timedelta(hours=warn_hours)
        ):
            reports = [
                dsn.RecipientReport(r.address, dsn.DELAYED, r.status if r.status.startswith("4") else "4.0.0",
                                    r.last_error, r.remote_mta, r.last_attempt_at)
                for r in waiting
            ]
            await self._send_notice(message, reports, now)
            await self._queue.mark_delay_warned(message.id)

    async def _send_notice(
        self, message: QueuedMessage, reports: list[dsn.RecipientReport], now: datetime
    ) -> None:
        if not message.sender:
            # Never bounce a bounce (RFC 5321 section 4.5.5).
            log.info("outbound: message %d from <> not deliverable; no notice sent", message.id)
            return
        try:
            original = await self._queue.read(message.id)
        except (KeyError, OSError):
            original = b""
        notice = dsn.build_dsn(
            hostname=self._config.server.hostname,
            recipient=message.sender,
            original=original,
            reports=reports,
            arrival=message.created_at,
            now=now,
            retry_until=self._expires_at(message),
        )
        await deliver_notice(self._config, self._store, self._outbound, message.sender, notice)
        log.info("outbound: %s notice for message %d sent to <%s>",
                 reports[0].action, message.id, message.sender)


async def deliver_notice(
    config: Config, store: MailStore, outbound: Outbound, sender: str, notice: bytes
) -> None:
    """Local sender: straight into their INBOX. Remote: queued with ``<>``.
    Local means a configured domain, or one added with ``mailserver domain add``
    (an alias domain's or an address alias's notice goes to the mailboxes it
    stands for; a forward is not followed)."""
    domain = sender.rpartition("@")[2]
    accounts: list[Account] = []
    if config.is_local_domain(domain):
        account = await store.get_account(sender)
        accounts = [account] if account is not None else []
    else:
        router = AddressRouter(config.server.domains, store)
        await router.refresh()
        if router.local_domain(domain) is None:
            await outbound.enqueue("", [sender], notice, origin="dsn")
            return
    if not accounts:
        router = AddressRouter(config.server.domains, store)
        await router.refresh()
        resolved = await router.resolve(sender)
        accounts = resolved.accounts if resolved is not None else []
    if not accounts:
        log.warning("outbound: notice for unknown local sender <%s> dropped", sender)
        return
    for account in accounts:
        copy = f"Return-Path: <>\r\nDelivered-To: {account.address}\r\n".encode() + notice
        # Past the quota too: a full mailbox is when its owner most needs to hear.
        await store.deliver([account.id], copy, quota=False)
