"""Inbound (MX) acceptance and local delivery, without sockets or aiosmtpd.

Implements the decisions of RFC 5321 an MX makes at each stage:

* MAIL FROM (section 4.1.1.2): the null reverse-path ``<>`` is accepted
  (section 4.5.5); a sender in one of our own domains is refused unless the
  client is authenticated or in ``smtp.relay_networks`` (only our users send
  as our domains, and they do so on submission, RFC 6409).
* RCPT TO (section 4.1.1.3): local domains are routed to accounts, matching
  the local part case-insensitively; ``postmaster`` (section 4.5.1), with or
  without a domain, goes to the account named postmaster when there is one.
  Section 4.5.1 requires postmaster to be accepted: until aliases exist the
  operator must create ``postmaster@<domain>``, otherwise it gets 550 5.1.1.
  Other domains are relaying (section 3.6, section 7.1): 554 5.7.1, except
  for a client allowed to relay (``smtp.relay_networks`` or authenticated),
  whose foreign recipients go to the outbound queue (``Transaction.remote``;
  451 4.3.2 if the service was built without one).
* Non-ASCII addresses need SMTPUTF8 (RFC 6531 section 3.5).
* DATA (section 4.1.1.4): only CRLF line endings (section 2.3.8), then the
  trace fields: ``Return-Path`` (section 4.4) and ``Received`` with the RFC
  3848 / RFC 6531 section 3.7.3 protocol names, prepended to the unchanged
  message; the store makes it durable for every recipient in one call (all or
  none) before the 250 (section 4.1.1.4: "accepted for delivery").
* Sender authentication (``authenticate_sender``, MX only: not for
  authenticated or ``relay_networks`` clients): SPF, DKIM and DMARC (RFC 7208,
  6376, 7489) in ``policy.checks.authentication``; a forged local From or a
  DMARC ``p=reject`` failure is refused, otherwise an Authentication-Results
  field (RFC 8601) is prepended, after deleting any that claims our hostname
  (section 5). The results stay on ``Transaction.auth`` for the policy pipeline.

Every decision is a ``policy.codes.Reply`` so the policy pipeline can later
wrap or replace these checks. Exceptions from the store propagate: the
driver answers 451 4.3.0 and logs them with the session id.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING, Final

from mailserver.config import Config, ConfigError
from policy import codes
from policy.checks.authentication import AuthResults, auth_reply, authenticate, remove_own_results
from policy.codes import Reply
from policy.dns import Resolver
from storage.api import DeliveryResult, MailStore

if TYPE_CHECKING:
    from mailserver.smtp.queue import Outbound

log = logging.getLogger(__name__)

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# RFC 5321 section 2.3.8: lines end in CRLF; a CR or LF alone is invalid.
_BARE_LINE_ENDING: Final = re.compile(rb"\r(?!\n)|(?<!\r)\n")
# What may appear of a client-chosen name inside a Received field (a domain,
# an address literal); anything else is replaced so the header stays valid.
_UNSAFE_IN_TRACE: Final = re.compile(r"[^A-Za-z0-9.\-_:\[\]]")
POSTMASTER: Final = "postmaster"


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


def in_networks(ip: str, networks: Sequence[IpNetwork]) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr in net for net in networks)


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
    lines.append(f"\t{format_datetime(when)}")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def return_path_header(sender: str) -> bytes:
    """RFC 5321 section 4.4: the final delivery adds the reverse-path."""
    return f"Return-Path: <{sender}>\r\n".encode()


class Inbound:
    """Acceptance and delivery for the MX port: one instance per service."""

    def __init__(
        self,
        config: Config,
        store: MailStore,
        *,
        resolver: Resolver | None = None,
        outbound: Outbound | None = None,
    ) -> None:
        self._config = config
        self._store = store
        self._outbound = outbound
        """The outbound queue for trusted relay clients; None: no relaying (451)."""
        self._resolver = resolver
        """DNS for sender authentication; None skips it (unit tests without DNS)."""
        self._relay_networks = parse_networks(config.smtp.relay_networks)
        # Configured spelling of each local domain, keyed by its lower-case
        # A-label and U-label forms, so mail to either finds the accounts.
        self._domains: dict[str, str] = {}
        for domain in config.server.domains:
            for key in _domain_keys(domain):
                self._domains.setdefault(key, domain.lower().rstrip("."))

    def local_domain(self, domain: str) -> str | None:
        """The configured spelling of ``domain`` if it is ours, else None."""
        for key in _domain_keys(domain):
            found = self._domains.get(key)
            if found is not None:
                return found
        return None

    def trusted_relay(self, client: Client) -> bool:
        return client.authenticated is not None or in_networks(client.ip, self._relay_networks)

    def check_sender(self, client: Client, sender: str, smtputf8: bool) -> Reply:
        """MAIL FROM. ``sender`` is ``""`` for the null reverse-path."""
        if not valid_utf8(sender):
            return codes.S553_BAD_SENDER_SYNTAX
        if needs_smtputf8(sender) and not smtputf8:
            return codes.S553_NEEDS_SMTPUTF8
        if sender == "":
            return codes.S250_SENDER_OK
        local, domain = split_address(sender)
        if not local or not domain:
            return codes.S553_BAD_SENDER_SYNTAX
        if self.local_domain(domain) is not None and not self.trusted_relay(client):
            return codes.S553_SENDER_NOT_ALLOWED
        return codes.S250_SENDER_OK

    async def check_recipient(self, client: Client, txn: Transaction, recipient: str) -> Reply:
        """RCPT TO. On success the recipient and its account join ``txn``."""
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
            if not self.trusted_relay(client):
                return codes.S554_RELAY_DENIED
            if self._outbound is None:
                return codes.S451_NO_OUTBOUND
            # Authenticated users and relay_networks clients relay through
            # the outbound queue (RFC 5321 section 3.6.1).
            if recipient not in txn.remote:
                txn.recipients.append(recipient)
                txn.remote.append(recipient)
            return codes.S250_RECIPIENT_OK
        # The store matches case-insensitively (local parts are case-sensitive
        # in theory, RFC 5321 section 2.4, but never in practice here).
        # postmaster@ is routed like any local part: to an account named
        # postmaster when it exists; 550 otherwise (see the module docstring).
        account = await self._store.get_account(f"{local}@{ours}")
        if account is None:
            return codes.S550_NO_SUCH_USER
        if account.disabled:
            return codes.S550_MAILBOX_DISABLED
        txn.recipients.append(recipient)
        if account.id not in txn.account_ids:
            txn.account_ids.append(account.id)
        return codes.S250_RECIPIENT_OK

    async def deliver(
        self, client: Client, txn: Transaction, data: bytes, *, message_id: str, when: datetime
    ) -> tuple[Reply, DeliveryResult | None]:
        """DATA: check the content, add trace fields, store durably for all
        recipients at once. Store faults propagate to the driver (451 4.3.0)."""
        if find_bare_line_ending(data) is not None:
            return codes.S550_BARE_LINE_ENDING, None
        if not txn.account_ids and not txn.remote:
            return codes.S503_NEED_RCPT, None
        refusal, auth_header = await self.authenticate_sender(client, txn, data)
        if refusal is not None:
            return refusal, None
        if auth_header:
            data = remove_own_results(data, self._config.server.hostname)
        received = received_header(client, txn, hostname=self._config.server.hostname,
                                   message_id=message_id, when=when)
        result = DeliveryResult(placed=())
        if txn.account_ids:
            message = return_path_header(txn.sender) + auth_header + received + data
            # All recipients in one call: durable for all or stored for none.
            result = await self._store.deliver(txn.account_ids, message, internal_date=when)
        if txn.remote and self._outbound is not None:
            # Durable (spool file fsynced, rows committed) before the 250.
            # Return-Path is added by the final delivery, not here (RFC 5321
            # section 4.4). Local copies were stored first: if queueing fails
            # the client retries and local recipients may get a duplicate,
            # which beats losing the remote copies.
            await self._outbound.enqueue(
                txn.sender, txn.remote, received + data,
                origin="submission" if client.authenticated else "relay",
                account=client.authenticated or "",
            )
        return codes.S250_DELIVERED.with_text(f"Message accepted for delivery as {message_id}"), result


    async def authenticate_sender(
        self, client: Client, txn: Transaction, data: bytes
    ) -> tuple[Reply | None, bytes]:
        """SPF, DKIM and DMARC of a message from an unauthenticated client
        (module docstring). Returns the refusal, if any, and the
        Authentication-Results field to prepend (b"" when nothing was checked)."""
        if self._resolver is None or self.trusted_relay(client):
            return None, b""
        results = await authenticate(
            self._resolver, ip=client.ip, helo=client.helo, sender=txn.sender, message=data
        )
        txn.auth = results
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


def _domain_keys(domain: str) -> list[str]:
    """Lower-case forms of a domain to compare on: as given, A-label, U-label."""
    base = domain.lower().rstrip(".")
    keys = [base]
    try:
        keys.append(base.encode("idna").decode("ascii"))
    except UnicodeError:
        pass
    try:
        keys.append(base.encode("ascii").decode("idna"))
    except UnicodeError:
        pass
    return keys
