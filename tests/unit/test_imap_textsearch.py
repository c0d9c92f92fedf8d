"""SEARCH BODY / TEXT / HEADER / SENT* on raw messages (RFC 9051 section 6.4.4)."""

from __future__ import annotations

import base64
import datetime
import quopri
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailserver.imap import textsearch
from mailserver.imap.textsearch import body_contains, header_contains, sent_date, text_contains


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def b_word(text: str, charset: str = "utf-8") -> str:
    return f"=?{charset}?B?{base64.b64encode(text.encode(charset)).decode()}?="


def q_word(text: str, charset: str = "utf-8") -> str:
    encoded = quopri.encodestring(text.encode(charset), header=True).decode()
    return f"=?{charset}?Q?{encoded}?="


def cp1258(text: str) -> bytes:
    """Encode like a Windows-1258 mailer: precomposed base letter + tone mark."""
    out = bytearray()
    for ch in unicodedata.normalize("NFC", text):
        try:
            out += ch.encode("cp1258")
            continue
        except UnicodeEncodeError:
            pass
        decomposed = unicodedata.normalize("NFD", ch)
        base, marks = decomposed[0], list(decomposed[1:])
        for mark in marks:
            composed = unicodedata.normalize("NFC", base + mark)
            rest = [m for m in marks if m != mark]
            try:
                out += composed.encode("cp1258") + "".join(rest).encode("cp1258")
                break
            except UnicodeEncodeError:
                continue
        else:
            out += unicodedata.normalize("NFD", ch).encode("cp1258")
    return bytes(out)


SUBJECT = "Công văn đến số 12/UBND"

PLAIN_QP = crlf(
    f"From: {b_word('Phòng Hành chính')} <hc@dongnai.gov.vn>\n"
    "To: ubnd@dongnai.gov.vn\n"
    f"Subject: {b_word(SUBJECT)}\n"
    "Date: Mon, 7 Oct 2024 23:30:00 +0700\n"
    "MIME-Version: 1.0\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
) + quopri.encodestring("Kính gửi Ủy ban nhân dân tỉnh Đồng Nai,\nvề việc Công Văn khẩn.\n".encode()).replace(
    b"\n", b"\r\n"
)

HTML = "<p>Kế <b>hoạch</b> năm&nbsp;2025</p><script>var bí_mật=1</script>"

MULTI = crlf(
    "From: a@example.vn\n"
    f"Subject: {q_word('Báo cáo quý III')}\n"
    'Content-Type: multipart/mixed; boundary="m"\n'
    "\n"
    "--m\n"
    'Content-Type: multipart/alternative; boundary="alt"\n'
    "\n"
    "--alt\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    f"{base64.encodebytes('Tổng hợp số liệu tháng chín.'.encode()).decode()}"
    "--alt\n"
    "Content-Type: text/html; charset=windows-1258\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
    + quopri.encodestring(cp1258(HTML)).decode()
    + "\n--alt--\n"
    "--m\n"
    'Content-Type: application/octet-stream; name="data.bin"\n'
    "Content-Transfer-Encoding: base64\n"
    "\n"
    f"{base64.b64encode('mật khẩu trong tệp đính kèm'.encode()).decode()}\n"
    "--m\n"
    "Content-Type: text/plain; charset=iso-8859-1\n"
    "Content-Transfer-Encoding: 8bit\n"
    "\n"
).replace(b"\r\n--m--", b"") + "Café crème\r\n".encode("latin-1") + b"--m--\r\n"

FORWARD = crlf(
    "Subject: Fwd\n"
    'Content-Type: multipart/mixed; boundary="f"\n'
    "\n"
    "--f\n"
    "Content-Type: message/rfc822\n"
    "\n"
    f"Subject: {b_word('Thư mời họp')}\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "\n"
    "Họp giao ban lúc 8 giờ.\n"
    "--f--\n"
)


# -- BODY --------------------------------------------------------------------


@pytest.mark.parametrize(
    "needle",
    ["Công Văn", "công văn khẩn", "CÔNG VĂN", "ĐỒNG NAI", "đồng nai", "Ủy ban", "tỉnh Đồng Nai, về việc", ""],
)
def test_body_quoted_printable_utf8(needle: str) -> None:
    assert body_contains(PLAIN_QP, needle)
    assert body_contains(PLAIN_QP, nfd(needle))


def test_body_does_not_match_header() -> None:
    assert not body_contains(PLAIN_QP, "Phòng Hành chính")
    assert not body_contains(PLAIN_QP, "ubnd@dongnai")


def test_body_folds_diacritics_unless_exact() -> None:
    # Typed without diacritics (issue #21), "cong van" finds "Công Văn"; with
    # search.exact_diacritics a query with diacritics matches only those.
    assert body_contains(PLAIN_QP, "cong van")
    assert body_contains(PLAIN_QP, "dong nai")
    assert body_contains(PLAIN_QP, "Công Văn", exact=True)
    assert not body_contains(PLAIN_QP, "Cộng Văn", exact=True)
    assert body_contains(PLAIN_QP, "Cộng Văn")


def test_body_nfd_message() -> None:
    data = crlf(f"Content-Type: text/plain; charset=utf-8\n\n{nfd('Quyết định bổ nhiệm Đặng Thị Hương')}\n")
    assert body_contains(data, "quyết định")
    assert body_contains(data, nfd("ĐẶNG THỊ"))
    assert body_contains(data, "Đặng Thị Hương")


def test_body_base64_part() -> None:
    assert body_contains(MULTI, "tổng hợp số liệu")
    assert body_contains(MULTI, "THÁNG CHÍN")


def test_body_html_windows_1258() -> None:
    assert body_contains(MULTI, "kế hoạch năm 2025")  # tags and &nbsp; gone
    assert not body_contains(MULTI, "<b>")
    assert not body_contains(MULTI, "bí_mật")  # script content is not text


def test_body_windows_1258_nfd() -> None:
    # windows-1258 stores Vietnamese with combining tone marks (NFD-like).
    raw = cp1258("Thông báo khẩn")
    assert raw != "Thông báo khẩn".encode("cp1258", "replace")
    data = b"Content-Type: text/plain; charset=windows-1258\r\n\r\n" + raw
    assert body_contains(data, "THÔNG BÁO KHẨN")


def test_body_latin1_part() -> None:
    assert body_contains(MULTI, "CAFÉ CRÈME")


def test_body_skips_attachments() -> None:
    assert not body_contains(MULTI, "mật khẩu")


def test_body_searches_encapsulated_message() -> None:
    assert body_contains(FORWARD, "họp giao ban")
    assert body_contains(FORWARD, "thư mời họp")  # the inner header is body text


def test_body_whitespace_is_collapsed() -> None:
    data = b"Content-Type: text/plain\r\n\r\nhello\r\n   world\r\n"
    assert body_contains(data, "hello world")


def test_body_unlabelled_8bit_is_utf8() -> None:
    data = "Subject: x\r\n\r\nGiấy mời\r\n".encode()
    assert body_contains(data, "giấy mời")


def test_body_unknown_charset_falls_back() -> None:
    data = crlf("Content-Type: text/plain; charset=x-does-not-exist\n\nNghị quyết\n")
    assert body_contains(data, "nghị quyết")
    data = crlf("Content-Type: text/plain; charset=base64\n\nNghị quyết\n")
    assert body_contains(data, "nghị quyết")


def test_body_mislabelled_ascii() -> None:
    data = crlf("Content-Type: text/plain; charset=us-ascii\n\nChỉ thị\n")
    assert body_contains(data, "chỉ thị")


def test_body_rfc2231_charset_with_language() -> None:
    data = crlf("Content-Type: text/plain; charset*=utf-8'vi'\n\nĐiều lệ\n").replace(
        b"charset*=utf-8'vi'", b"charset=utf-8*vi"
    )
    assert body_contains(data, "điều lệ")


# -- TEXT --------------------------------------------------------------------


def test_text_matches_header_and_body() -> None:
    assert text_contains(PLAIN_QP, "công văn đến số 12")  # decoded Subject
    assert text_contains(PLAIN_QP, "phòng hành chính")  # decoded From
    assert text_contains(PLAIN_QP, "Công văn khẩn")  # body
    assert text_contains(PLAIN_QP, "ubnd@dongnai.gov.vn")
    assert text_contains(MULTI, "báo cáo quý iii")
    assert not text_contains(MULTI, "mật khẩu")  # attachment
    assert not text_contains(PLAIN_QP, "không có")


def test_text_does_not_span_header_and_body() -> None:
    data = b"Subject: alpha\r\n\r\nbeta\r\n"
    assert not text_contains(data, "alpha beta")


# -- HEADER --------------------------------------------------------------------


@pytest.mark.parametrize("word", [b_word, q_word])
def test_header_rfc2047_vietnamese(word: object) -> None:
    assert callable(word)
    data = crlf(f"Subject: {word(SUBJECT)}\n\nbody\n")
    assert header_contains(data, "Subject", "công văn đến")
    assert header_contains(data, "subject", "CÔNG VĂN ĐẾN SỐ")
    assert header_contains(data, "SUBJECT", nfd("Công Văn"))
    assert not header_contains(data, "From", "công văn")


def test_header_nfd_encoded_word() -> None:
    data = crlf(f"Subject: {b_word(nfd(SUBJECT))}\n\nbody\n")
    assert header_contains(data, "Subject", "Công Văn")


def test_header_folded_multiple_encoded_words() -> None:
    # RFC 2047 section 6.2: whitespace between encoded-words disappears.
    data = crlf(f"Subject: {q_word('Công v')}\n {q_word('ăn đến')}\n\nbody\n")
    assert header_contains(data, "Subject", "công văn đến")


def test_header_windows_1258_and_latin1_words() -> None:
    subject = q_word("Thông báo", "windows-1258")
    note = b_word("Garçon", "iso-8859-1")
    data = crlf(f"Subject: {subject}\nX-Note: {note}\n\nb\n")
    assert header_contains(data, "Subject", "thông báo")
    assert header_contains(data, "X-Note", "GARÇON")


def test_header_raw_utf8() -> None:
    # RFC 6532: 8-bit UTF-8 straight in the header.
    data = "Subject: Tờ trình về ngân sách\r\n\r\nbody\r\n".encode()
    assert header_contains(data, "subject", "TỜ TRÌNH")


def test_header_address_with_encoded_name() -> None:
    assert header_contains(PLAIN_QP, "From", "phòng hành chính")
    assert header_contains(PLAIN_QP, "From", "hc@dongnai.gov.vn")


def test_header_empty_needle_means_present() -> None:
    assert header_contains(PLAIN_QP, "Subject", "")
    assert header_contains(PLAIN_QP, "mime-version", "")
    assert not header_contains(PLAIN_QP, "X-Priority", "")


def test_header_repeated_field() -> None:
    data = b"Received: from a\r\nReceived: from b\r\n\r\nx\r\n"
    assert header_contains(data, "Received", "from b")


def test_header_only_in_top_level_header() -> None:
    assert not header_contains(FORWARD, "Subject", "thư mời")


def test_header_broken_encoded_words() -> None:
    data = b"Subject: =?utf-8?B?!!!?= =?x-unknown?Q?abc?= =?utf-8?Q?=FF=?= tail\r\n\r\n"
    assert header_contains(data, "Subject", "tail")
    assert header_contains(data, "Subject", "abc")


# -- SENT* date ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        # Its own timezone: 23:30 +0700 is already the 8th in UTC, still the 7th.
        ("Mon, 7 Oct 2024 23:30:00 +0700", datetime.date(2024, 10, 7)),
        ("Tue, 01 Jan 2002 00:30:00 -1200", datetime.date(2002, 1, 1)),
        ("7 Oct 2024 10:00 GMT", datetime.date(2024, 10, 7)),
        ("Mon, 7 Oct 24 10:00:00 +0000", datetime.date(2024, 10, 7)),
        ("Fri, 21 Nov 1997 09:55:06 -0600", datetime.date(1997, 11, 21)),
    ],
)
def test_sent_date(date: str, expected: datetime.date) -> None:
    assert sent_date(f"Date: {date}\r\n\r\nx\r\n".encode()) == expected


def test_sent_date_of_fixture() -> None:
    assert sent_date(PLAIN_QP) == datetime.date(2024, 10, 7)


@pytest.mark.parametrize(
    "data",
    [
        b"Subject: no date\r\n\r\nx\r\n",
        b"Date: yesterday\r\n\r\nx\r\n",
        b"Date: 31 Feb 2024 10:00 +0000\r\n\r\n",
        b"Date:\r\n\r\n",
        b"Date: 1 Jan 99999999999999999999 10:00 +0000\r\n\r\n",
        b"",
    ],
)
def test_sent_date_missing_or_broken(data: bytes) -> None:
    assert sent_date(data) is None


# -- robustness ----------------------------------------------------------------


BROKEN = [
    b"",
    b"\xff\xfe\x00garbage",
    b"Content-Type: multipart/mixed\r\n\r\nno boundary\r\n",
    b'Content-Type: multipart/mixed; boundary="x"\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\ncut',
    b"Content-Type: text/plain; charset=\"\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!=\r\n",
    b"Content-Type: text/html\r\n\r\n<![if x]><!-- <script>",
    b"Content-Type: text/plain; charset*=bogus''%FF%FE\r\n\r\nx",
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\n=ZZ=\r\n=",
    b"Subject: =?utf-8?B?====?=\r\n\r\n",
    b"".join(f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n'.encode() for i in range(300))
    + b"\r\ndeep text\r\n",
]


@pytest.mark.parametrize("data", BROKEN)
def test_broken_input_never_raises(data: bytes) -> None:
    body_contains(data, "x")
    text_contains(data, "x")
    header_contains(data, "Subject", "x")
    header_contains(data, "Subject", "")
    sent_date(data)
    # The helpers under the public functions' safety net do not raise either.
    msg = textsearch._parse(data)
    list(textsearch._body_texts(msg))
    textsearch._header_text(msg)


def test_html_marked_section_falls_back() -> None:
    data = b"Content-Type: text/html\r\n\r\n<![bogus[ x ]]><b>needle</b>"
    assert body_contains(data, "needle")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600), st.text(max_size=10))
def test_arbitrary_bytes_never_raise(data: bytes, needle: str) -> None:
    msg = textsearch._parse(data)
    list(textsearch._body_texts(msg))
    textsearch._header_text(msg)
    body_contains(data, needle)
    text_contains(data, needle)
    header_contains(data, "Subject", needle)
    sent_date(data)


@settings(max_examples=100, deadline=None)
@given(st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), min_size=1))
def test_any_text_found_in_its_own_body(text: str) -> None:
    for form in ("NFC", "NFD"):
        body = unicodedata.normalize(form, text)
        encoded = base64.encodebytes(body.encode()).replace(b"\n", b"\r\n")
        header = b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        data = header + encoded
        assert body_contains(data, text)
        assert body_contains(data, text.casefold())
        assert body_contains(data, unicodedata.normalize("NFD", text))
