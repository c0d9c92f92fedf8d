"""The one DNS interface: every lookup (MX, A/AAAA, TXT for SPF/DKIM/DMARC, PTR)
goes through a ``Resolver``.

Two implementations compose: ``StaticResolver`` answers from a configured map
(``dns.static``), and ``DnsResolver`` asks the configured name servers with
dnspython under a short lifetime. ``build_resolver`` puts the static map in front
so tests and air-gapped deployments never touch the outside world.

Answers are text forms, one string per record (RFC 1035 presentation format):
``MX`` -> ``"10 mx.example.org."``, ``A`` -> ``"192.0.2.1"``, ``TXT`` -> the
record's character-strings joined without separators (RFC 7208 section 3.3),
``PTR`` -> ``"host.example.org."``. A name that does not exist or has no record
of the type answers ``[]``; a server failure or time-out raises ``DnsTempError``
(callers turn it into a 4xx / ``temperror``).

Both the async API (protocol handlers) and a sync one (for dkimpy and pyspf,
which call DNS from worker threads) are offered.

DNSSEC (for DANE, RFC 7672): ``AuthenticatedResolver.query_authenticated``
returns the records and whether the answer was authenticated, i.e. carried the
AD bit (RFC 4035 section 3.2.3) from ``dns.dnssec_resolver``, a validating
resolver the operator trusts (on loopback, or over a trusted path: RFC 6698
section 4.1). ``build_dnssec_resolver`` gives None when none is configured, and
the static map is never consulted for it: its answers are not DNSSEC data.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Mapping
from typing import Final, Protocol

import dns.asyncresolver
import dns.exception
import dns.flags
import dns.name
import dns.resolver
import dns.reversename

from policy.settings import DnsSettings

RDTYPES: Final = frozenset({"A", "AAAA", "MX", "TXT", "PTR", "CNAME", "TLSA"})


class DnsTempError(Exception):
    """The lookup could not be completed now (SERVFAIL, time-out, no server)."""



class Resolver(Protocol):
    async def query(self, name: str, rdtype: str) -> list[str]: ...

    def query_sync(self, name: str, rdtype: str) -> list[str]: ...


def may_block(resolver: Resolver) -> bool:
    """Whether ``resolver.query_sync`` may wait for a name server (so callers run
    it in a thread). False only for the resolvers of ``dns.use_servers = false``
    (a static map, nothing behind it), which answer from memory; any other
    resolver, ours or not, is taken to block."""
    return bool(getattr(resolver, "blocking", True))


class AuthenticatedResolver(Protocol):
    async def query_authenticated(self, name: str, rdtype: str) -> tuple[list[str], bool]:
        """The records and True when the answer carried the AD bit (DNSSEC-validated)."""
        ...


def _norm(name: str) -> str:
    return name.lower().rstrip(".")


class StaticResolver:
    """Answers from a map ``{"name TYPE": [records]}``; names absent from it fall
    through to ``fallback`` (without one, they do not exist)."""

    def __init__(self, records: Mapping[str, list[str]], fallback: Resolver | None = None) -> None:
        self._records: dict[tuple[str, str], list[str]] = {}
        for key, values in records.items():
            name, _, rdtype = key.strip().rpartition(" ")
            if not name or rdtype.upper() not in RDTYPES:
                raise ValueError(f"dns.static key must be 'NAME TYPE', got {key!r}")
            self._records[(_norm(name), rdtype.upper())] = list(values)
        self._names = {name for name, _ in self._records}
        self._fallback: Resolver = fallback if fallback is not None else _NoServers()

    @property
    def blocking(self) -> bool:
        """The map answers from memory; names outside it go to the fallback."""
        return may_block(self._fallback)

    def _lookup(self, name: str, rdtype: str) -> list[str] | None:
        key = (_norm(name), rdtype.upper())
        if key in self._records:
            return list(self._records[key])
        if key[0] in self._names:
            return []
        return None

    async def query(self, name: str, rdtype: str) -> list[str]:
        found = self._lookup(name, rdtype)
        if found is None:
            return await self._fallback.query(name, rdtype)
        return found

    def query_sync(self, name: str, rdtype: str) -> list[str]:
        found = self._lookup(name, rdtype)
        if found is None:
            return self._fallback.query_sync(name, rdtype)
        return found


def _text(rdata: object, rdtype: str) -> str:
    if rdtype == "TXT":
        strings: tuple[bytes, ...] = rdata.strings  # type: ignore[attr-defined]
        return b"".join(strings).decode("utf-8", "replace")
    return str(rdata.to_text())  # type: ignore[attr-defined]


class DnsResolver:
    """dnspython against configured servers (``host`` or ``host:port``)."""

    blocking: Final = True

    def __init__(self, settings: DnsSettings) -> None:
        self._settings = settings
        self._async = dns.asyncresolver.Resolver(configure=not settings.nameservers)
        self._sync = dns.resolver.Resolver(configure=not settings.nameservers)
        if settings.nameservers:
            hosts: list[str] = []
            ports: dict[str, int] = {}
            for server in settings.nameservers:
                host, port = _split_server(server)
                hosts.append(host)
                ports[host] = port
            for resolver in (self._async, self._sync):
                resolver.nameservers = hosts
                resolver.nameserver_ports = ports
        for resolver in (self._async, self._sync):
            resolver.lifetime = settings.timeout
            resolver.timeout = settings.timeout

    async def query(self, name: str, rdtype: str) -> list[str]:
        try:
            answer = await self._async.resolve(name, rdtype, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (dns.exception.Timeout, dns.resolver.NoNameservers, dns.resolver.LifetimeTimeout) as exc:
            raise DnsTempError(f"{name} {rdtype}: {exc.__class__.__name__}") from None
        except dns.exception.DNSException as exc:
            raise DnsTempError(f"{name} {rdtype}: {exc}") from None
        return [_text(r, rdtype) for r in answer]

    async def query_authenticated(self, name: str, rdtype: str) -> tuple[list[str], bool]:
        """Like ``query``; the flag is the AD bit of the response (RFC 4035 3.2.3). A
        name that does not exist answers ``([], ad)`` (an authenticated denial counts)."""
        try:
            answer = await self._async.resolve(name, rdtype, search=False, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN as exc:
            responses = list(exc.responses().values())  # type: ignore[no-untyped-call]
            return [], bool(responses) and all(r.flags & dns.flags.AD for r in responses)
        except dns.exception.DNSException as exc:
            raise DnsTempError(f"{name} {rdtype}: {exc.__class__.__name__}") from None
        ad = bool(answer.response.flags & dns.flags.AD)
        if answer.rrset is None:
            return [], ad
        return [_text(r, rdtype) for r in answer.rrset], ad

    def query_sync(self, name: str, rdtype: str) -> list[str]:
        try:
            answer = self._sync.resolve(name, rdtype, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.DNSException as exc:
            raise DnsTempError(f"{name} {rdtype}: {exc.__class__.__name__}") from None
        return [_text(r, rdtype) for r in answer]


def _split_server(server: str) -> tuple[str, int]:
    try:
        ipaddress.ip_address(server)
        return server, 53
    except ValueError:
        pass
    host, sep, port = server.rpartition(":")
    if sep and port.isdigit():
        return host.strip("[]"), int(port)
    return server, 53


class _NoServers:
    """Used when ``dns.use_servers = false``: anything not static does not exist."""

    blocking: Final = False

    async def query(self, name: str, rdtype: str) -> list[str]:
        return []

    def query_sync(self, name: str, rdtype: str) -> list[str]:
        return []


def build_dnssec_resolver(settings: DnsSettings) -> AuthenticatedResolver | None:
    """The resolver of ``dns.dnssec_resolver``, asking with AD and DO set (RFC 6840
    section 5.7: AD in a query asks for the AD bit in the answer), or None."""
    if not settings.dnssec_resolver:
        return None
    resolver = DnsResolver(DnsSettings(nameservers=[settings.dnssec_resolver], timeout=settings.timeout))
    for inner in (resolver._async, resolver._sync):  # noqa: SLF001 - our own class
        inner.use_edns(0, dns.flags.DO, 1232)
        inner.flags = dns.flags.RD | dns.flags.AD
    return resolver


def build_resolver(settings: DnsSettings) -> Resolver:
    fallback: Resolver = DnsResolver(settings) if settings.use_servers else _NoServers()
    if settings.static:
        return StaticResolver(settings.static, fallback)
    return fallback


# -- typed helpers over the raw interface ---------------------------------------


async def lookup_mx(resolver: Resolver, domain: str) -> list[tuple[int, str]]:
    """MX hosts by preference (RFC 5321 section 5.1); [] when there is none."""
    records: list[tuple[int, str]] = []
    for text in await resolver.query(domain, "MX"):
        pref, _, host = text.partition(" ")
        if pref.isdigit() and host:
            records.append((int(pref), _norm(host)))
    return sorted(records)


async def lookup_addresses(resolver: Resolver, host: str) -> list[str]:
    """A then AAAA records of ``host``; an IP literal answers itself."""
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        pass
    a, aaaa = await asyncio.gather(resolver.query(host, "A"), resolver.query(host, "AAAA"))
    return a + aaaa


async def lookup_ptr(resolver: Resolver, ip: str) -> str | None:
    try:
        name = dns.reversename.from_address(ip).to_text()
    except (ValueError, dns.exception.SyntaxError):
        return None
    try:
        names = await resolver.query(name, "PTR")
    except DnsTempError:
        return None
    return _norm(names[0]) if names else None
