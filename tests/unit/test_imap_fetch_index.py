"""FETCH of index data only (UID FLAGS MODSEQ INTERNALDATE RFC822.SIZE ENVELOPE):
the session writes these lines straight into bytes from the store's ENVELOPE
wire column; they must be the bytes the general value path makes, in every item
order, with and without UTF8=ACCEPT, and for a row whose wire column is empty
(written before migration 0005). The batch path (``FetchLines``) and the
per-message path (``Fetch``) share one encoder; the bytes of both are compared
too, and a literal cut out of a ``Fetch`` line must leave the same bytes as one
copied in. One real SQLite store, no sockets."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from mailserver.auth import hash_password
from mailserver.imap import commands as c
from mailserver.imap import responses as r
from mailserver.imap.fetch import FetchPlan, FetchRun, writers
from mailserver.imap.parser import Command, parse_command
from mailserver.imap.responses import Literal, Untagged, Value
from storage.api import Account, MailStore, MessageDetail, Uid
from tests.unit.test_imap_changes import ADDRESS, PASSWORD, Client, Clock

MESSAGES = [
    b'From: "Tr\xe1\xba\xa7n V\xc4\x83n A" <vana@example.com>\r\n'
    b'To: annv@dongnai.gov.vn, "Q \\"x\\"" <q@x.vn>\r\n'
    b"Subject: =?utf-8?b?QsOhbyBjw6FvIHTDrG5oIGjDrG5o?=\r\nDate: Mon, 4 Mar 2024 10:00:00 +0700\r\n"
    b"Message-ID: <m1@example.com>\r\nIn-Reply-To: <p@x>\r\n\r\nBody.\r\n",
    b"From: plain@example.com\r\nSubject: back\\slash \"quoted\"\r\n\r\nNo date, no id.\r\n",
    b"Subject: only a subject\r\n\r\nx\r\n",
]
ORDERS = [
    "(FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)",
    "(ENVELOPE UID RFC822.SIZE FLAGS MODSEQ INTERNALDATE)",
    "(ENVELOPE)",
]


@pytest.fixture
async def account(store: MailStore) -> Account:
    account = await store.create_account(ADDRESS, "An", hash_password(PASSWORD), must_change_password=False)
    for data in MESSAGES:
        await store.deliver([account.id], data)
    return account


def expected(details: list[MessageDetail], order: str, *, uid: bool, utf8: bool, recent: bool) -> list[str]:
    """The lines the general path makes: values encoded by ``Untagged``."""
    names = order.strip("()").split()
    if uid and "UID" not in names:
        names.insert(0, "UID")
    lines = []
    for seq, d in enumerate(details, start=1):
        flags: tuple[Value, ...] = tuple(sorted(d.info.flags)) + (("\\Recent",) if recent else ())
        values: dict[str, Value] = {
            "UID": d.info.uid,
            "FLAGS": flags,
            "MODSEQ": (d.info.modseq,),
            "INTERNALDATE": r.internal_date(d.info.internal_date),
            "RFC822.SIZE": d.info.size,
            "ENVELOPE": r.envelope(d.envelope, utf8),
        }
        items: list[Value] = []
        for name in names:
            items += [name, values[name]]
        lines.append(Untagged((seq, "FETCH", tuple(items))).to_bytes().decode().rstrip("\r\n"))
    return lines


@pytest.mark.parametrize("utf8", [False, True])
@pytest.mark.parametrize("wire_column", [True, False])
async def test_index_fetch_lines_are_the_general_paths_bytes(
    store: MailStore, account: Account, tmp_path: Path, utf8: bool, wire_column: bool
) -> None:
    if not wire_column:
        with sqlite3.connect(tmp_path / "index.db") as db:
            db.execute("UPDATE messages SET envelope_imap = NULL")
    (inbox,) = [f for f in await store.list_folders(account.id) if f.name == "INBOX"]
    details = await store.get_details(account.id, inbox.id, [Uid(1), Uid(2), Uid(3)])
    assert all((d.envelope_wire is not None) == wire_column for d in details)
    client = Client(store, Clock())
    await client.cmd(f"LOGIN {ADDRESS} {PASSWORD}")
    if utf8:
        await client.cmd("ENABLE UTF8=ACCEPT")
    await client.cmd("SELECT INBOX")
    for order in ORDERS:
        for uid in (False, True):
            got = await client.cmd(("UID FETCH 1:* " if uid else "FETCH 1:* ") + order)
            assert got == expected(details, order, uid=uid, utf8=utf8, recent=True)


async def test_non_ascii_envelope_differs_by_utf8(store: MailStore, account: Account) -> None:
    """The stored wire form is the one without UTF8=ACCEPT (RFC 2047 words); a
    client that enabled UTF8=ACCEPT gets UTF-8 strings instead."""
    plain, utf8 = Client(store, Clock()), Client(store, Clock())
    for client in (plain, utf8):
        await client.cmd(f"LOGIN {ADDRESS} {PASSWORD}")
    await utf8.cmd("ENABLE UTF8=ACCEPT")
    for client in (plain, utf8):
        await client.cmd("EXAMINE INBOX")
    (line_plain,) = await plain.cmd("FETCH 1 ENVELOPE")
    (line_utf8,) = await utf8.cmd("FETCH 1 ENVELOPE")
    assert '"=?utf-8?b?' in line_plain and "Báo cáo tình hình" not in line_plain
    assert '"Báo cáo tình hình"' in line_utf8 and "=?utf-8?" not in line_utf8


@pytest.mark.parametrize("utf8", [False, True])
async def test_batch_lines_and_per_message_responses_are_the_same_bytes(
    store: MailStore, account: Account, utf8: bool
) -> None:
    client = Client(store, Clock())
    await client.cmd(f"LOGIN {ADDRESS} {PASSWORD}")
    await client.cmd("SELECT INBOX")
    mb = client.session.mailbox
    assert mb is not None
    for order in ORDERS:
        for prefix in ("FETCH 1:* ", "UID FETCH 1:* "):
            parsed = parse_command(b"t " + (prefix + order).encode())
            assert isinstance(parsed, Command) and isinstance(parsed.command, c.Fetch)
            plan = FetchPlan.of(parsed.command, mb)
            assert plan.index_only
            out: dict[bool, bytes] = {}
            for index_only in (True, False):
                items = writers(plan.atts, mb, utf8=utf8)
                run = FetchRun(store, mb, replace(plan, index_only=index_only), items)
                kinds, wire = set(), b""
                async for resp in run.responses(mb.resolve(parsed.command.seqset, parsed.command.uid)):
                    kinds.add(type(resp))
                    wire += resp.to_bytes()
                assert kinds == {r.FetchLines if index_only else r.Fetch}
                out[index_only] = wire
            assert out[True] == out[False] and out[True].count(b"\r\n") == len(MESSAGES)


@pytest.mark.parametrize("size", [0, 10, 70_000, 200_000])
def test_fetch_literals_cut_out_or_copied_in_give_the_same_bytes(size: int) -> None:
    """A ``Fetch`` writes a big literal's data without copying it into the line;
    the bytes must be those of the encoder with the data inline, and those of
    the generic value encoder (``Untagged``)."""
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    small = b"tail"
    items: list[r.FetchItem] = [
        b"UID 7",
        (b"BODY[]", Literal(data)),
        r.flags_item(["\\Seen", "$Work"]),
        (b"BINARY[1]<0>", Literal(small + b"\x00", binary=True)),
        (b"RFC822", Literal(data)),
    ]
    response = r.fetch(3, items)
    chunks = list(response.chunks())
    inline = [i if isinstance(i, bytes) else i[0] + b" " + r.value_bytes(i[1]) for i in items]
    assert b"".join(chunks) == r.fetch_line(3, inline)
    generic = Untagged(
        (3, "FETCH", ("UID", 7, "BODY[]", Literal(data), "FLAGS", ("\\Seen", "$Work"),
                      "BINARY[1]<0>", Literal(small + b"\x00", binary=True), "RFC822", Literal(data)))
    )
    assert b"".join(chunks) == generic.to_bytes()
    if size >= 65536:
        assert sum(chunk is data for chunk in chunks) == 2  # written without a copy
