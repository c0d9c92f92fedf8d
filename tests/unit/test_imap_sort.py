"""SORT and THREAD algorithms (RFC 5256, RFC 5957) without a server: base subject,
sent date, the collation, sort orders, ORDEREDSUBJECT, REFERENCES and the
thread-list wire form."""

from __future__ import annotations

from array import array
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from mailserver.imap import sort
from mailserver.imap.basesubject import base_subject, sent_date, subject_info
from mailserver.imap.collate import casemap, sort_key
from mailserver.imap.commands import SortCriterion
from mailserver.imap.selected import FolderCache, Mailbox, Target
from mailserver.imap.sort import Fields, load_fields, ordered_set, sort_messages
from mailserver.imap.thread import Node, ordered_subject, references, thread_list
from storage.api import MailStore

# -- base subject (RFC 5256 section 2.1) -------------------------------------------------

BASE_SUBJECTS = [
    # (subject, base subject, reply or forward)
    ("test", "test", False),
    ("Re: test", "test", True),
    ("RE: Re: re: test", "test", True),
    ("Fwd: test", "test", True),
    ("Fw: test", "test", True),
    ("Re[2]: test", "test", True),  # subj-refwd's optional subj-blob
    ("Re [2] : test", "test", True),
    ("[PATCH] Re: test", "test", True),  # *subj-blob subj-refwd
    ("Re: [PATCH] test", "test", True),  # step 4: a leading blob with text after it
    ("[PATCH]", "[PATCH]", False),  # step 4: not when nothing would be left
    ("[a] [b]", "[b]", False),
    ("test (fwd)", "test", True),  # step 2
    ("test (fwd) (FWD)  ", "test", True),
    ("[fwd: Re: test]", "test", True),  # step 6
    ("[Fwd: [fwd: test] (fwd)]", "test", True),
    ("  Re:   test  ", "test", True),
    ("Re:\ttest\r\n  more", "test more", True),  # step 1: folding and tabs
    ("Reply to all", "Reply to all", False),
    ("Re test", "Re test", False),
    ("", "", False),
    ("=?utf-8?b?VHLhuqMgbOG7nWk6IELDoW8gY8OhbyB0aMOhbmcgNQ==?=", "Báo cáo tháng 5", True),
    ("=?utf-8?q?Re=3A_hello?=", "hello", True),
    ("Trả lời: Báo cáo", "Báo cáo", True),
    ("TRẢ LỜI: Re: Báo cáo", "Báo cáo", True),
    ("Chuyển tiếp: Công văn 123/QĐ-UBND", "Công văn 123/QĐ-UBND", True),
    ("Tra loi: Bao cao", "Bao cao", True),
    # Deliberately not reply markers (see basesubject's docstring).
    ("TL: Báo cáo", "TL: Báo cáo", False),
    ("CT: 05/CT-UBND về phòng dịch", "CT: 05/CT-UBND về phòng dịch", False),
    ("=?bogus?q?x?=", "=?bogus?q?x?=", False),
]


@pytest.mark.parametrize(("subject", "base", "reply"), BASE_SUBJECTS)
def test_base_subject(subject: str, base: str, reply: bool) -> None:
    assert subject_info(subject) == (base, reply)
    assert base_subject(subject) == base


def test_base_subject_of_none() -> None:
    assert base_subject(None) == ""


INTERNAL = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Mon, 4 Mar 2024 10:00:00 +0700", datetime(2024, 3, 4, 3, 0, tzinfo=UTC)),
        ("Mon, 4 Mar 2024 10:00:00 -0000", datetime(2024, 3, 4, 10, 0, tzinfo=UTC)),
        ("4 Mar 2024 10:00 GMT", datetime(2024, 3, 4, 10, 0, tzinfo=UTC)),
        ("not a date", INTERNAL),
        ("", INTERNAL),
        (None, INTERNAL),
        ("Mon, 99 Foo 2024 99:99:99 +9999", INTERNAL),
    ],
)
def test_sent_date(header: str | None, expected: datetime) -> None:
    # RFC 5256 section 2.2: Date: in UTC, else INTERNALDATE.
    assert sent_date(header, INTERNAL) == expected


# -- collation ---------------------------------------------------------------------------


def test_vietnamese_alphabetical_order() -> None:
    words = ["Zebra", "đường", "Dương", "ư", "u", "ơn", "ôm", "ong", "e", "ê", "ăn", "âm", "an", "b", "d"]
    expected = ["an", "ăn", "âm", "b", "d", "Dương", "đường", "e", "ê", "ong", "ôm", "ơn", "u", "ư", "Zebra"]
    assert sorted(words, key=sort_key) == expected


def test_tones_are_secondary() -> None:
    # Letters decide before tone marks: "àz" after "ab" but "àa" before "ab".
    assert sorted(["ab", "àz", "àa"], key=sort_key) == ["àa", "ab", "àz"]
    assert sorted(["bạ", "bả", "bá", "ba", "bà", "bã"], key=sort_key) == ["ba", "bà", "bá", "bã", "bả", "bạ"]


def test_ascii_order_is_unicode_casemap_order() -> None:
    words = ["b", "A", "a", "_x", "Z", "1", "zz", "B2", "[x]", "~"]
    assert sorted(words, key=sort_key) == sorted(words, key=casemap)


def test_casemap_is_rfc5051() -> None:
    # Titlecase, then NFKD: case and composition do not matter.
    assert casemap("ĐỒNG nai") == casemap("đồng NAI") == casemap("\u0111o\u0302\u0300ng Nai")
    # The ligature has no simple titlecase mapping: RFC 5051 keeps it, then NFKD
    # decomposes it to lower-case letters (a known quirk of the collation).
    assert casemap("ﬁ") == b"fi"
    assert casemap("ǆ") == casemap("ǅ")


# -- SORT ----------------------------------------------------------------------------------


def fields(
    uid: int,
    *,
    subject: str | None = None,
    date: str | None = None,
    arrived: int = 0,
    size: int = 100,
    from_: tuple[str | None, str, str] | None = None,
    to: tuple[str | None, str, str] | None = None,
    cc: tuple[str | None, str, str] | None = None,
    message_id: str | None = None,
    in_reply_to: str | None = None,
) -> Fields:
    return Fields(
        uid, INTERNAL + timedelta(hours=arrived), size, date, subject, from_, to, cc, in_reply_to, message_id
    )


def criteria(text: str) -> list[SortCriterion]:
    out, words = [], text.split()
    while words:
        word = words.pop(0)
        if word == "REVERSE":
            out.append(SortCriterion(words.pop(0), True))
        else:
            out.append(SortCriterion(word))
    return out


MAILBOX = [
    fields(
        1,
        subject="Re: Đồng Nai",
        date="Mon, 4 Mar 2024 10:00:00 +0700",
        arrived=3,
        size=300,
        from_=("Trần Văn Bình", "binhtt", "dongnai.gov.vn"),
        to=("Z", "zed", "x.vn"),
        cc=(None, "an", "x.vn"),
    ),
    fields(
        2,
        subject="an toàn",
        date="Mon, 4 Mar 2024 02:00:00 +0000",
        arrived=1,
        size=200,
        from_=(None, "annv", "dongnai.gov.vn"),
        to=(None, "bob", "x.vn"),
    ),
    fields(
        3,
        subject="[Thông báo] Dong Nai",
        date="garbage",
        arrived=2,
        size=200,
        from_=("Đỗ Thị Cúc", "cucdt", "dongnai.gov.vn"),
        to=("Ánh", "zz", "x.vn"),
        cc=(None, "An", "x.vn"),
    ),
    fields(
        4,
        subject="Fwd: ăn trưa",
        date=None,
        arrived=0,
        size=100,
        from_=("", "annv", "dongnai.gov.vn"),
        to=(None, "bob", "x.vn"),
    ),
]


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ("ARRIVAL", [4, 2, 3, 1]),
        ("REVERSE ARRIVAL", [1, 3, 2, 4]),
        # sent dates: 1 = 03:00 UTC on 4 Mar, 2 = 02:00 UTC on 4 Mar, 3 and 4 INTERNALDATE (2 Jan)
        ("DATE", [4, 3, 2, 1]),
        ("SIZE", [4, 2, 3, 1]),  # 2 and 3 tie: sequence order
        ("REVERSE SIZE", [1, 2, 3, 4]),  # ties stay in sequence order under REVERSE
        # base subjects: "Đồng Nai", "an toàn", "Dong Nai", "ăn trưa"
        ("SUBJECT", [2, 4, 3, 1]),
        ("FROM", [2, 4, 1, 3]),  # annv annv binhtt cucdt
        ("TO", [2, 4, 1, 3]),  # bob bob zed zz
        ("CC", [2, 4, 1, 3]),  # "" "" an An (equal: sequence order)
        # display names: Trần Văn Bình, annv@dongnai.gov.vn, Đỗ Thị Cúc, annv@... (empty name)
        ("DISPLAYFROM", [2, 4, 3, 1]),
        ("DISPLAYTO", [3, 2, 4, 1]),  # Ánh, bob@x.vn, bob@x.vn, Z
        ("SIZE REVERSE ARRIVAL", [4, 3, 2, 1]),
        ("FROM REVERSE DATE", [2, 4, 1, 3]),
        ("REVERSE FROM SUBJECT", [3, 1, 2, 4]),
    ],
)
def test_sort_orders(keys: str, expected: list[int]) -> None:
    assert sort_messages(MAILBOX, criteria(keys)) == expected


def test_ordered_set_keeps_order() -> None:
    assert ordered_set([3, 4, 5, 1, 9, 8, 7]) == "3:5,1,9,8,7"
    assert ordered_set([]) == ""


# -- THREAD --------------------------------------------------------------------------------


def tree(spec: list[object]) -> list[Node]:
    """Nodes from nested lists: an int is a message, a list is a dummy or a
    message followed by its children ([uid, child, child])."""

    def build(item: object) -> Node:
        if isinstance(item, int):
            return Node(item)
        assert isinstance(item, list)
        head = item[0]
        node = Node(head) if isinstance(head, int) else Node()
        for child in item[1:] if isinstance(head, int) else item:
            node.add(build(child))
        return node

    return [build(i) for i in spec]


def test_thread_list_rfc_example() -> None:
    # RFC 5256 section 4: "(2)(3 6 (4 23)(44 7 96))"
    roots = tree([2, [3, [6, [4, 23], [44, [7, 96]]]]])
    assert thread_list(roots) == "(2)(3 6 (4 23)(44 7 96))"
    assert thread_list(tree([[[3], [5]]])) == "((3)(5))"


def test_thread_list_numbers_and_depth() -> None:
    assert thread_list(tree([[1, 2]]), {1: 7, 2: 8}) == "(7 8)"
    # A 5,000-deep branching tree (a hostile References chain) is no recursion error.
    root = node = Node(1)
    for uid in range(2, 5000, 2):
        node.add(Node(uid + 1))
        child = Node(uid)
        node.add(child)
        node = child
    text = thread_list([root])
    assert text.startswith("(1 (3)(2 (5)(4") and text.count("(") == text.count(")")


def day(n: int) -> str:
    return (datetime(2024, 3, 1, tzinfo=UTC) + timedelta(days=n)).strftime("%a, %d %b %Y %H:%M:%S +0000")


def test_ordered_subject() -> None:
    mailbox = [
        fields(1, subject="Hello", date=day(3)),
        fields(2, subject="Re: hello", date=day(1)),
        fields(3, subject="Other", date=day(2)),
        fields(4, subject="Fwd: Hello", date=day(5)),
        fields(5, subject="Third", date=day(4)),
    ]
    # Threads by their first message's date; the first of a subject is the parent.
    assert thread_list(ordered_subject(mailbox)) == "(2 (1)(4))(3)(5)"


def test_references_chain_and_dummies() -> None:
    mailbox = [
        fields(1, subject="Plan", date=day(1), message_id="<a@x>"),
        fields(2, subject="Re: Plan", date=day(2), message_id="<b@x>", in_reply_to="<a@x>"),
        fields(3, subject="Re: Plan", date=day(3), message_id="<c@x>"),
        fields(4, subject="Lost parent", date=day(4), message_id="<d@x>", in_reply_to="<gone@x>"),
        fields(5, subject="Re: Lost parent", date=day(5), message_id="<e@x>"),
        fields(6, subject="Alone", date=day(0), message_id="<f@x>"),
    ]
    refs = {3: "<a@x> <b@x>", 5: "<gone@x>"}
    # 4 and 5 share the missing <gone@x>: a dummy with two children stays at the root.
    assert thread_list(references(mailbox, refs)) == "(6)(1 2 3)((4)(5))"


def test_references_single_child_dummy_is_promoted() -> None:
    mailbox = [fields(1, subject="x", message_id="<a@x>", in_reply_to="<missing@x>")]
    assert thread_list(references(mailbox, {})) == "(1)"


def test_references_gathers_subjects() -> None:
    mailbox = [
        fields(1, subject="Báo cáo", date=day(1), message_id="<1@x>"),
        fields(2, subject="Trả lời: Báo cáo", date=day(2), message_id="<2@x>"),
        fields(3, subject="Meeting", date=day(3), message_id="<3@x>"),
        fields(4, subject="Meeting", date=day(4), message_id="<4@x>"),
        fields(5, subject="Re: Budget", date=day(5), message_id="<5@x>"),
        fields(6, subject="Re: Budget", date=day(6), message_id="<6@x>"),
    ]
    # A reply goes under the original; two originals (or two replies) become
    # siblings under a dummy.
    assert thread_list(references(mailbox, {})) == "(1 2)((3)(4))((5)(6))"


def test_references_reply_before_original() -> None:
    mailbox = [
        fields(1, subject="Re: Plan", date=day(1), message_id="<1@x>"),
        fields(2, subject="Plan", date=day(2), message_id="<2@x>"),
    ]
    assert thread_list(references(mailbox, {})) == "(2 1)"


def test_references_loops_duplicates_and_missing_ids() -> None:
    mailbox = [
        fields(1, subject="a", date=day(1), message_id="<a@x>"),
        fields(2, subject="b", date=day(2), message_id="<b@x>"),
        fields(3, subject="c", date=day(3), message_id="<a@x>"),  # duplicate id
        fields(4, subject="d", date=day(4)),  # no id
        fields(5, subject="e", date=day(5), message_id="not an id"),
    ]
    # 1 and 2 refer to each other: the second link would close a loop.
    refs = {1: "<b@x>", 2: "<a@x>", 4: "<a@x>", 5: "<a@x> <a@x>"}
    text = thread_list(references(mailbox, refs))
    numbers = sorted(int(n) for n in text.replace("(", " ").replace(")", " ").split())
    assert numbers == [1, 2, 3, 4, 5]  # every message exactly once
    assert "(3)" in text  # the duplicate's id is its own: nothing refers to it


def test_references_self_reference() -> None:
    mailbox = [fields(1, subject="a", message_id="<a@x>", in_reply_to="<a@x>")]
    assert thread_list(references(mailbox, {1: "<a@x>"})) == "(1)"


def test_references_deep_chain() -> None:
    n = 3000
    mailbox = [fields(i, subject="x", date=day(0), message_id=f"<{i}@x>") for i in range(1, n + 1)]
    refs = {i: " ".join(f"<{j}@x>" for j in range(max(1, i - 3), i)) for i in range(2, n + 1)}
    text = thread_list(references(mailbox, refs))
    assert text == "(" + " ".join(str(i) for i in range(1, n + 1)) + ")"


# -- the service's SORT cache (real SQLite store) -------------------------------------------


async def test_fields_are_read_once_per_service(store: MailStore, monkeypatch: pytest.MonkeyPatch) -> None:
    account = await store.create_account("an@dongnai.gov.vn", "An", "x", must_change_password=False)
    for n in range(3):
        data = f"From: B <b@x.vn>\r\nSubject: Re: m{n}\r\nDate: {day(n)}\r\nMessage-ID: <{n}@x>\r\n\r\nx\r\n"
        await store.deliver([account.id], data.encode())
    folder = await store.get_folder(account.id, "INBOX")
    mb = Mailbox(folder, True, array("I", [1, 2, 3]), Target(account.id, "INBOX", "INBOX", "lr"), 1)
    folders = FolderCache()
    first = await load_fields(store, mb, [1, 2, 3], folders)
    assert [f.subject for f in first] == ["Re: m0", "Re: m1", "Re: m2"]
    assert sort_messages(first, criteria("REVERSE SUBJECT")) == [3, 2, 1]
    again = await load_fields(store, mb, [3, 1, 99], folders)
    assert again[0] is first[2] and again[1] is first[0] and len(again) == 2  # no second read
    assert first[2].keys["SUBJECT"] == sort_key("m2")  # keys computed once, kept with them
    # Another folder state (UIDVALIDITY) starts afresh; beyond the bound the least
    # recently sorted folder goes.
    other = Mailbox(replace(folder, uidvalidity=folder.uidvalidity + 1), True, mb.uids, mb.target, 1)
    assert (await load_fields(store, other, [1], folders))[0] is not first[0]
    monkeypatch.setattr(sort, "CACHE_LIMIT", 0)
    sent = await store.create_folder(account.id, "Lưu trữ")
    second = Mailbox(sent, True, array("I"), mb.target, 1)
    assert await load_fields(store, second, [1], folders) == []  # an empty folder
    assert list(folders.sort_fields) == [sent.id]
