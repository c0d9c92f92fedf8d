"""Submission (RFC 6409) and the outbound queue end to end: a real App on port 0,
clients swaks, aiosmtplib (implicit TLS) and a raw socket; remote delivery to a
second aiosmtpd server on loopback (the "remote MX"), reached through
``outbound.static_routes`` or through MX records served by tests/dnsstub.py.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import imaplib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import aiosmtplib
import dkim
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from mailserver.app import App
from mailserver.auth import hash_password
from mailserver.config import Config
from mailserver.smtp.outbound_settings import OutboundSettings
from pki.dkim import key_directory
from pki.keystore import DkimKeyStore
from pki.tls import ensure_certificate, server_context
from policy.settings import DnsSettings
from storage.api import INBOX
from storage.queue import RecipientState
from tests.clients.test_smtp_inbound import RawClient, enhanced
from tests.conftest import RunningServer, eventually, make_config
from tests.dnsstub import DnsStub

ANNV = "annv@dongnai.gov.vn"
BINH = "binhtt@dongnai.gov.vn"
PASSWORD = "Mat-khau-that-dai-2026"
OUTSIDE = "partner@example.org"


# -- the remote MX -----------------------------------------------------------------
@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    tls: bool


@dataclass
class RemoteMx:
    """A recording aiosmtpd server with scripted replies."""

    tls_context: ssl.SSLContext | None
    messages: list[Received] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_replies: list[str] = field(default_factory=list)
    always_defer: bool = False
    port: int = 0
    server: asyncio.Server | None = None

    async def handle_RCPT(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self.rcpt_replies.get(address.lower())
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        if self.always_defer:
            return "451 4.3.0 Try again later"
        if self.data_replies:
            return self.data_replies.pop(0)
        self.messages.append(
            Received(str(envelope.mail_from), list(envelope.rcpt_tos),
                     bytes(envelope.original_content or b""), session.ssl is not None)
        )
        return "250 2.0.0 Queued as remote-1"

    async def start(self, port: int = 0) -> int:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: SMTP(self, hostname="mx.example.org", tls_context=self.tls_context,
                         enable_SMTPUTF8=True, decode_data=False, loop=loop),
            "127.0.0.1", port, reuse_address=True,
        )
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None


@pytest.fixture
def remote_tls(tmp_path: Path) -> ssl.SSLContext:
    cert, key = tmp_path / "remote" / "cert.pem", tmp_path / "remote" / "key.pem"
    ensure_certificate(cert, key, "mx.example.org")
    return server_context(cert, key)


@pytest.fixture
async def remote(remote_tls: ssl.SSLContext) -> AsyncIterator[RemoteMx]:
    mx = RemoteMx(remote_tls)
    await mx.start()
    try:
        yield mx
    finally:
        await mx.stop()


def outbound_config(data_dir: Path, routes: dict[str, str] | None = None, **outbound: Any) -> Config:
    base = make_config(data_dir)
    settings = dict(retry_base=0.1, retry_cap=0.3, poll_interval=0.1, delay_warning_hours=0.0, timeout=10.0)
    settings.update(outbound)
    return replace(base, outbound=OutboundSettings(static_routes=dict(routes or {}), **settings))


@pytest.fixture
async def app_with_remote(tmp_path: Path, remote: RemoteMx) -> AsyncIterator[RunningServer]:
    config = outbound_config(tmp_path / "data", {"example.org": f"127.0.0.1:{remote.port}"})
    async with App(config) as app:
        running = RunningServer(app, config)
        await running.add_account(ANNV, PASSWORD, "Nguyễn Văn An")
        await running.add_account(BINH, PASSWORD, "Trần Thị Bình")
        yield running


# -- helpers -----------------------------------------------------------------------


def message(sender: str, to: list[str], subject: str = "Báo cáo tuần", body: str = "Xin chào") -> bytes:
    msg = email.message.EmailMessage(policy=email.policy.SMTP)
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    msg.set_content(body)
    return msg.as_bytes()


async def submit(server: RunningServer, sender: str, to: list[str], data: bytes,
                 user: str = ANNV) -> None:
    """Authenticated submission with aiosmtplib over plain 587 (loopback)."""
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=server.port("submission"), start_tls=False)
    await smtp.connect()
    try:
        await smtp.login(user, PASSWORD)
        await smtp.sendmail(sender, to, data)
    finally:
        await smtp.quit()


async def inbox_messages(server: RunningServer, address: str) -> list[bytes]:
    store = server.app.store
    account = await store.get_account(address)
    assert account is not None
    folder = await store.get_folder(account.id, INBOX)
    return [await store.read_message(account.id, folder.id, m.uid)
            for m in await store.list_messages(account.id, folder.id)]


async def queue_empty(server: RunningServer) -> bool:
    return not await server.app.queue.list()


def parse(data: bytes) -> Message:
    return email.message_from_bytes(data, policy=email.policy.default)


def plain_auth(user: str, password: str) -> str:
    import base64

    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


# -- submission, STARTTLS and implicit TLS --------------------------------------------
async def test_swaks_starttls_to_colleague_and_outside(tmp_path: Path, remote: RemoteMx) -> None:
    """STARTTLS + AUTH PLAIN with swaks, with clear-text AUTH disabled; one
    message to a colleague (read back over IMAP) and to an outside address."""
    config = outbound_config(tmp_path / "data", {"example.org": f"127.0.0.1:{remote.port}"})
    config = replace(config, submission=replace(config.submission, allow_plaintext_auth=False))
    async with App(config) as app:
        running = RunningServer(app, config)
        await running.add_account(ANNV, PASSWORD)
        await running.add_account(BINH, PASSWORD)
        # The domain's DKIM keys, as `mailserver dkim keygen` makes them: both algorithms.
        keys = DkimKeyStore(key_directory(config.dkim, config.data_dir))
        for selector, algorithm in (("s2026r", "rsa"), ("s2026e", "ed25519")):
            keys.generate("dongnai.gov.vn", selector, algorithm,
                          retire_after=date.today() + timedelta(days=7))
        published = {k.dns_name + ".": k.txt.encode() for k in keys.keys()}
        proc = await asyncio.create_subprocess_exec(
            "swaks", "--server", f"127.0.0.1:{running.port('submission')}", "-tls",
            "--auth", "PLAIN", "--auth-user", ANNV, "--auth-password", PASSWORD,
            "--from", ANNV, "--to", f"{BINH},{OUTSIDE}",
            "--header", "Subject: Hop giao ban", "--body", "Noi dung cuoc hop",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        transcript = out.decode("utf-8", "replace")
        assert proc.returncode == 0, transcript
        assert "235 2.7.0" in transcript
        await eventually(lambda: bool(remote.messages), "remote delivery")
        await eventually(lambda: queue_empty(running), "queue drained")
        (got,) = remote.messages
        assert got.rcpt_tos == [OUTSIDE] and got.mail_from == ANNV
        assert got.tls, "opportunistic STARTTLS to the remote MX"
        head = got.content.split(b"\r\n\r\n", 1)[0]
        assert b"with ESMTPSA" in head
        assert PASSWORD.encode() not in got.content and b"PLAIN" not in head
        assert b"Return-Path" not in head
        parsed = parse(got.content)
        assert parsed["Message-ID"] and parsed["Date"]
        # The outside MX gets it DKIM-signed twice; each signature verifies
        # with dkimpy against the published key.
        assert got.content.count(b"DKIM-Signature:") == 2
        for index in range(2):
            assert dkim.DKIM(got.content).verify(
                idx=index, dnsfunc=lambda name, timeout=5: published.get(name.decode())
            ), f"signature {index}"

        def read_over_imap() -> bytes:
            with imaplib.IMAP4("127.0.0.1", running.port("imap")) as imap:
                imap.login(BINH, PASSWORD)
                imap.select("INBOX")
                typ, data = imap.fetch("1", "(BODY.PEEK[])")
                assert typ == "OK"
                return bytes(data[0][1])  # type: ignore[index]

        local = await asyncio.to_thread(read_over_imap)
        assert b"Subject: Hop giao ban" in local and b"with ESMTPSA" in local
        assert local.startswith(b"Return-Path: <annv@dongnai.gov.vn>\r\n")
        # The same Message-ID for both copies: one message, two routes.
        assert parse(local)["Message-ID"] == parsed["Message-ID"]


async def test_implicit_tls_with_aiosmtplib(app_with_remote: RunningServer, remote: RemoteMx) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=app_with_remote.port("submissions"),
                           use_tls=True, tls_context=context)
    await smtp.connect()
    await smtp.ehlo()
    assert "auth" in smtp.esmtp_extensions and "starttls" not in smtp.esmtp_extensions
    await smtp.login(ANNV, PASSWORD)
    await smtp.sendmail(ANNV, [OUTSIDE], message(ANNV, [OUTSIDE], "Qua TLS"))
    await smtp.quit()
    await eventually(lambda: bool(remote.messages), "remote delivery")
    assert b"with ESMTPSA (TLS" in remote.messages[0].content


async def test_auth_needs_tls_unless_loopback_plaintext_allowed(tmp_path: Path) -> None:
    config = make_config(tmp_path / "data")
    strict = make_config(tmp_path / "strict")
    strict = replace(strict, submission=replace(strict.submission, allow_plaintext_auth=False))
    async with App(strict) as app:
        await RunningServer(app, strict).add_account(ANNV, PASSWORD)
        client = await RawClient.open(app.addresses["submission"][1])
        try:
            code, text = await client.cmd("EHLO client.example")
            assert code == 250 and "AUTH" not in text and "STARTTLS" in text
            code, text = await client.cmd(f"AUTH PLAIN {plain_auth(ANNV, PASSWORD)}")
            assert (code, enhanced(text)) == (538, "5.7.11")
            code, text = await client.cmd(f"MAIL FROM:<{ANNV}>")
            assert (code, enhanced(text)) == (530, "5.7.0")
        finally:
            await client.close()
    async with App(config) as app:  # conftest default: allowed on loopback
        await RunningServer(app, config).add_account(ANNV, PASSWORD)
        client = await RawClient.open(app.addresses["submission"][1])
        try:
            code, text = await client.cmd("EHLO client.example")
            assert "AUTH PLAIN LOGIN" in text
            code, text = await client.cmd(f"MAIL FROM:<{ANNV}>")
            assert (code, enhanced(text)) == (530, "5.7.0")
            code, text = await client.cmd(f"AUTH PLAIN {plain_auth(ANNV, PASSWORD)}")
            assert (code, enhanced(text)) == (235, "2.7.0")
            code, text = await client.cmd(f"AUTH PLAIN {plain_auth(ANNV, PASSWORD)}")
            assert code == 503
        finally:
            await client.close()


async def test_auth_login_and_failures(server: RunningServer) -> None:
    import base64

    await server.add_account(ANNV, PASSWORD)
    await server.app.store.create_account(BINH, "Bình", hash_password(PASSWORD), must_change_password=True)
    b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
    client = await RawClient.open(server.port("submission"))
    try:
        code, text = await client.cmd("AUTH LOGIN")
        assert code == 334 and base64.b64decode(text) == b"Username:"
        code, text = await client.cmd(b64(ANNV))
        assert code == 334 and base64.b64decode(text) == b"Password:"
        code, text = await client.cmd(b64("wrong-password"))
        assert (code, enhanced(text)) == (535, "5.7.8")
        code, text = await client.cmd(f"AUTH PLAIN {plain_auth(BINH, PASSWORD)}")
        assert (code, enhanced(text)) == (535, "5.7.8")
        # RFC 5321 section 4.2: ASCII reply text, naming the portal's full
        # URL (web.public_url, derived from server.hostname when unset).
        assert text.isascii() and "Mat khau ban dau" in text
        assert "https://mx.test.dongnai.gov.vn/password" in text
        code, text = await client.cmd("AUTH CRAM-MD5")
        assert (code, enhanced(text)) == (504, "5.5.4")
        code, text = await client.cmd(f"AUTH PLAIN {plain_auth(ANNV, PASSWORD)}")
        assert code == 235
    finally:
        await client.close()


# -- sender alignment, headers, rate limits ----------------------------------------------
async def test_spoofed_sender_refused(app_with_remote: RunningServer) -> None:
    client = await RawClient.open(app_with_remote.port("submission"))
    try:
        assert (await client.cmd(f"AUTH PLAIN {plain_auth(ANNV, PASSWORD)}"))[0] == 235
        code, text = await client.cmd(f"MAIL FROM:<{BINH}>")
        assert (code, enhanced(text)) == (553, "5.7.1")
        assert (await client.cmd(f"MAIL FROM:<{ANNV.upper()}>"))[0] == 250
        assert (await client.cmd(f"RCPT TO:<{OUTSIDE}>"))[0] == 250
        assert (await client.cmd("DATA"))[0] == 354
        await client.send(f"From: <{BINH}>\r\nSubject: gia mao\r\n\r\nx\r\n.\r\n".encode())
        code, text = await client.reply()
        assert (code, enhanced(text)) == (553, "5.7.1")
        assert (await client.cmd(f"MAIL FROM:<{ANNV}>"))[0] == 250
        assert (await client.cmd(f"RCPT TO:<{BINH}>"))[0] == 250
        assert (await client.cmd("DATA"))[0] == 354
        await client.send(f"From: A <{ANNV}>\r\nSender: <{BINH}>\r\n\r\nx\r\n.\r\n".encode())
        assert (await client.reply())[0] == 553
    finally:
        await client.close()
    assert await app_with_remote.app.queue.list() == []
    assert await inbox_messages(app_with_remote, BINH) == []


async def test_message_id_and_date_added(app_with_remote: RunningServer) -> None:
    await submit(app_with_remote, ANNV, [BINH], f"From: {ANNV}\r\nSubject: bare\r\n\r\nhi\r\n".encode())
    (stored,) = await inbox_messages(app_with_remote, BINH)
    parsed = parse(stored)
    assert parsed["Message-ID"].endswith("@mx.test.dongnai.gov.vn>")
    assert parsed["Date"]
    received = [v for k, v in parsed.items() if k == "Received"]
    # Clear-text AUTH on loopback: ESMTPA (RFC 3848); no mechanism, no user name.
    assert len(received) == 1 and " with ESMTPA id " in received[0]
    assert ANNV not in received[0].split(" for ")[0]


async def test_rate_limits(tmp_path: Path) -> None:
    config = outbound_config(tmp_path / "data", max_messages_per_hour=2, max_recipients_per_hour=3)
    async with App(config) as app:
        running = RunningServer(app, config)
        await running.add_account(ANNV, PASSWORD)
        await running.add_account(BINH, PASSWORD)
        for _ in range(2):
            await submit(running, ANNV, [BINH], message(ANNV, [BINH]))
        client = await RawClient.open(running.port("submission"))
        try:
            assert (await client.cmd(f"AUTH PLAIN {plain_auth(ANNV, PASSWORD)}"))[0] == 235
            code, text = await client.cmd(f"MAIL FROM:<{ANNV}>")
            assert (code, enhanced(text)) == (450, "4.7.1")
        finally:
            await client.close()
        client = await RawClient.open(running.port("submission"))
        try:
            assert (await client.cmd(f"AUTH PLAIN {plain_auth(BINH, PASSWORD)}"))[0] == 235
            assert (await client.cmd(f"MAIL FROM:<{BINH}>"))[0] == 250
            for _ in range(3):
                assert (await client.cmd(f"RCPT TO:<{ANNV}>"))[0] == 250
            code, text = await client.cmd(f"RCPT TO:<{ANNV}>")
            assert (code, enhanced(text)) == (450, "4.7.1")
        finally:
            await client.close()


# -- the queue: retries, bounces, restarts ------------------------------------------------
async def test_temporary_failure_then_delivered_once(
    app_with_remote: RunningServer, remote: RemoteMx
) -> None:
    remote.data_replies = ["451 4.3.0 Try again later", "452 4.2.2 Full for now"]
    await submit(app_with_remote, ANNV, [OUTSIDE, "second@example.org"],
                 message(ANNV, [OUTSIDE, "second@example.org"]))
    await eventually(lambda: queue_empty(app_with_remote), "queue drained")
    assert len(remote.messages) == 1
    assert sorted(remote.messages[0].rcpt_tos) == [OUTSIDE, "second@example.org"]
    assert remote.data_replies == []
    assert await inbox_messages(app_with_remote, ANNV) == []  # no notice for a success


async def test_permanent_failure_bounces_to_local_inbox(
    app_with_remote: RunningServer, remote: RemoteMx
) -> None:
    remote.rcpt_replies["nobody@example.org"] = "550 5.1.1 No such user here"
    original = message(ANNV, ["nobody@example.org", OUTSIDE], "Công văn số 12")
    await submit(app_with_remote, ANNV, ["nobody@example.org", OUTSIDE], original)

    async def bounced() -> bool:
        return bool(await inbox_messages(app_with_remote, ANNV))

    await eventually(bounced, "DSN in the sender's INBOX")
    await eventually(lambda: queue_empty(app_with_remote), "queue drained")
    assert [m.rcpt_tos for m in remote.messages] == [[OUTSIDE]]
    (dsn_bytes,) = await inbox_messages(app_with_remote, ANNV)
    assert dsn_bytes.startswith(b"Return-Path: <>\r\n")
    report = parse(dsn_bytes)
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    assert report["Auto-Submitted"] == "auto-replied"
    text, status, headers = report.get_payload()  # type: ignore[misc]
    assert text.get_content_type() == "text/plain"
    human = text.get_content()
    assert "Thư của quý vị KHÔNG chuyển được" in human
    assert human.index("Thư của quý vị") < human.index("could NOT be delivered")
    assert status.get_content_type() == "message/delivery-status"
    per_message, per_recipient = status.get_payload()
    assert per_message["Reporting-MTA"] == "dns; mx.test.dongnai.gov.vn"
    assert per_recipient["Final-Recipient"] == "rfc822; nobody@example.org"
    assert per_recipient["Action"] == "failed"
    assert per_recipient["Status"] == "5.1.1"
    assert per_recipient["Diagnostic-Code"].startswith("smtp; 550 5.1.1")
    assert per_recipient["Remote-MTA"] == "dns; 127.0.0.1"
    assert headers.get_content_type() == "text/rfc822-headers"
    assert "Công văn số 12" in str(parse(headers.get_payload(decode=True))["Subject"])


async def test_delay_notice_then_expiry(tmp_path: Path, remote: RemoteMx) -> None:
    remote.always_defer = True
    config = outbound_config(
        tmp_path / "data", {"example.org": f"127.0.0.1:{remote.port}"},
        delay_warning_hours=0.5 / 3600, max_queue_days=1.5 / 86400,
    )
    async with App(config) as app:
        running = RunningServer(app, config)
        await running.add_account(ANNV, PASSWORD)
        await submit(running, ANNV, [OUTSIDE], message(ANNV, [OUTSIDE]))

        async def two_notices() -> bool:
            return len(await inbox_messages(running, ANNV)) >= 2

        await eventually(two_notices, "delay notice and bounce")
        await eventually(lambda: queue_empty(running), "queue drained")
        delayed, failed = (parse(m) for m in await inbox_messages(running, ANNV))
        assert delayed.get_payload()[1].get_payload()[1]["Action"] == "delayed"
        final = failed.get_payload()[1].get_payload()[1]
        assert final["Action"] == "failed" and final["Status"] == "4.4.7"
        assert remote.messages == []


async def test_queue_survives_restart(tmp_path: Path, remote: RemoteMx) -> None:
    port = remote.port
    await remote.stop()  # the remote MX is down
    config = outbound_config(tmp_path / "data", {"example.org": f"127.0.0.1:{port}"},
                             retry_base=60.0, retry_cap=60.0)
    async with App(config) as app:
        running = RunningServer(app, config)
        await running.add_account(ANNV, PASSWORD)
        await submit(running, ANNV, [OUTSIDE], message(ANNV, [OUTSIDE], "Sống sót khởi động lại"))

        async def tried() -> bool:
            queued = await app.queue.list()
            return bool(queued) and queued[0].recipients[0].attempts >= 1

        await eventually(tried, "first attempt failed")
        (queued,) = await app.queue.list()
        assert queued.recipients[0].state is RecipientState.QUEUED
        assert "cannot connect" in queued.recipients[0].last_error
    await remote.start(port)
    async with App(config) as app:
        running = RunningServer(app, config)
        await app.queue.retry(None, queued.created_at)  # due now, not in 60 s
        app.queue_runner.wake()  # type: ignore[union-attr]
        await eventually(lambda: queue_empty(running), "delivered after restart")
    assert len(remote.messages) == 1
    assert "Sống sót".encode() not in remote.messages[0].content  # encoded header, but:
    assert parse(remote.messages[0].content)["Subject"] == "Sống sót khởi động lại"


async def test_mx_lookup_through_dns_stub(tmp_path: Path, remote: RemoteMx) -> None:
    records = {
        ("example.net", "MX"): ["10 mx1.example.net.", "20 mx2.example.net."],
        ("mx1.example.net", "A"): ["127.0.0.2"],  # nothing listens there: next MX
        ("mx2.example.net", "A"): ["127.0.0.1"],
        ("nullmx.example.net", "MX"): ["0 ."],
    }
    with DnsStub(records) as stub:
        config = outbound_config(tmp_path / "data", port=remote.port, timeout=5.0)
        config = replace(config, dns=DnsSettings(nameservers=[stub.address], timeout=2.0))
        async with App(config) as app:
            running = RunningServer(app, config)
            await running.add_account(ANNV, PASSWORD)
            await submit(running, ANNV, ["ban@example.net", "x@nullmx.example.net"],
                         message(ANNV, ["ban@example.net"]))
            await eventually(lambda: queue_empty(running), "queue drained")
            assert [m.rcpt_tos for m in remote.messages] == [["ban@example.net"]]
            (bounce,) = await inbox_messages(running, ANNV)
            per_recipient = parse(bounce).get_payload()[1].get_payload()[1]
            assert per_recipient["Status"] == "5.1.10"
        assert ("example.net", "MX") in stub.queries


async def test_require_tls_refuses_plaintext(tmp_path: Path) -> None:
    plain = RemoteMx(None)
    await plain.start()
    try:
        config = outbound_config(tmp_path / "data", {"example.org": f"127.0.0.1:{plain.port}"},
                                 require_tls=["example.org"], retry_base=60.0)
        async with App(config) as app:
            running = RunningServer(app, config)
            await running.add_account(ANNV, PASSWORD)
            await submit(running, ANNV, [OUTSIDE], message(ANNV, [OUTSIDE]))

            async def refused() -> bool:
                queued = await app.queue.list()
                return bool(queued) and queued[0].recipients[0].attempts >= 1

            await eventually(refused, "attempt made")
            (queued,) = await app.queue.list()
            assert queued.recipients[0].status == "4.7.10"
            assert plain.messages == []
    finally:
        await plain.stop()


async def test_relay_network_client_uses_queue_and_remote_bounce(
    tmp_path: Path, remote: RemoteMx
) -> None:
    """An MX client in smtp.relay_networks relays into the queue; the bounce
    for a remote sender is queued with the null sender and never bounced again."""
    remote.rcpt_replies["nobody@example.org"] = "550 5.1.1 No such user here"
    config = outbound_config(tmp_path / "data", {"example.org": f"127.0.0.1:{remote.port}",
                                                 "example.com": f"127.0.0.1:{remote.port}"})
    config = replace(config, smtp=replace(config.smtp, relay_networks=["127.0.0.0/8"]))
    async with App(config) as app:
        running = RunningServer(app, config)
        client = await RawClient.open(running.port("smtp"))
        try:
            assert (await client.cmd("MAIL FROM:<app@example.com>"))[0] == 250
            assert (await client.cmd(f"RCPT TO:<{OUTSIDE}>"))[0] == 250
            assert (await client.cmd("RCPT TO:<nobody@example.org>"))[0] == 250
            assert (await client.cmd("DATA"))[0] == 354
            await client.send(b"From: app@example.com\r\nSubject: relay\r\n\r\nhi\r\n.\r\n")
            assert (await client.reply())[0] == 250
        finally:
            await client.close()
        await eventually(lambda: len(remote.messages) >= 2, "delivery and bounce")
        await eventually(lambda: queue_empty(running), "queue drained")
        delivered, bounce = remote.messages
        assert delivered.rcpt_tos == [OUTSIDE] and delivered.mail_from == "app@example.com"
        assert bounce.mail_from in ("", "<>") and bounce.rcpt_tos == ["app@example.com"]
        assert parse(bounce.content).get_content_type() == "multipart/report"


async def test_smarthost_with_auth(tmp_path: Path, remote_tls: ssl.SSLContext) -> None:
    """outbound.relay_host takes all remote mail; AUTH after STARTTLS with the
    password read from relay_password_file."""
    from aiosmtpd.smtp import AuthResult, LoginPassword

    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                      data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        logins.append((data.login, data.password))
        return AuthResult(success=data.password == b"relay-secret")

    relay = RemoteMx(remote_tls)
    loop = asyncio.get_running_loop()
    relay.server = await loop.create_server(
        lambda: SMTP(relay, hostname="relay.example", tls_context=remote_tls, authenticator=authenticator,
                     auth_require_tls=True, loop=loop),
        "127.0.0.1", 0,
    )
    port = relay.server.sockets[0].getsockname()[1]
    secret = tmp_path / "relay.pw"
    secret.write_text("relay-secret\n")
    try:
        config = outbound_config(tmp_path / "data", {"example.org": "127.0.0.1:9"},
                                 relay_host=f"127.0.0.1:{port}", relay_username="relay",
                                 relay_password_file=str(secret))
        async with App(config) as app:
            running = RunningServer(app, config)
            await running.add_account(ANNV, PASSWORD)
            await submit(running, ANNV, [OUTSIDE, "x@elsewhere.test"], message(ANNV, [OUTSIDE]))
            await eventually(lambda: queue_empty(running), "queue drained")
        assert logins and all(login == (b"relay", b"relay-secret") for login in logins)
        assert sorted(r for m in relay.messages for r in m.rcpt_tos) == [OUTSIDE, "x@elsewhere.test"]
        assert all(m.tls for m in relay.messages)
    finally:
        await relay.stop()
