"""The cheap refusal of files that are not PDFs (``policy.extract.formats.pdf_has_trailer``):
it must refuse only what pypdf cannot open either, so no text is lost by skipping pypdf."""

from __future__ import annotations

import io
import random
from email.message import EmailMessage

import pytest
from pypdf import PdfReader
from pypdf.errors import PdfReadError

from policy.extract.formats import pdf_has_trailer, pdf_text
from policy.extract.walk import Limits, analyse
from tests.policy.corpus import pdf

LINES = ["Số: 123/QĐ-UBND", "QUYẾT ĐỊNH về việc phê duyệt kế hoạch"]


def _without_marker(data: bytes) -> bytes:
    assert b"%%EOF" in data
    return data.replace(b"%%EOF", b"%%XOF")


def _not_pdfs() -> list[bytes]:
    rng = random.Random(21)
    real = pdf(LINES)
    return [
        b"%PDF-1.4\n" + rng.randbytes(50_000),  # the benchmark corpus's attachments
        _without_marker(real),  # a real document whose trailer was damaged
        _without_marker(real) + b"\r\n\r\n",
        real[: len(real) // 2],  # cut in the middle (a truncated download)
    ]


def test_a_real_pdf_has_its_trailer_and_its_text() -> None:
    data = pdf(LINES)
    assert pdf_has_trailer(data)
    assert any("123/QĐ-UBND" in line for line in pdf_text(data).lines)


@pytest.mark.parametrize("data", _not_pdfs(), ids=["random", "damaged", "damaged-crlf", "truncated"])
def test_refused_only_where_pypdf_fails_too(data: bytes) -> None:
    assert not pdf_has_trailer(data)
    # pypdf itself cannot open it: refusing it early loses no text. If a pypdf
    # upgrade learns to recover such files, this fails and the shortcut must go.
    with pytest.raises(Exception):  # noqa: B017 - pypdf raises several kinds here
        PdfReader(io.BytesIO(data), strict=False)
    with pytest.raises(PdfReadError):
        pdf_text(data)


@pytest.mark.parametrize("tail", [b"%%EO", b"%%E", b"%%", b"%", b"%%EO\r\n", b"%%EOF"])
def test_a_truncated_marker_is_left_to_pypdf(tail: bytes) -> None:
    # pypdf reads a last line ending in a truncated marker as a truncated file and
    # carries on, so such a file must reach it.
    data = _without_marker(pdf(LINES)).rstrip() + b"\n" + tail
    assert pdf_has_trailer(data)


def test_a_refused_attachment_is_unreadable_and_keeps_its_name() -> None:
    msg = EmailMessage()
    msg["Subject"] = "Hồ sơ"
    msg.set_content("Kính gửi các đơn vị.")
    msg.add_attachment(_not_pdfs()[0], maintype="application", subtype="pdf", filename="Tài liệu 7.pdf")
    analysis = analyse(msg.as_bytes(), Limits())
    assert [(f.kind, f.detail) for f in analysis.findings] == [("unreadable", "pdf: PdfReadError")]
    assert "Tài liệu 7.pdf" in [u.text for u in analysis.units if u.role == "filename"]
    assert "Kính gửi các đơn vị." in analysis.body_text()
