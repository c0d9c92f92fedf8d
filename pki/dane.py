"""DANE for SMTP (RFC 7672) over TLSA records (RFC 6698): matching a peer's chain.

Only the usages RFC 7672 section 3.1 allows for SMTP are usable: DANE-TA(2)
and DANE-EE(3); PKIX-TA(0) and PKIX-EE(1) are "unusable" (section 3.1.3), as
is any selector other than Cert(0)/SPKI(1) or matching type other than
Full(0)/SHA2-256(1)/SHA2-512(2) (RFC 6698 section 2.1).

* DANE-EE(3): the server's own certificate matches; neither its names nor its
  validity dates are checked (RFC 7672 section 3.1.1).
* DANE-TA(2): a certificate the server sent matches; the server's certificate
  must chain to it (each link checked with the issuer's key), be within its
  validity dates and name the MX host (or the TLSA base domain) in a DNS
  subjectAltName, a leading ``*`` standing for one label (section 3.2.3).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization

DANE_TA = 2
DANE_EE = 3


@dataclass(frozen=True, slots=True)
class Tlsa:
    usage: int
    selector: int
    mtype: int
    data: bytes

    @property
    def usable(self) -> bool:
        return self.usage in (DANE_TA, DANE_EE) and self.selector in (0, 1) and self.mtype in (0, 1, 2)

    @property
    def text(self) -> str:
        return f"{self.usage} {self.selector} {self.mtype} {self.data.hex()}"


def parse_tlsa(text: str) -> Tlsa | None:
    """Presentation form ``usage selector mtype hex`` (RFC 6698 section 2.2); None if malformed."""
    parts = text.split()
    if len(parts) < 4 or not all(p.isdigit() for p in parts[:3]):
        return None
    try:
        data = bytes.fromhex("".join(parts[3:]))
    except ValueError:
        return None
    return Tlsa(int(parts[0]), int(parts[1]), int(parts[2]), data)


def association(cert: x509.Certificate, selector: int, mtype: int) -> bytes:
    """The data a TLSA record of this selector and matching type holds for ``cert``."""
    if selector == 0:
        data = cert.public_bytes(serialization.Encoding.DER)
    else:
        data = cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    if mtype == 1:
        return hashlib.sha256(data).digest()
    if mtype == 2:
        return hashlib.sha512(data).digest()
    return data


def _matches(cert: x509.Certificate, record: Tlsa) -> bool:
    return association(cert, record.selector, record.mtype) == record.data


def _name_ok(cert: x509.Certificate, names: Sequence[str]) -> bool:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_names = [n.lower().rstrip(".") for n in san.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        dns_names = []
    for wanted in (n.lower().rstrip(".") for n in names):
        for have in dns_names:
            if have == wanted:
                return True
            if have.startswith("*.") and "." in wanted and wanted.split(".", 1)[1] == have[2:]:
                return True
    return False


def verify_chain(
    chain_der: Sequence[bytes], records: Sequence[Tlsa], names: Sequence[str], now: datetime | None = None
) -> str | None:
    """None when the peer chain (leaf first) satisfies a usable record, else why not."""
    usable = [r for r in records if r.usable]
    if not usable:
        return "no usable TLSA record"
    if not chain_der:
        return "no certificate"
    try:
        chain = [x509.load_der_x509_certificate(der) for der in chain_der]
    except ValueError as exc:
        return f"unreadable certificate: {exc}"
    leaf = chain[0]
    if any(r.usage == DANE_EE and _matches(leaf, r) for r in usable):
        return None
    now = now or datetime.now(UTC)
    for index, cert in enumerate(chain):
        if not any(r.usage == DANE_TA and _matches(cert, r) for r in usable):
            continue
        try:
            for lower, upper in zip(chain[:index], chain[1 : index + 1], strict=True):
                lower.verify_directly_issued_by(upper)
        except (ValueError, TypeError, Exception) as exc:  # noqa: BLE001 - InvalidSignature and friends
            return f"chain to the trust anchor broken: {exc.__class__.__name__}"
        if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
            return "certificate expired or not yet valid"
        if not _name_ok(leaf, names):
            return f"certificate does not name {', '.join(names)}"
        return None
    return "no certificate matches the TLSA records"


def own_tlsa(cert_pem: bytes) -> str:
    """The ``3 1 1`` record of our own certificate (RFC 7671 section 5.1 recommends it)."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    return Tlsa(DANE_EE, 1, 1, association(cert, 1, 1)).text
