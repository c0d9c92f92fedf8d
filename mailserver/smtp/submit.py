"""Submission decisions (RFC 6409) without sockets: what the submission ports
add to the shared hooks (``SubmissionRules``, a ``handler.FrontEnd``).

* MAIL, RCPT and DATA need an authenticated account (RFC 4954 section 6:
  ``530 5.7.0``; aiosmtpd checks it first, this is the hooks' own guard).
* MAIL FROM and every address in the From and Sender header fields must be
  one the authenticated account may send as (``SenderPolicy``; RFC 6409
  section 6.1): the policy pipeline's sender check decides
  (``policy/checks/sender.py``), given ``may_send_as`` for the account.
* A missing Date or Message-ID is added (RFC 6409 sections 8.2 and 8.3).
* Per-user sliding-window limits on messages and recipients per hour
  (``outbound.max_messages_per_hour`` / ``max_recipients_per_hour``): over
  them ``450 4.7.1``. Every submitted recipient counts, local or remote (a
  hijacked account must not be able to flood colleagues either). Kept in
  memory: a restart forgets the window, which only errs on the generous side.

Recipient routing and durable delivery are ``delivery.Inbound``'s (local
accounts into the store, other domains into the outbound queue).
"""

from __future__ import annotations

import functools
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from email.utils import format_datetime
from typing import Final

from mailserver.smtp.handler import FrontEnd
from mailserver.smtp.hooks import SenderPolicy
from mailserver.smtp.protocol import MxEnvelope, MxSession
from policy import codes
from policy.codes import Reply
from policy.context import SendAs
from storage import headers

log = logging.getLogger(__name__)

WINDOW: Final = 3600.0


class RateLimiter:
    """Sliding one-hour window of (time, recipients) per account address."""

    def __init__(
        self, max_messages: int, max_recipients: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._max_messages = max_messages
        self._max_recipients = max_recipients
        self._clock = clock
        self._events: dict[str, deque[tuple[float, int]]] = {}

    def _window(self, key: str) -> deque[tuple[float, int]]:
        events = self._events.setdefault(key, deque())
        horizon = self._clock() - WINDOW
        while events and events[0][0] <= horizon:
            events.popleft()
        return events

    def may_send(self, key: str) -> bool:
        """Room for one more message."""
        return not self._max_messages or len(self._window(key)) < self._max_messages

    def may_address(self, key: str, recipients: int) -> bool:
        """Room for ``recipients`` recipients (those of the message being built)."""
        if not self._max_recipients:
            return True
        used = sum(n for _, n in self._window(key))
        return used + recipients <= self._max_recipients

    def record(self, key: str, recipients: int) -> None:
        self._window(key).append((self._clock(), recipients))


def complete_headers(data: bytes, *, hostname: str, when: datetime) -> bytes:
    """Prepend Message-ID and Date when the message lacks them."""
    added = b""
    if not headers.field_values(data, "Message-ID"):
        added += f"Message-ID: <{secrets.token_hex(16)}@{hostname}>\r\n".encode()
    if not headers.field_values(data, "Date"):
        added += f"Date: {format_datetime(when)}\r\n".encode()
    return added + data


class SubmissionRules(FrontEnd):
    """The submission ports' part of the hooks (module docstring)."""

    def __init__(self, sender_policy: SenderPolicy, limiter: RateLimiter, hostname: str) -> None:
        self._policy = sender_policy
        self._limiter = limiter
        self._hostname = hostname

    async def mail(self, session: MxSession) -> tuple[Reply | None, SendAs | None]:
        account = session.account
        if account is None:
            return codes.S530_AUTH_REQUIRED, None
        if not self._limiter.may_send(account.address):
            log.info("submission %s: %s over the message rate limit", session.sid, account.address)
            return codes.S450_RATE_LIMITED, None
        return None, functools.partial(self._policy.may_send_as, account)

    async def rcpt(self, session: MxSession, envelope: MxEnvelope) -> Reply | None:
        account = session.account
        if account is None:
            return codes.S530_AUTH_REQUIRED
        txn = envelope.txn
        pending = len(txn.recipients) + 1 if txn is not None else 1
        if not self._limiter.may_address(account.address, pending):
            log.info("submission %s: %s over the recipient rate limit", session.sid, account.address)
            return codes.S450_RATE_LIMITED
        return None

    async def data(self, session: MxSession, envelope: MxEnvelope) -> Reply | None:
        if session.account is None or envelope.txn is None:
            return codes.S503_NEED_MAIL
        envelope.original_content = complete_headers(
            envelope.original_content or b"", hostname=self._hostname, when=datetime.now().astimezone()
        )
        return None

    def delivered(self, session: MxSession, envelope: MxEnvelope) -> None:
        if session.account is not None and envelope.txn is not None:
            self._limiter.record(session.account.address, len(envelope.txn.recipients))
