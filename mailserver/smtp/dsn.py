"""Delivery status notifications (bounces and delay notices), RFC 3464.

The notice is a ``multipart/report; report-type=delivery-status`` (RFC 6522)
with three parts:

1. ``text/plain``: what happened, in Vietnamese first and English after it
   (staff read their mail in Vietnamese; foreign senders get English too);
2. ``message/delivery-status`` (RFC 3464 section 2): ``Reporting-MTA`` and
   ``Arrival-Date``, then one block per recipient with ``Final-Recipient``,
   ``Action`` (``failed`` or ``delayed``), ``Status`` (RFC 3463),
   ``Remote-MTA``, ``Diagnostic-Code`` and ``Last-Attempt-Date``;
3. ``text/rfc822-headers``: the header of the original message (not its
   body: RFC 3462 section 2 allows either, and headers avoid returning large
   or confidential content).

The notice goes out with the null reverse-path (RFC 5321 section 4.5.5) and
``Auto-Submitted: auto-replied`` (RFC 3834), so it is never bounced again.
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import Final

from mailserver.headers import mailbox, unstructured

_UNSAFE: Final = re.compile(r"[\x00-\x1f\x7f]")
FAILED: Final = "failed"
DELAYED: Final = "delayed"


@dataclass(frozen=True, slots=True)
class RecipientReport:
    recipient: str
    action: str
    """``failed`` or ``delayed`` (RFC 3464 section 2.3.3)."""
    status: str
    """RFC 3463 code, e.g. ``5.1.1``."""
    diagnostic: str = ""
    """``smtp; 550 5.1.1 No such user`` or ""."""
    remote_mta: str = ""
    last_attempt: datetime | None = None


def _clean(text: str) -> str:
    return _UNSAFE.sub(" ", text).strip()


def _original_headers(original: bytes) -> bytes:
    end = original.find(b"\r\n\r\n")
    head = original if end < 0 else original[: end + 2]
    return head if head.endswith(b"\r\n") else head + b"\r\n"


def _human_text(hostname: str, reports: Sequence[RecipientReport], retry_until: datetime | None) -> str:
    failed = [r for r in reports if r.action == FAILED]
    delayed = [r for r in reports if r.action == DELAYED]

    def listing(items: Sequence[RecipientReport]) -> list[str]:
        return [f"  <{r.recipient}>: {_clean(r.diagnostic) or r.status}" for r in items]

    vi = [f"Đây là thông báo tự động của hệ thống thư điện tử {hostname}.", ""]
    en = [f"This is an automatic message from the mail system at {hostname}.", ""]
    if failed:
        vi += ["Thư của quý vị KHÔNG chuyển được đến các địa chỉ sau:", *listing(failed), ""]
        en += ["Your message could NOT be delivered to the following recipients:", *listing(failed), ""]
    if delayed:
        until = format_datetime(retry_until) if retry_until else ""
        vi += [
            "Thư của quý vị CHƯA chuyển được đến các địa chỉ sau; hệ thống vẫn đang thử lại"
            + (f" đến {until}" if until else "")
            + ". Quý vị không cần gửi lại thư.",
            *listing(delayed),
            "",
        ]
        en += [
            "Your message has NOT YET been delivered to the following recipients; the mail system"
            + " keeps trying" + (f" until {until}" if until else "") + ". You do not need to resend it.",
            *listing(delayed),
            "",
        ]
    vi += ["Phần đầu thư gốc được đính kèm bên dưới.", ""]
    en += ["The header of your original message is attached below."]
    return "\r\n".join([*vi, "-" * 60, "", *en]) + "\r\n"


def _status_fields(
    hostname: str,
    arrival: datetime,
    reports: Sequence[RecipientReport],
    retry_until: datetime | None,
) -> str:
    blocks = [f"Reporting-MTA: dns; {hostname}\r\nArrival-Date: {format_datetime(arrival)}\r\n"]
    for r in reports:
        lines = [
            f"Final-Recipient: rfc822; {_clean(r.recipient)}",
            f"Action: {r.action}",
            f"Status: {r.status}",
        ]
        if r.remote_mta:
            lines.append(f"Remote-MTA: dns; {_clean(r.remote_mta)}")
        if r.diagnostic:
            lines.append(f"Diagnostic-Code: {_clean(r.diagnostic)}")
        if r.last_attempt is not None:
            lines.append(f"Last-Attempt-Date: {format_datetime(r.last_attempt)}")
        if r.action == DELAYED and retry_until is not None:
            lines.append(f"Will-Retry-Until: {format_datetime(retry_until)}")
        blocks.append("\r\n".join(lines) + "\r\n")
    return "\r\n".join(blocks)


def build_dsn(
    *,
    hostname: str,
    recipient: str,
    original: bytes,
    reports: Sequence[RecipientReport],
    arrival: datetime,
    now: datetime,
    retry_until: datetime | None = None,
) -> bytes:
    """The complete notice (CRLF line ends) to ``recipient`` (the original sender)."""
    boundary = f"=_dsn_{secrets.token_hex(12)}"
    delayed_only = all(r.action == DELAYED for r in reports)
    subject = (
        "Thư chậm chuyển / Delayed Mail (still being retried)"
        if delayed_only
        else "Thư không chuyển được / Undelivered Mail Returned to Sender"
    )
    text = _human_text(hostname, reports, retry_until).encode("utf-8")
    text_b64 = base64.encodebytes(text).replace(b"\n", b"\r\n")
    headers = _original_headers(original)
    header_cte = b"7bit" if headers.isascii() else b"8bit"
    # RFC 2047 words that keep the spaces of the Vietnamese text (mailserver/headers.py).
    top = (
        mailbox("From", "Hệ thống thư điện tử", f"MAILER-DAEMON@{hostname}")
        + f"To: <{recipient}>\r\n"
        + unstructured("Subject", subject)
        + f"Date: {format_datetime(now)}\r\n"
        f"Message-ID: <{secrets.token_hex(16)}@{hostname}>\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\r\n'
        "\r\n"
        "This is a MIME-encapsulated delivery status notification.\r\n"
    ).encode()
    parts = [
        top,
        f"--{boundary}\r\n".encode(),
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Language: vi, en\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + text_b64,
        f"--{boundary}\r\n".encode(),
        b"Content-Type: message/delivery-status\r\n\r\n"
        + _status_fields(hostname, arrival, reports, retry_until).encode("utf-8"),
        f"--{boundary}\r\n".encode(),
        b"Content-Type: text/rfc822-headers\r\nContent-Transfer-Encoding: " + header_cte + b"\r\n\r\n"
        + headers,
        f"--{boundary}--\r\n".encode(),
    ]
    return b"".join(parts)
