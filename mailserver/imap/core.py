"""What every IMAP command handler shares: the session's state and the helpers
over it (mailbox names, RFC 4314 rights, state transitions).

RFC 9051 section 3 (states), RFC 2342 (NAMESPACE), RFC 4314 section 4 (rights
per command), RFC 6855 (UTF8=ACCEPT mailbox names), RFC 3501 modified UTF-7.

``Session`` (``session.py``) is built from one handler class per concern - ACL
(``acl.py``), folders (``folders.py``), messages (``messages.py``), FETCH
(``fetch.py``), SEARCH (``search.py``), SORT (``sort.py``), THREAD (``thread.py``) -
each a ``SessionCore``, as pymap keeps one module per concern. ``SessionCore``
declares the state they read and write (``Session.__init__`` sets it) and holds
what more than one concern uses.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Callable, Sequence
from typing import Final, Protocol

from mailserver.auth import Authenticator
from mailserver.config import ImapSettings
from mailserver.imap import mutf7
from mailserver.imap.commands import State
from mailserver.imap.errors import UserError
from mailserver.imap.grammar import is_astring
from mailserver.imap.responses import IString, Value
from mailserver.imap.selected import FolderCache, Mailbox, Target
from mailserver.search.settings import SearchSettings
from storage.api import INBOX, Account, Folder, MailStore
from storage.directory import ALL_RIGHTS, DirectoryStore, MailboxGrant

SYSTEM_FLAGS: Final = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
SHARED: Final = "Shared"
"""Prefix of the shared namespace (RFC 2342 section 5: "Other Users'/Shared")."""
NOPERM_TEXT: Final = "Không đủ quyền với hộp thư này / Permission denied"


class UserSlots(Protocol):
    """Counts the logged-in connections of each account (the driver's; RFC 5530 LIMIT)."""

    def acquire(self, account_id: int) -> bool:
        """Take a slot for one more connection of the account; False when all are taken."""
        ...

    def release(self, account_id: int) -> None:
        """Give back a slot taken by ``acquire``."""
        ...


class JunkTrainer(Protocol):
    """Where the session reports what the user taught about spam (the driver trains
    the Bayesian filter in the background, never delaying the command)."""

    def submit(self, account_id: int, folder_id: int, uids: Sequence[int], is_spam: bool) -> None:
        """Learn the messages ``uids`` of the folder as spam, or as ham (undoing spam)."""
        ...


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


class SessionCore:
    """The state of one IMAP session (set by ``Session.__init__``) and the helpers
    its command handlers share."""

    store: MailStore
    authenticator: Authenticator
    settings: ImapSettings
    search_settings: SearchSettings
    """``[search]``: whether SEARCH asks the full-text index, exact diacritics."""
    secure: bool
    remote_ip: str
    starttls_available: bool
    connection_id: str
    state: State
    account: Account | None
    enabled: frozenset[str]
    """ENABLEd extensions (RFC 5161); frozen: most sessions never enable one."""
    mailbox: Mailbox | None
    directory: DirectoryStore | None
    trainer: JunkTrainer | None
    folders: FolderCache
    """What this session shares with the others of its service (``selected.py``)."""
    _clock: Callable[[], float]
    _fresh_until: float
    _grants: list[MailboxGrant]
    _own_agency: str | None
    """Agency code when the logged-in account is itself an agency mailbox."""

    async def _attention(self, target: Target) -> None:
        """Count a check of an agency mailbox (``Session`` does)."""

    def _transition(self, event: Transition) -> None:
        self.state = TRANSITIONS[(self.state, event)]
        if self.state is not State.SELECTED:
            self._drop_mailbox()

    def _drop_mailbox(self) -> None:
        mb, self.mailbox = self.mailbox, None
        if mb is None:
            return
        mb.closed = True
        if mb.watch is not None:
            self.store.changes.unwatch(mb.folder.id, mb.watch)
            self.folders.released(mb.folder.id, mb.watch)
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

    def _writable(self) -> Mailbox:
        mb = self._selected()
        if mb.readonly:
            raise UserError("Mailbox is read-only", "READ-ONLY")
        return mb

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

    def _learn(self, account_id: int, folder_id: int, uids: Sequence[int], *, is_spam: bool) -> None:
        """Hand what the user taught to the trainer; it runs in the background and
        its failures are only logged (the command's answer is already decided)."""
        if self.trainer is not None and uids:
            self.trainer.submit(account_id, folder_id, uids, is_spam)

    async def _check_quota(self, account_id: int, size: int) -> None:
        """NO [OVERQUOTA] (RFC 9208 section 4.3) when ``size`` octets do not fit."""
        if (await self.store.quota(account_id)).refusal(size) is not None:
            raise UserError("Over quota", "OVERQUOTA")

    def _login_allowed(self) -> bool:
        if self.secure or self.settings.allow_plaintext_login:
            return True
        try:
            return ipaddress.ip_address(self.remote_ip).is_loopback
        except ValueError:
            return False


def flag_right(flag: str) -> str:
    """The RFC 4314 right needed to set or clear ``flag`` (section 4, STORE)."""
    return {"\\Seen": "s", "\\Deleted": "t"}.get(flag, "w")
