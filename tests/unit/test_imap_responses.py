"""Wire form of IMAP responses (RFC 9051 section 4): strings, literals, lists, NIL."""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta, timezone
from email.charset import BASE64, Charset

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailserver.imap import responses as r
from mailserver.imap.commands import format_datetime
from mailserver.imap.responses import Concat, IString, Literal, Untagged
from storage import mimeinfo
from storage.api import Address, Envelope
from storage.imapwire import envelope_wire


def test_nested_values_and_nil() -> None:
    line = Untagged((3, "FETCH", ("UID", 7, "FLAGS", ("\\Seen", "$Junk"), "X", None))).to_bytes()
    assert line == b"* 3 FETCH (UID 7 FLAGS (\\Seen $Junk) X NIL)\r\n"


def test_istring_quotes_escapes_and_falls_back_to_literal() -> None:
    assert Untagged((IString('a "b" \\c'),)).to_bytes() == b'* "a \\"b\\" \\\\c"\r\n'
    assert Untagged((IString("dòng\r\n2"),)).to_bytes() == b"* {8}\r\nd\xc3\xb2ng\r\n2\r\n"
    # 8-bit text is a literal unless UTF8=ACCEPT is on (RFC 6855 section 3).
    assert Untagged((IString("Báo cáo"),)).to_bytes() == b"* {9}\r\nB\xc3\xa1o c\xc3\xa1o\r\n"
    assert Untagged((IString("Báo cáo", utf8=True),)).to_bytes() == b'* "B\xc3\xa1o c\xc3\xa1o"\r\n'
    assert Untagged((IString("x\x00", utf8=True),)).to_bytes() == b"* {2}\r\nx\x00\r\n"


def test_literal8_only_when_nul_and_binary() -> None:
    assert Untagged((Literal(b"a\x00b", binary=True),)).to_bytes() == b"* ~{3}\r\na\x00b\r\n"
    assert Untagged((Literal(b"abc", binary=True),)).to_bytes() == b"* {3}\r\nabc\r\n"


def test_concat_has_no_separators() -> None:
    assert Untagged((Concat((("A",), ("B",))), "MIXED")).to_bytes() == b"* (A)(B) MIXED\r\n"


def test_big_literal_is_passed_through_not_copied() -> None:
    body = b"x" * 100_000
    chunks = list(Untagged((1, "FETCH", ("BODY[]", Literal(body), "UID", 4))).chunks())
    assert chunks[0] == b"* 1 FETCH (BODY[] {100000}\r\n"
    assert chunks[1] is body
    assert chunks[2] == b" UID 4)\r\n"


def test_str_and_int_subclasses_encode_bool_refused() -> None:
    class Kind(enum.StrEnum):
        SEEN = "\\Seen"

    class Count(enum.IntEnum):
        TWO = 2

    assert Untagged((Kind.SEEN, Count.TWO)).to_bytes() == b"* \\Seen 2\r\n"
    with pytest.raises(TypeError):
        Untagged((True,)).to_bytes()


def test_seqset_compresses_runs() -> None:
    assert r.seqset([9, 1, 3, 4, 5]) == "1,3:5,9"


def _header_encode(value: str) -> str:
    charset = Charset("utf-8")
    charset.header_encoding = BASE64
    return charset.header_encode(value)


@pytest.mark.parametrize("value", ["Kế hoạch chuyển đổi số năm 2024", "Đ" * 200, "a\u00e9"])
def test_encoded_word_matches_email_package(value: str) -> None:
    assert r.text(value, False) == IString(_header_encode(value))


_ENVELOPES = [
    Envelope(None, None, (), (), (), (), (), (), None, None),
    Envelope(
        "Mon, 01 Mar 2024 08:00:00 +0700",
        'Kế hoạch "số" \\ 2024',
        (Address("Trần Thị Bích Ngọc", None, "vanthu0", "example.org"),),
        (),
        (Address(None, None, "reply", "example.org"),),
        (Address("Hộp thư", None, "bench", "dongnai.gov.vn"), Address(None, None, "b", "x.vn")),
        (Address("line\r\nbreak", None, "c", "x.vn"),),
        (),
        "<a@b>",
        "<bench.0@example.org>",
    ),
]


@pytest.mark.parametrize("utf8", [False, True])
@pytest.mark.parametrize("env", _ENVELOPES)
def test_envelope_from_cached_json_is_byte_identical(env: Envelope, utf8: bool) -> None:
    cached = mimeinfo.envelope_to_json(env)
    slow = Untagged((1, "FETCH", ("ENVELOPE", r.envelope(env, utf8)))).to_bytes()
    fast = Untagged((1, "FETCH", ("ENVELOPE", r.Raw(envelope_wire(cached, utf8))))).to_bytes()
    assert fast == slow


def test_corrupt_cached_envelope_is_an_error_not_garbage() -> None:
    with pytest.raises(ValueError):
        envelope_wire('["only one"]', False)
    with pytest.raises(ValueError):
        envelope_wire('[null,null,[["x"]],[],[],[],[],[],null,null]', False)


def test_internal_date_is_a_quoted_date_time() -> None:
    from datetime import datetime, timedelta, timezone

    when = datetime(2024, 3, 1, 8, 5, 9, tzinfo=timezone(timedelta(hours=7)))
    assert Untagged(("X", r.internal_date(when))).to_bytes() == b'* X " 1-Mar-2024 08:05:09 +0700"\r\n'
    naive = datetime(2024, 12, 31, 23, 59, 0)
    assert Untagged(("X", r.internal_date(naive))).to_bytes() == b'* X "31-Dec-2024 23:59:00 +0000"\r\n'


_ZONES = st.sampled_from([None, UTC, timezone(timedelta(hours=7)), timezone(-timedelta(minutes=150))])


@given(st.datetimes(min_value=datetime(1000, 1, 2), timezones=_ZONES))
def test_internal_date_fast_form_is_format_datetime(when: datetime) -> None:
    """The UTC shortcut (the store's datetimes) gives what format_datetime gives."""
    aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    assert r.internal_date_bytes(when) == b'"%s"' % format_datetime(aware).encode()
