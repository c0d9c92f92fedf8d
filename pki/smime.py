"""S/MIME signing and verification of whole messages (RFC 8551 section 3.5.3:
``multipart/signed`` per RFC 1847 with ``application/pkcs7-signature``;
RFC 5652 SignedData; RFC 8550 certificate handling).

Signing (``sign_message``) moves the content header fields (Content-*) of the
message into the signed inner entity, keeps the others outside, and appends a
detached SHA-256 signature (``micalg=sha-256``, RFC 8551 section 3.5.3.2).
The inner entity is signed exactly as sent, in canonical CRLF form (section
3.1.1); 8bit leaves are re-encoded base64 first (section 3.1.2: signed data
must be 7-bit safe, because a relay that downgrades 8bit would break the
signature). Mail that already carries a signature or is encrypted (the user's
own client signed it) passes through unchanged.

Verification (``SmimeVerifier.verify``) takes the first body part's raw octets,
checks the CMS signature (signed attributes' messageDigest, RFC 5652 section
5.4), builds the path from the signer to a trust anchor (internal root,
imported and configured anchors), checks validity dates and revocation (the
internal index and every known CRL, RFC 5280 section 6.3) and returns a
status for the ``X-Signature-Status`` header field. A signature that holds is
``valid`` only when the From address is one the signer's certificate names
(rfc822Name in the subjectAltName, RFC 8550 section 3: "receiving agents MUST
check that the address in the From or Sender header field of a mail message
matches an Internet mail address in the signer's certificate"); otherwise it
is ``mismatch``. We match From only, stricter than the RFC's "From or
Sender": the status sits next to the From a reader trusts, and a Sender that
signs for somebody else's From must not make that From look signed.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.generator
import email.parser
import email.policy
import hashlib
import io
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses
from typing import Final, Literal

from asn1crypto import cms
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from cryptography.x509.oid import ExtendedKeyUsageOID

from pki.ca import CertificateAuthority, PkiError, PrivateKey

STATUS_FIELD: Final = "X-Signature-Status"
_CONTENT_FIELD: Final = re.compile(rb"^content-", re.IGNORECASE)
_SIGNED_TYPES: Final = ("multipart/signed", "application/pkcs7-mime", "application/x-pkcs7-mime",
                        "multipart/encrypted")
_HEADERS: Final = email.parser.BytesHeaderParser(policy=email.policy.compat32)
_PARSER: Final = email.parser.BytesParser(policy=email.policy.compat32)
_HASHES: Final[dict[str, type[hashes.HashAlgorithm]]] = {
    "sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512,
}

Status = Literal["valid", "invalid", "revoked", "untrusted", "mismatch"]


def split_message(message: bytes) -> tuple[list[bytes], bytes]:
    """Header fields (each with its folded continuation lines and CRLF) and body."""
    end = message.find(b"\r\n\r\n")
    head, body = (message, b"") if end < 0 else (message[: end + 2], message[end + 4 :])
    fields: list[bytes] = []
    for line in head.split(b"\r\n")[:-1] if head.endswith(b"\r\n") else head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line + b"\r\n"
        else:
            fields.append(line + b"\r\n")
    return fields, body


def _content_type(fields: Sequence[bytes]) -> str:
    parsed = _HEADERS.parsebytes(b"".join(fields) + b"\r\n")
    return parsed.get_content_type().lower() if parsed.get("Content-Type") else "text/plain"


def is_signed_or_encrypted(message: bytes) -> bool:
    fields, _ = split_message(message)
    return _content_type(fields) in _SIGNED_TYPES


def _seven_bit(entity: bytes) -> bytes:
    """Re-encode 8bit/binary leaves as base64 (RFC 8551 section 3.1.2)."""
    if entity.isascii():
        return entity
    msg = _PARSER.parsebytes(entity)
    for part in msg.walk():
        if part.is_multipart():
            continue
        cte = str(part.get("Content-Transfer-Encoding", "7bit")).strip().lower()
        if cte in ("base64", "quoted-printable"):
            continue
        raw = part.get_payload(decode=True)
        payload = raw if isinstance(raw, bytes) else b""
        del part["Content-Transfer-Encoding"]
        part["Content-Transfer-Encoding"] = "base64"
        part.set_payload(base64.encodebytes(payload).decode("ascii"))
    out = io.BytesIO()
    email.generator.BytesGenerator(out, policy=email.policy.compat32.clone(linesep="\r\n")).flatten(msg)
    return out.getvalue()


def _fold_base64(data: bytes) -> bytes:
    text = base64.b64encode(data)
    return b"".join(text[i : i + 76] + b"\r\n" for i in range(0, len(text), 76))


def sign_message(message: bytes, cert: x509.Certificate, key: PrivateKey,
                 chain: Sequence[x509.Certificate] = ()) -> bytes:
    """The message as S/MIME ``multipart/signed`` (see module docstring).
    ``message`` uses CRLF line ends; an already signed message is returned as is."""
    fields, body = split_message(message)
    if _content_type(fields) in _SIGNED_TYPES:
        return message
    outer = [f for f in fields if not _CONTENT_FIELD.match(f) and not f.lower().startswith(b"mime-version:")]
    inner_fields = [f for f in fields if _CONTENT_FIELD.match(f)]
    if not inner_fields:
        inner_fields = [b"Content-Type: text/plain; charset=us-ascii\r\n"]
    inner = _seven_bit(b"".join(inner_fields) + b"\r\n" + body)
    builder = pkcs7.PKCS7SignatureBuilder().set_data(inner).add_signer(cert, key, hashes.SHA256())
    for extra in chain:
        builder = builder.add_certificate(extra)
    # Binary: the content is already canonical CRLF; OpenSSL must not touch it.
    signature = builder.sign(Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary])
    boundary = f"----=_smime_{secrets.token_hex(12)}".encode("ascii")
    return b"".join([
        *outer,
        b"MIME-Version: 1.0\r\n",
        b'Content-Type: multipart/signed; protocol="application/pkcs7-signature";\r\n'
        b'\tmicalg=sha-256; boundary="' + boundary + b'"\r\n',
        b"\r\n",
        b"This is an S/MIME signed message.\r\n",
        b"--" + boundary + b"\r\n",
        inner,
        b"\r\n--" + boundary + b"\r\n",
        b'Content-Type: application/pkcs7-signature; name="smime.p7s"\r\n',
        b"Content-Transfer-Encoding: base64\r\n",
        b'Content-Disposition: attachment; filename="smime.p7s"\r\n',
        b"Content-Description: S/MIME Cryptographic Signature\r\n",
        b"\r\n",
        _fold_base64(signature),
        b"\r\n--" + boundary + b"--\r\n",
    ])


# -- verification --------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SignatureStatus:
    status: Status
    signer: str | None = None
    reason: str = ""

    def header_value(self) -> str:
        value: str = self.status
        if self.signer:
            value += f"; signer={self.signer}"
        if self.reason and self.status != "valid":
            # The reason may quote the sender's From: no quotes, backslashes or
            # line breaks may escape the quoted-string (RFC 5322 section 3.2.4).
            reason = "".join(c for c in self.reason if c.isprintable() and c not in '"\\')
            value += f"; reason=\"{reason}\""
        return value

    def header(self) -> bytes:
        return f"{STATUS_FIELD}: {self.header_value()}\r\n".encode()


def signed_parts(message: bytes) -> tuple[bytes, bytes] | None:
    """(signed content octets, DER signature) of a ``multipart/signed`` message
    with an S/MIME signature, or None when the message is not one."""
    fields, body = split_message(message)
    parsed = _HEADERS.parsebytes(b"".join(fields) + b"\r\n")
    if parsed.get_content_type().lower() != "multipart/signed":
        return None
    protocol = str(parsed.get_param("protocol") or "").lower()
    if protocol not in ("application/pkcs7-signature", "application/x-pkcs7-signature"):
        return None
    boundary = parsed.get_boundary()
    if not boundary:
        return None
    delim = b"--" + boundary.encode("utf-8", "replace")
    text = b"\r\n" + body
    # RFC 2046 section 5.1.1: the CRLF before a delimiter belongs to it.
    starts = [m.start() for m in re.finditer(re.escape(b"\r\n" + delim), text)]
    if len(starts) < 3:
        raise ValueError("multipart/signed needs two body parts")
    first_end = text.index(b"\r\n", starts[0] + 2 + len(delim)) + 2
    content = text[first_end : starts[1]]
    second_start = text.index(b"\r\n", starts[1] + 2 + len(delim)) + 2
    sig_part = _PARSER.parsebytes(text[second_start : starts[2]])
    der = sig_part.get_payload(decode=True)
    if not isinstance(der, bytes) or not der:
        raise ValueError("empty signature part")
    return content, der


def _verify_cms(content: bytes, der: bytes) -> tuple[x509.Certificate, list[x509.Certificate]]:
    """Check the SignedData over ``content``; return the signer and the other
    certificates carried. Raises InvalidSignature or ValueError."""
    info = cms.ContentInfo.load(der)
    if info["content_type"].native != "signed_data":
        raise ValueError("not SignedData")
    signed = info["content"]
    certs = [x509.load_der_x509_certificate(c.chosen.dump()) for c in (signed["certificates"] or [])
             if c.name == "certificate"]
    infos = list(signed["signer_infos"])
    if not infos:
        raise ValueError("no signer")
    si = infos[0]
    sid = si["sid"]
    signer: x509.Certificate | None = None
    for cert in certs:
        if sid.name == "issuer_and_serial_number":
            if cert.serial_number == sid.chosen["serial_number"].native and \
                    cert.issuer.public_bytes() == sid.chosen["issuer"].dump():
                signer = cert
        else:
            try:
                ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
            except x509.ExtensionNotFound:
                continue
            if ski == sid.chosen.native:
                signer = cert
    if signer is None:
        raise ValueError("signer certificate not included")
    digest_name = str(si["digest_algorithm"]["algorithm"].native)
    hash_cls = _HASHES.get(digest_name)
    if hash_cls is None:
        raise ValueError(f"unsupported digest {digest_name}")
    attrs = si["signed_attrs"]
    if attrs.native is not None and len(attrs):
        digest = next((a["values"][0].native for a in attrs if a["type"].native == "message_digest"), None)
        if digest != hashlib.new(digest_name, content).digest():
            raise InvalidSignature("message digest mismatch (content changed)")
        # RFC 5652 section 5.4: the signature covers the DER of the SET OF attributes.
        to_verify = b"\x31" + attrs.dump()[1:]
    else:
        to_verify = content
    signature = si["signature"].native
    public = signer.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        public.verify(signature, to_verify, ec.ECDSA(hash_cls()))
    elif isinstance(public, rsa.RSAPublicKey):
        public.verify(signature, to_verify, padding.PKCS1v15(), hash_cls())
    else:
        raise ValueError("unsupported signer key type")
    return signer, [c for c in certs if c is not signer]


def signer_addresses(cert: x509.Certificate) -> list[str]:
    """The rfc822Name entries of the subjectAltName (RFC 8550 section 3), lower-case.
    The legacy emailAddress attribute of the subject is read only when the
    certificate has no subjectAltName (RFC 8550 section 3 allows it there)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        from cryptography.x509.oid import NameOID

        return [str(a.value).lower() for a in cert.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)]
    return [a.lower() for a in san.get_values_for_type(x509.RFC822Name)]


def from_addresses(message: bytes) -> list[str]:
    """The addresses of the message's From field(s), lower-case."""
    fields, _ = split_message(message)
    parsed = _HEADERS.parsebytes(b"".join(fields) + b"\r\n")
    values = [str(v) for v in parsed.get_all("From") or []]
    return [addr.lower() for _, addr in getaddresses(values) if addr]


class SmimeVerifier:
    """Verifies S/MIME signatures against the CA directory's anchors and CRLs.
    Anchors and CRLs are read per call: they are small and change rarely, and
    a revocation must take effect without a restart."""

    def __init__(self, ca: CertificateAuthority) -> None:
        self._ca = ca

    def verify(self, message: bytes, now: dt.datetime | None = None) -> SignatureStatus | None:
        try:
            parts = signed_parts(message)
        except ValueError as exc:
            return SignatureStatus("invalid", reason=f"malformed: {exc}")
        if parts is None:
            return None
        content, der = parts
        try:
            signer, carried = _verify_cms(content, der)
        except InvalidSignature as exc:
            return SignatureStatus("invalid", reason=str(exc) or "bad signature")
        except (ValueError, TypeError, KeyError) as exc:
            return SignatureStatus("invalid", reason=f"unreadable signature: {exc}")
        addresses = signer_addresses(signer)
        who = addresses[0] if addresses else signer.subject.rfc4514_string()
        try:
            status = self._path(signer, carried, who, now or dt.datetime.now(dt.UTC))
        except PkiError as exc:
            return SignatureStatus("untrusted", who, str(exc))
        if status.status != "valid":
            return status
        # RFC 8550 section 3 (module docstring): the signature holds, but is it
        # the From's? Every From address must be one the certificate names.
        senders = from_addresses(message)
        if not senders or any(a not in addresses for a in senders):
            shown = ", ".join(senders) or "none"
            return SignatureStatus("mismatch", who, f"From {shown} is not in the signer's certificate")
        return status

    def _path(self, signer: x509.Certificate, carried: list[x509.Certificate], who: str,
              now: dt.datetime) -> SignatureStatus:
        anchors = self._ca.anchors()
        pool = carried + self._ca.intermediates()
        revoked_internal = self._ca.revoked_serials()
        internal_issuer = self._ca.issuing().subject if self._ca.initialised else None
        crls = self._ca.crls()
        try:
            eku = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            usable = {ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE}
            if not usable & set(eku):
                return SignatureStatus("invalid", who, "certificate not for e-mail protection")
        except x509.ExtensionNotFound:
            pass
        cert = signer
        for _depth in range(8):
            if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
                subject = cert.subject.rfc4514_string()
                return SignatureStatus("invalid", who, f"certificate expired or not yet valid ({subject})")
            if (internal_issuer is not None and cert.issuer == internal_issuer
                    and cert.serial_number in revoked_internal):
                return SignatureStatus("revoked", who, revoked_internal[cert.serial_number].reason or "")
            for crl in crls:
                if crl.issuer == cert.issuer:
                    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
                    if entry is not None:
                        return SignatureStatus("revoked", who, "listed in CRL")
            for anchor in anchors:
                if cert == anchor:
                    return SignatureStatus("valid", who)
                if anchor.subject == cert.issuer:
                    try:
                        cert.verify_directly_issued_by(anchor)
                    except (ValueError, TypeError, InvalidSignature):
                        continue
                    return SignatureStatus("valid", who)
            parent = None
            for candidate in pool:
                if candidate.subject == cert.issuer and candidate != cert:
                    try:
                        cert.verify_directly_issued_by(candidate)
                    except (ValueError, TypeError, InvalidSignature):
                        continue
                    parent = candidate
                    break
            if parent is None:
                return SignatureStatus("untrusted", who, "no path to a trust anchor")
            cert = parent
        return SignatureStatus("untrusted", who, "certificate path too long")


_STATUS_LINE: Final = re.compile(rb"^x-signature-status[ \t]*:", re.IGNORECASE)


def with_status_header(message: bytes, status: SignatureStatus | None) -> bytes:
    """Drop any ``X-Signature-Status`` already present (a sender must not be able to
    forge the result) and prepend ours, if any."""
    fields, body = split_message(message)
    if any(_STATUS_LINE.match(f) for f in fields):
        kept = [f for f in fields if not _STATUS_LINE.match(f)]
        message = b"".join(kept) + b"\r\n" + body
    return (status.header() if status is not None else b"") + message


def parse_message(message: bytes) -> Message:
    return _PARSER.parsebytes(message)
