"""Submission decisions (RFC 6409) without sockets: who may send as whom, how
much, and what a submitted message gets added.

* MAIL FROM and every address in the From and Sender header fields must be
  one the authenticated account may send as (``SenderPolicy``; RFC 6409
  section 6.1 allows the MSA to enforce this), else ``553 5.7.1``. The null
  reverse-path is allowed (MDNs use it, RFC 8098 section 2.1).
* A message without From is refused (RFC 5322 section 3.6 requires it); a
  missing Date or Message-ID is added (RFC 6409 sections 8.2 and 8.3).
* Per-user sliding-window limits on messages and recipients per hour
  (``outbound.max_messages_per_hour`` / ``max_recipients_per_hour``): over
  them ``450 4.7.1``. Every submitted recipient counts, local or remote (a
  hijacked account must not be able to flood colleagues either). Kept in
  memory: a restart forgets the window, which only errs on the generous side.

Recipient routing and durable delivery are ``delivery.Inbound``'s (local
accounts into the store, other domains into the outbound queue).
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from email.utils import format_datetime
from typing import Final

from mailserver.smtp.hooks import SenderPolicy
from policy import codes
from policy.codes import Reply
from storage import headers
from storage.api import Account

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


def header_addresses(data: bytes, name: str) -> list[str] | None:
    """addr-specs in every ``name`` header field; None when the field is absent.
    Read by ``storage.headers``, as IMAP ENVELOPE and sender authentication read them."""
    values = headers.field_values(data, name)
    if not values:
        return None
    return [addr for _, addr in headers.addresses(values)]


async def check_headers(policy: SenderPolicy, account: Account, data: bytes) -> Reply | None:
    """From/Sender alignment; None when the message may go. A header section
    that could be read two ways is refused first (``storage.headers``)."""
    if headers.ambiguity(data) is not None:
        return codes.S550_AMBIGUOUS_HEADER
    senders = header_addresses(data, "From")
    if not senders or not any(senders):
        return codes.S550_NO_FROM
    for addr in senders + (header_addresses(data, "Sender") or []):
        if not addr or not await policy.may_send_as(account, addr):
            return codes.S553_FROM_NOT_OWNED
    return None


def complete_headers(data: bytes, *, hostname: str, when: datetime) -> bytes:
    """Prepend Message-ID and Date when the message lacks them."""
    added = b""
    if not headers.field_values(data, "Message-ID"):
        added += f"Message-ID: <{secrets.token_hex(16)}@{hostname}>\r\n".encode()
    if not headers.field_values(data, "Date"):
        added += f"Date: {format_datetime(when)}\r\n".encode()
    return added + data
