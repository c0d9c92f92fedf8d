"""Mail routing data of the directory: other local domains, alias domains,
address aliases and forwarding (interface and value types).

* A **domain** is either another local domain (mail for it is delivered
  here to accounts in it) or an alias domain (``alias_of``): ``x@D`` is
  ``x@alias_of`` for delivery and for sending.
* An **address alias** maps one address to one or more local targets
  (personal or agency addresses, groups); several rows with one ``alias``
  make several targets.
* A **forward** sends an address's mail on to one external address, keeping
  a copy in the mailbox when ``keep_copy``.

Every change bumps one serial (``serial()``), so a server can cache the
routing data and reload it only when the CLI changed something. Every change
writes its audit entry (the directory's audit log) in the same transaction.
Addresses and domains are stored lower-case.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from storage.api import MailStore
from storage.directory import By, DirectoryError


class RouteTaken(DirectoryError):  # noqa: N818 - reads as the refusal
    """The domain, alias or forward exists already."""


@dataclass(frozen=True, slots=True)
class Domain:
    name: str
    alias_of: str | None
    """The domain this one is an alias of, or None for another local domain."""
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AddressAlias:
    alias: str
    target: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Forward:
    address: str
    target: str
    keep_copy: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RoutingTable:
    """Everything routing needs, read in one go (cached by serial)."""

    serial: int
    domains: tuple[Domain, ...]
    aliases: tuple[AddressAlias, ...]
    forwards: tuple[Forward, ...]


class RoutesStore(Protocol):
    async def serial(self) -> int:
        """Changes made so far (0 before the first)."""
        ...

    async def table(self) -> RoutingTable: ...

    async def add_domain(self, name: str, alias_of: str | None, *, by: By) -> Domain:
        """Raises RouteTaken."""
        ...

    async def remove_domain(self, name: str, *, by: By) -> Domain | None: ...

    async def domains(self) -> list[Domain]: ...

    async def add_address_alias(self, alias: str, target: str, *, by: By) -> AddressAlias:
        """Raises RouteTaken when that alias already has that target."""
        ...

    async def remove_address_alias(self, alias: str, target: str | None, *, by: By) -> list[AddressAlias]:
        """Remove one target of the alias, or all of them (``target`` None)."""
        ...

    async def address_aliases(
        self, *, alias: str | None = None, target: str | None = None
    ) -> list[AddressAlias]: ...

    async def set_forward(self, address: str, target: str, keep_copy: bool, *, by: By) -> Forward:
        """Set or replace the forward of ``address``."""
        ...

    async def clear_forward(self, address: str, *, by: By) -> Forward | None: ...

    async def forwards(self, address: str | None = None) -> list[Forward]: ...


def open_routes(store: MailStore) -> RoutesStore:
    """The routing tables on the same database as ``store`` (``storage.storage_of``)."""
    from storage import storage_of

    return storage_of(store).routes
