"""Inbound SMTP (MX) end to end: a real App on port 0, driven by smtplib,
aiosmtplib, swaks and a raw socket client; every delivered message is read
back through the store, from the Maildir file on disk and from the SQL index."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import smtplib
import ssl
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.policy import SMTPUTF8 as SMTPUTF8_POLICY
from pathlib import Path
from typing import Final

import aiosmtplib
import pytest

from mailserver.app import App
from mailserver.config import Config
from storage.api import INBOX
from tests.conftest import RunningServer

ANNV = "annv@dongnai.gov.vn"
BINH = "binhtt@dongnai.gov.vn"
OUTSIDER = "sender@example.com"
SUBJECT_VI = "Báo cáo tình hình kinh tế - xã hội tỉnh Đồng Nai"


# -- helpers --------------------------------------------------------------------
class RawClient:
    """A line-level SMTP client over a plain socket, for what libraries hide."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int, ehlo: str | None = "client.example") -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(reader, writer)
        code, _ = await client.reply()
        assert code == 220
        if ehlo is not None:
            code, _ = await client.cmd(f"EHLO {ehlo}")
            assert code == 250
        return client

    async def reply(self) -> tuple[int, str]:
        lines = []
        while True:
            line = (await asyncio.wait_for(self.reader.readline(), 30)).decode("utf-8")
            assert line.endswith("\r\n"), line
            lines.append(line[4:-2])
            if line[3] == " ":
                return int(line[:3]), "\n".join(lines)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def cmd(self, line: str) -> tuple[int, str]:
        await self.send(line.encode("utf-8") + b"\r\n")
        return await self.reply()

    async def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.write(b"QUIT\r\n")
            self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, ssl.SSLError):
            pass


def enhanced(text: str) -> str:
    return text.split(" ", 1)[0]


async def inbox(server: RunningServer, address: str) -> tuple[int, int]:
    account = await server.app.store.get_account(address)
    assert account is not None
    folder = await server.app.store.get_folder(account.id, INBOX)
    return account.id, folder.id


def find_on_disk(maildir: Path, content: bytes) -> Path:
    """The Maildir file holding exactly ``content`` (name layout is storage's)."""
    for path in maildir.rglob("*"):
        if path.is_file() and path.parent.name == "cur" and path.stat().st_size == len(content):
            if path.read_bytes() == content:
                return path
    raise AssertionError(f"no file under {maildir} holds the message")


def split_trace(stored: bytes, original: bytes) -> list[bytes]:
    """Check that ``stored`` is trace fields + ``original`` byte for byte and
    return the trace field lines."""
    assert len(stored) > len(original)
    tail = stored[len(stored) - len(original):]
    assert hashlib.sha256(tail).hexdigest() == hashlib.sha256(original).hexdigest()
    prefix = stored[: len(stored) - len(original)]
    assert prefix.endswith(b"\r\n")
    lines = prefix[:-2].split(b"\r\n")
    assert re.fullmatch(rb"Return-Path: <[^<>\r\n]*>", lines[0]), lines[0]
    if lines[1].startswith(b"Authentication-Results: "):
        # RFC 8601 field of the MX's sender authentication, then its results.
        del lines[1]
        while lines[1].startswith(b"\t"):
            del lines[1]
    assert lines[1].startswith(b"Received: from "), lines[1]
    # The content policy's fields follow the trace fields (delivery.py).
    while re.match(rb"(?i)x-policy:|x-spam-[a-z]+:|x-legacy-encoding:", lines[-1]):
        del lines[-1]
    assert all(line.startswith(b"\t") for line in lines[2:]), lines
    assert b"\n" not in prefix.replace(b"\r\n", b"")
    return lines


async def assert_delivered(server: RunningServer, address: str, original: bytes) -> bytes:
    """The newest message of ``address``'s INBOX is ``original`` plus trace
    fields, in the store, on disk and in the SQL row; return the stored bytes."""
    account_id, folder_id = await inbox(server, address)
    infos = await server.app.store.list_messages(account_id, folder_id)
    assert infos, f"INBOX of {address} is empty"
    info = infos[-1]
    stored = await server.app.store.read_message(account_id, folder_id, info.uid)
    assert info.size == len(stored)
    split_trace(stored, original)
    on_disk = find_on_disk(server.config.maildir, stored)
    assert on_disk.read_bytes() == stored
    return stored


def received_of(stored: bytes) -> str:
    head = stored.split(b"\r\n\r\n", 1)[0].decode("utf-8")
    match = re.search(r"^Received: .*?(?=\r\n[^\t])", head, re.MULTILINE | re.DOTALL)
    assert match is not None
    return match.group(0).replace("\r\n\t", " ")


# From, Date and Message-ID (RFC 5322 section 3.6): without them a message
# scores as spam (policy/checks/spam.py) and is delivered to Junk, not INBOX.
HEADERS: Final = (
    b"From: <sender@example.com>\r\nDate: Mon, 6 May 2024 08:30:00 +0000\r\nMessage-ID: <t@example.com>\r\n"
)


def simple_message(subject: str = "Hello", body: str = "Xin chao.\r\n") -> bytes:
    return (
        f"From: <{OUTSIDER}>\r\nTo: <{ANNV}>\r\nSubject: {subject}\r\n"
        f"Message-ID: <{os.urandom(8).hex()}@example.com>\r\n\r\n{body}"
    ).encode()


def smtplib_send(port: int, sender: str, recipients: Sequence[str], data: bytes,
                 mail_options: Sequence[str] = ()) -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.example", timeout=60) as smtp:
        return smtp.sendmail(sender, list(recipients), data, mail_options=list(mail_options))


@pytest.fixture
async def mx(server: RunningServer) -> AsyncIterator[RunningServer]:
    await server.add_account(ANNV, "pw")
    await server.add_account(BINH, "pw")
    yield server


@pytest.fixture
async def small_mx(config: Config) -> AsyncIterator[RunningServer]:
    """A server with a 64 KiB size limit and at most 3 recipients."""
    small = replace(config, smtp=replace(config.smtp, max_message_size=65536, max_recipients=3))
    async with App(small) as app:
        running = RunningServer(app, small)
        await running.add_account(ANNV, "pw")
        yield running


# -- delivery through real clients ---------------------------------------------------
async def test_smtplib_delivery_with_dot_line(mx: RunningServer) -> None:
    original = simple_message(body="Line one\r\n.\r\n..two dots\r\n.\r\nlast\r\n")
    refused = await asyncio.to_thread(smtplib_send, mx.port("smtp"), OUTSIDER, [ANNV], original)
    assert refused == {}
    stored = await assert_delivered(mx, ANNV, original)
    assert stored.startswith(f"Return-Path: <{OUTSIDER}>\r\n".encode())
    received = received_of(stored)
    assert re.fullmatch(
        r"Received: from client\.example \((\S+ )?\[127\.0\.0\.1\]\) by mx\.test\.dongnai\.gov\.vn"
        r" with ESMTP id \w+ for <annv@dongnai\.gov\.vn>; \w{3}, \d+ \w{3} \d{4} [\d:]{8} [+-]\d{4}",
        received,
    ), received


async def test_vietnamese_subject_raw_with_smtputf8(mx: RunningServer) -> None:
    msg = EmailMessage(policy=SMTPUTF8_POLICY)
    msg["From"] = "Nguyễn Văn A <người.gửi@ví-dụ.vn>"
    msg["To"] = ANNV
    msg["Subject"] = SUBJECT_VI
    msg.set_content("Kính gửi anh chị,\nBáo cáo đính kèm.\n", cte="8bit")
    original = msg.as_bytes()
    assert SUBJECT_VI.encode("utf-8") in original
    refused = await asyncio.to_thread(
        smtplib_send, mx.port("smtp"), "người.gửi@ví-dụ.vn", [ANNV], original,
        ["SMTPUTF8", "BODY=8BITMIME"],
    )
    assert refused == {}
    stored = await assert_delivered(mx, ANNV, original)
    assert stored.startswith("Return-Path: <người.gửi@ví-dụ.vn>\r\n".encode())
    assert " with UTF8SMTP id " in received_of(stored)


async def test_vietnamese_subject_rfc2047_encoded(mx: RunningServer) -> None:
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["From"] = OUTSIDER
    msg["To"] = ANNV
    msg["Subject"] = SUBJECT_VI
    msg.set_content("Kính gửi anh chị.\n", cte="quoted-printable")
    original = msg.as_bytes()
    assert original.isascii() and b"=?utf-8?" in original
    await aiosmtplib.send(original, sender=OUTSIDER, recipients=[ANNV], hostname="127.0.0.1",
                          port=mx.port("smtp"), start_tls=False)
    await assert_delivered(mx, ANNV, original)
    account_id, folder_id = await inbox(mx, ANNV)
    infos = await mx.app.store.list_messages(account_id, folder_id)
    (detail,) = await mx.app.store.get_details(account_id, folder_id, [infos[-1].uid])
    assert detail.envelope.subject == SUBJECT_VI


async def test_8bit_body_with_8bitmime(mx: RunningServer) -> None:
    body = "Đây là nội dung 8-bit: ăâđêôơư ĂÂĐÊÔƠƯ\r\n".encode() + bytes(range(0x80, 0x100)) + b"\r\n"
    original = (
        f"From: {OUTSIDER}\r\nTo: {ANNV}\r\nSubject: 8bit\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    ).encode() + body
    refused = await asyncio.to_thread(
        smtplib_send, mx.port("smtp"), OUTSIDER, [ANNV], original, ["BODY=8BITMIME"]
    )
    assert refused == {}
    await assert_delivered(mx, ANNV, original)


async def test_10mb_attachment(mx: RunningServer) -> None:
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["From"] = OUTSIDER
    msg["To"] = ANNV
    msg["Subject"] = "Attachment"
    msg.set_content("See attached.\n")
    payload = os.urandom(10 * 1024 * 1024)
    msg.add_attachment(payload, maintype="application", subtype="octet-stream", filename="data.bin")
    original = msg.as_bytes()
    assert len(original) > 13_000_000
    await aiosmtplib.send(original, sender=OUTSIDER, recipients=[ANNV], hostname="127.0.0.1",
                          port=mx.port("smtp"), start_tls=False, timeout=120)
    stored = await assert_delivered(mx, ANNV, original)
    assert hashlib.sha256(payload).digest() in {
        hashlib.sha256(part.get_content()).digest()
        for part in __import__("email").message_from_bytes(stored, _class=EmailMessage,
                                                           policy=SMTP_POLICY).iter_attachments()
    }


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks not installed")
async def test_swaks_delivery(mx: RunningServer, tmp_path: Path) -> None:
    # swaks ends DATA with CRLF.CRLF after the file, so the file lacks the final CRLF.
    original = simple_message(subject="via swaks", body="Line\r\n.\r\nend\r\n")
    data_file = tmp_path / "message.eml"
    data_file.write_bytes(original[:-2])
    proc = await asyncio.create_subprocess_exec(
        "swaks", "--server", f"127.0.0.1:{mx.port('smtp')}", "--to", ANNV, "--from", OUTSIDER,
        "--helo", "swaks.example", "--data", f"@{data_file}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, out.decode()
    assert b"<-  250 2.0.0 Message accepted" in out
    stored = await assert_delivered(mx, ANNV, original)
    assert received_of(stored).startswith("Received: from swaks.example ")


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks not installed")
async def test_swaks_starttls(mx: RunningServer) -> None:
    proc = await asyncio.create_subprocess_exec(
        "swaks", "--server", f"127.0.0.1:{mx.port('smtp')}", "--to", ANNV, "--from", OUTSIDER,
        "--tls", "--header", "Subject: swaks tls",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, out.decode()
    account_id, folder_id = await inbox(mx, ANNV)
    (info,) = await mx.app.store.list_messages(account_id, folder_id)
    stored = await mx.app.store.read_message(account_id, folder_id, info.uid)
    assert " with ESMTPS " in received_of(stored)


async def test_multi_recipient_delivery(mx: RunningServer) -> None:
    original = simple_message(subject="To both")
    refused = await asyncio.to_thread(
        smtplib_send, mx.port("smtp"), OUTSIDER, [ANNV, "BinhTT@DongNai.gov.vn"], original
    )
    assert refused == {}
    first = await assert_delivered(mx, ANNV, original)
    second = await assert_delivered(mx, BINH, original)
    assert first == second
    assert " for <" not in received_of(first)  # several recipients: none named


async def test_null_sender_and_postmaster(mx: RunningServer) -> None:
    await mx.add_account("postmaster@dongnai.gov.vn", "pw")
    client = await RawClient.open(mx.port("smtp"))
    try:
        assert await client.cmd("MAIL FROM:<>") == (250, "2.1.0 Sender OK")
        assert (await client.cmd("RCPT TO:<Postmaster>"))[0] == 250
        assert (await client.cmd("DATA"))[0] == 354
        original = HEADERS + b"Subject: bounce\r\n\r\nDelivery report.\r\n"
        await client.send(original + b".\r\n")
        code, text = await client.reply()
        assert code == 250 and enhanced(text) == "2.0.0"
    finally:
        await client.close()
    stored = await assert_delivered(mx, "postmaster@dongnai.gov.vn", original)
    assert stored.startswith(b"Return-Path: <>\r\n")


async def test_ehlo_advertises_extensions(mx: RunningServer) -> None:
    client = await RawClient.open(mx.port("smtp"), ehlo=None)
    try:
        code, text = await client.cmd("EHLO client.example")
        assert code == 250
        lines = text.split("\n")
        assert lines[0] == "mx.test.dongnai.gov.vn"
        for keyword in ("8BITMIME", "SMTPUTF8", "PIPELINING", "ENHANCEDSTATUSCODES", "STARTTLS"):
            assert keyword in lines
        assert f"SIZE {mx.config.smtp.max_message_size}" in lines
        assert not any(line.startswith("AUTH") for line in lines)
    finally:
        await client.close()


async def test_pipelined_transaction(mx: RunningServer) -> None:
    client = await RawClient.open(mx.port("smtp"))
    try:
        original = HEADERS + b"Subject: pipelined\r\n\r\nbody\r\n"
        await client.send(
            f"MAIL FROM:<{OUTSIDER}>\r\nRCPT TO:<{ANNV}>\r\nRCPT TO:<nobody@dongnai.gov.vn>\r\n"
            f"RCPT TO:<{BINH}>\r\nDATA\r\n".encode()
        )
        replies = [await client.reply() for _ in range(5)]
        assert [code for code, _ in replies] == [250, 250, 550, 250, 354]
        await client.send(original + b".\r\nNOOP\r\n")
        assert (await client.reply())[0] == 250
        assert await client.reply() == (250, "2.0.0 OK")
    finally:
        await client.close()
    await assert_delivered(mx, ANNV, original)
    await assert_delivered(mx, BINH, original)


async def test_helo_session_is_plain_smtp(mx: RunningServer) -> None:
    client = await RawClient.open(mx.port("smtp"), ehlo=None)
    try:
        assert (await client.cmd("HELO old.example"))[0] == 250
        assert (await client.cmd(f"MAIL FROM:<{OUTSIDER}>"))[0] == 250
        assert (await client.cmd(f"RCPT TO:<{ANNV}>"))[0] == 250
        assert (await client.cmd("DATA"))[0] == 354
        original = HEADERS + b"Subject: helo\r\n\r\nx\r\n"
        await client.send(original + b".\r\n")
        assert (await client.reply())[0] == 250
    finally:
        await client.close()
    stored = await assert_delivered(mx, ANNV, original)
    assert "Received: from old.example " in received_of(stored)
    assert " with SMTP id " in received_of(stored)


# -- refusals ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sender", "recipient", "expected"),
    [
        (OUTSIDER, "nobody@dongnai.gov.vn", (550, "5.1.1")),
        (OUTSIDER, "someone@example.org", (554, "5.7.1")),
        (OUTSIDER, "annv@dongnai.gov.vn.evil.example", (554, "5.7.1")),
        (OUTSIDER, "người.nhận@dongnai.gov.vn", (553, "5.6.7")),
    ],
)
async def test_rcpt_refusals(
    mx: RunningServer, sender: str, recipient: str, expected: tuple[int, str]
) -> None:
    client = await RawClient.open(mx.port("smtp"))
    try:
        assert (await client.cmd(f"MAIL FROM:<{sender}>"))[0] == 250
        code, text = await client.cmd(f"RCPT TO:<{recipient}>")
        assert (code, enhanced(text)) == expected, text
        assert (await client.cmd(f"RCPT TO:<{ANNV}>"))[0] == 250  # the transaction goes on
    finally:
        await client.close()


async def test_relay_denied_from_loopback_via_smtplib(mx: RunningServer) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
        await asyncio.to_thread(smtplib_send, mx.port("smtp"), OUTSIDER, ["x@gmail.com"], simple_message())
    code, text = info.value.recipients["x@gmail.com"]
    assert (code, text[:6]) == (554, b"5.7.1 ")


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("MAIL FROM:<annv@dongnai.gov.vn>", (553, "5.7.1")),
        ("MAIL FROM:<ANNV@DONGNAI.GOV.VN>", (553, "5.7.1")),
        ("MAIL FROM:<someone@dongnai.gov.vn>", (553, "5.7.1")),
        ("MAIL FROM:<người.gửi@example.com>", (553, "5.6.7")),
        ("MAIL FROM:<x@example.com> SIZE=999999999999", (552, "5.3.4")),
        ("MAIL FROM:<x@example.com> BODY=9BIT", (501, "5.5.4")),
        ("MAIL FROM:<x@example.com> FOO=BAR", (555, "5.5.4")),
        ("MAIL FROM:x@", (553, "5.1.3")),
        ("MAIL FROM:1@[", (553, "5.1.3")),  # the stdlib parser crashes on this one
        ("MAIL FROM:<no-domain>", (553, "5.1.7")),
    ],
)
async def test_mail_refusals(mx: RunningServer, command: str, expected: tuple[int, str]) -> None:
    client = await RawClient.open(mx.port("smtp"))
    try:
        code, text = await client.cmd(command)
        assert (code, enhanced(text)) == expected, text
        assert (await client.cmd(f"MAIL FROM:<{OUTSIDER}>"))[0] == 250
    finally:
        await client.close()


async def test_local_sender_refused_via_smtplib(mx: RunningServer) -> None:
    with pytest.raises(smtplib.SMTPSenderRefused) as info:
        await asyncio.to_thread(smtplib_send, mx.port("smtp"), ANNV, [BINH], simple_message())
    assert (info.value.smtp_code, info.value.smtp_error[:6]) == (553, b"5.7.1 ")


async def test_mail_before_ehlo(mx: RunningServer) -> None:
    client = await RawClient.open(mx.port("smtp"), ehlo=None)
    try:
        code, text = await client.cmd(f"MAIL FROM:<{OUTSIDER}>")
        assert (code, enhanced(text)) == (503, "5.5.1")
        assert (await client.cmd("EHLO late.example"))[0] == 250
        assert (await client.cmd(f"MAIL FROM:<{OUTSIDER}>"))[0] == 250
    finally:
        await client.close()


async def test_oversize_by_size_parameter_via_smtplib(small_mx: RunningServer) -> None:
    big = simple_message(body="x" * 70 + "\r\n") * 1000
    with pytest.raises(smtplib.SMTPSenderRefused) as info:
        await asyncio.to_thread(smtplib_send, small_mx.port("smtp"), OUTSIDER, [ANNV], big)
    assert (info.value.smtp_code, info.value.smtp_error[:6]) == (552, b"5.3.4 ")


async def test_oversize_by_actual_data(small_mx: RunningServer) -> None:
    client = await RawClient.open(small_mx.port("smtp"))
    try:
        assert (await client.cmd(f"MAIL FROM:<{OUTSIDER}>"))[0] == 250  # no SIZE= given
        assert (await client.cmd(f"RCPT TO:<{ANNV}>"))[0] == 250
        assert (await client.cmd("DATA"))[0] == 354
        await client.send(b"Subject: big\r\n\r\n" + (b"y" * 78 + b"\r\n") * 1000 + b".\r\n")
        code, text = await client.reply()
        assert (code, enhanced(text)) == (552, "5.3.4"), text
        # The session goes on: a small message still gets through.
        assert (await client.cmd(f"MAIL FROM:<{OUTSIDER}>"))[0] == 250
        assert (await client.cmd(f"RCPT TO:<{ANNV}>"))[0] == 250
        assert (await client.cmd("DATA"))[0] == 354
        await client.send(HEADERS + b"Subject: small\r\n\r\nok\r\n.\r\n")
        assert (await client.reply())[0] == 250
    finally:
        await client.close()
    account_id, folder_id = await inbox(small_mx, ANNV)
    assert len(await small_mx.app.store.list_messages(account_id, folder_id)) == 1


async def test_too_many_recipients(small_mx: RunningServer) -> None:
    client = await RawClient.open(small_mx.port("smtp"))
    try:
        assert (await client.cmd(f"MAIL FROM:<{OUTSIDER}>"))[0] == 250
        for _ in range(3):
            assert (await client.cmd(f"RCPT TO:<{ANNV}>"))[0] == 250
        code, text = await client.cmd(f"RCPT TO:<{ANNV}>")
        assert (code, enhanced(text)) == (452, "4.5.3")
    finally:
        await client.close()


@pytest.mark.parametrize(
    "payload",
    [
        # <LF>.<LF>: the smuggling end marker some servers accept.
        b"Subject: x\r\n\r\nhello\n.\nMAIL FROM:<evil@example.com>\nRCPT TO:<annv@dongnai.gov.vn>\n"
        b"DATA\nSubject: smuggled\n\nowned\n.\n",
        # <CR><LF>.<LF> and <CR>.<CR><LF> variants.
        b"Subject: x\r\n\r\nhello\r\n.\nMAIL FROM:<evil@example.com>\r\nRCPT TO:<annv@dongnai.gov.vn>\r\n"
        b"DATA\r\nSubject: smuggled\r\n\r\nowned\r\n.\n",
        b"Subject: x\r\n\r\nhello\r.\r\nMAIL FROM:<evil@example.com>\r\nRCPT TO:<annv@dongnai.gov.vn>\r\n"
        b"DATA\r\nSubject: smuggled\r\n\r\nowned\r.\r\n",
        # A plain message with one bare LF.
        b"Subject: bare\r\n\r\nline with\nbare LF\r\n",
        b"Subject: bare\r\n\r\nline with\rbare CR\r\n",
    ],
    ids=["lf-dot-lf", "crlf-dot-lf", "cr-dot-crlf", "bare-lf", "bare-cr"],
)
async def test_bare_line_endings_refused_and_not_end_of_data(mx: RunningServer, payload: bytes) -> None:
    client = await RawClient.open(mx.port("smtp"))
    try:
        assert (await client.cmd(f"MAIL FROM:<{OUTSIDER}>"))[0] == 250
        assert (await client.cmd(f"RCPT TO:<{ANNV}>"))[0] == 250
        assert (await client.cmd("DATA"))[0] == 354
        await client.send(payload + b"\r\n.\r\nNOOP\r\n")
        code, text = await client.reply()
        assert (code, enhanced(text)) == (550, "5.6.0"), text
        # Exactly one reply for the whole DATA: nothing inside it ran as a command.
        assert await client.reply() == (250, "2.0.0 OK")
    finally:
        await client.close()
    account_id, folder_id = await inbox(mx, ANNV)
    assert await mx.app.store.list_messages(account_id, folder_id) == []


async def test_syntax_errors_then_valid_transaction(mx: RunningServer) -> None:
    client = await RawClient.open(mx.port("smtp"))
    try:
        code, text = await client.cmd("GARBAGE nonsense")
        assert (code, enhanced(text)) == (500, "5.5.2")
        code, text = await client.cmd("MAIL FROM")
        assert (code, enhanced(text)) == (501, "5.5.4")
        code, text = await client.cmd("RCPT TO:<x@dongnai.gov.vn>")
        assert (code, enhanced(text)) == (503, "5.5.1")
        code, text = await client.cmd("DATA")
        assert (code, enhanced(text)) == (503, "5.5.1")
        code, text = await client.cmd("AUTH PLAIN AGFubnYAcHc=")
        assert code == 503
        assert (await client.cmd(f"MAIL FROM:<{OUTSIDER}>"))[0] == 250
        assert (await client.cmd(f"MAIL FROM:<{OUTSIDER}>"))[0] == 503
        assert (await client.cmd(f"RCPT TO:<{ANNV}>"))[0] == 250
        assert (await client.cmd("DATA"))[0] == 354
        original = HEADERS + b"Subject: after errors\r\n\r\nstill fine\r\n"
        await client.send(original + b".\r\n")
        assert (await client.reply())[0] == 250
    finally:
        await client.close()
    await assert_delivered(mx, ANNV, original)


async def test_vrfy_and_expn_do_not_reveal_accounts(mx: RunningServer) -> None:
    client = await RawClient.open(mx.port("smtp"))
    try:
        known = await client.cmd(f"VRFY <{ANNV}>")
        unknown = await client.cmd("VRFY <nobody@dongnai.gov.vn>")
        bare = await client.cmd("VRFY annv")
        assert known == unknown == bare
        assert known[0] == 252 and enhanced(known[1]) == "2.5.0"
        expn_known = await client.cmd("EXPN annv")
        expn_unknown = await client.cmd("EXPN nobody")
        assert expn_known == expn_unknown and expn_known[0] == 252
    finally:
        await client.close()


async def test_starttls_then_received_says_esmtps(mx: RunningServer) -> None:
    original = simple_message(subject="over TLS")

    def send() -> None:
        with smtplib.SMTP("127.0.0.1", mx.port("smtp"), local_hostname="tls.example", timeout=60) as smtp:
            smtp.starttls(context=ssl._create_unverified_context())  # noqa: S323
            smtp.ehlo("tls.example")
            assert not smtp.has_extn("starttls")
            code, text = smtp.docmd("STARTTLS")
            assert code == 503
            assert smtp.sendmail(OUTSIDER, [ANNV], original) == {}

    await asyncio.to_thread(send)
    stored = await assert_delivered(mx, ANNV, original)
    received = received_of(stored)
    assert re.search(r" with ESMTPS \(TLSv1\.[23] \S+\) id ", received), received


async def test_two_hundred_concurrent_sessions(config: Config) -> None:
    # 200 sessions from one address: over the default per-address limit
    # (smtp.max_connections_per_ip, tests/clients/test_smtp_hardening.py).
    many = replace(config, smtp=replace(config.smtp, max_connections_per_ip=0))
    async with App(many) as app:
        await many_sessions(RunningServer(app, many))


async def many_sessions(mx: RunningServer) -> None:
    await mx.add_account(ANNV, "pw")
    port = mx.port("smtp")

    async def one(i: int) -> None:
        data = simple_message(subject=f"parallel {i}")
        errors, _ = await aiosmtplib.send(data, sender=OUTSIDER, recipients=[ANNV], hostname="127.0.0.1",
                                          port=port, start_tls=False, timeout=120)
        assert errors == {}

    await asyncio.gather(*(one(i) for i in range(200)))
    account_id, folder_id = await inbox(mx, ANNV)
    infos = await mx.app.store.list_messages(account_id, folder_id)
    assert len(infos) == 200
    assert len({info.uid for info in infos}) == 200
    subjects = set()
    for info in infos:
        stored = await mx.app.store.read_message(account_id, folder_id, info.uid)
        subjects.add(re.search(rb"Subject: (parallel \d+)", stored).group(1))  # type: ignore[union-attr]
    assert len(subjects) == 200


async def test_delivery_survives_restart(config: Config) -> None:
    original = simple_message(subject="persistent")
    async with App(config) as app:
        running = RunningServer(app, config)
        await running.add_account(ANNV, "pw")
        await asyncio.to_thread(smtplib_send, running.port("smtp"), OUTSIDER, [ANNV], original)
    async with App(config) as app:
        await assert_delivered(RunningServer(app, config), ANNV, original)


async def test_storage_failure_is_451_and_session_continues(
    mx: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_deliver = mx.app.store.deliver
    calls = 0

    async def failing(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("disk on fire: /secret/path")
        return await real_deliver(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(mx.app.store, "deliver", failing)
    client = await RawClient.open(mx.port("smtp"))
    try:
        for attempt in range(2):
            assert (await client.cmd(f"MAIL FROM:<{OUTSIDER}>"))[0] == 250
            assert (await client.cmd(f"RCPT TO:<{ANNV}>"))[0] == 250
            assert (await client.cmd("DATA"))[0] == 354
            await client.send(HEADERS + b"Subject: retry\r\n\r\nbody\r\n.\r\n")
            code, text = await client.reply()
            if attempt == 0:
                assert (code, enhanced(text)) == (451, "4.3.0")
                assert "fire" not in text and "Traceback" not in text and "secret" not in text
            else:
                assert code == 250
    finally:
        await client.close()
    await assert_delivered(mx, ANNV, HEADERS + b"Subject: retry\r\n\r\nbody\r\n")


async def test_delivery_on_each_backend(any_server: RunningServer) -> None:
    await any_server.add_account(ANNV, "pw")
    await any_server.add_account(BINH, "pw")
    original = simple_message(subject=SUBJECT_VI, body="Nội dung.\r\n.\r\n")
    refused = await asyncio.to_thread(
        smtplib_send, any_server.port("smtp"), OUTSIDER, [ANNV, BINH], original, ["SMTPUTF8"]
    )
    assert refused == {}
    await assert_delivered(any_server, ANNV, original)
    await assert_delivered(any_server, BINH, original)


async def test_broken_clients_do_not_disturb_the_server(
    mx: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    port = mx.port("smtp")
    # STARTTLS followed by garbage instead of a TLS ClientHello.
    client = await RawClient.open(port)
    assert (await client.cmd("STARTTLS"))[0] == 220
    await client.send(b"this is not TLS\r\n" * 10)
    assert await asyncio.wait_for(client.reader.read(), 30) == b""
    await client.close()
    # Hang up in the middle of DATA, and right after the greeting.
    client = await RawClient.open(port)
    assert (await client.cmd(f"MAIL FROM:<{OUTSIDER}>"))[0] == 250
    assert (await client.cmd(f"RCPT TO:<{ANNV}>"))[0] == 250
    assert (await client.cmd("DATA"))[0] == 354
    await client.send(b"Subject: half\r\n\r\nonly half of it")
    client.writer.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.close()
    # STARTTLS and hang up before the handshake.
    client = await RawClient.open(port)
    assert (await client.cmd("STARTTLS"))[0] == 220
    client.writer.close()
    # A long command line and a long data line.
    client = await RawClient.open(port)
    code, text = await client.cmd("NOOP " + "x" * 5000)
    assert (code, enhanced(text)) == (500, "5.5.2")
    assert (await client.cmd(f"MAIL FROM:<{OUTSIDER}>"))[0] == 250
    assert (await client.cmd(f"RCPT TO:<{ANNV}>"))[0] == 250
    assert (await client.cmd("DATA"))[0] == 354
    await client.send(b"Subject: long\r\n\r\n" + b"z" * 5000 + b"\r\n.\r\n")
    code, text = await client.reply()
    assert (code, enhanced(text)) == (500, "5.5.2")
    assert await client.cmd("NOOP") == (250, "2.0.0 OK")
    await client.close()
    # The server still delivers.
    original = simple_message(subject="still alive")
    assert await asyncio.to_thread(smtplib_send, port, OUTSIDER, [ANNV], original) == {}
    stored = await assert_delivered(mx, ANNV, original)
    assert b"half" not in stored
    assert not [r for r in caplog.records if r.levelno >= 40], caplog.text


async def test_stop_says_421_to_idle_sessions(config: Config) -> None:
    app = App(config)
    await app.start()
    try:
        client = await RawClient.open(app.addresses["smtp"][1])
        assert (await client.cmd(f"MAIL FROM:<{OUTSIDER}>"))[0] == 250
    finally:
        await app.stop()
    code, text = await client.reply()
    assert (code, enhanced(text)) == (421, "4.3.2")
    assert await client.reader.read() == b""
    await client.close()


async def test_stop_lets_a_delivery_in_progress_finish(config: Config) -> None:
    app = App(config)
    await app.start()
    running = RunningServer(app, config)
    await running.add_account(ANNV, "pw")
    entered, release = asyncio.Event(), asyncio.Event()
    real_deliver = app.store.deliver

    async def slow(*args: object, **kwargs: object) -> object:
        entered.set()
        await release.wait()
        return await real_deliver(*args, **kwargs)  # type: ignore[arg-type]

    app.store.deliver = slow  # type: ignore[method-assign,assignment]
    client = await RawClient.open(running.port("smtp"))
    try:
        assert (await client.cmd(f"MAIL FROM:<{OUTSIDER}>"))[0] == 250
        assert (await client.cmd(f"RCPT TO:<{ANNV}>"))[0] == 250
        assert (await client.cmd("DATA"))[0] == 354
        await client.send(HEADERS + b"Subject: in flight\r\n\r\nbody\r\n.\r\n")
        await entered.wait()
        stopping = asyncio.create_task(app.stop())
        await asyncio.sleep(0)
        release.set()
        code, text = await client.reply()
        assert (code, enhanced(text)) == (250, "2.0.0")
        await stopping
    finally:
        if app.services:
            await app.stop()
        await client.close()
    async with App(config) as again:
        stored = HEADERS + b"Subject: in flight\r\n\r\nbody\r\n"
        await assert_delivered(RunningServer(again, config), ANNV, stored)


async def test_invalid_utf8_in_commands(mx: RunningServer, caplog: pytest.LogCaptureFixture) -> None:
    client = await RawClient.open(mx.port("smtp"))
    try:
        await client.send(b"VRFY \xff\xfe@\r\n")
        code, _ = await client.reply()
        assert code in (252, 502)
        await client.send(b"MAIL FROM:<a\xff@example.com> SMTPUTF8\r\n")
        code, text = await client.reply()
        assert (code, enhanced(text)) == (553, "5.1.7")
        assert (await client.cmd(f"MAIL FROM:<{OUTSIDER}> SMTPUTF8"))[0] == 250
        await client.send(b"RCPT TO:<\xc0\xaf@dongnai.gov.vn>\r\n")
        code, text = await client.reply()
        assert (code, enhanced(text)) == (553, "5.1.3")
        assert await client.cmd("NOOP") == (250, "2.0.0 OK")
    finally:
        await client.close()
    assert not [r for r in caplog.records if r.levelno >= 40], caplog.text


async def test_relay_network_client(config: Config) -> None:
    """A client in smtp.relay_networks may use a local sender; foreign
    recipients are accepted into the outbound queue (tests/clients/test_submission.py
    follows such mail to a remote MX)."""
    trusted = replace(config, smtp=replace(config.smtp, relay_networks=["127.0.0.0/8"]))
    async with App(trusted) as app:
        running = RunningServer(app, trusted)
        await running.add_account(ANNV, "pw")
        client = await RawClient.open(running.port("smtp"))
        try:
            assert (await client.cmd(f"MAIL FROM:<{BINH}>"))[0] == 250
            code, text = await client.cmd("RCPT TO:<someone@example.org>")
            assert (code, enhanced(text)) == (250, "2.1.5")
            assert (await client.cmd(f"RCPT TO:<{ANNV}>"))[0] == 250
            assert (await client.cmd("DATA"))[0] == 354
            await client.send(b"Subject: internal app\r\n\r\nreport\r\n.\r\n")
            assert (await client.reply())[0] == 250
        finally:
            await client.close()
        await assert_delivered(running, ANNV, b"Subject: internal app\r\n\r\nreport\r\n")
