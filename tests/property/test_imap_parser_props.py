"""Hypothesis: the parser never crashes, parsing a serialized command gives it back,
numbers outside RFC 9051's ranges are BAD, spaces just inside list parentheses
change nothing, and the pre-login limits hold whatever the input.

``IMAP_FUZZ_EXAMPLES`` multiplies every example count here (and in
test_imap_session_fuzz.py) for a longer run than CI's; see the README."""

from __future__ import annotations

import os
from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from mailserver.imap import commands as c
from mailserver.imap.parser import MAX_NUMBER, MAX_NUMBER64, BadCommand, Command, NeedLiteral, Parser, RawLine

SCALE = int(os.environ.get("IMAP_FUZZ_EXAMPLES", "1"))
"""How many times CI's example counts to run (a longer fuzz run: IMAP_FUZZ_EXAMPLES=50)."""


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(data)) for cut in cuts})
    out, last = [], 0
    for point in points:
        out.append(data[last:point])
        last = point
    out.append(data[last:])
    return out


imapish = st.lists(
    st.one_of(
        st.binary(max_size=30),
        st.sampled_from(
            [
                b"\r\n",
                b"{3}\r\n",
                b"{2+}\r\n",
                b"a1 ",
                b"UID ",
                b"FETCH 1:* (BODY[1.2]<0.5>)",
                b"SEARCH OR (",
                b"SORT RETURN (MIN) (REVERSE ",
                b"THREAD REFERENCES UTF-8 ",
                b" NOT ",
                b'"x\\"',
                b"(",
                b")",
                b"IDLE\r\n",
                b"DONE\r\n",
                b"APPEND INBOX {99999999999}\r\n",
                b"AUTHENTICATE PLAIN\r\n",
                b"~{1}\r\n",
            ]
        ),
    ),
    max_size=30,
).map(b"".join)


@settings(max_examples=400 * SCALE, deadline=None)
@given(data=imapish, cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8))
def test_any_bytes_in_any_chunks(data: bytes, cuts: list[int]) -> None:
    parser = Parser(max_line=200, max_literal=100)
    for chunk in chunked(data, cuts):
        for event in parser.feed(chunk):
            assert isinstance(event, Command | NeedLiteral | BadCommand | RawLine)
            if isinstance(event, RawLine):
                parser.end_raw()


@settings(max_examples=200 * SCALE, deadline=None)
@given(data=st.binary(max_size=500))
def test_random_bytes(data: bytes) -> None:
    events = Parser(max_line=64, max_literal=16).feed(data)
    assert all(isinstance(e, Command | NeedLiteral | BadCommand | RawLine) for e in events)


# -- round trip -------------------------------------------------------------------------
atom = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFXYZ0123456789$_-.", min_size=1, max_size=12).filter(
    lambda s: s.upper() != "NIL"
)
text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r\n"), max_size=20
)
mailbox = st.one_of(atom, text.filter(bool)).filter(lambda s: s.upper() != "INBOX")
nz = st.integers(min_value=1, max_value=2**32 - 1)
seq_number = st.one_of(nz, st.none())
seqset = st.lists(st.tuples(seq_number, seq_number), min_size=1, max_size=4).map(
    lambda ranges: c.SeqSet(tuple(ranges))
)
flag = st.one_of(st.sampled_from(["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"]), atom)
day = st.dates(min_value=date(1970, 1, 1), max_value=date(2100, 1, 1))

simple_keys = st.one_of(
    st.sampled_from(
        [
            "ALL",
            "ANSWERED",
            "DELETED",
            "DRAFT",
            "FLAGGED",
            "NEW",
            "OLD",
            "RECENT",
            "SEEN",
            "UNANSWERED",
            "UNDELETED",
            "UNDRAFT",
            "UNFLAGGED",
            "UNSEEN",
        ]
    ).map(c.Simple),
    st.builds(c.Keyword, atom, st.booleans()),
    st.builds(
        c.DateKey, st.sampled_from(["BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE"]), day
    ),
    st.builds(c.SizeKey, st.sampled_from(["LARGER", "SMALLER"]), st.integers(0, 2**63 - 1)),
    st.builds(
        c.HeaderKey,
        st.one_of(st.sampled_from(["from", "to", "cc", "bcc", "subject"]), atom.map(str.lower)),
        text,
    ),
    st.builds(c.TextKey, st.sampled_from(["BODY", "TEXT"]), text),
    st.builds(c.SeqKey, seqset, st.booleans()),
    st.builds(c.ModSeqKey, st.integers(0, 2**63 - 1)),
)
search_key = st.recursive(
    simple_keys,
    lambda inner: st.one_of(
        st.builds(c.Not, inner),
        st.builds(c.Or, inner, inner),
        st.lists(inner, min_size=1, max_size=3).map(lambda ks: c.And(tuple(ks))),
    ),
    max_leaves=8,
)
section = st.one_of(
    st.builds(
        c.Section,
        st.lists(st.integers(1, 20), max_size=3).map(tuple),
        st.sampled_from([None, "HEADER", "TEXT"]),
    ),
    st.builds(c.Section, st.lists(st.integers(1, 20), min_size=1, max_size=3).map(tuple), st.just("MIME")),
    st.builds(
        c.Section,
        st.lists(st.integers(1, 20), max_size=2).map(tuple),
        st.sampled_from(["HEADER.FIELDS", "HEADER.FIELDS.NOT"]),
        st.lists(atom, min_size=1, max_size=3).map(tuple),
    ),
)
partial = st.one_of(st.none(), st.tuples(st.integers(0, 10**6), st.integers(1, 10**6)))
fetch_att = st.one_of(
    st.sampled_from(
        [
            "FLAGS",
            "INTERNALDATE",
            "RFC822",
            "RFC822.HEADER",
            "RFC822.TEXT",
            "RFC822.SIZE",
            "ENVELOPE",
            "BODY",
            "BODYSTRUCTURE",
            "UID",
            "MODSEQ",
        ]
    ).map(c.FetchAtt),
    st.builds(c.FetchAtt, st.sampled_from(["BODY", "BODY.PEEK"]), section, partial),
    st.builds(
        c.FetchAtt,
        st.sampled_from(["BINARY", "BINARY.PEEK"]),
        st.lists(st.integers(1, 9), max_size=3).map(lambda p: c.Section(tuple(p))),
        partial,
    ),
)

sort_criterion = st.builds(c.SortCriterion, st.sampled_from(sorted(c.SORT_KEYS)), st.booleans())
commands = st.one_of(
    st.builds(c.Login, text.filter(bool), text.filter(bool)),
    st.builds(c.Select, mailbox, st.booleans(), st.booleans()),
    st.builds(c.Create, mailbox),
    st.builds(c.Delete, mailbox),
    st.builds(c.Rename, mailbox, mailbox),
    st.builds(c.Subscribe, mailbox, st.booleans()),
    st.builds(
        c.Status,
        mailbox,
        st.lists(st.sampled_from(["MESSAGES", "UIDNEXT", "UNSEEN", "SIZE"]), min_size=1, max_size=4).map(
            tuple
        ),
    ),
    st.builds(c.Copy, st.booleans(), seqset, mailbox, st.booleans()),
    st.builds(c.Expunge, st.just(True), seqset),
    st.builds(
        c.Search,
        st.booleans(),
        st.lists(search_key, min_size=1, max_size=4).map(lambda ks: c.And(tuple(ks))),
        st.sampled_from([None, "UTF-8"]),
        st.one_of(
            st.none(), st.lists(st.sampled_from(["MIN", "MAX", "COUNT", "ALL"]), max_size=3).map(tuple)
        ),
    ),
    st.builds(
        c.Fetch,
        st.booleans(),
        seqset,
        st.lists(fetch_att, min_size=1, max_size=5).map(tuple),
        st.one_of(st.none(), st.integers(0, 2**63 - 1)),
    ),
    st.builds(
        c.Sort,
        st.booleans(),
        st.lists(sort_criterion, min_size=1, max_size=4).map(tuple),
        st.sampled_from(["UTF-8", "US-ASCII", "KOI8-R"]),
        st.lists(search_key, min_size=1, max_size=3).map(lambda ks: c.And(tuple(ks))),
        st.one_of(st.none(), st.lists(st.sampled_from(sorted(c.SORT_RETURN)), max_size=4).map(tuple)),
    ),
    st.builds(
        c.Thread,
        st.booleans(),
        st.sampled_from(sorted(c.THREAD_ALGORITHMS)),
        st.sampled_from(["UTF-8", "US-ASCII"]),
        st.lists(search_key, min_size=1, max_size=3).map(lambda ks: c.And(tuple(ks))),
    ),
    st.builds(
        c.Store,
        st.booleans(),
        seqset,
        st.sampled_from(list(c.StoreMode)),
        st.lists(flag, max_size=4).map(tuple),
        st.booleans(),
        st.one_of(st.none(), st.integers(0, 2**63 - 1)),
    ),
    st.builds(
        c.Append,
        mailbox,
        st.lists(
            st.builds(
                c.AppendMessage,
                st.lists(flag, max_size=3).map(tuple),
                st.none(),
                st.binary(min_size=1, max_size=50),
            ),
            min_size=1,
            max_size=3,
        ).map(tuple),
    ),
    st.builds(c.List, text, st.lists(text, min_size=1, max_size=3).map(tuple)),
    st.builds(
        c.Enable,
        st.lists(st.sampled_from(["CONDSTORE", "QRESYNC", "UTF8=ACCEPT"]), min_size=1, max_size=3).map(tuple),
    ),
    st.builds(
        c.Id,
        st.one_of(st.none(), st.lists(st.tuples(text, st.one_of(st.none(), text)), max_size=3).map(tuple)),
    ),
)


@settings(max_examples=500 * SCALE, deadline=None)
@given(cmd=commands, cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=4))
def test_round_trip(cmd: c.Command, cuts: list[int]) -> None:
    if isinstance(cmd, c.List):
        cmd = c.List(cmd.reference, cmd.patterns, parenthesised=len(cmd.patterns) > 1)
    wire = cmd.to_bytes("T1")
    parser = Parser()
    events = [e for chunk in chunked(wire, cuts) for e in parser.feed(chunk)]
    parsed = [e for e in events if not isinstance(e, NeedLiteral)]
    assert parsed == [Command("T1", cmd)], wire


# -- numbers (RFC 9051 section 9: number and nz-number 32-bit, number64 63-bit) --------------
big = st.one_of(
    st.integers(0, 2**70),
    st.sampled_from([0, 1, MAX_NUMBER, MAX_NUMBER + 1, MAX_NUMBER64, MAX_NUMBER64 + 1, 10**19, 10**20]),
)


@settings(max_examples=300 * SCALE, deadline=None)
@given(n=big, zeros=st.integers(0, 3))
def test_numbers_outside_their_range_are_bad(n: int, zeros: int) -> None:
    digits = b"0" * zeros + b"%d" % n
    cases = [
        (b"a SEARCH LARGER %b\r\n" % digits, n <= MAX_NUMBER64),
        (b"a SEARCH MODSEQ %b\r\n" % digits, n <= MAX_NUMBER64),
        (b"a FETCH %b FLAGS\r\n" % digits, 0 < n <= MAX_NUMBER),
        (b"a UID STORE 1:%b FLAGS ()\r\n" % digits, 0 < n <= MAX_NUMBER),
        (b"a FETCH 1 (FLAGS) (CHANGEDSINCE %b)\r\n" % digits, n <= MAX_NUMBER64),
        (b"a FETCH 1 BODY[]<%b.1>\r\n" % digits, n <= MAX_NUMBER64),
        (b"a FETCH 1 BODY[%b]\r\n" % digits, 0 < n <= MAX_NUMBER),
    ]
    for wire, valid in cases:
        (event,) = Parser().feed(wire)
        assert isinstance(event, Command if valid else BadCommand), (wire, event)


# -- spaces inside parentheses (Dovecot-style liberal parsing) -----------------------------------
no_string_keys = st.recursive(
    st.one_of(
        st.sampled_from(["ALL", "SEEN", "UNSEEN", "FLAGGED", "DELETED", "NEW", "RECENT"]).map(c.Simple),
        st.builds(c.Keyword, atom, st.booleans()),
        st.builds(c.DateKey, st.sampled_from(["BEFORE", "SINCE", "SENTON"]), day),
        st.builds(c.SizeKey, st.sampled_from(["LARGER", "SMALLER"]), st.integers(0, 2**40)),
        st.builds(c.SeqKey, seqset, st.booleans()),
    ),
    lambda inner: st.one_of(
        st.builds(c.Not, inner),
        st.builds(c.Or, inner, inner),
        st.lists(inner, min_size=1, max_size=3).map(lambda ks: c.And(tuple(ks))),
    ),
    max_leaves=8,
)
list_commands = st.one_of(
    st.builds(
        c.Search,
        st.booleans(),
        st.lists(no_string_keys, min_size=1, max_size=4).map(lambda ks: c.And(tuple(ks))),
        st.none(),
        st.one_of(st.none(), st.lists(st.sampled_from(["MIN", "MAX", "COUNT"]), max_size=3).map(tuple)),
    ),
    st.builds(
        c.Fetch,
        st.booleans(),
        seqset,
        st.lists(fetch_att, min_size=2, max_size=5).map(tuple),
        st.one_of(st.none(), st.integers(0, 2**40)),
    ),
    st.builds(
        c.Store,
        st.booleans(),
        seqset,
        st.sampled_from(list(c.StoreMode)),
        st.lists(flag, max_size=4).map(tuple),
        st.booleans(),
        st.one_of(st.none(), st.integers(0, 2**40)),
    ),
    st.builds(
        c.Status,
        atom.filter(lambda s: s.upper() != "INBOX"),
        st.lists(st.sampled_from(["MESSAGES", "UIDNEXT", "UNSEEN", "SIZE"]), min_size=1, max_size=4).map(
            tuple
        ),
    ),
)


@settings(max_examples=300 * SCALE, deadline=None)
@given(cmd=list_commands, after_open=st.integers(0, 3), before_close=st.integers(0, 3))
def test_spaces_inside_parentheses_change_nothing(cmd: c.Command, after_open: int, before_close: int) -> None:
    wire = cmd.to_bytes("T1")
    spaced = wire.replace(b"(", b"(" + b" " * after_open).replace(b")", b" " * before_close + b")")
    (event,) = Parser().feed(spaced)
    assert event == Command("T1", cmd), spaced


# -- limits before login --------------------------------------------------------------------------
@settings(max_examples=300 * SCALE, deadline=None)
@given(data=imapish, cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8))
def test_preauth_limits_hold(data: bytes, cuts: list[int]) -> None:
    """An oversized LITERAL+ is fatal and nothing is parsed after it; no literal above
    the limit is ever asked for; a parser that has produced everything is not pending
    once it saw a line end with nothing after it."""
    parser = Parser(max_line=200, max_literal=16, close_on_oversized=True)
    produced = 0
    for chunk in chunked(data, cuts):
        events = parser.feed(chunk)
        produced += len(events)
        for i, event in enumerate(events):
            if isinstance(event, NeedLiteral):
                assert event.size <= 16
            if isinstance(event, BadCommand) and event.fatal:
                assert i == len(events) - 1
                return  # the driver closes the connection here
            if isinstance(event, RawLine):
                parser.end_raw()
        assert parser.completed == produced
    parser.end_raw()
    while parser.feed(b""):
        pass
    parser.feed(b"\r\n")
    while parser.feed(b""):
        pass
    assert parser.announced >= 0
    if not parser.pending:
        assert parser.buffered == 0
