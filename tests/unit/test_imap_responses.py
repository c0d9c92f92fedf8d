"""Wire form of IMAP responses (RFC 9051 section 4): strings, literals, lists, NIL."""

from __future__ import annotations

import enum

import pytest

from mailserver.imap import responses as r
from mailserver.imap.responses import Concat, IString, Literal, Untagged


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
