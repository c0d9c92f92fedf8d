"""storage.headers: the one reader of the header section (issue 15, sender
spoofing through header syntax). Table cases for ``ambiguity``; then, for any
header section it lets through, every reader in the server agrees on the From:
sender authentication, IMAP ENVELOPE (storage.mimeinfo), submission alignment,
and Python's own parser that the content policy uses."""

from __future__ import annotations

import email.parser
import email.policy
import email.utils

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailserver.texts import ascii_text
from policy.checks.authentication import from_domains, normalise_domain
from policy.checks.sender import header_addresses
from storage import headers
from storage.mimeinfo import analyse

BODY = b"\r\nbody\r\n"


@pytest.mark.parametrize(("head", "reason"), [
    (b"From: <a@example.org>\r\nSubject: x\r\n", None),
    (b"From: Nguyen Van An\r\n <annv@dongnai.gov.vn>\r\nSubject: folded\r\n", None),
    (b"From: \"=?utf-8?b?Tmd1eeG7hW4=?=\" <annv@dongnai.gov.vn>\r\n", None),
    (b"Received: from a\r\n\tby b; Mon, 5 Jan 2026 08:00:00 +0700\r\nFrom: <a@example.org>\r\n", None),
    (b"", None),
    (b" X: y\r\nFrom: <a@example.org>\r\n", "the first header line starts with white space"),
    (b"\tX: y\r\nFrom: <a@example.org>\r\n", "the first header line starts with white space"),
    (b"Subject: x\r\nno colon\r\nFrom: <a@example.org>\r\n", "header line 2 has no colon"),
    (b"From : <a@example.org>\r\n", "white space before the colon of header field 'From'"),
    (b"Subject\t: x\r\n", "white space before the colon of header field 'Subject'"),
    (b"Fr\xc3\xb6m: <a@example.org>\r\n", "header line 1 has no valid field name"),
    (b"X Y: z\r\n", "header line 1 has no valid field name"),
    (b"From: <a@example.org>\r\nfrom: <b@example.org>\r\n", "more than one from field"),
    (b"Sender: <a@example.org>\r\nSENDER: <b@example.org>\r\n", "more than one SENDER field"),
    (b"From: a@example.org <b@dongnai.gov.vn>\r\n",
     "the from field reads as different addresses to different parsers"),
    (b"From: alice@example.org)<bob@dongnai.gov.vn>\r\n",
     "the from field reads as different addresses to different parsers"),
])
def test_ambiguity(head: bytes, reason: str | None) -> None:
    assert headers.ambiguity(head + BODY) == reason


def test_lenient_reading_is_what_envelope_and_dmarc_see() -> None:
    """APPENDed mail is not refused: the lenient reading (obsolete blanks before
    the colon, garbage lines skipped) is the same for ENVELOPE and DMARC."""
    odd = b"X-Junk no colon\r\nFrom : Giam doc <giamdoc@dongnai.gov.vn>\r\n\r\nx\r\n"
    envelope, _, _ = analyse(odd)
    assert [(a.mailbox, a.host) for a in envelope.from_] == [("giamdoc", "dongnai.gov.vn")]
    assert from_domains(odd) == ("dongnai.gov.vn",)


_NAME = st.sampled_from(["From", "from", "Sender", "To", "Subject", "Reply-To", "X-A", "Cc", "Date"])
_VALUE = st.sampled_from([
    "<a@example.org>", "Giam doc <giamdoc@dongnai.gov.vn>", "a@example.org <b@dongnai.gov.vn>",
    '"x@dongnai.gov.vn" <y@example.org>', "a@example.org, b@example.net", "undisclosed:;", "x",
    "=?utf-8?b?R2nDoW0gxJHhu5Fj?= <gd@dongnai.gov.vn>", "", "(c) <c@example.org> (d)", "<@r:e@example.org>",
    "Nguyễn Văn An <annv@dongnai.gov.vn>", "f@", "@g", '"h" <i@example.org>, j@example.org',
])
_FIELDS = st.lists(
    st.tuples(_NAME, st.sampled_from([":", ": ", ":\t"]), _VALUE, st.sampled_from(["", "\r\n  (folded)"])),
    min_size=1, max_size=5, unique_by=lambda t: t[0].lower(),
)
_ODD = st.sampled_from([None, None, None, b"no colon here", b"From x@example.org Mon Jan  5 08:00:00 2026",
                        b"From : <z@dongnai.gov.vn>", b" leading", b"From: <second@example.org>"])


@settings(max_examples=400, deadline=None)
@given(fields=_FIELDS, odd=_ODD, where=st.integers(min_value=0, max_value=5))
def test_every_reader_sees_the_same_from(fields: list[tuple[str, str, str, str]], odd: bytes | None,
                                         where: int) -> None:
    lines = [f"{name}{sep}{value}{fold}".encode() for name, sep, value, fold in fields]
    if odd is not None:
        lines.insert(min(where, len(lines)), odd)
    message = b"\r\n".join(lines) + b"\r\n\r\nbody\r\n"
    if headers.ambiguity(message) is not None:
        assert odd is not None or any(n.lower() in ("from", "sender") for n, *_ in fields)
        return  # refused on every SMTP path
    ours = headers.from_addresses(message)
    # Python's parser (compat32), which the content policy's checks read.
    parsed = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(message)
    theirs = [addr for _, addr in email.utils.getaddresses([str(v) for v in parsed.get_all("From") or []])]
    assert ours == theirs
    envelope, _, _ = analyse(message)
    shown = [f"{a.mailbox}@{a.host}" for a in envelope.from_]
    assert [normalise_domain(s.rpartition("@")[2]) for s in shown if "MISSING" not in s] == [
        d for d in from_domains(message)]
    assert (header_addresses(message, "From") or []) == ours


_ATEXT = "abcXYZ019!#$%&'*+/=?^_`{|}~.-"
_SIMPLE = st.builds(
    lambda display, local, domain: f"{local}@{domain}" if display is None else f"{display}<{local}@{domain}>",
    st.one_of(st.none(), st.text(_ATEXT + " \tếĐ\u00a0\ufeff\u3000", max_size=12),
              st.text(_ATEXT + " ,;:@()<>[]\\ế", max_size=12).map(lambda t: f'"{t}" ')),
    st.text(_ATEXT, min_size=1, max_size=8), st.text("ab9.-", min_size=1, max_size=8),
)


@settings(max_examples=1000, deadline=None)
@given(value=st.one_of(_SIMPLE, st.text(_ATEXT + ' <>@"(),;:\\ ế', max_size=30)))
def test_the_fast_path_reads_like_both_parsers(value: str) -> None:
    """A From value taken as one plain mailbox without parsing (the fast path of
    ``ambiguity``) is one that the strict and the lenient parser read alike.
    Field values arrive stripped (``headers.fields``)."""
    value = value.strip()
    if headers._simple(value):
        assert headers._strict(value) == headers._normal(a for _, a in headers.addresses([value]))


@pytest.mark.parametrize(("text", "expected"), [
    ("Mật khẩu đã hết hạn", "Mat khau da het han"),
    ("ĐỒNG NAI", "DONG NAI"),
    ("Tuyệt mật / TỐI MẬT", "Tuyet mat / TOI MAT"),
    ("plain ASCII", "plain ASCII"),
    ("snowman \u2603", "snowman ?"),
])
def test_ascii_text(text: str, expected: str) -> None:
    assert ascii_text(text) == expected


def test_fields_cache_matches_uncached_reading() -> None:
    # ``fields`` keeps its last reading; every call must still read its own bytes.
    from storage import headers

    sections = [
        b"From: a@example.org\r\nSubject: one\r\n",
        b"From: a@example.org\r\nSubject: two\r\n",
        b"From: a@example.org\r\nSubject: two\r\n",
        b"",
        b"Subject: folded\r\n\tline\r\n",
        b"From: a@example.org\r\nSubject: one\r\n",
    ]
    for section in sections:
        first = headers.fields(section)
        assert first == headers._fields(section)
        first.append(("x", "mutated by the caller"))
        assert headers.fields(section) == headers._fields(section)
    mutable = bytearray(b"From: a@example.org\r\n")
    assert headers.fields(mutable) == [("from", "a@example.org")]  # type: ignore[arg-type]
    mutable[:4] = b"Sndr"
    assert headers.fields(mutable) == [("sndr", "a@example.org")]  # type: ignore[arg-type]
