"""Activity the operations reports need: agency-mailbox opens, message facts,
storage use, and the administrator's message lookup (interface and value types).

Theory of operation
-------------------
Decision 70/2009 Điều 6 khoản 6 asks that an agency mailbox be checked at least
twice a day, by a person. What counts is human attention, not a client's
background sync (one mbsync run used to be one "check"): the IMAP session calls
``record_mailbox_open`` when, in a folder of an agency mailbox, a message body
is read (FETCH BODY[…]/BINARY[…]/RFC822/RFC822.TEXT without PEEK) or a flag is
changed (STORE, \\Seen included), and the web portal when it shows the mailbox.
The store keeps at most one row per mailbox and person per hour, and rows for
*agency* mailboxes only (a personal mailbox costs one indexed read, no write).

Heads and delegates reach the agency mailbox through the shared namespace with
their own login, which the mailbox's own last login never sees:
``record_shared_access`` keeps the last time each of them opened one of its
folders (one row per mailbox and person), so the usage report can say when the
mailbox was last used.

Sent and received counts are derived from the mail index rather than written on
the delivery hot path: every stored copy is a message row with its folder, its
INTERNALDATE and its decoded From/To/Cc/Bcc text, which ``message_facts``
streams for a period. Mail deleted before the report is run is therefore not
counted (documented in the README).

Lifecycle: ``Storage.activity`` (``storage.open_storage``), used after ``await
storage.start()``; it shares the mail store's database, like the directory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Protocol

from storage.api import MailStore

CHECK_INTERVAL: Final = timedelta(hours=1)
"""At most one counted check per person and agency mailbox within this time."""


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

    async def record_mailbox_open(
        self, account_id: int, when: datetime, *, by: int | None = None
    ) -> bool | None:
        """Count a check of the mailbox ``account_id`` at ``when`` by account ``by``
        (see the module docstring for what counts). True: counted; False: this
        person's check of this mailbox was already counted within ``CHECK_INTERVAL``;
        None: not an agency mailbox (nothing is ever recorded for it). Never raises
        for a database fault: reading mail must not fail for a statistic."""
        ...

    async def record_shared_access(self, account_id: int, when: datetime, *, by: int) -> None:
        """Account ``by`` opened a folder of the agency mailbox ``account_id`` through
        the shared namespace at ``when``. Never raises for a database fault."""
        ...

    async def shared_access(self) -> dict[int, tuple[datetime, int]]:
        """Agency mailbox account id -> (last shared access, by whom)."""
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

    async def inbox_arrivals(self, since: datetime) -> list[datetime]:
        """INTERNALDATE of every message in an INBOX that arrived at or after
        ``since`` (a delivery sets it to its arrival, RFC 9051 section 2.3.3), in
        no particular order; naive values are UTC. A read only: it never waits
        for a writer."""
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

def activity_for(store: MailStore) -> ActivityStore:
    """The activity store on the same database as ``store`` (``storage.storage_of``)."""
    from storage import storage_of

    return storage_of(store).activity
