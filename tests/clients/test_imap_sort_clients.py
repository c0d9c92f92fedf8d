"""SORT, THREAD and ESORT (RFC 5256, 5957, 5267) end to end: a real server on
port 0 driven by imapclient, imaplib and a raw socket (ESORT and the errors the
libraries do not let through)."""

from __future__ import annotations

import asyncio
import imaplib
from email.message import EmailMessage

import pytest
from imapclient import IMAPClient

from tests.clients.test_imap_clients import Raw
from tests.conftest import RunningServer

ANNV = "annv@dongnai.gov.vn"
PASSWORD = "S3cret-pass-word"


@pytest.fixture
def server(any_server: RunningServer) -> RunningServer:
    """On SQLite and on the real PostgreSQL."""
    return any_server


def message(
    subject: str, sender: str, day: int, message_id: str, *, references: str | None = None, size: int = 0
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ANNV
    msg["Subject"] = subject
    msg["Date"] = f"Mon, {day} Mar 2024 10:00:00 +0700"
    msg["Message-ID"] = message_id
    if references is not None:
        msg["References"] = references
        msg["In-Reply-To"] = references.split()[-1]
    msg.set_content("Nội dung\n" + "x" * size + "\n")
    return msg.as_bytes().replace(b"\n", b"\r\n")


MESSAGES = [
    # seq: subject, From, day of March, Message-ID, References, padding
    message("Báo cáo tháng 3", "Đỗ Thị Cúc <cucdt@dongnai.gov.vn>", 4, "<1@x>", size=500),
    message("Re: Báo cáo tháng 3", "An Nguyễn <annv@dongnai.gov.vn>", 6, "<2@x>", references="<1@x>"),
    message("Ăn trưa", "Bình <binhtt@dongnai.gov.vn>", 5, "<3@x>", size=100),
    message("Trả lời: Báo cáo tháng 3", "Zoe <zoe@example.com>", 7, "<4@x>", references="<1@x> <2@x>"),
    message("Đề nghị", "annv@dongnai.gov.vn", 3, "<5@x>", size=50),
]


async def fill(server: RunningServer) -> None:
    await server.add_account(ANNV, PASSWORD)

    def run() -> None:
        with IMAPClient("127.0.0.1", port=server.port("imap"), ssl=False) as client:
            client.login(ANNV, PASSWORD)
            for data in MESSAGES:
                client.append("INBOX", data)

    await asyncio.to_thread(run)


async def test_imapclient_sort_and_thread(server: RunningServer) -> None:
    await fill(server)

    def run() -> None:
        with IMAPClient("127.0.0.1", port=server.port("imap"), ssl=False) as client:
            client.login(ANNV, PASSWORD)
            caps = client.capabilities()
            for cap in (b"SORT", b"SORT=DISPLAY", b"THREAD=REFERENCES", b"THREAD=ORDEREDSUBJECT", b"ESORT"):
                assert cap in caps
            client.select_folder("INBOX")
            # Base subjects "Báo cáo tháng 3" x3, "Ăn trưa", "Đề nghị": a < ă < b < đ.
            assert client.sort(["SUBJECT"]) == [3, 1, 2, 4, 5]  # UIDs = sequence numbers here
            assert client.sort(["REVERSE DATE"]) == [4, 2, 3, 1, 5]
            assert client.sort(["DISPLAYFROM"]) == [2, 5, 3, 1, 4]  # An, annv@, Bình, Đỗ, Zoe
            assert client.sort(["FROM", "REVERSE SIZE"]) == [2, 5, 3, 1, 4]  # 2 has References: larger
            assert client.sort(["ARRIVAL"], ["SUBJECT", "tháng"]) == [1, 2, 4]
            assert client.thread("REFERENCES") == ((5,), (1, 2, 4), (3,))
            assert client.thread("ORDEREDSUBJECT") == ((5,), (1, (2,), (4,)), (3,))
            assert client.thread("REFERENCES", ["NOT", "UID", "2"]) == ((5,), (1, 4), (3,))

    await asyncio.to_thread(run)


async def test_imaplib_sort_thread_uid(server: RunningServer) -> None:
    await fill(server)

    def run() -> None:
        m = imaplib.IMAP4("127.0.0.1", server.port("imap"))
        try:
            m.login(ANNV, PASSWORD)
            m.select("INBOX")
            m.store("1", "+FLAGS", "(\\Deleted)")
            m.expunge()  # sequence numbers now differ from UIDs
            typ, data = m.sort("(SUBJECT)", "UTF-8", "ALL")
            assert typ == "OK" and data == [b"2 1 3 4"]
            typ, data = m.uid("SORT", "(SUBJECT)", "UTF-8", "ALL")
            assert typ == "OK" and data == [b"3 2 4 5"]
            typ, data = m.thread("REFERENCES", "UTF-8", "ALL")
            # Message <1@x> is gone: its dummy has one child (<2@x>, parent of
            # <4@x>), which takes its place at the root.
            assert typ == "OK" and data == [b"(4)(2)(1 3)"]
            typ, data = m.uid("THREAD", "REFERENCES", "US-ASCII", "ALL")
            assert typ == "OK" and data == [b"(5)(3)(2 4)"]
            typ, data = m.sort("(REVERSE ARRIVAL)", "UTF-8", "SINCE", "1-Jan-2000")
            assert data == [b"4 3 2 1"]
        finally:
            m.logout()

    await asyncio.to_thread(run)


async def test_esort_and_errors(server: RunningServer) -> None:
    await fill(server)
    raw = await Raw.connect(server)
    try:
        await raw.command(b"a", f"LOGIN {ANNV} {PASSWORD}".encode())
        await raw.command(b"b", b"SELECT INBOX")
        lines = await raw.command(b"c", b"SORT RETURN (MIN MAX COUNT ALL) (SUBJECT) UTF-8 ALL")
        assert lines == [
            b'* ESEARCH (TAG "c") MIN 3 MAX 5 ALL 3,1:2,4:5 COUNT 5\r\n',
            b"c OK SORT completed\r\n",
        ]
        lines = await raw.command(b"d", b"UID SORT RETURN () (REVERSE SIZE) UTF-8 2:*")
        assert lines[0] == b'* ESEARCH (TAG "d") UID ALL 3,2,4:5\r\n'
        lines = await raw.command(b"e", b"SORT RETURN (COUNT) (DATE) UTF-8 SUBJECT nothing-matches")
        assert lines[0] == b'* ESEARCH (TAG "e") COUNT 0\r\n'
        lines = await raw.command(b"f", b"SORT (SUBJECT) UTF-8 SUBJECT nothing-matches")
        assert lines == [b"* SORT\r\n", b"f OK SORT completed\r\n"]
        lines = await raw.command(b"f2", b"THREAD REFERENCES UTF-8 SUBJECT nothing-matches")
        assert lines == [b"* THREAD\r\n", b"f2 OK THREAD completed\r\n"]
        lines = await raw.command(b"f3", b"UID THREAD ORDEREDSUBJECT UTF-8 UID 3:4")
        assert lines == [b"* THREAD (3)(4)\r\n", b"f3 OK THREAD completed\r\n"]
        # Errors: syntax and unknown keys are BAD, an unknown charset NO [BADCHARSET].
        for command in (
            b"SORT (SUBJEKT) UTF-8 ALL",
            b"SORT SUBJECT UTF-8 ALL",
            b"SORT () UTF-8 ALL",
            b"SORT (SUBJECT) UTF-8",
            b"SORT (REVERSE) UTF-8 ALL",
            b"SORT RETURN (SAVE) (DATE) UTF-8 ALL",
            b"THREAD FOO UTF-8 ALL",
            b"THREAD REFERENCES",
            b"UID THREAD (REFERENCES) UTF-8 ALL",
        ):
            lines = await raw.command(b"g", command)
            assert lines[-1].startswith(b"g BAD "), (command, lines)
        lines = await raw.command(b"h", b"SORT (DATE) KOI8-R ALL")
        assert lines[-1].startswith(b"h NO [BADCHARSET")
        lines = await raw.command(b"i", b"THREAD ORDEREDSUBJECT X-UNKNOWN ALL")
        assert lines[-1].startswith(b"i NO [BADCHARSET")
        await raw.command(b"j", b"CLOSE")
        lines = await raw.command(b"k", b"SORT (DATE) UTF-8 ALL")
        assert lines[-1].startswith(b"k BAD ")  # not selected
        lines = await raw.command(b"l", b"NOOP")
        assert lines == [b"l OK NOOP completed\r\n"]  # still talking
    finally:
        await raw.close()
