"""The IMAP session: commands in, responses out, storage through ``storage.api`` only.

RFC 9051 (IMAP4rev2) and RFC 3501 (IMAP4rev1), with ENABLE (RFC 5161), IDLE
(RFC 2177), UIDPLUS (RFC 4315), MOVE (RFC 6851), UNSELECT (RFC 3691),
NAMESPACE (RFC 2342), ID (RFC 2971), SPECIAL-USE (RFC 6154), LIST-EXTENDED
(RFC 5258), LIST-STATUS (RFC 5819), CONDSTORE/QRESYNC (RFC 7162), QUOTA
(RFC 9208), STATUS=SIZE (RFC 8438), UTF8=ACCEPT (RFC 6855), ESEARCH (RFC 4731),
MULTIAPPEND (RFC 3502), BINARY (RFC 3516), SASL-IR (RFC 4959), ACL (RFC 4314),
SORT and THREAD (RFC 5256), SORT=DISPLAY (RFC 5957), ESORT (RFC 5267).

Theory of operation
-------------------
A session is a state machine over the states of RFC 9051 section 3::

    NOT_AUTHENTICATED --login--> AUTHENTICATED --select--> SELECTED
            |                      ^      ^                  |  |
            |                      |      +---close/failed---+  | select (again)
            +------ logout ------> LOGOUT <------ logout -------+

Every transition is one row of ``TRANSITIONS`` (``core.py``); ``_transition`` is
the only place that assigns ``self.state``. Each command names the states it is
valid in (``Command.states``); anything else answers BAD.

This module holds the session's life (login, SASL, SELECT, IDLE, the re-checks
below) and the dispatch; the other commands live in one module per concern,
each a ``SessionCore`` that ``Session`` is built from: ``folders.py``,
``messages.py``, ``fetch.py``, ``search.py``, ``sort.py``, ``thread.py``, ``acl.py``. The selected folder
and how changes reach it are ``selected.py``; what the sessions of one service
share (UID snapshots, index reads, change answers) is its ``FolderCache``.

``stream(event)`` runs one parser event and yields its responses as they are
produced (a FETCH of many bodies is never held in memory whole); ``handle`` is
the same collected into a list, for tests. Every command handler is an async
generator ending with its tagged response. Before that tagged response the
session reports what other sessions changed in the selected folder (EXISTS,
EXPUNGE or VANISHED, FETCH FLAGS; ``selected.py``), except while answering
FETCH, STORE or SEARCH, during which EXPUNGE must not be sent (RFC 9051 section
7.5.1).

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
connection (``connection.py``) hands the client's lines over as ``RawLine`` events.
"""

from __future__ import annotations

import base64
import binascii
import enum
import logging
from bisect import bisect_left
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from time import monotonic
from typing import Final

from mailserver.auth import (
    APP_ONLY_TEXT,
    MUST_CHANGE_TEXT,
    Authenticator,
    AuthOutcome,
    AuthStatus,
    must_change_text,
)
from mailserver.certlogin import CertLogin, Presented
from mailserver.config import ImapSettings
from mailserver.imap import commands as c
from mailserver.imap import responses as r
from mailserver.imap.acl import AclCommands
from mailserver.imap.commands import State
from mailserver.imap.core import (
    NOPERM_TEXT,
    SYSTEM_FLAGS,
    JunkTrainer,
    Transition,
    UserSlots,
    flag_right,
)
from mailserver.imap.errors import UserError, store_error
from mailserver.imap.fetch import FetchCommand
from mailserver.imap.folders import FolderCommands
from mailserver.imap.messages import MessageCommands
from mailserver.imap.parser import BadCommand, Command, RawLine
from mailserver.imap.responses import IString, Response, Tagged
from mailserver.imap.selected import FolderCache, Mailbox, Target
from mailserver.imap.sort import SortCommand
from mailserver.imap.thread import ThreadCommand
from mailserver.search.settings import SearchSettings
from storage.activity import CHECK_INTERVAL, activity_for
from storage.api import Account, Folder, MailStore, ModSeq, NoSuchFolder, StoreError, Uid
from storage.directory import DirectoryStore, MailboxGrant

log = logging.getLogger(__name__)

Event = Command | BadCommand | RawLine

BASE_CAPABILITIES: Final = (
    "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ENABLE IDLE UIDPLUS MOVE UNSELECT NAMESPACE ID "
    "SPECIAL-USE CREATE-SPECIAL-USE LIST-EXTENDED LIST-STATUS SEARCHRES CONDSTORE QRESYNC QUOTA "
    "QUOTA=RES-STORAGE QUOTA=RES-MESSAGE STATUS=SIZE UTF8=ACCEPT ESEARCH CHILDREN MULTIAPPEND BINARY ACL "
    "RIGHTS=texk SORT SORT=DISPLAY THREAD=ORDEREDSUBJECT THREAD=REFERENCES ESORT"
).split()
ENABLEABLE: Final = frozenset({"CONDSTORE", "QRESYNC", "UTF8=ACCEPT", "IMAP4REV2"})
SERVER_ID: Final = (("name", "dongnai-mailserver"), ("vendor", "Dong Nai"), ("version", "0.1.0"))
CHANGE_POLL_INTERVAL: Final = 5.0
"""Seconds after which a selected session asks the store for changes although this
process published none for the folder: how soon changes made by another process
(``mailserver mail remove``, a second node on the same PostgreSQL) reach a session
that sends commands. Between two such polls a command costs no database read for
change reporting unless the folder changed here (``ChangeHub``)."""
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


class _Refresh(enum.Enum):
    OK = "ok"
    DISABLED = "disabled"
    RESET = "reset"
    REVOKED = "revoked"


@dataclass(slots=True)
class _Sasl:
    tag: str
    mechanism: str
    user: str | None = None


class Session(FolderCommands, MessageCommands, FetchCommand, SortCommand, ThreadCommand, AclCommands):
    """One client's IMAP session (see the module docstring); the handlers of each
    concern come from the classes it is built from."""

    client_name: str = ""
    """The client's own name from ID (RFC 2971), for the login history."""

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
        folders: FolderCache | None = None,
        search: SearchSettings | None = None,
    ) -> None:
        self.store, self.authenticator, self.settings = store, authenticator, settings
        self.secure, self.remote_ip = secure, remote_ip
        self.search_settings = search or SearchSettings(index=False)  # without: scan (transcripts)
        self.starttls_available = starttls_available
        self.connection_id = connection_id
        self.state = State.NOT_AUTHENTICATED
        self.account: Account | None = None
        self.enabled: frozenset[str] = frozenset()
        """ENABLEd extensions (RFC 5161); frozen: most sessions never enable one."""
        self.mailbox: Mailbox | None = None
        self._sasl: _Sasl | None = None
        self._idle_tag: str | None = None
        self.directory, self.trainer, self._clock = directory, trainer, clock
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
        self.folders = folders if folders is not None else FolderCache()
        self.certificate: Presented | None = None
        """The TLS client certificate, checked at the handshake (mailserver/certlogin.py)."""
        self.cert_login: CertLogin | None = None

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
            if self._login_allowed():
                caps += ["AUTH=PLAIN", "AUTH=LOGIN"]
            else:
                caps.append("LOGINDISABLED")
            if self.secure and self.certificate is not None and self.certificate.address:
                caps.append("AUTH=EXTERNAL")
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
            final = store_error(exc).to_response(tag)
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

    @staticmethod
    def _updates_allowed(cmd: c.Command) -> bool:
        # RFC 9051 section 7.5.1: no EXPUNGE while answering FETCH, STORE or SEARCH
        # (their UID forms are fine: UIDs do not shift); SORT and THREAD answer with
        # sequence numbers too (RFC 5256 section 4).
        if isinstance(cmd, c.Fetch | c.Store | c.Search | c.Sort | c.Thread):
            return cmd.uid
        return not isinstance(cmd, c.Idle | c.Logout | c.Select | c.Close)

    async def _updates(self) -> list[Response]:
        """What changed in the selected folder since the session last reported (see
        ``selected.py``); nothing, without asking the store, when nothing can have."""
        mb = self._selected()
        now = self._clock()
        if not mb.stale(now, self.change_poll_interval):
            return []
        changes = await self.folders.changes(self.store, mb, now=now, poll_interval=self.change_poll_interval)
        if changes is None:  # pragma: no cover - closed while the query ran
            return []
        qresync, condstore = "QRESYNC" in self.enabled, self._condstore()
        out = await mb.report(changes, self.store, qresync=qresync, condstore=condstore)
        if mb.snapshot is None:
            self.folders.share(mb)
        return out

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
            case c.Idle():
                return self._idle(tag)
            case c.Id(params):
                return self._id(tag, params)
        return self._dispatch_data(tag, cmd)

    def _dispatch_data(self, tag: str, cmd: c.Command) -> AsyncIterator[Response]:
        """The commands on folders and messages (other modules)."""
        match cmd:
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
            case c.Sort():
                return self._sort(tag, cmd)
            case c.Thread():
                return self._thread(tag, cmd)
            case c.Fetch():
                return self._fetch(tag, cmd)
            case c.Store():
                return self._store(tag, cmd)
            case c.Copy():
                return self._copy(tag, cmd)
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

    async def _external(self, tag: str, authzid: str) -> Tagged:
        """AUTHENTICATE EXTERNAL (RFC 4422 appendix A) with the TLS client
        certificate: mailserver/certlogin.py decides."""
        assert self.cert_login is not None  # noqa: S101 - offered only with it
        result = await self.cert_login.authenticate(self.certificate, authzid, self.remote_ip, "imap")
        account = result.outcome.account
        match result.outcome.status:
            case AuthStatus.OK if account is not None:
                if not self._take_slot(account.id):
                    return r.no(tag, TOO_MANY_TEXT, "LIMIT")
                self.account = account
                self._account_read_at = self._clock()
                self._fresh_until = float("-inf")
                self._transition(Transition.LOGIN)
                log.info("imap %s: login %s (certificate) from %s", self.connection_id, account.address,
                         self.remote_ip)
                return r.ok(tag, "Logged in", "CAPABILITY " + " ".join(self.capabilities()))
            case AuthStatus.DISABLED:
                return r.no(tag, "Account disabled", "AUTHORIZATIONFAILED")
            case AuthStatus.THROTTLED:
                return r.no(tag, "Too many failed logins, try again later", "UNAVAILABLE")
        return r.no(tag, result.text or "Invalid credentials", "AUTHENTICATIONFAILED")

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
        if cmd.mechanism == "EXTERNAL" and self.secure and self.cert_login is not None:
            self._sasl = _Sasl(tag, cmd.mechanism)
            if cmd.initial is None:
                yield r.Continuation("")
                return
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
            self._sasl = None
            yield await self._external(sasl.tag, text)
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
        mb, keywords, first_unseen = await self.folders.open(self.store, target, folder, readonly)
        mb.recent = set(mb.uids[bisect_left(mb.uids, watermark) :])
        return mb, sorted(keywords), first_unseen

    @staticmethod
    def _permanent(target: Target, keywords: Sequence[str]) -> list[str]:
        # RFC 4314 section 4: PERMANENTFLAGS lists only the flags the rights allow.
        out = [f for f in SYSTEM_FLAGS if flag_right(f) in target.rights]
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
                out.append(r.fetch(seq, mb.flag_items(info, uid=True, modseq=True)))
        return out

    async def _idle(self, tag: str) -> AsyncIterator[Response]:
        self._idle_tag = tag
        yield r.Continuation("idling")
        for resp in await self.poll():
            yield resp
