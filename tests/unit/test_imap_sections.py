"""FETCH body sections (RFC 9051 section 6.4.5) and BINARY (RFC 3516)."""

from __future__ import annotations

import base64
import email
import email.policy
from email.message import EmailMessage, Message

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailserver.imap.sections import decode_binary, extract


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


PDF = bytes(range(256)) * 3
PDF_B64 = base64.encodebytes(PDF).decode("ascii")

MIXED = crlf(
    "From: =?utf-8?B?Q8O0bmcgdsSDbg==?= <cv@dongnai.gov.vn>\n"
    "To: ubnd@dongnai.gov.vn\n"
    "Subject: =?utf-8?Q?C=C3=B4ng_v=C4=83n_=C4=91=E1=BA=BFn?=\n"
    " =?utf-8?Q?_s=E1=BB=91_12?=\n"
    "Date: Mon, 7 Oct 2024 09:15:00 +0700\n"
    "MIME-Version: 1.0\n"
    'Content-Type: multipart/mixed; boundary="outer"\n'
    "\n"
    "This is a multi-part message in MIME format.\n"
    "--outer\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: 8bit\n"
    "\n"
    "Kính gửi Ủy ban nhân dân tỉnh Đồng Nai.\n"
    "Trân trọng.\n"
    "--outer\n"
    'Content-Type: application/pdf; name="cong-van.pdf"\n'
    "Content-Transfer-Encoding: base64\n"
    'Content-Disposition: attachment; filename="cong-van.pdf"\n'
    "\n"
    f"{PDF_B64}"
    "--outer--\n"
    "epilogue\n"
)

NESTED = crlf(
    "From: a@example.org\n"
    "Subject: nested\n"
    'Content-Type: multipart/mixed; boundary="b1"\n'
    "\n"
    "--b1\n"
    'Content-Type: multipart/alternative; boundary="b2"\n'
    "\n"
    "--b2\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
    "Xin ch=C3=A0o =\n"
    "th=E1=BA=BF gi=E1=BB=9Bi\n"
    "--b2\n"
    "Content-Type: text/html; charset=utf-8\n"
    "\n"
    "<p>Xin chào thế giới</p>\n"
    "--b2--\n"
    "--b1\n"
    "Content-Type: image/png\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    "iVBORw0KGgo=\n"
    "--b1--\n"
)

INNER = (
    "From: Nguyễn Văn A <a@example.vn>\n"
    "Subject: =?utf-8?B?QsOhbyBjw6Fv?=\n"
    'Content-Type: multipart/mixed; boundary="in"\n'
    "\n"
    "--in\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "\n"
    "Nội dung báo cáo.\n"
    "--in\n"
    "Content-Type: text/csv\n"
    "\n"
    "a,b\n"
    "1,2\n"
    "--in--\n"
)
INNER_HEADER = INNER.split("\n\n", 1)[0] + "\n\n"
INNER_TEXT = INNER.split("\n\n", 1)[1]

FORWARD = crlf(
    "From: b@example.org\n"
    "Subject: Fwd\n"
    'Content-Type: multipart/mixed; boundary="fw"\n'
    "\n"
    "--fw\n"
    "Content-Type: text/plain\n"
    "\n"
    "see attached\n"
    "--fw\n"
    "Content-Type: message/rfc822\n"
    "Content-Description: forwarded\n"
    "\n"
    f"{INNER}"
    "--fw--\n"
)

SINGLE = crlf(
    "From: a@example.org\n"
    "Subject: plain\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
) + base64.encodebytes("Tờ trình số 5\n".encode()).replace(b"\n", b"\r\n")

FOLDED = crlf(
    "Received: from mx.example.org\n"
    "\tby mx.dongnai.gov.vn; Mon, 7 Oct 2024 09:15:00 +0700\n"
    "From: =?utf-8?B?VHLhuqduIFRo4buLIELDrG5o?=\n"
    "  <binh@example.vn>\n"
    "subject: =?utf-8?Q?B=C3=A1o_c=C3=A1o?=\n"
    "\t=?utf-8?Q?_qu=C3=BD_III?=\n"
    "To: x@example.org\n"
    "X-Empty:\n"
    "\n"
    "body\n"
)


def parsed(data: bytes) -> Message:
    return email.message_from_bytes(data, policy=email.policy.compat32)


def sub(msg: Message, *path: int) -> Message:
    """The sub-part at 0-based ``path`` of a parsed multipart."""
    for index in path:
        part = msg.get_payload(index)
        assert isinstance(part, Message)
        msg = part
    return msg


# -- whole message ---------------------------------------------------------


def test_whole_message() -> None:
    assert extract(MIXED, (), None) == MIXED


def test_header_and_text_split_the_message() -> None:
    header = extract(MIXED, (), "HEADER")
    text = extract(MIXED, (), "TEXT")
    assert header.endswith(b"\r\n\r\n")
    assert header + text == MIXED
    assert text.startswith(b"This is a multi-part")


def test_specifier_is_case_insensitive() -> None:
    assert extract(MIXED, (), "header") == extract(MIXED, (), "HEADER")


def test_mime_needs_a_part_number() -> None:
    assert extract(MIXED, (), "MIME") == b""


def test_unknown_specifier() -> None:
    assert extract(MIXED, (), "BOGUS") == b""


# -- multipart/mixed with text + base64 attachment -------------------------


def test_mixed_parts() -> None:
    assert extract(MIXED, (1,), None) == crlf("Kính gửi Ủy ban nhân dân tỉnh Đồng Nai.\nTrân trọng.")
    assert extract(MIXED, (2,), None) == crlf(PDF_B64).removesuffix(b"\r\n")
    assert extract(MIXED, (3,), None) == b""
    assert extract(MIXED, (0,), None) == b""


def test_mixed_mime_headers() -> None:
    assert extract(MIXED, (1,), "MIME") == crlf(
        "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
    )
    assert extract(MIXED, (2,), "MIME").startswith(b'Content-Type: application/pdf; name="cong-van.pdf"\r\n')
    assert extract(MIXED, (2,), "MIME").endswith(b'filename="cong-van.pdf"\r\n\r\n')


def test_header_on_non_message_part_is_empty() -> None:
    # HEADER/TEXT after a part number need a message/rfc822 part.
    assert extract(MIXED, (1,), "HEADER") == b""
    assert extract(MIXED, (1,), "TEXT") == b""
    assert extract(MIXED, (1,), "HEADER.FIELDS", ("Content-Type",)) == b""


def test_sections_are_slices_of_the_original() -> None:
    for part in [(), (1,), (2,)]:
        for spec in [None, "HEADER", "TEXT", "MIME"]:
            section = extract(MIXED, part, spec)
            assert section in MIXED


def test_binary_base64_attachment() -> None:
    assert decode_binary(MIXED, (2,)) == PDF
    assert decode_binary(MIXED, (2,)) == sub(parsed(MIXED), 1).get_payload(decode=True)


def test_binary_8bit_passes_through() -> None:
    assert decode_binary(MIXED, (1,)) == extract(MIXED, (1,), None)
    assert decode_binary(MIXED, (1,)) == sub(parsed(MIXED), 0).get_payload(decode=True)


def test_binary_whole_message_unchanged() -> None:
    assert decode_binary(MIXED, ()) == MIXED


def test_binary_nonexistent_part() -> None:
    assert decode_binary(MIXED, (7,)) == b""
    assert decode_binary(MIXED, (1, 1)) == b""


# -- nested multipart/alternative inside mixed -----------------------------


def test_nested_numbering() -> None:
    assert extract(NESTED, (1, 1), None) == b"Xin ch=C3=A0o =\r\nth=E1=BA=BF gi=E1=BB=9Bi"
    assert extract(NESTED, (1, 2), None) == "<p>Xin chào thế giới</p>".encode()
    assert extract(NESTED, (2,), None) == b"iVBORw0KGgo="
    assert extract(NESTED, (1, 3), None) == b""
    assert extract(NESTED, (2, 1), None) == b""
    assert extract(NESTED, (1, 1, 1), None) == b""


def test_nested_multipart_body_is_its_raw_body() -> None:
    body = extract(NESTED, (1,), None)
    assert body.startswith(b"--b2\r\n")
    assert body.endswith(b"--b2--")
    assert extract(NESTED, (1,), "MIME") == b'Content-Type: multipart/alternative; boundary="b2"\r\n\r\n'


def test_nested_binary_quoted_printable() -> None:
    expected = "Xin chào thế giới".encode()
    assert decode_binary(NESTED, (1, 1)) == expected
    msg = parsed(NESTED)
    assert decode_binary(NESTED, (1, 1)) == sub(msg, 0, 0).get_payload(decode=True)
    assert decode_binary(NESTED, (2,)) == b"\x89PNG\r\n\x1a\n"


# -- message/rfc822 ---------------------------------------------------------


def test_rfc822_part_body_is_the_whole_encapsulated_message() -> None:
    assert extract(FORWARD, (2,), None) == crlf(INNER).removesuffix(b"\r\n")


def test_rfc822_header_and_text() -> None:
    assert extract(FORWARD, (2,), "HEADER") == crlf(INNER_HEADER)
    assert extract(FORWARD, (2,), "TEXT") == crlf(INNER_TEXT).removesuffix(b"\r\n")
    assert extract(FORWARD, (2,), "MIME") == crlf(
        "Content-Type: message/rfc822\nContent-Description: forwarded\n\n"
    )


def test_rfc822_sub_parts() -> None:
    assert extract(FORWARD, (2, 1), None) == "Nội dung báo cáo.".encode()
    assert extract(FORWARD, (2, 2), None) == b"a,b\r\n1,2"
    assert extract(FORWARD, (2, 2), "MIME") == b"Content-Type: text/csv\r\n\r\n"
    assert extract(FORWARD, (2, 3), None) == b""


def test_rfc822_header_fields() -> None:
    assert extract(FORWARD, (2,), "HEADER.FIELDS", ("subject",)) == (
        b"Subject: =?utf-8?B?QsOhbyBjw6Fv?=\r\n\r\n"
    )


def test_rfc822_with_single_part_inner() -> None:
    data = crlf(
        'Content-Type: multipart/mixed; boundary="x"\n\n'
        "--x\nContent-Type: message/rfc822\n\n"
        "Subject: inner\nContent-Type: text/plain\n\nhello\n"
        "--x--\n"
    )
    assert extract(data, (1,), "HEADER") == b"Subject: inner\r\nContent-Type: text/plain\r\n\r\n"
    assert extract(data, (1,), "TEXT") == b"hello"
    assert extract(data, (1, 1), None) == b"hello"
    assert extract(data, (1, 2), None) == b""


def test_top_level_message_rfc822() -> None:
    data = crlf("Subject: outer\nContent-Type: message/rfc822\n\nSubject: inner\n\nhi\n")
    assert extract(data, (1,), None) == b"Subject: inner\r\n\r\nhi\r\n"
    assert extract(data, (1,), "HEADER") == b"Subject: inner\r\n\r\n"
    assert extract(data, (1, 1), None) == b"hi\r\n"


def test_digest_parts_default_to_rfc822() -> None:
    data = crlf(
        'Content-Type: multipart/digest; boundary="d"\n\n'
        "--d\n\nSubject: one\n\nfirst\n"
        "--d\n\nSubject: two\n\nsecond\n"
        "--d--\n"
    )
    assert extract(data, (2,), "HEADER") == b"Subject: two\r\n\r\n"
    assert extract(data, (1, 1), None) == b"first"


# -- HEADER.FIELDS ----------------------------------------------------------


def test_header_fields_keeps_folded_lines() -> None:
    assert extract(FOLDED, (), "HEADER.FIELDS", ("From", "Subject")) == crlf(
        "From: =?utf-8?B?VHLhuqduIFRo4buLIELDrG5o?=\n"
        "  <binh@example.vn>\n"
        "subject: =?utf-8?Q?B=C3=A1o_c=C3=A1o?=\n"
        "\t=?utf-8?Q?_qu=C3=BD_III?=\n"
        "\n"
    )


def test_header_fields_keeps_message_order_and_duplicates() -> None:
    data = crlf("Received: a\nTo: t\nReceived: b\n\nbody\n")
    assert extract(data, (), "HEADER.FIELDS", ("RECEIVED",)) == b"Received: a\r\nReceived: b\r\n\r\n"


def test_header_fields_no_match_is_blank_line() -> None:
    assert extract(FOLDED, (), "HEADER.FIELDS", ("X-Nothing",)) == b"\r\n"


def test_header_fields_empty_value() -> None:
    assert extract(FOLDED, (), "HEADER.FIELDS", ("x-empty",)) == b"X-Empty:\r\n\r\n"


def test_header_fields_not() -> None:
    assert extract(FOLDED, (), "HEADER.FIELDS.NOT", ("Received", "subject", "X-Empty")) == crlf(
        "From: =?utf-8?B?VHLhuqduIFRo4buLIELDrG5o?=\n  <binh@example.vn>\nTo: x@example.org\n\n"
    )


def test_header_fields_on_mixed_message() -> None:
    section = extract(MIXED, (), "HEADER.FIELDS", ("subject", "from"))
    msg = parsed(section)
    assert msg["From"] == "=?utf-8?B?Q8O0bmcgdsSDbg==?= <cv@dongnai.gov.vn>"
    assert "Subject: =?utf-8?Q?C=C3=B4ng_v=C4=83n_=C4=91=E1=BA=BFn?=\r\n =?utf-8?Q?_s=E1=BB=91_12?=\r\n" in (
        section.decode()
    )
    assert section.endswith(b"\r\n\r\n")
    assert b"To:" not in section


def test_header_fields_name_is_not_a_prefix_match() -> None:
    data = crlf("Subject-Extra: no\nSubject: yes\n\nbody\n")
    assert extract(data, (), "HEADER.FIELDS", ("Subject",)) == b"Subject: yes\r\n\r\n"


# -- non-multipart message ---------------------------------------------------


def test_single_part_message_has_part_one() -> None:
    assert extract(SINGLE, (1,), None) == extract(SINGLE, (), "TEXT")
    assert extract(SINGLE, (1,), "MIME") == extract(SINGLE, (), "HEADER")
    assert extract(SINGLE, (2,), None) == b""
    assert extract(SINGLE, (1, 1), None) == b""
    assert decode_binary(SINGLE, (1,)) == "Tờ trình số 5\n".encode()
    assert decode_binary(SINGLE, (1,)) == parsed(SINGLE).get_payload(decode=True)


def test_message_without_body() -> None:
    data = b"Subject: only a header\r\n"
    assert extract(data, (), "HEADER") == data
    assert extract(data, (), "TEXT") == b""
    assert extract(data, (1,), None) == b""


def test_message_with_empty_header() -> None:
    data = b"\r\njust a body\r\n"
    assert extract(data, (), "HEADER") == b"\r\n"
    assert extract(data, (), "TEXT") == b"just a body\r\n"
    assert extract(data, (), "HEADER.FIELDS", ("Subject",)) == b"\r\n"


def test_empty_message() -> None:
    assert extract(b"", (), None) == b""
    assert extract(b"", (), "HEADER") == b""
    assert extract(b"", (1,), None) == b""
    assert decode_binary(b"", (1,)) == b""


def test_bare_lf_message() -> None:
    data = b"Subject: lf\nContent-Type: multipart/mixed; boundary=z\n\n--z\n\none\n--z\n\ntwo\n--z--\n"
    assert extract(data, (1,), None) == b"one"
    assert extract(data, (2,), None) == b"two"
    assert extract(data, (), "HEADER") == b"Subject: lf\nContent-Type: multipart/mixed; boundary=z\n\n"


# -- broken MIME -------------------------------------------------------------


def test_missing_close_delimiter() -> None:
    data = crlf(
        'Content-Type: multipart/mixed; boundary="cut"\n\n'
        "--cut\nContent-Type: text/plain\n\nfirst\n"
        "--cut\nContent-Type: text/plain\n\nsecond, truncated\n"
    )
    assert extract(data, (1,), None) == b"first"
    assert extract(data, (2,), None) == b"second, truncated\r\n"
    assert extract(data, (3,), None) == b""


def test_multipart_without_boundary_is_a_leaf() -> None:
    data = crlf("Content-Type: multipart/mixed\n\n--x\n\nbody\n--x--\n")
    assert extract(data, (1,), None) == extract(data, (), "TEXT")
    assert extract(data, (2,), None) == b""
    assert decode_binary(data, (1,)) == extract(data, (), "TEXT")


def test_boundary_never_found_is_a_leaf() -> None:
    data = crlf('Content-Type: multipart/mixed; boundary="absent"\n\nno delimiters here\n')
    assert extract(data, (1,), None) == b"no delimiters here\r\n"


def test_boundary_with_transport_padding() -> None:
    data = crlf('Content-Type: multipart/mixed; boundary="p"\n\n--p  \n\none\n--p\t\n\ntwo\n--p-- \n')
    assert extract(data, (1,), None) == b"one"
    assert extract(data, (2,), None) == b"two"


def test_boundary_prefix_inside_body_is_not_a_delimiter() -> None:
    data = crlf('Content-Type: multipart/mixed; boundary="q"\n\n--q\n\n--qq is text\n--q--\n')
    assert extract(data, (1,), None) == b"--qq is text"
    assert extract(data, (2,), None) == b""


def test_empty_part() -> None:
    data = crlf('Content-Type: multipart/mixed; boundary="e"\n\n--e\n--e\n\nx\n--e--\n')
    assert extract(data, (1,), None) == b""
    assert extract(data, (1,), "MIME") == b""
    assert extract(data, (2,), None) == b"x"


def test_garbage_header_line_ends_header() -> None:
    data = b"Subject: s\r\nthis is not a header\r\nmore\r\n"
    assert extract(data, (), "HEADER") == b"Subject: s\r\n"
    assert extract(data, (), "TEXT") == b"this is not a header\r\nmore\r\n"


def test_unknown_cte() -> None:
    data = crlf("Content-Type: text/plain\nContent-Transfer-Encoding: x-uuencode\n\nbegin 644 x\n")
    assert decode_binary(data, (1,)) is None
    assert extract(data, (1,), None) == b"begin 644 x\r\n"


def test_cte_is_case_and_space_insensitive() -> None:
    data = crlf("Content-Transfer-Encoding:  BASE64 \n\naGk=\n")
    assert decode_binary(data, (1,)) == b"hi"


@pytest.mark.parametrize("body", [b"aGVsbG8", b"aGVsbG8=\r\n", b"aGVs\r\nbG8=", b"aGVs*bG8="])
def test_broken_base64_matches_email(body: bytes) -> None:
    data = b"Content-Transfer-Encoding: base64\r\n\r\n" + body
    assert decode_binary(data, (1,)) == parsed(data).get_payload(decode=True)


def test_undecodable_base64_tail_is_dropped() -> None:
    # email gives up and returns the encoded text; a dangling sextet carries no
    # whole octet, so dropping it keeps the decodable prefix instead.
    data = b"Content-Transfer-Encoding: base64\r\n\r\naGVsbG8gd"
    assert decode_binary(data, (1,)) == b"hello "


def test_encoded_rfc822_is_a_leaf() -> None:
    # RFC 2045 section 6.4: an encoded message/rfc822 cannot be entered.
    data = crlf(
        'Content-Type: multipart/mixed; boundary="r"\n\n'
        "--r\nContent-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n"
        f"{base64.b64encode(b'Subject: s').decode()}\n"
        "--r--\n"
    )
    assert extract(data, (1,), "HEADER") == b""
    assert decode_binary(data, (1,)) == b"Subject: s"


def test_deep_nesting_does_not_crash() -> None:
    depth = 500
    head = "".join(f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n' for i in range(depth))
    data = crlf(head + "\nleaf\n")
    assert extract(data, (1,) * 10, "MIME").startswith(b"Content-Type: multipart/mixed")
    extract(data, (1,) * depth, None)
    decode_binary(data, (1,) * depth)


# -- against the email package ----------------------------------------------


def _leaves(msg: Message, prefix: tuple[int, ...]) -> list[tuple[tuple[int, ...], Message]]:
    if msg.is_multipart():
        out: list[tuple[tuple[int, ...], Message]] = []
        for i, sub in enumerate(msg.get_payload(), 1):
            out.extend(_leaves(sub, (*prefix, i)))
        return out
    return [(prefix or (1,), msg)]


texts = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=40)
lines = st.lists(texts, max_size=4).map("\n".join)


@st.composite
def messages(draw: st.DrawFn, depth: int = 0) -> EmailMessage:
    msg = EmailMessage()
    kind = draw(st.sampled_from(["text", "bytes", "multi"] if depth < 3 else ["text", "bytes"]))
    if kind == "text":
        msg.set_content(draw(lines), cte=draw(st.sampled_from(["8bit", "base64", "quoted-printable"])))
    elif kind == "bytes":
        msg.set_content(draw(st.binary(max_size=200)), maintype="application", subtype="octet-stream")
    else:
        msg.make_mixed()
        for _ in range(draw(st.integers(1, 3))):
            msg.attach(draw(messages(depth + 1)))
    return msg


@settings(max_examples=60, deadline=None)
@given(messages())
def test_agrees_with_email_package(msg: EmailMessage) -> None:
    data = msg.as_bytes(policy=email.policy.SMTP)
    reparsed = parsed(data)
    for part, leaf in _leaves(reparsed, ()):
        if leaf["Content-Transfer-Encoding"] in ("base64", "quoted-printable"):
            payload = leaf.get_payload()
            assert isinstance(payload, str)
            raw = payload.encode("ascii")
        else:
            # compat32 hands back 8-bit payloads undecoded only via decode=True.
            undecoded = leaf.get_payload(decode=True)
            assert isinstance(undecoded, bytes)
            raw = undecoded
        assert extract(data, part, None) == raw
        assert decode_binary(data, part) == leaf.get_payload(decode=True)
