"""Per-account Sieve scripts (RFC 5228): the interface, value types and errors.

Theory of operation
-------------------
Each account owns any number of named scripts, of which at most one is
*active*: the one run at final delivery (RFC 5804 section 1.1: "a user may
have multiple Sieve scripts on the server, yet only one script may be used
for filtering of incoming messages"). Names are compared exactly (RFC 5804
section 1.6: script names are case-sensitive Unicode strings, NFC, no
control characters); the text is stored as written (UTF-8).

Rules the store enforces, in one transaction each so that concurrent
ManageSieve sessions, the CLI and the portal cannot break them:

* ``set_active(name)`` activates that script and deactivates every other;
  ``set_active(None)`` leaves none active (RFC 5804 section 2.8).
* ``delete_script`` of the active script raises ``ScriptActive``
  (RFC 5804 section 2.10: ``NO (ACTIVE)``).
* ``rename_script`` onto an existing name raises ``ScriptExists``
  (RFC 5804 section 2.11.1: ``NO (ALREADYEXISTS)``); the active flag moves
  with the script.
* ``put_script`` replaces a script of the same name (keeping its active
  flag) or adds one; with ``max_scripts`` it refuses an addition beyond
  that count with ``TooManyScripts`` (``NO (QUOTA/MAXSCRIPTS)``).

Validation of the script text (syntax, size) is the caller's business: the
store keeps whatever it is given, so a server-side operator can repair a
broken script without fighting its own checker.

Lifecycle: ``sieve_scripts_for(store)`` after ``await store.start()``; it
borrows the store's engine, like the credential store, and is cached per store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol

from storage.api import MailStore

__all__ = [
    "NAME_MAX",
    "NoSuchScript",
    "NoSuchScriptOwner",
    "ScriptActive",
    "ScriptExists",
    "SieveScript",
    "SieveScriptError",
    "SieveScripts",
    "TooManyScripts",
    "sieve_scripts_for",
]

NAME_MAX: Final = 512
"""Longest script name stored, in characters (callers refuse longer ones first)."""


class SieveScriptError(Exception):
    """A refused script operation (a user error, not a server fault)."""


class NoSuchScriptOwner(SieveScriptError):  # noqa: N818 - a refusal, not a bug
    """The address has no mailbox on this server."""


class NoSuchScript(SieveScriptError):  # noqa: N818
    """No script of that name (ManageSieve ``NONEXISTENT``)."""


class ScriptExists(SieveScriptError):  # noqa: N818
    """A script of that name already exists (ManageSieve ``ALREADYEXISTS``)."""


class ScriptActive(SieveScriptError):  # noqa: N818
    """The active script cannot be deleted (ManageSieve ``ACTIVE``)."""


class TooManyScripts(SieveScriptError):  # noqa: N818
    """The account already has the maximum number of scripts (``QUOTA/MAXSCRIPTS``)."""


@dataclass(frozen=True)
class SieveScript:
    owner: str
    """The owning mailbox's canonical (lower-case) address."""
    name: str
    text: str
    active: bool
    updated: datetime


class SieveScripts(Protocol):
    """Scripts of accounts, addressed by mailbox address (any case). Coroutines
    on the store's loop. Every method raises ``NoSuchScriptOwner`` for an address
    without a mailbox."""

    async def active_script(self, address: str) -> SieveScript | None:
        """The account's active script, or None."""
        ...

    async def get_script(self, address: str, name: str) -> SieveScript | None:
        """The named script, or None."""
        ...

    async def list_scripts(self, address: str) -> list[SieveScript]:
        """All the account's scripts, by name."""
        ...

    async def put_script(self, address: str, name: str, text: str, *, max_scripts: int | None = None) -> None:
        """Create or replace the named script (a replaced script keeps its active
        flag). ``TooManyScripts`` when creating would exceed ``max_scripts``."""
        ...

    async def set_active(self, address: str, name: str | None) -> None:
        """Make ``name`` the only active script; None deactivates all.
        ``NoSuchScript`` when there is no such script."""
        ...

    async def delete_script(self, address: str, name: str) -> None:
        """Delete the named script: ``NoSuchScript``, or ``ScriptActive`` if it is active."""
        ...

    async def rename_script(self, address: str, old: str, new: str) -> None:
        """Rename a script (its active flag follows): ``NoSuchScript`` when
        ``old`` is missing, ``ScriptExists`` when ``new`` is taken."""
        ...


def sieve_scripts_for(store: MailStore) -> SieveScripts:
    """The script store on the same database as ``store`` (``storage.storage_of``)."""
    from storage import storage_of

    return storage_of(store).sieve
