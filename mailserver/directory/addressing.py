"""Domains, address aliases and forwards, checked before they are stored
(``mailserver domain|alias|forward``; the tables are ``storage.routes``, the
resolver that uses them ``routing.Router``).

* ``domain add D`` makes D another local domain; ``--alias-of P`` makes
  ``x@D`` stand for ``x@P`` (P configured in ``server.domains`` or added, and
  not itself an alias). A domain with mailboxes, or that other domains are
  aliases of, is not removed.
* ``alias add ALIAS TARGET…``: ALIAS in a local domain and not a working
  mailbox (an active account would shadow it); every TARGET a local address
  that reaches something (a mailbox, an agency mailbox, another alias, a
  group) or an agency code (its mailbox).
* ``forward set ADDRESS --to EXTERNAL``: ADDRESS a local mailbox or alias,
  EXTERNAL outside every local domain (forwarding inside is an alias).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from mailserver.config import Config
from mailserver.directory.routing import Router
from storage.api import MailStore
from storage.directory import By, DirectoryError, open_directory
from storage.routes import AddressAlias, Domain, Forward, RoutesStore

_LABEL: Final = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_LOCAL: Final = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}")


class RouteError(DirectoryError):
    """An operator mistake about domains, aliases or forwards."""


def normalise_domain(text: str) -> str:
    name = text.strip().lower().rstrip(".")
    try:
        ascii_name = name.encode("idna").decode("ascii") if not name.isascii() else name
    except UnicodeError:
        raise RouteError(f"tên miền không hợp lệ / not a valid domain: {text!r}") from None
    labels = ascii_name.split(".")
    if len(labels) < 2 or len(ascii_name) > 253 or not all(_LABEL.fullmatch(x) for x in labels):
        raise RouteError(f"tên miền không hợp lệ / not a valid domain: {text!r}")
    return name


def normalise_address(text: str) -> str:
    local, at, domain = text.strip().rpartition("@")
    if not at or not _LOCAL.fullmatch(local) or local.startswith(".") or ".." in local:
        raise RouteError(f"địa chỉ không hợp lệ / not a valid address: {text!r}")
    return f"{local.lower()}@{normalise_domain(domain)}"


@dataclass(frozen=True, slots=True)
class AddressRoutes:
    """What routes mail for one address (for ``account show``)."""

    aliases: list[str]
    """Addresses that deliver here (alias rows whose target is this address)."""
    domains: list[str]
    """The same local part in these alias domains reaches this address too."""
    forward: Forward | None


class Addressing:
    def __init__(self, store: MailStore, config: Config) -> None:
        self.store = store
        self.config = config
        self.router = Router(config.server.domains, store)

    @property
    def routes(self) -> RoutesStore:
        return self.router.routes

    # -- domains --------------------------------------------------------------------
    async def add_domain(self, name: str, alias_of: str | None, *, by: By) -> Domain:
        await self.router.refresh()
        name = normalise_domain(name)
        if self.router.local_domain(name) is not None:
            raise RouteError(f"{name} đã là tên miền của hệ thống / is a local domain already")
        target = None
        if alias_of:
            target = normalise_domain(alias_of)
            if self.router.local_domain(target) is None:
                raise RouteError(f"{target} không phải tên miền của hệ thống / is not a local domain")
            if any(d.name == target and d.alias_of for d in self.router.table.domains):
                raise RouteError(f"{target} là tên miền bí danh / is an alias domain itself")
            target = self.router.local_domain(target)
        return await self.routes.add_domain(name, target, by=by)

    async def remove_domain(self, name: str, *, by: By) -> Domain:
        await self.router.refresh()
        name = normalise_domain(name)
        if name in {d.lower() for d in self.config.server.domains}:
            raise RouteError(
                f"{name} nằm trong server.domains (tệp cấu hình) / is configured in server.domains"
            )
        dependants = [d.name for d in self.router.table.domains if d.alias_of == name]
        if dependants:
            raise RouteError(
                f"{name} còn tên miền bí danh / still has alias domains: {', '.join(dependants)}"
            )
        used = [a.address for a in await self.store.list_accounts() if a.address.endswith("@" + name)]
        if used:
            raise RouteError(
                f"{name} còn {len(used)} hộp thư / still has {len(used)} mailbox(es), e.g. {used[0]}"
            )
        removed = await self.routes.remove_domain(name, by=by)
        if removed is None:
            raise RouteError(f"không có tên miền / no such added domain: {name}")
        return removed

    async def domains(self) -> list[Domain]:
        return await self.routes.domains()

    # -- address aliases ------------------------------------------------------------
    async def _local(self, text: str) -> str:
        address = normalise_address(text)
        canonical = self.router.canonical(address)
        if canonical is None:
            raise RouteError(f"{address}: không thuộc tên miền của hệ thống / not in a local domain")
        return canonical

    async def add_alias(self, alias: str, targets: list[str], *, by: By) -> list[AddressAlias]:
        await self.router.refresh()
        name = await self._local(alias)
        account = await self.store.get_account(name)
        if account is not None and not account.disabled:
            raise RouteError(f"{name} là hộp thư đang dùng / is a mailbox in use, not an alias")
        wanted = []
        for text in targets:
            if "@" not in text:
                # An agency code stands for its mailbox (alias add vanthu@… stttt).
                agency = await open_directory(self.store).get_agency(text.strip().lower())
                if agency is None or agency.address is None:
                    raise RouteError(f"không có cơ quan / no agency {text!r}")
                text = agency.address
            target = await self._local(text)
            if target == name:
                raise RouteError(f"{name}: bí danh trỏ vào chính nó / an alias of itself")
            if await self.router.resolve(target) is None and target.partition("@")[0] not in (
                "postmaster",
                "abuse",
            ):
                raise RouteError(f"{target}: không có hộp thư, bí danh hay nhóm này / reaches no mailbox")
            wanted.append(target)
        if not wanted:
            raise RouteError("cần ít nhất một đích / at least one TARGET")
        return [await self.routes.add_address_alias(name, target, by=by) for target in dict.fromkeys(wanted)]

    async def remove_alias(self, alias: str, target: str | None, *, by: By) -> list[AddressAlias]:
        await self.router.refresh()
        name = await self._local(alias)
        removed = await self.routes.remove_address_alias(
            name, await self._local(target) if target else None, by=by
        )
        if not removed:
            raise RouteError(
                f"không có bí danh / no such alias: {name}" + (f" -> {target}" if target else "")
            )
        return removed

    async def aliases(self, address: str | None = None) -> list[AddressAlias]:
        if address is None:
            return await self.routes.address_aliases()
        await self.router.refresh()
        name = await self._local(address)
        return await self.routes.address_aliases(alias=name)

    # -- forwards -------------------------------------------------------------------
    async def set_forward(self, address: str, target: str, keep_copy: bool, *, by: By) -> Forward:
        await self.router.refresh()
        name = await self._local(address)
        if await self.store.get_account(name) is None and not self.router.alias_targets(name):
            raise RouteError(f"{name}: không có hộp thư hay bí danh này / no such mailbox or alias")
        outside = normalise_address(target)
        if self.router.local_domain(outside.rpartition("@")[2]) is not None:
            raise RouteError(
                f"{outside} thuộc tên miền của hệ thống: dùng bí danh / is local: use an alias instead"
            )
        return await self.routes.set_forward(name, outside, keep_copy, by=by)

    async def clear_forward(self, address: str, *, by: By) -> Forward:
        await self.router.refresh()
        name = await self._local(address)
        cleared = await self.routes.clear_forward(name, by=by)
        if cleared is None:
            raise RouteError(f"{name} không chuyển tiếp thư / has no forward")
        return cleared

    async def forwards(self) -> list[Forward]:
        return await self.routes.forwards()

    async def for_address(self, address: str) -> AddressRoutes:
        await self.router.refresh()
        name = address.strip().lower()
        local, _, domain = name.rpartition("@")
        alias_domains = [d.name for d in self.router.table.domains if d.alias_of == domain]
        return AddressRoutes(
            aliases=self.router.aliases_of(name),
            domains=[f"{local}@{d}" for d in alias_domains],
            forward=self.router.forward(name),
        )
