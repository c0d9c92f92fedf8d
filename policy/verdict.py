"""What a policy check decides: ``Verdict`` per check, ``Outcome`` per message.

A check answers each SMTP stage (RFC 5321 section 3.3: connection, MAIL,
RCPT, DATA) with a ``Verdict``. The reply text stays generic; ``reason`` is
the detail for the log (maddy's ``SMTPError`` Message vs Reason). Only the
SMTP handler turns ``Verdict.reply`` into aiosmtpd's status string.

Combination (``combine``): the first REJECT wins; otherwise a TEMPFAIL (a
check that crashed or timed out) defers the whole message; otherwise
quarantines accumulate; otherwise the message is accepted, possibly tagged
(``TAG``: headers and a score, and ``junk`` asking delivery to the Junk
folder). A verdict applies to the whole message: all recipients or none.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

from policy import codes
from policy.codes import Reply


class Action(enum.StrEnum):
    ACCEPT = "accept"
    TAG = "tag"
    """Accept, adding headers / a score (and maybe deliver to Junk)."""
    QUARANTINE = "quarantine"
    """Accept for the client (250) but store apart, not in the mailboxes."""
    TEMPFAIL = "tempfail"
    REJECT = "reject"


_RANK = {Action.ACCEPT: 0, Action.TAG: 1, Action.QUARANTINE: 2, Action.TEMPFAIL: 3, Action.REJECT: 4}


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Action
    reply: Reply
    check: str
    """Name of the check that decided (``classified``, ``spam``...)."""
    reason: str = ""
    """Why, for the log and the quarantine record; never sent to the client."""
    summary: str = "pass"
    """Short result for the ``X-Policy`` header, e.g. ``3.2/tag`` or ``clean``."""
    headers: tuple[tuple[str, str], ...] = ()
    """Header fields to add on acceptance (name, unfolded value)."""
    junk: bool = False
    """Deliver to the recipients' Junk folder instead of INBOX."""

    @property
    def refuses(self) -> bool:
        return self.action in (Action.REJECT, Action.TEMPFAIL)


def accept(
    check: str, summary: str = "pass", *, headers: tuple[tuple[str, str], ...] = (), reason: str = ""
) -> Verdict:
    return Verdict(Action.ACCEPT, codes.S250_OK, check, reason, summary, headers)


def tag(
    check: str,
    summary: str,
    *,
    headers: tuple[tuple[str, str], ...] = (),
    junk: bool = False,
    reason: str = "",
) -> Verdict:
    return Verdict(Action.TAG, codes.S250_OK, check, reason, summary, headers, junk)


def reject(check: str, reply: Reply, reason: str, summary: str = "fail") -> Verdict:
    return Verdict(Action.REJECT, reply, check, reason, summary)


def quarantine(check: str, reason: str, summary: str = "quarantine") -> Verdict:
    return Verdict(Action.QUARANTINE, codes.S250_DELIVERED, check, reason, summary)


def tempfail(check: str, reason: str, reply: Reply = codes.S451_POLICY_UNAVAILABLE) -> Verdict:
    return Verdict(Action.TEMPFAIL, reply, check, reason, "error")


@dataclass(frozen=True, slots=True)
class Outcome:
    """The pipeline's answer for one stage: what to reply and, after DATA,
    how to deliver."""

    action: Action
    reply: Reply
    verdicts: tuple[Verdict, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    """Fields to prepend to the message when it is accepted or quarantined."""
    decided_by: Verdict | None = None
    """The verdict that set ``action`` (None when everything passed)."""
    reasons: tuple[str, ...] = field(default=())
    """Every non-empty reason, ``check: reason``, for the log / quarantine record."""

    @property
    def accepted(self) -> bool:
        return self.action in (Action.ACCEPT, Action.TAG, Action.QUARANTINE)

    @property
    def quarantine(self) -> bool:
        return self.action is Action.QUARANTINE

    @property
    def junk(self) -> bool:
        return self.action in (Action.ACCEPT, Action.TAG) and any(v.junk for v in self.verdicts)

    def header_bytes(self) -> bytes:
        """The header fields as CRLF-ended lines to prepend (RFC 5322 section 2.2)."""
        return b"".join(f"{name}: {_header_safe(value)}\r\n".encode() for name, value in self.headers)


def _header_safe(value: str) -> str:
    # Header values we build are ASCII by construction; never let a CR/LF in.
    return " ".join(value.split()).encode("ascii", "replace").decode("ascii")


def combine(verdicts: Sequence[Verdict], ok: Reply = codes.S250_OK) -> Outcome:
    """Fold verdicts (in check order) into one Outcome; see the module doc."""
    decided: Verdict | None = None
    for verdict in verdicts:
        if verdict.action is Action.REJECT:
            decided = verdict  # the first REJECT wins
            break
        if decided is None or _RANK[verdict.action] > _RANK[decided.action]:
            if verdict.action is not Action.ACCEPT:
                decided = verdict
    action = decided.action if decided is not None else Action.ACCEPT
    if action is Action.QUARANTINE or action is Action.TAG or decided is None:
        reply = ok
    else:
        reply = decided.reply
    headers: list[tuple[str, str]] = []
    if verdicts:
        summary = "; ".join(f"{v.check}={v.summary}" for v in verdicts)
        headers.append(("X-Policy", summary))
    for v in verdicts:
        headers.extend(v.headers)
    reasons = tuple(f"{v.check}: {v.reason}" for v in verdicts if v.reason)
    return Outcome(action, reply, tuple(verdicts), tuple(headers), decided, reasons)
