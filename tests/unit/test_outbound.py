"""Submission decisions and notices without sockets: rate limiter, sender
alignment, header completion, RFC 3464 notices, reply status parsing."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailserver.smtp import dsn
from mailserver.smtp.hooks import NoSigner, OwnAddressOnly
from mailserver.smtp.queue import _status_of, from_domain
from mailserver.smtp.sasl import is_loopback
from mailserver.smtp.submit import RateLimiter, complete_headers
from policy import codes
from policy.checks import MessageView, Resources
from policy.checks.sender import SenderCheck
from policy.context import PolicyContext, SessionInfo
from policy.extract.walk import Analysis
from policy.settings import PolicySettings
from storage.api import Account

ACCOUNT = Account(
    id=1, address="annv@dongnai.gov.vn", name="An", password_hash="x", must_change_password=False,
    password_changed_at=None, disabled=False, created_at=datetime(2025, 1, 1, tzinfo=UTC),
)


def test_rate_limiter_sliding_window() -> None:
    now = [1000.0]
    limiter = RateLimiter(2, 3, clock=lambda: now[0])
    assert limiter.may_send("a") and limiter.may_address("a", 3) and not limiter.may_address("a", 4)
    limiter.record("a", 2)
    limiter.record("a", 1)
    assert not limiter.may_send("a") and not limiter.may_address("a", 1)
    assert limiter.may_send("b")
    now[0] += 3601
    assert limiter.may_send("a") and limiter.may_address("a", 3)
    unlimited = RateLimiter(0, 0)
    unlimited.record("a", 10_000)
    assert unlimited.may_send("a") and unlimited.may_address("a", 10_000)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (b"From: An <annv@dongnai.gov.vn>\r\n", None),
        (b"From: An <ANNV@dongnai.gov.vn>\r\n", None),
        (b"From: B <binh@dongnai.gov.vn>\r\n", codes.S553_FROM_NOT_OWNED),
        (b"From: annv@dongnai.gov.vn, binh@dongnai.gov.vn\r\n", codes.S553_FROM_NOT_OWNED),
        (b"From: annv@dongnai.gov.vn\r\nSender: binh@dongnai.gov.vn\r\n", codes.S553_FROM_NOT_OWNED),
        (b"Subject: no from\r\n", codes.S550_NO_FROM),
        (b"From: undisclosed-recipients:;\r\n", codes.S550_NO_FROM),
    ],
)
async def test_check_headers(headers: bytes, expected: codes.Reply | None, tmp_path: Path) -> None:
    """From/Sender alignment, the sender check's DATA stage on submission."""

    async def may_send_as(address: str) -> bool:
        return await OwnAddressOnly().may_send_as(ACCOUNT, address)

    check = SenderCheck(Resources(PolicySettings(), tmp_path))
    ctx = PolicyContext(SessionInfo("127.0.0.1", authenticated=ACCOUNT.address), may_send_as=may_send_as)
    data = headers + b"\r\nbody\r\n"
    verdict = await check.data(ctx, MessageView(data, email.message_from_bytes(data), Analysis()))
    assert (verdict.reply if verdict is not None else None) == expected


def test_complete_headers() -> None:
    when = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
    bare = b"From: annv@dongnai.gov.vn\r\n\r\nFrom: body line\r\nMessage-ID: not a header\r\n"
    done = complete_headers(bare, hostname="mx.example", when=when)
    parsed = email.message_from_bytes(done, policy=email.policy.default)
    assert parsed["Message-ID"].endswith("@mx.example>") and parsed["Date"].datetime == when
    assert done.endswith(bare)
    full = b"Message-ID: <a@b>\r\nDate: Sat, 01 Mar 2025 08:00:00 +0000\r\nFrom: x@y\r\n\r\n"
    assert complete_headers(full, hostname="mx.example", when=when) == full


def test_dsn_structure() -> None:
    original = b"From: annv@dongnai.gov.vn\r\nSubject: =?utf-8?b?VGjGsA==?=\r\n\r\nsecret body\r\n"
    now = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    notice = dsn.build_dsn(
        hostname="mx.example", recipient="annv@dongnai.gov.vn", original=original,
        reports=[
            dsn.RecipientReport("a@example.org", dsn.FAILED, "5.1.1", "smtp; 550 5.1.1 unknown\r\nx",
                                "mx.example.org", now),
            dsn.RecipientReport("b@example.org", dsn.DELAYED, "4.4.1", "", "", None),
        ],
        arrival=now, now=now, retry_until=now,
    )
    assert b"secret body" not in notice
    msg = email.message_from_bytes(notice, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/report"
    text, status, headers = msg.get_payload()  # type: ignore[misc]
    content = text.get_content()
    assert content.index("Thư của quý vị KHÔNG") < content.index("could NOT be delivered")
    assert "CHƯA chuyển được" in content and "NOT YET been delivered" in content
    blocks = status.get_payload()
    assert blocks[0]["Reporting-MTA"] == "dns; mx.example"
    assert blocks[1]["Diagnostic-Code"] == "smtp; 550 5.1.1 unknown  x"
    assert blocks[2]["Action"] == "delayed" and blocks[2]["Will-Retry-Until"]
    assert headers.get_content_type() == "text/rfc822-headers"
    assert "Undelivered" in msg["Subject"] and msg["Auto-Submitted"] == "auto-replied"


@pytest.mark.parametrize(
    ("code", "text", "status"),
    [
        (550, "5.1.1 No such user", "5.1.1"),
        (451, "4.7.1 Greylisted", "4.7.1"),
        (550, "No such user", "5.0.0"),
        (450, "5.1.1 mismatched class", "4.0.0"),
        (250, "2.0.0 OK", "2.0.0"),
    ],
)
def test_status_of(code: int, text: str, status: str) -> None:
    assert _status_of(code, text) == status


def test_small_helpers() -> None:
    assert from_domain(b"From: =?utf-8?q?An?= <annv@DongNai.gov.vn>\r\n\r\n") == "dongnai.gov.vn"
    assert from_domain(b"Subject: x\r\n\r\n") == ""
    assert NoSigner().sign(b"x", "d") == b"x"
    assert is_loopback("127.0.0.5") and is_loopback("::1") and is_loopback("::ffff:127.0.0.1")
    assert not is_loopback("192.0.2.1") and not is_loopback("nonsense")
