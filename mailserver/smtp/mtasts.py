"""MTA-STS (RFC 8461), the sending side: discover, fetch, cache and apply a policy.

Theory of operation
-------------------
``MtaSts.lookup(domain)`` answers the policy that governs delivery to
``domain`` (section 5):

1. ``_mta-sts.<domain>`` TXT through the one resolver (section 3.1): exactly
   one record beginning ``v=STSv1`` with an ``id``;
2. a cached policy that is unexpired (section 5.1: ``max_age`` from when it was
   fetched) and carries the same id is used as it is; so is an unexpired cached
   policy when the TXT record is absent or the lookup fails (a man in the middle
   who hides the record must not switch the policy off). A cached policy past
   half its ``max_age`` is fetched again while mail goes to the domain, so it
   never expires under traffic (section 10.2 on refreshing proactively: an
   expired policy leaves the next delivery open to a downgrade); a failed
   refresh keeps the cached policy;
3. otherwise the policy is fetched from
   ``https://mta-sts.<domain>/.well-known/mta-sts.txt`` (section 3.3): the
   host name is resolved through the same resolver, the certificate must be
   valid for it against ``outbound.ca_file`` (default: the system's trust
   store), redirects are not followed, only 200 with ``text/plain`` counts,
   at most ``MAX_POLICY_SIZE`` octets within ``outbound.mta_sts_timeout``;
4. a fetched policy is cached in ``<data_dir>/mta-sts/<domain>.json``
   (written atomically), so a restart keeps it; a failed fetch falls back to
   the unexpired cached policy (section 5.1), else there is no policy and the
   failure (``sts-policy-fetch-error``, ``sts-policy-invalid``,
   ``sts-webpki-invalid``: RFC 8460 section 4.3.2.3) is reported.

``outbound.mta_sts_port`` (443) exists for tests, whose HTTPS server listens on
a loopback port; the host name (and so the certificate check) is unchanged.

How delivery applies the policy (``mailserver.smtp.queue``): in ``enforce``
mode only MX hosts matching an ``mx`` pattern are used (section 4.1), and only
over STARTTLS with a certificate valid for the MX host name (section 4.2);
otherwise the message is deferred (4.7.x), never sent in plain text. In
``testing`` mode the same checks run, their failures are reported (TLS-RPT)
and the message is delivered as it would be without a policy (section 5).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Final

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from pki.ca import atomic_write
from policy.dns import DnsTempError, Resolver, lookup_addresses

log = logging.getLogger(__name__)

MAX_POLICY_SIZE: Final = 64 * 1024
"""Octets of a policy file read at most (RFC 8461 section 3.3: senders may limit it)."""
MAX_AGE_LIMIT: Final = 31_557_600
"""Section 3.2: max_age is at most one year."""
MODES: Final = ("enforce", "testing", "none")
_ID: Final = re.compile(r"^[A-Za-z0-9]{1,32}$")
_KEY: Final = re.compile(r"^[A-Za-z0-9_.-]+$")


class StsPolicyError(ValueError):
    """A policy (or its TXT record) that does not follow RFC 8461 section 3."""


@dataclass(frozen=True, slots=True)
class StsPolicy:
    mode: str
    mx: tuple[str, ...]
    max_age: int
    id: str = ""
    """The id of the TXT record it was fetched under."""
    fetched_at: datetime | None = None
    text: tuple[str, ...] = ()
    """The policy's lines, for ``policy-string`` in TLS-RPT (RFC 8460 section 4.3.1.2)."""

    @property
    def expires_at(self) -> datetime:
        fetched = self.fetched_at or datetime.now(UTC)
        return fetched + timedelta(seconds=self.max_age)

    def matches(self, host: str) -> bool:
        """Section 4.1: the MX host name matches an ``mx`` pattern."""
        return any(mx_matches(pattern, host) for pattern in self.mx)


@dataclass(frozen=True, slots=True)
class StsLookup:
    """What governs delivery to a domain: a policy, and/or a failure to report."""

    policy: StsPolicy | None
    failure: str = ""
    """RFC 8460 result type of a policy failure ("" if none)."""
    detail: str = ""


def _half_gone(policy: StsPolicy, now: datetime) -> bool:
    """Past half its max_age: time to fetch it again while it still holds."""
    fetched = policy.fetched_at or now
    return now - fetched >= timedelta(seconds=policy.max_age / 2)


def mx_matches(pattern: str, host: str) -> bool:
    """RFC 8461 section 4.1: exact (case-insensitive) or ``*.`` standing for one label."""
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern.startswith("*."):
        first, dot, rest = host.partition(".")
        return bool(first) and bool(dot) and rest == pattern[2:]
    return pattern == host


def parse_txt(records: list[str]) -> str | None:
    """The ``id`` of the one ``v=STSv1`` TXT record (section 3.1), None when there
    is none; several, or one without a valid id, is an error."""
    found = [r for r in records if r.strip().startswith("v=STSv1")]
    if not found:
        return None
    if len(found) > 1:
        raise StsPolicyError("more than one v=STSv1 TXT record")
    fields: dict[str, str] = {}
    for part in found[0].split(";"):
        key, eq, value = part.strip().partition("=")
        if eq:
            fields.setdefault(key.strip(), value.strip())
    if fields.get("v") != "STSv1":
        raise StsPolicyError("TXT record does not start with v=STSv1")
    ident = fields.get("id", "")
    if not _ID.match(ident):
        raise StsPolicyError(f"bad id {ident!r}")
    return ident


def parse_policy(text: str) -> StsPolicy:
    """Section 3.2: ``key: value`` lines (CRLF or LF); unknown keys are ignored."""
    values: dict[str, str] = {}
    mx: list[str] = []
    lines: list[str] = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if not line:
            continue
        key, colon, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if not colon or not _KEY.match(key):
            raise StsPolicyError(f"not a policy line: {line[:80]!r}")
        lines.append(f"{key}: {value}")
        if key == "mx":
            mx.append(value.lower().rstrip("."))
        else:
            values.setdefault(key, value)
    if values.get("version") != "STSv1":
        raise StsPolicyError("version is not STSv1")
    mode = values.get("mode", "")
    if mode not in MODES:
        raise StsPolicyError(f"bad mode {mode!r}")
    age = values.get("max_age", "")
    if not age.isdigit() or len(age) > 10:
        raise StsPolicyError(f"bad max_age {age!r}")
    if mode != "none" and not mx:
        raise StsPolicyError("no mx lines")
    return StsPolicy(mode, tuple(mx), min(int(age), MAX_AGE_LIMIT), text=tuple(lines))


def policy_text(mode: str, mx: list[str], max_age: int) -> str:
    """The policy file we publish (section 3.2), CRLF-ended lines."""
    lines = ["version: STSv1", f"mode: {mode}"] + [f"mx: {m}" for m in mx] + [f"max_age: {max_age}"]
    return "\r\n".join(lines) + "\r\n"


# -- cache -------------------------------------------------------------------------


class PolicyCache:
    """One JSON file per policy domain under ``directory`` (survives restarts)."""

    def __init__(self, directory: Path) -> None:
        self._dir = directory
        self._memory: dict[str, StsPolicy] = {}

    def _path(self, domain: str) -> Path:
        return self._dir / f"{domain}.json"

    def _load(self, domain: str) -> StsPolicy | None:
        try:
            data = json.loads(self._path(domain).read_text(encoding="utf-8"))
            policy = parse_policy(data["policy"])
            fetched = datetime.fromisoformat(data["fetched_at"])
            return StsPolicy(policy.mode, policy.mx, policy.max_age, str(data["id"]), fetched, policy.text)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("mta-sts: cached policy of %s unreadable (%s); ignored", domain, exc)
            return None

    async def get(self, domain: str) -> StsPolicy | None:
        if domain not in self._memory:
            loaded = await asyncio.to_thread(self._load, domain)
            if loaded is None:
                return None
            self._memory[domain] = loaded
        return self._memory[domain]

    async def put(self, domain: str, policy: StsPolicy) -> None:
        data = {
            "id": policy.id,
            "fetched_at": (policy.fetched_at or datetime.now(UTC)).isoformat(),
            "policy": "\n".join(policy.text) + "\n",
        }
        await asyncio.to_thread(
            atomic_write, self._path(domain), json.dumps(data).encode(), 0o600
        )
        self._memory[domain] = policy


# -- fetching ---------------------------------------------------------------------


class HttpResolver(AbstractResolver):
    """aiohttp's host look-up through the one resolver (policy/dns.py)."""

    def __init__(self, resolver: Resolver) -> None:
        self._resolver = resolver

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            addresses = await lookup_addresses(self._resolver, host)
        except DnsTempError as exc:
            raise OSError(f"cannot resolve {host}: {exc}") from None
        if not addresses:
            raise OSError(f"{host} has no address")
        return [
            ResolveResult(hostname=host, host=a, port=port,
                          family=socket.AF_INET6 if ":" in a else socket.AF_INET,
                          proto=0, flags=socket.AI_NUMERICHOST)
            for a in addresses
        ]

    async def close(self) -> None:
        return None


class FetchError(Exception):
    def __init__(self, result_type: str, text: str) -> None:
        super().__init__(text)
        self.result_type = result_type


def verifying_context(ca_file: str) -> ssl.SSLContext:
    """WebPKI validation: chain to ``ca_file`` (else the system store), host name checked."""
    return ssl.create_default_context(cafile=ca_file or None)


class MtaSts:
    """Policy discovery (module docstring). One per delivery worker."""

    def __init__(
        self, resolver: Resolver, cache_dir: Path, *, ca_file: str = "", port: int = 443,
        timeout: float = 10.0,
    ) -> None:
        self._resolver = resolver
        self._cache = PolicyCache(cache_dir)
        self._ca_file = ca_file
        self._port = port
        self._timeout = timeout
        self._context: ssl.SSLContext | None = None
        self._fetching: dict[str, asyncio.Future[StsPolicy]] = {}
        """Fetches under way: concurrent deliveries to one domain share one (when its
        id changes or its policy is due for a refresh, they all need it at once)."""

    def _ssl(self) -> ssl.SSLContext:
        if self._context is None:
            self._context = verifying_context(self._ca_file)
        return self._context

    async def fetch(self, domain: str) -> StsPolicy:
        """Section 3.3; raises ``FetchError`` with the RFC 8460 result type."""
        host = f"mta-sts.{domain}"
        port = "" if self._port == 443 else f":{self._port}"
        url = f"https://{host}{port}/.well-known/mta-sts.txt"
        connector = aiohttp.TCPConnector(resolver=HttpResolver(self._resolver), ssl=self._ssl(),
                                         use_dns_cache=False)
        timeout = aiohttp.ClientTimeout(total=self._timeout)
        try:
            async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
                async with session.get(url, allow_redirects=False) as response:
                    if response.status != 200:
                        raise FetchError("sts-policy-fetch-error", f"{url}: HTTP {response.status}")
                    if response.content_type != "text/plain":
                        raise FetchError("sts-policy-invalid", f"{url}: {response.content_type}")
                    body = await response.content.read(MAX_POLICY_SIZE + 1)
        except aiohttp.ClientConnectorCertificateError as exc:
            raise FetchError("sts-webpki-invalid", f"{url}: {exc.certificate_error}") from None
        except aiohttp.ClientSSLError as exc:
            raise FetchError("sts-webpki-invalid", f"{url}: {exc}") from None
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError, UnicodeError) as exc:
            # ValueError: a URL aiohttp refuses (an internationalised domain it cannot encode).
            raise FetchError("sts-policy-fetch-error", f"{url}: {exc.__class__.__name__} {exc}") from None
        if len(body) > MAX_POLICY_SIZE:
            raise FetchError("sts-policy-invalid", f"{url}: larger than {MAX_POLICY_SIZE} octets")
        try:
            return parse_policy(body.decode("utf-8"))
        except (UnicodeDecodeError, StsPolicyError) as exc:
            raise FetchError("sts-policy-invalid", f"{url}: {exc}") from None

    def _fetched(self, domain: str, future: asyncio.Future[StsPolicy]) -> None:
        self._fetching.pop(domain, None)
        if not future.cancelled():
            future.exception()  # retrieved: every waiter may have gone meanwhile

    async def _fetch_once(self, domain: str) -> StsPolicy:
        """``fetch``, one at a time per domain: a second caller awaits the first's."""
        running = self._fetching.get(domain)
        if running is None:
            running = asyncio.ensure_future(self.fetch(domain))
            self._fetching[domain] = running
            running.add_done_callback(partial(self._fetched, domain))
        # shield: a cancelled delivery must not cancel the fetch the others wait for.
        return await asyncio.shield(running)

    async def lookup(self, domain: str, now: datetime | None = None) -> StsLookup:
        """The policy for ``domain`` (module docstring, steps 1-4)."""
        domain = domain.lower().rstrip(".")
        now = now or datetime.now(UTC)
        cached = await self._cache.get(domain)
        if cached is not None and cached.expires_at <= now:
            cached = None
        try:
            ident = parse_txt(await self._resolver.query(f"_mta-sts.{domain}", "TXT"))
        except DnsTempError as exc:
            log.info("mta-sts: %s: TXT lookup failed (%s); cached policy: %s", domain, exc, bool(cached))
            return StsLookup(cached)
        except StsPolicyError as exc:
            if cached is not None:
                return StsLookup(cached)
            return StsLookup(None, "sts-policy-invalid", str(exc))
        if ident is None:
            return StsLookup(cached)
        refresh = cached is not None and cached.id == ident
        if refresh and cached is not None and not _half_gone(cached, now):
            return StsLookup(cached)
        try:
            fetched = await self._fetch_once(domain)
        except FetchError as exc:
            held = " (a refresh; the cached policy holds)" if refresh else ""
            log.warning("mta-sts: %s: %s%s", domain, exc, held)
            if cached is not None:
                return StsLookup(cached)
            return StsLookup(None, exc.result_type, str(exc))
        policy = StsPolicy(fetched.mode, fetched.mx, fetched.max_age, ident, now, fetched.text)
        try:
            await self._cache.put(domain, policy)
        except OSError as exc:
            log.warning("mta-sts: cannot cache the policy of %s: %s", domain, exc)
        log.info("mta-sts: %s: policy %s mode=%s mx=%s", domain, ident, policy.mode, ",".join(policy.mx))
        return StsLookup(policy)
