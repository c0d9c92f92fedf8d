"""The one recipient resolver: local domains (configured and added with
``mailserver domain add``), alias domains, address aliases, forwards,
accounts and distribution groups.

``Router.resolve(address)`` turns an address of ours into what it reaches:
active mailboxes, forwards to outside addresses (sent with SRS,
``mailserver/smtp/srs.py``) and outside members of groups. The MX and
submission ask it at RCPT (``smtp/delivery.py``); the sender policy asks
``owners`` who may send as an alias or alias-domain address.

Order for one address (after its domain is made canonical: ``x@alias-domain``
is ``x@target-domain``):

1. a forward: the outside target, and nothing else unless ``--keep-copy``;
2. an active account: that mailbox;
3. address aliases: every target, resolved in turn (a merged or renamed
   agency's old address reaches the new mailbox even while the old account
   is kept, disabled, until it is purged);
4. a disabled account: refused as disabled;
5. a distribution group named by the local part.

Alias chains are followed to ``MAX_DEPTH`` and each address once, so an alias
loop ends. The routing tables are cached and reloaded when their serial moves
(one primary-key read per ``refresh``: the CLI may change them while the
server runs).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from storage.api import Account, MailStore
from storage.routes import Forward, RoutesStore, RoutingTable, open_routes

MAX_DEPTH: Final = 8

GroupExpander = Callable[[str], Awaitable[list[str] | None]]
"""Local part -> member addresses of the group of that code, None when none."""


@dataclass(slots=True)
class Resolution:
    accounts: list[Account] = field(default_factory=list)
    """Active mailboxes reached, each once."""
    forwards: list[tuple[str, str]] = field(default_factory=list)
    """(forwarding address, outside target) pairs."""
    remote: list[str] = field(default_factory=list)
    """Outside addresses reached through a group."""
    disabled: list[str] = field(default_factory=list)
    """Disabled mailboxes named (reached nothing themselves)."""
    group: bool = False
    """A distribution group was expanded (only authenticated senders may use one)."""

    @property
    def reaches(self) -> bool:
        return bool(self.accounts or self.forwards or self.remote)


@functools.lru_cache(maxsize=4096)
def domain_keys(domain: str) -> tuple[str, ...]:
    """Lower-case forms of a domain to compare on: as given, A-label, U-label."""
    base = domain.lower().rstrip(".")
    keys = [base]
    try:
        keys.append(base.encode("idna").decode("ascii"))
    except UnicodeError:
        pass
    try:
        keys.append(base.encode("ascii").decode("idna"))
    except UnicodeError:
        pass
    return tuple(keys)


class Router:
    def __init__(
        self, domains: Sequence[str], store: MailStore, *, groups: GroupExpander | None = None
    ) -> None:
        self._store = store
        self._routes: RoutesStore | None = None
        self._groups = groups
        self._configured: dict[str, str] = {}
        for domain in domains:
            for key in domain_keys(domain):
                self._configured.setdefault(key, domain.lower().rstrip("."))
        self._table = RoutingTable(0, (), (), ())
        self._domains: dict[str, str] = {}
        self._aliases: dict[str, list[str]] = {}
        self._forwards: dict[str, Forward] = {}
        self._lock = asyncio.Lock()

    @property
    def routes(self) -> RoutesStore:
        if self._routes is None:
            self._routes = open_routes(self._store)
        return self._routes

    @property
    def table(self) -> RoutingTable:
        return self._table

    async def refresh(self) -> None:
        """Reload the routing tables if they changed since the last look."""
        serial = await self.routes.serial()
        if serial == self._table.serial:
            return
        async with self._lock:
            if serial != self._table.serial:
                self._load(await self.routes.table())

    def _load(self, table: RoutingTable) -> None:
        added = {d.name: d.alias_of for d in table.domains}
        domains: dict[str, str] = {}
        for name, alias_of in added.items():
            canonical = name
            if alias_of:
                # One step: an alias domain names a configured or added domain.
                canonical = self._configured.get(alias_of) or alias_of
            for key in domain_keys(name):
                domains.setdefault(key, canonical)
        aliases: dict[str, list[str]] = {}
        for alias in table.aliases:
            aliases.setdefault(alias.alias, []).append(alias.target)
        self._domains = domains
        self._aliases = aliases
        self._forwards = {f.address: f for f in table.forwards}
        self._table = table

    # -- lookups on the cached tables --------------------------------------------
    def local_domain(self, domain: str) -> str | None:
        """The canonical spelling of ``domain`` if mail for it is delivered here
        (an alias domain gives its target), else None."""
        for key in domain_keys(domain):
            found = self._configured.get(key) or self._domains.get(key)
            if found is not None:
                return found
        return None

    def local_domains(self) -> list[str]:
        """Every domain of ours: configured, added and alias domains."""
        names = list(dict.fromkeys(self._configured.values()))
        return names + [d.name for d in self._table.domains if d.name not in names]

    def canonical(self, address: str) -> str | None:
        """``address`` with its domain made canonical, lower-case; None when
        the domain is not ours."""
        local, at, domain = address.strip().rpartition("@")
        if not at or not local:
            return None
        ours = self.local_domain(domain)
        return None if ours is None else f"{local}@{ours}".lower()

    def alias_targets(self, address: str) -> list[str]:
        return list(self._aliases.get(address.lower(), ()))

    def forward(self, address: str) -> Forward | None:
        return self._forwards.get(address.lower())

    def aliases_of(self, target: str) -> list[str]:
        """Addresses whose alias rows name ``target``."""
        wanted = target.lower()
        return [a for a, targets in self._aliases.items() if wanted in targets]

    # -- resolution -----------------------------------------------------------------
    async def resolve(self, address: str) -> Resolution | None:
        """What mail to ``address`` (in a local domain) reaches; None when the
        address names nothing here."""
        res = Resolution()
        found = await self._walk(address, 0, set(), res)
        return res if found else None

    async def _walk(self, address: str, depth: int, seen: set[str], res: Resolution) -> bool:
        canonical = self.canonical(address)
        if canonical is None:
            if address.lower() not in res.remote:
                res.remote.append(address.lower())
            return True
        if canonical in seen or depth > MAX_DEPTH:
            return True  # an alias loop or chain too long: reached already
        seen.add(canonical)
        forward = self._forwards.get(canonical)
        if forward is not None:
            res.forwards.append((canonical, forward.target))
            if not forward.keep_copy:
                return True
        account = await self._store.get_account(canonical)
        if account is not None and not account.disabled:
            if all(a.id != account.id for a in res.accounts):
                res.accounts.append(account)
            return True
        targets = self._aliases.get(canonical)
        if targets:
            for target in targets:
                await self._walk(target, depth + 1, seen, res)
            return True
        if account is not None:
            res.disabled.append(account.address)
            return True
        if self._groups is not None:
            members = await self._groups(canonical.rpartition("@")[0])
            if members is not None:
                res.group = True
                for member in members:
                    await self._walk(member, depth + 1, seen, res)
                return True
        return forward is not None

    async def owners(self, address: str) -> list[str]:
        """The mailbox addresses ``address`` stands for, for sending as it: the
        address itself in its canonical domain, or its alias targets (followed
        through chains). Forwards and groups give no one the right to send."""
        canonical = self.canonical(address)
        if canonical is None:
            return []
        out: list[str] = []
        self._owners(canonical, 0, out)
        return out

    def _owners(self, address: str, depth: int, out: list[str]) -> None:
        if address in out or depth > MAX_DEPTH:
            return
        out.append(address)
        for target in self._aliases.get(address, ()):
            canonical = self.canonical(target)
            if canonical is not None:
                self._owners(canonical, depth + 1, out)
