"""The PDF step of delivery (``mailserver.dispatch.pdfcheck``) skips work on
mail without a PDF: ``maybe_pdf`` must say what the ``_MAYBE_PDF`` regex says,
and ``with_pdf_headers`` must give what its general path (split into fields,
drop the forged ones) gives, for every message."""

from __future__ import annotations

import random

import pytest

from mailserver.dispatch import pdfcheck
from mailserver.dispatch.pdfcheck import maybe_pdf, with_pdf_headers
from pki.pdfsig import PdfCheck
from pki.smime import split_message


def general_with_pdf_headers(message: bytes, checks: list[PdfCheck]) -> bytes:
    """``with_pdf_headers`` as it was written before the fast path."""
    fields, body = split_message(message)
    if any(pdfcheck._FIELD.match(f) for f in fields):
        message = b"".join(f for f in fields if not pdfcheck._FIELD.match(f)) + b"\r\n" + body
    return b"".join(c.header() for c in checks) + message


SAMPLES = [
    b"",
    b"From: a@b\r\n\r\nbody\r\n",
    b"Content-Type: application/PDF\r\n\r\n...",
    b"Subject: x\r\n\r\nJVBERi0xLjcK\r\n",
    b"Subject: x\r\n\r\njvberi0 PdF\r\n",
    b"Subject: x\r\n\r\nP\xc4\x90F \xd0\xb4f p\r\ndf\r\n",
    b'X-PDF-Signature: file="a.pdf"; status=valid\r\nSubject: x\r\n\r\nbody',
    b"x-pdf-signature : forged\r\n continued\r\nFrom: a@b\r\n\r\nX-PDF-Signature: in the body\r\n",
    b"From: a@b\r\nX-Pdf-Signature\t: forged\r\n\r\n",
    b"From: a@b\r\nX-PDF-Signatures: not ours\r\n\r\n",
    b"From: a@b\r\nSubject: about X-PDF-Signature: fields\r\n\r\n",
    b"X-PDF-Signature: no body and no blank line\r\nFrom: a@b\r\n",
    b"From: a@b\r\n\r\n\r\nX-PDF-Signature: after a blank line\r\n",
]


@pytest.mark.parametrize("message", SAMPLES)
def test_fast_paths_agree_with_the_general_ones(message: bytes) -> None:
    assert maybe_pdf(message) == (pdfcheck._MAYBE_PDF.search(message) is not None)
    checks = [PdfCheck("a.pdf", "invalid", reason="not checked: took too long")]
    for given in ([], checks):
        assert with_pdf_headers(message, given) == general_with_pdf_headers(message, given)


def test_fast_paths_agree_on_random_messages() -> None:
    rng = random.Random(20261206)
    pieces = [
        b"pdf",
        b"PDF",
        b"pDf",
        b"JVBERi0",
        b"jvberi0",
        b"P",
        b"d",
        b"f",
        b"\xd0",
        b"\xc4\x90",
        b"\r\n",
        b"\r\n\r\n",
        b" ",
        b"\t",
        b":",
        b"X-PDF-Signature",
        b"x-pdf-signature",
        b"From",
        b"a",
    ]
    seen_pdf = seen_field = 0
    for _ in range(5000):
        message = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        if rng.random() < 0.3:
            fields = [b"X-PDF-Signature: a\r\n", b"x-pdf-signature\t: b\r\n ", b"Pdf: c\r\n"]
            message = rng.choice(fields) + message
        expected = pdfcheck._MAYBE_PDF.search(message) is not None
        assert maybe_pdf(message) == expected, message
        assert with_pdf_headers(message, []) == general_with_pdf_headers(message, []), message
        seen_pdf += expected
        seen_field += with_pdf_headers(message, []) != message
    assert seen_pdf > 1000 and seen_field > 100  # both branches taken often


def _multipart(body: bytes, ctype: bytes = b"application/pdf", name: bytes = b"a.pdf") -> bytes:
    head = b"From: a@b\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
    text = b"--XX\r\nContent-Type: text/plain\r\n\r\nsee the pdf\r\n"
    part = b'--XX\r\nContent-Type: %s; name="%s"\r\nContent-Transfer-Encoding: base64\r\n\r\n' % (ctype, name)
    return head + text + part + body + b"\r\n--XX--\r\n"


PDF_BASE64 = (
    b"JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PC9UeXBlL0NhdGFsb2c+PgplbmRvYmoKdHJhaWxlcgo8PC9Sb290IDEgMCBSPj4KJSVF"
    b"T0YK"
)
TEXT_SAMPLES = [
    b"From: a@b\r\n\r\n" + b"1XXXXXXXXXX pdf JVBERi0\r\n" * 3000,
    b"From: a@b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + PDF_BASE64 + b"\r\n",
    b"From: a@b\r\nContent-Type: TEXT/HTML\r\n\r\n<a href=x.pdf>pdf</a>\r\n",
    b"From: a@b\r\nContent-Type: multipart\r\n\r\n--XX\r\n" + PDF_BASE64,  # no subtype: text/plain
    b"From: a@b\r\nContent-Type: application/pdf\r\n\r\n" + PDF_BASE64 + b"\r\n",
    b"From: a@b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n" + PDF_BASE64,
    _multipart(PDF_BASE64),
    _multipart(PDF_BASE64, b"application/octet-stream", b"scan.pdf"),
    _multipart(b"aGVsbG8=", b"application/octet-stream", b"notes.txt"),
    b"Content-Type: message/rfc822\r\n\r\n" + _multipart(PDF_BASE64),
    b"no header at all, pdf " + PDF_BASE64,
    b"From: a@b\nContent-Type: multipart/mixed; boundary=XX\n\n"
    b"--XX\nContent-Type: application/pdf\n\n%PDF-1.4\n--XX--\n",
]


@pytest.mark.parametrize("message", TEXT_SAMPLES)
def test_a_single_text_part_has_no_pdf(message: bytes) -> None:
    """``single_text`` (the header section only) implies ``pdf_parts`` finds
    nothing in the whole message: the check would add no field."""
    from pki.pdfsig import pdf_parts

    if pdfcheck.single_text(message):
        assert pdf_parts(message) == []


def test_single_text_is_not_everything() -> None:
    from pki.pdfsig import pdf_parts

    texts = [m for m in TEXT_SAMPLES if pdfcheck.single_text(m)]
    with_pdfs = [m for m in TEXT_SAMPLES if pdf_parts(m)]
    assert len(texts) == 5 and len(with_pdfs) >= 4
    assert not any(pdfcheck.single_text(m) for m in with_pdfs)
