"""What Sieve remembers between deliveries: vacation replies sent (RFC 5230
section 4.2: once per sender per period) and duplicate tracking (RFC 7352
section 3). Both survive restarts in SQL; ``MemorySieveState`` serves stores
without SQL and tests.

Keys are per mailbox (``owner``, lower-case address). Entries carry an
expiry; expired ones count as absent and ``purge`` deletes them.

Lifecycle: ``sieve_state_for(store)`` after ``await store.start()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol
from weakref import WeakKeyDictionary

from storage.api import MailStore

__all__ = ["MemorySieveState", "SieveState", "sieve_state_for"]


class SieveState(Protocol):
    async def vacation_recent(self, owner: str, handle: str, sender: str, now: datetime) -> bool:
        """True when a reply with ``handle`` went to ``sender`` and its period has not ended."""
        ...

    async def vacation_sent(self, owner: str, handle: str, sender: str, expires: datetime) -> None:
        """Remember a reply until ``expires``."""
        ...

    async def duplicates(self, owner: str, now: datetime) -> frozenset[str]:
        """Tracking keys of ``owner`` still remembered at ``now``."""
        ...

    async def track(self, owner: str, entries: Sequence[tuple[str, datetime]]) -> None:
        """Remember (key, expiry) pairs; a key seen again gets the new expiry."""
        ...

    async def purge(self, now: datetime) -> int:
        """Delete expired entries; how many."""
        ...


class MemorySieveState:
    """In-process state (lost at exit): for stores without SQL and tests."""

    def __init__(self) -> None:
        self._vacation: dict[tuple[str, str, str], datetime] = {}
        self._dups: dict[tuple[str, str], datetime] = {}

    async def vacation_recent(self, owner: str, handle: str, sender: str, now: datetime) -> bool:
        expires = self._vacation.get((owner.lower(), handle, sender.lower()))
        return expires is not None and expires > now

    async def vacation_sent(self, owner: str, handle: str, sender: str, expires: datetime) -> None:
        self._vacation[(owner.lower(), handle, sender.lower())] = expires

    async def duplicates(self, owner: str, now: datetime) -> frozenset[str]:
        owner = owner.lower()
        return frozenset(k for (o, k), exp in self._dups.items() if o == owner and exp > now)

    async def track(self, owner: str, entries: Sequence[tuple[str, datetime]]) -> None:
        for key, expires in entries:
            self._dups[(owner.lower(), key)] = expires

    async def purge(self, now: datetime) -> int:
        old = [k for k, exp in self._vacation.items() if exp <= now]
        dups = [k for k, exp in self._dups.items() if exp <= now]
        for k in old:
            del self._vacation[k]
        for d in dups:
            del self._dups[d]
        return len(old) + len(dups)


_CACHE: WeakKeyDictionary[MailStore, SieveState] = WeakKeyDictionary()


def sieve_state_for(store: MailStore) -> SieveState:
    """The state on the same database as ``store`` (``storage.storage_of``); in
    memory for a store not opened by ``storage`` (a test's own)."""
    from storage import storage_of

    try:
        return storage_of(store).sieve_state
    except TypeError:
        found = _CACHE.get(store)
        if found is None:
            found = _CACHE[store] = MemorySieveState()
        return found
