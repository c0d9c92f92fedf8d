"""Message submission (RFC 6409) on aiosmtpd: ``submission.listen`` with STARTTLS
(RFC 3207) and ``submission.tls_listen`` with implicit TLS (RFC 8314).

Theory of operation
-------------------
A session must authenticate before MAIL, RCPT or DATA (``530 5.7.0``,
RFC 4954 section 6). AUTH PLAIN (RFC 4616) and LOGIN are offered and accepted
only over TLS, or in clear text from a loopback client when
``submission.allow_plaintext_auth`` is set; otherwise AUTH answers ``538
5.7.11`` (RFC 4954 section 6) and EHLO does not advertise it. Credentials go
to the shared ``Authenticator`` (Argon2, failure delay, throttling): a wrong
password is ``535 5.7.8``, a throttled client ``454 4.7.0``, and a right but
initial or expired password ``535 5.7.8`` with ``auth.must_change_text``,
which names the portal page where it is changed (``web.public_url``), sent
without diacritics (reply text is ASCII, ``handler.MxSMTP.push``).

After AUTH the hooks apply ``submit`` (sender alignment, rate limits, Date
and Message-ID) and hand the transaction to ``delivery.Inbound`` with the
client marked authenticated: local recipients are stored at once, others
queued (``Outbound``), both durably before the 250, after the content
policy (``policy.pipeline``, direction ``submission``, or ``internal`` when
every recipient is local) accepted the message. The Received field says
``with ESMTPSA`` (RFC 3848) and names neither the account nor the mechanism.

``SubmissionSMTP`` extends the MX protocol (``handler.MxSMTP``: enhanced
codes, 421 on shutdown, error handling) with its own ``smtp_AUTH``, because
aiosmtpd's authenticator callback is synchronous and password checks are not.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import ipaddress
import logging
import ssl
from dataclasses import replace
from datetime import datetime
from typing import Any, Final

from aiosmtpd.smtp import MISSING

from mailserver import proxyproto
from mailserver.auth import APP_ONLY_TEXT, MUST_CHANGE_TEXT, Authenticator, AuthStatus, must_change_text
from mailserver.certlogin import CertLogin, Presented
from mailserver.config import Config, parse_hostport
from mailserver.smtp.delivery import Client, Inbound
from mailserver.smtp.handler import (
    MxEnvelope,
    MxHandler,
    MxSession,
    MxSMTP,
    ReverseLookup,
    printable,
    reverse_lookup,
    status,
)
from mailserver.smtp.hooks import SenderPolicy
from mailserver.smtp.limits import session_limits
from mailserver.smtp.queue import Outbound
from mailserver.smtp.server import _quiet_aiosmtpd, end_sessions
from mailserver.smtp.submit import RateLimiter, check_headers, complete_headers
from mailserver.web.settings import portal_url
from pki.arc import ArcSealer
from policy import codes
from policy.pipeline import Pipeline
from storage.api import Account, MailStore
from storage.quarantine import Quarantine

log = logging.getLogger(__name__)

_BACKLOG: Final = 256
_LOGIN_USERNAME: Final = b"Username:"
_LOGIN_PASSWORD: Final = b"Password:"


def is_loopback(ip: str) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback


class SubmissionSession(MxSession):
    account: Account | None = None


class SubmissionSMTP(MxSMTP):
    """MxSMTP plus AUTH, implicit TLS and mandatory authentication."""

    def __init__(
        self,
        handler: SubmissionHandler,
        *,
        authenticator: Authenticator,
        allow_plaintext_auth: bool,
        implicit_tls: bool,
        must_change: str = MUST_CHANGE_TEXT,
        cert_login: CertLogin | None = None,
        **kwargs: Any,
    ) -> None:
        self._credentials = authenticator
        self._cert_login = cert_login
        self._presented: tuple[object, Presented | None] | None = None
        """(session, its checked TLS client certificate) for AUTH EXTERNAL."""
        self._must_change = must_change
        self._allow_plaintext_auth = allow_plaintext_auth
        self._implicit_tls = implicit_tls
        super().__init__(handler, auth_required=True, auth_require_tls=True, **kwargs)

    def _create_session(self) -> SubmissionSession:
        session = SubmissionSession(self.loop)
        session.sid = self.sid
        return session

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self._implicit_tls and self.session is not None:
            self.session.ssl = {"ssl_object": transport.get_extra_info("ssl_object")}

    @property
    def tls_active(self) -> bool:
        return self._implicit_tls or self._tls_protocol is not None

    def _peer_ip(self) -> str:
        peer = self.session.peer if self.session is not None else None
        return str(peer[0]) if isinstance(peer, tuple) else str(peer)

    def auth_allowed(self) -> bool:
        """RFC 4954 section 4: no clear-text passwords without TLS (loopback
        excepted when the operator allows it)."""
        return self.tls_active or (self._allow_plaintext_auth and is_loopback(self._peer_ip()))

    async def client_certificate(self) -> Presented | None:
        """The TLS client certificate of this session, checked once (mailserver/certlogin.py)."""
        session = self.session
        if self._cert_login is None or not self.tls_active or session is None:
            return None
        if self._presented is None or self._presented[0] is not session:
            info = session.ssl if isinstance(session.ssl, dict) else {}
            self._presented = (session, await self._cert_login.identify(info.get("ssl_object")))
        return self._presented[1]

    async def _external(self, session: SubmissionSession, initial: str | None) -> None:
        """AUTH EXTERNAL (RFC 4422 appendix A, RFC 4954): the TLS client certificate."""
        assert self._cert_login is not None  # noqa: S101 - offered only with it
        blob = await self._response(initial, b"")
        if blob is None:
            return
        try:
            authzid = blob.decode("utf-8")
        except UnicodeDecodeError:
            await self._reply(codes.S501_AUTH_SYNTAX)
            return
        presented = await self.client_certificate()
        result = await self._cert_login.authenticate(presented, authzid, self._peer_ip(), "submission")
        account = result.outcome.account
        if result.outcome.status is AuthStatus.OK and account is not None:
            session.authenticated = True
            session.account = account
            session.login_data = account.address
            log.info("submission %s: authenticated as %s (certificate)", self.sid, account.address)
            await self._reply(codes.S235_AUTH_OK)
        elif result.outcome.status is AuthStatus.THROTTLED:
            await self._reply(codes.S454_AUTH_TEMPFAIL)
        else:
            await self._reply(codes.S535_AUTH_FAILED.with_text(result.text or "Account disabled"))

    async def _reply(self, reply: codes.Reply) -> None:
        await self.push(status(reply))

    async def smtp_AUTH(self, arg: str) -> None:  # noqa: N802
        if await self.check_helo_needed("EHLO"):
            return
        session = self.session
        if not isinstance(session, SubmissionSession):
            raise TypeError("submission session expected")
        if not session.extended_smtp:
            await self._reply(codes.S503_HELO_FIRST.with_text("Send EHLO first"))
            return
        if not self.auth_allowed():
            await self._reply(codes.S538_ENCRYPTION_REQUIRED)
            return
        if session.authenticated:
            await self._reply(codes.S503_ALREADY_AUTHENTICATED)
            return
        args = (arg or "").split()  # a bare "AUTH" comes as None
        if not args or len(args) > 2:
            await self._reply(codes.S501_SYNTAX)
            return
        mechanism = args[0].upper()
        if mechanism == "EXTERNAL" and self._cert_login is not None and self.tls_active:
            await self._external(session, args[1] if len(args) == 2 else None)
            return
        if mechanism == "PLAIN":
            credentials = await self._plain(args[1] if len(args) == 2 else None)
        elif mechanism == "LOGIN":
            credentials = await self._login(args[1] if len(args) == 2 else None)
        else:
            await self._reply(codes.S504_AUTH_MECHANISM)
            return
        if credentials is None:
            return
        username, password = credentials
        outcome = await self._credentials.authenticate(username, password, self._peer_ip(), protocol="smtp")
        if outcome.status is AuthStatus.OK and outcome.account is not None:
            session.authenticated = True
            session.account = outcome.account
            session.login_data = outcome.account.address
            log.info("submission %s: authenticated as %s", self.sid, outcome.account.address)
            await self._reply(codes.S235_AUTH_OK)
            return
        log.info("submission %s: AUTH %s failed: %s", self.sid, printable(mechanism), outcome.status.value)
        if outcome.status is AuthStatus.MUST_CHANGE:
            await self._reply(codes.S535_AUTH_FAILED.with_text(self._must_change))
        elif outcome.status is AuthStatus.APP_PASSWORD_REQUIRED:
            await self._reply(codes.S535_AUTH_FAILED.with_text(APP_ONLY_TEXT))
        elif outcome.status is AuthStatus.THROTTLED:
            await self._reply(codes.S454_AUTH_TEMPFAIL)
        else:
            await self._reply(codes.S535_AUTH_FAILED)

    async def _response(self, initial: str | None, challenge: bytes) -> bytes | None:
        """The client's decoded response: the initial one, or after a 334."""
        if initial is not None:
            if initial == "=":  # RFC 4954 section 4: empty initial response
                return b""
            try:
                return base64.b64decode(initial.encode("ascii"), validate=True)
            except (binascii.Error, UnicodeEncodeError):
                await self._reply(codes.S501_AUTH_SYNTAX)
                return None
        answer = await self.challenge_auth(challenge)
        if answer is MISSING:
            return None  # challenge_auth already replied (aborted or bad base64)
        return answer if isinstance(answer, bytes) else None

    async def _plain(self, initial: str | None) -> tuple[str, str] | None:
        blob = await self._response(initial, b"")
        if blob is None:
            return None
        try:
            authzid, authcid, password = (p.decode("utf-8") for p in blob.split(b"\x00"))
        except (ValueError, UnicodeDecodeError):
            await self._reply(codes.S501_AUTH_SYNTAX)
            return None
        if authzid and authzid.lower() != authcid.lower():
            # RFC 4616 section 2: acting as someone else is not offered.
            await self._reply(codes.S535_AUTH_FAILED)
            return None
        return authcid, password

    async def _login(self, initial: str | None) -> tuple[str, str] | None:
        user = await self._response(initial, _LOGIN_USERNAME)
        if user is None:
            return None
        password = await self._response(None, _LOGIN_PASSWORD)
        if password is None:
            return None
        try:
            return user.decode("utf-8"), password.decode("utf-8")
        except UnicodeDecodeError:
            await self._reply(codes.S501_AUTH_SYNTAX)
            return None


class SubmissionHandler(MxHandler):
    """Hooks of the submission ports: MX hooks plus alignment and rate limits."""

    def __init__(
        self,
        inbound: Inbound,
        hostname: str,
        reverse: ReverseLookup,
        *,
        sender_policy: SenderPolicy,
        limiter: RateLimiter,
    ) -> None:
        super().__init__(inbound, hostname, reverse)
        self._policy = sender_policy
        self._limiter = limiter

    async def _client(self, server: MxSMTP, session: MxSession) -> Client:
        client = await super()._client(server, session)
        account = getattr(session, "account", None)
        if isinstance(account, Account) and client.authenticated != account.address:
            client = replace(client, authenticated=account.address)
            session.client = client
        return client

    async def handle_EHLO(  # noqa: N802
        self, server: MxSMTP, session: MxSession, envelope: MxEnvelope, hostname: str, responses: list[str]
    ) -> list[str]:
        lines = await super().handle_EHLO(server, session, envelope, hostname, responses)
        if isinstance(server, SubmissionSMTP) and server.auth_allowed():
            presented = await server.client_certificate()
            external = " EXTERNAL" if presented is not None and presented.address else ""
            lines.insert(len(lines) - 1, "250-AUTH PLAIN LOGIN" + external)
        return lines

    async def handle_MAIL(  # noqa: N802
        self, server: MxSMTP, session: MxSession, envelope: MxEnvelope, address: str, options: list[str]
    ) -> str:
        account = getattr(session, "account", None)
        if not isinstance(account, Account):
            return status(codes.S530_AUTH_REQUIRED)
        if not self._limiter.may_send(account.address):
            log.info("submission %s: %s over the message rate limit", session.sid, account.address)
            return status(codes.S450_RATE_LIMITED)
        sender = "" if address == "<>" else address
        if sender and not await self._policy.may_send_as(account, sender):
            log.info(
                "submission %s: %s may not send as <%s>", session.sid, account.address, printable(sender)
            )
            return status(codes.S553_SENDER_NOT_OWNED)
        return await super().handle_MAIL(server, session, envelope, address, options)

    async def handle_RCPT(  # noqa: N802
        self, server: MxSMTP, session: MxSession, envelope: MxEnvelope, address: str, options: list[str]
    ) -> str:
        account = getattr(session, "account", None)
        if not isinstance(account, Account):
            return status(codes.S530_AUTH_REQUIRED)
        txn = envelope.txn
        pending = len(txn.recipients) + 1 if txn is not None else 1
        if not self._limiter.may_address(account.address, pending):
            log.info("submission %s: %s over the recipient rate limit", session.sid, account.address)
            return status(codes.S450_RATE_LIMITED)
        return await super().handle_RCPT(server, session, envelope, address, options)

    async def handle_DATA(self, server: MxSMTP, session: MxSession, envelope: MxEnvelope) -> str:  # noqa: N802
        account = getattr(session, "account", None)
        txn = envelope.txn
        if not isinstance(account, Account) or txn is None:
            return status(codes.S503_NEED_MAIL)
        data = envelope.original_content or b""
        refusal = await check_headers(self._policy, account, data)
        if refusal is not None:
            log.info("submission %s: message refused: %s", session.sid, refusal)
            return status(refusal)
        envelope.original_content = complete_headers(
            data, hostname=self._hostname, when=datetime.now().astimezone()
        )
        reply = await super().handle_DATA(server, session, envelope)
        if reply.startswith("250"):
            self._limiter.record(account.address, len(txn.recipients))
        return reply


class SubmissionService:
    """The two submission listeners (see module docstring)."""

    def __init__(
        self,
        config: Config,
        store: MailStore,
        authenticator: Authenticator,
        ssl_context: ssl.SSLContext | None,
        *,
        outbound: Outbound,
        sender_policy: SenderPolicy,
        reverse: ReverseLookup = reverse_lookup,
        pipeline: Pipeline | None = None,
        quarantine: Quarantine | None = None,
        cert_login: CertLogin | None = None,
        sealer: ArcSealer | None = None,
    ) -> None:
        self._config = config
        self._authenticator = authenticator
        self.cert_login = cert_login
        self._ssl_context = ssl_context
        # The same content policy as the MX, with direction submission (or
        # internal when every recipient is local): Decision 70/2009 Dieu 6
        # forbids sending classified documents, out or to a colleague.
        inbound = Inbound(config, store, outbound=outbound, pipeline=pipeline, quarantine=quarantine,
                          sealer=sealer)
        limiter = RateLimiter(
            config.outbound.max_messages_per_hour, config.outbound.max_recipients_per_hour
        )
        self.limiter = limiter
        self._handler = SubmissionHandler(
            inbound, config.server.hostname, reverse, sender_policy=sender_policy, limiter=limiter
        )
        self._servers: list[asyncio.Server | proxyproto.ProxiedServer] = []
        self._sessions: set[MxSMTP] = set()
        self.limits = session_limits(config)
        self._must_change = must_change_text(portal_url(config.web, config.server.hostname) + "/password")

    def _make_protocol(self, implicit_tls: bool) -> SubmissionSMTP:
        protocol = SubmissionSMTP(
            self._handler,
            authenticator=self._authenticator,
            must_change=self._must_change,
            cert_login=self.cert_login,
            limits=self.limits,
            allow_plaintext_auth=self._config.submission.allow_plaintext_auth,
            implicit_tls=implicit_tls,
            on_close=self._sessions.discard,
            hostname=self._config.server.hostname,
            ident="ESMTP",
            tls_context=None if implicit_tls else self._ssl_context,
            require_starttls=False,
            timeout=self._config.smtp.timeout,
            data_size_limit=self._config.smtp.max_message_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            loop=asyncio.get_running_loop(),
        )
        self._sessions.add(protocol)
        return protocol

    async def start(self) -> dict[str, tuple[str, int]]:
        _quiet_aiosmtpd()
        loop = asyncio.get_running_loop()
        bound: dict[str, tuple[str, int]] = {}
        listeners: list[tuple[str, str, bool]] = [("submission", self._config.submission.listen, False)]
        if self._ssl_context is not None:
            listeners.append(("submissions", self._config.submission.tls_listen, True))
        for name, listen, implicit in listeners:
            host, port = parse_hostport(listen)
            server: asyncio.Server | proxyproto.ProxiedServer
            if self._config.submission.proxy_protocol:
                server = await proxyproto.serve(
                    functools.partial(self._make_protocol, implicit),
                    host or "0.0.0.0",  # noqa: S104 - an empty host means every address
                    port,
                    backlog=_BACKLOG,
                    ssl_context=self._ssl_context if implicit else None,
                    trusted_proxies=proxyproto.parse_networks(self._config.server.trusted_proxies),
                    name=name,
                    refusal=b"" if implicit else proxyproto.SMTP_REFUSAL,
                )
            else:
                server = await loop.create_server(
                    lambda implicit=implicit: self._make_protocol(implicit),
                    host or None,
                    port,
                    backlog=_BACKLOG,
                    reuse_address=True,
                    ssl=self._ssl_context if implicit else None,
                )
            self._servers.append(server)
            sockname = server.sockets[0].getsockname()
            bound[name] = (str(sockname[0]), int(sockname[1]))
        return bound

    def connection_count(self) -> int:
        """Sessions open now (metrics, the portal's dashboard)."""
        return len(self._sessions)

    async def stop(self) -> None:
        servers, self._servers = self._servers, []
        for server in servers:
            server.close()
        for server in servers:
            await server.wait_closed()
        await end_sessions(self._sessions, "submission")
