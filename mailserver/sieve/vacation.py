"""Vacation replies (RFC 5230, RFC 6131) under the rules of RFC 3834.

``should_reply`` says whether a message may be answered at all; the caller
then asks ``storage.sievestate`` whether this sender had a reply with the same
handle within the period (RFC 5230 section 4.2) and builds the reply with
``build_reply``. Never answered:

* the null reverse-path (RFC 3834 section 2, RFC 5230 section 4.5);
* mail marked ``Auto-Submitted`` other than ``no`` (RFC 3834 section 5);
* list and bulk mail: ``List-Id`` or another ``List-*`` field (RFC 2369,
  2919) or ``Precedence: bulk / list / junk`` (RFC 3834 section 2);
* mail from the user's own addresses, and from the addresses RFC 5230
  section 4.6 lists (``owner-*``, ``*-request``, ``MAILER-DAEMON``,
  ``LISTSERV``, ``majordomo``);
* mail whose To, Cc, Bcc, Resent-To, Resent-Cc or Resent-Bcc does not name the
  user or one of ``:addresses`` (RFC 5230 section 4.5).

The reply goes to the envelope sender with a null reverse-path (RFC 5230
section 5.6 / RFC 3834 section 3.3), carries ``Auto-Submitted: auto-replied``
(RFC 3834 section 5), ``In-Reply-To`` and ``References`` (section 3.1.4),
a subject of "Trả lời tự động / Auto: " and the original subject when the script
gives none (section 3.1.5, Vietnamese first), and is DKIM-signed on its way
out like every message the server sends.
"""

from __future__ import annotations

import email.policy
import re
import uuid
from collections.abc import Iterable
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses
from typing import Final

from mailserver.sieve.interpreter import Vacation
from mailserver.sieve.message import MessageView

__all__ = ["build_reply", "reply_from", "should_reply"]

_SYSTEM_SENDER: Final = re.compile(
    r"^(?:owner-.*|.*-request|mailer-daemon|listserv|majordomo)$", re.IGNORECASE
)
_RECIPIENT_FIELDS: Final = ("to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc")
FOOTER: Final = "\r\n\r\n-- \r\nĐây là thư trả lời tự động. / This is an automatic reply (RFC 3834).\r\n"


def should_reply(
    message: MessageView, sender: str, owner: str, recipient: str, vacation: Vacation
) -> str | None:
    """Why no reply may be sent (for the log), or None when one may."""
    if not sender:
        return "null sender"
    for value in message.header("Auto-Submitted"):
        if value.split(";")[0].strip().lower() != "no":
            return "Auto-Submitted"
    if message.exists("List-Id") or any(
        message.exists(f"List-{n}") for n in ("Post", "Unsubscribe", "Help", "Subscribe", "Owner", "Archive")
    ):
        return "list mail"
    if any(v.strip().lower() in ("bulk", "list", "junk") for v in message.header("Precedence")):
        return "bulk mail"
    ours = {a.lower() for a in (owner, recipient, *vacation.addresses) if a}
    if vacation.from_:
        ours.update(addr.lower() for _name, addr in getaddresses([vacation.from_]) if addr)
    if sender.lower() in ours:
        return "own address"
    if _SYSTEM_SENDER.match(sender.rpartition("@")[0] or sender):
        return "system or list address"
    named = {
        addr.lower() for _n, addr in getaddresses([v for f in _RECIPIENT_FIELDS for v in message.raw(f)])
    }
    if not named & ours:
        return "user not named in To/Cc"
    return None


def reply_from(given: str | None, owner: str) -> str:
    """The reply's From: ``:from`` when it names the mailbox itself (a display
    name may be added), else the mailbox's address: a script must not sign
    replies as somebody else (the reply is DKIM-signed for our domain)."""
    if given:
        pairs = getaddresses([given])
        if len(pairs) == 1 and pairs[0][1].lower() == owner.lower():
            return given
    return owner


def _clean(text: str) -> str:
    return " ".join(text.split())


def build_reply(
    message: MessageView,
    vacation: Vacation,
    *,
    sender: str,
    owner: str,
    hostname: str,
    now: datetime,
) -> bytes:
    """The reply, CRLF-ended, ready for the outbound queue or an INBOX."""
    # Non-ASCII header text as RFC 2047 encoded words; raw UTF-8 only when an
    # address itself needs it (RFC 6532).
    ascii_addresses = sender.isascii() and (vacation.from_ or owner).isascii()
    reply = EmailMessage(policy=email.policy.SMTP if ascii_addresses else email.policy.SMTPUTF8)
    reply["From"] = reply_from(vacation.from_, owner)
    reply["To"] = sender
    original = _clean(message.header("Subject")[0]) if message.header("Subject") else ""
    reply["Subject"] = _clean(vacation.subject) if vacation.subject else f"Trả lời tự động / Auto: {original}"
    reply["Date"] = format_datetime(now)
    reply["Message-ID"] = f"<{uuid.uuid4().hex}@{hostname}>"
    msgid = message.raw("Message-ID")
    if msgid:
        reply["In-Reply-To"] = msgid[0].strip()
        refs = [r for r in (message.raw("References") or [""])[0].split() if r]
        reply["References"] = " ".join(_tail(refs, 10) + [msgid[0].strip()])
    reply["Auto-Submitted"] = "auto-replied (vacation)"
    if vacation.mime:
        # RFC 5230 section 4.4: the reason is a MIME part (headers, blank line, body).
        part = email.message_from_string(vacation.reason.replace("\r\n", "\n"), policy=email.policy.SMTPUTF8)
        if part.is_multipart():
            reply.set_content("")  # replaced below
            reply.clear_content()
        ctype = part.get_content_type()
        payload = part.get_payload(decode=True)
        if ctype.startswith("text/") and isinstance(payload, bytes):
            reply.set_content(
                payload.decode(part.get_content_charset() or "utf-8", "replace") + FOOTER,
                subtype=ctype.split("/")[1],
                charset="utf-8",
            )
        else:
            reply.set_content(vacation.reason + FOOTER, charset="utf-8")
    else:
        reply.set_content(vacation.reason + FOOTER, charset="utf-8")
    data = reply.as_bytes()
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _tail(items: Iterable[str], n: int) -> list[str]:
    return list(items)[-n:]
