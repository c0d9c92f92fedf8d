"""Which TLS each outbound hop must have: MTA-STS (RFC 8461), DANE (RFC 7672), or
opportunistic (RFC 7435); and the TLS-RPT results (RFC 8460) of each attempt.

Theory of operation
-------------------
``TlsPolicies.plan(domain, hops, results)`` runs once per delivery attempt of
a domain and returns the hops to try, each with a ``HopTls`` rule:

* hops of ``outbound.relay_host`` and ``outbound.static_routes`` are routes the
  operator chose: opportunistic TLS as before (``outbound.require_tls``
  still applies), no policy, nothing recorded;
* DANE first (RFC 8461 section 2: DANE wins when both are published): with
  ``dns.dnssec_resolver`` set and the domain's MX answer from it secure (RFC
  7672 section 2.2.1), ``_<port>._tcp.<mx>`` TLSA is asked; an answer
  without the AD bit is ignored (RFC 7672 section 2.2: only "secure" TLSA
  records count); a secure answer with usable records makes authenticated TLS
  mandatory for that hop; a secure answer whose records are all unusable makes
  TLS mandatory without authentication (section 2.2; reported as
  ``tlsa-invalid``); a lookup failure defers the hop (``dnssec-invalid``);
* else the domain's MTA-STS policy (``mailserver.smtp.mtasts``): in
  ``enforce`` mode hops not matching an ``mx`` pattern are left out (recorded
  as ``validation-failure``), the others need STARTTLS and a certificate
  valid for the MX host name; ``testing`` keeps every hop and only reports;
* else opportunistic STARTTLS.

The deliverer reports each outcome through ``HopTls.report``: one
``TlsResult`` per established session or per failure, keyed by the recipient
domain. DANE results are keyed by the recipient domain too (where the
``_smtp._tls`` record that receives the report is looked up), with the MX host
in ``receiving-mx-hostname``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pki.dane import Tlsa, parse_tlsa
from policy.dns import AuthenticatedResolver, DnsTempError
from storage.tlsrpt import TlsResult

if TYPE_CHECKING:
    from mailserver.smtp.mtasts import MtaSts, StsLookup
    from mailserver.smtp.queue import Hop

log = logging.getLogger(__name__)

NONE = "none"
STS = "sts"
DANE = "dane"
SKIP = "skip"
"""A hop that must not be tried now (its TLSA lookup failed)."""


@dataclass(frozen=True, slots=True)
class HopTls:
    """The TLS rule for one hop (module docstring)."""

    kind: str = NONE
    enforce: bool = False
    """STARTTLS and the checks of ``kind`` are mandatory (else: report only)."""
    domain: str = ""
    """Policy domain the results are recorded under; "" records nothing."""
    policy_strings: tuple[str, ...] = ()
    tlsa: tuple[Tlsa, ...] = ()
    authenticate: bool = True
    """False for a DANE hop whose TLSA records are all unusable: TLS without checks."""

    @property
    def policy_type(self) -> str:
        return {STS: "sts", DANE: "tlsa"}.get(self.kind, "no-policy-found")

    def report(self, results: list[TlsResult], hop: Hop, result: str, detail: str = "") -> None:
        if not self.domain:
            return
        results.append(TlsResult(datetime.now(UTC), self.domain, self.policy_type, self.policy_strings,
                                 hop.name, hop.address, result, detail))

    def opportunistic(self) -> HopTls:
        """The same hop after a ``testing`` failure: deliver as without policy,
        reporting nothing more (the failure is recorded already)."""
        return replace(self, kind=NONE, enforce=False, domain="")


class TlsPolicies:
    def __init__(self, sts: MtaSts | None, dnssec: AuthenticatedResolver | None, port: int) -> None:
        self._sts = sts
        self._dnssec = dnssec
        self._port = port

    async def _tlsa(self, name: str) -> tuple[list[Tlsa], bool]:
        if self._dnssec is None:
            return [], False
        texts, secure = await self._dnssec.query_authenticated(f"_{self._port}._tcp.{name}", "TLSA")
        if not secure:
            return [], False
        return [t for t in (parse_tlsa(x) for x in texts) if t is not None], True

    async def plan(
        self, domain: str, hops: list[Hop], results: list[TlsResult]
    ) -> list[tuple[Hop, HopTls]]:
        if not any(h.mx for h in hops):
            return [(h, HopTls()) for h in hops]
        lookup: StsLookup | None = await self._sts.lookup(domain) if self._sts is not None else None
        policy = lookup.policy if lookup is not None and lookup.policy is not None else None
        if policy is not None and policy.mode == "none":
            policy = None
        if lookup is not None and lookup.failure:
            results.append(TlsResult(datetime.now(UTC), domain, "sts", (), "", "", lookup.failure,
                                     lookup.detail))
        dane: dict[str, HopTls | None] = {}
        if not await self._mx_secure(domain):
            dane = dict.fromkeys((h.name for h in hops), None)
        planned: list[tuple[Hop, HopTls]] = []
        for hop in hops:
            if hop.name not in dane:
                dane[hop.name] = await self._dane_rule(domain, hop, results)
            rule = dane[hop.name]
            if rule is not None:
                if rule.kind != SKIP:
                    planned.append((hop, rule))
                continue
            if policy is None:
                planned.append((hop, HopTls(domain=domain)))
                continue
            enforce = policy.mode == "enforce"
            sts = HopTls(STS, enforce, domain, policy.text)
            if not policy.matches(hop.name):
                sts.report(results, hop, "validation-failure", f"{hop.name} not in the MTA-STS policy mx")
                if enforce:
                    log.info("mta-sts: %s: MX %s does not match the policy; skipped", domain, hop.name)
                    continue
                sts = sts.opportunistic()
            planned.append((hop, sts))
        return planned

    async def _mx_secure(self, domain: str) -> bool:
        """RFC 7672 section 2.2.1: the MX host names are trusted as TLSA base
        domains only when the MX RRset (or the denial of one) is secure."""
        if self._dnssec is None:
            return False
        try:
            _, secure = await self._dnssec.query_authenticated(domain, "MX")
        except DnsTempError as exc:
            log.info("dane: MX of %s not validated (%s); DANE not used", domain, exc)
            return False
        return secure

    async def _dane_rule(self, domain: str, hop: Hop, results: list[TlsResult]) -> HopTls | None:
        """The DANE rule of ``hop``, or None when DANE does not apply to it."""
        try:
            records, secure = await self._tlsa(hop.name)
        except DnsTempError as exc:
            # RFC 7672 section 2.2: a failed TLSA lookup must not lead to
            # unauthenticated delivery; the hop is left out (deferred) and reported.
            log.info("dane: TLSA lookup for %s failed: %s", hop.name, exc)
            HopTls(DANE, True, domain).report(results, hop, "dnssec-invalid", str(exc))
            return HopTls(SKIP)
        if not secure or not records:
            return None
        strings = tuple(r.text for r in records)
        usable = tuple(r for r in records if r.usable)
        if not usable:
            rule = HopTls(DANE, True, domain, strings, (), authenticate=False)
            rule.report(results, hop, "tlsa-invalid", "no usable TLSA record")
            return rule
        return HopTls(DANE, True, domain, strings, usable)
