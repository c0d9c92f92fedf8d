"""Modified UTF-7 mailbox names (RFC 3501 section 5.1.3)."""

from __future__ import annotations

import unicodedata
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailserver.imap.mutf7 import decode, encode

# (decoded, encoded): RFC 3501 section 5.1.3 example, then common cases.
PAIRS = [
    ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
    ("INBOX", "INBOX"),
    ("", ""),
    ("&", "&-"),
    ("A&B", "A&-B"),
    ("&&", "&-&-"),
    ("Entwürfe", "Entw&APw-rfe"),
    ("Отправленные", "&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-"),
    ("😀", "&2D3eAA-"),  # U+1F600: a UTF-16 surrogate pair
    ("a\x00b", "a&AAA-b"),  # a control character is not printable: encoded
    ("\x7f", "&AH8-"),
    ("~", "~"),
]


@pytest.mark.parametrize(("decoded", "encoded"), PAIRS)
def test_known_pairs(decoded: str, encoded: str) -> None:
    assert encode(decoded) == encoded
    assert decode(encoded) == decoded


@pytest.mark.parametrize(
    "name",
    ["Công văn đến", "Hộp thư/Đã gửi", "Thư rác", "Lưu trữ/2024/Quý IV", "Công văn & Tờ trình"],
)
@pytest.mark.parametrize("form", ["NFC", "NFD"])
def test_vietnamese_round_trip(name: str, form: Literal["NFC", "NFD"]) -> None:
    text = unicodedata.normalize(form, name)
    wire = encode(text)
    assert wire.isascii()
    assert all(0x20 <= ord(c) <= 0x7E for c in wire)
    assert decode(wire) == text


def test_nfc_and_nfd_are_distinct_names() -> None:
    # The codec does not normalise; folding NFC/NFD is the mailbox store's job.
    nfc = unicodedata.normalize("NFC", "Đã gửi")
    nfd = unicodedata.normalize("NFD", "Đã gửi")
    assert encode(nfc) != encode(nfd)


def test_hierarchy_separator_never_inside_run() -> None:
    # "," replaces "/" so a run never contains the separator (section 5.1.3).
    wire = encode("\u00ff\u00fe\u00ff" * 20)
    assert "/" not in wire


@given(st.text())
def test_round_trip(text: str) -> None:
    wire = encode(text)
    assert all(0x20 <= ord(c) <= 0x7E for c in wire)
    assert decode(wire) == text
    # Canonical: re-encoding the decoded name gives the same wire form.
    assert encode(decode(wire)) == wire


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E)))
def test_decode_never_crashes_on_ascii(text: str) -> None:
    try:
        decoded = decode(text)
    except ValueError:
        return
    assert encode(decoded) == text


@pytest.mark.parametrize(
    "bad",
    [
        "&",  # unterminated
        "abc&U,BTFw",  # unterminated run
        "&U,B!Fw-",  # "!" is not modified BASE64
        "&U/BTFw-",  # "/" is RFC 2045 base64, not modified BASE64
        "&U,BTFw=-",  # no "=" padding in modified BASE64
        "&AGE-",  # "a" must represent itself
        "&ACY-",  # "&" must be "&-"
        "&U,BTFx-",  # trailing bits not zero
        "&U,BTFwA-",  # a whole superfluous character
        "&AA-",  # 12 bits: not even one UTF-16 unit
        "&A-",
        "&2D0-",  # lone high surrogate
        "&3gA-",  # lone low surrogate
        "&U,A-&U,A-",  # two runs back to back: non-canonical
        "caf\u00e9",  # raw non-ASCII
        "tab\there",  # non-printable ASCII
        "nl\n",
        "\x7f",
    ],
)
def test_malformed(bad: str) -> None:
    with pytest.raises(ValueError):
        decode(bad)


def test_lone_surrogate_cannot_be_encoded() -> None:
    with pytest.raises(ValueError):
        encode("\ud800")
