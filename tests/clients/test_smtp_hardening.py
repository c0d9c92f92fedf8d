"""Hardening of the SMTP front end (issue 15), each attack over real sockets with
real clients (smtplib, aiosmtplib, a raw socket) and read back over IMAP:

* sender spoofing through header syntax: a header section mail readers could
  read two ways is refused ``550 5.6.0`` on the MX, on submission and from a
  relay network, and IMAP ENVELOPE shows the From the checks saw;
* control characters and unterminated paths in MAIL/RCPT (``501``), NUL in
  DATA (``550 5.6.0``), control characters escaped in the log;
* postmaster@ and abuse@ of every local domain accepted (RFC 5321 section
  4.5.1, RFC 2142) and delivered to ``server.postmaster``;
* recipient harvesting: tarpit after ``smtp.soft_error_limit``, ``421 4.7.0``
  at ``smtp.hard_error_limit``;
* ``smtp.max_connections`` / ``max_connections_per_ip`` (``421 4.7.0``);
* STARTTLS command injection (CVE-2011-0411 class);
* large messages through the DATA spool: stored byte for byte, attachments
  still scanned.

The memory bound of DATA (sessions mid-DATA with 30 MB each) is measured on a
``mailserver serve`` subprocess in tests/clients/test_smtp_memory.py.
"""

from __future__ import annotations

import asyncio
import base64
import imaplib
import logging
import os
import re
import smtplib
import ssl
from collections.abc import AsyncIterator
from dataclasses import replace

import aiosmtplib
import pytest

from mailserver.app import App
from mailserver.config import Config
from mailserver.smtp.server import SmtpService
from mailserver.smtp.submission import SubmissionService
from policy.checks.authentication import DkimResult, authenticate_sync, verify_dkim
from policy.dns import build_resolver
from policy.settings import DnsSettings
from tests.clients.test_smtp_inbound import RawClient, assert_delivered, enhanced
from tests.conftest import RunningServer, eventually
from tests.policy import corpus

ANNV = "annv@dongnai.gov.vn"
BINH = "binhtt@dongnai.gov.vn"
PASSWORD = "Mat-khau-that-dai-2026"
ATTACKER = "attacker@example.org"
BOSS = "giamdoc@dongnai.gov.vn"
TAIL = b"To: <annv@dongnai.gov.vn>\r\nSubject: Chi dao khan\r\nDate: Mon, 5 Jan 2026 08:00:00 +0700\r\n" \
       b"Message-ID: <spoof@example.org>\r\n\r\nChuyen tien ngay.\r\n"

# Header sections a mail reader could read two ways; each claims the local
# director in one reading (storage/headers.py).
SPOOFS: dict[str, bytes] = {
    "space-before-colon": b"From : Giam doc <giamdoc@dongnai.gov.vn>\r\n",
    "tab-before-colon": b"From\t: Giam doc <giamdoc@dongnai.gov.vn>\r\n",
    "line-without-colon": b"X-Mailer Outlook\r\nFrom: Giam doc <giamdoc@dongnai.gov.vn>\r\n",
    "leading-whitespace": b" X-Folded: yes\r\nFrom: Giam doc <giamdoc@dongnai.gov.vn>\r\n",
    "two-from": b"From: <attacker@example.org>\r\nFrom: Giam doc <giamdoc@dongnai.gov.vn>\r\n",
    "address-list-two-ways": b"From: attacker@example.org <giamdoc@dongnai.gov.vn>\r\n",
    "mbox-from-line":
        b"From attacker@example.org Mon Jan  5 08:00:00 2026\r\nFrom: <giamdoc@dongnai.gov.vn>\r\n",
}


def plain(user: str, password: str) -> str:
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


def smtp_send(port: int, sender: str, data: bytes,
              recipients: tuple[str, ...] = (ANNV,)) -> tuple[int, bytes]:
    """smtplib transaction; (code, text) of the DATA reply (250 when accepted)."""
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.example", timeout=60) as smtp:
        try:
            smtp.sendmail(sender, list(recipients), data)
        except smtplib.SMTPDataError as exc:
            return exc.smtp_code, exc.smtp_error
    return 250, b""


def imap_envelopes(port: int, user: str, password: str = PASSWORD) -> list[bytes]:
    """The ENVELOPE of every message in every folder of ``user``, with imaplib."""
    found: list[bytes] = []
    with imaplib.IMAP4("127.0.0.1", port) as imap:
        imap.login(user, password)
        typ, listing = imap.list()
        assert typ == "OK"
        for entry in listing:
            assert isinstance(entry, bytes)
            name = entry.rsplit(b' "/" ', 1)[1] if b' "/" ' in entry else entry.rsplit(b" ", 1)[1]
            typ, data = imap.select(name.decode(), readonly=True)
            if typ != "OK" or data[0] == b"0":
                continue
            typ, fetched = imap.fetch("1:*", "(ENVELOPE)")
            assert typ == "OK"
            found += [item[0] if isinstance(item, tuple) else item for item in fetched]  # type: ignore[misc]
    return [f for f in found if isinstance(f, bytes)]


@pytest.fixture
async def mx(config: Config) -> AsyncIterator[RunningServer]:
    """A fresh install's MX (no DNS answers at all), two accounts."""
    async with App(config) as app:
        running = RunningServer(app, config)
        await running.add_account(ANNV, PASSWORD)
        await running.add_account(BINH, PASSWORD)
        yield running


# -- sender spoofing through header syntax ------------------------------------------
@pytest.mark.parametrize("head", SPOOFS.values(), ids=SPOOFS.keys())
async def test_ambiguous_header_refused_on_the_mx(mx: RunningServer, head: bytes) -> None:
    code, text = await asyncio.to_thread(smtp_send, mx.port("smtp"), ATTACKER, head + TAIL)
    assert (code, text.split(b" ", 1)[0]) == (550, b"5.6.0"), text
    envelopes = await asyncio.to_thread(imap_envelopes, mx.port("imap"), ANNV)
    assert envelopes == [], "nothing stored, in no folder"


@pytest.mark.parametrize("head", [
    b"From: <annv@dongnai.gov.vn>\r\nFrom : Giam doc <giamdoc@dongnai.gov.vn>\r\n",
    b"From: <annv@dongnai.gov.vn>\r\nX-Mailer Outlook\r\nFrom: Giam doc <giamdoc@dongnai.gov.vn>\r\n",
    b" X-Folded: yes\r\nFrom: <annv@dongnai.gov.vn>\r\n",
    b"From: annv@dongnai.gov.vn <giamdoc@dongnai.gov.vn>\r\n",
], ids=["obs-second-from", "no-colon-then-from", "leading-whitespace", "address-list-two-ways"])
async def test_ambiguous_header_refused_on_submission(mx: RunningServer, head: bytes) -> None:
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=mx.port("submission"), start_tls=False)
    await smtp.connect()
    try:
        await smtp.login(ANNV, PASSWORD)
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await smtp.sendmail(ANNV, [BINH], head + TAIL)
        assert refused.value.code == 550 and refused.value.message.startswith("5.6.0"), refused.value
    finally:
        await smtp.quit()
    assert await asyncio.to_thread(imap_envelopes, mx.port("imap"), BINH) == []


@pytest.mark.parametrize("head", [SPOOFS["space-before-colon"], SPOOFS["line-without-colon"],
                                  SPOOFS["two-from"]], ids=["obs", "no-colon", "two-from"])
async def test_ambiguous_header_refused_from_a_relay_network(config: Config, head: bytes) -> None:
    trusted = replace(config, smtp=replace(config.smtp, relay_networks=["127.0.0.0/8"]))
    async with App(trusted) as app:
        running = RunningServer(app, trusted)
        await running.add_account(ANNV, PASSWORD)
        code, text = await asyncio.to_thread(smtp_send, running.port("smtp"), BINH, head + TAIL)
        assert (code, text.split(b" ", 1)[0]) == (550, b"5.6.0"), text
        assert await asyncio.to_thread(imap_envelopes, running.port("imap"), ANNV) == []


async def test_envelope_shows_the_from_that_was_checked(mx: RunningServer) -> None:
    """What passes: the From that DMARC evaluated (Authentication-Results
    header.from) is the one IMAP ENVELOPE shows; a folded local From from
    outside is still refused as unauthenticated (one reading of folding)."""
    clean = b"From: Doi tac\r\n <partner@example.org>\r\n" + TAIL
    assert (await asyncio.to_thread(smtp_send, mx.port("smtp"), "partner@example.org", clean))[0] == 250
    stored = await assert_delivered(mx, ANNV, clean)
    assert b"header.from=example.org" in stored
    (envelope,) = await asyncio.to_thread(imap_envelopes, mx.port("imap"), ANNV)
    assert b'(("Doi tac" NIL "partner" "example.org"))' in envelope, envelope
    folded = b"From:\r\n Giam doc\r\n <giamdoc@dongnai.gov.vn>\r\n" + TAIL
    code, text = await asyncio.to_thread(smtp_send, mx.port("smtp"), ATTACKER, folded)
    assert (code, text.split(b" ", 1)[0]) == (550, b"5.7.1"), text


def test_dkim_verifier_never_raises_on_odd_header_sections() -> None:
    """dkimpy raised IndexError on a first line that starts with white space,
    which the MX answered 451 (retry): it is the sender's fault, a permerror."""
    resolver = build_resolver(DnsSettings(use_servers=False))
    odd = b" X-Folded: yes\r\nDKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=x; h=from; bh=; b=\r\n" \
          b"From: <a@example.org>\r\n\r\nbody\r\n"
    (outcome,) = verify_dkim(resolver, odd)
    assert outcome.result is DkimResult.PERMERROR
    results = authenticate_sync(resolver, ip="192.0.2.1", helo="x.example", sender=ATTACKER, message=odd)
    assert results.dkim[0].result is DkimResult.PERMERROR


# -- control characters and unterminated paths --------------------------------------
@pytest.mark.parametrize(("command", "expected"), [
    ('MAIL FROM:<"a\rX-Injected: yes"@example.org>', (501, "5.1.7")),
    ("MAIL FROM:<a\x00b@example.org>", (501, "5.1.7")),
    ("MAIL FROM:<a\x1b[31m@example.org>", (501, "5.1.7")),
    ("MAIL FROM:<a\x7f@example.org>", (501, "5.1.7")),
    ("MAIL FROM:<a@example.org> SIZE=1\x00", (501, "5.1.7")),
    ("MAIL FROM:<unterminated@example.org", (501, "5.1.7")),
    ('MAIL FROM:<"quoted>"@example.org', (501, "5.1.7")),
    ('MAIL FROM:"tab\there"@example.org', (501, "5.1.7")),
])
async def test_bad_sender_paths(mx: RunningServer, command: str, expected: tuple[int, str],
                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mailserver.smtp")
    client = await RawClient.open(mx.port("smtp"))
    try:
        code, text = await client.cmd(command)
        assert (code, enhanced(text)) == expected, text
        # The session goes on and the next transaction is clean.
        assert (await client.cmd("MAIL FROM:<sender@example.org>"))[0] == 250
        assert (await client.cmd(f"RCPT TO:<{ANNV}>"))[0] == 250
        assert (await client.cmd("DATA"))[0] == 354
        original = b"From: <sender@example.org>\r\nSubject: clean\r\n\r\nok\r\n"
        await client.send(original + b".\r\n")
        assert (await client.reply())[0] == 250
    finally:
        await client.close()
    stored = await assert_delivered(mx, ANNV, original)
    assert stored.startswith(b"Return-Path: <sender@example.org>\r\n")
    assert b"X-Injected" not in stored
    # Log lines carry the client's bytes escaped, never a raw control character.
    lines = [r.getMessage() for r in caplog.records if "bad path" in r.getMessage()]
    assert len(lines) == 1 and not re.search(r"[\x00-\x1f\x7f]", lines[0]), lines


async def test_octets_that_are_not_utf8_are_logged_escaped(mx: RunningServer,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    """aiosmtpd decodes arguments with surrogateescape: a log line that kept such a
    character could not be written as UTF-8 (a strict handler drops it with a
    "Logging error"); printable() shows the octet as \\xNN instead."""
    caplog.set_level(logging.INFO, logger="mailserver.smtp")
    client = await RawClient.open(mx.port("smtp"))
    try:
        await client.send(b"MAIL FROM:<s\xffx@example.org> SMTPUTF8\r\n")
        assert (await client.reply())[0] == 553
        assert (await client.cmd("NOOP"))[0] == 250
    finally:
        await client.close()
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("mailserver")]
    assert any("<s\\xffx@example.org>" in line for line in logged), logged
    for line in logged:
        line.encode("utf-8")  # raises on a lone surrogate


@pytest.mark.parametrize("path", ['<"b\rX-Injected: yes"@dongnai.gov.vn>', "<annv\x00@dongnai.gov.vn>",
                                  "<annv@dongnai.gov.vn", "<annv@dongnai.gov.vn\x0b>"])
async def test_bad_recipient_paths(mx: RunningServer, path: str) -> None:
    client = await RawClient.open(mx.port("smtp"))
    try:
        assert (await client.cmd("MAIL FROM:<sender@example.org>"))[0] == 250
        code, text = await client.cmd(f"RCPT TO:{path}")
        assert (code, enhanced(text)) == (501, "5.1.3"), text
        assert (await client.cmd(f"RCPT TO:<{ANNV}>"))[0] == 250
    finally:
        await client.close()


async def test_nul_in_data_refused(mx: RunningServer) -> None:
    client = await RawClient.open(mx.port("smtp"))
    try:
        assert (await client.cmd("MAIL FROM:<sender@example.org>"))[0] == 250
        assert (await client.cmd(f"RCPT TO:<{ANNV}>"))[0] == 250
        assert (await client.cmd("DATA"))[0] == 354
        await client.send(b"From: <sender@example.org>\r\nSubject: nul\r\n\r\nbefore\x00after\r\n.\r\n")
        code, text = await client.reply()
        assert (code, enhanced(text)) == (550, "5.6.0"), text
        assert (await client.cmd("NOOP"))[0] == 250
    finally:
        await client.close()
    assert await asyncio.to_thread(imap_envelopes, mx.port("imap"), ANNV) == []


@pytest.mark.parametrize("body", [
    b"before\nafter\r\n",  # a bare LF (SMTP smuggling: "\n.\r\n" ends data for some servers)
    b"smuggle\n.\r\nMAIL FROM:<x@example.org>\r\n",
    b"before\rafter\r\n",  # a bare CR
    b"x" * 70 + b"\r\n" + (b"y" * 78 + b"\r\n") * 2000 + b"late\nbare\r\n",  # in a later 64 KB block
], ids=["lf", "smuggling", "cr", "late-block"])
async def test_bare_line_ending_in_data_refused(mx: RunningServer, body: bytes) -> None:
    """The DATA reader decides whether the data is clean of bare CR/LF (protocol.check_lines);
    whatever it says, a bare one anywhere is refused over the wire and nothing is stored."""
    client = await RawClient.open(mx.port("smtp"))
    try:
        assert (await client.cmd("MAIL FROM:<sender@example.org>"))[0] == 250
        assert (await client.cmd(f"RCPT TO:<{ANNV}>"))[0] == 250
        assert (await client.cmd("DATA"))[0] == 354
        await client.send(b"From: <sender@example.org>\r\nSubject: bare\r\n\r\n" + body + b".\r\n")
        code, text = await client.reply()
        assert (code, enhanced(text)) == (550, "5.6.0"), text
        assert (await client.cmd("NOOP"))[0] == 250
    finally:
        await client.close()
    assert await asyncio.to_thread(imap_envelopes, mx.port("imap"), ANNV) == []


# -- found by the fuzzer (tests/property/test_smtp_fuzz.py) --------------------------------
async def test_control_characters_are_not_echoed_in_replies(mx: RunningServer) -> None:
    """aiosmtpd echoes an unknown command in its 500 reply: a CR or NUL of the
    client's reached the reply line raw."""
    client = await RawClient.open(mx.port("smtp"))
    try:
        await client.send(b"X\rY\x00Z\r\n")
        line = await asyncio.wait_for(client.reader.readline(), 30)
        assert line.startswith(b"500 5.5.2 ") and line.endswith(b"\r\n"), line
        assert not re.search(rb"[\x00-\x1f\x7f]", line[:-2]), line
    finally:
        await client.close()


async def test_too_many_unknown_commands_end_with_421(mx: RunningServer) -> None:
    """aiosmtpd closed the session after five unknown commands with a 502;
    RFC 5321 section 3.8: a server closing the channel says 421."""
    client = await RawClient.open(mx.port("smtp"))
    try:
        replies = [await client.cmd(f"BOGUS{i}") for i in range(5)]
        assert [code for code, _ in replies[:4]] == [500] * 4
        assert (replies[4][0], enhanced(replies[4][1])) == (421, "4.7.0"), replies[4]
        assert await asyncio.wait_for(client.reader.read(), 10) == b""
    finally:
        await client.close()


# -- postmaster and abuse --------------------------------------------------------------
async def role_delivery(port: int, recipients: list[str], subject: str) -> bytes:
    client = await RawClient.open(port)
    try:
        assert await client.cmd("MAIL FROM:<>") == (250, "2.1.0 Sender OK")
        for rcpt in recipients:
            code, text = await client.cmd(f"RCPT TO:<{rcpt}>")
            assert (code, enhanced(text)) == (250, "2.1.5"), (rcpt, text)
        assert (await client.cmd("DATA"))[0] == 354
        original = f"From: <mailer-daemon@example.org>\r\nSubject: {subject}\r\n\r\nreport\r\n".encode()
        await client.send(original + b".\r\n")
        assert (await client.reply())[0] == 250
    finally:
        await client.close()
    return original


async def test_postmaster_and_abuse_go_to_the_first_account_by_default(config: Config) -> None:
    two = replace(config, server=replace(config.server, domains=["dongnai.gov.vn", "sotttt.dongnai.gov.vn"]))
    async with App(two) as app:
        running = RunningServer(app, two)
        await running.add_account(ANNV, PASSWORD)  # the first account created
        await running.add_account(BINH, PASSWORD)
        original = await role_delivery(running.port("smtp"), [
            "Postmaster", "postmaster@dongnai.gov.vn", "POSTMASTER@sotttt.dongnai.gov.vn",
            "abuse@dongnai.gov.vn", "abuse@sotttt.dongnai.gov.vn"], "to the postmaster")
        await assert_delivered(running, ANNV, original)
        assert await asyncio.to_thread(imap_envelopes, running.port("imap"), BINH) == []


@pytest.mark.parametrize("where", ["server.postmaster", "web.operators"])
async def test_postmaster_goes_to_the_configured_addresses(config: Config, where: str) -> None:
    if where == "server.postmaster":
        chosen = replace(config, server=replace(config.server, postmaster=[BINH]))
    else:
        chosen = replace(config, web=replace(config.web, operators=[BINH]))
    async with App(chosen) as app:
        running = RunningServer(app, chosen)
        await running.add_account(ANNV, PASSWORD)
        await running.add_account(BINH, PASSWORD)
        original = await role_delivery(running.port("smtp"), ["abuse@dongnai.gov.vn"], "abuse report")
        await assert_delivered(running, BINH, original)
        assert await asyncio.to_thread(imap_envelopes, running.port("imap"), ANNV) == []


# -- recipient harvesting ---------------------------------------------------------------
async def test_harvesting_is_slowed_then_disconnected(
    config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    limits = replace(config, smtp=replace(config.smtp, soft_error_limit=2, hard_error_limit=4))
    caplog.set_level(logging.INFO, logger="mailserver.smtp")
    async with App(limits) as app:
        running = RunningServer(app, limits)
        await running.add_account(ANNV, PASSWORD)
        client = await RawClient.open(running.port("smtp"))
        try:
            assert (await client.cmd("MAIL FROM:<harvester@example.org>"))[0] == 250
            for guess in ("admin", "info", "ketoan"):
                code, text = await client.cmd(f"RCPT TO:<{guess}@dongnai.gov.vn>")
                assert (code, enhanced(text)) == (550, "5.1.1")
            # Over the soft limit a right guess is as slow as a wrong one.
            assert (await client.cmd(f"RCPT TO:<{ANNV}>"))[0] == 250
            code, text = await client.cmd("RCPT TO:<vanthu@dongnai.gov.vn>")
            assert (code, enhanced(text)) == (421, "4.7.0"), text
            assert await asyncio.wait_for(client.reader.read(), 10) == b"", "closed after 421"
        finally:
            await client.close()
    logged = caplog.text
    assert "slowing down" in logged and "recipients refused, closing" in logged


# -- connection limits -------------------------------------------------------------------
async def greeting(port: int, tls: bool = False) -> tuple[bytes, asyncio.StreamReader, asyncio.StreamWriter]:
    context = None
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    return await asyncio.wait_for(reader.readline(), 30), reader, writer


@pytest.mark.parametrize("listener", ["smtp", "submission", "submissions"])
async def test_connections_per_address_are_limited(config: Config, listener: str) -> None:
    limited = replace(config, smtp=replace(config.smtp, max_connections_per_ip=3))
    async with App(limited) as app:
        port = app.addresses[listener][1]
        tls = listener == "submissions"
        open_ = [await greeting(port, tls) for _ in range(3)]
        assert all(line.startswith(b"220 ") for line, _, _ in open_)
        line, reader, writer = await greeting(port, tls)
        assert line == b"421 4.7.0 Too many connections, try again later\r\n"
        assert await asyncio.wait_for(reader.read(), 10) == b""
        await close_all([writer])
        # A session that ends makes room for another.
        open_[0][2].write(b"QUIT\r\n")
        assert (await open_[0][1].readline()).startswith(b"221")
        await eventually(lambda: app_sessions(app, listener) < 3, "sessions closed")
        line, _, writer = await greeting(port, tls)
        assert line.startswith(b"220 ")
        await close_all([writer, *(w for _, _, w in open_)])


async def close_all(writers: list[asyncio.StreamWriter]) -> None:
    for writer in writers:
        writer.close()
    for writer in writers:
        try:
            await writer.wait_closed()
        except (ConnectionError, ssl.SSLError):
            pass


def app_sessions(app: App, listener: str) -> int:
    kind = SmtpService if listener == "smtp" else SubmissionService
    (service,) = [s for s in app.services if isinstance(s, kind)]
    assert isinstance(service, SmtpService | SubmissionService)
    assert service.limits.connections is not None
    return service.limits.connections.total


async def test_total_connections_are_limited_and_relay_networks_exempt_per_address(config: Config) -> None:
    limited = replace(config, smtp=replace(config.smtp, max_connections=4, max_connections_per_ip=2,
                                          relay_networks=["127.0.0.1/32"]))
    async with App(limited) as app:
        port = app.addresses["smtp"][1]
        # 127.0.0.1 is in relay_networks: past the per-address limit, not past the total.
        open_ = [await greeting(port) for _ in range(4)]
        assert all(line.startswith(b"220 ") for line, _, _ in open_)
        line, _, writer = await greeting(port)
        assert line.startswith(b"421 4.7.0 ")
        await close_all([writer, *(w for _, _, w in open_)])


# -- STARTTLS command injection (CVE-2011-0411 class) ------------------------------------
@pytest.mark.parametrize("listener", ["smtp", "submission"])
async def test_commands_pipelined_after_starttls_are_discarded(mx: RunningServer, listener: str) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", mx.port(listener))
    try:
        assert (await reader.readline()).startswith(b"220 ")
        writer.write(b"EHLO client.example\r\n")
        while not (await reader.readline()).startswith(b"250 "):
            pass
        # A man in the middle appends plain-text commands to the client's STARTTLS.
        writer.write(b"STARTTLS\r\nEHLO mitm.example\r\nMAIL FROM:<mitm@example.org>\r\n")
        assert (await reader.readline()).startswith(b"220 ")
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        await writer.start_tls(context)
        # Had the injected EHLO and MAIL run inside TLS, this RCPT would be
        # answered after their two replies, and accepted.
        writer.write(b"RCPT TO:<annv@dongnai.gov.vn>\r\n")
        line = await asyncio.wait_for(reader.readline(), 30)
        assert line.startswith(b"503 "), line
        writer.write(b"NOOP\r\n")
        assert (await asyncio.wait_for(reader.readline(), 30)).startswith(b"250 ")
    finally:
        await close_all([writer])


# -- large messages through the DATA spool -----------------------------------------------
async def test_large_message_spooled_and_stored_byte_for_byte(mx: RunningServer) -> None:
    attachment = os.urandom(3 * 1024 * 1024)
    data = corpus.message("Ho so lon", sender="partner@example.org",
                          attachments=[("hoso.bin", attachment, "application/octet-stream")])
    data = data.replace(b"\n", b"\r\n").replace(b"To: nhan@", b"To: annv@")
    code, text = await asyncio.to_thread(smtp_send, mx.port("smtp"), "partner@example.org", data)
    assert code == 250, text
    await assert_delivered(mx, ANNV, data)


async def test_classified_attachment_in_a_large_message_still_refused(mx: RunningServer) -> None:
    padding = os.urandom(2 * 1024 * 1024)
    data = corpus.message("Tai lieu", sender="partner@example.org", attachments=[
        ("so-lieu.bin", padding, "application/octet-stream"),
        ("qd.docx", corpus.docx(corpus.stamped("MẬT")), corpus.DOCX),
    ]).replace(b"\n", b"\r\n")
    code, text = await asyncio.to_thread(smtp_send, mx.port("smtp"), "partner@example.org", data)
    assert (code, text.split(b" ", 1)[0]) == (550, b"5.7.1"), text
    assert await asyncio.to_thread(imap_envelopes, mx.port("imap"), ANNV) == []


async def test_large_messages_take_turns_within_the_memory_budget(config: Config) -> None:
    """Spooled messages beyond smtp.max_data_in_memory wait for their turn on
    disk (limits.MemoryBudget) and are all delivered, each byte for byte."""
    small = replace(config, smtp=replace(config.smtp, max_data_in_memory=1024 * 1024))
    async with App(small) as app:
        running = RunningServer(app, small)
        await running.add_account(ANNV, PASSWORD)
        messages = [
            corpus.message(f"Ho so {i}", sender="partner@example.org", attachments=[
                ("hoso.bin", os.urandom(1536 * 1024), "application/octet-stream")]).replace(b"\n", b"\r\n")
            for i in range(4)
        ]
        results = await asyncio.gather(*(
            asyncio.to_thread(smtp_send, running.port("smtp"), "partner@example.org", m) for m in messages))
        assert [code for code, _ in results] == [250] * 4, results
        account = await running.app.store.get_account(ANNV)
        assert account is not None
        stored = set()
        for folder in await running.app.store.list_folders(account.id):
            for info in await running.app.store.list_messages(account.id, folder.id):
                stored.add(await running.app.store.read_message(account.id, folder.id, info.uid))
        assert all(any(s.endswith(m) for s in stored) for m in messages)
