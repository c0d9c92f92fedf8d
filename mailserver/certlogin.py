"""Certificate login: SASL EXTERNAL (RFC 4422 appendix A) over TLS client
certificates, for IMAP (``AUTHENTICATE EXTERNAL``) and submission (``AUTH
EXTERNAL``).

Theory of operation
-------------------
The IMAP and submission listeners get their own TLS context (``enable``),
which asks every client for a certificate and requires none
(``pki.clientcert.request_client_certificates``). When a connection's TLS
starts (implicit TLS, or after STARTTLS) its front end calls ``identify`` once:
the presented certificate, if any, is checked against the CA (chain to our root
or an imported anchor, validity, revocation, address) in a worker thread, and
the result is kept with the connection as a ``Presented``. ``AUTH=EXTERNAL``
(IMAP) and ``EXTERNAL`` (the EHLO AUTH line) are offered only when it names an
address.

``CertLogin.authenticate`` decides the EXTERNAL exchange itself. The
authorization identity must be empty or the certificate's address (acting as
someone else is not offered); the certificate is checked again (it may have
been revoked since the handshake: the CA's index counts at once); the account
must exist, have opted in (``mailserver account set ADDRESS --cert-login on``)
and not be disabled. Every attempt goes through the authenticator's login
throttle under the certificate's address and the client address, like a
password login, and is logged; a success updates ``last_login_at``. A password
that must be changed does not block certificate login: the certificate is the
credential.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from mailserver.auth import LOGIN_RECORD_INTERVAL, Authenticator, AuthOutcome, AuthStatus
from mailserver.certs import open_ca
from mailserver.config import Config
from pki.ca import CertificateAuthority
from pki.clientcert import CertificateRefused, ClientCertificates, request_client_certificates
from pki.tls import server_context
from storage.api import MailStore

log = logging.getLogger(__name__)

NOT_ENABLED: Final = (
    "Tài khoản chưa bật đăng nhập bằng chứng thư số / Certificate login is not enabled for this account"
)
NO_CERTIFICATE: Final = "Chưa xuất trình chứng thư số qua TLS / No TLS client certificate was presented"
WRONG_IDENTITY: Final = (
    "Chứng thư số chỉ đăng nhập được vào địa chỉ ghi trong nó / "
    "The certificate authorizes only the address it names"
)
REFUSED: Final = "Chứng thư số không được chấp nhận / Certificate not accepted"


@dataclass(frozen=True, slots=True)
class Presented:
    """What a connection's client certificate was found to be at the handshake."""

    der: bytes
    address: str | None
    """Who it names when it is acceptable; None otherwise (``reason`` says why)."""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class CertOutcome:
    outcome: AuthOutcome
    text: str
    """Why it was refused (Vietnamese / English), or empty."""
    address: str = ""


def peer_certificate(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> bytes | None:
    if ssl_object is None:
        return None
    try:
        return ssl_object.getpeercert(binary_form=True)
    except (ValueError, ssl.SSLError):
        return None


class CertLogin:
    """SASL EXTERNAL for every front end (module docstring)."""

    def __init__(self, store: MailStore, authenticator: Authenticator, ca: CertificateAuthority,
                 context: ssl.SSLContext | None = None) -> None:
        self.context = context
        """The TLS server context of the listeners that offer EXTERNAL (``enable``)."""
        self._store = store
        self._authenticator = authenticator
        self._verifier = ClientCertificates(ca)

    async def identify(self, ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> Presented | None:
        """The connection's certificate, checked (None when it presented none)."""
        der = peer_certificate(ssl_object)
        if not der:
            return None
        try:
            address = await asyncio.to_thread(self._verifier.identify, der)
        except CertificateRefused as exc:
            return Presented(der, None, str(exc))
        return Presented(der, address)

    async def authenticate(
        self, presented: Presented | None, authzid: str, remote_ip: str, protocol: str
    ) -> CertOutcome:
        if presented is None:
            return CertOutcome(AuthOutcome(AuthStatus.FAILED), NO_CERTIFICATE)
        wanted = authzid.strip().lower()
        key = presented.address or wanted or "-"
        reservation = self._authenticator.throttle.reserve(key, remote_ip)
        if reservation is None:
            await asyncio.sleep(self._authenticator.failure_delay)
            return CertOutcome(AuthOutcome(AuthStatus.THROTTLED), "")
        try:
            result = await self._check(presented, wanted)
            if result.outcome.status in (AuthStatus.OK, AuthStatus.DISABLED):
                reservation.succeed()
            else:
                reservation.fail()
        finally:
            reservation.release()
        await self._record(result, remote_ip, protocol)
        if result.outcome.status is AuthStatus.OK and result.outcome.account is not None:
            account = result.outcome.account
            now = datetime.now(UTC)
            if account.last_login_at is None or now - account.last_login_at >= LOGIN_RECORD_INTERVAL:
                await self._store.record_login(account.id, now)
            log.info("%s: certificate login %s from %s", protocol, account.address, remote_ip)
        else:
            log.info("%s: certificate login refused from %s (%s): %s", protocol, remote_ip,
                     presented.address or "-", result.text)
            if result.outcome.status is AuthStatus.FAILED:
                await asyncio.sleep(self._authenticator.failure_delay)
        return result

    async def _record(self, result: CertOutcome, remote_ip: str, protocol: str) -> None:
        """The attempt in the account's login history (mailserver/loginlog.py)."""
        account = result.outcome.account
        if account is None and result.address:
            account = await self._store.get_account(result.address)
        if account is not None:
            ok = result.outcome.status is AuthStatus.OK
            detail = "certificate" if ok else f"certificate-{result.outcome.status.value}"
            self._authenticator.record(account, remote_ip, protocol, success=ok, detail=detail)

    async def _check(self, presented: Presented, wanted: str) -> CertOutcome:
        try:
            # Again: the certificate may have been revoked since the handshake.
            address = await asyncio.to_thread(self._verifier.identify, presented.der)
        except CertificateRefused as exc:
            return CertOutcome(AuthOutcome(AuthStatus.FAILED), f"{REFUSED}: {exc}")
        if wanted and wanted != address:
            return CertOutcome(AuthOutcome(AuthStatus.FAILED), WRONG_IDENTITY, address)
        account = await self._store.get_account(address)
        if account is None or not account.cert_login:
            return CertOutcome(AuthOutcome(AuthStatus.FAILED), NOT_ENABLED, address)
        if account.disabled:
            return CertOutcome(AuthOutcome(AuthStatus.DISABLED, account), "", address)
        return CertOutcome(AuthOutcome(AuthStatus.OK, account), "", address)




def enable(config: Config, store: MailStore, authenticator: Authenticator) -> CertLogin | None:
    """The EXTERNAL checker with its own TLS context for the IMAP and submission
    listeners, which asks for client certificates (the MX and the portal keep
    the plain one: browsers would prompt for a certificate); None while there is
    no CA to trust (run ``mailserver pki init`` or ``pki import``, then restart)."""
    ca = open_ca(config)
    context = server_context(config.tls_cert, config.tls_key)
    if request_client_certificates(context, ca) is None:
        return None
    return CertLogin(store, authenticator, ca, context)


__all__ = ["CertLogin", "CertOutcome", "Presented", "enable", "peer_certificate"]
