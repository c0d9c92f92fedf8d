"""storage.mimeinfo: ENVELOPE and BODYSTRUCTURE (RFC 9051 section 7.5.2) against
hand-computed sizes and line counts (Dovecot semantics: the line break before a
boundary belongs to the boundary; lines = LF octets in the part body)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from storage.api import Address, BodyPart
from storage.mimeinfo import (
    analyse,
    body_from_json,
    body_to_json,
    decode_words,
    envelope_from_json,
    envelope_to_json,
)

MIXED = (
    b"From: =?UTF-8?B?Tmd1eeG7hW4gVsSDbiBBbg==?= <annv@dongnai.gov.vn>\r\n"
    b"To: Alice <alice@example.org>, bob@example.org\r\n"
    b"Cc: undisclosed-recipients:;\r\n"
    b"Subject: =?UTF-8?B?VGjDtG5nIGLDoW8gaOG7jXA=?=\r\n"
    b"Date: Mon, 6 Jan 2025 08:00:00 +0700\r\n"
    b"Message-ID: <1@dongnai.gov.vn>\r\n"
    b"In-Reply-To: <0@dongnai.gov.vn>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="outer"\r\n'
    b"\r\n"
    b"This is a multi-part message.\r\n"
    b"--outer\r\n"
    b'Content-Type: multipart/alternative; boundary="inner"\r\n'
    b"\r\n"
    b"--inner\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"Xin ch\xc3\xa0o\r\n"
    b"line two\r\n"
    b"--inner\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"\r\n"
    b"<p>Xin ch&agrave;o</p>\r\n"
    b"--inner--\r\n"
    b"--outer\r\n"
    b'Content-Type: application/pdf; name="report.pdf"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b'Content-Disposition: attachment; filename="report.pdf"\r\n'
    b"Content-ID: <pdf1>\r\n"
    b"Content-Description: Monthly report\r\n"
    b"Content-Language: vi, en\r\n"
    b"Content-Location: http://example.org/\r\n  report.pdf\r\n"
    b"\r\n"
    b"JVBERi0xLjQK\r\n"
    b"AAAA\r\n"
    b"--outer--\r\n"
    b"epilogue\r\n"
)


def test_multipart_mixed_with_alternative_and_attachment() -> None:
    envelope, body, fields = analyse(MIXED)
    assert envelope.subject == "Thông báo họp"
    assert envelope.date == "Mon, 6 Jan 2025 08:00:00 +0700"
    assert envelope.from_ == (Address("Nguyễn Văn An", None, "annv", "dongnai.gov.vn"),)
    assert envelope.sender == envelope.from_ and envelope.reply_to == envelope.from_
    assert envelope.to == (
        Address("Alice", None, "alice", "example.org"),
        Address(None, None, "bob", "example.org"),
    )
    assert envelope.cc == () and envelope.bcc == ()
    assert envelope.message_id == "<1@dongnai.gov.vn>"
    assert envelope.in_reply_to == "<0@dongnai.gov.vn>"

    assert (body.maintype, body.subtype, body.params) == ("multipart", "mixed", (("boundary", "outer"),))
    alternative, pdf = body.children
    plain, html = alternative.children
    assert (alternative.maintype, alternative.subtype) == ("multipart", "alternative")
    # "Xin chào\r\nline two": 9 + 2 + 8 octets; the final CRLF belongs to the boundary
    assert plain == BodyPart(
        maintype="text", subtype="plain", params=(("charset", "utf-8"),), encoding="8BIT", size=19, lines=1
    )
    assert (html.subtype, html.size, html.lines, html.encoding) == ("html", 22, 0, "7BIT")
    assert pdf == BodyPart(
        maintype="application",
        subtype="pdf",
        params=(("name", "report.pdf"),),
        content_id="<pdf1>",
        description="Monthly report",
        encoding="BASE64",
        size=18,
        lines=None,
        disposition=("attachment", (("filename", "report.pdf"),)),
        language=("vi", "en"),
        location="http://example.org/report.pdf",
    )
    assert fields.subject == "thông báo họp"
    assert "nguyễn văn an" in fields.from_ and "annv@dongnai.gov.vn" in fields.from_
    assert fields.to == "alice <alice@example.org>, bob@example.org"
    assert fields.message_id == "<1@dongnai.gov.vn>"


FORWARD = (
    b"Subject: Fwd\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n'
    b"\r\n"
    b"--b1\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"see attached\r\n"
    b"--b1\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"\r\n"
    b"From: x@y.z\r\n"
    b"Subject: inner\r\n"
    b"\r\n"
    b"inner body\r\n"
    b"--b1--\r\n"
)


def test_message_rfc822() -> None:
    _, body, _ = analyse(FORWARD)
    text, attached = body.children
    assert (text.params, text.size, text.lines) == ((("charset", "us-ascii"),), 12, 0)
    assert (attached.maintype, attached.subtype) == ("message", "rfc822")
    # 13 + 16 + 2 + 10 octets, three LFs
    assert (attached.size, attached.lines) == (41, 3)
    assert attached.envelope is not None
    assert attached.envelope.subject == "inner"
    assert attached.envelope.from_ == (Address(None, None, "x", "y.z"),)
    (inner,) = attached.children
    assert (inner.maintype, inner.subtype, inner.size, inner.lines) == ("text", "plain", 10, 0)


def test_single_part_defaults() -> None:
    data = b"Subject: plain\r\n\r\nline 1\r\nline 2\r\n"
    envelope, body, _ = analyse(data)
    assert body == BodyPart(
        maintype="text", subtype="plain", params=(("charset", "us-ascii"),), size=16, lines=2
    )
    assert envelope.from_ == () and envelope.date is None


def test_raw_utf8_headers_smtputf8() -> None:
    data = (
        "From: Nguyễn Văn An <an@dongnai.gov.vn>\r\n"
        "To: phòng@ủy-ban.vn\r\n"
        "Subject: Thông báo khẩn\r\n\r\nnội dung\r\n"
    ).encode()
    envelope, body, fields = analyse(data)
    assert envelope.subject == "Thông báo khẩn"
    assert envelope.from_ == (Address("Nguyễn Văn An", None, "an", "dongnai.gov.vn"),)
    assert envelope.to[0].mailbox == "phòng" and envelope.to[0].host == "ủy-ban.vn"
    assert fields.subject == "thông báo khẩn"
    assert body.size == len("nội dung\r\n".encode())


def test_rfc2047_variants() -> None:
    assert decode_words("=?UTF-8?Q?H=E1=BB=8Dp_giao_ban?=") == "Họp giao ban"
    # adjacent words: whitespace between them is dropped (RFC 2047 section 6.2)
    assert decode_words("=?utf-8?b?VGjDtG5n?= =?utf-8?b?IGLDoW8=?=") == "Thông báo"
    # a multi-byte character split across two words
    assert decode_words("=?UTF-8?B?ww==?= =?UTF-8?B?oA==?=") == "à"
    assert decode_words("plain =?iso-8859-1?q?caf=E9?= end") == "plain café end"
    assert decode_words("=?unknown-charset?Q?abc?=") == "abc"
    assert decode_words("=?UTF-8?B?###?=") == "=?UTF-8?B?###?="


def test_missing_close_boundary() -> None:
    data = (
        b'Content-Type: multipart/mixed; boundary="x"\r\n\r\n'
        b"--x\r\nContent-Type: text/plain\r\n\r\nfirst\r\n"
        b"--x\r\nContent-Type: text/plain\r\n\r\nsecond\r\nrest\r\n"
    )
    _, body, _ = analyse(data)
    first, second = body.children
    assert first.size == 5 and first.lines == 0
    # no close delimiter: the last part runs to the end of the message
    assert second.size == len(b"second\r\nrest\r\n") and second.lines == 2


def test_multipart_without_parts_or_boundary() -> None:
    _, body, _ = analyse(b'Content-Type: multipart/mixed; boundary="never"\r\n\r\nno parts here\r\n')
    assert body.children == (
        BodyPart(maintype="text", subtype="plain", params=(("charset", "us-ascii"),), size=0, lines=0),
    )
    _, body, _ = analyse(b"Content-Type: multipart/mixed\r\n\r\nabc\r\n")
    assert (body.maintype, body.subtype, body.size, body.children) == ("text", "plain", 5, ())


def test_garbage_headers() -> None:
    data = b"Garbage line without colon\r\n: empty name\r\nSubject: ok\r\nContent-Type: ;;;\r\n\r\nx"
    envelope, body, _ = analyse(data)
    assert envelope.subject == "ok"
    assert (body.maintype, body.subtype, body.size) == ("text", "plain", 1)
    _, body, _ = analyse(b"no header body separator at all")
    assert body.size == 0
    envelope, body, _ = analyse(b"")
    assert body.size == 0 and envelope.subject is None


def test_lf_only_message() -> None:
    _, body, _ = analyse(b"Subject: x\n\nline\n")
    assert (body.size, body.lines) == (5, 1)


def test_json_round_trip() -> None:
    for data in (MIXED, FORWARD):
        envelope, body, _ = analyse(data)
        assert envelope_from_json(envelope_to_json(envelope)) == envelope
        assert body_from_json(body_to_json(body)) == body


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_never_raises_on_random_bytes(data: bytes) -> None:
    analyse(data)


_FRAGMENTS = [
    b"Content-Type: multipart/mixed; boundary=b\r\n",
    b"Content-Type: message/rfc822\r\n",
    b"Content-Type: text/plain; charset*0*=utf-8''%E1; charset*1=x\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Subject: =?utf-8?b?",
    b'From: <@>, "unterminated\r\n',
    b"\r\n",
    b"--b\r\n",
    b"--b--\r\n",
    b"body\r\n",
    b"\xff\xfe\x00",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_FRAGMENTS), max_size=40))
def test_never_raises_on_mime_fragments(parts: list[bytes]) -> None:
    envelope, body, _ = analyse(b"".join(parts))
    assert body_from_json(body_to_json(body)) == body
    assert envelope_from_json(envelope_to_json(envelope)) == envelope
