"""Inbound (MX) acceptance and local delivery, without sockets or aiosmtpd.

Implements the decisions of RFC 5321 an MX makes at each stage:

* MAIL FROM (section 4.1.1.2): the null reverse-path ``<>`` is accepted
  (section 4.5.5); the syntax is checked here, who may use which sender is
  the policy's (below).
* RCPT TO (section 4.1.1.3): local domains are routed to accounts, matching
  the local part case-insensitively. ``postmaster`` (section 4.5.1: accepted
  from anyone, the null sender included; also without a domain) and
  ``abuse`` (RFC 2142) of every local domain go to the account of that name
  when there is one, else to ``server.postmaster`` (default: the
  ``web.operators`` addresses; without operators, the first account
  created), local ones stored, others queued. Other domains are relaying
  (section 3.6, section 7.1): the policy decides whether this client may
  (below); foreign recipients it accepts go to the outbound queue
  (``Transaction.remote``; 451 4.3.2 if the service was built without one).
* Relay and sender rules are checks of the policy pipeline like the content
  checks (``policy.checks.sender``, which every pipeline runs first): one
  decision path. ``Inbound`` gives it the facts through ``PolicyContext``:
  whether the client may relay (authenticated, or in ``smtp.relay_networks``),
  which domains are ours, and (submission) whom the account may send as.
* Non-ASCII addresses need SMTPUTF8 (RFC 6531 section 3.5).
* DATA (section 4.1.1.4): only CRLF line endings (section 2.3.8), no NUL
  octet (550 5.6.0), and a header section that cannot be read two ways
  (``storage.headers.ambiguity``: 550 5.6.0, on every path, before any check
  reads the From), then the trace fields: ``Return-Path`` (section 4.4) and ``Received`` with the RFC
  3848 / RFC 6531 section 3.7.3 protocol names, prepended to the unchanged
  message; the store makes it durable for every recipient in one call (all or
  none) before the 250 (section 4.1.1.4: "accepted for delivery").
* Sender authentication (``authenticate_sender``, MX only: not for
  authenticated or ``relay_networks`` clients): SPF, DKIM and DMARC (RFC 7208,
  6376, 7489) in ``policy.checks.authentication``; a forged local From or a
  DMARC ``p=reject`` failure is refused, otherwise an Authentication-Results
  field (RFC 8601) is prepended, after deleting any that claims our hostname
  (section 5). The results stay on ``Transaction.auth`` for the policy pipeline.
  ARC chains are verified too, and ``arc.trusted_sealers`` may override a
  DMARC failure (RFC 8617; policy/checks/authentication.py). Each DMARC
  evaluation goes to the report hooks (``ReportHooks.observe``), which count
  it for the aggregate report (RFC 7489 section 7.2, mailserver/ops/dmarc.py).
* Forwarded and expanded copies (``forward set`` forwards; aliases and groups
  with outside members; SRS bounces) carry our Authentication-Results (when
  the MX checked the message) and are ARC-sealed (``pki.arc``, RFC 8617 section
  5.1) before the outbound queue signs them, so the next hop can see that
  SPF/DKIM/DMARC held when the message reached us. Mail tagged as spam is not
  forwarded: it stays in the forwarding account's Junk.
* The policy (``policy.pipeline.Pipeline``; without one, a pipeline of the
  relay and sender rules alone) runs at every stage: connection and MAIL checks after a positive sender
  check (aiosmtpd has no connection hook, so the connection stage runs with
  MAIL, once HELO is known), RCPT checks after a positive routing decision,
  and DATA checks on the message after sender authentication. The direction
  is ``inbound`` for MX clients, ``internal`` for authenticated or
  ``relay_networks`` clients whose recipients are all local, ``submission``
  otherwise. A refusal is answered as the pipeline says (550 5.7.1
  classified or spam, 554 5.7.0 malware, 451 4.3.0 when a check crashed or
  timed out); nothing is stored or queued. One verdict covers every recipient
  (all or none). Before storing, ``X-Policy``, ``X-Spam-*`` and
  ``X-Legacy-Encoding`` fields the client wrote are deleted (a sender must not
  forge our verdict), and the pipeline's own fields follow ``Received``. A
  quarantined message is written durably to the quarantine (``mailserver
  quarantine``) and the client gets 250; a message tagged as spam goes to
  each recipient's ``\\Junk`` folder (RFC 6154). Decision 70/2009/QD-UBND,
  Dieu 6 (no classified documents by e-mail) and Dieu 9 / Dieu 11 (no spam or
  malicious code) are enforced on submitted mail too, including between
  colleagues.

Every decision is a ``policy.codes.Reply`` so the policy pipeline can later
wrap or replace these checks. Exceptions from the store propagate: the
driver answers 451 4.3.0 and logs them with the session id.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import format_datetime
from functools import partial
from typing import TYPE_CHECKING, Final

from mailserver.config import Config, ConfigError
from mailserver.directory.routing import Router
from mailserver.dispatch.groups import GroupRecipients
from mailserver.dispatch.pdfcheck import PdfHooks
from mailserver.dispatch.signing import SmimeHooks
from mailserver.sieve.deliver import Decision, SieveDelivery
from mailserver.sieve.message import MessageView
from mailserver.smtp.hooks import ReportHooks
from mailserver.smtp.outbound_settings import tlsrpt_address
from mailserver.smtp.srs import Srs, is_srs
from pki.arc import ArcSealer
from policy import codes
from policy.aggregate import evaluation_from
from policy.checks.authentication import (
    AuthResults,
    auth_reply,
    authenticate,
    authenticate_sync,
    remove_own_results,
)
from policy.codes import Reply
from policy.context import Direction, EnvelopeInfo, PolicyContext, SendAs, SessionInfo
from policy.dns import Resolver, may_block
from policy.verdict import Outcome
from storage import headers
from storage.api import Account, DeliveryResult, MailStore, OverQuota
from storage.directory import Agency, DirectoryStore, open_directory
from storage.mimeinfo import decode_words
from storage.quarantine import Quarantine
from storage.tlsrpt import TlsRptStore

if TYPE_CHECKING:
    from mailserver.smtp.queue import Outbound
    from policy.pipeline import Pipeline

log = logging.getLogger(__name__)

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# RFC 5321 section 2.3.8: lines end in CRLF; a CR or LF alone is invalid.
_BARE_LINE_ENDING: Final = re.compile(rb"\r(?!\n)|(?<!\r)\n")
# What may appear of a client-chosen name inside a Received field (a domain,
# an address literal); anything else is replaced so the header stays valid.
_UNSAFE_IN_TRACE: Final = re.compile(r"[^A-Za-z0-9.\-_:\[\]]")
POSTMASTER: Final = "postmaster"
ROLES: Final = frozenset({POSTMASTER, "abuse"})
"""Role local parts every local domain accepts (RFC 5321 section 4.5.1, RFC 2142)."""
# Header fields only this server may write: the pipeline's verdict
# (``X-Policy``), the spam score and the legacy-encoding tag. A client's own
# copies are deleted so that mail readers and filters can trust them.
_POLICY_FIELD: Final = re.compile(rb"(?i)(?:x-policy|x-spam-[!-9;-~]*|x-legacy-encoding)[ \t]*:")
JUNK: Final = "\\Junk"
"""RFC 6154 attribute of the folder tagged spam is delivered to."""


@dataclass(frozen=True, slots=True)
class Client:
    """What delivery needs to know about an SMTP session."""

    sid: str
    """Session id: in logs, in the Received ``id`` and in replies."""
    ip: str
    """Client IP address as text (IPv4, or IPv6 without brackets)."""
    helo: str
    """The EHLO/HELO argument as given."""
    esmtp: bool = True
    """True after EHLO, False after HELO."""
    tls: str | None = None
    """``"TLSv1.3 TLS_AES_256_GCM_SHA384"`` once STARTTLS is done, else None."""
    authenticated: str | None = None
    """The account address the client authenticated as, or None."""
    rdns: str | None = None
    """Reverse DNS name of ``ip`` (unverified), or None."""


@dataclass(slots=True)
class Transaction:
    """One mail transaction (MAIL, RCPT..., DATA)."""

    sender: str
    """Reverse-path without brackets; ``""`` for the null sender ``<>``."""
    smtputf8: bool = False
    recipients: list[str] = field(default_factory=list)
    """Forward-paths accepted so far, as the client wrote them."""
    account_ids: list[int] = field(default_factory=list)
    """Distinct account ids of the accepted recipients, in order."""
    auth: AuthResults | None = None
    """SPF/DKIM/DMARC results once DATA was checked on the MX port, else None."""
    remote: list[str] = field(default_factory=list)
    """Accepted recipients in other domains (relayed through the outbound queue)."""
    local_addresses: list[str] = field(default_factory=list)
    """Account addresses of the local recipients (what a quarantine release delivers to)."""
    policy: PolicyContext | None = None
    """The policy pipeline's view of this transaction (None without a pipeline)."""
    held: list[str] = field(default_factory=list)
    """Quarantine reasons from the MAIL and RCPT stages, applied at DATA."""
    size: int = 0
    """The SIZE the client declared in MAIL FROM (RFC 1870), 0 when none."""
    forwards: list[tuple[str, str]] = field(default_factory=list)
    """(forwarding address, outside target): copies sent on with an SRS sender."""
    reports: bool = False
    """A recipient is our TLS-RPT address (``tlsrpt.rua``): the report is parsed and kept."""
    expanded: list[str] = field(default_factory=list)
    """The part of ``remote`` that aliases, groups or SRS bounces put there (not
    recipients the client named): sent on ARC-sealed."""


def split_address(address: str) -> tuple[str, str]:
    """``local@domain`` -> (local, domain); the domain is "" when missing."""
    local, at, domain = address.rpartition("@")
    if not at:
        return address, ""
    return local, domain


def needs_smtputf8(address: str) -> bool:
    return not address.isascii()


def valid_utf8(address: str) -> bool:
    """aiosmtpd decodes arguments with surrogateescape; surrogates mean the
    client sent bytes that are not UTF-8 (RFC 6531 section 3.3 requires UTF-8)."""
    try:
        address.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def find_bare_line_ending(data: bytes) -> int | None:
    """Offset of the first CR not followed by LF or LF not preceded by CR."""
    pairs = data.count(b"\r\n")
    if data.count(b"\r") == pairs and data.count(b"\n") == pairs:
        return None  # every CR and every LF is in a CRLF (three memchr-speed passes)
    match = _BARE_LINE_ENDING.search(data)
    return match.start() if match else None


def parse_networks(values: Iterable[str]) -> tuple[IpNetwork, ...]:
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError as exc:
            raise ConfigError(f"smtp.relay_networks: {exc}") from None
    return tuple(networks)


def client_address(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``ip`` parsed, an IPv4-mapped IPv6 address as the IPv4 one (a dual-stack
    socket reports IPv4 clients so); None when it is not an address."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def in_networks(ip: str, networks: Sequence[IpNetwork]) -> bool:
    addr = client_address(ip)
    return addr is not None and any(addr in net for net in networks)


def _trace_name(name: str) -> str:
    cleaned = _UNSAFE_IN_TRACE.sub("_", name)[:255]
    return cleaned or "unknown"


def _address_literal(ip: str) -> str:
    # RFC 5321 section 4.1.3: IPv6 literals carry the "IPv6:" tag.
    return f"[IPv6:{ip}]" if ":" in ip else f"[{ip}]"


def protocol_name(client: Client, smtputf8: bool) -> str:
    """The ``with`` value of RFC 3848 (ESMTP, ESMTPS, ESMTPA, ESMTPSA) or
    RFC 6531 section 3.7.3 (UTF8SMTP, UTF8SMTPS, UTF8SMTPA, UTF8SMTPSA)."""
    if not client.esmtp:
        return "SMTP"
    base = "UTF8SMTP" if smtputf8 else "ESMTP"
    suffix = ("S" if client.tls else "") + ("A" if client.authenticated else "")
    return base + suffix


def received_header(
    client: Client,
    txn: Transaction,
    *,
    hostname: str,
    message_id: str,
    when: datetime,
) -> bytes:
    """The ``Received`` trace field of RFC 5321 section 4.4, folded, CRLF-ended.

    ``for`` names the recipient only when there is exactly one, so a message
    to several people does not disclose the Bcc recipients to each other.
    """
    tcp_info = _address_literal(client.ip)
    if client.rdns:
        tcp_info = f"{_trace_name(client.rdns)} {tcp_info}"
    lines = [
        f"Received: from {_trace_name(client.helo)} ({tcp_info})",
        f"\tby {hostname} with {protocol_name(client, txn.smtputf8)}"
        + (f" ({client.tls})" if client.tls else "")
        + f" id {message_id}",
    ]
    if len(txn.recipients) == 1:
        lines.append(f"\tfor <{txn.recipients[0]}>;")
    else:
        lines[-1] += ";"
    lines.append(f"\t{trace_date(when)}")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


_DAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_ZERO: Final = timedelta(0)


_AUTH_IN_PLACE: Final = 64 * 1024
"""Largest message whose sender authentication runs on the event loop (static DNS only)."""


def trace_date(when: datetime) -> str:
    """``email.utils.format_datetime(when)``, the date-time of RFC 5322 section
    3.3: the same text, without its timetuple and ``strftime("%z")`` for the
    UTC times SMTP stamps (tests/unit/test_trace_date.py compares both)."""
    offset = when.utcoffset()
    if offset is None or offset != _ZERO:
        return format_datetime(when)
    return (
        f"{_DAYS[when.weekday()]}, {when.day:02d} {_MONTHS[when.month - 1]} {when.year:04d} "
        f"{when.hour:02d}:{when.minute:02d}:{when.second:02d} +0000"
    )


def header_section(data: bytes) -> bytes:
    end = data.find(b"\r\n\r\n")
    return data if end < 0 else data[: end + 2]


def forwarding_loop(data: bytes, txn: Transaction, max_hops: int) -> Reply | None:
    """Loop protection: more than ``max_hops`` Received fields (RFC 5321
    section 6.3), or a message to be forwarded that carries the
    ``Delivered-To`` this server wrote when it forwarded it before."""
    head = b"\r\n" + header_section(data).lower()
    if max_hops and head.count(b"\r\nreceived:") > max_hops:
        return codes.S554_TOO_MANY_HOPS
    if txn.forwards and b"\r\ndelivered-to:" in head:
        seen = {v.strip().lower() for v in headers.field_values(data, "Delivered-To")}
        if any(address in seen for address, _ in txn.forwards):
            return codes.S554_FORWARD_LOOP
    return None


def return_path_header(sender: str) -> bytes:
    """RFC 5321 section 4.4: the final delivery adds the reverse-path."""
    return f"Return-Path: <{sender}>\r\n".encode()


def strip_policy_fields(data: bytes) -> bytes:
    """Delete ``X-Policy``, ``X-Spam-*`` and ``X-Legacy-Encoding`` fields, with
    their folded continuation lines (RFC 5322 section 2.2.3), from the header
    section; the body and every other octet stay as they are."""
    if data.startswith(b"\r\n"):
        return data  # no header section at all
    end = data.find(b"\r\n\r\n")
    head_end = len(data) if end < 0 else end + 2
    if _POLICY_FIELD.search(data, 0, head_end) is None:
        return data
    kept: list[bytes] = []
    dropping = False
    start = 0
    while start < head_end:
        stop = data.find(b"\r\n", start, head_end)
        stop = head_end if stop < 0 else stop + 2
        line = data[start:stop]
        if line[:1] in (b" ", b"\t"):
            if not dropping:
                kept.append(line)
        else:
            dropping = _POLICY_FIELD.match(line) is not None
            if not dropping:
                kept.append(line)
        start = stop
    return b"".join(kept) + data[head_end:]


class Inbound:
    """Acceptance and delivery for the MX port: one instance per service."""

    def __init__(
        self,
        config: Config,
        store: MailStore,
        *,
        resolver: Resolver | None = None,
        outbound: Outbound | None = None,
        pipeline: Pipeline | None = None,
        quarantine: Quarantine | None = None,
        sealer: ArcSealer | None = None,
        reports: ReportHooks | None = None,
    ) -> None:
        self._config = config
        self._store = store
        self._directory: DirectoryStore | None = None
        """The store's directory, looked up once (``_agencies``), not per call."""
        self._sealer = sealer
        """ARC sealing of forwarded and expanded copies; None: sent unsealed."""
        self._reports = reports
        """DMARC aggregate report hooks; None: evaluations are not counted."""
        self._trusted_sealers = frozenset(
            d.strip().lower().rstrip(".") for d in config.arc.trusted_sealers if d.strip()
        )
        self._outbound = outbound
        if pipeline is None:
            from policy.pipeline import Pipeline  # the extraction code only when wanted
            from policy.settings import PolicySettings

            pipeline = Pipeline(PolicySettings(workers=0), [])
        self._pipeline = pipeline
        """The policy: the relay and sender rules, then the content checks given
        (none when the service was built without a pipeline: unit tests)."""
        self._quarantine = quarantine
        """Where quarantined mail goes; None: a quarantine verdict defers (451)."""
        """The outbound queue for trusted relay clients; None: no relaying (451)."""
        self._resolver = resolver
        """DNS for sender authentication; None skips it (unit tests without DNS)."""
        self.smime = SmimeHooks.build(config, store)
        self.pdf = PdfHooks.build(config)
        self._groups = GroupRecipients(config.data_dir, self._agencies)
        self._relay_networks = parse_networks(config.smtp.relay_networks)
        self.router = Router(config.server.domains, store, groups=self._groups.expand)
        """Local and alias domains, aliases, forwards, accounts and groups
        (mailserver/directory/routing.py): refreshed at every MAIL."""
        self.srs = Srs(config.data_dir / "srs.key", config.server.domains[0])
        self._report_address = tlsrpt_address(config.tlsrpt, list(config.server.domains))
        self._tlsrpt: TlsRptStore | None = None
        """TLS reports sent to us (opened at the first one: SMTP worker processes too)."""
        self.sieve = SieveDelivery.build(config, store, outbound=outbound, router=self.router, srs=self.srs,
                                         local_domain=self.local_domain)
        """Sieve filters at final delivery (mailserver/sieve/deliver.py); None when disabled."""

    def local_domain(self, domain: str) -> str | None:
        """The canonical spelling of ``domain`` if it is ours (an alias domain
        gives the domain it stands for), else None."""
        return self.router.local_domain(domain)

    def _local_domains(self) -> tuple[str, ...]:
        return tuple(self.router.local_domains())

    def trusted_relay(self, client: Client) -> bool:
        if client.authenticated is not None:
            return True
        return bool(self._relay_networks) and in_networks(client.ip, self._relay_networks)

    def check_sender(self, sender: str, smtputf8: bool) -> Reply:
        """MAIL FROM syntax (who may use it is the policy's). ``sender`` is
        ``""`` for the null reverse-path."""
        if not valid_utf8(sender):
            return codes.S553_BAD_SENDER_SYNTAX
        if needs_smtputf8(sender) and not smtputf8:
            return codes.S553_NEEDS_SMTPUTF8
        if sender == "":
            return codes.S250_SENDER_OK
        local, domain = split_address(sender)
        if not local or not domain:
            return codes.S553_BAD_SENDER_SYNTAX
        return codes.S250_SENDER_OK

    def direction(self, client: Client, txn: Transaction | None = None) -> Direction:
        """Which way the mail goes, for the checks' ``directions`` setting."""
        if not self.trusted_relay(client):
            return Direction.INBOUND
        if txn is not None and txn.recipients and not txn.remote:
            return Direction.INTERNAL
        return Direction.SUBMISSION

    def policy_context(
        self, client: Client, txn: Transaction, may_send_as: SendAs | None = None
    ) -> PolicyContext:
        """The pipeline's view of ``txn`` (made once, at MAIL FROM), with the
        facts the relay and sender rules need."""
        if txn.policy is None:
            txn.policy = PolicyContext(
                _session_info(client),
                EnvelopeInfo(txn.sender),
                self.direction(client),
                local_domains=self._local_domains(),
                may_relay=self.trusted_relay(client),
                is_local=lambda domain: self.local_domain(domain) is not None,
                may_send_as=may_send_as,
            )
        return txn.policy

    async def open_transaction(
        self, client: Client, sender: str, smtputf8: bool, *, may_send_as: SendAs | None = None
    ) -> tuple[Reply, Transaction | None]:
        """MAIL FROM: the syntax, then the pipeline's connection and MAIL stages
        (the sender rules among them; ``may_send_as``: whom the authenticated
        account may send as, on submission). Returns the reply and, when
        positive, the new transaction."""
        await self.router.refresh()
        reply = self.check_sender(sender, smtputf8)
        if not reply.positive:
            return reply, None
        txn = Transaction(sender=sender, smtputf8=smtputf8)
        ctx = self.policy_context(client, txn, may_send_as)
        for stage in (self._pipeline.check_connect, self._pipeline.check_mail_from):
            outcome = await stage(ctx)
            if not outcome.accepted:
                return outcome.reply, None
            _hold(txn, outcome)
        return reply, txn

    async def add_recipient(self, client: Client, txn: Transaction, recipient: str) -> Reply:
        """RCPT TO: routing (``check_recipient``), then the pipeline's RCPT
        stage; a recipient the pipeline refuses leaves ``txn`` unchanged."""
        before = (
            len(txn.recipients), len(txn.account_ids), len(txn.remote), len(txn.local_addresses),
            len(txn.forwards),
        )
        reply = await self.check_recipient(client, txn, recipient)
        if not reply.positive or len(txn.recipients) == before[0]:
            return reply  # refused, or a duplicate remote recipient: already checked
        ctx = self.policy_context(client, txn)
        outcome = await self._pipeline.check_rcpt(ctx, recipient)
        refusal = None if outcome.accepted else outcome.reply
        if refusal is None and self._outbound is None and len(txn.remote) > before[2]:
            refusal = codes.S451_NO_OUTBOUND  # relaying allowed, but nowhere to queue
        if refusal is not None:
            del txn.recipients[before[0]:], txn.account_ids[before[1]:], txn.remote[before[2]:]
            del txn.local_addresses[before[3]:], txn.forwards[before[4]:]
            txn.expanded[:] = [r for r in txn.expanded if r in txn.remote]
            return refusal
        _hold(txn, outcome)
        ctx.envelope.rcpts.append(recipient)
        return reply

    async def check_recipient(self, client: Client, txn: Transaction, recipient: str) -> Reply:
        """RCPT TO routing. On success the recipient and its account join
        ``txn``; whether the client may relay to a foreign one is the policy's
        (``add_recipient``)."""
        if len(txn.recipients) >= self._config.smtp.max_recipients:
            return codes.S452_TOO_MANY_RECIPIENTS
        if not valid_utf8(recipient):
            return codes.S553_BAD_RECIPIENT_SYNTAX
        if needs_smtputf8(recipient) and not txn.smtputf8:
            return codes.S553_NEEDS_SMTPUTF8
        local, domain = split_address(recipient)
        if not domain and local.lower() == POSTMASTER:
            # RFC 5321 section 4.5.1: "Postmaster" without a domain must work.
            domain = self._config.server.domains[0]
        if not local or not domain:
            return codes.S553_BAD_RECIPIENT_SYNTAX
        ours = self.local_domain(domain)
        if ours is None:
            # Clients the policy lets relay (policy/checks/sender.py) do so
            # through the outbound queue (RFC 5321 section 3.6.1).
            if recipient not in txn.remote:
                txn.recipients.append(recipient)
                txn.remote.append(recipient)
            return codes.S250_RECIPIENT_OK
        if is_srs(local):
            return self._srs_recipient(txn, recipient, local)
        if f"{local}@{ours}".lower() == self._report_address:
            # RFC 8460 section 5.3: reports to our rua need no mailbox (smtp/tlsrpt.py).
            if recipient not in txn.recipients:
                txn.recipients.append(recipient)
            txn.reports = True
            return codes.S250_RECIPIENT_OK
        # The router (mailserver/directory/routing.py) follows forwards, accounts
        # (matched case-insensitively: local parts are case-sensitive in theory,
        # RFC 5321 section 2.4, but never in practice here), address aliases and
        # groups. postmaster@ and abuse@ go to an account or alias of that name
        # when there is one, else to server.postmaster (module docstring).
        res = await self.router.resolve(f"{local}@{ours}")
        if res is None:
            if local.lower() in ROLES:
                return await self._role_recipient(txn, recipient)
            return codes.S550_NO_SUCH_USER
        if res.group and not client.authenticated:
            return codes.S550_GROUP_AUTH_REQUIRED
        outside = bool(res.forwards or res.remote)
        if not res.accounts and (not outside or self._outbound is None):
            if outside:
                return codes.S451_NO_OUTBOUND
            if res.group:
                return codes.S550_GROUP_EMPTY
            return codes.S550_MAILBOX_DISABLED if res.disabled else codes.S550_NO_SUCH_USER
        if not res.group:
            for account in res.accounts:
                full = await self.quota_reply(account, txn.size)
                if full is not None:
                    return full
        for address in res.disabled:
            log.info("rcpt %s: %s is disabled, skipped", recipient, address)
        txn.recipients.append(recipient)
        for account in res.accounts:
            if account.id not in txn.account_ids:
                txn.account_ids.append(account.id)
                txn.local_addresses.append(account.address)
        if self._outbound is not None:
            for member in res.remote:
                if member not in txn.remote:
                    txn.remote.append(member)
                    txn.expanded.append(member)
            for pair in res.forwards:
                if pair not in txn.forwards:
                    txn.forwards.append(pair)
        return codes.S250_RECIPIENT_OK

    def _srs_recipient(self, txn: Transaction, recipient: str, local: str) -> Reply:
        """RCPT TO an SRS address of ours (a bounce of forwarded mail, srs.py):
        relayed to the original sender when the hash holds, else unknown."""
        original = self.srs.reverse(local)
        if original is None:
            log.info("rcpt %s: SRS address forged or expired", recipient)
            return codes.S550_NO_SUCH_USER
        if self._outbound is None:
            return codes.S451_NO_OUTBOUND
        txn.recipients.append(recipient)
        if original not in txn.remote:
            txn.remote.append(original)
            txn.expanded.append(original)
        return codes.S250_RECIPIENT_OK

    async def postmaster_addresses(self) -> list[str]:
        """Who reads postmaster@ and abuse@: ``server.postmaster``, else the
        ``web.operators``, else the first account created."""
        configured = list(self._config.server.postmaster) or list(self._config.web.operators)
        if configured:
            return configured
        accounts = [a for a in await self._store.list_accounts() if not a.disabled]
        return [min(accounts, key=lambda a: a.id).address] if accounts else []

    async def _role_recipient(self, txn: Transaction, recipient: str) -> Reply:
        """RCPT TO postmaster@ or abuse@ a local domain without such an account."""
        reached = False
        for address in await self.postmaster_addresses():
            local, domain = split_address(address)
            ours = self.local_domain(domain)
            if ours is None:
                if self._outbound is not None:
                    reached = True
                    if address not in txn.remote:
                        txn.remote.append(address)
                continue
            account = await self._store.get_account(f"{local}@{ours}")
            if account is None or account.disabled:
                log.warning("server.postmaster: %s has no usable mailbox", address)
                continue
            reached = True
            if account.id not in txn.account_ids:
                txn.account_ids.append(account.id)
                txn.local_addresses.append(account.address)
        if not reached:
            # RFC 5321 section 4.5.1 requires accepting postmaster: a temporary
            # refusal keeps the mail at the sender until an operator fixes this.
            log.error("%s: nobody to deliver to; set server.postmaster or web.operators", recipient)
            return codes.S451_LOCAL_ERROR
        txn.recipients.append(recipient)
        return codes.S250_RECIPIENT_OK

    async def quota_reply(self, account: Account, size: int) -> Reply | None:
        """RCPT: the refusal when the mailbox is full already, or too full for the
        declared SIZE (RFC 1870 section 6.2): ``452 4.2.2``, or ``552 5.2.2`` for a
        message larger than the whole quota (RFC 3463 section 3.3). None: room."""
        whole = (await self._store.quota(account.id)).refusal(max(size, 1))
        if whole is None:
            return None
        log.info("rcpt %s: over quota (%d octets declared)", account.address, size)
        return codes.S552_MAILBOX_FULL if whole else codes.S452_MAILBOX_FULL

    async def _agencies(self) -> list[Agency]:
        if self._directory is None:
            self._directory = open_directory(self._store)
        return await self._directory.list_agencies()

    async def deliver(
        self, client: Client, txn: Transaction, data: bytes, *, message_id: str, when: datetime,
        line_endings_clean: bool = False,
    ) -> tuple[Reply, DeliveryResult | None]:
        """DATA: check the content, add trace fields, store durably for all
        recipients at once. Store faults propagate to the driver (451 4.3.0).
        ``line_endings_clean``: the DATA reader found no bare CR or LF already
        (``protocol.read_data_into``), so the data is not scanned for one again."""
        if not line_endings_clean and find_bare_line_ending(data) is not None:
            return codes.S550_BARE_LINE_ENDING, None
        if b"\x00" in data:
            return codes.S550_NUL_IN_DATA, None
        ambiguous = headers.ambiguity(data)
        if ambiguous is not None:
            # Before any check reads a From (storage/headers.py): the checks,
            # ENVELOPE and every mail reader must see one and the same sender.
            log.info("smtp %s: header section refused: %s", client.sid, ambiguous)
            return codes.S550_AMBIGUOUS_HEADER, None
        if not txn.account_ids and not txn.remote and not txn.forwards and not txn.reports:
            return codes.S503_NEED_RCPT, None
        loop = forwarding_loop(data, txn, self._config.smtp.max_hops)
        if loop is not None:
            log.info("smtp %s: refused, routing loop (%s)", client.sid, loop.text)
            return loop, None
        refusal, auth_header = await self.authenticate_sender(client, txn, data)
        if refusal is not None:
            return refusal, None
        if auth_header:
            data = remove_own_results(data, self._config.server.hostname)
        # Only this server writes its verdict fields; the checks and every
        # copy see the message without the client's forgeries.
        data = strip_policy_fields(data)
        outcome = await self.check_content(client, txn, data)
        if outcome is not None and not outcome.accepted:
            return outcome.reply, None
        if txn.reports:
            await self.keep_report(client, data)
            if not txn.account_ids and not txn.remote and not txn.forwards:
                accepted = codes.S250_DELIVERED.with_text(f"Message accepted for delivery as {message_id}")
                return accepted, DeliveryResult(placed=())
        if outcome is not None and outcome.junk and not outcome.quarantine and not txn.held and txn.forwards:
            # Mail tagged as spam is not sent on: it stays here, in the Junk of
            # the forwarding account (whose owner can still read it), rather
            # than passing spam to the target under our name.
            await self._keep_forwarded(txn)
        # S/MIME after the policy accepted and before DKIM (at enqueue): sign
        # agency mail, or verify an arriving signature (X-Signature-Status).
        data = await self.smime.process(client.authenticated, data)
        local = data
        if client.authenticated and self._config.pki.verify_inbound:
            # Signed mail between colleagues is checked too (RFC 8550 section 3):
            # the local copies say whether the signature holds and is the From's;
            # remote copies leave as the sender made them.
            local = await self.smime.check(data)
        if txn.account_ids:
            # The signatures inside PDF attachments, on the copies stored here (X-PDF-Signature).
            local = await self.pdf.annotate(local)
        received = received_header(client, txn, hostname=self._config.server.hostname,
                                   message_id=message_id, when=when)
        verdict = outcome.header_bytes() if outcome is not None else b""
        if txn.held or (outcome is not None and outcome.quarantine):
            return await self.hold(client, txn, received + verdict + local, auth_header,
                                   outcome, message_id=message_id)
        junk = outcome is not None and outcome.junk
        result = DeliveryResult(placed=())
        decisions: list[Decision] = []
        view: MessageView | None = None
        if txn.account_ids:
            message = return_path_header(txn.sender) + auth_header + received + verdict + local
            # All recipients in one call: durable for all or stored for none; a
            # recipient whose quota it would break refuses it for all (one reply).
            # With Sieve (after the content policy), recipients whose scripts
            # file, flag or redirect get their own copies (mailserver/sieve/deliver.py).
            try:
                if self.sieve is not None:
                    decisions, view = await self.sieve.decide(
                        txn.account_ids, txn.local_addresses, message, sender=txn.sender, sid=client.sid
                    )
                    refused = None if txn.remote or txn.forwards else self.sieve.rejected_by_all(decisions)
                    if refused is not None:
                        log.info("smtp %s: refused by the recipients' Sieve reject: %s", client.sid, refused)
                        return codes.S550_SIEVE_REJECTED.with_text(f"Rejected: {refused}"), None
                    result = await self.sieve.store(decisions, message, when=when, junk=junk)
                else:
                    result = await self._store.deliver(
                        txn.account_ids, message, internal_date=when, special_use=JUNK if junk else None
                    )
            except OverQuota as full:
                log.info("smtp %s: account %d over quota, message of %d octets refused",
                         client.sid, full.account_id, full.size)
                return (codes.S552_MAILBOX_FULL if full.whole else codes.S452_MAILBOX_FULL), None
            if self._reports is not None:
                self._reports.delivered(txn.local_addresses, message)
        if txn.remote and self._outbound is not None:
            # Durable (spool file fsynced, rows committed) before the 250.
            # Return-Path is added by the final delivery, not here (RFC 5321
            # section 4.4). Local copies were stored first: if queueing fails
            # the client retries and local recipients may get a duplicate,
            # which beats losing the remote copies.
            origin = "submission" if client.authenticated else "relay"
            named = [r for r in txn.remote if r not in txn.expanded]
            if named:
                await self._outbound.enqueue(txn.sender, named, received + data, origin=origin,
                                             account=client.authenticated or "")
            expanded = [r for r in txn.remote if r in txn.expanded]
            if expanded:
                # What an alias or group sends on to outside members (or an SRS
                # bounce): sealed like a forward, one queue entry for them all.
                sealed = await self.seal(txn, auth_header + received + data)
                await self._outbound.enqueue(txn.sender, expanded, sealed, origin=origin,
                                             account=client.authenticated or "")
        if txn.forwards and self._outbound is not None:
            await self.forward(txn, auth_header + received + data)
        if self.sieve is not None and view is not None:
            await self.sieve.after(decisions, view, auth_header + received + verdict + local,
                                   sender=txn.sender, sid=client.sid, seal=partial(self.seal, txn))
        return codes.S250_DELIVERED.with_text(f"Message accepted for delivery as {message_id}"), result

    async def keep_report(self, client: Client, data: bytes) -> None:
        """A TLS report sent to our rua: parsed and stored before the 250; one that
        cannot be read is logged and dropped (the sender cannot fix it by retrying)."""
        from mailserver.smtp.tlsrpt import ReportError, parse_report_message
        from storage.tlsrpt import open_tlsrpt

        try:
            report = parse_report_message(data)
        except ReportError as exc:
            log.info("smtp %s: mail to the TLS-RPT address holds no report: %s", client.sid, exc)
            return
        if self._tlsrpt is None:
            self._tlsrpt = open_tlsrpt(self._config.storage_url, store=self._store)
            await self._tlsrpt.start()
        ident = await self._tlsrpt.add_received(report)
        log.info("smtp %s: TLS report %s from %s kept as %d", client.sid, report.report_id,
                 report.organization, ident)

    async def _keep_forwarded(self, txn: Transaction) -> None:
        """Turn the forwards of ``txn`` into local copies for the forwarding
        accounts (spam-tagged mail, ``deliver``)."""
        for address, _ in txn.forwards:
            account = await self._store.get_account(address)
            if account is None or account.disabled:
                log.info("forward %s: no usable mailbox for a spam-tagged copy, dropped", address)
                continue
            if account.id not in txn.account_ids:
                txn.account_ids.append(account.id)
                txn.local_addresses.append(account.address)
        txn.forwards.clear()

    async def forward(self, txn: Transaction, data: bytes) -> None:
        """Queue the forwarded copies: one per forwarding address, with a
        ``Delivered-To`` naming it (the loop check) and the sender rewritten
        by SRS unless it is null or ours (SPF of ours passes already)."""
        outbound = self._outbound
        if outbound is None:
            return
        sender = txn.sender
        if sender and self.local_domain(split_address(sender)[1]) is None:
            sender = self.srs.forward(sender)
        targets: dict[str, list[str]] = {}
        for address, target in txn.forwards:
            targets.setdefault(address, []).append(target)
        for address, outside in targets.items():
            copy = await self.seal(txn, f"Delivered-To: {address}\r\n".encode() + data)
            await outbound.enqueue(sender, outside, copy, origin="forward")

    async def seal(self, txn: Transaction, data: bytes) -> bytes:
        """``data`` with our ARC set on top (pki/arc.py); unchanged without a sealer."""
        if self._sealer is None:
            return data
        chain = str(txn.auth.arc.result) if txn.auth is not None else "none"
        return await asyncio.to_thread(self._sealer.seal, data, chain)

    async def check_content(self, client: Client, txn: Transaction, data: bytes) -> Outcome:
        """The pipeline's DATA stage on ``data``."""
        ctx = self.policy_context(client, txn)
        ctx.direction = self.direction(client, txn)
        ctx.envelope.rcpts = list(txn.recipients)
        ctx.auth_results = txn.auth.as_mapping() if txn.auth is not None else {}
        return await self._pipeline.check_data(ctx, data)

    async def hold(
        self,
        client: Client,
        txn: Transaction,
        data: bytes,
        auth_header: bytes,
        outcome: Outcome | None,
        *,
        message_id: str,
    ) -> tuple[Reply, DeliveryResult | None]:
        """Quarantine the message for every recipient (local and remote: one
        verdict for all), durably before the 250; the client's job is done."""
        if self._quarantine is None:
            log.error("smtp %s: quarantine verdict but no quarantine configured", client.sid)
            return codes.S451_POLICY_UNAVAILABLE, None
        reasons = list(txn.held) + (list(outcome.reasons) if outcome is not None else [])
        message = return_path_header(txn.sender) + auth_header + data
        subject = _subject(data)
        entry = await asyncio.to_thread(
            self._quarantine.put,
            message,
            sender=txn.sender,
            recipients=txn.local_addresses + txn.remote + [t for _, t in txn.forwards],
            reasons=reasons,
            client_ip=client.ip,
            session_id=client.sid,
            subject=subject,
        )
        log.info("smtp %s: %s quarantined as %s: %s", client.sid, message_id, entry.id, "; ".join(reasons))
        accepted = codes.S250_DELIVERED.with_text(f"Message accepted for delivery as {message_id}")
        return accepted, DeliveryResult(placed=())


    async def authenticate_sender(
        self, client: Client, txn: Transaction, data: bytes
    ) -> tuple[Reply | None, bytes]:
        """SPF, DKIM and DMARC of a message from an unauthenticated client
        (module docstring). Returns the refusal, if any, and the
        Authentication-Results field to prepend (b"" when nothing was checked)."""
        if self._resolver is None or self.trusted_relay(client):
            return None, b""
        checks = partial(authenticate_sync if not may_block(self._resolver) and len(data) <= _AUTH_IN_PLACE
                         else authenticate, self._resolver, ip=client.ip, helo=client.helo,
                         sender=txn.sender, message=data, trusted_sealers=self._trusted_sealers)
        # Without name servers (dns.use_servers = false) the lookups answer from
        # memory and the checks are CPU work alone, cheaper in place than through
        # ``authenticate``'s worker thread; but only for a small message: a DKIM
        # body hash over a large one (or a header section a client made huge)
        # would stop every other session meanwhile.
        outcome = checks()
        results = await outcome if asyncio.iscoroutine(outcome) else outcome
        txn.auth = results
        if self._reports is not None:
            evaluation = evaluation_from(results)
            if evaluation is not None:
                self._reports.observe(evaluation)
        reply = auth_reply(results, lambda domain: self.local_domain(domain) is not None)
        if reply is not None:
            log.info(
                "smtp %s: refused by sender authentication: %s (spf=%s dkim=%s dmarc=%s %s)",
                client.sid, reply, results.spf.result,
                ",".join(f"{d.result}:{d.domain}" for d in results.dkim) or "none",
                results.dmarc.result, results.dmarc.reason,
            )
            return reply, b""
        return None, results.header(self._config.server.hostname)


def _session_info(client: Client) -> SessionInfo:
    return SessionInfo(client.ip, client.helo, client.authenticated, client.tls, client.rdns, client.sid)


def _subject(data: bytes) -> str:
    """The decoded Subject, for the quarantine listing ("" if unreadable)."""
    try:
        values = headers.field_values(data, "Subject")
        return " ".join(decode_words(values[0]).split())[:200] if values else ""
    except Exception:  # noqa: BLE001 - a display nicety must never fail a delivery
        return ""


def _hold(txn: Transaction, outcome: Outcome) -> None:
    """Remember a quarantine verdict of an early stage for DATA."""
    if outcome.quarantine:
        txn.held.extend(outcome.reasons or ("policy: quarantine",))
