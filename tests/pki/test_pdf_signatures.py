"""Issue 25: signatures inside PDF documents. A PDF we dispatch is signed inside
(PAdES) and passes poppler's ``pdfsig`` and pyHanko's own validation, a modified
copy fails both; PDFs arriving over SMTP on the MX get ``X-PDF-Signature``
(valid / untrusted / revoked / invalid / unsigned) that a sender cannot forge.
Mail goes over real sockets (smtplib to the MX, imaplib to read it back); the
certificates and CAs are made here with ``cryptography``."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import email
import email.policy
import imaplib
import io
import json
import shutil
import smtplib
import subprocess
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from mailserver.app import App
from mailserver.auth import hash_password
from mailserver.cli import main
from mailserver.config import Config
from mailserver.dispatch.pdfcheck import check_message
from mailserver.web.settings import WebSettings
from pki.ca import CertificateAuthority, pki_directory
from pki.pdfsig import PdfTrust, StampText, sign_pdf, verify_pdf
from pki.settings import PkiSettings
from tests.conftest import RunningServer, make_config
from tests.dispatch.docs import PASSWORD, make_document, seed_province
from tests.web.helpers import OPERATOR, OPERATOR_PASSWORD, csrf_of

PASS = "correct horse battery staple"
PW = "S3cret-pass-word"
VANTHU = "vanthu@dongnai.gov.vn"

pytestmark = pytest.mark.skipif(shutil.which("pdfsig") is None, reason="pdfsig (poppler-utils) needed")


@pytest.fixture(autouse=True)
def passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILSERVER_PKI_PASSPHRASE", PASS)


# -- material ----------------------------------------------------------------------

def make_pdf(pages: int = 2, text: str = "Cong van so 1234/UBND-VP") -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    for page in range(pages):
        pdf.add_page()
        pdf.set_font("helvetica", size=12)
        pdf.cell(text=f"{text} - trang {page + 1}")
    return bytes(pdf.output())


class Ca:
    """A certification authority made with cryptography (a government CA stand-in)."""

    def __init__(self, name: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                             x509.NameAttribute(NameOID.COUNTRY_NAME, "VN")])
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_usage(ca=True), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    def issue(self, name: str, organisation: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                                     x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation)]))
            .issuer_name(self.cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=90))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(ca=False), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        return cert, key

    def crl(self, revoked: list[x509.Certificate]) -> bytes:
        now = dt.datetime.now(dt.UTC)
        builder = (x509.CertificateRevocationListBuilder().issuer_name(self.cert.subject)
                   .last_update(now - dt.timedelta(minutes=5)).next_update(now + dt.timedelta(days=7)))
        for cert in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(cert.serial_number)
                .revocation_date(now - dt.timedelta(minutes=1)).build())
        return builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def _usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=not ca, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                         encipher_only=False, decipher_only=False)


def signed_by(ca: Ca | None, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    stamp = StampText("Sở Tài chính tỉnh Bình Dương", str(cert.subject.rfc4514_string()), "",
                      dt.datetime.now(dt.UTC))
    return sign_pdf(data, cert=cert, key=key, chain=[ca.cert] if ca else [], stamp=stamp)


def pdfsig(path: Path) -> str:
    done = subprocess.run(["pdfsig", str(path)], capture_output=True, text=True, check=False)
    return done.stdout + done.stderr


def pyhanko_bottom_line(data: bytes, root: x509.Certificate) -> tuple[bool, bool]:
    """(intact, bottom line) of every signature, by pyHanko itself (not our wrapper)."""
    from asn1crypto import x509 as asn1_x509
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    anchor = asn1_x509.Certificate.load(root.public_bytes(serialization.Encoding.DER))
    reader = PdfFileReader(io.BytesIO(data))
    [signature] = reader.embedded_signatures
    status = validate_pdf_signature(signature, ValidationContext(trust_roots=[anchor]))
    return status.intact, status.bottom_line


def appearance_text(reader: Any, xobject: Any) -> list[str]:
    """The lines of a signature appearance: the /ActualText of its marked
    spans (the glyphs themselves are font-specific codes), nested forms included."""
    from pypdf.generic import ContentStream

    lines: list[str] = []
    for operands, operator in ContentStream(xobject, reader).operations:
        if operator == b"BDC" and len(operands) == 2 and "/ActualText" in operands[1]:
            lines.append(str(operands[1]["/ActualText"]))
        if operator == b"Do":
            resources = xobject["/Resources"]["/XObject"]
            lines += appearance_text(reader, resources[operands[0]].get_object())
    return lines


def fetch_all(port: int, user: str, password: str, folder: str = "INBOX") -> list[bytes]:
    with imaplib.IMAP4("127.0.0.1", port) as imap:
        imap.login(user, password)
        imap.select(folder, readonly=True)
        _, data = imap.fetch("1:*", "(BODY.PEEK[])")
        imap.logout()
    return [item[1] for item in data if isinstance(item, tuple)]


def attachments(raw: bytes) -> dict[str, bytes]:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    found: dict[str, bytes] = {}
    for part in parsed.walk():
        name = part.get_filename()
        if name and not part.is_multipart():
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            found[name] = payload
    return found


def pdf_fields(raw: bytes) -> list[str]:
    head = raw.split(b"\r\n\r\n", 1)[0].decode("utf-8")
    unfolded = head.replace("\r\n\t", " ").replace("\r\n ", " ")
    return [line.split(":", 1)[1].strip() for line in unfolded.split("\r\n")
            if line.lower().startswith("x-pdf-signature:")]


def verdicts(raw: bytes) -> dict[str, str]:
    """file name -> status, from our X-PDF-Signature fields."""
    out: dict[str, str] = {}
    for value in pdf_fields(raw):
        name = value.split('file="', 1)[1].split('"', 1)[0]
        out[name] = value.split("status=", 1)[1].split(";", 1)[0]
    return out


def cli(config: Path, *args: str) -> int:
    return main(["--config", str(config), *args])


# -- dispatch ----------------------------------------------------------------------

def test_dispatched_pdf_passes_pdfsig_and_pyhanko(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    province = seed_province(tmp_path)
    data = tmp_path / "data"
    assert cli(province, "pki", "init") == 0
    assert cli(province, "pki", "issue", "ubndtinh@dongnai.gov.vn") == 0
    root = x509.load_pem_x509_certificate((pki_directory(PkiSettings(), data) / "root.pem").read_bytes())
    original = make_pdf(pages=3)
    document = tmp_path / "cv-1234.pdf"
    document.write_bytes(original)
    word = make_document(tmp_path / "cv-1235.docx", recipients=["Sở TT&TT;"])
    capsys.readouterr()

    def dispatch(path: Path, *extra: str) -> dict[str, Any]:
        assert cli(province, "dispatch", str(path), "--from", "ubndtinh", "--to", "stttt", "--json",
                   *extra) == 0
        record: dict[str, Any] = json.loads(capsys.readouterr().out)
        return record

    web = WebSettings(listen="127.0.0.1:0", operators=[OPERATOR])
    config = dataclasses.replace(make_config(data), web=web)

    async def serve() -> tuple[list[dict[str, Any]], list[bytes], list[bytes], str]:
        # The operator's CLI while the server runs; the agencies read over IMAP,
        # the operator looks at the portal's list of dispatches over HTTP.
        async with App(config) as app:
            await app.store.create_account(OPERATOR, "Vận hành", hash_password(OPERATOR_PASSWORD),
                                           must_change_password=False)
            port = app.addresses["imap"][1]
            records = [await asyncio.to_thread(dispatch, document),
                       await asyncio.to_thread(dispatch, document, "--no-pdf-signature"),
                       await asyncio.to_thread(dispatch, word)]
            received = await asyncio.to_thread(fetch_all, port, "stttt@dongnai.gov.vn", PASSWORD)
            sent = await asyncio.to_thread(fetch_all, port, "ubndtinh@dongnai.gov.vn", PASSWORD, "Sent")
            host, web_port = app.addresses["web"]
            base = f"http://{host}:{web_port}"
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
                token = csrf_of(await (await http.get(f"{base}/admin/login")).text())
                login = await http.post(f"{base}/admin/login", allow_redirects=False, data={
                    "csrf": token, "address": OPERATOR, "password": OPERATOR_PASSWORD, "totp": ""})
                assert login.status == 303
                page = await http.get(f"{base}/admin/dispatches")
                assert page.status == 200
                html = await page.text()
        return records, received, sent, html

    (signed_record, plain_record, word_record), received, sent, html = asyncio.run(serve())
    # The portal: the signed PDF valid, signer and time; the unsigned one said so.
    row = html.split(f'id="dispatch-{signed_record["id"]}"', 1)[1].split("</tr>", 1)[0]
    assert '<li class="pdf-valid">cv-1234.pdf: <strong>hợp lệ</strong>' in row
    assert "Người ký: Ủy ban nhân dân tỉnh Đồng Nai" in row and "+07:00" in row and "đã ký" in row
    row = html.split(f'id="dispatch-{plain_record["id"]}"', 1)[1].split("</tr>", 1)[0]
    assert '<li class="pdf-unsigned">cv-1234.pdf: <strong>không có chữ ký số</strong>' in row
    assert signed_record["pdf_signed"] is True and plain_record["pdf_signed"] is False
    assert len(received) == 3
    signed_mail, plain_mail, word_mail = received
    # The mail keeps its S/MIME signature; the PDF inside is signed too.
    assert b"multipart/signed" in signed_mail.split(b"\r\n\r\n", 1)[0]
    [field] = pdf_fields(signed_mail)
    assert 'file="cv-1234.pdf"; status=valid; signer="Ủy ban nhân dân tỉnh Đồng Nai"' in field
    assert "+07:00" in field
    assert pdf_fields(sent[0]) == [field]  # the issuer's copy in Sent says the same
    [recorded] = signed_record["pdf_checks"]
    assert recorded["status"] == "valid" and recorded["file"] == "cv-1234.pdf"
    pdf = attachments(signed_mail)["cv-1234.pdf"]
    assert pdf.startswith(original)  # an incremental update: the pages are untouched
    path = tmp_path / "received.pdf"
    path.write_bytes(pdf)
    report = pdfsig(path)
    assert "Signature is Valid." in report and "Total document signed" in report, report
    assert "Signer Certificate Common Name: Ủy ban nhân dân tỉnh Đồng Nai" in report
    assert "ETSI.CAdES.detached" in report  # PAdES
    assert pyhanko_bottom_line(pdf, root) == (True, True)
    assert cli(province, "pdf", "verify", str(path), "--json") == 0
    assert json.loads(capsys.readouterr().out)["status"] == "valid"
    # The visible block sits on the last page and says who signed and when, in +07:00.
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(pdf))
    widgets = [a.get_object() for a in reader.pages[-1].get("/Annots", [])]
    [widget] = [w for w in widgets if w.get("/FT") == "/Sig"]
    rect = [float(v) for v in widget["/Rect"]]
    assert rect[2] - rect[0] > 100 and rect[3] - rect[1] > 30
    block = "\n".join(appearance_text(reader, widget["/AP"]["/N"].get_object()))
    assert "Cơ quan: Ủy ban nhân dân tỉnh Đồng Nai" in block and "Thời gian ký: " in block
    assert block.endswith("+07:00") and "Email: ubndtinh@dongnai.gov.vn" in block
    assert all("/Annots" not in page or not page["/Annots"] for page in reader.pages[:-1])
    # A modified copy fails both: one octet of the signed range changed.
    modified = bytearray(pdf)
    at = modified.index(b"trang 1") if b"trang 1" in modified else 9
    modified[at] ^= 0x01
    bad = tmp_path / "modified.pdf"
    bad.write_bytes(bytes(modified))
    report = pdfsig(bad)
    assert "Signature is Valid." not in report and "Signature Validation:" in report, report
    assert pyhanko_bottom_line(bytes(modified), root)[1] is False
    assert cli(province, "pdf", "verify", str(bad)) == 3
    assert "không hợp lệ / invalid" in capsys.readouterr().out
    # --no-pdf-signature: the PDF as it was; a .docx always goes as it is.
    assert attachments(plain_mail)["cv-1234.pdf"] == original
    assert verdicts(plain_mail) == {"cv-1234.pdf": "unsigned"}
    assert attachments(word_mail)["cv-1235.docx"] == word.read_bytes()
    assert pdf_fields(word_mail) == [] and word_record["pdf_signed"] is False


def test_pdf_sign_cli_needs_a_certificate_and_the_passphrase(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    province = seed_province(tmp_path)
    document = tmp_path / "in.pdf"
    document.write_bytes(make_pdf(pages=1))
    out = tmp_path / "out.pdf"
    assert cli(province, "pki", "init") == 0
    assert cli(province, "pdf", "sign", str(document), "--as", "stc", "-o", str(out)) == 1
    assert "pki issue stc@dongnai.gov.vn" in capsys.readouterr().err
    # Dispatch of a PDF needs the certificate too, or --no-pdf-signature; nothing is sent.
    assert cli(province, "dispatch", str(document), "--from", "stc", "--to", "stttt") == 1
    err = capsys.readouterr().err
    assert "cannot sign the PDF" in err and "--no-pdf-signature" in err
    assert not (tmp_path / "data" / "dispatch").exists()
    assert cli(province, "pki", "issue", "stc@dongnai.gov.vn") == 0
    assert cli(province, "pdf", "sign", str(document), "--as", "nosuch", "-o", str(out)) == 1
    assert "không có cơ quan / no such agency" in capsys.readouterr().err
    assert cli(province, "pdf", "sign", str(tmp_path / "mailserver.toml"), "--as", "stc", "-o", str(out)) == 1
    assert "not a PDF file" in capsys.readouterr().err
    monkeypatch.delenv("MAILSERVER_PKI_PASSPHRASE")
    assert cli(province, "pdf", "sign", str(document), "--as", "stc", "-o", str(out)) == 1
    assert "MAILSERVER_PKI_PASSPHRASE" in capsys.readouterr().err and not out.exists()
    monkeypatch.setenv("MAILSERVER_PKI_PASSPHRASE", "wrong one")
    assert cli(province, "pdf", "sign", str(document), "--as", "stc", "-o", str(out)) == 1
    assert "wrong PKI passphrase" in capsys.readouterr().err and not out.exists()
    monkeypatch.setenv("MAILSERVER_PKI_PASSPHRASE", PASS)
    assert cli(province, "pdf", "sign", str(document), "--as", "stc@dongnai.gov.vn", "-o", str(out)) == 0
    assert "Signature is Valid." in pdfsig(out)
    assert cli(province, "pdf", "verify", str(out)) == 0
    text = capsys.readouterr().out
    assert "hợp lệ / valid" in text and "Sở Tài chính" in text and "+07:00" in text
    assert cli(province, "pdf", "verify", str(tmp_path / "missing.pdf")) == 1
    assert "cannot read" in capsys.readouterr().err


# -- inbound -----------------------------------------------------------------------

def test_inbound_pdf_signatures_over_smtp(tmp_path: Path) -> None:
    province = seed_province(tmp_path)
    data = tmp_path / "data"
    government = Ca("Ban Cơ yếu Chính phủ (thử)")
    stranger = Ca("Unknown CA")
    crl_file = tmp_path / "government.crl"
    anchor = tmp_path / "government-root.pem"
    anchor.write_bytes(government.pem())
    assert cli(province, "pki", "init") == 0
    assert cli(province, "pki", "import", "--chain", str(anchor)) == 0
    # Certificates: from the imported root, from an unknown CA, one of the
    # government CA listed in its CRL file, and one of ours that we revoke.
    good_cert, good_key = government.issue("Nguyễn Văn An", "Sở Tài chính tỉnh Bình Dương")
    listed_cert, listed_key = government.issue("Trần Thị Bình", "Sở Nội vụ tỉnh Bình Dương")
    crl_file.write_bytes(government.crl([listed_cert]))
    odd_cert, odd_key = stranger.issue("Lê Văn Cường", "Công ty lạ")
    ca = CertificateAuthority(pki_directory(PkiSettings(), data), passphrase=PASS.encode())
    record, ours_cert, ours_key = ca.issue_smime("ketoan@dongnai.gov.vn", "Phạm Thị Dung", "Sở Tài chính")
    assert cli(province, "pki", "revoke", record.serial, "--reason", "keyCompromise") == 0
    base = make_pdf()
    whole = signed_by(government, good_cert, good_key, base)
    broken = whole[: whole.index(b"/Contents <") + 500]  # cut inside the signature
    files = {
        "quyết-định-70.pdf": signed_by(government, good_cert, good_key, base),
        "unknown.pdf": signed_by(stranger, odd_cert, odd_key, base),
        "revoked-ours.pdf": sign_pdf(base, cert=ours_cert, key=ours_key, chain=ca.chain(), stamp=StampText(
            "Sở Tài chính", "Phạm Thị Dung", "", dt.datetime.now(dt.UTC))),
        "revoked-crl.pdf": signed_by(government, listed_cert, listed_key, base),
        "broken.pdf": broken,
        "plain.pdf": base,
    }
    message = EmailMessage()
    message["From"] = "vanthu@binhduong.gov.vn"
    message["To"] = VANTHU
    message["Subject"] = "Văn bản điện tử"
    # A sender's own verdicts, which must not survive.
    message["X-PDF-Signature"] = 'file="broken.pdf"; status=valid; signer="Giả mạo"'
    message["X-Pdf-Signature"] = 'file="fake.pdf"; status=valid'
    message.set_content("Kính gửi văn thư.\n")
    for name, content in files.items():
        message.add_attachment(content, maintype="application", subtype="pdf", filename=name)
    config = make_config(data)
    config = dataclasses.replace(config, pki=PkiSettings(crl_files=[str(crl_file)]))

    async def serve() -> list[bytes]:
        async with App(config) as app:
            running = RunningServer(app, config)
            await running.add_account(VANTHU, PW, "Văn thư")

            def send() -> None:
                with smtplib.SMTP("127.0.0.1", running.port("smtp")) as client:
                    client.send_message(message, "vanthu@binhduong.gov.vn", [VANTHU])

            await asyncio.to_thread(send)
            return await asyncio.to_thread(fetch_all, running.port("imap"), VANTHU, PW)

    [raw] = asyncio.run(serve())
    assert verdicts(raw) == {
        "quyết-định-70.pdf": "valid",
        "unknown.pdf": "untrusted",
        "revoked-ours.pdf": "revoked",
        "revoked-crl.pdf": "revoked",
        "broken.pdf": "invalid",
        "plain.pdf": "unsigned",
    }
    fields = pdf_fields(raw)
    assert len(fields) == 6 and not any("Giả mạo" in f or "fake.pdf" in f for f in fields)
    [good] = [f for f in fields if "quyết-định-70.pdf" in f]
    assert 'signer="Nguyễn Văn An"' in good and "signed-at=" in good and "+07:00" in good
    # The attachments themselves arrive untouched.
    assert attachments(raw)["quyết-định-70.pdf"] == files["quyết-định-70.pdf"]


# -- bounds and bad input ----------------------------------------------------------

def test_broken_and_oversized_pdfs_are_invalid_never_a_crash() -> None:
    government = Ca("Root")
    cert, key = government.issue("Signer", "Org")
    trust = PdfTrust.build([government.cert])
    signed = signed_by(government, cert, key, make_pdf())
    assert verify_pdf(signed, "a.pdf", trust).status == "valid"
    for junk in (b"", b"%PDF-1.7\n", b"%PDF-1.4\n1 0 obj <<>>\n" * 50, signed[: len(signed) // 2],
                 signed[:-30], signed.replace(b"/ByteRange", b"/ByteRangX"),
                 signed.replace(b"startxref", b"startxreg"), bytes(range(256)) * 40):
        check = verify_pdf(junk, "junk.pdf", trust)
        assert check.status == "invalid" and check.reason.startswith("unreadable PDF"), (junk[:20], check)
    large = verify_pdf(signed, "big.pdf", trust, max_size=1000)
    assert large.status == "invalid" and "not checked" in large.reason
    # A whole message: every PDF part, nested messages included, file names kept.
    inner = EmailMessage()
    inner["Subject"] = "forwarded"
    inner.set_content("x")
    inner.add_attachment(signed, maintype="application", subtype="pdf", filename="inner.pdf")
    outer = EmailMessage()
    outer["Subject"] = "outer"
    outer.set_content("y")
    outer.add_attachment(b"%PDF-1.4 not really", maintype="application", subtype="octet-stream",
                         filename="Tờ trình.PDF")
    outer.add_attachment(inner)
    # A PDF sent as application/octet-stream under an RFC 2047 name without ".pdf".
    outer.add_attachment(signed, maintype="application", subtype="octet-stream", filename="Văn bản")
    checks = check_message(outer.as_bytes(), trust, 1 << 20, 30.0)
    assert [(c.file, c.status) for c in checks] == [
        ("Tờ trình.PDF", "invalid"), ("inner.pdf", "valid"), ("Văn bản", "valid")]
    # No time left: the files are named, not checked.
    late = check_message(outer.as_bytes(), trust, 1 << 20, 0.0)
    assert [(c.file, c.status, c.reason) for c in late] == [
        ("Tờ trình.PDF", "invalid", "not checked: took too long"),
        ("inner.pdf", "invalid", "not checked: took too long"),
        ("Văn bản", "invalid", "not checked: took too long"),
    ]
    # Quotes and line breaks in a sender's file name cannot escape the field.
    hostile = verify_pdf(b"x", 'a"; status=valid\r\nX-Evil: 1.pdf', trust)
    assert "\r" not in hostile.header_value() and hostile.header_value().count('"') == 4
    # A long Vietnamese name: the field is folded between parameters, every line short.
    long = verify_pdf(signed, "Quyết định về việc ban hành quy chế " * 20 + ".pdf", trust).header()
    lines = long.split(b"\r\n")
    assert lines[-1] == b"" and all(len(line) < 998 for line in lines) and len(lines) > 3
    assert all(line.startswith(b" ") for line in lines[1:-1])


# -- mail between colleagues, and the time bound -----------------------------------

def test_mail_between_colleagues_and_the_time_bound(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ca = CertificateAuthority(pki_directory(PkiSettings(), data), passphrase=PASS.encode())
    ca.init()
    _, cert, key = ca.issue_smime("annv@dongnai.gov.vn", "Nguyễn Văn An", "Sở Tài chính")
    signed = sign_pdf(make_pdf(), cert=cert, key=key, chain=ca.chain(),
                      stamp=StampText("Sở Tài chính", "Nguyễn Văn An", "", dt.datetime.now(dt.UTC)))
    message = EmailMessage()
    message["From"] = "annv@dongnai.gov.vn"
    message["To"] = "binhtt@dongnai.gov.vn"
    message["Subject"] = "Dự thảo tờ trình"
    message["X-PDF-Signature"] = 'file="to-trinh.pdf"; status=revoked'
    message.set_content("Anh xem giúp.\n")
    message.add_attachment(signed, maintype="application", subtype="pdf", filename="to-trinh.pdf")

    async def exchange(config: Config) -> bytes:
        async with App(config) as app:
            running = RunningServer(app, config)
            for address in ("annv@dongnai.gov.vn", "binhtt@dongnai.gov.vn"):
                await running.add_account(address, PW)

            def send() -> None:
                with smtplib.SMTP("127.0.0.1", running.port("submission")) as client:
                    client.login("annv@dongnai.gov.vn", PW)
                    client.send_message(message)

            await asyncio.to_thread(send)
            [raw] = await asyncio.to_thread(fetch_all, running.port("imap"), "binhtt@dongnai.gov.vn", PW)
            return raw

    config = make_config(data)
    raw = asyncio.run(exchange(config))
    [field] = pdf_fields(raw)
    assert field.startswith('file="to-trinh.pdf"; status=valid; signer="Nguyễn Văn An"'), field
    # The check's time is bounded: past pki.pdf_timeout the worker is stopped and
    # the file reported "invalid (not checked)", and the message is delivered all the same.
    hurried = dataclasses.replace(config, pki=PkiSettings(pdf_timeout=0.001))
    shutil.rmtree(data / "maildir", ignore_errors=True)
    (data / "mailserver.db").unlink(missing_ok=True)
    raw = asyncio.run(exchange(hurried))
    [field] = pdf_fields(raw)
    assert field == 'file="to-trinh.pdf"; status=invalid; reason="not checked: took too long"', field
    assert attachments(raw)["to-trinh.pdf"] == signed


# -- time-stamps (PAdES B-T) and fetched revocation data ------------------------------

class Http:
    """A loopback HTTP server: an RFC 3161 time-stamp authority (POST /tsa) and
    a CRL (GET /gov.crl), counting the requests."""

    def __init__(self, tsa: Any = None, crl: bytes = b"") -> None:
        self.tsa = tsa
        self.crl = crl
        self.requests: list[str] = []
        self.runner: Any = None
        self.port = 0

    async def start(self) -> None:
        from aiohttp import web

        async def stamp(request: web.Request) -> web.Response:
            from asn1crypto import tsp

            self.requests.append("tsa")
            query = tsp.TimeStampReq.load(await request.read())
            answer = await self.tsa.async_request_tsa_response(query)
            return web.Response(body=answer.dump(), content_type="application/timestamp-reply")

        async def crl(request: web.Request) -> web.Response:
            self.requests.append("crl")
            return web.Response(body=self.crl, content_type="application/pkix-crl")

        app = web.Application()
        app.router.add_post("/tsa", stamp)
        app.router.add_get("/gov.crl", crl)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        await self.runner.cleanup()


def _asn1(cert: x509.Certificate) -> Any:
    from asn1crypto import x509 as asn1_x509

    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def test_pdf_sign_with_a_time_stamp_authority(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from asn1crypto import keys as asn1_keys
    from pyhanko.sign.timestamps import DummyTimeStamper

    province = seed_province(tmp_path)
    government = Ca("Ban Cơ yếu Chính phủ (thử)")
    anchor = tmp_path / "government-root.pem"
    anchor.write_bytes(government.pem())
    tsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # pyHanko's test TSA: RSA only
    now = dt.datetime.now(dt.UTC)
    tsa_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "TSA thử nghiệm")]))
        .issuer_name(government.cert.subject).public_key(tsa_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=90))
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .sign(government.key, hashes.SHA256())
    )
    tsa_der = tsa_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    tsa = DummyTimeStamper(tsa_cert=_asn1(tsa_cert), tsa_key=asn1_keys.PrivateKeyInfo.load(tsa_der))
    document = tmp_path / "cv.pdf"
    document.write_bytes(make_pdf(pages=1))
    out = tmp_path / "cv-ky-so.pdf"
    assert cli(province, "pki", "init") == 0
    assert cli(province, "pki", "import", "--chain", str(anchor)) == 0
    assert cli(province, "pki", "issue", "stc@dongnai.gov.vn") == 0
    server = Http(tsa=tsa)
    capsys.readouterr()

    async def run() -> list[int]:
        await server.start()
        try:
            with province.open("a", encoding="utf-8") as fh:
                fh.write(f'[pki]\ntsa_url = "http://127.0.0.1:{server.port}/tsa"\n')
            signed = await asyncio.to_thread(cli, province, "pdf", "sign", str(document), "--as", "stc",
                                             "-o", str(out))
            checked = await asyncio.to_thread(cli, province, "pdf", "verify", str(out), "--json")
            return [signed, checked]
        finally:
            await server.stop()

    assert asyncio.run(run()) == [0, 0]
    verdict = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert verdict["status"] == "valid" and verdict["timestamped"] is True
    assert server.requests and set(server.requests) == {"tsa"}  # the signature was time-stamped there
    report = pdfsig(out)
    assert "Signature is Valid." in report and "Total document signed" in report, report
    # pyHanko sees the signature time-stamp (B-T) and trusts it (the TSA is under the imported root).
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    [embedded] = PdfFileReader(io.BytesIO(out.read_bytes())).embedded_signatures
    status = validate_pdf_signature(embedded, ValidationContext(trust_roots=[_asn1(government.cert)]))
    assert status.timestamp_validity is not None and status.timestamp_validity.trusted
    assert status.intact and status.valid


def test_revocation_is_fetched_only_when_enabled(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    province = seed_province(tmp_path)
    government = Ca("Ban Cơ yếu Chính phủ (thử)")
    anchor = tmp_path / "government-root.pem"
    anchor.write_bytes(government.pem())
    assert cli(province, "pki", "init") == 0
    assert cli(province, "pki", "import", "--chain", str(anchor)) == 0
    server = Http()
    document = tmp_path / "revoked.pdf"
    capsys.readouterr()

    async def run() -> list[int]:
        await server.start()
        try:
            # A certificate naming where its CA publishes the CRL, which lists it.
            key = ec.generate_private_key(ec.SECP256R1())
            now = dt.datetime.now(dt.UTC)
            point = x509.DistributionPoint(
                [x509.UniformResourceIdentifier(f"http://127.0.0.1:{server.port}/gov.crl")], None, None, None)
            cert = (
                x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Hoàng Văn Em")]))
                .issuer_name(government.cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=90))
                .add_extension(_usage(ca=False), critical=True)
                .add_extension(x509.CRLDistributionPoints([point]), critical=False)
                .sign(government.key, hashes.SHA256())
            )
            listed = x509.load_pem_x509_crl(government.crl([cert]))
            server.crl = listed.public_bytes(serialization.Encoding.DER)
            document.write_bytes(await asyncio.to_thread(signed_by, government, cert, key, make_pdf()))
            offline = await asyncio.to_thread(cli, province, "pdf", "verify", str(document), "--json")
            fetched_before = list(server.requests)
            with province.open("a", encoding="utf-8") as fh:
                fh.write("[pki]\nfetch_revocation = true\n")
            online = await asyncio.to_thread(cli, province, "pdf", "verify", str(document), "--json")
            return [offline, len(fetched_before), online]
        finally:
            await server.stop()

    assert asyncio.run(run()) == [0, 0, 3]
    out = capsys.readouterr().out
    first, second = (json.loads(chunk) for chunk in out.replace("}\n{", "}\x00{").split("\x00"))
    assert first["status"] == "valid"  # no network unless asked
    assert second["status"] == "revoked" and server.requests and set(server.requests) == {"crl"}


def test_changes_after_signing_and_a_second_signature(tmp_path: Path) -> None:
    """An incremental update that adds text to a signed page is "changed after
    signing" (pdfsig only says "Not total document signed"); a second signature,
    as when the agency signs a copy of a document its head signed, is not."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    government = Ca("Root")
    cert, key = government.issue("Signer", "Org")
    trust = PdfTrust.build([government.cert])
    signed = signed_by(government, cert, key, make_pdf())
    writer = IncrementalPdfFileWriter(io.BytesIO(signed))
    forged = writer.add_object(generic.StreamObject(stream_data=b"BT /F1 24 Tf 100 700 Td (FORGED) Tj ET"))
    writer.add_stream_to_page(0, forged)
    out = io.BytesIO()
    writer.write(out)
    path = tmp_path / "forged.pdf"
    path.write_bytes(out.getvalue())
    assert "FORGED" in subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True,
                                      check=True).stdout
    check = verify_pdf(out.getvalue(), "forged.pdf", trust)
    assert (check.status, check.reason) == ("invalid", "changed after signing")
    twice = signed_by(government, cert, key, signed)
    check = verify_pdf(twice, "twice.pdf", trust)
    assert (check.status, check.signatures) == ("valid", 2)
    path.write_bytes(twice)
    assert pdfsig(path).count("Signature is Valid.") == 2


def test_revocation_data_embedded_in_the_pdf() -> None:
    """A CRL in the document's DSS (ETSI EN 319 142-1 section 5.4) counts; one
    that names the issuer but is not signed by it does not."""
    from asn1crypto import crl as asn1_crl
    from pyhanko.sign.validation.dss import DocumentSecurityStore

    government = Ca("Root")
    cert, key = government.issue("Signer", "Org")
    trust = PdfTrust.build([government.cert])
    signed = signed_by(government, cert, key, make_pdf())

    def with_dss(crl_pem: bytes) -> bytes:
        crl = asn1_crl.CertificateList.load(
            x509.load_pem_x509_crl(crl_pem).public_bytes(serialization.Encoding.DER))
        buffer = io.BytesIO(signed)
        DocumentSecurityStore.add_dss(buffer, None, crls=[crl])
        return buffer.getvalue()

    check = verify_pdf(with_dss(government.crl([cert])), "revoked.pdf", trust)
    assert (check.status, check.reason) == ("revoked", "certificate listed in a CRL")
    impostor = Ca("Root")  # same name, another key
    assert verify_pdf(with_dss(impostor.crl([cert])), "forged-crl.pdf", trust).status == "valid"
    assert verify_pdf(with_dss(government.crl([])), "clean.pdf", trust).status == "valid"
