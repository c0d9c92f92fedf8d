"""Table-driven parser cases, mostly the examples of RFC 3501 / RFC 9051 section 6."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from mailserver.imap import commands as c
from mailserver.imap.parser import BadCommand, Command, NeedLiteral, Parser, RawLine, parse_command

S = c.SeqSet


def one(line: bytes) -> c.Command:
    event = parse_command(line)
    assert isinstance(event, Command), event
    return event.command


CASES: list[tuple[bytes, c.Command]] = [
    (b"a001 CAPABILITY\r\n", c.Capability()),
    (b"a002 NOOP\r\n", c.Noop()),
    (b"A023 LOGOUT\r\n", c.Logout()),
    (b"a002 STARTTLS\r\n", c.StartTls()),
    (b"a001 LOGIN SMITH SESAME\r\n", c.Login("SMITH", "SESAME")),
    (b'a001 login "fred" "foo bar"\r\n', c.Login("fred", "foo bar")),
    (b'a001 LOGIN "a\\"b" x\r\n', c.Login('a"b', "x")),
    (b"a001 AUTHENTICATE PLAIN\r\n", c.Authenticate("PLAIN")),
    (b"a001 AUTHENTICATE PLAIN AHRlc3QAcGFzcw==\r\n", c.Authenticate("PLAIN", b"\0test\0pass")),
    (b"a001 AUTHENTICATE PLAIN =\r\n", c.Authenticate("PLAIN", b"")),
    (b"t2 ENABLE CONDSTORE QRESYNC\r\n", c.Enable(("CONDSTORE", "QRESYNC"))),
    (b"A142 SELECT INBOX\r\n", c.Select("INBOX")),
    (b"A142 SELECT inbox\r\n", c.Select("INBOX")),
    (b"A932 EXAMINE blurdybloop\r\n", c.Select("blurdybloop", readonly=True)),
    (b"a SELECT INBOX (CONDSTORE)\r\n", c.Select("INBOX", condstore=True)),
    (
        b"A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n",
        c.Select(
            "INBOX", qresync=c.QResync(67890007, 20050715194045000, S(((41, 41), (43, 211), (214, 541))))
        ),
    ),
    (
        b"B04 SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000,9990:9999 "
        b"15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997)))\r\n",
        c.Select(
            "INBOX",
            qresync=c.QResync(
                67890007,
                90060115194045000,
                S(((1, 29997),)),
                (
                    S(((5000, 5000), (7500, 7500), (9000, 9000), (9990, 9999))),
                    S(
                        tuple(
                            (n, n)
                            for n in (
                                15000,
                                22500,
                                27000,
                                29970,
                                29973,
                                29976,
                                29979,
                                29982,
                                29985,
                                29988,
                                29991,
                                29994,
                                29997,
                            )
                        )
                    ),
                ),
            ),
        ),
    ),
    (b"A003 CREATE owatagusiam/\r\n", c.Create("owatagusiam/")),
    (b"t CREATE MySpecial (USE (\\Drafts))\r\n", c.Create("MySpecial", ("\\Drafts",))),
    (b"A683 DELETE blurdybloop\r\n", c.Delete("blurdybloop")),
    (b"A683 RENAME blurdybloop sarasoop\r\n", c.Rename("blurdybloop", "sarasoop")),
    (b"A002 SUBSCRIBE #news.comp.mail.mime\r\n", c.Subscribe("#news.comp.mail.mime")),
    (b"A002 UNSUBSCRIBE #news.comp.mail.mime\r\n", c.Subscribe("#news.comp.mail.mime", False)),
    (b'A101 LIST "" ""\r\n', c.List("", ("",))),
    (b'A102 LIST #news.comp.mail.misc ""\r\n', c.List("#news.comp.mail.misc", ("",))),
    (b"A202 LIST ~/Mail/ %\r\n", c.List("~/Mail/", ("%",))),
    (b'A202 LIST "" *\r\n', c.List("", ("*",))),
    (b'A202 LIST "" INBOX/%]\r\n', c.List("", ("INBOX/%]",))),
    (
        b'A03 LIST () "" "%" RETURN (CHILDREN)\r\n',
        c.List("", ("%",), (), ("CHILDREN",)),
    ),
    (
        b'A04 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN)\r\n',
        c.List("", ("%",), ("SUBSCRIBED", "RECURSIVEMATCH"), ("CHILDREN",)),
    ),
    (
        b'A05 LIST "" ("INBOX" "Drafts" "Sent/%")\r\n',
        c.List("", ("INBOX", "Drafts", "Sent/%"), parenthesised=True),
    ),
    (
        b'A01 LIST "" % RETURN (STATUS (MESSAGES UNSEEN))\r\n',
        c.List("", ("%",), (), ("STATUS",), ("MESSAGES", "UNSEEN")),
    ),
    (b'A002 LSUB "#news." "comp.mail.*"\r\n', c.List("#news.", ("comp.mail.*",), lsub=True)),
    (b"A001 NAMESPACE\r\n", c.Namespace()),
    (
        b"A042 STATUS blurdybloop (UIDNEXT MESSAGES)\r\n",
        c.Status("blurdybloop", ("UIDNEXT", "MESSAGES")),
    ),
    (
        b"A042 STATUS INBOX (SIZE HIGHESTMODSEQ DELETED)\r\n",
        c.Status("INBOX", ("SIZE", "HIGHESTMODSEQ", "DELETED")),
    ),
    (
        b"A003 APPEND saved-messages (\\Seen) {3+}\r\nabc\r\n",
        c.Append("saved-messages", (c.AppendMessage(("\\Seen",), None, b"abc"),)),
    ),
    (
        b'A003 APPEND saved-messages (\\Seen) " 7-Feb-1994 21:52:25 -0800" {3}\r\nabc\r\n',
        c.Append(
            "saved-messages",
            (
                c.AppendMessage(
                    ("\\Seen",),
                    datetime(1994, 2, 7, 21, 52, 25, tzinfo=timezone(-timedelta(hours=8))),
                    b"abc",
                ),
            ),
        ),
    ),
    (
        b"A003 APPEND INBOX {2+}\r\nab (\\Draft) {1+}\r\nc\r\n",
        c.Append("INBOX", (c.AppendMessage((), None, b"ab"), c.AppendMessage(("\\Draft",), None, b"c"))),
    ),
    (b"FXXZ CHECK\r\n", c.Check()),
    (b"A341 CLOSE\r\n", c.Close()),
    (b"A342 UNSELECT\r\n", c.Close(False)),
    (b"A202 EXPUNGE\r\n", c.Expunge()),
    (b"A003 UID EXPUNGE 3000:3002\r\n", c.Expunge(True, S(((3000, 3002),)))),
    (
        b'A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"\r\n',
        c.Search(
            False,
            c.And(
                (
                    c.Simple("FLAGGED"),
                    c.DateKey("SINCE", date(1994, 2, 1)),
                    c.Not(c.HeaderKey("from", "Smith")),
                )
            ),
        ),
    ),
    (
        b'A283 SEARCH TEXT "string not in mailbox"\r\n',
        c.Search(False, c.And((c.TextKey("TEXT", "string not in mailbox"),))),
    ),
    (
        b"A284 SEARCH CHARSET UTF-8 TEXT {11}\r\n\xd0\xa2\xd0\xb5\xd1\x81\xd1\x82 xy\r\n",
        c.Search(False, c.And((c.TextKey("TEXT", "Тест xy"),)), "UTF-8"),
    ),
    (
        b"A285 UID SEARCH OR (SEEN FLAGGED) (UID 1:* LARGER 100) HEADER X-Foo bar\r\n",
        c.Search(
            True,
            c.And(
                (
                    c.Or(
                        c.And((c.Simple("SEEN"), c.Simple("FLAGGED"))),
                        c.And((c.SeqKey(S(((1, None),)), True), c.SizeKey("LARGER", 100))),
                    ),
                    c.HeaderKey("x-foo", "bar"),
                )
            ),
        ),
    ),
    (
        b'A286 SEARCH 2:4,* KEYWORD $Work UNKEYWORD $Junk SENTON "3-Mar-2024" SMALLER 5\r\n',
        c.Search(
            False,
            c.And(
                (
                    c.SeqKey(S(((2, 4), (None, None)))),
                    c.Keyword("$Work"),
                    c.Keyword("$Junk", False),
                    c.DateKey("SENTON", date(2024, 3, 3)),
                    c.SizeKey("SMALLER", 5),
                )
            ),
        ),
    ),
    (
        b'a SEARCH MODSEQ "/flags/\\\\draft" all 620162338\r\n',
        c.Search(False, c.And((c.ModSeqKey(620162338),))),
    ),
    (
        b"A301 SEARCH RETURN (MIN COUNT) FLAGGED\r\n",
        c.Search(False, c.And((c.Simple("FLAGGED"),)), None, ("MIN", "COUNT")),
    ),
    (b"A301 SEARCH RETURN () ALL\r\n", c.Search(False, c.And((c.Simple("ALL"),)), None, ())),
    (
        b"A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])\r\n",
        c.Fetch(
            False,
            S(((2, 4),)),
            (c.FetchAtt("FLAGS"), c.FetchAtt("BODY", c.Section((), "HEADER.FIELDS", ("DATE", "FROM")))),
        ),
    ),
    (
        b"A654 FETCH 1 ALL\r\n",
        c.Fetch(
            False,
            S(((1, 1),)),
            tuple(c.FetchAtt(n) for n in ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE")),
        ),
    ),
    (
        b"A654 FETCH 1 FAST\r\n",
        c.Fetch(False, S(((1, 1),)), tuple(c.FetchAtt(n) for n in ("FLAGS", "INTERNALDATE", "RFC822.SIZE"))),
    ),
    (
        b"A654 FETCH 1 FULL\r\n",
        c.Fetch(
            False,
            S(((1, 1),)),
            tuple(c.FetchAtt(n) for n in ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY")),
        ),
    ),
    (b"A1 FETCH 1 body[]\r\n", c.Fetch(False, S(((1, 1),)), (c.FetchAtt("BODY", c.Section()),))),
    (
        b"A1 UID FETCH 1:* (UID RFC822.SIZE BODY.PEEK[1.2.MIME] BODY[3.TEXT]<0.2048>)\r\n",
        c.Fetch(
            True,
            S(((1, None),)),
            (
                c.FetchAtt("UID"),
                c.FetchAtt("RFC822.SIZE"),
                c.FetchAtt("BODY.PEEK", c.Section((1, 2), "MIME")),
                c.FetchAtt("BODY", c.Section((3,), "TEXT"), (0, 2048)),
            ),
        ),
    ),
    (
        b"A1 FETCH 1 (BINARY[1] BINARY.PEEK[2]<5.10> BINARY.SIZE[1])\r\n",
        c.Fetch(
            False,
            S(((1, 1),)),
            (
                c.FetchAtt("BINARY", c.Section((1,))),
                c.FetchAtt("BINARY.PEEK", c.Section((2,)), (5, 10)),
                c.FetchAtt("BINARY.SIZE", c.Section((1,))),
            ),
        ),
    ),
    (
        b"A1 FETCH 1 (RFC822 RFC822.HEADER RFC822.TEXT BODYSTRUCTURE ENVELOPE INTERNALDATE MODSEQ)\r\n",
        c.Fetch(
            False,
            S(((1, 1),)),
            tuple(
                c.FetchAtt(n)
                for n in (
                    "RFC822",
                    "RFC822.HEADER",
                    "RFC822.TEXT",
                    "BODYSTRUCTURE",
                    "ENVELOPE",
                    "INTERNALDATE",
                    "MODSEQ",
                )
            ),
        ),
    ),
    (
        b"s100 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n",
        c.Fetch(True, S(((300, 500),)), (c.FetchAtt("FLAGS"),), 12345, True),
    ),
    (b"A003 STORE 2:4 +FLAGS (\\Deleted)\r\n", c.Store(False, S(((2, 4),)), c.StoreMode.ADD, ("\\Deleted",))),
    (
        b"A003 STORE 1 -FLAGS.SILENT \\seen $x\r\n",
        c.Store(False, S(((1, 1),)), c.StoreMode.REMOVE, ("\\Seen", "$x"), True),
    ),
    (b"A003 UID STORE 7 FLAGS ()\r\n", c.Store(True, S(((7, 7),)), c.StoreMode.REPLACE, ())),
    (
        b"d105 STORE 7,5,9 (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Deleted)\r\n",
        c.Store(False, S(((7, 7), (5, 5), (9, 9))), c.StoreMode.ADD, ("\\Deleted",), True, 320162338),
    ),
    (b"A003 COPY 2:4 MEETING\r\n", c.Copy(False, S(((2, 4),)), "MEETING")),
    (b"A003 UID MOVE 42:69 foo\r\n", c.Copy(True, S(((42, 69),)), "foo", True)),
    (b"a IDLE\r\n", c.Idle()),
    (b'a023 ID ("name" "sodr" "version" NIL)\r\n', c.Id((("name", "sodr"), ("version", None)))),
    (b"a023 ID NIL\r\n", c.Id(None)),
    (b'G GETQUOTA ""\r\n', c.GetQuota("")),
    (b"G GETQUOTAROOT INBOX\r\n", c.GetQuota("INBOX", True)),
    # RFC 4314 section 3 examples.
    (b"A035 SETACL INBOX/Drafts John lrQswicda\r\n", c.SetAcl("INBOX/Drafts", "John", "lrQswicda")),
    (b"A001 SETACL INBOX/Drafts Chris +cda\r\n", c.SetAcl("INBOX/Drafts", "Chris", "+cda")),
    (b'a setacl "Shared/stttt/INBOX" binhtt@dongnai.gov.vn -w\r\n',
     c.SetAcl("Shared/stttt/INBOX", "binhtt@dongnai.gov.vn", "-w")),
    (b"A001 SETACL INBOX/Drafts Chris \"\"\r\n", c.SetAcl("INBOX/Drafts", "Chris", "")),
    (b"A001 DELETEACL INBOX/Drafts Chris\r\n", c.DeleteAcl("INBOX/Drafts", "Chris")),
    (b"A002 GETACL INBOX\r\n", c.GetAcl("INBOX")),
    (b"a001 LISTRIGHTS ~/Mail/saved smith\r\n", c.ListRights("~/Mail/saved", "smith")),
    (b"A003 MYRIGHTS inbox\r\n", c.MyRights("INBOX")),
]


@pytest.mark.parametrize(("line", "expected"), CASES, ids=[case[0][:40].decode("latin-1") for case in CASES])
def test_parses(line: bytes, expected: c.Command) -> None:
    assert one(line) == expected


@pytest.mark.parametrize(("line", "expected"), CASES, ids=[case[0][:40].decode("latin-1") for case in CASES])
def test_round_trip(line: bytes, expected: c.Command) -> None:
    assert one(expected.to_bytes("t1")) == expected


BAD: list[tuple[bytes, str, str]] = [
    (b"a001 FROB\r\n", "a001", "Unknown command"),
    (b"\r\n ", "*", ""),
    (b"+ x\r\n", "*", "tag"),
    (b"a LOGIN onlyuser\r\n", "a", "Expected"),
    (b"a FETCH 0 FLAGS\r\n", "a", "non-zero"),
    (b"a FETCH 1 (FLAGS\r\n", "a", ""),
    (b"a FETCH 1 BODY[4.FOO]\r\n", "a", "Bad section"),
    (b"a FETCH 1 NOPE\r\n", "a", "Unknown fetch attribute"),
    (b"a SEARCH FROB\r\n", "a", "Unknown search key"),
    (b"a SEARCH\r\n", "a", "needs a search key"),
    (b"a SEARCH SINCE 31-Foo-2020\r\n", "a", "month"),
    (b"a SEARCH SINCE 31-Feb-2020\r\n", "a", "Invalid date"),
    (b"a STORE 1 +FLAGS (\\*)\r\n", "a", "flag"),
    (b'a LOGIN "unterminated\r\n', "a", "quoted"),
    (b"a SELECT INBOX extra\r\n", "a", "Unexpected"),
    (b"a UID FROB 1\r\n", "a", "Unknown UID command"),
    (b"a APPEND INBOX\r\n", "a", "needs a message"),
    (b"a NOOP \r\n", "a", "Unexpected"),
    (b"a STATUS INBOX (BOGUS)\r\n", "a", "STATUS"),
    (b"a AUTHENTICATE PLAIN !!!\r\n", "a", "base64"),
    (b"a LOGIN \xff\xfe x\r\n", "a", ""),
    (b"a SETACL INBOX fred\r\n", "a", "Expected"),
    (b"a DELETEACL INBOX\r\n", "a", "Expected"),
    (b"a GETACL\r\n", "a", "Expected"),
    (b"a MYRIGHTS INBOX extra\r\n", "a", "Unexpected"),
    (b"a LISTRIGHTS INBOX\r\n", "a", "Expected"),
]


@pytest.mark.parametrize(("line", "tag", "reason"), BAD)
def test_bad_commands(line: bytes, tag: str, reason: str) -> None:
    events = Parser().feed(line)
    bad = [e for e in events if isinstance(e, BadCommand)]
    if line.strip() == b"":
        assert events == []
        return
    assert len(bad) == 1, events
    assert bad[0].tag == tag
    assert reason in bad[0].text


def test_literal_in_chunks() -> None:
    p = Parser()
    assert p.feed(b"a1 LOGIN {4}\r\n") == [NeedLiteral(4, True)]
    assert p.feed(b"jo") == []
    assert p.feed(b"hn {6+}\r\nse") == [NeedLiteral(6, False)]
    # The parser stops after a LOGIN: what follows is read once the driver has
    # applied the limits of a logged-in client.
    assert p.feed(b"cret\r\na2 NOOP\r\n") == [Command("a1", c.Login("john", "secret"))]
    assert p.feed(b"") == [Command("a2", c.Noop())]


def test_sync_literal_too_big_is_refused_before_reading() -> None:
    p = Parser(max_literal=10)
    events = p.feed(b"a APPEND INBOX {11}\r\n")
    assert events == [BadCommand("a", "[TOOBIG] Literal too large")]
    # The client never got "+", so the next line is a new command.
    assert p.feed(b"b NOOP\r\n") == [Command("b", c.Noop())]


def test_nonsync_literal_too_big_is_skipped() -> None:
    p = Parser(max_literal=10)
    events = p.feed(b"a APPEND INBOX {20+}\r\n0123456789")
    assert events == [BadCommand("a", "[TOOBIG] Literal too large")]
    assert p.feed(b"0123456789 {3+}\r\nabc\r\nb NOOP\r\n") == [Command("b", c.Noop())]


def test_line_too_long() -> None:
    p = Parser(max_line=100)
    events = p.feed(b"a NOOP " + b"x" * 200)
    assert events == [BadCommand("a", "[TOOBIG] Command line too long")]
    assert p.feed(b"yyy\r\nb NOOP\r\n") == [Command("b", c.Noop())]
    p = Parser(max_line=100)
    assert p.feed(b"c NOOP " + b"x" * 200 + b"\r\nd NOOP\r\n") == [
        BadCommand("c", "[TOOBIG] Command line too long"),
        Command("d", c.Noop()),
    ]


def test_idle_raw_lines_then_commands() -> None:
    p = Parser()
    assert p.feed(b"a IDLE\r\nDONE\r\nb NOOP\r\n") == [Command("a", c.Idle())]
    assert p.feed(b"") == [RawLine(b"DONE"), RawLine(b"b NOOP")]


def test_idle_end_raw() -> None:
    p = Parser()
    assert p.feed(b"a IDLE\r\n") == [Command("a", c.Idle())]
    assert p.feed(b"DONE\r\n") == [RawLine(b"DONE")]
    p.end_raw()
    assert p.feed(b"b NOOP\r\n") == [Command("b", c.Noop())]


def test_authenticate_continuation() -> None:
    p = Parser()
    assert p.feed(b"a AUTHENTICATE PLAIN\r\n") == [Command("a", c.Authenticate("PLAIN"))]
    assert p.feed(b"AHRlc3QAcGFzcw==\r\n") == [RawLine(b"AHRlc3QAcGFzcw==")]


def test_reset_drops_buffer() -> None:
    p = Parser()
    p.feed(b"a NOOP")
    p.reset()
    assert p.feed(b"\r\nb NOOP\r\n") == [Command("b", c.Noop())]


def test_seqset_resolve() -> None:
    s = S(((4, 2), (7, None)))
    assert s.resolve(10) == [(2, 4), (7, 10)]
    assert s.contains(3, 10) and not s.contains(5, 10)
    assert S(((20, None),)).resolve(9) == [(9, 20)]


def test_saved_result_reference() -> None:
    """RFC 5182: "$" is a sequence set of its own, in commands and search keys."""
    fetch = one(b"a UID FETCH $ (FLAGS)\r\n")
    assert isinstance(fetch, c.Fetch) and fetch.seqset == c.SeqSet((), saved=True)
    assert fetch.to_bytes("a") == b"a UID FETCH $ (FLAGS)\r\n"
    search = one(b"a SEARCH $ UNSEEN\r\n")
    assert isinstance(search, c.Search)
    assert search.key == c.And((c.SeqKey(c.SeqSet((), saved=True)), c.Simple("UNSEEN")))
