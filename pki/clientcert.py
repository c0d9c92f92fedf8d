"""TLS client certificates for SASL EXTERNAL (RFC 4422 appendix A): asking for
them on the listeners and deciding whose they are.

Theory of operation
-------------------
``request_client_certificates(context, ca)`` makes a server context *ask* for a
client certificate without requiring one (``ssl.CERT_OPTIONAL``), with our root,
issuing CA and imported anchors loaded. OpenSSL aborts the handshake when a
presented certificate fails its own verification, which would lock out a client
that offers an unrelated certificate (Thunderbird may pick one by itself, and
Python cannot send the list of acceptable CAs); so where possible the context
gets a verify callback that lets every presented certificate through the
handshake (the client still proves it holds the key: CertificateVerify is
checked whatever the callback says) and the decision moves here, to
``ClientCertificates.identify``, made when the client authenticates. Where the
callback cannot be installed (``deferred`` False) OpenSSL's verification stands
and a certificate of an unknown CA ends the handshake instead.

``identify(der)`` accepts a certificate that (1) is valid now, not a CA, with
digitalSignature if it has a KeyUsage and clientAuth or emailProtection if it
has an ExtendedKeyUsage (our S/MIME certificates from ``pki issue`` carry
emailProtection); (2) chains by signature to one of the CA's anchors through
our issuing CA or directly; (3) is not revoked: neither marked in the CA's index
(effective at once, before the CRL is re-signed) nor listed in a CRL of its
issuer (``crl.pem``, ``pki.crl_files``); and (4) names an address: the first
rfc822Name of its subjectAltName, else the subject's emailAddress. It returns
the lower-case address or raises ``CertificateRefused`` with the reason.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import logging
import ssl
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pki.ca import CertificateAuthority, PkiError

log = logging.getLogger(__name__)

MAX_CHAIN: Final = 4
"""CA certificates walked above the client's certificate at most."""
_ACCEPTED_EKU: Final = (ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.EMAIL_PROTECTION)
_SSL_VERIFY_PEER: Final = 1


class CertificateRefused(Exception):  # noqa: N818 - a refusal, not a bug
    """The client certificate cannot authenticate anyone; ``str()`` says why,
    in Vietnamese then English (``english`` alone for logs)."""

    def __init__(self, vietnamese: str, english: str) -> None:
        super().__init__(f"{vietnamese} / {english}")
        self.english = english


_VERIFY_CALLBACK_TYPE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)


def _accept(_preverify_ok: int, _store_ctx: int | None) -> int:
    return 1


_let_through = _VERIFY_CALLBACK_TYPE(_accept)
"""Kept referenced for the process's life: OpenSSL holds the C pointer."""


def _defer_verification(context: ssl.SSLContext) -> bool:
    """Install ``_let_through`` as the OpenSSL verify callback of ``context``
    (module docstring); False when this Python's ssl module does not allow it.

    The SSL_CTX pointer is the first field after the object header of CPython's
    SSLContext; it is only used after checking, through two verify modes set
    from Python, that it really is this context's SSL_CTX."""
    try:
        import _ssl

        lib = ctypes.CDLL(_ssl.__file__)
        get_mode = lib.SSL_CTX_get_verify_mode
        set_verify = lib.SSL_CTX_set_verify
    except (ImportError, OSError, AttributeError):
        return False
    get_mode.argtypes = [ctypes.c_void_p]
    get_mode.restype = ctypes.c_int
    set_verify.argtypes = [ctypes.c_void_p, ctypes.c_int, _VERIFY_CALLBACK_TYPE]
    set_verify.restype = None
    pointer = ctypes.c_void_p.from_address(id(context) + object.__basicsize__).value
    if not pointer:
        return False
    context.verify_mode = ssl.CERT_REQUIRED
    required = get_mode(pointer)
    context.verify_mode = ssl.CERT_OPTIONAL
    if required != 3 or get_mode(pointer) != _SSL_VERIFY_PEER:
        return False
    set_verify(pointer, _SSL_VERIFY_PEER, _let_through)
    return True


def request_client_certificates(context: ssl.SSLContext, ca: CertificateAuthority) -> bool | None:
    """Ask TLS clients of ``context`` for a certificate (optional). Returns None
    when the CA has nothing to verify against (no request made), else whether the
    verification is deferred to ``identify`` (module docstring)."""
    try:
        anchors = ca.anchors()
        intermediates = ca.intermediates()
    except (PkiError, OSError, ValueError) as exc:
        log.error("pki: client certificates not requested: %s", exc)
        return None
    if not anchors:
        return None
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in anchors + intermediates)
    context.load_verify_locations(cadata=pem.decode("ascii"))
    context.verify_mode = ssl.CERT_OPTIONAL
    deferred = _defer_verification(context)
    if not deferred:
        log.warning("pki: OpenSSL verifies client certificates itself: a certificate of an unknown CA "
                    "ends the TLS handshake")
    return deferred


def certificate_address(cert: x509.Certificate) -> str | None:
    """The address a certificate names: first SAN rfc822Name, else subject emailAddress."""
    with contextlib.suppress(x509.ExtensionNotFound):
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        emails = san.get_values_for_type(x509.RFC822Name)
        if emails:
            return emails[0].strip().lower()
    attrs = cert.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)
    return str(attrs[0].value).strip().lower() if attrs else None


def _valid_at(cert: x509.Certificate, now: dt.datetime) -> bool:
    return cert.not_valid_before_utc <= now <= cert.not_valid_after_utc


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


class ClientCertificates:
    """Decides whose a client certificate is (module docstring)."""

    def __init__(self, ca: CertificateAuthority) -> None:
        self.ca = ca

    def identify(self, der: bytes, now: dt.datetime | None = None) -> str:
        when = now or dt.datetime.now(dt.UTC)
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            raise CertificateRefused("chứng thư không đọc được", "unreadable certificate") from None
        if not _valid_at(cert, when):
            raise CertificateRefused("chứng thư hết hạn hoặc chưa có hiệu lực",
                                     "certificate expired or not yet valid")
        if _is_ca(cert):
            raise CertificateRefused("là chứng thư của CA", "a CA certificate")
        with contextlib.suppress(x509.ExtensionNotFound):
            usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
            if not usage.digital_signature:
                raise CertificateRefused("mục đích khóa không gồm ký số", "key usage lacks digitalSignature")
        with contextlib.suppress(x509.ExtensionNotFound):
            eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            if not any(oid in eku for oid in _ACCEPTED_EKU):
                raise CertificateRefused("mục đích sử dụng không cho phép xác thực",
                                         "extended key usage is neither clientAuth nor emailProtection")
        try:
            self._chain(cert, when)
            self._not_revoked(cert)
        except (PkiError, OSError) as exc:
            raise CertificateRefused("không đọc được dữ liệu CA", f"CA unavailable: {exc}") from None
        address = certificate_address(cert)
        if not address or "@" not in address:
            raise CertificateRefused("chứng thư không ghi địa chỉ thư",
                                     "the certificate names no e-mail address")
        return address

    def _chain(self, cert: x509.Certificate, when: dt.datetime) -> None:
        anchors = self.ca.anchors()
        anchor_prints = {a.fingerprint(hashes.SHA256()) for a in anchors}
        candidates = self.ca.intermediates() + anchors
        current = cert
        for _ in range(MAX_CHAIN):
            issuer = next((c for c in candidates if c.subject == current.issuer
                           and c is not current and _signed_by(current, c)), None)
            if issuer is None:
                raise CertificateRefused("không do CA tin cậy cấp", "not issued by a trusted CA")
            if not _is_ca(issuer) or not _valid_at(issuer, when):
                raise CertificateRefused("bên cấp không phải CA hợp lệ", "issuer is not a valid CA")
            if issuer.fingerprint(hashes.SHA256()) in anchor_prints:
                return
            current = issuer
        raise CertificateRefused("chuỗi chứng thư quá dài", "certificate chain too long")

    def _not_revoked(self, cert: x509.Certificate) -> None:
        record = self.ca.revoked_serials().get(cert.serial_number)
        if record is not None:
            with contextlib.suppress(OSError, ValueError):
                if self.ca.certificate(record.cert).issuer == cert.issuer:
                    raise CertificateRefused("chứng thư đã bị thu hồi", "certificate revoked")
        for crl in self.ca.crls():
            if crl.issuer == cert.issuer and crl.get_revoked_certificate_by_serial_number(
                cert.serial_number
            ) is not None:
                raise CertificateRefused("chứng thư đã bị thu hồi (CRL)", "certificate revoked (CRL)")


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


__all__ = ["CertificateRefused", "ClientCertificates", "certificate_address", "request_client_certificates"]
