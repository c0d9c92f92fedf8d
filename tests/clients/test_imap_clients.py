"""IMAP end to end: a real App on port 0 driven by imaplib, imapclient, aioimaplib,
curl, mbsync and a raw socket client (for what libraries hide)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import imaplib
import os
import re
import shutil
import ssl
import subprocess
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import TypeVar

import aioimaplib
import pytest
from imapclient import IMAPClient

from mailserver.imap import mutf7
from tests.conftest import RunningServer

T = TypeVar("T")
ANNV = "annv@dongnai.gov.vn"
BINH = "binhtt@dongnai.gov.vn"
PASSWORD = "S3cret-pass-word"
FOLDER_VI = "Công văn đến"
SUBJECT_VI = "Báo cáo tình hình kinh tế tỉnh Đồng Nai"


@pytest.fixture
def server(any_server: RunningServer) -> RunningServer:
    """Every IMAP client test runs on SQLite and on the real PostgreSQL."""
    return any_server


def message(subject: str = "Hello", body: str = "Plain body text\n", to: str = ANNV) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Trần Văn A <vana@example.com>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = "Mon, 4 Mar 2024 10:00:00 +0700"
    msg["Message-ID"] = "<m1@example.com>"
    msg.set_content(body)
    return msg.as_bytes().replace(b"\n", b"\r\n")


async def in_thread(fn: Callable[[], T]) -> T:
    return await asyncio.to_thread(fn)


def imap(server: RunningServer) -> imaplib.IMAP4:
    return imaplib.IMAP4("127.0.0.1", server.port("imap"))


class Raw:
    """A line-level IMAP client over a socket."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, server: RunningServer) -> Raw:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port("imap"))
        raw = cls(reader, writer)
        assert (await raw.line()).startswith(b"* OK")
        return raw

    async def line(self, timeout: float = 10) -> bytes:
        return await asyncio.wait_for(self.reader.readline(), timeout)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def command(self, tag: bytes, data: bytes) -> list[bytes]:
        await self.send(tag + b" " + data + b"\r\n")
        return await self.until(tag)

    async def until(self, tag: bytes) -> list[bytes]:
        lines = []
        while True:
            line = await self.line()
            assert line, "connection closed"
            lines.append(line)
            if line.startswith(tag + b" "):
                return lines

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, ssl.SSLError):
            pass


# -- imaplib --------------------------------------------------------------------------
async def test_imaplib_full_session(server: RunningServer) -> None:
    await server.add_account(ANNV, PASSWORD)

    def run() -> None:
        m = imap(server)
        assert m.login(ANNV, PASSWORD)[0] == "OK"
        typ, folders = m.list()
        assert typ == "OK"
        assert any(b'"INBOX"' in f or b" INBOX" in f for f in folders)
        assert any(b"\\Sent" in f for f in folders)
        wire = '"' + mutf7.encode(FOLDER_VI) + '"'
        assert m.create(wire)[0] == "OK"
        assert any(mutf7.encode(FOLDER_VI).encode() in f for f in m.list()[1])
        typ, data = m.append(wire, "(\\Flagged)", None, message(SUBJECT_VI, "Nội dung công văn\n"))
        assert typ == "OK" and b"APPENDUID" in data[0]
        m.append(wire, None, None, message("Second", "other body\n"))
        typ, data = m.select(wire)
        assert typ == "OK" and data == [b"2"]
        typ, data = m.fetch("1", "(FLAGS RFC822.SIZE ENVELOPE BODY.PEEK[])")
        assert typ == "OK"
        head, body = data[0]
        assert b"\\Flagged" in head and b"ENVELOPE" in head
        assert body == message(SUBJECT_VI, "Nội dung công văn\n")
        # SEARCH CHARSET UTF-8 with a Vietnamese subject, sent as a literal.
        m.literal = "tình hình kinh tế".encode()
        typ, data = m.search("UTF-8", "SUBJECT")
        assert (typ, data) == ("OK", [b"1"])
        m.literal = "công văn".encode()
        assert m.search("UTF-8", "BODY") == ("OK", [b"1"])
        assert m.search(None, "FLAGGED") == ("OK", [b"1"])
        assert m.search(None, "OR", "FLAGGED", "SUBJECT", "Second") == ("OK", [b"1 2"])
        assert m.search(None, "NOT", "FLAGGED", "UNSEEN") == ("OK", [b"2"])
        # Reading a body sets \Seen.
        typ, data = m.fetch("2", "(BODY[TEXT])")
        assert b"\\Seen" in data[0][0] or b"\\Seen" in m.fetch("2", "FLAGS")[1][0]
        typ, data = m.store("1", "+FLAGS", "(\\Answered $Work)")
        assert typ == "OK" and b"\\Answered" in data[0] and b"$Work" in data[0]
        assert m.search(None, "KEYWORD", "$Work") == ("OK", [b"1"])
        typ, data = m.uid("SEARCH", None, "ALL")
        uids = data[0].split()
        assert len(uids) == 2
        typ, data = m.uid("FETCH", uids[0].decode(), "(UID FLAGS)")
        assert b"UID " + uids[0] in data[0]
        typ, data = m.copy("1:2", "INBOX")
        assert typ == "OK" and b"COPYUID" in data[0]
        typ, data = m.uid("MOVE", uids[1].decode(), "Archive")
        assert typ == "OK"
        assert m.select(wire)[1] == [b"1"]
        assert m.store("1", "+FLAGS.SILENT", "\\Deleted")[0] == "OK"
        typ, data = m.expunge()
        assert (typ, data) == ("OK", [b"1"])
        assert m.select("INBOX")[1] == [b"2"]
        assert m.status("Archive", "(MESSAGES UIDNEXT UNSEEN)")[1][0].startswith(b"Archive (MESSAGES 1 ")
        assert m.uid("STORE", "1:*", "+FLAGS", "(\\Deleted)")[0] == "OK"
        typ, data = m.uid("EXPUNGE", "1")
        assert typ == "OK"
        assert m.search(None, "ALL") == ("OK", [b"1"])
        assert m.close()[0] == "OK"
        assert m.delete(wire)[0] == "OK"
        m.logout()

    await in_thread(run)


async def test_imaplib_starttls(server: RunningServer) -> None:
    await server.add_account(ANNV, PASSWORD)

    def run() -> None:
        m = imap(server)
        assert "STARTTLS" in m.capabilities
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        assert m.starttls(context)[0] == "OK"
        assert "STARTTLS" not in m.capabilities
        assert m.login(ANNV, PASSWORD)[0] == "OK"
        assert m.select("INBOX")[0] == "OK"
        m.logout()

    await in_thread(run)


async def test_imaps_implicit_tls(server: RunningServer) -> None:
    await server.add_account(ANNV, PASSWORD)

    def run() -> None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        m = imaplib.IMAP4_SSL("127.0.0.1", server.port("imaps"), ssl_context=context)
        assert "STARTTLS" not in m.capabilities
        assert m.login(ANNV, PASSWORD)[0] == "OK"
        m.logout()

    await in_thread(run)


async def test_idle_woken_by_delivery(server: RunningServer) -> None:
    account = await server.add_account(ANNV, PASSWORD)
    raw = await Raw.connect(server)
    assert (await raw.command(b"a", f"LOGIN {ANNV} {PASSWORD}".encode()))[-1].startswith(b"a OK")
    assert (await raw.command(b"b", b"SELECT INBOX"))[-1].startswith(b"b OK")
    await raw.send(b"c IDLE\r\n")
    assert (await raw.line()).startswith(b"+ ")
    # Delivered over real SMTP on the MX port, as in production.
    import aiosmtplib

    await aiosmtplib.send(message("Woken"), sender="citizen@example.org", recipients=[ANNV],
                          hostname="127.0.0.1", port=server.port("smtp"), start_tls=False)
    assert await raw.line(timeout=5.0) == b"* 1 EXISTS\r\n"
    assert len(await server.app.store.list_messages(account.id, (await server.app.store.get_folder(
        account.id, "INBOX")).id)) == 1
    await raw.send(b"DONE\r\n")
    lines = await raw.until(b"c")
    assert lines[-1].startswith(b"c OK")
    await raw.close()


async def test_malformed_commands_get_bad_and_session_continues(server: RunningServer) -> None:
    await server.add_account(ANNV, PASSWORD)
    raw = await Raw.connect(server)
    assert (await raw.command(b"a1", b"FROBNICATE"))[-1].startswith(b"a1 BAD")
    assert (await raw.command(b"a2", b"FETCH 1 FLAGS"))[-1].startswith(b"a2 BAD")  # wrong state
    await raw.send(b"\x00\xff garbage\r\n")
    assert (await raw.line()).startswith(b"* BAD")
    assert (await raw.command(b"a3", f"LOGIN {ANNV} {PASSWORD}".encode()))[-1].startswith(b"a3 OK")
    assert (await raw.command(b"a4", b"SELECT INBOX (BOGUS"))[-1].startswith(b"a4 BAD")
    assert (await raw.command(b"a5", b"SELECT INBOX"))[-1].startswith(b"a5 OK")
    assert (await raw.command(b"a6", b"SEARCH CHARSET KOI8-R ALL"))[-1].startswith(b"a6 NO [BADCHARSET")
    assert (await raw.command(b"a7", b"FETCH 1 (FLAGS BODY[1.0])"))[-1].startswith(b"a7 BAD")
    assert (await raw.command(b"a8", b"NOOP"))[-1].startswith(b"a8 OK")
    await raw.close()


async def test_huge_literal_refused_without_reading(server: RunningServer) -> None:
    await server.add_account(ANNV, PASSWORD)
    raw = await Raw.connect(server)
    await raw.command(b"a", f"LOGIN {ANNV} {PASSWORD}".encode())
    await raw.send(b"b APPEND INBOX {999999999999}\r\n")
    line = await raw.line()
    assert line.startswith(b"b BAD [TOOBIG]") or line.startswith(b"b NO [TOOBIG]")
    # A non-synchronising one is skipped: the server discards the octets.
    size = server.config.imap.max_literal + 1
    await raw.send(b"c APPEND INBOX {%d+}\r\n" % size + b"x" * size + b"\r\n")
    assert (await raw.line()).startswith(b"c BAD [TOOBIG]")
    assert (await raw.command(b"d", b"STATUS INBOX (MESSAGES)"))[0] == b"* STATUS INBOX (MESSAGES 0)\r\n"
    await raw.close()


async def test_wrong_password_and_throttling(server: RunningServer) -> None:
    await server.add_account(ANNV, PASSWORD)
    raw = await Raw.connect(server)
    lines = await raw.command(b"a", f"LOGIN {ANNV} wrong".encode())
    assert lines[-1].startswith(b"a NO [AUTHENTICATIONFAILED]")
    for i in range(server.config.auth.max_failures):
        await raw.command(b"x%d" % i, f"LOGIN {ANNV} wrong{i}".encode())
    lines = await raw.command(b"b", f"LOGIN {ANNV} {PASSWORD}".encode())
    assert lines[-1].startswith(b"b NO")
    await raw.close()


async def test_authenticate_plain_and_login(server: RunningServer) -> None:
    import base64

    await server.add_account(ANNV, PASSWORD)
    raw = await Raw.connect(server)
    token = base64.b64encode(f"\0{ANNV}\0{PASSWORD}".encode())
    assert (await raw.command(b"a", b"AUTHENTICATE PLAIN " + token))[-1].startswith(b"a OK")
    await raw.close()
    raw = await Raw.connect(server)
    await raw.send(b"b AUTHENTICATE LOGIN\r\n")
    assert await raw.line() == b"+ VXNlcm5hbWU6\r\n"
    await raw.send(base64.b64encode(ANNV.encode()) + b"\r\n")
    assert await raw.line() == b"+ UGFzc3dvcmQ6\r\n"
    await raw.send(base64.b64encode(PASSWORD.encode()) + b"\r\n")
    assert (await raw.until(b"b"))[-1].startswith(b"b OK")
    await raw.close()


async def test_isolation_between_accounts(server: RunningServer) -> None:
    await server.add_account(ANNV, PASSWORD)
    binh = await server.add_account(BINH, PASSWORD)
    await server.app.store.deliver([binh.id], message("Secret of binh", "bí mật\n", to=BINH))
    binh_inbox = await server.app.store.get_folder(binh.id, "INBOX")
    await server.app.store.create_folder(binh.id, "Private")

    def run() -> None:
        m = imap(server)
        m.login(ANNV, PASSWORD)
        everything = b"".join(x for x in m.list('""', "*")[1] if x)
        assert b"Private" not in everything
        for name in (
            '"../binhtt@dongnai.gov.vn"',
            '"INBOX/../x"',
            '"%2F"',
            '"../Private"',
            '"/Private"',
            '"/etc/passwd"',
            '"INBOX/../../binhtt@dongnai.gov.vn/INBOX"',
        ):
            typ, data = m.select(name)
            assert typ == "NO", (name, data)
            typ, data = m.list('""', name)
            assert b"Private" not in b"".join(x for x in data if x)
            assert m.status(name, "(MESSAGES)")[0] == "NO"
        m.select("INBOX")
        assert m.search(None, "ALL") == ("OK", [b""])
        assert m.fetch(str(binh_inbox.id), "BODY[]")[1] == [None]
        assert m.uid("FETCH", "1:*", "BODY[]")[1] == [None]
        m.logout()

    await in_thread(run)
    raw = await Raw.connect(server)
    await raw.command(b"a", f"LOGIN {ANNV} {PASSWORD}".encode())
    lines = await raw.command(b"b", b'SELECT "a\x00b"')
    assert lines[-1].startswith(b"b BAD") or lines[-1].startswith(b"b NO")
    lines = await raw.command(b"c", b"CREATE {5+}\r\na\x00bcd")
    assert lines[-1].startswith(b"c NO") or lines[-1].startswith(b"c BAD")
    await raw.close()


# -- imapclient ------------------------------------------------------------------------
async def test_imapclient_folders_and_bodystructure(server: RunningServer) -> None:
    await server.add_account(ANNV, PASSWORD)
    msg = EmailMessage()
    msg["From"] = "a@example.com"
    msg["To"] = ANNV
    msg["Subject"] = "With attachment"
    msg.set_content("See the attached report.\n")
    msg.add_attachment(b"%PDF-1.4 fake" * 50, maintype="application", subtype="pdf", filename="bao-cao.pdf")
    raw_msg = msg.as_bytes().replace(b"\n", b"\r\n")

    def run() -> None:
        with IMAPClient("127.0.0.1", port=server.port("imap"), ssl=False) as client:
            client.login(ANNV, PASSWORD)
            client.create_folder(FOLDER_VI)
            client.create_folder(f"{FOLDER_VI}/Năm 2024")
            assert client.folder_exists(FOLDER_VI)
            names = [name for _, _, name in client.list_folders()]
            assert FOLDER_VI in names and f"{FOLDER_VI}/Năm 2024" in names
            flags = {name: f for f, _, name in client.list_folders()}
            assert b"\\HasChildren" in flags[FOLDER_VI]
            client.rename_folder(f"{FOLDER_VI}/Năm 2024", f"{FOLDER_VI}/2024")
            assert f"{FOLDER_VI}/2024" in [n for _, _, n in client.list_folders()]
            client.subscribe_folder(FOLDER_VI)
            assert FOLDER_VI in [n for _, _, n in client.list_sub_folders()]
            client.append(FOLDER_VI, raw_msg)
            client.select_folder(FOLDER_VI)
            [(uid, data)] = client.fetch([1], ["BODYSTRUCTURE", "ENVELOPE", "BODY[2]"]).items()
            bs = data[b"BODYSTRUCTURE"]
            parsed = email.message_from_bytes(raw_msg, policy=email.policy.default)
            assert bs.is_multipart
            assert bs[-5 if len(bs) > 5 else 1].lower() == b"mixed" or b"MIXED" in [
                x.upper() for x in bs if isinstance(x, bytes)
            ]
            parts = bs[0]
            expected = list(parsed.iter_parts())  # type: ignore[attr-defined]
            assert len(parts) == len(expected)
            for part, want in zip(parts, expected, strict=True):
                assert part[0].lower().decode() == want.get_content_maintype()
                assert part[1].lower().decode() == want.get_content_subtype()
            pdf = parts[1]
            assert pdf[5].upper() == b"BASE64"
            assert pdf[6] == len(expected[1].get_payload().encode())
            disposition = pdf[8]
            assert disposition[0].lower() == b"attachment"
            assert b"bao-cao.pdf" in disposition[1]
            assert data[b"ENVELOPE"].subject == b"With attachment"
            assert data[b"BODY[2]"] == expected[1].get_payload().encode()
            client.delete_folder(f"{FOLDER_VI}/2024")

    await in_thread(run)


async def test_imapclient_condstore_qresync(server: RunningServer) -> None:
    await server.add_account(ANNV, PASSWORD)

    def run() -> None:
        with IMAPClient("127.0.0.1", port=server.port("imap"), ssl=False) as client:
            client.login(ANNV, PASSWORD)
            assert set(client.enable("CONDSTORE", "QRESYNC")) == {b"CONDSTORE", b"QRESYNC"}
            for i in range(3):
                client.append("INBOX", message(f"m{i}"))
            info = client.select_folder("INBOX")
            modseq = info[b"HIGHESTMODSEQ"]
            client.add_flags([2], [b"\\Flagged"])
            changed = client.fetch([1, 2, 3], ["FLAGS"], modifiers=[f"CHANGEDSINCE {modseq}"])
            assert list(changed) == [2]
            assert b"\\Flagged" in changed[2][b"FLAGS"]
            assert changed[2][b"MODSEQ"][0] > modseq
            client.set_flags([3], [b"\\Deleted"])
            client.expunge()
            uidvalidity = info[b"UIDVALIDITY"]
            client.unselect_folder()
            resp = client._imap._simple_command(  # noqa: SLF001 - QRESYNC select is not wrapped
                "SELECT", f"INBOX (QRESYNC ({uidvalidity} {modseq}))"
            )
            assert resp[0] == "OK"
            untagged = client._imap.untagged_responses  # noqa: SLF001
            assert any(b"EARLIER" in v and b"3" in v for v in untagged.get("VANISHED", []))

    await in_thread(run)


async def test_imapclient_idle(server: RunningServer) -> None:
    account = await server.add_account(ANNV, PASSWORD)
    loop = asyncio.get_running_loop()

    def run() -> list[object]:
        with IMAPClient("127.0.0.1", port=server.port("imap"), ssl=False) as client:
            client.login(ANNV, PASSWORD)
            client.select_folder("INBOX")
            client.idle()
            asyncio.run_coroutine_threadsafe(
                server.app.store.deliver([account.id], message("idle")), loop
            ).result(10)
            responses = client.idle_check(timeout=5)
            client.idle_done()
            return list(responses)

    responses = await in_thread(run)
    assert (1, b"EXISTS") in responses


# -- aioimaplib ------------------------------------------------------------------------
async def test_aioimaplib_login_select_idle(server: RunningServer) -> None:
    account = await server.add_account(ANNV, PASSWORD)
    client = aioimaplib.IMAP4(host="127.0.0.1", port=server.port("imap"), timeout=10)
    await client.wait_hello_from_server()
    assert (await client.login(ANNV, PASSWORD)).result == "OK"
    assert (await client.select("INBOX")).result == "OK"
    idle = await client.idle_start(timeout=10)
    await server.app.store.deliver([account.id], message("aio"))
    push = await client.wait_server_push()
    assert any(b"EXISTS" in (p if isinstance(p, bytes) else str(p).encode()) for p in push)
    client.idle_done()
    assert (await asyncio.wait_for(idle, 10)).result == "OK"
    await client.logout()


# -- curl and mbsync -------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
async def test_curl_list_and_fetch(server: RunningServer) -> None:
    account = await server.add_account(ANNV, PASSWORD)
    await server.app.store.deliver([account.id], message("via curl", "curl body\n"))
    base = f"imap://127.0.0.1:{server.port('imap')}"
    user = ["--user", f"{ANNV}:{PASSWORD}"]

    def curl(*args: str) -> str:
        out = subprocess.run(
            ["curl", "-s", "-S", "--max-time", "20", *user, *args],  # noqa: S603,S607
            capture_output=True,
            check=True,
        )
        return out.stdout.decode()

    listing = await in_thread(lambda: curl(base + "/"))
    assert "INBOX" in listing and "Sent" in listing
    body = await in_thread(lambda: curl(base + "/INBOX;UID=1"))
    assert "Subject: via curl" in body and "curl body" in body


@pytest.mark.skipif(shutil.which("mbsync") is None, reason="mbsync not installed")
async def test_mbsync_two_way(server: RunningServer, tmp_path: Path) -> None:
    account = await server.add_account(ANNV, PASSWORD)
    await server.app.store.deliver([account.id], message("from server", "server side\n"))
    local = tmp_path / "mail"
    local.mkdir()
    rc = tmp_path / "mbsyncrc"
    rc.write_text(
        f"""IMAPAccount test
Host 127.0.0.1
Port {server.port("imap")}
User {ANNV}
Pass {PASSWORD}
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account test

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
"""
    )

    def mbsync() -> None:
        proc = subprocess.run(
            ["mbsync", "-c", str(rc), "-a"],
            capture_output=True,  # noqa: S603,S607
            timeout=60,
            env={**os.environ, "HOME": str(tmp_path)},
        )
        assert proc.returncode == 0, proc.stderr.decode() + proc.stdout.decode()

    await in_thread(mbsync)
    pulled = list((local / "INBOX" / "cur").iterdir()) + list((local / "INBOX" / "new").iterdir())
    assert len(pulled) == 1 and b"from server" in pulled[0].read_bytes()
    assert (local / "Sent").is_dir()
    # Push: a new local message in Sent goes up to the server.
    (local / "Sent" / "cur" / "1700000000.1.local:2,S").write_bytes(message("from local", "local side\n"))
    await in_thread(mbsync)
    sent = await server.app.store.get_folder(account.id, "Sent")
    infos = await server.app.store.list_messages(account.id, sent.id)
    assert len(infos) == 1
    data = await server.app.store.read_message(account.id, sent.id, infos[0].uid)
    assert b"from local" in data
    assert "\\Seen" in infos[0].flags


# -- both backends ---------------------------------------------------------------------
async def test_round_trip_any_backend(any_server: RunningServer) -> None:
    await any_server.add_account(ANNV, PASSWORD)

    def run() -> None:
        m = imaplib.IMAP4("127.0.0.1", any_server.port("imap"))
        m.login(ANNV, PASSWORD)
        assert m.append("INBOX", None, None, message(SUBJECT_VI, "round trip\n"))[0] == "OK"
        m.select("INBOX")
        typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert typ == "OK" and b"Subject:" in data[0][1]
        m.literal = "Đồng Nai".encode()
        assert m.search("UTF-8", "SUBJECT") == ("OK", [b"1"])
        assert m.search(None, "TEXT", "round") == ("OK", [b"1"])
        assert re.search(rb"RFC822\.SIZE \d+", m.fetch("1", "RFC822.SIZE")[1][0])
        m.logout()

    await in_thread(run)


async def test_create_with_special_use(server: RunningServer) -> None:
    """RFC 6154 CREATE-SPECIAL-USE: one attribute the store keeps per folder;
    others (\\All, two at once) are refused with [USEATTR] and nothing is created."""
    await server.add_account(ANNV, PASSWORD)
    raw = await Raw.connect(server)
    try:
        await raw.command(b"a", f"LOGIN {ANNV} {PASSWORD}".encode())
        assert b"CREATE-SPECIAL-USE" in b"".join(await raw.command(b"c", b"CAPABILITY"))
        assert (await raw.command(b"d", b"CREATE Archive2026 (USE (\\archive))"))[-1].startswith(b"d OK")
        for tag, attrs in ((b"e", b"\\All"), (b"f", b"\\Sent \\Trash"), (b"g", b"\\Important")):
            reply = (await raw.command(tag, b"CREATE Other (USE (" + attrs + b"))"))[-1]
            assert reply.startswith(tag + b" NO [USEATTR]"), reply
        listed = b"".join(await raw.command(b"h", b'LIST "" "*" RETURN (SPECIAL-USE)'))
        assert b'(\\HasNoChildren \\Archive) "/" Archive2026' in listed
        assert b"Other" not in listed
    finally:
        await raw.close()


async def test_searchres_saves_a_result_for_later_commands(server: RunningServer) -> None:
    """RFC 5182: SEARCH RETURN (SAVE) keeps the result as "$" (no ESEARCH when
    SAVE is the only option), usable by FETCH, STORE and SEARCH, UID or not; with
    MIN/MAX only those are kept; a new SELECT forgets it."""
    account = await server.add_account(ANNV, PASSWORD)
    for n in range(5):
        await server.app.store.deliver([account.id], message("Bao cao" if n % 2 else "Thu moi"))
    raw = await Raw.connect(server)
    try:
        await raw.command(b"a", f"LOGIN {ANNV} {PASSWORD}".encode())
        assert b"SEARCHRES" in b"".join(await raw.command(b"b", b"CAPABILITY"))
        await raw.command(b"c", b"SELECT INBOX")
        saved = await raw.command(b"d", b"UID SEARCH RETURN (SAVE) SUBJECT moi")
        assert len(saved) == 1 and saved[0].startswith(b"d OK")  # no ESEARCH
        fetched = await raw.command(b"e", b"FETCH $ (UID)")
        assert fetched[:-1] == [b"* 1 FETCH (UID 1)\r\n", b"* 3 FETCH (UID 3)\r\n", b"* 5 FETCH (UID 5)\r\n"]
        await raw.command(b"f", b"UID STORE $ +FLAGS.SILENT (\\Flagged)")
        assert (await raw.command(b"g", b"SEARCH FLAGGED"))[0] == b"* SEARCH 1 3 5\r\n"
        assert (await raw.command(b"h", b"SEARCH $ UID 2:4"))[0] == b"* SEARCH 3\r\n"
        minmax = await raw.command(b"i", b"SEARCH RETURN (SAVE MIN MAX) FLAGGED")
        assert minmax[0] == b'* ESEARCH (TAG "i") MIN 1 MAX 5\r\n'
        assert (await raw.command(b"j", b"UID SEARCH UID $"))[0] == b"* SEARCH 1 5\r\n"
        failed = await raw.command(b"j2", b"SEARCH RETURN (SAVE) CHARSET KOI8-R ALL")
        assert failed[-1].startswith(b"j2 NO [BADCHARSET")
        assert (await raw.command(b"j3", b"FETCH $ (UID)"))[0].startswith(b"j3 OK")  # emptied
        await raw.command(b"k", b"EXAMINE INBOX")
        assert (await raw.command(b"l", b"FETCH $ (UID)"))[0].startswith(b"l OK")  # nothing saved
    finally:
        await raw.close()
