"""The outbound queue interface: messages waiting for delivery to other hosts.

Theory of operation
-------------------
A queued message is one spool file (its exact bytes, already signed, so every
retry sends identical octets) plus one row, and one row per recipient carrying
that recipient's own state (RFC 5321 section 4.5.4.1: retries are per
recipient; a recipient that got 250 is never tried again):

* ``queued``: waiting; tried again at ``next_attempt_at``;
* ``delivered``: the remote host accepted it (250 after DATA);
* ``failed``: given up (permanent reply, or expired); ``notified`` turns true
  once the delivery status notification (RFC 3464) went to the sender. Keeping
  "failed but not yet notified" in the database means a crash between the two
  sends the notice twice at worst, never zero times.

A message whose recipients are all delivered or failed-and-notified is removed
(``finish``) together with its file.

Durability contract: ``enqueue`` returns only after the spool file and its
directory entry are fsynced and the rows are committed, so a 250 reply after
it is a promise kept across a crash (RFC 5321 section 4.1.1.4).
``record`` commits the outcome of one delivery attempt (all recipients of one
domain, one SMTP transaction) in one database transaction.

Lifecycle: ``open_queue(url, spool_dir)``, ``await queue.start()`` (applies
migrations), use it from one event loop, ``await queue.close()``. Several
processes may share the database (the CLI edits rows while the server runs);
the server's delivery worker re-reads due rows on every poll.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol


class RecipientState(enum.StrEnum):
    QUEUED = "queued"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class QueuedRecipient:
    id: int
    address: str
    domain: str
    """Lower-case domain of ``address`` (recipients are grouped by it)."""
    state: RecipientState
    attempts: int
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_error: str
    """Last diagnostic, e.g. ``smtp; 451 4.3.0 Try later``; "" when none."""
    status: str
    """RFC 3463 status of the last attempt (``4.4.1``), "" when none."""
    remote_mta: str
    """Host that gave the last reply, "" when none."""
    notified: bool


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    id: int
    sender: str
    """Envelope reverse-path; "" for the null sender of a bounce."""
    size: int
    created_at: datetime
    origin: str
    """``submission``, ``relay`` or ``dsn``."""
    account: str
    """Authenticated submitter, "" for relayed mail and notices."""
    delay_warned: bool
    bounce_requested: bool
    recipients: tuple[QueuedRecipient, ...]

    @property
    def pending(self) -> tuple[QueuedRecipient, ...]:
        return tuple(r for r in self.recipients if r.state is RecipientState.QUEUED)


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one delivery attempt for one recipient."""

    recipient_id: int
    state: RecipientState
    """DELIVERED, FAILED, or QUEUED (temporary failure: retry at ``next_attempt_at``)."""
    status: str
    diagnostic: str
    remote_mta: str = ""
    next_attempt_at: datetime | None = None


class OutboundQueue(Protocol):
    """The persistent outbound queue (see module docstring)."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def enqueue(
        self,
        sender: str,
        recipients: Sequence[str],
        data: bytes,
        *,
        origin: str,
        account: str = "",
        now: datetime | None = None,
    ) -> int:
        """Store the message durably for every recipient; returns the queue id."""
        ...

    async def due(self, now: datetime, *, limit: int = 100) -> list[QueuedMessage]:
        """Messages with work to do: a queued recipient whose time has come, a
        failed recipient not yet notified, or a bounce requested by the operator."""
        ...

    async def claim(
        self, now: datetime, *, node: str, lease: timedelta, limit: int = 100
    ) -> list[QueuedMessage]:
        """Like ``due``, but only messages no live lease holds, and each returned one
        is leased to ``node`` until ``now + lease``: several nodes working one queue
        never send a message twice (PostgreSQL: ``FOR UPDATE SKIP LOCKED``)."""
        ...

    async def renew(self, message_ids: Sequence[int], *, node: str, until: datetime) -> None:
        """Extend ``node``'s leases on these messages (deliveries still running)."""
        ...

    async def release(self, message_id: int, *, node: str) -> None:
        """End ``node``'s lease on the message (its attempt is recorded)."""
        ...

    async def next_due(self) -> datetime | None:
        """Earliest ``next_attempt_at`` of any queued recipient, or None."""
        ...

    async def get(self, message_id: int) -> QueuedMessage | None: ...

    async def list(self) -> list[QueuedMessage]:
        """Every message in the queue, oldest first."""
        ...

    async def read(self, message_id: int) -> bytes:
        """The spooled bytes. Raises KeyError for an unknown id."""
        ...

    async def record(self, outcomes: Sequence[Outcome], now: datetime) -> None:
        """Commit the outcome of one attempt in one transaction. Only recipients
        still ``queued`` change (an operator may have deleted or bounced them)."""
        ...

    async def mark_notified(self, recipient_ids: Sequence[int]) -> None: ...

    async def mark_delay_warned(self, message_id: int) -> None: ...

    async def finish(self, message_id: int) -> bool:
        """Remove the message if nothing is left to do for it; True if removed."""
        ...

    async def retry(self, message_id: int | None, now: datetime) -> int:
        """Make queued recipients due now (one message, or all for None);
        returns how many recipients were touched."""
        ...

    async def request_bounce(self, message_id: int, now: datetime) -> bool:
        """Ask the delivery worker to return the message to its sender."""
        ...

    async def delete(self, message_id: int) -> bool:
        """Drop the message without any notice; True if it existed."""
        ...


def open_queue(url: str, spool_dir: Path) -> OutboundQueue:
    """The SQL queue for a SQLAlchemy async URL and a spool directory, on a database
    of its own (the CLI); the server's shares the mail store's (``Storage.queue``)."""
    from storage.sql.queue import SqlOutboundQueue

    return SqlOutboundQueue(url, spool_dir)
