"""The IMAP session: commands in, responses out, storage through ``storage.api`` only.

RFC 9051 (IMAP4rev2) and RFC 3501 (IMAP4rev1), with ENABLE (RFC 5161), IDLE
(RFC 2177), UIDPLUS (RFC 4315), MOVE (RFC 6851), UNSELECT (RFC 3691),
NAMESPACE (RFC 2342), ID (RFC 2971), SPECIAL-USE (RFC 6154), LIST-EXTENDED
(RFC 5258), LIST-STATUS (RFC 5819), CONDSTORE/QRESYNC (RFC 7162), QUOTA
(RFC 9208), STATUS=SIZE (RFC 8438), UTF8=ACCEPT (RFC 6855), ESEARCH (RFC 4731),
MULTIAPPEND (RFC 3502), BINARY (RFC 3516), SASL-IR (RFC 4959), ACL (RFC 4314).

Theory of operation
-------------------
A session is a state machine over the states of RFC 9051 section 3::

    NOT_AUTHENTICATED --login--> AUTHENTICATED --select--> SELECTED
            |                      ^      ^                  |  |
            |                      |      +---close/failed---+  | select (again)
            +------ logout ------> LOGOUT <------ logout -------+

Every transition is one row of ``TRANSITIONS``; ``_transition`` is the only
place that assigns ``self.state``. Each command names the states it is valid in
(``Command.states``); anything else answers BAD.

``stream(event)`` runs one parser event and yields its responses as they are
produced (a FETCH of many bodies is never held in memory whole); ``handle`` is
the same collected into a list, for tests. Every command handler is an async
generator ending with its tagged response. Before that tagged response the
session reports what other sessions changed in the selected folder (EXISTS,
EXPUNGE or VANISHED, FETCH FLAGS), except while answering FETCH, STORE or
SEARCH, during which EXPUNGE must not be sent (RFC 9051 section 7.5.1).

The selected folder is viewed through ``Mailbox``: the UIDs in sequence order
(a compact ``array``, the seq -> uid map), the highest modseq reported, and the
UIDs that are \\Recent in this session. What changed is asked from the store
with ``changes_since(highestmodseq)``, so the session keeps no copy of flags.

Asking costs database round trips, so a session asks only when it may have
missed something: when the store's ``ChangeHub`` has published a change of the
folder since the session last asked (every change made in this process:
deliveries, other sessions' STORE/EXPUNGE/COPY/MOVE, its own; see
``FolderWatch``; on PostgreSQL also those of other processes and nodes, relayed
by LISTEN/NOTIFY in ``storage.sql.notify``), or when ``change_poll_interval``
seconds have passed (changes by another process on SQLite, such as the CLI,
publish nothing here; on PostgreSQL the poll covers a lost notification link).
A session's own STORE that was the folder's only change moves its highest
modseq forward without asking (the FETCH responses of the
STORE already told the client).

Sessions that select the same folder in the same state share one read-only
UID array (``_Snapshot``, held in a weak per-process cache keyed by folder and
highest modseq): 300 sessions on a 100,000-message INBOX hold one 400 kB array,
not 300. A session copies the array before changing it (new messages,
expunges) and, once it has caught up with the store again, swaps its copy for
an equal shared one when there is one. SELECTs of one folder state that arrive
together wait for a single read of the index (a shielded task: the one piece
of asyncio in this module, so a client that disconnects does not fail the
others).

Shared mailboxes (RFC 4314 ACL, RFC 2342 NAMESPACE)
---------------------------------------------------
Agency mailboxes (Decision 70/2009 Điều 10: the head administers the agency
mailbox and may delegate) appear to their head and delegates under the shared
namespace as ``Shared/<agency code>/<folder>``. Every mailbox name a command
carries is resolved by ``_target`` to a ``Target``: the account that owns the
folder (the user's own, or the agency mailbox's account), the folder name in
that account, and the user's RFC 4314 rights there (all of them on one's own
mailboxes; the directory's grant on a shared one). Store calls then use that
account id, so the store's per-account ownership check still holds, and a name
like ``Shared/x/../../y`` can only ever be looked up inside a granted account.

What the directory says is not trusted for long: at the start of every command
in the authenticated and selected states the session re-reads the account
(a disabled account, or one whose password an operator reset since the login,
gets ``* BYE`` and the connection ends) and its grants,
at most once per ``imap.access_cache`` seconds, so an offboarding, a revoked
delegation or a handover reaches open sessions at their next command.

Human-readable response text is written in ASCII (Vietnamese without its
diacritics, ``responses.plain_text``) unless the client enabled UTF8=ACCEPT or
IMAP4rev2: ``stream`` passes every response through ``responses.for_client``.

Limits: a LOGIN or AUTHENTICATE beyond ``imap.max_connections_per_user``
logged-in connections of the account answers ``NO [LIMIT]`` (the driver's
``UserSlots`` counts them; ``close`` gives the slot back). A SEARCH with more
than ``imap.max_search_keys`` keys, or still reading messages after
``imap.search_time_budget`` seconds, answers ``NO [LIMIT]``.

Two commands continue over several client lines: AUTHENTICATE (SASL
exchange) and IDLE. While one is in progress ``awaiting_line`` is true and the
driver feeds the client's lines back as ``RawLine`` events.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import enum
import ipaddress
import logging
import re
import weakref
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from time import monotonic
from typing import Final, Protocol

from mailserver.auth import (
    APP_ONLY_TEXT,
    MUST_CHANGE_TEXT,
    Authenticator,
    AuthOutcome,
    AuthStatus,
    must_change_text,
)
from mailserver.config import ImapSettings
from mailserver.imap import commands as c
from mailserver.imap import mutf7, sections, textsearch
from mailserver.imap import responses as r
from mailserver.imap.commands import State
from mailserver.imap.grammar import canonical_flag, is_astring, is_atom
from mailserver.imap.parser import BadCommand, Command, RawLine
from mailserver.imap.responses import IString, Literal, Raw, Response, Tagged, Value
from storage.activity import CHECK_INTERVAL, activity_for
from storage.api import (
    INBOX,
    SPECIAL_FOLDERS,
    Account,
    CannotDeleteFolder,
    Changes,
    FlagMode,
    FlagUpdate,
    Folder,
    FolderExists,
    FolderWatch,
    InvalidFolderName,
    MailStore,
    MessageDetail,
    MessageInfo,
    ModSeq,
    NoSuchFolder,
    SearchQuery,
    StoreError,
    Uid,
)
from storage.directory import ALL_RIGHTS, By, DirectoryError, DirectoryStore, MailboxGrant, canonical_rights
from storage.imapwire import envelope_wire

log = logging.getLogger(__name__)

Event = Command | BadCommand | RawLine

BASE_CAPABILITIES: Final = (
    "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ENABLE IDLE UIDPLUS MOVE UNSELECT NAMESPACE ID "
    "SPECIAL-USE CREATE-SPECIAL-USE LIST-EXTENDED LIST-STATUS SEARCHRES CONDSTORE QRESYNC QUOTA "
    "QUOTA=RES-STORAGE QUOTA=RES-MESSAGE STATUS=SIZE UTF8=ACCEPT ESEARCH CHILDREN MULTIAPPEND BINARY ACL "
    "RIGHTS=texk"
).split()
ENABLEABLE: Final = frozenset({"CONDSTORE", "QRESYNC", "UTF8=ACCEPT", "IMAP4REV2"})
SYSTEM_FLAGS: Final = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
BATCH: Final = 256
SERVER_ID: Final = (("name", "dongnai-mailserver"), ("vendor", "Dong Nai"), ("version", "0.1.0"))
CHANGE_POLL_INTERVAL: Final = 5.0
"""Seconds after which a selected session asks the store for changes although this
process published none for the folder: how soon changes made by another process
(``mailserver mail remove``, a second node on the same PostgreSQL) reach a session
that sends commands. Between two such polls a command costs no database read for
change reporting unless the folder changed here (``ChangeHub``)."""
SHARED: Final = "Shared"
"""Prefix of the shared namespace (RFC 2342 section 5: "Other Users'/Shared")."""
NOPERM_TEXT: Final = "Không đủ quyền với hộp thư này / Permission denied"
DISABLED_TEXT: Final = "Tài khoản đã bị khóa / Account disabled"
TOO_MANY_TEXT: Final = "Tài khoản đang mở quá nhiều kết nối / Too many connections for this account"
SHARED_ACCESS_INTERVAL: Final = 600.0
"""Seconds between two records of one session's access to a shared agency mailbox."""
RESET_TEXT: Final = (
    "Mật khẩu đã được cấp lại, hãy đăng nhập lại / The password was reset, log in again"
)
REVOKED_TEXT: Final = (
    "Quyền truy cập hộp thư dùng chung đã bị thu hồi / Access to the shared mailbox was revoked"
)


class UserSlots(Protocol):
    """Counts the logged-in connections of each account (the driver's; RFC 5530 LIMIT)."""

    def acquire(self, account_id: int) -> bool:
        """Take a slot for one more connection of the account; False when all are taken."""
        ...

    def release(self, account_id: int) -> None:
        """Give back a slot taken by ``acquire``."""
        ...


class SearchBudgetError(Exception):
    """A SEARCH read messages for longer than ``imap.search_time_budget``."""


class JunkTrainer(Protocol):
    """Where the session reports what the user taught about spam (the driver trains
    the Bayesian filter in the background, never delaying the command)."""

    def submit(self, account_id: int, folder_id: int, uids: Sequence[int], is_spam: bool) -> None:
        """Learn the messages ``uids`` of the folder as spam, or as ham (undoing spam)."""
        ...


@dataclass(frozen=True, slots=True)
class Target:
    """A mailbox name resolved: whose folder it is and what the user may do there."""

    account_id: int
    name: str
    """The folder's name in ``account_id``."""
    display: str
    """The name as this user sees it (``Shared/<code>/...`` for an agency mailbox)."""
    rights: str
    """RFC 4314 letters the user holds."""
    grant: MailboxGrant | None = None
    """The directory grant for a shared mailbox; None for the user's own."""


class _Refresh(enum.Enum):
    OK = "ok"
    DISABLED = "disabled"
    RESET = "reset"
    REVOKED = "revoked"


class Transition(enum.StrEnum):
    LOGIN = "login"
    SELECT = "select"
    SELECT_FAILED = "select failed"
    CLOSE = "close"
    LOGOUT = "logout"


TRANSITIONS: Final[dict[tuple[State, Transition], State]] = {
    (State.NOT_AUTHENTICATED, Transition.LOGIN): State.AUTHENTICATED,
    (State.AUTHENTICATED, Transition.SELECT): State.SELECTED,
    (State.SELECTED, Transition.SELECT): State.SELECTED,
    (State.AUTHENTICATED, Transition.SELECT_FAILED): State.AUTHENTICATED,
    (State.SELECTED, Transition.SELECT_FAILED): State.AUTHENTICATED,
    (State.SELECTED, Transition.CLOSE): State.AUTHENTICATED,
    (State.NOT_AUTHENTICATED, Transition.LOGOUT): State.LOGOUT,
    (State.AUTHENTICATED, Transition.LOGOUT): State.LOGOUT,
    (State.SELECTED, Transition.LOGOUT): State.LOGOUT,
}


class UserError(Exception):
    """A user mistake answered with ``NO [code] text`` (or BAD for ``status="BAD"``)."""

    def __init__(self, text: str, code: str | None = None, status: str = "NO") -> None:
        super().__init__(text)
        self.text, self.code, self.status = text, code, status

    def to_response(self, tag: str) -> Tagged:
        return Tagged(tag, self.status, self.text, self.code)


def _store_error(exc: StoreError) -> UserError:
    if isinstance(exc, NoSuchFolder):
        return UserError("No such mailbox", "NONEXISTENT")
    if isinstance(exc, FolderExists):
        return UserError("Mailbox already exists", "ALREADYEXISTS")
    if isinstance(exc, InvalidFolderName):
        return UserError("Invalid mailbox name", "CANNOT")
    if isinstance(exc, CannotDeleteFolder):
        return UserError(str(exc) or "Cannot delete that mailbox", "CANNOT")
    if "quota" in type(exc).__name__.lower():
        return UserError("Over quota", "OVERQUOTA")
    return UserError("Operation refused", "CANNOT")


class _Snapshot:
    """A folder's UIDs at one highest modseq, shared read-only by the sessions
    that have it selected in that state. ``keywords`` and ``first_unseen`` are
    known when the snapshot came from ``folder_index`` (what SELECT also needs)."""

    __slots__ = ("__weakref__", "first_unseen", "keywords", "uids")

    def __init__(
        self, uids: array[int], keywords: frozenset[str] | None = None, first_unseen: Uid | None = None
    ) -> None:
        self.uids = uids
        self.keywords = keywords
        self.first_unseen = first_unseen


_SnapshotKey = tuple[int, int, int, int]
"""(id of the store, folder id, UIDVALIDITY, highest modseq)."""


@dataclass(frozen=True, slots=True)
class _Index:
    """``FolderIndex`` with the UIDs as a 32-bit array."""

    uids: array[int]
    keywords: frozenset[str]
    first_unseen: Uid | None


_LOADING: Final[dict[_SnapshotKey, asyncio.Future[_Index]]] = {}
"""Index reads in flight, so concurrent SELECTs of one folder state read it once."""


@dataclass(frozen=True, slots=True)
class _Answer:
    """The last ``changes_since`` answer for a folder, with what it was asked at."""

    watch: FolderWatch
    """The folder's watch in the store's hub (tells stores apart, not just by id)."""
    version: int
    """``watch.version`` read before asking."""
    asked_at: float
    since: int
    changes: Changes


_ANSWERS: Final[dict[tuple[int, int], _Answer]] = {}
"""(id of the store, folder id) -> the folder's last answer, while sessions have
it selected: after a change, the sessions watching a folder ask once between
them instead of once each (a shared agency mailbox open by many delegates)."""

_SNAPSHOTS: Final[weakref.WeakValueDictionary[_SnapshotKey, _Snapshot]] = weakref.WeakValueDictionary()
"""Per process; an entry goes away with the last session holding it. The store's
id keeps stores apart (tests run several, whose folder ids overlap): a snapshot is
only alive while a session holds it, and that session holds its store, so the id
cannot be reused meanwhile."""


@dataclass(slots=True)
class Mailbox:
    """This session's view of the selected folder."""

    folder: Folder
    readonly: bool
    uids: array[int]
    """UIDs in sequence-number order: ``uids[seq - 1]``. Read-only while
    ``snapshot`` is set (other sessions hold the same array): change it only
    through ``remove``/``extend``, which copy it first."""
    target: Target
    highestmodseq: int
    recent: set[int] = field(default_factory=set)
    reported: dict[int, int] = field(default_factory=dict)
    """uid -> modseq already sent by this session's own STORE (not repeated as updates)."""
    snapshot: _Snapshot | None = None
    watch: FolderWatch | None = None
    """The folder's ChangeHub counter while selected."""
    seen_version: int = 0
    """``watch.version`` when the session last asked the store (or caught up otherwise)."""
    synced_at: float = float("-inf")
    """Clock reading when the session last asked the store for changes."""
    saved: frozenset[int] = frozenset()
    """UIDs of the last ``SEARCH RETURN (SAVE)`` (RFC 5182), what ``$`` names;
    expunged ones drop out when ``$`` is resolved against ``uids``."""

    def seq(self, uid: int) -> int | None:
        i = bisect_left(self.uids, uid)
        return i + 1 if i < len(self.uids) and self.uids[i] == uid else None

    def _own(self) -> array[int]:
        if self.snapshot is not None:
            self.uids = self.uids[:]  # copy-on-write: the shared array stays as it was
            self.snapshot = None
        return self.uids

    def remove(self, uid: int) -> int | None:
        seq = self.seq(uid)
        if seq is not None:
            del self._own()[seq - 1]
            self.recent.discard(uid)
        return seq

    def extend(self, uids: Iterable[int]) -> None:
        self._own().extend(uids)


@dataclass(slots=True)
class _Sasl:
    tag: str
    mechanism: str
    user: str | None = None


class Session:
    def __init__(
        self,
        store: MailStore,
        authenticator: Authenticator,
        settings: ImapSettings,
        *,
        secure: bool,
        remote_ip: str,
        starttls_available: bool,
        connection_id: str = "-",
        directory: DirectoryStore | None = None,
        trainer: JunkTrainer | None = None,
        clock: Callable[[], float] = monotonic,
        change_poll_interval: float | None = None,
        user_slots: UserSlots | None = None,
        password_url: str = "",
    ) -> None:
        self.store = store
        self.authenticator = authenticator
        self.settings = settings
        self.secure = secure
        self.remote_ip = remote_ip
        self.starttls_available = starttls_available
        self.connection_id = connection_id
        self.state = State.NOT_AUTHENTICATED
        self.account: Account | None = None
        self.enabled: frozenset[str] = frozenset()
        """ENABLEd extensions (RFC 5161); frozen: most sessions never enable one."""
        self.mailbox: Mailbox | None = None
        self._sasl: _Sasl | None = None
        self.client_name = ""
        """The client's own name from ID (RFC 2971), for the login history."""
        self.peer_cert: bytes | None = None
        """The TLS client certificate (DER), verified by the handshake; for SASL EXTERNAL."""
        self._idle_tag: str | None = None
        self.directory = directory
        self.trainer = trainer
        self._clock = clock
        self.change_poll_interval = (
            CHANGE_POLL_INTERVAL if change_poll_interval is None else change_poll_interval
        )
        """Seconds between store polls for changes no ChangeHub reported (see the
        module docstring); tests shorten it."""
        self._fresh_until = float("-inf")
        self._account_read_at = float("-inf")
        """When ``account`` was last read from the store (LOGIN reads it too)."""
        self._grants: list[MailboxGrant] = []
        self._not_agency: frozenset[int] = frozenset()
        """Accounts found not to be agency mailboxes (nothing to record for them);
        forgotten with the access cache."""
        self._checked_at: dict[int, float] = {}
        """Agency mailbox account id -> when this session last counted a check of it."""
        self._shared_at: dict[int, float] = {}
        """Agency mailbox account id -> when this session last recorded a shared access."""
        self._own_agency: str | None = None
        """Agency code when the logged-in account is itself an agency mailbox."""
        self.user_slots = user_slots
        self._slot: int | None = None
        """The account whose ``user_slots`` slot this session holds."""
        self.password_url = password_url
        """The portal's password page, named where a password must be changed."""
        self._search_deadline = float("inf")

    # -- driver interface ------------------------------------------------------
    def greeting(self) -> Response:
        return r.status_line(
            "OK", "Dong Nai IMAP server ready", "CAPABILITY " + " ".join(self.capabilities())
        )

    @property
    def awaiting_line(self) -> bool:
        """An AUTHENTICATE or IDLE is in progress: the next client line is a RawLine."""
        return self._sasl is not None or self._idle_tag is not None

    @property
    def idling(self) -> bool:
        return self._idle_tag is not None

    @property
    def watched_folder(self) -> int | None:
        return self.mailbox.folder.id if self.mailbox is not None else None

    @property
    def missed_change(self) -> bool:
        """This process changed the selected folder since the session last asked
        the store (the driver polls at once when an IDLE starts in that state)."""
        mb = self.mailbox
        return mb is not None and (mb.watch is None or mb.watch.version != mb.seen_version)

    def close(self) -> None:
        """The connection is gone: let go of what the session holds in shared
        structures (its ChangeHub watch, its per-account connection slot). Safe to
        call more than once."""
        self._drop_mailbox()
        if self._slot is not None and self.user_slots is not None:
            self.user_slots.release(self._slot)
        self._slot = None

    @property
    def utf8_text(self) -> bool:
        """May human-readable response text be UTF-8 (RFC 6855 section 3, RFC 9051)?"""
        return not self.enabled.isdisjoint(("UTF8=ACCEPT", "IMAP4REV2"))

    def tls_started(self) -> None:
        self.secure = True
        self.starttls_available = False

    def capabilities(self) -> list[str]:
        caps = list(BASE_CAPABILITIES)
        if self.state is State.NOT_AUTHENTICATED:
            if self.starttls_available and not self.secure:
                caps.append("STARTTLS")
            if self.peer_cert is not None:
                caps.append("AUTH=EXTERNAL")
            if self._login_allowed():
                caps += ["AUTH=PLAIN", "AUTH=LOGIN"]
            else:
                caps.append("LOGINDISABLED")
        return caps

    async def handle(self, event: Event) -> list[Response]:
        return [resp async for resp in self.stream(event)]

    async def stream(self, event: Event) -> AsyncGenerator[Response, None]:
        async for resp in self._stream(event):
            yield resp if self.utf8_text else r.for_client(resp, False)

    async def _stream(self, event: Event) -> AsyncIterator[Response]:
        if isinstance(event, BadCommand):
            if event.tag == "*":
                yield r.status_line("BAD", event.text)
            else:
                yield r.bad(event.tag, event.text)
            return
        if isinstance(event, RawLine):
            async for resp in self._continue(event.data):
                yield resp
            return
        tag, cmd = event.tag, event.command
        if self.state not in cmd.states:
            yield r.bad(tag, f"{type(cmd).__name__.upper()} not allowed now")
            return
        if self.account is not None and not isinstance(cmd, c.Logout):
            outcome = await self._refresh()
            if outcome is _Refresh.DISABLED:
                yield r.bye(DISABLED_TEXT)
                return
            if outcome is _Refresh.RESET:
                yield r.bye(RESET_TEXT)
                return
            if outcome is _Refresh.REVOKED:
                yield r.status_line("OK", REVOKED_TEXT, "CLOSED")
                if not isinstance(cmd, c.Select):
                    yield r.no(tag, NOPERM_TEXT, "NOPERM")
                    return
        final: Tagged | None = None
        try:
            async for resp in self._dispatch(tag, cmd):
                if isinstance(resp, Tagged) and resp.tag == tag:
                    final = resp
                else:
                    yield resp
        except UserError as exc:
            final = exc.to_response(tag)
        except StoreError as exc:
            final = _store_error(exc).to_response(tag)
        if self.mailbox is not None and final is not None and self._updates_allowed(cmd):
            for resp in await self._updates():
                yield resp
        if final is not None:
            yield final

    async def poll(self) -> list[Response]:
        """Changes to report now (NOOP semantics): used while IDLE."""
        if self.mailbox is None:
            return []
        if self.account is not None and await self._refresh() is not _Refresh.OK:
            return []  # reported by the next command (BYE or OK [CLOSED])
        return await self._updates()

    # -- account state and rights (re-checked on every command) ----------------------
    async def _refresh(self) -> _Refresh:
        """Re-read the account and its grants when the cache is older than
        ``imap.access_cache`` seconds; end or close what they no longer allow."""
        now = self._clock()
        if now < self._fresh_until:
            return _Refresh.OK
        account: Account | None = self.account
        if now - self._account_read_at >= self.settings.access_cache:
            account = await self.store.get_account_by_id(self._account_id)
            self._account_read_at = now
        if account is None or account.disabled:
            # Decision 70/2009 Điều 5 khoản 4: an offboarded login stops at once,
            # open sessions included.
            log.info("imap %s: account id %d disabled, ending session", self.connection_id, self._account_id)
            self._transition(Transition.LOGOUT)
            return _Refresh.DISABLED
        if account.must_change_password:
            # No login succeeds while the flag is set (NO [EXPIRED]), so an operator
            # reset the password after this session began: a handover, a head's
            # transfer or offboarding rotating an agency mailbox's password (Decision
            # 70/2009 Điều 10 khoản 4: the outgoing head keeps no access), or
            # `account reset-password`. Whoever knew the old password is out.
            log.info("imap %s: password of account id %d reset, ending session",
                     self.connection_id, self._account_id)
            self._transition(Transition.LOGOUT)
            return _Refresh.RESET
        self.account = account
        self._not_agency = frozenset()
        if self.directory is not None:
            self._grants = await self.directory.mailbox_access(account.id)
        self._fresh_until = now + self.settings.access_cache
        mb = self.mailbox
        if mb is not None and mb.target.grant is not None:
            old = mb.target.grant
            grant = next((g for g in self._grants if g.mailbox_account_id == old.mailbox_account_id), None)
            if grant is None or "r" not in grant.rights:
                log.info("imap %s: access to %s revoked", self.connection_id, old.mailbox_address)
                self._transition(Transition.CLOSE)
                return _Refresh.REVOKED
            mb.target = replace(mb.target, rights=grant.rights, grant=grant)
        return _Refresh.OK

    async def _target(self, wire: str) -> Target:
        """Resolve a mailbox name as sent by the client (see "Shared mailboxes")."""
        return self._target_of(self._decode_name(wire))

    def _target_of(self, name: str) -> Target:
        """Resolve a decoded mailbox name."""
        if name != SHARED and not name.startswith(SHARED + "/"):
            return Target(self._account_id, name, name, ALL_RIGHTS)
        parts = name.split("/")
        # Only Shared/<code>/<folder...>; "." and ".." are plain (unknown) names to
        # the store, but refusing them here keeps path-looking names out entirely.
        if len(parts) < 3 or any(p in ("", ".", "..") for p in parts[1:]):
            raise UserError("No such mailbox", "NONEXISTENT")
        grant = next((g for g in self._grants if g.agency_code == parts[1]), None)
        if grant is None:
            raise UserError("No such mailbox", "NONEXISTENT")
        folder = "/".join(parts[2:])
        if folder.upper() == INBOX:
            folder = INBOX
        return Target(
            grant.mailbox_account_id, folder, f"{SHARED}/{grant.agency_code}/{folder}", grant.rights, grant
        )

    @staticmethod
    def _require(target: Target, rights: str) -> None:
        """RFC 4314 section 4: refuse with NO [NOPERM] when a right is missing; a
        mailbox the user may not even see (no l, no r) does not exist for them."""
        if all(right in target.rights for right in rights):
            return
        if "l" not in target.rights and "r" not in target.rights:
            raise UserError("No such mailbox", "NONEXISTENT")
        raise UserError(NOPERM_TEXT, "NOPERM")

    async def _folder(self, target: Target) -> Folder:
        return await self.store.get_folder(target.account_id, target.name)

    # -- helpers -------------------------------------------------------------------
    def _login_allowed(self) -> bool:
        if self.secure or self.settings.allow_plaintext_login:
            return True
        try:
            return ipaddress.ip_address(self.remote_ip).is_loopback
        except ValueError:
            return False

    def _transition(self, event: Transition) -> None:
        self.state = TRANSITIONS[(self.state, event)]
        if self.state is not State.SELECTED:
            self._drop_mailbox()

    def _drop_mailbox(self) -> None:
        mb, self.mailbox = self.mailbox, None
        if mb is not None and mb.watch is not None:
            self.store.changes.unwatch(mb.folder.id, mb.watch)
            if mb.watch.holders <= 0:
                _ANSWERS.pop((id(self.store), mb.folder.id), None)
            mb.watch = None

    @property
    def _utf8(self) -> bool:
        return "UTF8=ACCEPT" in self.enabled

    @property
    def _account_id(self) -> int:
        assert self.account is not None  # noqa: S101 - guarded by Command.states
        return self.account.id

    def _selected(self) -> Mailbox:
        assert self.mailbox is not None  # noqa: S101 - guarded by Command.states
        return self.mailbox

    def _decode_name(self, wire: str) -> str:
        if self._utf8 or wire == INBOX:
            return wire
        try:
            name = mutf7.decode(wire)
        except ValueError:
            raise UserError("Mailbox name is not valid modified UTF-7", "CANNOT") from None
        return INBOX if name.upper() == INBOX else name

    def _encode_name(self, name: str) -> Value:
        wire = name if self._utf8 else mutf7.encode(name)
        if is_astring(wire):
            return wire
        return IString(wire, self._utf8)

    def _condstore(self) -> bool:
        return "CONDSTORE" in self.enabled

    @staticmethod
    def _updates_allowed(cmd: c.Command) -> bool:
        # RFC 9051 section 7.5.1: no EXPUNGE while answering FETCH, STORE or SEARCH
        # (their UID forms are fine: UIDs do not shift).
        if isinstance(cmd, c.Fetch | c.Store | c.Search):
            return cmd.uid
        return not isinstance(cmd, c.Idle | c.Logout | c.Select | c.Close)

    def _stale(self, mb: Mailbox) -> bool:
        """May the store hold changes this session has not reported? Yes when this
        process published a change of the folder since the session last looked, or
        when the last look is ``change_poll_interval`` old (other processes)."""
        if mb.watch is None or mb.watch.version != mb.seen_version:
            return True
        return self._clock() - mb.synced_at >= self.change_poll_interval

    async def _updates(self) -> list[Response]:
        mb = self._selected()
        if not self._stale(mb):
            return []
        # Read the counter before asking: a change published while the query runs
        # leaves the session stale, so it is asked for again next time.
        version = mb.watch.version if mb.watch is not None else 0
        since, now = mb.highestmodseq, self._clock()
        key = (id(self.store), mb.folder.id)
        memo = _ANSWERS.get(key)
        if (
            memo is not None
            and memo.watch is mb.watch
            and memo.version == version
            and memo.since <= since
            and now - memo.asked_at < self.change_poll_interval
        ):
            # Another session asked from an older modseq after the last change
            # published here, and recently: its answer holds ours (what is older
            # than our modseq is filtered out below).
            changes, asked_at = memo.changes, memo.asked_at
        else:
            changes = await self.store.changes_since(mb.target.account_id, mb.folder.id, ModSeq(since))
            if self.mailbox is not mb:  # pragma: no cover - closed while the query ran
                return []
            asked_at = now
            watch = mb.watch
            if watch is not None and (memo is None or memo.watch is not watch or memo.version <= version):
                _ANSWERS[key] = _Answer(watch, version, now, since, changes)
        mb.seen_version, mb.synced_at = version, asked_at
        changed = [i for i in changes.changed if i.modseq > since]
        out: list[Response] = []
        gone = [u for u in changes.vanished if mb.seq(u) is not None]
        if gone:
            if "QRESYNC" in self.enabled:
                for uid in gone:
                    mb.remove(uid)
                out.append(r.vanished(gone))
            else:
                for uid in gone:
                    seq = mb.remove(uid)
                    if seq is not None:
                        out.append(r.expunge(seq))
        last = mb.uids[-1] if mb.uids else 0
        new = [i.uid for i in changed if i.uid > last]
        if new:
            mb.extend(new)
            if not mb.readonly:
                watermark = await self.store.claim_recent(mb.target.account_id, mb.folder.id)
                mb.recent.update(u for u in new if u >= watermark)
            out.append(r.exists(len(mb.uids)))
            out.append(r.recent(len(mb.recent)))
        for info in changed:
            if info.uid > last or mb.reported.get(info.uid) == info.modseq:
                continue
            seq = mb.seq(info.uid)
            if seq is not None:
                out.append(r.fetch(seq, self._flag_items(info, uid=True, modseq=self._condstore())))
        mb.highestmodseq = max(mb.highestmodseq, changes.highestmodseq)
        mb.reported.clear()
        if mb.snapshot is None:
            self._share(mb)
        return out

    def _share(self, mb: Mailbox, index: _Index | None = None) -> None:
        """Swap the session's own UID array for an equal shared one, or offer it to
        sessions that reach the same state later (see the module docstring)."""
        key = (id(self.store), mb.folder.id, mb.folder.uidvalidity, mb.highestmodseq)
        found = _SNAPSHOTS.get(key)
        if found is not None and (found.uids is mb.uids or found.uids == mb.uids):
            mb.uids, mb.snapshot = found.uids, found
            if found.keywords is None and index is not None:
                found.keywords, found.first_unseen = index.keywords, index.first_unseen
            return
        if found is not None:
            return  # same key, other UIDs (reads straddling a commit): keep our own
        snapshot = _Snapshot(mb.uids)
        if index is not None:
            snapshot.keywords, snapshot.first_unseen = index.keywords, index.first_unseen
        _SNAPSHOTS[key] = mb.snapshot = snapshot

    def _own_change(self, mb: Mailbox, before: int, update: FlagUpdate) -> None:
        """After this session's own flag change: if it was the folder's only change
        since the session last caught up (the hub counted exactly one publish, and
        the change's modseq is the next one), the session is caught up again and
        need not ask the store (RFC 7162 section 3.1: its STORE or FETCH responses
        already carried the new flags and MODSEQ)."""
        watch = mb.watch
        if not update.changed or watch is None or mb.seen_version != before or watch.version != before + 1:
            return
        modseq = update.changed[0].modseq
        if modseq != mb.highestmodseq + 1 or any(i.modseq != modseq for i in update.changed):
            return
        mb.highestmodseq = modseq
        mb.seen_version = watch.version
        for info in update.changed:
            mb.reported.pop(info.uid, None)

    def _flags_of(self, info: MessageInfo) -> tuple[Value, ...]:
        return tuple(self._flag_names(info))

    def _flag_names(self, info: MessageInfo) -> list[str]:
        flags: list[str] = sorted(info.flags)
        if self.mailbox is not None and info.uid in self.mailbox.recent:
            flags.append("\\Recent")
        return flags

    def _flag_items(self, info: MessageInfo, *, uid: bool, modseq: bool) -> list[Value]:
        items: list[Value] = []
        if uid:
            items += ["UID", info.uid]
        items += ["FLAGS", self._flags_of(info)]
        if modseq:
            items += ["MODSEQ", (info.modseq,)]
        return items

    def _resolve(self, seqset: c.SeqSet, uid: bool) -> list[tuple[int, int]]:
        """(seq, uid) pairs named by a sequence set, in sequence order."""
        mb = self._selected()
        uids = mb.uids
        if not uids:
            return []
        if seqset.saved:  # "$" names the same messages in UID and sequence commands
            return [(seq, u) for u in sorted(mb.saved) if (seq := mb.seq(u)) is not None]
        picked: set[int] = set()
        if uid:
            for lo, hi in seqset.resolve(uids[-1]):
                picked.update(range(bisect_left(uids, lo), bisect_right(uids, hi)))
        else:
            for lo, hi in seqset.resolve(len(uids)):
                picked.update(range(max(lo, 1) - 1, min(hi, len(uids))))
        return [(i + 1, uids[i]) for i in sorted(picked)]

    # -- dispatch ------------------------------------------------------------------
    def _dispatch(self, tag: str, cmd: c.Command) -> AsyncIterator[Response]:
        match cmd:
            case c.Capability():
                return self._capability(tag)
            case c.Noop() | c.Check():
                return self._noop(tag)
            case c.Logout():
                return self._logout(tag)
            case c.StartTls():
                return self._starttls(tag)
            case c.Login(user, password):
                return self._login(tag, user, password)
            case c.Authenticate():
                return self._authenticate(tag, cmd)
            case c.Enable(caps):
                return self._enable(tag, caps)
            case c.Select():
                return self._select(tag, cmd)
            case c.Create(name, uses):
                return self._create(tag, name, uses)
            case c.Delete(name):
                return self._delete(tag, name)
            case c.Rename(old, new):
                return self._rename(tag, old, new)
            case c.Subscribe(name, flag):
                return self._subscribe(tag, name, flag)
            case c.List():
                return self._list(tag, cmd)
            case c.Namespace():
                return self._namespace(tag)
            case c.Status(name, items):
                return self._status(tag, name, items)
            case c.Append():
                return self._append(tag, cmd)
            case c.Close(expunge):
                return self._close(tag, expunge)
            case c.Expunge():
                return self._expunge(tag, cmd)
            case c.Search():
                return self._search(tag, cmd)
            case c.Fetch():
                return self._fetch(tag, cmd)
            case c.Store():
                return self._store(tag, cmd)
            case c.Copy():
                return self._copy(tag, cmd)
            case c.Idle():
                return self._idle(tag)
            case c.Id(params):
                return self._id(tag, params)
            case c.GetQuota():
                return self._quota(tag, cmd)
            case c.SetAcl() | c.DeleteAcl():
                return self._setacl(tag, cmd)
            case c.GetAcl(name):
                return self._getacl(tag, name)
            case c.ListRights(name, identifier):
                return self._listrights(tag, name, identifier)
            case c.MyRights(name):
                return self._myrights(tag, name)
        raise AssertionError(f"unhandled command {cmd!r}")  # pragma: no cover

    # -- any state -------------------------------------------------------------------
    async def _capability(self, tag: str) -> AsyncIterator[Response]:
        yield r.capability(self.capabilities())
        yield r.ok(tag, "CAPABILITY completed")

    async def _noop(self, tag: str) -> AsyncIterator[Response]:
        yield r.ok(tag, "NOOP completed")

    async def _logout(self, tag: str) -> AsyncIterator[Response]:
        self._transition(Transition.LOGOUT)
        yield r.bye("Logging out")
        yield r.ok(tag, "LOGOUT completed")

    async def _id(
        self, tag: str, params: tuple[tuple[str, str | None], ...] | None
    ) -> AsyncIterator[Response]:
        fields = {k.lower(): v for k, v in params or () if v}
        self.client_name = " ".join(filter(None, (fields.get("name"), fields.get("version"))))[:200]
        yield r.Untagged(("ID", tuple(v for pair in SERVER_ID for v in (IString(pair[0]), IString(pair[1])))))
        yield r.ok(tag, "ID completed")

    # -- not authenticated -------------------------------------------------------------
    async def _starttls(self, tag: str) -> AsyncIterator[Response]:
        if not self.starttls_available or self.secure:
            raise UserError("TLS is already active or not available", status="BAD")
        yield r.ok(tag, "Begin TLS negotiation now")

    async def _login(self, tag: str, user: str, password: str) -> AsyncIterator[Response]:
        yield await self._check_login(tag, user, password)

    async def _check_login(self, tag: str, user: str, password: str) -> Tagged:
        if not self._login_allowed():
            return r.no(tag, "Plain-text login needs TLS: use STARTTLS first", "PRIVACYREQUIRED")
        outcome = await self.authenticator.authenticate(
            user, password, self.remote_ip, protocol="imap", client=self.client_name
        )
        return self._login_outcome(tag, user, outcome)

    async def _check_external(self, tag: str, authzid: str) -> Tagged:
        """SASL EXTERNAL (RFC 4422 appendix A): the TLS client certificate signs in."""
        outcome = await self.authenticator.authenticate_certificate(
            self.peer_cert, authzid, self.remote_ip, protocol="imap", client=self.client_name
        )
        user = outcome.account.address if outcome.account is not None else authzid or "(certificate)"
        return self._login_outcome(tag, user, outcome)

    def _login_outcome(self, tag: str, user: str, outcome: AuthOutcome) -> Tagged:
        match outcome.status:
            case AuthStatus.OK:
                if outcome.account is not None and not self._take_slot(outcome.account.id):
                    log.info("imap %s: %s over max_connections_per_user", self.connection_id, user.lower())
                    return r.no(tag, TOO_MANY_TEXT, "LIMIT")
                self.account = outcome.account
                self._account_read_at = self._clock()
                self._fresh_until = float("-inf")  # the grants are read at the first command
                self._transition(Transition.LOGIN)
                log.info("imap %s: login %s from %s", self.connection_id, user.lower(), self.remote_ip)
                return r.ok(tag, "Logged in", "CAPABILITY " + " ".join(self.capabilities()))
            case AuthStatus.MUST_CHANGE:
                text = must_change_text(self.password_url) if self.password_url else MUST_CHANGE_TEXT
                return r.no(tag, text, "EXPIRED")
            case AuthStatus.DISABLED:
                return r.no(tag, "Account disabled", "AUTHORIZATIONFAILED")
            case AuthStatus.APP_PASSWORD_REQUIRED:
                return r.no(tag, APP_ONLY_TEXT, "AUTHENTICATIONFAILED")
            case AuthStatus.THROTTLED:
                return r.no(tag, "Too many failed logins, try again later", "UNAVAILABLE")
        log.info("imap %s: failed login %r from %s", self.connection_id, user[:64], self.remote_ip)
        return r.no(tag, "Invalid credentials", "AUTHENTICATIONFAILED")

    def _take_slot(self, account_id: int) -> bool:
        """One of the account's ``imap.max_connections_per_user`` slots for this
        connection (always granted without a ``user_slots`` counter)."""
        if self.user_slots is None:
            return True
        if not self.user_slots.acquire(account_id):
            return False
        self._slot = account_id
        return True

    async def _authenticate(self, tag: str, cmd: c.Authenticate) -> AsyncIterator[Response]:
        if cmd.mechanism == "EXTERNAL":
            if self.peer_cert is None:
                raise UserError("No TLS client certificate", "AUTHENTICATIONFAILED")
            if cmd.initial is None:
                self._sasl = _Sasl(tag, cmd.mechanism)
                yield r.Continuation("")
                return
            self._sasl = _Sasl(tag, cmd.mechanism)
            async for resp in self._sasl_step(cmd.initial):
                yield resp
            return
        if cmd.mechanism not in ("PLAIN", "LOGIN"):
            raise UserError("Unsupported authentication mechanism", "CANNOT")
        if not self._login_allowed():
            raise UserError("Authentication needs TLS: use STARTTLS first", "PRIVACYREQUIRED")
        self._sasl = _Sasl(tag, cmd.mechanism)
        if cmd.initial is None:
            yield r.Continuation("" if cmd.mechanism == "PLAIN" else "VXNlcm5hbWU6")
            return
        async for resp in self._sasl_step(cmd.initial):
            yield resp

    async def _continue(self, line: bytes) -> AsyncIterator[Response]:
        if self._idle_tag is not None:
            tag, self._idle_tag = self._idle_tag, None
            if line.strip().upper() == b"DONE":
                yield r.ok(tag, "IDLE terminated")
            else:
                yield r.bad(tag, "Expected DONE")
            return
        if self._sasl is None:
            yield r.status_line("BAD", "Unexpected continuation")
            return
        if line.strip() == b"*":
            tag, self._sasl = self._sasl.tag, None
            yield r.bad(tag, "Authentication cancelled")
            return
        try:
            data = base64.b64decode(line.strip(), validate=True)
        except (binascii.Error, ValueError):
            tag, self._sasl = self._sasl.tag, None
            yield r.bad(tag, "Invalid base64")
            return
        async for resp in self._sasl_step(data):
            yield resp

    async def _sasl_step(self, data: bytes) -> AsyncIterator[Response]:
        sasl = self._sasl
        assert sasl is not None  # noqa: S101 - only called during an exchange
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            self._sasl = None
            yield r.bad(sasl.tag, "Credentials are not UTF-8")
            return
        if sasl.mechanism == "EXTERNAL":
            # RFC 4422 appendix A.1: the message is the authorization identity, or empty.
            self._sasl = None
            yield await self._check_external(sasl.tag, text)
            return
        if sasl.mechanism == "PLAIN":
            # RFC 4616: [authzid] NUL authcid NUL passwd
            self._sasl = None
            parts = text.split("\0")
            if len(parts) != 3 or (parts[0] and parts[0].lower() != parts[1].lower()):
                yield r.no(sasl.tag, "Invalid credentials", "AUTHENTICATIONFAILED")
                return
            yield await self._check_login(sasl.tag, parts[1], parts[2])
            return
        if sasl.user is None:
            sasl.user = text
            yield r.Continuation("UGFzc3dvcmQ6")
            return
        self._sasl = None
        yield await self._check_login(sasl.tag, sasl.user, text)

    # -- authenticated -----------------------------------------------------------------
    async def _enable(self, tag: str, caps: tuple[str, ...]) -> AsyncIterator[Response]:
        # RFC 5161: unknown capabilities are ignored; ENABLED lists what was newly enabled.
        newly = [cap for cap in caps if cap.upper() in ENABLEABLE and cap.upper() not in self.enabled]
        self.enabled |= {cap.upper() for cap in newly}
        if "QRESYNC" in self.enabled:
            self.enabled |= {"CONDSTORE"}
        yield r.enabled(newly)
        yield r.ok(tag, "ENABLE completed")

    async def _select(self, tag: str, cmd: c.Select) -> AsyncIterator[Response]:
        if self.mailbox is not None:
            self._transition(Transition.CLOSE)
            yield r.status_line("OK", "Previous mailbox is now closed", "CLOSED")
        if cmd.qresync is not None and "QRESYNC" not in self.enabled:
            raise UserError("QRESYNC must be enabled first", status="BAD")
        if cmd.condstore:
            self.enabled |= {"CONDSTORE"}
        target = await self._target(cmd.mailbox)
        self._require(target, "r")
        hub = self.store.changes
        published, asked_at = hub.published, self._clock()
        try:
            folder = await self._folder(target)
        except NoSuchFolder:
            raise UserError("No such mailbox", "NONEXISTENT") from None
        # Count the folder's changes from here on; one published between the read
        # above and this line leaves the session stale (it asks the store once).
        watch = hub.watch(folder.id)
        seen = watch.version if hub.published == published else watch.version - 1
        try:
            mb, keywords, first_unseen = await self._open(target, folder, cmd.readonly)
        except BaseException:
            hub.unwatch(folder.id, watch)
            raise
        mb.watch, mb.seen_version, mb.synced_at = watch, seen, asked_at
        self.mailbox = mb
        self._transition(Transition.SELECT)
        readonly, uids = mb.readonly, mb.uids
        yield r.flags((*SYSTEM_FLAGS, *keywords))
        yield r.exists(len(uids))
        yield r.recent(len(mb.recent))
        if first_unseen is not None:
            unseen = bisect_left(uids, first_unseen) + 1
            yield r.status_line("OK", "First unseen", f"UNSEEN {unseen}")
        permanent = "" if readonly else " ".join(self._permanent(target, keywords))
        yield r.status_line("OK", "Flags permitted", f"PERMANENTFLAGS ({permanent})")
        yield r.status_line("OK", "UIDs valid", f"UIDVALIDITY {folder.uidvalidity}")
        yield r.status_line("OK", "Predicted next UID", f"UIDNEXT {folder.uidnext}")
        yield r.status_line("OK", "Highest", f"HIGHESTMODSEQ {folder.highestmodseq}")
        if cmd.qresync is not None and cmd.qresync.uidvalidity == folder.uidvalidity:
            for resp in await self._qresync(mb, cmd.qresync):
                yield resp
        yield r.ok(
            tag,
            "SELECT completed" if not cmd.readonly else "EXAMINE completed",
            "READ-ONLY" if readonly else "READ-WRITE",
        )

    async def _attention(self, target: Target) -> None:
        """Count a check of an agency mailbox (Decision 70/2009 Điều 6 khoản 6): called
        when this session read a message body or changed a flag in one of its
        folders; a SELECT alone, or a sync that only PEEKs, is no check. The store
        counts one per person and mailbox per hour (``storage.activity``); this
        session asks it at most that often, and never for personal mailboxes."""
        account_id = target.account_id
        if account_id in self._not_agency:
            return
        now = self._clock()
        last = self._checked_at.get(account_id)
        if last is not None and now - last < CHECK_INTERVAL.total_seconds():
            return
        self._checked_at[account_id] = now
        counted = await activity_for(self.store).record_mailbox_open(
            account_id, datetime.now(UTC), by=self._account_id
        )
        if counted is None:
            self._not_agency |= {account_id}

    async def _open(
        self, target: Target, folder: Folder, examine: bool
    ) -> tuple[Mailbox, list[str], Uid | None]:
        """The Mailbox of a SELECT/EXAMINE, its keywords and first unseen UID."""
        account_id = target.account_id
        now = self._clock()
        last = self._shared_at.get(account_id)
        if target.grant is not None and (last is None or now - last >= SHARED_ACCESS_INTERVAL):
            # When the agency mailbox was last used through the shared namespace
            # (the usage report's last access, Điều 13); a long-lived session that
            # selects folder after folder writes this at most every few minutes.
            self._shared_at[account_id] = now
            await activity_for(self.store).record_shared_access(
                account_id, datetime.now(UTC), by=self._account_id
            )
        # RFC 4314 section 4: without any right to change the mailbox it opens read-only.
        readonly = examine or not any(right in target.rights for right in "swte")
        watermark = Uid(folder.uidnext)
        if not readonly:
            watermark = await self.store.claim_recent(account_id, folder.id)
        key = (id(self.store), folder.id, folder.uidvalidity, folder.highestmodseq)
        snapshot = _SNAPSHOTS.get(key)
        if snapshot is not None and snapshot.keywords is not None:
            # Another session holds this folder in this very state: share its UIDs
            # instead of reading (and keeping) every row again.
            mb = Mailbox(folder, readonly, snapshot.uids, target, folder.highestmodseq, snapshot=snapshot)
            keywords, first_unseen = snapshot.keywords, snapshot.first_unseen
        else:
            # Sessions selecting the folder at the same moment (a client opening
            # many connections, a reconnect storm) wait for one read of the index.
            loading = _LOADING.get(key)
            owner = loading is None
            if loading is None:
                loading = _LOADING[key] = asyncio.ensure_future(self._load_index(account_id, folder.id))
            try:
                index = await asyncio.shield(loading)
                mb = Mailbox(folder, readonly, index.uids, target, folder.highestmodseq)
                self._share(mb, index)
            finally:
                # The read leaves _LOADING only once its snapshot is in _SNAPSHOTS:
                # a SELECT arriving between the read's end and this session's
                # resumption finds one or the other, never neither (a second read).
                if owner and loading.done():
                    _LOADING.pop(key, None)
                elif owner:
                    loading.add_done_callback(lambda _: _LOADING.pop(key, None))
            keywords, first_unseen = index.keywords, index.first_unseen
        mb.recent = set(mb.uids[bisect_left(mb.uids, watermark) :])
        return mb, sorted(keywords), first_unseen

    async def _load_index(self, account_id: int, folder_id: int) -> _Index:
        index = await self.store.folder_index(account_id, folder_id)
        uids = index.uids
        if not (isinstance(uids, array) and uids.typecode == "I"):
            uids = array("I", uids)  # RFC 9051: UIDs are 32-bit
        return _Index(uids, index.keywords, index.first_unseen)

    @staticmethod
    def _permanent(target: Target, keywords: Sequence[str]) -> list[str]:
        # RFC 4314 section 4: PERMANENTFLAGS lists only the flags the rights allow.
        out = [f for f in SYSTEM_FLAGS if _flag_right(f) in target.rights]
        if "w" in target.rights:
            out += [*keywords, "\\*"]
        return out

    async def _qresync(self, mb: Mailbox, params: c.QResync) -> list[Response]:
        # RFC 7162 section 3.2.5.2: VANISHED (EARLIER) for expunged known UIDs, then
        # FETCH for messages changed since the client's modseq.
        changes = await self.store.changes_since(mb.target.account_id, mb.folder.id, ModSeq(params.modseq))
        out: list[Response] = []
        largest = max(mb.uids[-1] if mb.uids else 0, max(changes.vanished, default=0))
        gone = [
            u for u in changes.vanished if params.known_uids is None or params.known_uids.contains(u, largest)
        ]
        if gone:
            out.append(r.vanished(gone, earlier=True))
        for info in changes.changed:
            seq = mb.seq(info.uid)
            if seq is not None:
                out.append(r.fetch(seq, self._flag_items(info, uid=True, modseq=True)))
        return out

    async def _create(self, tag: str, wire: str, uses: tuple[str, ...] = ()) -> AsyncIterator[Response]:
        # RFC 6154 section 5.3 (CREATE-SPECIAL-USE): one attribute of those the store
        # keeps per folder; \All and \Flagged would be virtual folders, not offered.
        special_use = None
        if uses:
            known = {attr.lower(): attr for _, attr in SPECIAL_FOLDERS}
            wanted = {known.get(use.lower(), use) for use in uses}
            if len(wanted) > 1 or not wanted <= set(known.values()):
                raise UserError("Only one of " + " ".join(known.values()) + " may be given", "USEATTR")
            (special_use,) = wanted
        name = self._decode_name(wire).rstrip("/")
        if name.upper() == INBOX:
            raise UserError("INBOX already exists", "ALREADYEXISTS")
        if name == SHARED or (name.startswith(SHARED + "/") and name.count("/") < 2):
            raise UserError("The shared namespace has no room for new top-level mailboxes", "CANNOT")
        target = self._target_of(name)
        self._require(target, "k")
        await self.store.create_folder(target.account_id, target.name, special_use=special_use)
        yield r.ok(tag, "CREATE completed")

    async def _delete(self, tag: str, wire: str) -> AsyncIterator[Response]:
        target = await self._target(wire)
        self._require(target, "x")
        folder = await self._folder(target)
        await self.store.delete_folder(target.account_id, folder.id)
        if self.mailbox is not None and self.mailbox.folder.id == folder.id:
            self._transition(Transition.CLOSE)
        yield r.ok(tag, "DELETE completed")

    async def _rename(self, tag: str, old: str, new: str) -> AsyncIterator[Response]:
        source = await self._target(old)
        self._require(source, "x")
        folder = await self._folder(source)
        new_name = self._decode_name(new)
        if new_name.upper() == INBOX:
            raise UserError("INBOX already exists", "ALREADYEXISTS")
        dest = self._target_of(new_name)
        if dest.account_id != source.account_id:
            raise UserError("Cannot move a mailbox between namespaces", "CANNOT")
        self._require(dest, "k")
        await self.store.rename_folder(source.account_id, folder.id, dest.name)
        yield r.ok(tag, "RENAME completed")

    async def _subscribe(self, tag: str, wire: str, flag: bool) -> AsyncIterator[Response]:
        target = await self._target(wire)
        if target.grant is None:
            await self.store.set_subscribed(target.account_id, target.name, flag)
        # A shared folder's subscription belongs to the agency mailbox, which every
        # delegate shares: one delegate's UNSUBSCRIBE must not hide it from the others.
        yield r.ok(tag, "SUBSCRIBE completed" if flag else "UNSUBSCRIBE completed")

    async def _namespace(self, tag: str) -> AsyncIterator[Response]:
        # RFC 2342 section 5: personal, other users' (none), shared.
        personal = ((IString(""), IString("/")),)
        shared = ((IString(SHARED + "/"), IString("/")),)
        yield r.Untagged(("NAMESPACE", personal, None, shared))
        yield r.ok(tag, "NAMESPACE completed")

    async def _visible(self, patterns: Sequence[str]) -> dict[str, tuple[Folder, Target]]:
        """Every mailbox the user may list, by the name they see it under."""
        out: dict[str, tuple[Folder, Target]] = {}
        for folder in await self.store.list_folders(self._account_id):
            # A personal folder named like the shared namespace would be shadowed by it.
            if folder.name != SHARED and not folder.name.startswith(SHARED + "/"):
                out[folder.name] = (folder, Target(self._account_id, folder.name, folder.name, ALL_RIGHTS))
        prefixes = [re.split(r"[*%]", p, maxsplit=1)[0] for p in patterns]
        if not any(SHARED.startswith(p) or p.startswith(SHARED) for p in prefixes):
            return out  # no pattern can reach Shared/: skip the agency mailboxes' folders
        for grant in self._grants:
            if "l" not in grant.rights:
                continue
            for folder in await self.store.list_folders(grant.mailbox_account_id):
                display = f"{SHARED}/{grant.agency_code}/{folder.name}"
                out[display] = (
                    folder,
                    Target(grant.mailbox_account_id, folder.name, display, grant.rights, grant),
                )
        return out

    async def _list(self, tag: str, cmd: c.List) -> AsyncIterator[Response]:
        verb = "LSUB" if cmd.lsub else "LIST"
        if cmd.patterns == ("",) and not cmd.select_options:
            # RFC 9051 section 6.3.9: an empty pattern asks for the delimiter.
            yield r.Untagged((verb, ("\\Noselect",), IString("/"), IString("")))
            yield r.ok(tag, f"{verb} completed")
            return
        reference = self._decode_name(cmd.reference) if cmd.reference else ""
        full_patterns = [reference + self._decode_name(p) for p in cmd.patterns]
        by_name = await self._visible(full_patterns)
        names = set(by_name)
        for name in list(names):
            parts = name.split("/")
            names.update("/".join(parts[:i]) for i in range(1, len(parts)))
        matchers = [_pattern(p) for p in full_patterns]
        subscribed_only = cmd.lsub or "SUBSCRIBED" in cmd.select_options
        special_only = "SPECIAL-USE" in cmd.select_options
        want_subscribed = "SUBSCRIBED" in cmd.return_options or "SUBSCRIBED" in cmd.select_options
        recursive = "RECURSIVEMATCH" in cmd.select_options
        for name in sorted(names, key=lambda n: (n != INBOX, n)):
            if not any(m.fullmatch(name) for m in matchers):
                continue
            found = by_name.get(name)
            folder = found[0] if found is not None else None
            # Special-use attributes of a shared folder are the agency's, not the
            # user's: a client must not take Shared/x/Sent for its own Sent folder.
            special = found[0].special_use if found is not None and found[1].grant is None else None
            children = [n for n in names if n.startswith(name + "/")]
            attrs: list[str] = []
            if folder is None:
                attrs.append("\\NonExistent" if cmd.select_options else "\\Noselect")
            if subscribed_only:
                subscribed_kids = recursive and any(
                    by_name[n][0].subscribed for n in children if n in by_name
                )
                if not (folder is not None and folder.subscribed) and not subscribed_kids:
                    continue
            if special_only and special is None:
                continue
            if not cmd.lsub:
                attrs.append("\\HasChildren" if children else "\\HasNoChildren")
                if want_subscribed and folder is not None and folder.subscribed:
                    attrs.append("\\Subscribed")
                if special:
                    attrs.append(special)
            yield r.Untagged((verb, tuple(attrs), IString("/"), self._encode_name(name)))
            if found is not None and "STATUS" in cmd.return_options and "r" in found[1].rights:
                yield await self._status_response(found[0], found[1], cmd.status_items)
        yield r.ok(tag, f"{verb} completed")

    async def _status_response(self, folder: Folder, target: Target, items: Sequence[str]) -> Response:
        st = await self.store.folder_status(target.account_id, folder.id)
        values = {
            "MESSAGES": st.messages,
            "UIDNEXT": st.uidnext,
            "UIDVALIDITY": st.uidvalidity,
            "UNSEEN": st.unseen,
            "RECENT": st.recent,
            "SIZE": st.size,
            "HIGHESTMODSEQ": st.highestmodseq,
            "DELETED": st.deleted,
        }
        out: list[Value] = []
        for item in items:
            out += [item, values[item]]
        return r.Untagged(("STATUS", self._encode_name(target.display), tuple(out)))

    async def _status(self, tag: str, wire: str, items: tuple[str, ...]) -> AsyncIterator[Response]:
        target = await self._target(wire)
        self._require(target, "r")
        folder = await self._folder(target)
        if "HIGHESTMODSEQ" in items:
            self.enabled |= {"CONDSTORE"}
        yield await self._status_response(folder, target, items)
        yield r.ok(tag, "STATUS completed")

    async def _append(self, tag: str, cmd: c.Append) -> AsyncIterator[Response]:
        target = await self._target(cmd.mailbox)
        self._require(target, "i")
        try:
            folder = await self._folder(target)
        except NoSuchFolder:
            raise UserError("No such mailbox", "TRYCREATE") from None
        uids: list[int] = []
        if len(cmd.messages) > 1:
            # MULTIAPPEND is all or none (RFC 3502 section 6.3.11): the quota is
            # checked for the whole set first (the store checks each one too).
            await self._check_quota(target.account_id, sum(len(m.data) for m in cmd.messages))
        for msg in cmd.messages:
            if not msg.data:
                raise UserError("Empty message", "CANNOT")
            # RFC 4314 section 4: flags the user may not set are dropped, not refused.
            flags = [f for f in _valid_flags(msg.flags) if _flag_right(f) in target.rights]
            info = await self.store.append(
                target.account_id, folder.id, msg.data, flags=flags, internal_date=msg.date
            )
            uids.append(info.uid)
        if folder.special_use == "\\Junk":
            self._learn(target.account_id, folder.id, uids, is_spam=True)
        yield r.ok(tag, "APPEND completed", f"APPENDUID {folder.uidvalidity} {r.seqset(uids)}")

    async def _check_quota(self, account_id: int, size: int) -> None:
        """NO [OVERQUOTA] (RFC 9208 section 4.3) when ``size`` octets do not fit."""
        if (await self.store.quota(account_id)).refusal(size) is not None:
            raise UserError("Over quota", "OVERQUOTA")

    def _learn(self, account_id: int, folder_id: int, uids: Sequence[int], *, is_spam: bool) -> None:
        """Hand what the user taught to the trainer; it runs in the background and
        its failures are only logged (the command's answer is already decided)."""
        if self.trainer is not None and uids:
            self.trainer.submit(account_id, folder_id, uids, is_spam)

    async def _quota(self, tag: str, cmd: c.GetQuota) -> AsyncIterator[Response]:
        account_id = self._account_id
        if cmd.by_mailbox:
            target = await self._target(cmd.name)
            self._require(target, "r")
            await self._folder(target)  # NONEXISTENT for an unknown folder
            account_id = target.account_id
            yield r.Untagged(("QUOTAROOT", self._encode_name(target.display), IString("")))
        elif cmd.name != "":
            raise UserError("No such quota root", "NONEXISTENT")
        quota = await self.store.quota(account_id)
        resources: list[Value] = []
        if quota.storage_limit is not None:
            resources += ["STORAGE", quota.storage_used // 1024, quota.storage_limit // 1024]
        if quota.messages_limit is not None:
            resources += ["MESSAGE", quota.messages_used, quota.messages_limit]
        yield r.Untagged(("QUOTA", IString(""), tuple(resources)))
        yield r.ok(tag, "GETQUOTAROOT completed" if cmd.by_mailbox else "GETQUOTA completed")

    # -- ACL (RFC 4314 section 3) --------------------------------------------------------
    # Rights live per agency mailbox in the directory, not per folder: a SETACL on
    # any folder of Shared/<code>/ sets them for the whole mailbox (Điều 10 khoản 1,
    # ủy quyền), and is audited with the acting user. Personal mailboxes are not
    # shared: their owner holds every right and nobody else holds any.
    async def _owner(self, target: Target) -> str:
        if target.grant is not None:
            return target.grant.mailbox_address
        assert self.account is not None  # noqa: S101 - guarded by Command.states
        return self.account.address

    async def _agency_of(self, target: Target) -> str | None:
        """The agency code whose mailbox ``target`` belongs to; None if personal."""
        if target.grant is not None:
            return target.grant.agency_code
        if self.directory is None:
            return None
        if self._own_agency is None:  # once per session: is the login an agency mailbox?
            agencies = await self.directory.list_agencies()
            self._own_agency = next((a.code for a in agencies if a.account_id == self._account_id), "")
        return self._own_agency or None

    async def _head_address(self, code: str) -> str | None:
        assert self.directory is not None  # noqa: S101 - only asked for agency mailboxes
        agency = await self.directory.get_agency(code)
        if agency is None or agency.head_person_id is None:
            return None
        head = await self.directory.get_person(agency.head_person_id)
        return head.address if head is not None else None

    async def _getacl(self, tag: str, wire: str) -> AsyncIterator[Response]:
        target = await self._target(wire)
        self._require(target, "a")
        await self._folder(target)
        owner = await self._owner(target)
        entries: list[Value] = [_ident(owner), ALL_RIGHTS]
        if await self._agency_of(target) is not None and self.directory is not None:
            for address, rights in await self.directory.mailbox_acl(target.account_id):
                if address != owner:
                    entries += [_ident(address), rights or IString("")]
        yield r.Untagged(("ACL", self._encode_name(target.display), *entries))
        yield r.ok(tag, "GETACL completed")

    async def _myrights(self, tag: str, wire: str) -> AsyncIterator[Response]:
        target = await self._target(wire)
        self._require(target, "")
        if not target.rights:
            raise UserError("No such mailbox", "NONEXISTENT")
        await self._folder(target)
        yield r.Untagged(("MYRIGHTS", self._encode_name(target.display), target.rights))
        yield r.ok(tag, "MYRIGHTS completed")

    async def _listrights(self, tag: str, wire: str, identifier: str) -> AsyncIterator[Response]:
        target = await self._target(wire)
        self._require(target, "a")
        await self._folder(target)
        who = identifier.strip().lower()
        code = await self._agency_of(target)
        fixed = {await self._owner(target)}
        if code is not None:
            fixed.add(await self._head_address(code) or "")
        values: list[Value]
        if who in fixed:
            values = [ALL_RIGHTS]  # owner and head: every right, none negotiable
        elif code is None:
            values = [IString("")]  # a personal mailbox is never shared
        else:
            values = [IString(""), *ALL_RIGHTS]  # each right may be granted on its own
        yield r.Untagged(("LISTRIGHTS", self._encode_name(target.display), _ident(identifier), *values))
        yield r.ok(tag, "LISTRIGHTS completed")

    async def _setacl(self, tag: str, cmd: c.SetAcl | c.DeleteAcl) -> AsyncIterator[Response]:
        target = await self._target(cmd.mailbox)
        self._require(target, "a")
        await self._folder(target)
        code = await self._agency_of(target)
        if code is None or self.directory is None:
            raise UserError(
                "Hộp thư cá nhân không chia sẻ được / Personal mailboxes cannot be shared", "CANNOT"
            )
        who = cmd.identifier.strip().lower()
        if who in (await self._owner(target), await self._head_address(code)):
            raise UserError(
                "Quyền của thủ trưởng chỉ đổi bằng bàn giao / The head's rights change only by handover",
                "CANNOT",
            )
        account = await self.store.get_account(who)
        if account is None or account.disabled:
            raise UserError("Không có hộp thư này / No such mailbox user", "CANNOT")
        delegations = await self.directory.delegations(code)
        existing = next((d for d in delegations if d.account_id == account.id), None)
        current = existing.rights if existing is not None else ""
        if isinstance(cmd, c.DeleteAcl):
            rights = ""
        else:
            rights = _mod_rights(current, cmd.rights)
        assert self.account is not None  # noqa: S101 - guarded by Command.states
        by = By(self.account.address)
        try:
            if rights:
                await self.directory.delegate(
                    code, account.id, rights, existing.may_send if existing is not None else False, by=by
                )
            elif existing is not None:
                await self.directory.revoke(code, account.id, by=by)
        except DirectoryError as exc:
            raise UserError(str(exc)[:200] or "Refused", "CANNOT") from None
        log.info(
            "imap %s: %s set rights of %s on %s to %r",
            self.connection_id,
            self.account.address,
            who,
            code,
            rights,
        )
        self._fresh_until = float("-inf")
        yield r.ok(tag, "SETACL completed" if isinstance(cmd, c.SetAcl) else "DELETEACL completed")

    async def _idle(self, tag: str) -> AsyncIterator[Response]:
        self._idle_tag = tag
        yield r.Continuation("idling")
        for resp in await self.poll():
            yield resp

    # -- selected --------------------------------------------------------------------
    async def _close(self, tag: str, expunge: bool) -> AsyncIterator[Response]:
        mb = self._selected()
        # RFC 4314 section 4: CLOSE without the e right closes without expunging.
        if expunge and not mb.readonly and "e" in mb.target.rights:
            await self.store.expunge(mb.target.account_id, mb.folder.id)
        self._transition(Transition.CLOSE)
        yield r.ok(tag, "CLOSE completed" if expunge else "UNSELECT completed")

    def _writable(self) -> Mailbox:
        mb = self._selected()
        if mb.readonly:
            raise UserError("Mailbox is read-only", "READ-ONLY")
        return mb

    def _expunged(self, uids: Iterable[int]) -> list[Response]:
        mb = self._selected()
        if "QRESYNC" in self.enabled:
            gone = [u for u in uids if mb.remove(u) is not None]
            return [r.vanished(gone)] if gone else []
        out: list[Response] = []
        for uid in sorted(uids):
            seq = mb.remove(uid)
            if seq is not None:
                out.append(r.expunge(seq))
        return out

    async def _expunge(self, tag: str, cmd: c.Expunge) -> AsyncIterator[Response]:
        mb = self._writable()
        self._require(mb.target, "e")
        which: list[Uid] | None = None
        if cmd.uids is not None:
            which = [Uid(u) for _, u in self._resolve(cmd.uids, True)]
        gone = await self.store.expunge(mb.target.account_id, mb.folder.id, which)
        for resp in self._expunged(gone):
            yield resp
        yield r.ok(tag, "EXPUNGE completed")

    async def _copy(self, tag: str, cmd: c.Copy) -> AsyncIterator[Response]:
        mb = self._writable() if cmd.move else self._selected()
        if cmd.move:
            self._require(mb.target, "te")  # RFC 6851 section 4.3 with RFC 4314
        target = await self._target(cmd.mailbox)
        self._require(target, "i")
        try:
            dest = await self._folder(target)
        except NoSuchFolder:
            raise UserError("No such mailbox", "TRYCREATE") from None
        uids = [Uid(u) for _, u in self._resolve(cmd.seqset, cmd.uid)]
        verb = "MOVE" if cmd.move else "COPY"
        if not uids:
            yield r.ok(tag, f"{verb} completed (no messages)")
            return
        source_id = mb.target.account_id
        if target.account_id != source_id:
            pairs = await self._copy_across(mb, uids, target, dest, move=cmd.move)
        elif cmd.move:
            pairs = await self.store.move(source_id, mb.folder.id, uids, dest.id)
        else:
            pairs = await self.store.copy(source_id, mb.folder.id, uids, dest.id)
        sources, targets = _uid_list([p[0] for p in pairs]), _uid_list([p[1] for p in pairs])
        code = f"COPYUID {dest.uidvalidity} {sources} {targets}"
        new_uids = [p[1] for p in pairs]
        if dest.special_use == "\\Junk" and mb.folder.special_use != "\\Junk":
            self._learn(target.account_id, dest.id, new_uids, is_spam=True)
        elif cmd.move and mb.folder.special_use == "\\Junk" and dest.special_use not in ("\\Junk", "\\Trash"):
            # Taken out of Junk (not thrown away): a false positive, learn it as ham.
            self._learn(target.account_id, dest.id, new_uids, is_spam=False)
        if cmd.move:
            yield r.status_line("OK", "Moved", code)
            for resp in self._expunged(p[0] for p in pairs):
                yield resp
            yield r.ok(tag, "MOVE completed")
        else:
            yield r.ok(tag, "COPY completed", code)

    async def _copy_across(
        self, mb: Mailbox, uids: Sequence[Uid], target: Target, dest: Folder, *, move: bool
    ) -> list[tuple[Uid, Uid]]:
        """COPY/MOVE between the user's own and a shared mailbox (two accounts): the
        store copies only within one account, so each message is read and appended
        (durable before the source is touched), then a MOVE expunges the sources."""
        source_id = mb.target.account_id
        infos = await self.store.get_infos(source_id, mb.folder.id, sorted(set(uids)))
        # Into another account (a shared mailbox): its quota must take them all.
        await self._check_quota(target.account_id, sum(info.size for info in infos))
        pairs: list[tuple[Uid, Uid]] = []
        for info in infos:
            try:
                data = await self.store.read_message(source_id, mb.folder.id, info.uid)
            except KeyError:
                continue  # expunged meanwhile
            flags = [f for f in info.flags if _flag_right(f) in target.rights]
            new = await self.store.append(
                target.account_id, dest.id, data, flags=flags, internal_date=info.internal_date
            )
            pairs.append((info.uid, new.uid))
        if move and pairs:
            moved = [p[0] for p in pairs]
            await self.store.store_flags(source_id, mb.folder.id, moved, ["\\Deleted"], FlagMode.ADD)
            # A MOVE, not a deletion: the sources skip the deleted-mail vault.
            await self.store.expunge(source_id, mb.folder.id, moved, vault=False)
        return pairs

    async def _store(self, tag: str, cmd: c.Store) -> AsyncIterator[Response]:
        mb = self._writable()
        pairs = self._resolve(cmd.seqset, cmd.uid)
        flags = _valid_flags(cmd.flags)
        # RFC 4314 section 4: s for \Seen, t for \Deleted, w for the rest; replacing
        # the whole set may change any flag, so it needs all three.
        needed = "swt" if cmd.mode is c.StoreMode.REPLACE else ""
        self._require(mb.target, needed + "".join(_flag_right(f) for f in flags))
        if cmd.unchanged_since is not None:
            self.enabled |= {"CONDSTORE"}
        mode = {
            c.StoreMode.REPLACE: FlagMode.REPLACE,
            c.StoreMode.ADD: FlagMode.ADD,
            c.StoreMode.REMOVE: FlagMode.REMOVE,
        }[cmd.mode]
        seq_of = {u: s for s, u in pairs}
        before = mb.watch.version if mb.watch is not None else 0
        update = await self.store.store_flags(
            mb.target.account_id,
            mb.folder.id,
            [Uid(u) for u in seq_of],
            flags,
            mode,
            unchanged_since=None if cmd.unchanged_since is None else ModSeq(cmd.unchanged_since),
        )
        if update.changed:
            await self._attention(mb.target)
        condstore = self._condstore()
        changed: dict[int, MessageInfo] = {i.uid: i for i in update.changed}
        for info in update.changed:
            mb.reported[info.uid] = info.modseq
        self._own_change(mb, before, update)
        conflicts = set(update.conflicts)
        if not cmd.silent:
            rest = [u for u in seq_of if u not in changed and u not in conflicts]
            if rest:
                rest_uids = [Uid(u) for u in sorted(rest)]
                for info in await self.store.get_infos(mb.target.account_id, mb.folder.id, rest_uids):
                    changed[info.uid] = info
        for uid, seq in seq_of.items():
            found = changed.get(uid)
            if found is None:
                continue
            info = found
            if cmd.silent:
                if condstore:  # RFC 7162 section 3.1.3: MODSEQ even with .SILENT
                    items: list[Value] = ["UID", uid] if cmd.uid else []
                    yield r.fetch(seq, [*items, "MODSEQ", (info.modseq,)])
                continue
            yield r.fetch(seq, self._flag_items(info, uid=cmd.uid, modseq=condstore))
        if conflicts:
            numbers = sorted(conflicts) if cmd.uid else sorted(seq_of[u] for u in conflicts)
            yield r.ok(tag, "Conditional STORE failed for some messages", f"MODIFIED {r.seqset(numbers)}")
        else:
            yield r.ok(tag, "STORE completed")

    # -- SEARCH (RFC 9051 section 6.4.4) ---------------------------------------------------
    async def _search(self, tag: str, cmd: c.Search) -> AsyncIterator[Response]:
        mb = self._selected()
        opts = cmd.return_options or ()
        if "SAVE" in opts:
            mb.saved = frozenset()  # RFC 5182 section 2.1: a failed SEARCH leaves "$" empty
        if cmd.charset is not None and cmd.charset not in ("UTF-8", "US-ASCII"):
            raise UserError("Unsupported charset", "BADCHARSET (UTF-8 US-ASCII)")
        if _key_count(cmd.key) - 1 > self.settings.max_search_keys:  # less the implicit AND
            raise UserError(f"Too many search keys (at most {self.settings.max_search_keys})", "LIMIT")
        self._search_deadline = self._clock() + self.settings.search_time_budget
        try:
            matched = sorted(await self._eval(cmd.key, set(mb.uids)))
        except SearchBudgetError:
            log.info("imap %s: SEARCH over its time budget", self.connection_id)
            raise UserError(
                f"Search took too long (over {self.settings.search_time_budget:g} s): narrow it down", "LIMIT"
            ) from None
        modseq = None
        if _uses_modseq(cmd.key):
            self.enabled |= {"CONDSTORE"}
            if matched:
                matched_uids = [Uid(u) for u in matched]
                infos = await self.store.get_infos(mb.target.account_id, mb.folder.id, matched_uids)
                modseq = max((i.modseq for i in infos), default=None)
        numbers = matched if cmd.uid else [s for s in (mb.seq(u) for u in matched) if s is not None]
        if "SAVE" in opts:
            # With MIN and/or MAX only those are kept (RFC 5182 section 2.4).
            kept = matched
            if "MIN" in opts or "MAX" in opts:
                kept = (matched[:1] if "MIN" in opts else []) + (matched[-1:] if "MAX" in opts else [])
            mb.saved = frozenset(kept)
            if set(opts) == {"SAVE"}:
                yield r.ok(tag, "SEARCH completed, result saved")  # no ESEARCH (section 2.1)
                return
        if cmd.return_options is not None or "IMAP4REV2" in self.enabled:
            opts = cmd.return_options or ("ALL",)
            results: list[tuple[str, Value]] = []
            if numbers:
                if "MIN" in opts:
                    results.append(("MIN", numbers[0]))
                if "MAX" in opts:
                    results.append(("MAX", numbers[-1]))
                if "ALL" in opts:
                    results.append(("ALL", r.seqset(numbers)))
            if "COUNT" in opts:
                results.append(("COUNT", len(numbers)))
            if modseq is not None:
                results.append(("MODSEQ", modseq))
            yield r.esearch(tag, cmd.uid, results)
        else:
            yield r.search(numbers, modseq)
        yield r.ok(tag, "SEARCH completed")

    async def _eval(self, key: c.SearchKey, candidates: set[int]) -> set[int]:
        """UIDs among ``candidates`` matching ``key``: what SQL can decide is asked of
        ``store.search``; the rest is evaluated here, reading files last and only
        for messages still in the running."""
        if not candidates:
            return candidates
        mb = self._selected()
        match key:
            case c.And(keys):
                query: SearchQuery | None = None
                rest: list[c.SearchKey] = []
                for sub in keys:
                    q = self._pushdown(sub)
                    merged = _merge(query, q) if q is not None else None
                    if merged is not None:
                        query = merged
                    else:
                        rest.append(sub)
                if query is not None and query != SearchQuery():
                    candidates = candidates & set(
                        await self.store.search(mb.target.account_id, mb.folder.id, query)
                    )
                for sub in sorted(rest, key=_cost):
                    candidates = await self._eval(sub, candidates)
                return candidates
            case c.Or(left, right):
                a = await self._eval(left, candidates)
                return a | await self._eval(right, candidates - a)
            case c.Not(inner):
                return candidates - await self._eval(inner, candidates)
            case c.Simple("ALL"):
                return candidates
            case c.Simple("RECENT"):
                return candidates & mb.recent
            case c.Simple("OLD"):
                return candidates - mb.recent
            case c.Simple("NEW"):
                return await self._eval(c.And((c.Simple("RECENT"), c.Simple("UNSEEN"))), candidates)
            case c.SeqKey(seqset, uid) if seqset.saved or not uid:
                return candidates & {u for _, u in self._resolve(seqset, uid)}
        query = self._pushdown(key)
        if query is not None:
            return candidates & set(await self.store.search(mb.target.account_id, mb.folder.id, query))
        return await self._scan(key, candidates)

    def _pushdown(self, key: c.SearchKey) -> SearchQuery | None:
        """The SearchQuery equivalent to ``key``, or None if SQL cannot evaluate it."""
        match key:
            case c.Simple(name) if name in _FLAG_KEYS:
                flag, present = _FLAG_KEYS[name]
                return (
                    SearchQuery(flags_set=frozenset({flag}))
                    if present
                    else SearchQuery(flags_unset=frozenset({flag}))
                )
            case c.Keyword(flag, present) if flag.lower() != "\\recent":
                return (
                    SearchQuery(flags_set=frozenset({flag}))
                    if present
                    else SearchQuery(flags_unset=frozenset({flag}))
                )
            case c.DateKey("BEFORE", when):
                return SearchQuery(before=_midnight(when))
            case c.DateKey("SINCE", when):
                return SearchQuery(since=_midnight(when))
            case c.DateKey("ON", when):
                return SearchQuery(since=_midnight(when), before=_midnight(when + timedelta(days=1)))
            case c.SizeKey("LARGER", size):
                return SearchQuery(larger=min(size, _MAX_SIZE))
            case c.SizeKey("SMALLER", size):
                return SearchQuery(smaller=min(size, _MAX_SIZE))
            case c.HeaderKey(name, value) if value and name in _SQL_HEADERS:
                return SearchQuery(header_contains=((name, value),))
            case c.SeqKey(seqset, True) if not seqset.saved:
                mb = self._selected()
                largest = mb.uids[-1] if mb.uids else 0
                return SearchQuery(uids=tuple(seqset.resolve(largest)))
            case c.ModSeqKey(modseq):
                return SearchQuery(modseq_above=ModSeq(max(modseq - 1, 0)))
        return None

    async def _scan(self, key: c.SearchKey, candidates: set[int]) -> set[int]:
        mb = self._selected()
        out: set[int] = set()
        for uid in sorted(candidates):
            if self._clock() >= self._search_deadline:
                raise SearchBudgetError
            try:
                data = await self.store.read_message(mb.target.account_id, mb.folder.id, Uid(uid))
            except KeyError:
                continue
            match key:
                case c.TextKey("BODY", value):
                    hit = textsearch.body_contains(data, value)
                case c.TextKey(_, value):
                    hit = textsearch.text_contains(data, value)
                case c.HeaderKey(name, value):
                    hit = textsearch.header_contains(data, name, value)
                case c.DateKey(name, when):
                    sent = textsearch.sent_date(data)
                    hit = sent is not None and (
                        sent < when
                        if name == "SENTBEFORE"
                        else sent == when
                        if name == "SENTON"
                        else sent >= when
                    )
                case _:
                    hit = False
            if hit:
                out.add(uid)
        return out

    # -- FETCH (RFC 9051 section 6.4.5) -------------------------------------------------------
    async def _fetch(self, tag: str, cmd: c.Fetch) -> AsyncIterator[Response]:
        mb = self._selected()
        atts = list(cmd.attributes)
        names = {a.name for a in atts}
        if cmd.changed_since is not None or "MODSEQ" in names:
            self.enabled |= {"CONDSTORE"}
            if "MODSEQ" not in names:
                atts.append(c.FetchAtt("MODSEQ"))
        if cmd.uid and "UID" not in names:
            atts.insert(0, c.FetchAtt("UID"))
        pairs = self._resolve(cmd.seqset, cmd.uid)
        if cmd.vanished and cmd.changed_since is not None and "QRESYNC" in self.enabled:
            changes = await self.store.changes_since(
                mb.target.account_id, mb.folder.id, ModSeq(cmd.changed_since)
            )
            largest = max(mb.uids[-1] if mb.uids else 0, max(changes.vanished, default=0))
            gone = [u for u in changes.vanished if cmd.seqset.contains(u, largest)]
            if gone:
                yield r.vanished(gone, earlier=True)
        need_details = bool(names & {"ENVELOPE", "BODYSTRUCTURE"}) or any(
            a.name == "BODY" and a.section is None for a in atts
        )
        need_data = any(
            a.name not in _INDEX_ATTS and not (a.name == "BODY" and a.section is None) for a in atts
        )
        # A person reading: a body section without PEEK (RFC 9051 section 6.4.5,
        # the fetch that sets \Seen), whether or not it could set it here.
        reads_body = any(
            a.name in ("BODY", "RFC822", "RFC822.TEXT", "BINARY")
            and (a.section is not None or a.name != "BODY")
            for a in atts
        )
        sets_seen = reads_body and not mb.readonly and "s" in mb.target.rights
        read_one = False
        account_id, folder_id = mb.target.account_id, mb.folder.id
        infos: dict[int, MessageInfo] = {}
        newly_seen: set[int] = set()
        # Index data without ENVELOPE/BODYSTRUCTURE: one scan of the folder when
        # most of it is asked for (FETCH 1:*), else by UID per batch, so that a
        # client fetching one message at a time (mbsync) costs O(1) per command.
        whole_folder = not need_details and 2 * len(pairs) > len(mb.uids)
        if whole_folder:
            wanted = {u for _, u in pairs}
            infos = {
                i.uid: i for i in await self.store.list_messages(account_id, folder_id) if i.uid in wanted
            }
        # Index data only (what a client asks for on opening a folder): each line
        # is made straight into bytes, batch by batch, without response values.
        writers = self._index_writers(atts) if not need_data and names.isdisjoint(_STRUCTURE_ATTS) else None
        for start in range(0, len(pairs), BATCH):
            batch = pairs[start : start + BATCH]
            details: dict[int, MessageDetail] = {}
            prefetched: dict[int, bytes] = {}
            if need_data and len(batch) == 1 and not need_details and not whole_folder:
                # One message (mbsync fetches them one per command): its row and
                # its bytes in one store call.
                try:
                    info_one, prefetched[batch[0][1]] = await self.store.read_with_info(
                        account_id, folder_id, Uid(batch[0][1])
                    )
                    infos[info_one.uid] = info_one
                except KeyError:
                    pass  # expunged by another session meanwhile
            elif not need_details and not whole_folder:
                for i in await self.store.get_infos(account_id, folder_id, [Uid(u) for _, u in batch]):
                    infos[i.uid] = i
            if need_details:
                for d in await self.store.get_details(account_id, folder_id, [Uid(u) for _, u in batch]):
                    details[d.info.uid] = d
                    infos[d.info.uid] = d.info
            if sets_seen:
                unseen = [Uid(u) for _, u in batch if u in infos and "\\Seen" not in infos[u].flags]
                if unseen:
                    before = mb.watch.version if mb.watch is not None else 0
                    update = await self.store.store_flags(
                        account_id, folder_id, unseen, ["\\Seen"], FlagMode.ADD
                    )
                    for info in update.changed:
                        infos[info.uid] = info
                        mb.reported[info.uid] = info.modseq
                        newly_seen.add(info.uid)
                    self._own_change(mb, before, update)
            if writers is not None:
                lines: list[bytes] = []
                for seq, uid in batch:
                    found = infos.get(uid)
                    if found is None or (cmd.changed_since is not None and found.modseq <= cmd.changed_since):
                        continue
                    detail = details.get(uid)
                    wire = b" ".join([write(found, detail) for write in writers])
                    lines.append(b"* %d FETCH (%b)\r\n" % (seq, wire))
                if lines:
                    yield r.Prebuilt(b"".join(lines))
                continue
            for seq, uid in batch:
                found = infos.get(uid)
                if found is None:
                    continue  # expunged by another session meanwhile
                info = found
                if cmd.changed_since is not None and info.modseq <= cmd.changed_since:
                    continue
                data = prefetched.get(uid, b"")
                if need_data and uid not in prefetched:
                    try:
                        data = await self.store.read_message(account_id, folder_id, Uid(uid))
                    except KeyError:
                        continue
                items: list[Value] = []
                for att in atts:
                    items += self._fetch_item(att, info, details.get(uid), data)
                if uid in newly_seen and "FLAGS" not in names:
                    # RFC 9051 section 6.4.5: report the \Seen the fetch just set.
                    items += ["FLAGS", self._flags_of(info)]
                read_one = True
                yield r.fetch(seq, items)
        if reads_body and read_one:
            await self._attention(mb.target)
        yield r.ok(tag, "FETCH completed")

    def _index_writers(self, atts: list[c.FetchAtt]) -> list[_IndexWriter]:
        """For each attribute (all index data: UID, FLAGS, MODSEQ, INTERNALDATE,
        RFC822.SIZE, ENVELOPE), a function giving its wire form: the same bytes
        as ``_fetch_item`` and ``Untagged`` would make, with less work per message."""
        writers: list[_IndexWriter] = []
        for att in atts:
            match att.name:
                case "UID":
                    writers.append(lambda info, _: b"UID %d" % info.uid)
                case "FLAGS":
                    writers.append(lambda info, _: b"FLAGS (%b)" % " ".join(self._flag_names(info)).encode())
                case "MODSEQ":
                    writers.append(lambda info, _: b"MODSEQ (%d)" % info.modseq)
                case "INTERNALDATE":
                    writers.append(
                        lambda info, _: b"INTERNALDATE %b" % r.internal_date_bytes(info.internal_date)
                    )
                case "RFC822.SIZE":
                    writers.append(lambda info, _: b"RFC822.SIZE %d" % info.size)
                case "ENVELOPE":
                    writers.append(lambda _, detail: b"ENVELOPE " + self._envelope_bytes(detail))
                case _:
                    raise AssertionError(f"not index data: {att.name}")
        return writers

    def _envelope_bytes(self, detail: MessageDetail | None) -> bytes:
        assert detail is not None  # noqa: S101 - loaded when needed
        if detail.envelope_wire is not None and not self._utf8:
            return detail.envelope_wire  # made at delivery (storage.imapwire)
        if detail.envelope_json is not None:
            return envelope_wire(detail.envelope_json, self._utf8)
        return r.value_bytes(r.envelope(detail.envelope, self._utf8))

    def _fetch_item(
        self, att: c.FetchAtt, info: MessageInfo, detail: MessageDetail | None, data: bytes
    ) -> list[Value]:
        match att.name:
            case "UID":
                return ["UID", info.uid]
            case "FLAGS":
                return ["FLAGS", self._flags_of(info)]
            case "MODSEQ":
                return ["MODSEQ", (info.modseq,)]
            case "INTERNALDATE":
                return ["INTERNALDATE", r.internal_date(info.internal_date)]
            case "RFC822.SIZE":
                return ["RFC822.SIZE", info.size]
            case "ENVELOPE":
                return ["ENVELOPE", Raw(self._envelope_bytes(detail))]
            case "BODYSTRUCTURE":
                assert detail is not None  # noqa: S101
                return ["BODYSTRUCTURE", r.body_structure(detail.body, extended=True, utf8=self._utf8)]
            case "BODY" if att.section is None:
                assert detail is not None  # noqa: S101
                return ["BODY", r.body_structure(detail.body, extended=False, utf8=self._utf8)]
            case "RFC822":
                return ["RFC822", Literal(data)]
            case "RFC822.HEADER":
                return ["RFC822.HEADER", Literal(sections.extract(data, (), "HEADER"))]
            case "RFC822.TEXT":
                return ["RFC822.TEXT", Literal(sections.extract(data, (), "TEXT"))]
        section = att.section or c.Section()
        label = section.to_bytes().decode("utf-8")
        if att.name in ("BINARY", "BINARY.PEEK", "BINARY.SIZE"):
            decoded = sections.decode_binary(data, section.part)
            if decoded is None:
                raise UserError("Unknown Content-Transfer-Encoding", "UNKNOWN-CTE")
            if att.name == "BINARY.SIZE":
                return ["BINARY.SIZE" + label, len(decoded)]
            return _partial("BINARY" + label, decoded, att.partial, binary=True)
        content = sections.extract(data, section.part, section.specifier, section.fields)
        return _partial("BODY" + label, content, att.partial, binary=False)


_STRUCTURE_ATTS: Final = frozenset({"BODYSTRUCTURE", "BODY"})
_IndexWriter = Callable[[MessageInfo, MessageDetail | None], bytes]
_INDEX_ATTS: Final = frozenset(
    {"UID", "FLAGS", "MODSEQ", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE"}
)
_FLAG_KEYS: Final = {
    "ANSWERED": ("\\Answered", True),
    "DELETED": ("\\Deleted", True),
    "DRAFT": ("\\Draft", True),
    "FLAGGED": ("\\Flagged", True),
    "SEEN": ("\\Seen", True),
    "UNANSWERED": ("\\Answered", False),
    "UNDELETED": ("\\Deleted", False),
    "UNDRAFT": ("\\Draft", False),
    "UNFLAGGED": ("\\Flagged", False),
    "UNSEEN": ("\\Seen", False),
}
_SQL_HEADERS: Final = frozenset({"subject", "from", "to", "cc", "bcc", "message-id"})


def _partial(label: str, content: bytes, partial: tuple[int, int] | None, *, binary: bool) -> list[Value]:
    if partial is not None:
        origin, length = partial
        content = content[origin : origin + length]
        label += f"<{origin}>"
    return [label, Literal(content, binary)]


def _midnight(day: date) -> datetime:
    # RFC 9051 section 6.4.4: dates compare "disregarding time and timezone"; the
    # store keeps UTC, so day boundaries are UTC midnights.
    return datetime.combine(day, time(), UTC)


def _merge(a: SearchQuery | None, b: SearchQuery) -> SearchQuery | None:
    """AND two pushed-down queries into one, or None if they cannot share one query."""
    if a is None:
        return b
    if a.uids is not None and b.uids is not None:
        return None
    return replace(
        a,
        uids=a.uids if a.uids is not None else b.uids,
        flags_set=a.flags_set | b.flags_set,
        flags_unset=a.flags_unset | b.flags_unset,
        before=min((d for d in (a.before, b.before) if d is not None), default=None),
        since=max((d for d in (a.since, b.since) if d is not None), default=None),
        larger=max((n for n in (a.larger, b.larger) if n is not None), default=None),
        smaller=min((n for n in (a.smaller, b.smaller) if n is not None), default=None),
        header_contains=a.header_contains + b.header_contains,
        modseq_above=max((m for m in (a.modseq_above, b.modseq_above) if m is not None), default=None),
    )


_MAX_SIZE: Final = 2**53
"""Sizes in LARGER/SMALLER are number64 (RFC 9051); no message comes near 2**53
octets, and every store and database compares integers that large exactly."""


def _key_count(key: c.SearchKey) -> int:
    """Search keys in ``key``, each OR, NOT and parenthesised list counted too."""
    match key:
        case c.And(keys):
            return 1 + sum(_key_count(k) for k in keys)
        case c.Or(a, b):
            return 1 + _key_count(a) + _key_count(b)
        case c.Not(inner):
            return 1 + _key_count(inner)
    return 1


def _cost(key: c.SearchKey) -> int:
    """Order of evaluation inside an AND: cheap in-memory keys before file scans."""
    match key:
        case c.TextKey() | c.HeaderKey() | c.DateKey():
            return 2
        case c.Or() | c.Not() | c.And():
            return 1
    return 0


def _uses_modseq(key: c.SearchKey) -> bool:
    match key:
        case c.ModSeqKey():
            return True
        case c.And(keys):
            return any(_uses_modseq(k) for k in keys)
        case c.Or(a, b):
            return _uses_modseq(a) or _uses_modseq(b)
        case c.Not(inner):
            return _uses_modseq(inner)
    return False


def _valid_flags(flags: Iterable[str]) -> list[str]:
    out = []
    for flag in flags:
        flag = canonical_flag(flag)
        if flag == "\\Recent":
            continue  # RFC 9051 section 2.3.2: \Recent cannot be stored
        if flag.startswith("\\") and flag not in SYSTEM_FLAGS:
            raise UserError(f"Flag {flag[:32]} cannot be set", "CANNOT", "BAD")
        if not is_atom(flag.lstrip("\\")):
            raise UserError("Invalid flag", status="BAD")
        out.append(flag)
    return out


def _ident(identifier: str) -> Value:
    """An RFC 4314 identifier (astring): bare when it can be, quoted otherwise."""
    return identifier if is_astring(identifier) and identifier.upper() != "NIL" else IString(identifier)


_OBSOLETE_RIGHTS: Final = {"c": "k", "d": "xte"}
"""RFC 4314 section 2.1.1: RFC 2086's c and d stand for their successors."""


def _mod_rights(current: str, spec: str) -> str:
    """SETACL mod-rights (RFC 4314 section 3.1): ``+`` adds, ``-`` removes, bare
    replaces. Unknown letters answer BAD."""
    mode = spec[:1] if spec[:1] in ("+", "-") else ""
    letters = "".join(_OBSOLETE_RIGHTS.get(ch, ch) for ch in spec[len(mode) :])
    try:
        given = canonical_rights(letters)
    except ValueError:
        raise UserError("Unknown right in rights string", status="BAD") from None
    if mode == "+":
        return canonical_rights(current + given)
    if mode == "-":
        return "".join(ch for ch in current if ch not in given)
    return given


def _flag_right(flag: str) -> str:
    """The RFC 4314 right needed to set or clear ``flag`` (section 4, STORE)."""
    return {"\\Seen": "s", "\\Deleted": "t"}.get(flag, "w")


def _uid_list(uids: Sequence[int]) -> str:
    # COPYUID pairs source and destination UIDs by position: compress only if order is kept.
    if list(uids) == sorted(uids):
        return r.seqset(uids)
    return ",".join(str(u) for u in uids)


def _pattern(pattern: str) -> re.Pattern[str]:
    """LIST pattern (RFC 9051 section 6.3.9): ``*`` matches anything, ``%`` no delimiter;
    INBOX is matched case-insensitively."""
    if pattern.upper().startswith(INBOX) and (len(pattern) == 5 or pattern[5] in "/%*"):
        pattern = INBOX + pattern[5:]
    regex = "".join(".*" if ch == "*" else "[^/]*" if ch == "%" else re.escape(ch) for ch in pattern)
    return re.compile(regex, re.DOTALL)
