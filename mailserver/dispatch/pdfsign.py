"""Who signs a PDF, with which certificate and key (pki/pdfsig.py does the signing):
``mailserver pdf sign FILE --as AGENCY|ADDRESS`` and ``mailserver dispatch`` of a PDF.

The signer is an agency (its code or its address) or a person's address; the
certificate is the one S/MIME signing uses for that address
(``CertificateAuthority.valid_for``: an imported certificate of the government
CA wins over one of ours), and its key is decrypted with the same PKI
passphrase ($MAILSERVER_PKI_PASSPHRASE or ``pki.passphrase_file``): keys stay
encrypted on disk. The visible block names the agency and, for a person, the
person (from the directory; else the certificate's O= and CN=).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.x509.oid import NameOID

from mailserver.config import Config
from pki.ca import CertificateAuthority, CertRecord, PkiError
from pki.pdfsig import PdfSignError, StampText, sign_pdf
from storage.api import MailStore
from storage.directory import open_directory


class SignerError(Exception):
    """No such agency or address, or no usable certificate: the reason, Vietnamese first."""


@dataclass(frozen=True, slots=True)
class PdfSigner:
    address: str
    agency: str
    """The agency's name in the block ("Cơ quan: …")."""
    signer: str
    """The person's name, or the agency's name when the agency signs."""


async def resolve_signer(config: Config, store: MailStore, who: str) -> PdfSigner:
    """``who`` is an agency code, an agency address or a person's address."""
    directory = open_directory(store)
    wanted = who.strip().lower()
    if "@" not in wanted:
        agency = await directory.get_agency(wanted)
        if agency is None or not agency.address:
            raise SignerError(f"không có cơ quan / no such agency: {who}")
        return PdfSigner(agency.address.lower(), agency.name, agency.name)
    for agency in await directory.list_agencies():
        if agency.address and agency.address.lower() == wanted:
            return PdfSigner(wanted, agency.name, agency.name)
    person = await directory.person_by_address(wanted)
    if person is not None:
        agency = await directory.get_agency(person.agency_code)
        return PdfSigner(wanted, agency.name if agency else config.pki.organization, person.full_name)
    return PdfSigner(wanted, "", "")


def certificate_for(ca: CertificateAuthority, address: str) -> CertRecord:
    record = ca.valid_for(address)
    if record is None:
        raise SignerError(
            f"{address} chưa có chứng thư số còn hiệu lực / has no valid certificate: "
            f"run `mailserver pki issue {address}` (or import the government CA's with `pki import`)"
        )
    return record


def sign_document(config: Config, ca: CertificateAuthority, who: PdfSigner, data: bytes,
                  *, now: datetime | None = None) -> bytes:
    """``data`` signed by ``who`` (blocking: pyHanko runs its own event loop)."""
    record = certificate_for(ca, who.address)
    assert record.key is not None  # noqa: S101 - valid_for returns keyed records only
    try:
        key = ca.load_key(record.key)
        cert = ca.certificate(record.cert)
        chain = ca.extra_chain(record) if record.kind == "external" else ca.chain()
    except PkiError as exc:
        raise SignerError(f"không ký được / cannot sign: {exc}") from None
    organisations = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    agency = who.agency or (str(organisations[0].value) if organisations else config.pki.organization)
    signer = who.signer or (str(names[0].value) if names else who.address)
    stamp = StampText(agency, signer, who.address, now or datetime.now(UTC))
    try:
        return sign_pdf(data, cert=cert, key=key, chain=chain, stamp=stamp, tsa_url=config.pki.tsa_url,
                        font=config.pki.pdf_font, location="Đồng Nai, Việt Nam")
    except PdfSignError as exc:
        raise SignerError(str(exc)) from None


async def sign_document_async(config: Config, ca: CertificateAuthority, who: PdfSigner, data: bytes,
                              *, now: datetime | None = None) -> bytes:
    return await asyncio.to_thread(sign_document, config, ca, who, data, now=now)
