"""Activity the operations reports need: agency-mailbox opens, message facts,
storage use, and the administrator's message lookup (interface and value types).

Theory of operation
-------------------
Decision 70/2009 Điều 6 khoản 6 asks that an agency mailbox be checked at least
twice a day. The IMAP session (SELECT/EXAMINE of the INBOX of an agency mailbox,
by the head or a delegate) and the web portal call ``record_mailbox_open``; the
store keeps one row per open of an *agency* mailbox only (an open of a personal
mailbox costs one indexed read and no write).

Sent and received counts are derived from the mail index rather than written on
the delivery hot path: every stored copy is a message row with its folder, its
INTERNALDATE and its decoded From/To/Cc/Bcc text, which ``message_facts``
streams for a period. Mail deleted before the report is run is therefore not
counted (documented in the README).

Lifecycle: ``activity_for(store)`` after ``await store.start()``; it borrows the
store's engine, like the directory, and is cached per store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from weakref import WeakKeyDictionary

from storage.api import MailStore


@dataclass(frozen=True, slots=True)
class MessageFact:
    """One stored message copy, as much as a usage report needs."""

    id: int
    account_id: int
    special_use: str | None
    """RFC 6154 attribute of its folder (``\\Sent``, ``\\Drafts``…), None for INBOX and others."""
    internal_date: datetime
    from_: str
    """Decoded, lower-case From text (display names and addresses)."""
    recipients: str
    """Decoded, lower-case To, Cc and Bcc text joined."""
    message_id: str
    size: int


@dataclass(frozen=True, slots=True)
class FoundMessage:
    """A message located for the administrator (``mailserver mail find``)."""

    id: int
    account_id: int
    address: str
    folder_id: int
    folder: str
    uid: int
    internal_date: datetime
    size: int
    subject: str
    from_: str
    message_id: str


class ActivityStore(Protocol):
    """Reads for reports plus the one write (mailbox opens). Coroutines on the store's loop."""

    async def record_mailbox_open(self, account_id: int, when: datetime, *, by: int | None = None) -> bool:
        """Note that the INBOX of ``account_id`` was opened at ``when`` (by account ``by``).
        Only agency mailboxes are recorded; returns whether a row was written.
        Never raises for a database fault: opening mail must not fail for a statistic."""
        ...

    async def mailbox_opens(self, since: datetime, until: datetime) -> list[tuple[int, datetime]]:
        """(agency mailbox account id, opened at) with ``since <= at < until``, oldest first."""
        ...

    def message_facts(self, since: datetime, until: datetime) -> AsyncIterator[MessageFact]:
        """Every stored message with ``since <= INTERNALDATE < until``."""
        ...

    async def storage_used(self) -> dict[int, tuple[int, int]]:
        """account id -> (octets, messages) over all folders."""
        ...

    async def find_messages(
        self, header: str, value: str, *, since: datetime | None = None, limit: int = 1000
    ) -> list[FoundMessage]:
        """Messages in any mailbox whose indexed header (subject, from, to, cc, bcc,
        message-id) contains ``value`` case-insensitively. ValueError for another header."""
        ...

    async def locate(self, message_id: int) -> FoundMessage | None:
        """Where the message row ``message_id`` is, or None."""
        ...


SEARCHABLE_HEADERS: tuple[str, ...] = ("subject", "from", "to", "cc", "bcc", "message-id")

_CACHE: WeakKeyDictionary[MailStore, ActivityStore] = WeakKeyDictionary()


def activity_for(store: MailStore) -> ActivityStore:
    """The activity store on the same database as ``store`` (which must be started)."""
    found = _CACHE.get(store)
    if found is None:
        from storage.sql.activity import SqlActivityStore
        from storage.sql.store import SqlMailStore

        if not isinstance(store, SqlMailStore):
            raise TypeError(f"no activity implementation for {type(store).__name__}")
        found = _CACHE[store] = SqlActivityStore(store)
    return found
