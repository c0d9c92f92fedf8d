"""The submission ports' protocol (RFC 6409): ``protocol.MxSMTP`` with SMTP
AUTH (RFC 4954), implicit TLS (RFC 8314) and mandatory authentication.

A session must authenticate before MAIL, RCPT or DATA (``530 5.7.0``,
RFC 4954 section 6). AUTH PLAIN (RFC 4616) and LOGIN are offered and accepted
only over TLS, or in clear text from a loopback client when
``submission.allow_plaintext_auth`` is set; otherwise AUTH answers ``538
5.7.11`` (RFC 4954 section 6) and EHLO does not advertise it. AUTH EXTERNAL
(RFC 4422 appendix A) takes the TLS client certificate
(``mailserver/certlogin.py``). Credentials go to the shared ``Authenticator``
(Argon2, failure delay, throttling): a wrong password is ``535 5.7.8``, a
throttled client ``454 4.7.0``, and a right but initial or expired password
``535 5.7.8`` with ``auth.must_change_text``, which names the portal page
where it is changed (``web.public_url``), sent without diacritics (reply
text is ASCII, ``protocol.MxSMTP.push``).

``smtp_AUTH`` is written here rather than given to aiosmtpd's authenticator
callback, because that callback is synchronous and password checks are not.
The account lands on the session (``MxSession.account``), where the shared
hooks (``handler.SmtpHandler``) find it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from typing import TYPE_CHECKING, Any, Final

from aiosmtpd.smtp import MISSING

from mailserver.auth import APP_ONLY_TEXT, MUST_CHANGE_TEXT, Authenticator, AuthStatus
from mailserver.certlogin import CertLogin, Presented
from mailserver.smtp.delivery import client_address
from mailserver.smtp.protocol import MxSession, MxSMTP, printable, status
from policy import codes

if TYPE_CHECKING:
    from mailserver.smtp.handler import SmtpHandler

log = logging.getLogger(__name__)

_LOGIN_USERNAME: Final = b"Username:"
_LOGIN_PASSWORD: Final = b"Password:"


def is_loopback(ip: str) -> bool:
    addr = client_address(ip)
    return addr is not None and addr.is_loopback


class SubmissionSMTP(MxSMTP):
    """MxSMTP plus AUTH, implicit TLS and mandatory authentication."""

    def __init__(
        self,
        handler: SmtpHandler,
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

    async def auth_keyword(self) -> str | None:
        """AUTH with PLAIN and LOGIN where passwords may be sent
        (``auth_allowed``), and EXTERNAL when the client presented a
        certificate that names an account."""
        if not self.auth_allowed():
            return None
        presented = await self.client_certificate()
        external = " EXTERNAL" if presented is not None and presented.address else ""
        return "AUTH PLAIN LOGIN" + external

    async def client_certificate(self) -> Presented | None:
        """The TLS client certificate of this session, checked once (mailserver/certlogin.py)."""
        session = self.session
        if self._cert_login is None or not self.tls_active or session is None:
            return None
        if self._presented is None or self._presented[0] is not session:
            info = session.ssl if isinstance(session.ssl, dict) else {}
            self._presented = (session, await self._cert_login.identify(info.get("ssl_object")))
        return self._presented[1]

    async def _external(self, session: MxSession, initial: str | None) -> None:
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
        if not isinstance(session, MxSession):
            raise TypeError("MxSession expected")
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
