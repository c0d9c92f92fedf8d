"""mailserver.smtp.delivery and the reply plumbing of mailserver.smtp.handler,
without sockets: pure functions table-driven, Inbound over a real SQLite store."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from mailserver.auth import hash_password
from mailserver.config import Config, ConfigError, ServerSettings, SmtpSettings
from mailserver.smtp.delivery import (
    Client,
    Inbound,
    Transaction,
    find_bare_line_ending,
    in_networks,
    parse_networks,
    protocol_name,
    received_header,
    return_path_header,
)
from mailserver.smtp.protocol import add_enhanced_code
from policy import codes
from policy.codes import Reply
from storage.api import INBOX, MailStore

DOMAIN = "dongnai.gov.vn"
CLIENT = Client(sid="abc123", ip="203.0.113.7", helo="mx.example.com", rdns="mx.example.com")


# -- codes ----------------------------------------------------------------------
def test_reply_formats_code_enhanced_text() -> None:
    assert str(codes.S550_NO_SUCH_USER) == "550 5.1.1 No such user here"
    assert str(codes.S554_RELAY_DENIED).startswith("554 5.7.1 ")
    assert codes.S451_LOCAL_ERROR.temporary and not codes.S451_LOCAL_ERROR.positive


@pytest.mark.parametrize(
    ("code", "enhanced", "text"),
    [(550, "4.1.1", "class mismatch"), (250, "2.0", "short"), (99, "2.0.0", "x"), (250, "2.0.0", "a\r\nb")],
)
def test_reply_rejects_inconsistent_values(code: int, enhanced: str, text: str) -> None:
    with pytest.raises(ValueError):
        Reply(code, enhanced, text)


def test_every_named_reply_is_valid() -> None:
    named = [v for k, v in vars(codes).items() if k[:1] == "S" and k[1:4].isdigit()]
    assert len(named) > 20
    for reply in named:
        assert isinstance(reply, Reply)
        assert str(reply.code) in repr(reply)


# -- aiosmtpd's built-in replies get enhanced codes (RFC 2034 section 3) ---------
@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("503 Error: send HELO first", "503 5.5.1 Send EHLO or HELO first"),
        ("552 Error: Too much mail data", "552 5.3.4 Message size exceeds fixed maximum message size"),
        (
            "552 Error: message size exceeds fixed maximum message size",
            "552 5.3.4 Message size exceeds fixed maximum message size",
        ),
        ('500 Error: command "FOO" not recognized', '500 5.5.2 command "FOO" not recognized'),
        ("501 Syntax: MAIL FROM: <address>", "501 5.5.4 Syntax: MAIL FROM: <address>"),
        ("250 OK", "250 2.0.0 OK"),
        ("221 Bye", "221 2.0.0 Bye"),
        ("354 End data with <CR><LF>.<CR><LF>", "354 End data with <CR><LF>.<CR><LF>"),
        ("550 5.1.1 No such user here", "550 5.1.1 No such user here"),
        ("553 5.1.3 Error: malformed address", "553 5.1.3 Error: malformed address"),
        ("250-8BITMIME", "250-8BITMIME"),
    ],
)
def test_add_enhanced_code(line: str, expected: str) -> None:
    assert add_enhanced_code(line) == expected


# -- DATA content ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "offset"),
    [
        (b"Subject: x\r\n\r\nbody\r\n", None),
        (b"", None),
        (b"Subject: x\r\n\r\nbare\nLF\r\n", 18),
        (b"Subject: x\r\n\r\nbare\rCR\r\n", 18),
        (b"a\r\r\n", 1),
        (b"a\r\n.\n", 4),  # the smuggling end marker <LF>.<LF>
        (b"a\n.\r\n", 1),
    ],
)
def test_find_bare_line_ending(data: bytes, offset: int | None) -> None:
    assert find_bare_line_ending(data) == offset


# -- trace fields (RFC 5321 section 4.4, RFC 3848, RFC 6531 section 3.7.3) -------
@pytest.mark.parametrize(
    ("client", "smtputf8", "expected"),
    [
        (CLIENT, False, "ESMTP"),
        (replace(CLIENT, tls="TLSv1.3 X"), False, "ESMTPS"),
        (replace(CLIENT, authenticated="a@b"), False, "ESMTPA"),
        (replace(CLIENT, tls="TLSv1.3 X", authenticated="a@b"), False, "ESMTPSA"),
        (CLIENT, True, "UTF8SMTP"),
        (replace(CLIENT, tls="TLSv1.3 X"), True, "UTF8SMTPS"),
        (replace(CLIENT, esmtp=False), False, "SMTP"),
    ],
)
def test_protocol_name(client: Client, smtputf8: bool, expected: str) -> None:
    assert protocol_name(client, smtputf8) == expected


def test_received_header_single_recipient() -> None:
    when = datetime(2024, 6, 11, 10, 0, 0, tzinfo=timezone(timedelta(hours=7)))
    txn = Transaction(sender="x@example.com", recipients=["annv@dongnai.gov.vn"])
    header = received_header(CLIENT, txn, hostname="mx.dongnai.gov.vn", message_id="abc1230001", when=when)
    assert header == (
        b"Received: from mx.example.com (mx.example.com [203.0.113.7])\r\n"
        b"\tby mx.dongnai.gov.vn with ESMTP id abc1230001\r\n"
        b"\tfor <annv@dongnai.gov.vn>;\r\n"
        b"\tTue, 11 Jun 2024 10:00:00 +0700\r\n"
    )


def test_received_header_hides_recipients_when_several_and_sanitizes_helo() -> None:
    client = replace(
        CLIENT, helo="evil (name)\r\nX-Injected: 1", rdns=None, ip="2001:db8::1", tls="TLSv1.3 C"
    )
    txn = Transaction(sender="", recipients=["a@dongnai.gov.vn", "b@dongnai.gov.vn"])
    header = received_header(client, txn, hostname="mx", message_id="id1", when=datetime.now(UTC))
    text = header.decode()
    assert "for <" not in text
    assert text.startswith("Received: from evil__name___X-Injected:_1 ([IPv6:2001:db8::1])\r\n")
    assert "\tby mx with ESMTPS (TLSv1.3 C) id id1;\r\n" in text
    assert text.count("\r\n") == 3 and "\n" not in text.replace("\r\n", "")


def test_return_path() -> None:
    assert return_path_header("a@example.com") == b"Return-Path: <a@example.com>\r\n"
    assert return_path_header("") == b"Return-Path: <>\r\n"
    assert return_path_header("nguyễn@ví-dụ.vn") == "Return-Path: <nguyễn@ví-dụ.vn>\r\n".encode()


# -- networks -------------------------------------------------------------------
def test_relay_networks() -> None:
    nets = parse_networks(["10.0.0.0/8", "2001:db8::/32"])
    assert in_networks("10.1.2.3", nets)
    assert in_networks("::ffff:10.1.2.3", nets)
    assert in_networks("2001:db8::5", nets)
    assert not in_networks("127.0.0.1", nets)
    assert not in_networks("not-an-ip", nets)
    assert not in_networks("127.0.0.1", parse_networks([]))
    with pytest.raises(ConfigError, match="relay_networks"):
        parse_networks(["10.0.0.0/33"])


# -- Inbound over the real store --------------------------------------------------
def _config(tmp_path: Path, **smtp: object) -> Config:
    return Config(
        server=ServerSettings(hostname="mx.test", domains=[DOMAIN, "sở.vn"], data_dir=str(tmp_path)),
        smtp=replace(SmtpSettings(), **smtp),  # type: ignore[arg-type]
    )


async def _account(store: MailStore, address: str) -> int:
    account = await store.create_account(address, "T", hash_password("pw"), must_change_password=False)
    return account.id


@pytest.mark.parametrize(
    ("sender", "smtputf8", "client", "expected"),
    [
        ("", False, CLIENT, codes.S250_SENDER_OK),
        ("someone@example.com", False, CLIENT, codes.S250_SENDER_OK),
        ("annv@dongnai.gov.vn", False, CLIENT, codes.S553_SENDER_NOT_ALLOWED),
        ("AnnV@DongNai.Gov.VN", False, CLIENT, codes.S553_SENDER_NOT_ALLOWED),
        ("x@xn--s-lym.vn", False, CLIENT, codes.S553_SENDER_NOT_ALLOWED),  # A-label of sở.vn
        ("annv@dongnai.gov.vn", False, replace(CLIENT, authenticated="annv@dongnai.gov.vn"),
         codes.S250_SENDER_OK),
        ("annv@dongnai.gov.vn", False, replace(CLIENT, ip="10.0.0.9"), codes.S250_SENDER_OK),
        ("nguyễn@example.com", False, CLIENT, codes.S553_NEEDS_SMTPUTF8),
        ("nguyễn@example.com", True, CLIENT, codes.S250_SENDER_OK),
        ("no-domain", False, CLIENT, codes.S553_BAD_SENDER_SYNTAX),
        ("bad\udcffutf8@example.com", True, CLIENT, codes.S553_BAD_SENDER_SYNTAX),
    ],
)
async def test_check_sender(
    tmp_path: Path, store: MailStore, sender: str, smtputf8: bool, client: Client, expected: Reply
) -> None:
    """MAIL FROM: the syntax (Inbound), then the sender rules (the policy's sender check)."""
    inbound = Inbound(_config(tmp_path, relay_networks=["10.0.0.0/8"]), store)
    reply, txn = await inbound.open_transaction(client, sender, smtputf8)
    assert reply == expected and (txn is not None) == expected.positive


async def test_check_recipient(tmp_path: Path, store: MailStore) -> None:
    annv = await _account(store, "annv@dongnai.gov.vn")
    inbound = Inbound(_config(tmp_path, max_recipients=3), store)
    txn = Transaction(sender="x@example.com")
    assert await inbound.add_recipient(CLIENT, txn, "nobody@dongnai.gov.vn") == codes.S550_NO_SUCH_USER
    assert await inbound.add_recipient(CLIENT, txn, "annv@example.org") == codes.S554_RELAY_DENIED
    assert await inbound.add_recipient(CLIENT, txn, "annv@[127.0.0.1]") == codes.S554_RELAY_DENIED
    assert await inbound.add_recipient(CLIENT, txn, "nguyễn@dongnai.gov.vn") == codes.S553_NEEDS_SMTPUTF8
    assert txn.recipients == [] and txn.account_ids == []
    # RFC 5321 section 4.5.1: postmaster is accepted even without an account of
    # that name, for the null sender too: it goes to the first account created.
    bounce = Transaction(sender="")
    assert await inbound.add_recipient(CLIENT, bounce, "postmaster") == codes.S250_RECIPIENT_OK
    assert bounce.account_ids == [annv] and bounce.recipients == ["postmaster"]
    # Case-insensitive local part and domain; the same account twice is stored once.
    assert await inbound.add_recipient(CLIENT, txn, "AnnV@DONGNAI.gov.vn") == codes.S250_RECIPIENT_OK
    assert await inbound.add_recipient(CLIENT, txn, "annv@dongnai.gov.vn.") == codes.S250_RECIPIENT_OK
    assert txn.account_ids == [annv]
    assert len(txn.recipients) == 2
    assert await inbound.add_recipient(CLIENT, txn, "annv@dongnai.gov.vn") == codes.S250_RECIPIENT_OK
    assert await inbound.add_recipient(CLIENT, txn, "annv@dongnai.gov.vn") == codes.S452_TOO_MANY_RECIPIENTS


async def test_postmaster_routes_to_postmaster_account(tmp_path: Path, store: MailStore) -> None:
    pm = await _account(store, "postmaster@dongnai.gov.vn")
    inbound = Inbound(_config(tmp_path), store)
    txn = Transaction(sender="")
    assert await inbound.add_recipient(CLIENT, txn, "Postmaster") == codes.S250_RECIPIENT_OK
    assert await inbound.add_recipient(CLIENT, txn, "POSTMASTER@dongnai.gov.vn") == codes.S250_RECIPIENT_OK
    assert txn.account_ids == [pm]


async def test_relay_network_client_gets_temporary_refusal_for_foreign_domains(
    tmp_path: Path, store: MailStore
) -> None:
    inbound = Inbound(_config(tmp_path, relay_networks=["203.0.113.0/24"]), store)
    txn = Transaction(sender="x@example.com")
    assert await inbound.add_recipient(CLIENT, txn, "a@example.org") == codes.S451_NO_OUTBOUND
    outsider = replace(CLIENT, ip="198.51.100.1")
    other = Transaction(sender="x@example.com")
    assert await inbound.add_recipient(outsider, other, "a@example.org") == codes.S554_RELAY_DENIED
    assert other.recipients == other.remote == []


async def test_disabled_account_refused(tmp_path: Path, store: MailStore) -> None:
    account_id = await _account(store, "old@dongnai.gov.vn")
    await store.set_disabled(account_id, True)
    inbound = Inbound(_config(tmp_path), store)
    txn = Transaction(sender="x@example.com")
    assert await inbound.add_recipient(CLIENT, txn, "old@dongnai.gov.vn") == codes.S550_MAILBOX_DISABLED


async def test_deliver_prepends_trace_fields_to_every_inbox(tmp_path: Path, store: MailStore) -> None:
    a = await _account(store, "a@dongnai.gov.vn")
    b = await _account(store, "b@dongnai.gov.vn")
    inbound = Inbound(_config(tmp_path), store)
    txn = Transaction(sender="x@example.com")
    for rcpt in ("a@dongnai.gov.vn", "b@dongnai.gov.vn"):
        assert await inbound.add_recipient(CLIENT, txn, rcpt) == codes.S250_RECIPIENT_OK
    body = b"Subject: hi\r\n\r\nline\r\n.\r\n"
    reply, result = await inbound.deliver(CLIENT, txn, body, message_id="m1", when=datetime.now(UTC))
    assert reply.code == 250 and reply.enhanced == "2.0.0" and "m1" in reply.text
    assert result is not None and {p[0] for p in result.placed} == {a, b}
    for account_id, folder_id, uid in result.placed:
        folder = await store.get_folder(account_id, INBOX)
        assert folder.id == folder_id
        stored = await store.read_message(account_id, folder_id, uid)
        assert stored.startswith(b"Return-Path: <x@example.com>\r\nReceived: from mx.example.com ")
        assert stored.endswith(b" +0000\r\n" + body)
        assert b"for <" not in stored


async def test_deliver_refuses_bare_line_endings(tmp_path: Path, store: MailStore) -> None:
    await _account(store, "a@dongnai.gov.vn")
    inbound = Inbound(_config(tmp_path), store)
    txn = Transaction(sender="x@example.com")
    await inbound.add_recipient(CLIENT, txn, "a@dongnai.gov.vn")
    reply, result = await inbound.deliver(
        CLIENT, txn, b"Subject: x\r\n\r\nsmuggled\n.\nMAIL FROM:<y>\r\n",
        message_id="m", when=datetime.now(UTC),
    )
    assert reply == codes.S550_BARE_LINE_ENDING and result is None
