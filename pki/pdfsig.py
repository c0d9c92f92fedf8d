"""Signatures inside PDF documents: PAdES signing and verification (ETSI EN 319 142-1
baseline B-B and B-T; ISO 32000-1 section 12.8; CMS per RFC 5652, time-stamps per
RFC 3161), with pyHanko and its certificate validator.

Vietnamese official documents travel as PDF files signed inside the PDF with the
agency's key (Nghị định 30/2020/NĐ-CP on clerical work; Nghị định 23/2025/NĐ-CP
on electronic signatures); Decision 70/2009/QĐ-UBND Điều 11 gives the digital
signature its weight. Mail servers sign the envelope at best (S/MIME, which no
document-management system keeps); this module looks inside.

Verification (``verify_pdf``) gives one ``PdfCheck`` per file, worst signature
first: ``invalid`` (the bytes changed after signing, the CMS signature or the
time-stamp token does not hold, the file is not a readable PDF, or it was too
large or too slow to check), ``revoked`` (the signer's certificate or one above
it is revoked: embedded revocation data -- the DSS dictionary and Adobe's
revocation archival attribute --, configured CRL files, our own index, or
OCSP/CRL fetched over the network only when ``fetch`` is set), ``untrusted``
(no path to a trust anchor, or expired), ``valid``, or ``unsigned`` (a PDF
with no signature). ``signed-at`` is the time of a trusted RFC 3161 time-stamp
when there is one, else the time the signer's software claimed (``/M`` and the
CMS signing-time attribute: "claimed").

Signing (``sign_pdf``) adds an incremental update with one PAdES signature
(ETSI.CAdES.detached, SHA-256) and a visible signature block on the last page,
laid out as NĐ 30/2020 appendix I asks of an agency's signature on a digital
copy: the agency, the signer, the time in ISO 8601 with the Vietnamese offset
(+07:00). With a TSA URL the signature gets a time-stamp (B-T). The block is
drawn with a TrueType font (DejaVu Sans: Vietnamese letters); pyHanko writes
glyph widths in font units, which PDF reads per 1000 units of the em, so the
font is subset to the block's letters and rescaled to 1000 units first.

Every function here takes and returns plain bytes and dataclasses so that the
caller may run it in a worker process and kill that worker on a time-out.
"""

from __future__ import annotations

import datetime as dt
import email.parser
import email.policy
import io
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any, Final, Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pki.ca import PkiError, PrivateKey

Status = Literal["valid", "invalid", "revoked", "untrusted", "unsigned"]
HEADER: Final = "X-PDF-Signature"
VN_TIME: Final = dt.timezone(dt.timedelta(hours=7))
DEFAULT_FONT: Final = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
_RANK: Final[dict[str, int]] = {"invalid": 0, "revoked": 1, "untrusted": 2, "valid": 3, "unsigned": 4}
_PARSER: Final = email.parser.BytesParser(policy=email.policy.compat32)
log = logging.getLogger(__name__)
# pyHanko logs every failed path search with a traceback at WARNING; the verdict
# is what we report (the header, the CLI), so its own loggers keep to errors.
for _name in ("pyhanko", "pyhanko_certvalidator", "fontTools"):
    logging.getLogger(_name).setLevel(logging.ERROR)


class PdfSignError(PkiError):
    """The document cannot be signed (not a PDF, encrypted, no font...)."""


# -- verification --------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PdfTrust:
    """What a verification trusts, as DER octets (picklable for a worker process)."""

    anchors: tuple[bytes, ...] = ()
    intermediates: tuple[bytes, ...] = ()
    crls: tuple[bytes, ...] = ()
    revoked: frozenset[tuple[bytes, int]] = frozenset()
    """(issuer name DER, serial) of certificates revoked in our own index: a
    revocation takes effect before the next CRL is signed."""
    fetch: bool = False
    """Fetch OCSP responses and CRLs named in the certificates (network)."""

    @classmethod
    def build(cls, anchors: Sequence[x509.Certificate], intermediates: Sequence[x509.Certificate] = (),
              crls: Sequence[x509.CertificateRevocationList] = (),
              revoked: Sequence[x509.Certificate] = (), *, fetch: bool = False) -> PdfTrust:
        der = serialization.Encoding.DER
        return cls(
            anchors=tuple(c.public_bytes(der) for c in anchors),
            intermediates=tuple(c.public_bytes(der) for c in intermediates),
            crls=tuple(c.public_bytes(der) for c in crls),
            revoked=frozenset((c.issuer.public_bytes(), c.serial_number) for c in revoked),
            fetch=fetch,
        )


@dataclass(frozen=True, slots=True)
class PdfCheck:
    """The verdict on one PDF file (its worst signature)."""

    file: str
    status: Status
    signer: str = ""
    signed_at: str = ""
    """ISO 8601 in +07:00, or ""."""
    timestamped: bool = False
    """``signed_at`` comes from a trusted RFC 3161 time-stamp (else the signer's claim)."""
    signatures: int = 0
    reason: str = ""

    def parameters(self) -> list[str]:
        found = [f'file="{_quoted(self.file, 150)}"', f"status={self.status}"]
        if self.signer:
            found.append(f'signer="{_quoted(self.signer, 150)}"')
        if self.signed_at:
            found.append(f"signed-at={self.signed_at}")
            if self.timestamped:
                found.append("timestamp=yes")
        if self.reason and self.status != "valid":
            found.append(f'reason="{_quoted(self.reason, 150)}"')
        return found

    def header_value(self) -> str:
        return "; ".join(self.parameters())

    def header(self) -> bytes:
        """The field, folded between parameters when long (RFC 5322 section 2.2.3:
        a line stays well under 998 octets whatever the file name)."""
        value = self.header_value()
        if len(HEADER) + 2 + len(value.encode()) > 78:
            value = ";\r\n ".join(self.parameters())
        return f"{HEADER}: {value}\r\n".encode()

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _quoted(text: str, limit: int) -> str:
    """Inside a quoted-string (RFC 5322 section 3.2.4): no quote, backslash or
    control character may escape it, whatever a sender put in a file name."""
    clean = "".join(c if c.isprintable() and c not in '"\\' else "_" for c in text)
    return clean[:limit]


def _vn(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(VN_TIME).isoformat(timespec="seconds")


def _signer_name(cert: Any) -> str:
    """The signer's common name (asn1crypto certificate), else the whole subject."""
    try:
        native = cert.subject.native
        name = native.get("common_name") or cert.subject.human_friendly
        return str(name[0] if isinstance(name, list) else name)
    except Exception:  # noqa: BLE001 - a display name never fails a check
        return "?"


def _revinfo(reader: Any) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """(CRLs, OCSP responses, certificates) kept in the document's DSS
    (ETSI EN 319 142-1 section 5.4), as DER."""
    crls: list[bytes] = []
    ocsps: list[bytes] = []
    certs: list[bytes] = []
    try:
        dss = reader.root.get("/DSS")
        if dss is None:
            return crls, ocsps, certs
        dss = dss.get_object()
        for key, into in (("/CRLs", crls), ("/OCSPs", ocsps), ("/Certs", certs)):
            for ref in dss.get(key, []) or []:
                into.append(ref.get_object().data)
    except Exception as exc:  # noqa: BLE001 - unreadable DSS: validate without it
        log.debug("pdf: unreadable DSS: %s", exc)
    return crls, ocsps, certs


def _archival(embedded: Any) -> tuple[list[Any], list[Any]]:
    """CRLs and OCSP responses of the Adobe revocation-information attribute
    (ISO 32000-1 section 12.8.3.3.2) that the signer embedded."""
    try:
        for attr in embedded.signer_info["signed_attrs"]:
            if attr["type"].native == "adobe_revocation_info_archival":
                value = attr["values"][0]
                return list(value["crl"] or []), list(value["ocsp"] or [])
    except Exception as exc:  # noqa: BLE001 - malformed attribute: ignore it
        log.debug("pdf: unreadable revocation archival attribute: %s", exc)
    return [], []


def _context(trust: PdfTrust, crls: Sequence[Any], ocsps: Sequence[Any], certs: Sequence[Any],
             moment: dt.datetime | None = None) -> Any:
    from asn1crypto import x509 as asn1_x509
    from pyhanko_certvalidator import ValidationContext

    return ValidationContext(
        trust_roots=[asn1_x509.Certificate.load(c) for c in trust.anchors],
        other_certs=[asn1_x509.Certificate.load(c) for c in (*trust.intermediates, *certs)],
        crls=[*trust.crls, *crls],
        ocsps=list(ocsps),
        allow_fetching=trust.fetch,
        # Revocation data that cannot be had (no network here) is not an error;
        # data that is at hand and lists the certificate is (RFC 5280 section 6.3).
        revocation_mode="soft-fail",
        moment=moment,
    )


def _listed(path: Sequence[Any], crls: Sequence[bytes]) -> bool:
    """Whether a CRL at hand, signed by the issuer, lists a certificate of the
    path (RFC 5280 section 6.3). pyHanko's validator consults CRLs only for
    certificates that name a distribution point; a CRL file an operator
    configured (``pki.crl_files``) counts whatever the certificate says."""
    if len(path) < 2 or not crls:
        return False
    certs = [x509.load_der_x509_certificate(c.dump()) for c in path]
    loaded = []
    for der in crls:
        try:
            loaded.append(x509.load_der_x509_crl(der))
        except ValueError:
            continue
    for issuer, cert in zip(certs, certs[1:], strict=False):
        for crl in loaded:
            if crl.issuer != cert.issuer:
                continue
            if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is None:
                continue
            try:
                if crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
                    return True
            except (TypeError, ValueError):
                continue
    return False


def _one(embedded: Any, trust: PdfTrust, revinfo: tuple[list[bytes], list[bytes], list[bytes]]
         ) -> tuple[Status, str, str, bool, str]:
    """(status, signer, signed-at, time-stamped, reason) of one signature."""
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.settings import KeyUsageConstraints
    from pyhanko.sign.validation.status import SignatureCoverageLevel

    crls, ocsps, certs = revinfo
    extra_crls, extra_ocsps = _archival(embedded)
    usage = KeyUsageConstraints(key_usage={"non_repudiation", "digital_signature"})
    context = _context(trust, [*crls, *extra_crls], [*ocsps, *extra_ocsps], certs)
    status = validate_pdf_signature(embedded, context, key_usage_settings=usage)
    signer = _signer_name(status.signing_cert)
    claimed = status.signer_reported_dt or embedded.self_reported_timestamp
    stamp = status.timestamp_validity
    stamped = stamp is not None and stamp.intact and stamp.valid and stamp.trusted
    when = _vn(stamp.timestamp) if stamped and stamp is not None else (_vn(claimed) if claimed else "")
    if not (status.intact and status.valid):
        return "invalid", signer, when, stamped, "the document or the signature was altered"
    if status.coverage not in (SignatureCoverageLevel.ENTIRE_FILE, SignatureCoverageLevel.ENTIRE_REVISION):
        return "invalid", signer, when, stamped, "the signature does not cover its revision"
    if status.coverage != SignatureCoverageLevel.ENTIRE_FILE and not (
        status.docmdp_ok or status.modification_level is None
    ):
        return "invalid", signer, when, stamped, "changed after signing"
    if stamp is not None and not (stamp.intact and stamp.valid):
        return "invalid", signer, when, stamped, "the time-stamp token does not hold"
    if status.revoked:
        return "revoked", signer, when, stamped, "certificate revoked"
    path = list(status.validation_path.iter_certs(include_root=True)) if status.validation_path else []
    for cert in path[1:] or [status.signing_cert]:
        if (cert.issuer.dump(), cert.serial_number) in trust.revoked:
            return "revoked", signer, when, stamped, "certificate revoked"
    if _listed(path, [*trust.crls, *crls, *(c.dump() for c in extra_crls)]):
        return "revoked", signer, when, stamped, "certificate listed in a CRL"
    if not status.trusted and stamped and stamp is not None:
        # Expired since: a trusted time-stamp proves the signature existed while
        # the certificate was valid (ETSI EN 319 102-1 section 5.6.2.1).
        status = validate_pdf_signature(
            embedded, _context(trust, [*crls, *extra_crls], [*ocsps, *extra_ocsps], certs, stamp.timestamp),
            key_usage_settings=usage,
        )
        if status.revoked:
            return "revoked", signer, when, stamped, "certificate revoked"
    if not status.trusted:
        problem = status.trust_problem_indic
        label = str(getattr(problem, "name", problem)).lower()
        why = f"no trusted certificate path ({label})" if problem else "no trusted path"
        return "untrusted", signer, when, stamped, why
    if stamp is not None and not stamp.trusted:
        return "untrusted", signer, when, stamped, "time-stamp authority not trusted"
    return "valid", signer, when, stamped, ""


def verify_pdf(data: bytes, filename: str, trust: PdfTrust, *, max_size: int = 0,
               budget: float = 0.0) -> PdfCheck:
    """The verdict on one PDF (module docstring); never raises. ``max_size``
    and ``budget`` (seconds, checked between signatures) bound the work; 0: none."""
    if max_size and len(data) > max_size:
        return PdfCheck(filename, "invalid", reason=f"not checked: larger than {max_size} octets")
    started = time.monotonic()
    # Imported outside the try: a missing module is a server fault, not a bad PDF.
    import pyhanko.sign.validation.settings  # noqa: F401
    import pyhanko.sign.validation.status  # noqa: F401
    from pyhanko.pdf_utils.reader import PdfFileReader

    try:
        reader = PdfFileReader(io.BytesIO(data))
        signatures = list(reader.embedded_regular_signatures)
        if not signatures:
            return PdfCheck(filename, "unsigned")
        revinfo = _revinfo(reader)
        worst: tuple[Status, str, str, bool, str] | None = None
        for embedded in signatures:
            if budget and time.monotonic() - started > budget:
                return PdfCheck(filename, "invalid", signatures=len(signatures),
                                reason="not checked: took too long")
            result = _one(embedded, trust, revinfo)
            if worst is None or _RANK[result[0]] < _RANK[worst[0]]:
                worst = result
        assert worst is not None  # noqa: S101 - at least one signature
        status, signer, when, stamped, reason = worst
        return PdfCheck(filename, status, signer, when, stamped, len(signatures), reason)
    except Exception as exc:  # noqa: BLE001 - any broken PDF is "invalid", never a crash
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return PdfCheck(filename, "invalid", reason=f"unreadable PDF: {text[:150]}")


# -- attachments ---------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PdfPart:
    filename: str
    data: bytes


def _is_pdf(part: Message, payload: bytes) -> bool:
    """Declared a PDF (type or file name), or an attachment that is one whatever
    it is called (``%PDF-`` at its start, ISO 32000-1 section 7.5.2)."""
    name = _decoded_filename(part).lower()
    if part.get_content_type() == "application/pdf" or name.endswith(".pdf"):
        return True
    return part.get_content_maintype() == "application" and payload[:1024].lstrip().startswith(b"%PDF-")


def pdf_parts(message: bytes, *, limit: int = 20) -> list[PdfPart]:
    """The PDF attachments of a message (RFC 2045/2183), nested messages included,
    at most ``limit`` of them."""
    found: list[PdfPart] = []

    def walk(msg: Message) -> Iterator[Message]:
        for part in msg.walk():
            if part.get_content_type() == "message/rfc822" and part.is_multipart():
                continue  # walk() descends into it already
            yield part

    try:
        for part in walk(_PARSER.parsebytes(message)):
            if part.is_multipart() or part.get_content_maintype() in ("text", "multipart", "message"):
                continue
            payload = part.get_payload(decode=True)
            if not isinstance(payload, bytes) or not _is_pdf(part, payload):
                continue
            name = _decoded_filename(part) or "document.pdf"
            found.append(PdfPart(name, payload))
            if len(found) >= limit:
                break
    except Exception as exc:  # noqa: BLE001 - a malformed MIME structure: what was found
        log.debug("pdf: MIME walk stopped: %s", exc)
    return found


def _decoded_filename(part: Message) -> str:
    """The file name with RFC 2231 and RFC 2047 encodings undone."""
    from email.header import decode_header, make_header

    name = part.get_filename() or ""
    try:
        return str(make_header(decode_header(name)))
    except (ValueError, LookupError, UnicodeError):
        return name


# -- signing -------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class StampText:
    """The visible block (NĐ 30/2020 appendix I, digital copies)."""

    agency: str
    signer: str
    email: str
    when: dt.datetime

    def lines(self) -> list[str]:
        moment = self.when.astimezone(VN_TIME)
        # ISO 8601 with the offset, as the appendix asks: day.month.year, then time.
        stamp = moment.strftime("%d.%m.%Y %H:%M:%S") + " +07:00"
        out = [f"Cơ quan: {self.agency}"]
        if self.signer:
            out.append(f"Người ký: {self.signer}")
        if self.email:
            out.append(f"Email: {self.email}")
        out.append(f"Thời gian ký: {stamp}")
        return out


@dataclass
class _FontCache:
    fonts: dict[tuple[str, str], bytes] = field(default_factory=dict)


_FONTS: Final = _FontCache()


def _font_bytes(path: str, text: str) -> bytes:
    """The TrueType font subset to ``text``'s letters, rescaled to 1000 units per
    em (module docstring)."""
    key = (path, "".join(sorted(set(text))))
    cached = _FONTS.fonts.get(key)
    if cached is not None:
        return cached
    from fontTools import subset, ttLib
    from fontTools.ttLib.scaleUpem import scale_upem

    try:
        font = ttLib.TTFont(path)
    except (OSError, ttLib.TTLibError) as exc:
        raise PdfSignError(f"pki.pdf_font: cannot read {path}: {exc}") from None
    options = subset.Options()
    options.layout_features = ["*"]
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.drop_tables += ["FFTM"]
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=text + " ")
    subsetter.subset(font)
    if font["head"].unitsPerEm != 1000:
        scale_upem(font, 1000)
    out = io.BytesIO()
    font.save(out)
    _FONTS.fonts[key] = out.getvalue()
    return _FONTS.fonts[key]


def _font_factory(font_data: bytes, size: int) -> Any:
    from pyhanko.pdf_utils.font.api import FontEngineFactory
    from pyhanko.pdf_utils.font.opentype import GlyphAccumulator

    class Factory(FontEngineFactory):
        def create_font_engine(self, writer: Any, obj_stream: Any = None) -> Any:
            if obj_stream is None and writer.stream_xrefs:
                obj_stream = writer.prepare_object_stream()
            return GlyphAccumulator(writer=writer, font_handle=io.BytesIO(font_data), font_size=size,
                                    obj_stream=obj_stream)

    return Factory()


def _asn1_key(key: PrivateKey) -> Any:
    from asn1crypto import keys as asn1_keys

    return asn1_keys.PrivateKeyInfo.load(key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def _asn1_cert(cert: x509.Certificate) -> Any:
    from asn1crypto import x509 as asn1_x509

    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def sign_pdf(data: bytes, *, cert: x509.Certificate, key: PrivateKey, chain: Sequence[x509.Certificate],
             stamp: StampText, tsa_url: str = "", font: str = DEFAULT_FONT, location: str = "") -> bytes:
    """``data`` with a PAdES signature and its visible block on the last page
    (module docstring). Raises PdfSignError on a document that cannot be signed."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.pdf_utils.text import TextBoxStyle
    from pyhanko.sign import fields, signers, timestamps
    from pyhanko.sign.signers.pdf_signer import PdfSignatureMetadata, PdfSigner
    from pyhanko.stamp import TextStampStyle
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    lines = stamp.lines()
    text = "\n".join(lines)
    if not Path(font).is_file():
        raise PdfSignError(f"pki.pdf_font: no font file {font} (Debian: fonts-dejavu-core)")
    size = 9
    factory = _font_factory(_font_bytes(font, text), size)
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
        if writer.prev.encrypted:
            raise PdfSignError("tài liệu PDF được mã hóa / the PDF is encrypted: cannot sign it")
        taken = {name for name, _, _ in fields.enumerate_sig_fields(writer.prev)}
        # A document may already carry signatures (the head's, then the agency's copy).
        field_name = next(f"Signature{n}" for n in range(1, len(taken) + 2) if f"Signature{n}" not in taken)
        pages = int(writer.root["/Pages"]["/Count"])
        found = writer.find_page_for_modification(pages - 1)  # type: ignore[no-untyped-call]
        last = found[0].get_object()
        box = [float(v) for v in last.get("/CropBox", last.get("/MediaBox", [0, 0, 595, 842]))]
    except PdfSignError:
        raise
    except (PdfError, KeyError, ValueError, TypeError, IndexError) as exc:
        raise PdfSignError(f"không đọc được tệp PDF / not a readable PDF: {exc}") from None
    width = max(len(line) for line in lines) * size * 0.56 + 24
    height = (len(lines) + 1) * (size + 2) + 8
    # Blocks of earlier signatures stay visible: each new one sits above them.
    right, bottom = box[2] - 28, box[1] + 28 + len(taken) * (height + 6)
    field_box = (int(max(box[0] + 10, right - width)), int(bottom), int(right), int(bottom + height))
    signer = signers.SimpleSigner(
        signing_cert=_asn1_cert(cert), signing_key=_asn1_key(key),
        cert_registry=SimpleCertificateStore.from_certs(  # type: ignore[no-untyped-call]
            [_asn1_cert(c) for c in chain]),
    )
    meta = PdfSignatureMetadata(
        field_name=field_name, subfilter=fields.SigSeedSubFilter.PADES, md_algorithm="sha256",
        name=stamp.signer or stamp.agency, location=location or None,
        reason="Ký số văn bản điện tử / digitally signed document",
        contact_info=stamp.email or None,
    )
    style = TextStampStyle(
        stamp_text="%(block)s",
        text_box_style=TextBoxStyle(font=factory, font_size=size, leading=size + 2),
        border_width=1, background=None,
    )
    timestamper = timestamps.HTTPTimeStamper(tsa_url, timeout=20) if tsa_url else None
    spec = fields.SigFieldSpec(field_name, on_page=pages - 1, box=field_box)
    pdf_signer = PdfSigner(meta, signer, timestamper=timestamper, stamp_style=style, new_field_spec=spec)
    out = io.BytesIO()
    try:
        pdf_signer.sign_pdf(writer, output=out, appearance_text_params={"block": text})
    except PdfSignError:
        raise
    except Exception as exc:  # noqa: BLE001 - pyHanko raises many kinds; the operator needs one line
        raise PdfSignError(f"không ký được tệp PDF / cannot sign the PDF: {exc}") from None
    return out.getvalue()
