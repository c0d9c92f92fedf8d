"""Mail storage: SQL index (SQLAlchemy, SQLite or PostgreSQL) plus Maildir message files.

``open_storage`` is the entry point of the server: it builds, once, the shared
``storage.sql.database.Database`` and every store on it, and returns them as
one ``Storage`` (mail, directory, activity, routes, credentials, DMARC
reports, Sieve scripts and state, outbound queue). Code outside ``storage/``
receives the parts it uses and talks to their Protocols
(``storage.api.MailStore``, ``storage.directory.DirectoryStore``, …); it never
imports ``storage.sql``.

``open_store`` (the mail store alone, owning its database) remains for the CLI
and the tests; ``storage_of(store)`` finds the ``Storage`` a mail store belongs
to, which is what the per-store factories (``open_directory``,
``activity_for``, ``credentials_for``, ``open_routes``) return parts of.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeAlias
from weakref import WeakKeyDictionary

from storage.api import MailStore

if TYPE_CHECKING:
    from storage.activity import ActivityStore
    from storage.credentials import CredentialStore
    from storage.directory import DirectoryStore
    from storage.dmarc import DmarcStore
    from storage.queue import OutboundQueue
    from storage.routes import RoutesStore
    from storage.sieve import SieveScripts
    from storage.sievestate import SieveState
    from storage.tlsrpt import TlsRptStore

    _Parts: TypeAlias = tuple[
        DirectoryStore, ActivityStore, RoutesStore, CredentialStore, DmarcStore, SieveScripts, SieveState,
        TlsRptStore, OutboundQueue | None, "Resource | None",
    ]

__all__ = ["Storage", "open_storage", "open_store", "probe_database", "storage_of"]


class Resource(Protocol):
    """Something ``Storage`` starts before the stores and closes after them."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True, eq=False)
class Storage:
    """Every store of one database, built once (``open_storage``).

    Lifecycle: ``await storage.start()`` opens the database (applying
    migrations), then starts the mail store and the queue; ``await
    storage.close()`` closes them in reverse. A ``Storage`` built around a mail
    store that owns its database (``open_store``) has no ``database`` of its
    own: the mail store's ``start``/``close`` open and close it.
    """

    mail: MailStore
    directory: DirectoryStore
    activity: ActivityStore
    routes: RoutesStore
    credentials: CredentialStore
    dmarc: DmarcStore
    sieve: SieveScripts
    sieve_state: SieveState
    tlsrpt: TlsRptStore
    queue: OutboundQueue | None = None
    """Present when ``open_storage`` was given a spool directory."""
    database: Resource | None = None

    def outbound_queue(self) -> OutboundQueue:
        """``queue``, which the caller needs (it opened the storage with a spool directory)."""
        if self.queue is None:
            raise RuntimeError("storage opened without a spool directory has no outbound queue")
        return self.queue

    async def start(self) -> None:
        if self.database is not None:
            await self.database.start()
        await self.mail.start()
        if self.queue is not None:
            await self.queue.start()

    async def close(self) -> None:
        try:
            if self.queue is not None:
                await self.queue.close()
            await self.mail.close()
        finally:
            if self.database is not None:
                await self.database.close()


_PARTS: WeakKeyDictionary[MailStore, _Parts] = WeakKeyDictionary()
"""The other parts of each mail store's ``Storage``: none of them refers to the
mail store, so the entry goes when the store does."""


def _register(storage: Storage) -> Storage:
    _PARTS[storage.mail] = (
        storage.directory, storage.activity, storage.routes, storage.credentials, storage.dmarc,
        storage.sieve, storage.sieve_state, storage.tlsrpt, storage.queue, storage.database,
    )
    return storage


def storage_of(store: MailStore) -> Storage:
    """The ``Storage`` ``store`` belongs to (built by ``open_storage`` or ``open_store``)."""
    parts = _PARTS.get(store)
    if parts is None:
        raise TypeError(f"{type(store).__name__} was not opened by storage.open_storage or open_store")
    return Storage(store, *parts)


def open_storage(
    url: str, maildir: Path, *, quota_bytes: int | None = None, spool_dir: Path | None = None
) -> Storage:
    """Every store on one database, for a SQLAlchemy async URL
    (``sqlite+aiosqlite:///…`` or ``postgresql+asyncpg://…``) and a Maildir root;
    with ``spool_dir``, the outbound queue too. Call ``await storage.start()``."""
    from storage.sql.wiring import sql_storage

    return _register(sql_storage(url, maildir, quota_bytes=quota_bytes, spool_dir=spool_dir))


def open_store(url: str, maildir: Path, *, quota_bytes: int | None = None) -> MailStore:
    """The mail store alone, opening and closing its database itself (the CLI, tests):
    ``await store.start()``. The other stores of its database: ``storage_of(store)``."""
    from storage.sql.wiring import sql_storage

    return _register(sql_storage(url, maildir, quota_bytes=quota_bytes, own=False)).mail


async def probe_database(url: str) -> str:
    """Query the mail index at ``url`` once, without migrating it (``mailserver
    health``); return the URL with its password hidden. Raises what the driver
    raises (``sqlalchemy.exc.SQLAlchemyError``, ``OSError``)."""
    from storage.sql.database import probe

    return await probe(url)
