"""The store interface every protocol uses: accounts, folders, messages, flags.

Theory of operation
-------------------
SQL is authoritative for everything but message bytes: accounts, folders, UIDs
(RFC 3501 section 2.3.1.1 / RFC 9051 section 2.3.1.1), flags, modification
sequences (RFC 7162) and cached envelope/bodystructure. Message bytes live in
Maildir files ("blobs", kept apart from the index as in maddy's BlobStore); a
row only exists once its file has been fsynced and renamed into ``cur/``.

Durability contract: when ``deliver`` or ``append`` returns, the message file
is fsynced, its directory entry fsynced, and the database transaction holding
its row has committed. Deliveries that run concurrently are committed together
(group commit), so callers must not hold their own transactions around them.

Change notification: every mutating call publishes the folder id on
``MailStore.changes`` after its commit, so sessions that have the folder open
(IMAP IDLE, NOOP) can ask for what changed since the modseq they last saw.

Lifecycle: build a store with ``storage.open_store(url, maildir)``, ``await
store.start()`` (applies migrations, starts the commit worker), use it from one
event loop, ``await store.close()`` at shutdown.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NewType, Protocol

Uid = NewType("Uid", int)
"""A message's IMAP UID inside one folder; never reused under one UIDVALIDITY."""

ModSeq = NewType("ModSeq", int)
"""RFC 7162 modification sequence: grows with every change in a folder."""

INBOX: str = "INBOX"
SPECIAL_FOLDERS: tuple[tuple[str, str], ...] = (
    ("Sent", "\\Sent"),
    ("Drafts", "\\Drafts"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
)
"""Folders created with every account, with their RFC 6154 SPECIAL-USE attribute."""

HIERARCHY_DELIMITER: str = "/"


class StoreError(Exception):
    """Base of the errors a store raises for user mistakes (not server faults)."""


class AccountExists(StoreError):  # noqa: N818 - public names fixed by the interface
    pass


class NoSuchAccount(StoreError):  # noqa: N818 - public names fixed by the interface
    pass


class FolderExists(StoreError):  # noqa: N818 - public names fixed by the interface
    pass


class NoSuchFolder(StoreError):  # noqa: N818 - public names fixed by the interface
    pass


class InvalidFolderName(StoreError):  # noqa: N818 - public names fixed by the interface
    """A folder name that is empty, has NUL/control chars, '..' parts, or empty levels."""


class CannotDeleteFolder(StoreError):  # noqa: N818 - public names fixed by the interface
    """INBOX cannot be deleted (RFC 3501 section 6.3.4)."""


class OverQuota(StoreError):  # noqa: N818 - public names fixed by the interface
    """Storing would take an account beyond its STORAGE quota (RFC 9208 section
    4.1.1): nothing was stored. ``size`` is what the refused operation adds."""

    def __init__(self, account_id: int, used: int, limit: int, size: int) -> None:
        super().__init__(f"account {account_id} over quota: {used} + {size} > {limit} octets")
        self.account_id, self.used, self.limit, self.size = account_id, used, limit, size

    @property
    def whole(self) -> bool:
        """The message alone is larger than the whole quota: it can never fit
        (SMTP ``552 5.2.2`` rather than ``452 4.2.2``)."""
        return self.size > self.limit


class NoSuchDeleted(StoreError):  # noqa: N818 - public names fixed by the interface
    """Vault entries that do not exist (or belong to another account): nothing was restored."""

    def __init__(self, ids: Sequence[int]) -> None:
        shown = ", ".join(str(i) for i in ids)
        super().__init__(f"không có thư đã xóa số {shown} / no deleted message with id {shown}")
        self.ids = tuple(ids)


class OnHold(StoreError):  # noqa: N818 - public names fixed by the interface
    """The mailbox is under a legal hold (``mailserver hold``): it cannot be deleted."""

    def __init__(self, address: str, reasons: Sequence[str]) -> None:
        why = "; ".join(reasons)
        super().__init__(
            f"{address} đang bị giữ nguyên trạng ({why}): không được xóa hộp thư cho đến khi "
            f"`mailserver hold clear` / {address} is on hold ({why}): the mailbox cannot be deleted "
            "until `mailserver hold clear`"
        )
        self.address = address
        self.reasons = tuple(reasons)


class HoldError(StoreError):
    """A hold command that cannot be done (unknown target, no hold to clear)."""


class FlagMode(enum.Enum):
    REPLACE = "replace"
    ADD = "add"
    REMOVE = "remove"


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    address: str
    """Canonical lower-case address, e.g. ``annv@dongnai.gov.vn``."""
    name: str
    password_hash: str
    """Argon2 encoded hash (argon2-cffi); never a clear password."""
    must_change_password: bool
    password_changed_at: datetime | None
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None = None
    quota_bytes: int | None = None
    """The account's own STORAGE quota in octets: None follows the store's
    default (``storage.quota``), 0 is unlimited."""
    cert_login: bool = False
    """May sign in with a TLS client certificate (SASL EXTERNAL), opted in by
    ``mailserver account set ADDRESS --cert-login on``."""


@dataclass(frozen=True, slots=True)
class Folder:
    id: int
    account_id: int
    name: str
    """Unicode name with '/' as hierarchy delimiter; ``INBOX`` for the inbox."""
    uidvalidity: int
    uidnext: Uid
    highestmodseq: ModSeq
    special_use: str | None
    """RFC 6154 attribute such as ``\\Sent``, or None."""
    subscribed: bool


@dataclass(frozen=True, slots=True)
class FolderStatus:
    """What STATUS and SELECT report (RFC 9051 section 6.3.11)."""

    messages: int
    unseen: int
    recent: int
    uidnext: Uid
    uidvalidity: int
    highestmodseq: ModSeq
    size: int
    """Sum of RFC822.SIZE of the messages (RFC 8438 STATUS=SIZE)."""
    deleted: int


@dataclass(frozen=True, slots=True)
class Address:
    """One RFC 5322 mailbox as IMAP ENVELOPE wants it (RFC 9051 section 7.5.2)."""

    name: str | None
    """Decoded display name (RFC 2047 decoded to Unicode), or None."""
    route: str | None
    mailbox: str | None
    host: str | None


@dataclass(frozen=True, slots=True)
class Envelope:
    date: str | None
    subject: str | None
    """Decoded subject (Unicode)."""
    from_: tuple[Address, ...]
    sender: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    bcc: tuple[Address, ...]
    in_reply_to: str | None
    message_id: str | None


@dataclass(frozen=True, slots=True)
class BodyPart:
    """One node of BODYSTRUCTURE (RFC 9051 section 7.5.2), computed at delivery.

    Leaf parts have ``children == ()``; multiparts have children and use only
    ``maintype``/``subtype``/``params``/``disposition``/``language``/``location``.
    ``message/rfc822`` parts carry ``envelope`` and a single child (the inner body).
    """

    maintype: str
    subtype: str
    params: tuple[tuple[str, str], ...] = ()
    content_id: str | None = None
    description: str | None = None
    encoding: str = "7BIT"
    size: int = 0
    """Octets of the encoded body of the part."""
    lines: int | None = None
    """Line count for text/* and message/rfc822 parts."""
    md5: str | None = None
    disposition: tuple[str, tuple[tuple[str, str], ...]] | None = None
    language: tuple[str, ...] | None = None
    location: str | None = None
    children: tuple[BodyPart, ...] = ()
    envelope: Envelope | None = None


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """Index data of one message: what FETCH needs without opening the file."""

    id: int
    """Storage-wide message row id (stable across COPY? no: a copy is a new row)."""
    uid: Uid
    modseq: ModSeq
    flags: frozenset[str]
    internal_date: datetime
    size: int
    """RFC822.SIZE: octets of the message as stored (CRLF line ends)."""


class MessageDetail:
    """MessageInfo plus the cached parse results.

    ``envelope`` and ``body`` may be given as values or as zero-argument loaders
    that run on first use: a FETCH of ENVELOPE over a whole folder should not pay
    for decoding every BODYSTRUCTURE, nor the reverse.
    """

    __slots__ = ("info", "_envelope", "_body", "envelope_json", "envelope_wire")

    def __init__(
        self,
        info: MessageInfo,
        envelope: Envelope | Callable[[], Envelope],
        body: BodyPart | Callable[[], BodyPart],
        *,
        envelope_json: str | None = None,
        envelope_wire: bytes | None = None,
    ) -> None:
        self.info = info
        self._envelope = envelope
        self._body = body
        self.envelope_json = envelope_json
        """The envelope as the store caches it (storage.mimeinfo.envelope_to_json), when
        the store has it: IMAP can write ENVELOPE from it without building objects."""
        self.envelope_wire = envelope_wire
        """The ENVELOPE as IMAP sends it to a client without UTF8=ACCEPT
        (storage.imapwire.envelope_wire), when the store keeps it."""

    @property
    def envelope(self) -> Envelope:
        if not isinstance(self._envelope, Envelope):
            self._envelope = self._envelope()
        return self._envelope

    @property
    def body(self) -> BodyPart:
        if not isinstance(self._body, BodyPart):
            self._body = self._body()
        return self._body

    def __repr__(self) -> str:
        return f"MessageDetail(info={self.info!r})"


@dataclass(frozen=True, slots=True)
class FolderIndex:
    """What SELECT needs of every message (RFC 9051 section 6.3.2), without
    building a MessageInfo per message: a 100,000-message INBOX stays cheap."""

    uids: Sequence[int]
    """Every UID, ascending."""
    keywords: frozenset[str]
    """Keywords (non-system flags) in use in the folder."""
    first_unseen: Uid | None
    """Lowest UID without \\Seen, or None."""


@dataclass(frozen=True, slots=True)
class FlagUpdate:
    """Result of ``store_flags``: the new state of every message changed,
    and the UIDs refused by UNCHANGEDSINCE (RFC 7162 section 3.1.3)."""

    changed: tuple[MessageInfo, ...]
    conflicts: tuple[Uid, ...] = ()


@dataclass(frozen=True, slots=True)
class Changes:
    """What happened in a folder after a modseq (RFC 7162 CONDSTORE/QRESYNC)."""

    highestmodseq: ModSeq
    changed: tuple[MessageInfo, ...]
    """Messages added or whose flags changed after the modseq, in UID order."""
    vanished: tuple[Uid, ...]
    """UIDs expunged after the modseq (kept as tombstones), ascending."""


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """Where a delivered message landed, one entry per recipient account."""

    placed: tuple[tuple[int, int, Uid], ...]
    """(account_id, folder_id, uid) for every recipient."""


@dataclass(frozen=True, slots=True)
class DeletedMessage:
    """A message in the deleted-mail vault (expunged, kept for ``retention.deleted_days``)."""

    id: int
    """Vault entry id: what ``undelete`` takes."""
    account_id: int
    folder: str
    """The folder it was expunged from (its current name if it still exists)."""
    uid: Uid
    """Its UID in that folder before the expunge."""
    flags: frozenset[str]
    internal_date: datetime
    size: int
    subject: str
    from_: str
    deleted_at: datetime


@dataclass(frozen=True, slots=True)
class Restored:
    """Where an undeleted message went."""

    id: int
    """The vault entry id it had."""
    account_id: int
    folder_id: int
    folder: str
    uid: Uid
    """Its new UID (a restored message is a new message to clients)."""
    recreated: bool
    """The folder had been deleted and was created again."""


@dataclass(frozen=True, slots=True)
class Hold:
    """A legal hold: the mailbox (``scope == "address"``) or every mailbox of the
    agency (``"agency"``: its own and its persons') keeps all mail."""

    id: int
    scope: str
    target: str
    """The address, or the agency code."""
    reason: str
    set_by: str
    set_at: datetime


@dataclass(frozen=True, slots=True)
class Quota:
    """RFC 9208 QUOTA resources: STORAGE in KiB and MESSAGE count."""

    storage_used: int
    """Octets used by all of the account's messages."""
    storage_limit: int | None
    """Octets allowed (the account's own quota, else the default); None: unlimited."""
    messages_used: int
    messages_limit: int | None = None

    def refusal(self, size: int) -> bool | None:
        """Whether adding ``size`` octets would be refused: None when it fits,
        True when the message alone exceeds the whole quota (permanent), False
        when the mailbox is just too full for it now (temporary)."""
        if self.storage_limit is None or self.storage_used + size <= self.storage_limit:
            return None
        return size > self.storage_limit


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """A search the store evaluates in SQL; the IMAP layer compiles keys it
    can push down into this and filters the rest itself.

    All fields are ANDed; None means "no constraint".
    """

    uids: tuple[tuple[int, int], ...] | None = None
    """UID ranges (inclusive)."""
    flags_set: frozenset[str] = frozenset()
    flags_unset: frozenset[str] = frozenset()
    before: datetime | None = None
    """INTERNALDATE < before (already a date boundary, UTC)."""
    since: datetime | None = None
    """INTERNALDATE >= since."""
    larger: int | None = None
    smaller: int | None = None
    header_contains: tuple[tuple[str, str], ...] = ()
    """(header name lower-case, substring) pairs, matched case-insensitively
    on decoded Unicode for subject/from/to/cc/bcc/message-id."""
    modseq_above: ModSeq | None = None


@dataclass(frozen=True, slots=True)
class IndexJob:
    """A message waiting in the full-text work list, with its file's absolute path."""

    message_id: int
    path: str
    size: int


@dataclass(frozen=True, slots=True)
class IndexDoc:
    """What the full-text index keeps of one message (``storage.fulltext.build_doc``).

    ``header``/``body`` are the folded words (``storage.textfold``) joined by
    spaces, ``header_exact``/``body_exact`` the same words unfolded (NFC,
    casefolded); the five header fields are folded text for substring matches.
    """

    message_id: int
    header: str
    body: str
    header_exact: str
    body_exact: str
    subject: str
    from_: str
    to: str
    cc: str
    bcc: str


TEXT_FIELDS: tuple[str, ...] = ("text", "body", "subject", "from", "to", "cc", "bcc")
"""What ``MailStore.text_search`` can match: RFC 9051 section 6.4.4 TEXT, BODY and header keys."""


@dataclass(frozen=True, slots=True)
class TextHits:
    """``text_search``'s answer: matching UIDs among indexed messages, and the
    UIDs of messages not indexed yet (the caller scans those itself)."""

    uids: frozenset[Uid]
    unindexed: frozenset[Uid]


@dataclass(frozen=True, slots=True)
class IndexStatus:
    pending: int
    indexed: int
    index_bytes: int
    message_bytes: int


class FolderWatch:
    """Change counter of one folder, shared by everything in this process that
    watches it (``ChangeHub.watch``). ``version`` goes up by one on every
    ``publish`` of the folder; a reader that remembers the value it last saw
    knows, without asking the database, whether this process changed the folder
    since. Changes made by another process (CLI, a second node) do not count it:
    readers must still ask the database now and then."""

    __slots__ = ("events", "holders", "version", "wakers")

    def __init__(self) -> None:
        self.version = 0
        self.holders = 0
        self.events: set[asyncio.Event] = set()
        self.wakers: set[asyncio.Future[None]] = set()


class ChangeHub:
    """In-process pub/sub of folder changes: the store publishes a folder id after
    each commit; a session holds a subscription and waits on it (IDLE), or holds a
    ``FolderWatch`` and compares its version (NOOP and command ends).

    Contract for stores: every call that changes a folder's messages, flags,
    modseq, name or existence publishes the folder id, and only once the change
    is visible to new read transactions (after the commit)."""

    def __init__(self) -> None:
        self._by_folder: dict[int, FolderWatch] = {}
        self.published = 0
        """Count of ``publish`` calls, any folder: lets a reader that starts watching
        a folder only after reading it tell whether a change slipped in between."""

    def _release(self, folder_id: int, watch: FolderWatch) -> None:
        if (
            not watch.events
            and not watch.wakers
            and watch.holders <= 0
            and self._by_folder.get(folder_id) is watch
        ):
            del self._by_folder[folder_id]

    def watch(self, folder_id: int) -> FolderWatch:
        """The folder's shared counter, kept until every holder called ``unwatch``."""
        watch = self._by_folder.get(folder_id)
        if watch is None:
            watch = self._by_folder[folder_id] = FolderWatch()
        watch.holders += 1
        return watch

    def unwatch(self, folder_id: int, watch: FolderWatch) -> None:
        watch.holders -= 1
        self._release(folder_id, watch)

    def next_change(self, folder_id: int) -> asyncio.Future[None]:
        """A future that completes at the folder's next ``publish``: a waiter that
        costs one future, where ``subscribe`` costs an Event and a task to wait on
        it (IDLE keeps one per session). Pass it to ``forget`` when done with it."""
        watch = self._by_folder.get(folder_id)
        if watch is None:
            watch = self._by_folder[folder_id] = FolderWatch()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        watch.wakers.add(future)
        return future

    def forget(self, folder_id: int, future: asyncio.Future[None]) -> None:
        watch = self._by_folder.get(folder_id)
        if not future.done():
            future.cancel()
        if watch is None:
            return
        watch.wakers.discard(future)
        self._release(folder_id, watch)

    def subscribe(self, folder_id: int) -> asyncio.Event:
        event = asyncio.Event()
        watch = self._by_folder.get(folder_id)
        if watch is None:
            watch = self._by_folder[folder_id] = FolderWatch()
        watch.events.add(event)
        return event

    def unsubscribe(self, folder_id: int, event: asyncio.Event) -> None:
        watch = self._by_folder.get(folder_id)
        if watch is None:
            return
        watch.events.discard(event)
        self._release(folder_id, watch)

    def publish(self, folder_ids: Iterable[int]) -> None:
        self.published += 1
        for folder_id in set(folder_ids):
            watch = self._by_folder.get(folder_id)
            if watch is not None:
                watch.version += 1
                for event in watch.events:
                    event.set()
                wakers, watch.wakers = watch.wakers, set()
                for future in wakers:
                    if not future.done():
                        future.set_result(None)
                self._release(folder_id, watch)


class DeliveryObserver(Protocol):
    """Told of every ``MailStore.deliver`` by the store itself (metrics observe
    through it, aiosmtpd-hooks style, instead of replacing ``deliver``). Called on
    the event loop after the outcome is known; must be quick and never raise."""

    def delivered(self, recipients: int, seconds: float) -> None:
        """``recipients`` copies committed, ``seconds`` after ``deliver`` was called."""
        ...

    def delivery_failed(self, recipients: int) -> None:
        """``deliver`` for ``recipients`` accounts raised (not cancelled)."""
        ...


class MailStore(Protocol):
    """The one storage interface. All methods are coroutines on one event loop.

    Folder arguments are folder ids from ``get_folder``/``list_folders``; every
    method that takes an ``account_id`` and a folder checks that the folder
    belongs to the account, raising ``NoSuchFolder`` otherwise, so a session can
    never reach another account's mail by guessing ids.
    """

    changes: ChangeHub

    async def start(self) -> None: ...

    def observe_deliveries(self, observer: DeliveryObserver) -> None:
        """Call ``observer`` on every ``deliver`` from now on."""
        ...

    async def close(self) -> None: ...

    # -- accounts -------------------------------------------------------------
    async def create_account(
        self, address: str, name: str, password_hash: str, *, must_change_password: bool = True
    ) -> Account:
        """Create the account with INBOX and the SPECIAL_FOLDERS (subscribed)."""
        ...

    async def get_account(self, address: str) -> Account | None:
        """Look up by address, case-insensitively."""
        ...

    async def get_account_by_id(self, account_id: int) -> Account | None: ...

    async def list_accounts(self) -> list[Account]: ...

    async def delete_account(self, address: str) -> None:
        """Remove the account, its rows and its Maildir. Raises NoSuchAccount."""
        ...

    async def set_password(
        self, account_id: int, password_hash: str, *, must_change_password: bool
    ) -> None: ...

    async def set_disabled(self, account_id: int, disabled: bool) -> None: ...

    async def record_login(self, account_id: int, when: datetime) -> None: ...

    async def set_cert_login(self, account_id: int, enabled: bool) -> None:
        """Allow or forbid certificate login (SASL EXTERNAL) for the account."""

    async def set_quota(self, account_id: int, limit: int | None) -> None:
        """The account's own STORAGE quota in octets; 0 unlimited, None back to the
        store's default. Raises NoSuchAccount."""
        ...

    # -- folders --------------------------------------------------------------
    async def list_folders(self, account_id: int) -> list[Folder]: ...

    async def get_folder(self, account_id: int, name: str) -> Folder:
        """Exact name; ``INBOX`` is matched case-insensitively. Raises NoSuchFolder."""
        ...

    async def create_folder(self, account_id: int, name: str, *, special_use: str | None = None) -> Folder:
        """Creates missing parents too (RFC 3501 section 6.3.3). Raises FolderExists,
        InvalidFolderName."""
        ...

    async def delete_folder(self, account_id: int, folder_id: int) -> None: ...

    async def rename_folder(self, account_id: int, folder_id: int, new_name: str) -> None:
        """Renames children with it. Renaming INBOX moves its messages to a new
        folder and leaves INBOX empty (RFC 3501 section 6.3.5)."""
        ...

    async def set_subscribed(self, account_id: int, name: str, subscribed: bool) -> None: ...

    async def folder_status(self, account_id: int, folder_id: int) -> FolderStatus: ...

    async def claim_recent(self, account_id: int, folder_id: int) -> Uid:
        """Mark every message up to uidnext as no longer recent for other sessions and
        return the old watermark: UIDs >= it are \\Recent in the claiming session."""
        ...

    # -- messages -------------------------------------------------------------
    async def deliver(
        self,
        account_ids: Sequence[int],
        data: bytes,
        *,
        internal_date: datetime | None = None,
        special_use: str | None = None,
        quota: bool = True,
    ) -> DeliveryResult:
        """Store ``data`` in the INBOX of each account: all or none, durable on return.

        With ``special_use`` (an RFC 6154 attribute such as ``\\Junk``) each
        copy goes to that account's folder carrying the attribute instead
        (the oldest one if several do), and to INBOX for an account that has
        none: the policy pipeline files tagged spam this way.

        Raises OverQuota (nothing stored) when the message would take one of
        the accounts beyond its quota, unless ``quota`` is False (the server's
        own notices: bounces, password warnings, which a full mailbox needs most)."""
        ...

    async def append(
        self,
        account_id: int,
        folder_id: int,
        data: bytes,
        *,
        flags: Iterable[str] = (),
        internal_date: datetime | None = None,
    ) -> MessageInfo:
        """APPEND (RFC 3501 section 6.3.11); durable on return. Raises OverQuota."""
        ...

    async def list_messages(self, account_id: int, folder_id: int) -> list[MessageInfo]:
        """Every message in UID order; one query, no per-message ORM objects."""
        ...

    async def folder_index(self, account_id: int, folder_id: int) -> FolderIndex:
        """UIDs, keywords and the first unseen UID in one narrow query."""
        ...

    async def list_flags(self, account_id: int, folder_id: int) -> list[tuple[int, str]]:
        """(UID, flags as stored: names separated by spaces) of every message, in UID
        order: what ``UID FETCH 1:* (UID FLAGS)`` needs (every resync of mbsync or a
        phone), read from the folder's covering index without a MessageInfo each."""
        ...

    async def get_infos(self, account_id: int, folder_id: int, uids: Sequence[Uid]) -> list[MessageInfo]:
        """Index data of the given uids (existing ones), in UID order: what a FETCH
        of a few messages needs, without scanning the folder."""
        ...

    async def get_details(
        self, account_id: int, folder_id: int, uids: Sequence[Uid]
    ) -> list[MessageDetail]:
        """Cached envelope and body structure, in UID order, for existing uids."""
        ...

    async def read_message(self, account_id: int, folder_id: int, uid: Uid) -> bytes:
        """The stored bytes (CRLF line ends). Raises KeyError for an unknown uid."""
        ...

    async def read_headers(
        self, account_id: int, folder_id: int, uids: Sequence[Uid]
    ) -> list[tuple[Uid, bytes]]:
        """(UID, header section) of the existing uids, in UID order: each file read
        only up to its blank line (at most 64 KiB). For header fields the store does
        not cache (References, for IMAP THREAD, RFC 5256 section 3)."""
        ...

    async def read_with_info(self, account_id: int, folder_id: int, uid: Uid) -> tuple[MessageInfo, bytes]:
        """``get_infos`` and ``read_message`` of one message in one call: what a
        client fetching messages one by one (mbsync) asks for each. Raises KeyError
        for an unknown uid."""
        ...

    async def store_flags(
        self,
        account_id: int,
        folder_id: int,
        uids: Sequence[Uid],
        flags: Iterable[str],
        mode: FlagMode,
        *,
        unchanged_since: ModSeq | None = None,
    ) -> FlagUpdate:
        """Change flags; every message whose flags really change gets a new modseq."""
        ...

    async def expunge(
        self, account_id: int, folder_id: int, uids: Sequence[Uid] | None = None, *, vault: bool = True
    ) -> list[Uid]:
        """Remove messages flagged \\Deleted (only those in ``uids`` when given);
        returns the expunged UIDs ascending and keeps tombstones for QRESYNC.
        The messages go to the account's deleted-mail vault (``deleted_messages``);
        ``vault=False`` (an operator's removal) drops them at once, unless the
        mailbox is under a hold."""
        ...

    async def copy(
        self, account_id: int, folder_id: int, uids: Sequence[Uid], dest_folder_id: int
    ) -> list[tuple[Uid, Uid]]:
        """Copy with flags (a copy gets \\Recent anew); returns (source uid, new uid)
        pairs for COPYUID (RFC 4315). Raises OverQuota (nothing copied) when the
        copies do not fit in the account's quota; a MOVE never does, since it
        adds nothing to the account."""
        ...

    async def move(
        self, account_id: int, folder_id: int, uids: Sequence[Uid], dest_folder_id: int
    ) -> list[tuple[Uid, Uid]]:
        """Atomic COPY + EXPUNGE (RFC 6851)."""
        ...

    async def changes_since(self, account_id: int, folder_id: int, modseq: ModSeq) -> Changes: ...

    async def search(self, account_id: int, folder_id: int, query: SearchQuery) -> list[Uid]:
        """UIDs matching ``query``, ascending, evaluated in SQL."""
        ...

    async def folder_blobs(self, account_id: int, folder_id: int) -> list[str]:
        """The message file of every row of the folder (paths relative to the
        Maildir root): what the start-up reconciliation compares the directory
        with (storage.reconcile)."""
        ...

    async def quota(self, account_id: int) -> Quota:
        """Usage and limit of the account (one row read). Raises NoSuchAccount."""
        ...

    # -- deleted-mail vault and holds (storage.sql.vault) ----------------------
    async def deleted_messages(
        self, account_id: int, *, since: datetime | None = None
    ) -> list[DeletedMessage]:
        """The account's vault, most recently deleted first; with ``since``, only
        entries deleted at or after it."""
        ...

    async def read_deleted(self, account_id: int, entry_id: int) -> bytes:
        """The bytes of a vaulted message of the account. Raises NoSuchDeleted."""
        ...

    async def undelete(self, entry_ids: Sequence[int], *, account_id: int | None = None) -> list[Restored]:
        """Put vault entries back in their folders (created again if gone) with
        their flags but \\Deleted, under new UIDs, byte for byte; all or none.
        With ``account_id`` only that account's entries may be named. Raises
        NoSuchDeleted naming the ids not found. Never refused for quota: the
        message counted when it arrived."""
        ...

    async def purge_deleted(self, before: datetime) -> int:
        """Remove vault entries deleted before ``before``, files and rows, except in
        mailboxes under a hold; returns how many went."""
        ...

    async def deleted_blobs(self, account_id: int) -> list[str]:
        """The vault file of every vault entry of the account (storage.reconcile)."""
        ...

    async def set_hold(self, scope: str, target: str, reason: str, *, by: str) -> Hold:
        """Hold a mailbox (``scope`` "address") or an agency (``"agency"``, by code);
        setting it again replaces the reason. Raises HoldError for an unknown target."""
        ...

    async def clear_hold(self, scope: str, target: str) -> Hold:
        """Remove a hold; returns what it was. Raises HoldError when there is none."""
        ...

    async def list_holds(self) -> list[Hold]: ...

    async def holds_on(self, account_id: int) -> list[Hold]:
        """The holds covering the account (its own and its agency's)."""
        ...

    # -- full-text index (storage.sql.fulltext) ------------------------------------
    async def index_jobs(self, limit: int) -> list[IndexJob]:
        """Up to ``limit`` messages of the work list (oldest first), not removed."""
        ...

    async def save_index(self, docs: Sequence[IndexDoc], done: Sequence[int] = ()) -> None:
        """Write ``docs`` and take them and ``done`` (message ids) off the work list,
        in one transaction; messages expunged meanwhile are skipped."""
        ...

    async def text_search(
        self, account_id: int, folder_id: int, field: str, text: str, *, exact: bool = False
    ) -> TextHits:
        """Messages of the folder whose ``field`` (``TEXT_FIELDS``) matches ``text``:
        folded words as a phrase, the last one a prefix (``body``/``text``), or the
        folded substring (header fields); ``exact`` compares unfolded words."""
        ...

    async def queue_reindex(self, account_id: int | None = None) -> int:
        """Put every message of one account (or all) on the work list; the count queued."""
        ...

    async def index_status(self) -> IndexStatus: ...
