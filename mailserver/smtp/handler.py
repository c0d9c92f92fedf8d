"""aiosmtpd handler hooks shared by every SMTP port: thin glue to ``delivery.Inbound``.

Theory of operation
-------------------
aiosmtpd's protocol (``protocol.MxSMTP``, or ``sasl.SubmissionSMTP`` on the
submission ports) calls the ``handle_*`` hooks of one ``SmtpHandler`` per
service. Each hook converts aiosmtpd's session and envelope into
``delivery.Client`` / ``delivery.Transaction``, asks ``Inbound`` for a
``policy.codes.Reply`` (the protocol checks, then the policy pipeline: relay,
sender and content rules alike) and returns it as a status string
(``protocol.status``).

A port is the same handler with its own ``FrontEnd``: the part that says
what the port adds around each hook. The MX adds nothing (``FrontEnd``
itself); submission (``submit.SubmissionRules``) requires an authenticated
account (RFC 4954 section 6), applies the per-user rate limits and adds a
missing Date and Message-ID (RFC 6409 section 8). The AUTH keyword of the
EHLO reply comes from the protocol (``MxSMTP.auth_keyword``).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Final

from mailserver.smtp.delivery import Client, Inbound, Transaction
from mailserver.smtp.protocol import MxEnvelope, MxSession, MxSMTP, local_error, printable, status
from policy import codes
from policy.codes import Reply
from policy.context import SendAs

log = logging.getLogger(__name__)

ReverseLookup = Callable[[str], Awaitable[str | None]]
"""Reverse DNS of an IP address: a name, or None when there is none."""


def _declared_size(options: list[str]) -> int:
    """The SIZE=n parameter of MAIL FROM (RFC 1870 section 6), 0 when absent
    (aiosmtpd has checked it is digits and within the limit)."""
    for option in options:
        name, _, value = option.partition("=")
        if name.upper() == "SIZE" and value.isdigit():
            return int(value)
    return 0


def _open_transaction(refusal: Reply | None, envelope: MxEnvelope) -> Transaction | str:
    """The transaction RCPT and DATA work on, or the reply refusing the command:
    the front end's refusal, else ``503`` when MAIL did not open one."""
    if refusal is not None:
        return status(refusal)
    if envelope.txn is None:
        return status(codes.S503_NEED_MAIL)
    return envelope.txn


class FrontEnd:
    """What one port adds to the shared hooks; every part here is a no-op,
    which is the MX port. Parts answer a refusal or None (go on)."""

    async def mail(self, session: MxSession) -> tuple[Reply | None, SendAs | None]:
        """Before MAIL FROM: a refusal, or whom the session may send as (None:
        no one authenticated, the MX rules apply)."""
        return None, None

    async def rcpt(self, session: MxSession, envelope: MxEnvelope) -> Reply | None:
        """Before RCPT TO is routed."""
        return None

    async def data(self, session: MxSession, envelope: MxEnvelope) -> Reply | None:
        """Before the message goes to delivery (may complete ``envelope.original_content``)."""
        return None

    def delivered(self, session: MxSession, envelope: MxEnvelope) -> None:
        """After the message was accepted (250)."""


class SmtpHandler:
    """aiosmtpd handler: one per service, shared by its sessions."""

    def __init__(
        self,
        inbound: Inbound,
        hostname: str,
        reverse_lookup: ReverseLookup,
        front_end: FrontEnd | None = None,
    ) -> None:
        self._inbound = inbound
        self._hostname = hostname
        self._reverse_lookup = reverse_lookup
        self._front = front_end if front_end is not None else FrontEnd()
        self._deliveries = 0

    # -- helpers ---------------------------------------------------------------
    async def _client(self, server: MxSMTP, session: MxSession) -> Client:
        peer = session.peer
        ip = peer[0] if isinstance(peer, tuple) else str(peer)
        tls: str | None = None
        if server.tls_active and session.ssl is not None:
            ssl_object = session.ssl.get("ssl_object")
            if isinstance(ssl_object, ssl.SSLObject):
                cipher = ssl_object.cipher()
                tls = f"{ssl_object.version()} {cipher[0] if cipher else ''}".strip()
            else:
                tls = "TLS"
        authenticated = session.account.address if session.account is not None else None
        cached = session.client
        if (
            cached is not None
            and cached.helo == session.host_name
            and cached.tls == tls
            and cached.esmtp == bool(session.extended_smtp)
            and cached.authenticated == authenticated
        ):
            return cached
        rdns = cached.rdns if cached is not None else await self._reverse_lookup(ip)
        client = Client(
            sid=session.sid,
            ip=ip,
            helo=session.host_name or "",
            esmtp=bool(session.extended_smtp),
            tls=tls,
            authenticated=authenticated,
            rdns=rdns,
        )
        session.client = client
        return client

    # -- hooks -----------------------------------------------------------------
    async def handle_EHLO(  # noqa: N802
        self, server: MxSMTP, session: MxSession, envelope: MxEnvelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        keywords = [line[4:] for line in responses[1:]]
        keywords = [k for k in keywords if not k.startswith("AUTH") and k != "HELP"]
        keywords += ["PIPELINING", "ENHANCEDSTATUSCODES"]
        auth = await server.auth_keyword()
        if auth is not None:
            keywords.insert(len(keywords) - 1, auth)
        lines = [responses[0]] + [f"250-{k}" for k in keywords]
        lines[-1] = "250 " + lines[-1][4:]
        return lines

    async def handle_HELO(  # noqa: N802
        self, server: MxSMTP, session: MxSession, envelope: MxEnvelope, hostname: str
    ) -> str:
        session.host_name = hostname
        return f"250 {self._hostname}"

    async def handle_MAIL(  # noqa: N802
        self, server: MxSMTP, session: MxSession, envelope: MxEnvelope, address: str, options: list[str]
    ) -> str:
        refusal, may_send_as = await self._front.mail(session)
        if refusal is not None:
            return status(refusal)
        sender = "" if address == "<>" else address
        smtputf8 = bool(envelope.smtp_utf8)
        client = await self._client(server, session)
        reply, txn = await self._inbound.open_transaction(client, sender, smtputf8, may_send_as=may_send_as)
        if txn is not None:
            envelope.mail_from = address
            envelope.mail_options.extend(options)
            envelope.txn = txn
            txn.size = _declared_size(options)
        else:
            log.info("smtp %s: MAIL FROM:<%s> refused: %s", session.sid, printable(sender), reply)
        return status(reply)

    async def handle_RCPT(  # noqa: N802
        self, server: MxSMTP, session: MxSession, envelope: MxEnvelope, address: str, options: list[str]
    ) -> str:
        txn = _open_transaction(await self._front.rcpt(session, envelope), envelope)
        if isinstance(txn, str):
            return txn
        client = await self._client(server, session)
        reply = await self._inbound.add_recipient(client, txn, address)
        if reply.positive:
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(options)
        else:
            log.info("smtp %s: RCPT TO:<%s> refused: %s", session.sid, printable(address), reply)
        return status(reply)

    async def handle_DATA(self, server: MxSMTP, session: MxSession, envelope: MxEnvelope) -> str:  # noqa: N802
        txn = _open_transaction(await self._front.data(session, envelope), envelope)
        if isinstance(txn, str):
            return txn
        client = await self._client(server, session)
        self._deliveries += 1
        message_id = f"{session.sid}{self._deliveries:04x}"
        data = envelope.original_content or b""
        server.busy = True
        try:
            reply, result = await self._inbound.deliver(
                client, txn, data, message_id=message_id, when=datetime.now().astimezone(),
                line_endings_clean=envelope.line_endings_clean,
            )
        except Exception:
            # The driver's catch-all (STYLE.md, Errors): a server fault is a
            # 451 4.3.0 to the client and a traceback in the log only.
            log.exception("smtp %s: delivery of %s failed", session.sid, message_id)
            return status(local_error(session.sid))
        finally:
            server.busy = False
        if result is None:
            log.info("smtp %s: message refused: %s", session.sid, reply)
        else:
            log.info(
                "smtp %s: delivered %s from <%s> to %s (%d octets)",
                session.sid, message_id, printable(txn.sender),
                printable(", ".join(txn.recipients)), len(data),
            )
            self._front.delivered(session, envelope)
        return status(reply)

    async def handle_VRFY(  # noqa: N802
        self, server: MxSMTP, session: MxSession, envelope: MxEnvelope, address: str
    ) -> str:
        # RFC 5321 section 7.3: never confirm or deny that an account exists.
        return status(codes.S252_CANNOT_VRFY)


_RDNS_TTL: Final = 300.0
_RDNS_FAILED_TTL: Final = 30.0
_RDNS_CACHE_SIZE: Final = 4096
_rdns_cache: dict[str, tuple[float, str | None]] = {}
"""IP -> (expiry on the monotonic clock, name): a relay opens many sessions
from one address, and each lookup is a trip through the resolver thread."""


async def reverse_lookup(ip: str, timeout: float = 2.0) -> str | None:
    """Reverse DNS through the system resolver, bounded by ``timeout``;
    answers are kept ``_RDNS_TTL`` seconds (failures ``_RDNS_FAILED_TTL``)."""
    now = time.monotonic()
    cached = _rdns_cache.get(ip)
    if cached is not None and cached[0] > now:
        return cached[1]
    loop = asyncio.get_running_loop()
    name: str | None
    try:
        async with asyncio.timeout(timeout):
            host, _ = await loop.getnameinfo((ip, 0), 0)
        name, ttl = (None if host == ip else host), _RDNS_TTL
    except (OSError, TimeoutError, ValueError):
        name, ttl = None, _RDNS_FAILED_TTL
    if len(_rdns_cache) >= _RDNS_CACHE_SIZE:
        _rdns_cache.clear()
    _rdns_cache[ip] = (now + ttl, name)
    return name
