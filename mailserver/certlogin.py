"""TLS client certificate login: SASL EXTERNAL (RFC 4422 appendix A) for IMAP and submission.

The IMAP and submission listeners *request* (never require) a client
certificate, verified by OpenSSL against our CA and the imported trust
anchors (``pki/tls.py``). A verified certificate names its holder by the
rfc822Name of its subjectAltName (RFC 8550 section 4.4.2, as ``pki issue``
writes it); EXTERNAL's authorization identity, when given, must be one of
those addresses. The login is refused when the certificate is revoked in our
CA's index or in any CRL we hold (``pki revoke``, imported CRLs), when the
account has not opted in (``mailserver account set ADDRESS --cert-login on``)
or is disabled. The index and CRLs are read at each such login, so a
revocation by another process applies at once.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from cryptography import x509

from pki.ca import CertificateAuthority, PkiError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CertIdentity:
    addresses: tuple[str, ...]
    serial: int
    revoked: bool


class CertificateLogin:
    """Reads who a verified client certificate names, and whether it is revoked."""

    def __init__(self, ca: CertificateAuthority) -> None:
        self._ca = ca

    def _identity(self, der: bytes) -> CertIdentity | None:
        try:
            cert = x509.load_der_x509_certificate(der)
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            addresses = tuple(a.strip().lower() for a in san.get_values_for_type(x509.RFC822Name))
        except (ValueError, x509.ExtensionNotFound):
            return None
        serial = cert.serial_number
        try:
            revoked = serial in self._ca.revoked_serials() or any(
                crl.issuer == cert.issuer and crl.get_revoked_certificate_by_serial_number(serial) is not None
                for crl in self._ca.crls()
            )
        except PkiError as exc:
            # Cannot tell: refuse (a revoked certificate must never get in).
            log.error("certificate login: revocation status unknown: %s", exc)
            revoked = True
        return CertIdentity(addresses, serial, revoked)

    async def identity(self, der: bytes) -> CertIdentity | None:
        """Addresses, serial and revocation of a DER certificate; None when unusable."""
        return await asyncio.to_thread(self._identity, der)
