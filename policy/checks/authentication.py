"""Sender authentication of inbound mail: SPF (RFC 7208), DKIM (RFC 6376, RFC
8463), DMARC (RFC 7489) and the Authentication-Results field (RFC 8601).

Pure functions over a ``policy.dns.Resolver``: no sockets of their own, no
aiosmtpd. pyspf and dkimpy call DNS synchronously, so ``authenticate`` runs the
whole evaluation in a worker thread and the checks use ``query_sync``.

* SPF (RFC 7208 section 2.4): the MAIL FROM identity, or ``postmaster@<HELO>``
  for the null reverse-path (section 2.3). pyspf is given our resolver by
  subclassing ``spf.query`` and overriding its ``dns`` method (per query, no
  global monkeypatching); lookup and void-lookup limits (section 4.6.4) stay
  pyspf's.
* DKIM (RFC 6376 section 6): every signature is verified, up to
  ``MAX_SIGNATURES`` (section 8.4: bound the work an attacker can cause). A
  DNS failure fetching the key is ``temperror``, a missing key or a malformed
  signature ``permerror``, a bad hash or signature ``fail``.
* DMARC (RFC 7489 section 6.6): the policy record of the RFC5322.From domain,
  else of its organizational domain (section 3.2; here a public-suffix
  heuristic, ``organizational_domain``), identifier alignment (section 3.1)
  in relaxed or strict mode, ``p``/``sp``. ``pct`` is ignored (every message
  gets the policy); the reporting tags ``rua`` and ``ri`` are kept for the
  aggregate reports (``policy.aggregate``).
* ARC (RFC 8617 section 5.2): the chain of ARC sets is validated with dkimpy
  (``verify_arc``, keys through our resolver). A passing chain whose sealer
  is in ``arc.trusted_sealers`` and whose own ARC-Authentication-Results
  said ``dmarc=pass`` overrides a DMARC failure (RFC 7489 section 6.7 lets a
  receiver's local policy do so; RFC 8617 section 7.2): the message is
  treated as passing, and Authentication-Results says ``dmarc=fail`` with an
  ``arc-override`` comment naming the sealer (the aggregate report gives the
  override reason ``trusted_forwarder``, RFC 7489 appendix C).

``AuthResults`` carries everything to the policy pipeline; ``auth_reply`` is
the MX decision: a message whose From is one of our own domains must be
authenticated with an aligned pass (only our servers send as our domains), and
a foreign domain's DMARC ``p=reject`` is honoured. A temporary DNS failure in
either case is a 4xx, never an acceptance.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, Literal

import dkim
import spf
from authres import (
    AuthenticationResultsHeader,
    DKIMAuthenticationResult,
    SPFAuthenticationResult,
)
from authres.arc import ARCAuthenticationResult
from authres.dmarc import DMARCAuthenticationResult

from policy import codes
from policy.codes import Reply
from policy.dns import DnsTempError, Resolver
from storage import headers

log = logging.getLogger(__name__)

MAX_SIGNATURES: Final = 8
DKIM_TIMEOUT: Final = 5

# Registries that hand out names one level below a two-label suffix; a simple
# stand-in for the Public Suffix List of RFC 7489 section 3.2.
TWO_LEVEL_SUFFIXES: Final = frozenset({
    # Viet Nam (VNNIC second-level domains)
    "gov.vn", "com.vn", "edu.vn", "org.vn", "net.vn", "ac.vn", "int.vn", "biz.vn", "info.vn",
    "name.vn", "pro.vn", "health.vn", "id.vn", "io.vn",
    # common elsewhere
    "co.uk", "org.uk", "ac.uk", "gov.uk", "me.uk", "ltd.uk", "plc.uk", "net.uk", "nhs.uk",
    "com.au", "net.au", "org.au", "edu.au", "gov.au", "co.nz", "org.nz", "govt.nz",
    "co.jp", "ne.jp", "or.jp", "ac.jp", "go.jp", "co.kr", "or.kr", "go.kr",
    "com.cn", "net.cn", "org.cn", "gov.cn", "edu.cn", "com.hk", "com.tw", "com.sg", "gov.sg",
    "edu.sg", "com.my", "gov.my", "co.th", "go.th", "ac.th", "co.id", "go.id", "com.ph",
    "gov.ph", "co.in", "gov.in", "com.br", "gov.br", "co.za", "gov.za", "com.mx", "com.tr",
})


class SpfResult(StrEnum):
    """RFC 7208 section 2.6."""

    NONE = "none"
    NEUTRAL = "neutral"
    PASS = "pass"  # noqa: S105 - a result name, not a password
    FAIL = "fail"
    SOFTFAIL = "softfail"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


class DkimResult(StrEnum):
    """RFC 8601 section 2.7.1."""

    NONE = "none"
    PASS = "pass"  # noqa: S105 - a result name, not a password
    FAIL = "fail"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


class DmarcResult(StrEnum):
    """RFC 7489 section 11.2."""

    NONE = "none"
    PASS = "pass"  # noqa: S105 - a result name, not a password
    FAIL = "fail"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


DmarcPolicy = Literal["none", "quarantine", "reject"]
Alignment = Literal["r", "s"]


@dataclass(frozen=True, slots=True)
class SpfOutcome:
    result: SpfResult
    domain: str
    """The domain checked: of MAIL FROM, or the HELO name for ``<>``."""
    scope: Literal["mailfrom", "helo"]
    reason: str = ""


@dataclass(frozen=True, slots=True)
class DkimOutcome:
    result: DkimResult
    domain: str
    """``d=``, lower case."""
    selector: str
    algorithm: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class DmarcRecord:
    """RFC 7489 section 6.3 tags that matter to a receiver."""

    policy: DmarcPolicy
    subdomain_policy: DmarcPolicy
    adkim: Alignment = "r"
    aspf: Alignment = "r"
    pct: int = 100
    rua: tuple[str, ...] = ()
    """Aggregate report URIs as published (``mailto:a@b!10m``), section 6.3."""
    ri: int = 86400
    """Requested interval between aggregate reports, seconds (section 6.3)."""


@dataclass(frozen=True, slots=True)
class DmarcOutcome:
    result: DmarcResult
    from_domain: str | None
    policy: DmarcPolicy | None = None
    """The policy that applies to this From domain (``p`` or ``sp``), if a record was found."""
    record_domain: str | None = None
    spf_aligned: bool = False
    dkim_aligned: bool = False
    reason: str = ""
    record: DmarcRecord | None = None
    """The policy record found (for the aggregate report's policy_published)."""


class ArcResult(StrEnum):
    """RFC 8617 section 4.4 chain validation status."""

    NONE = "none"
    PASS = "pass"  # noqa: S105 - a result name, not a password
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class ArcHop:
    """One ARC set of a chain: who sealed it and what its AAR said of DMARC."""

    instance: int
    sealer: str
    """``d=`` of the ARC-Seal, lower case."""
    selector: str
    dmarc_pass: bool
    """The set's ARC-Authentication-Results reported ``dmarc=pass``."""


@dataclass(frozen=True, slots=True)
class ArcOutcome:
    result: ArcResult = ArcResult.NONE
    hops: tuple[ArcHop, ...] = ()
    """Newest (highest instance) first."""
    oldest_pass: int = 0
    """RFC 8617 section 7.2 ``header.oldest-pass``: the oldest instance whose
    ARC-Message-Signature still validates (0 when all do, or none)."""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class AuthResults:
    """What the MX learnt about the sender; attached to the transaction so the
    policy pipeline can read it (``Transaction.auth``)."""

    spf: SpfOutcome
    dkim: tuple[DkimOutcome, ...]
    dmarc: DmarcOutcome
    from_domains: tuple[str, ...] = field(default=())
    """Domains of every address in the From field(s), normalised."""
    arc: ArcOutcome = field(default=ArcOutcome())
    arc_override: str = ""
    """The trusted sealer whose passing ARC chain overrode a DMARC failure, or ""."""
    ip: str = ""
    """The client's address (``smtp.remote-ip`` of the arc result, the report's source_ip)."""

    @property
    def from_domain(self) -> str | None:
        return self.from_domains[0] if self.from_domains else None

    @property
    def disposition(self) -> DmarcPolicy:
        """What we applied (RFC 7489 appendix C ``disposition``): the published
        policy on a failure, unless a trusted ARC sealer overrode it."""
        if self.dmarc.result is DmarcResult.FAIL and self.dmarc.policy and not self.arc_override:
            return self.dmarc.policy
        return "none"

    @property
    def spf_aligned(self) -> bool:
        return self.dmarc.spf_aligned

    @property
    def dkim_aligned(self) -> bool:
        return self.dmarc.dkim_aligned

    @property
    def aligned(self) -> bool:
        """An SPF or DKIM pass aligned with the From domain (a DMARC pass,
        whether or not the domain publishes a record)."""
        return self.dmarc.spf_aligned or self.dmarc.dkim_aligned

    @property
    def temperror(self) -> bool:
        """Some check could not complete for a transient reason."""
        return (
            self.spf.result is SpfResult.TEMPERROR
            or any(d.result is DkimResult.TEMPERROR for d in self.dkim)
            or self.dmarc.result is DmarcResult.TEMPERROR
        )

    @property
    def quarantine(self) -> bool:
        """DMARC failed and the domain asks for quarantine (no ARC override)."""
        return self.disposition == "quarantine"

    @property
    def reject(self) -> bool:
        """DMARC failed and the domain asks for rejection (no ARC override)."""
        return self.disposition == "reject"

    def as_mapping(self) -> dict[str, str]:
        """Method -> result word plus properties, the shape
        ``policy.context.PolicyContext.auth_results`` reads."""
        dkim_best = next((d for d in self.dkim if d.result is DkimResult.PASS), None)
        if dkim_best is None and self.dkim:
            dkim_best = self.dkim[0]
        # An ARC override reads as a pass to the content checks: the trusted
        # sealer saw DMARC pass before it changed the message.
        dmarc = "pass" if self.arc_override else str(self.dmarc.result)
        return {
            "spf": f"{self.spf.result} smtp.{self.spf.scope}={self.spf.domain}",
            "dkim": f"{dkim_best.result} header.d={dkim_best.domain}" if dkim_best else "none",
            "dmarc": f"{dmarc} header.from={self.dmarc.from_domain or ''}",
            "arc": str(self.arc.result),
        }

    def header(self, authserv_id: str) -> bytes:
        """The ``Authentication-Results`` field (RFC 8601 section 2.2), folded,
        CRLF-terminated."""
        return _results_header(self, authserv_id)

    def format_header(self, authserv_id: str) -> bytes:
        """``header`` without the cache."""
        items: list[object] = []
        spf_key = "smtp_mailfrom" if self.spf.scope == "mailfrom" else "smtp_helo"
        spf_kwargs: dict[str, str | None] = {spf_key: _safe(self.spf.domain)}
        items.append(SPFAuthenticationResult(result=str(self.spf.result), **_present(spf_kwargs)))
        if not self.dkim:
            items.append(DKIMAuthenticationResult(result="none"))
        for sig in self.dkim:
            items.append(
                DKIMAuthenticationResult(
                    result=str(sig.result),
                    **_present({"header_d": _safe(sig.domain), "header_s": _safe(sig.selector),
                                "header_a": _safe(sig.algorithm)}),
                )
            )
        dmarc_kwargs: dict[str, str | None] = {"header_from": _safe(self.dmarc.from_domain or "")}
        if self.dmarc.policy is not None:
            # The published policy and, on failure, what we did ("dis", the
            # disposition of RFC 7489 appendix C), as a comment for readers
            # and the spam filter: a quarantined message says so here.
            disposition = f" dis={self.disposition}" if self.dmarc.result is DmarcResult.FAIL else ""
            override = f" arc-override={_safe(self.arc_override)}" if self.arc_override else ""
            dmarc_kwargs["result_comment"] = f"p={self.dmarc.policy}{disposition}{override}"
        items.append(DMARCAuthenticationResult(result=str(self.dmarc.result), **_present(dmarc_kwargs)))
        # RFC 8617 section 7.2 / RFC 8601: the chain's result, where the newest
        # set came from, and the oldest set whose signature still holds. A
        # sealer we forward through needs this to set cv= on its own ARC-Seal.
        arc_kwargs: dict[str, str | None] = {"smtp_remote_ip": _safe(self.ip)}
        if self.arc.hops:
            arc_kwargs["header_as_d"] = _safe(self.arc.hops[0].sealer)
        if self.arc.result is ArcResult.PASS:
            arc_kwargs["header_oldest_pass"] = str(self.arc.oldest_pass)
        items.append(ARCAuthenticationResult(result=str(self.arc.result), **_present(arc_kwargs)))
        # authres formats one line; fold between results (RFC 8601 section 2.2
        # allows CFWS there), so the field stays within RFC 5322 line limits.
        head = str(AuthenticationResultsHeader(authserv_id=_safe(authserv_id) or "localhost", results=[]))
        head = head.removesuffix("; none")
        return (head + ";\r\n\t" + ";\r\n\t".join(str(i) for i in items) + "\r\n").encode("ascii")


@functools.lru_cache(maxsize=256)
def _results_header(results: AuthResults, authserv_id: str) -> bytes:
    # The field is a pure function of the (frozen, hashable) results, and mail
    # from one sender repeats them; authres builds several objects per result.
    return results.format_header(authserv_id)


# -- helpers ----------------------------------------------------------------------
_SAFE_VALUE: Final = re.compile(r"[A-Za-z0-9._@+=/-]+")


def _safe(value: str) -> str:
    """A property value we can put unquoted into the header (RFC 8601 ``pvalue``);
    anything else from the wire is dropped rather than trusted."""
    return value if _SAFE_VALUE.fullmatch(value) else ""


def _present(values: dict[str, str | None]) -> dict[str, str]:
    return {k: v for k, v in values.items() if v}


@functools.lru_cache(maxsize=1024)
def normalise_domain(domain: str) -> str:
    # Cached: called several times per message (SPF, DMARC, the From domains)
    # for the same few names, and the idna codec is pure Python.
    """Lower-case A-label form; non-convertible names stay lower-cased."""
    name = domain.strip().lower().rstrip(".")
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError:
        return name


def organizational_domain(domain: str) -> str:
    """RFC 7489 section 3.2, with a fixed suffix list: the last two labels,
    three under a known two-level public suffix (gov.vn, co.uk, ...)."""
    labels = normalise_domain(domain).split(".")
    if len(labels) >= 3 and ".".join(labels[-2:]) in TWO_LEVEL_SUFFIXES:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def aligned(identifier: str, from_domain: str, mode: Alignment) -> bool:
    """RFC 7489 section 3.1.1/3.1.2: strict is equality, relaxed equal
    organizational domains."""
    a, b = normalise_domain(identifier), normalise_domain(from_domain)
    if not a or not b:
        return False
    if mode == "s":
        return a == b
    return organizational_domain(a) == organizational_domain(b)


def header_end(message: bytes) -> int:
    """Offset of the body (after the empty line); len(message) without one."""
    if message.startswith(b"\r\n"):
        return 2
    idx = message.find(b"\r\n\r\n")
    return len(message) if idx < 0 else idx + 4


def from_domains(message: bytes) -> tuple[str, ...]:
    """Domains of the addresses in every From field (RFC 5322 section 3.6.2),
    read by ``storage.headers``: the reading that IMAP ENVELOPE shows."""
    domains: list[str] = []
    for addr in headers.from_addresses(message):
        _, at, domain = addr.rpartition("@")
        if at and domain:
            domains.append(normalise_domain(domain))
    return tuple(domains)


_FIELD: Final = re.compile(rb"[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*")
_COMMENT: Final = re.compile(r"\([^()]*\)")


def remove_own_results(message: bytes, authserv_id: str) -> bytes:
    """RFC 8601 section 5: delete Authentication-Results fields that claim to
    come from us (``authserv_id``), which only an attacker can have added."""
    end = header_end(message)
    if b"authentication-results" not in message[:end].lower():
        return message  # no such field to remove: skip the field-by-field walk
    head, body = message[:end], message[end:]
    kept: list[bytes] = []
    removed = False
    pos = 0
    for match in _FIELD.finditer(head):
        if match.start() != pos:
            break
        pos = match.end()
        name, colon, value = match.group(0).partition(b":")
        if colon and name.strip().lower() == b"authentication-results":
            text = _COMMENT.sub(" ", value.decode("utf-8", "replace").replace("\r\n", " "))
            claimed = text.split(";", 1)[0].split()
            if claimed and claimed[0].lower().rstrip(".") == authserv_id.lower().rstrip("."):
                removed = True
                continue
        kept.append(match.group(0))
    if not removed:
        return message
    return b"".join(kept) + head[pos:] + body


# -- SPF ------------------------------------------------------------------------
def _spf_answer(rdtype: str, text: str) -> object:
    """Our resolver's text form -> the value shape pyspf's ``dns`` returns."""
    if rdtype in ("TXT", "SPF"):
        return [text.encode("utf-8")]
    if rdtype == "MX":
        pref, _, host = text.partition(" ")
        return (int(pref) if pref.isdigit() else 0, host.rstrip("."))
    if rdtype == "PTR":
        return text.rstrip(".")
    return text


class _ResolverSpfQuery(spf.query):  # type: ignore[misc]  # untyped library base
    """pyspf's evaluator with DNS answered by our ``Resolver``."""

    def __init__(self, resolver: Resolver, *, i: str, s: str, h: str) -> None:
        self._resolver = resolver
        super().__init__(i=i, s=s, h=h)

    def dns(
        self, name: str, qtype: str, cnames: object = None, ignore_void: bool = False
    ) -> list[object]:
        name = str(name).lower().rstrip(".")
        if not name or not all(0 < len(label) < 64 for label in name.split(".")):
            return []  # RFC 7208 section 4.3: malformed names give no result
        key = (name, qtype)
        cache: dict[tuple[str, str], list[object]] = self.cache
        if key in cache:
            return cache[key]
        rdtype = "TXT" if qtype == "SPF" else qtype
        try:
            answers = self._resolver.query_sync(name, rdtype)
        except DnsTempError as exc:
            raise spf.TempError(f"DNS {exc}") from None
        result = [_spf_answer(rdtype, text) for text in answers]
        cache[key] = result
        if not result and not ignore_void:
            # RFC 7208 section 4.6.4: at most two void lookups.
            self.void_lookups += 1
            if self.void_lookups > spf.MAX_VOID_LOOKUPS:
                raise spf.PermError(f"Void lookup limit of {spf.MAX_VOID_LOOKUPS} exceeded")
        return result


def _is_domain(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
        return False
    except ValueError:
        pass
    return "." in name and not name.startswith("[")


@functools.lru_cache(maxsize=1024)
def _plain_ip(ip: str) -> str:
    # Cached: the same client address is read twice per message (SPF and the
    # results' smtp.remote-ip), and ipaddress parses in pure Python.
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


def check_spf(resolver: Resolver, *, ip: str, sender: str, helo: str) -> SpfOutcome:
    """RFC 7208 check_host() for MAIL FROM, or HELO when ``sender`` is ``""``."""
    if sender:
        local, _, domain = sender.rpartition("@")
        domain = normalise_domain(domain)
        scope: Literal["mailfrom", "helo"] = "mailfrom"
        identity = f"{local}@{domain}"
    else:
        domain = normalise_domain(helo)
        scope = "helo"
        identity = f"postmaster@{domain}"
    if not _is_domain(domain):
        return SpfOutcome(SpfResult.NONE, domain, scope, "no domain to check")
    query = _ResolverSpfQuery(resolver, i=_plain_ip(ip), s=identity, h=normalise_domain(helo) or domain)
    result, _code, explanation = query.check()
    try:
        value = SpfResult(str(result).lower())
    except ValueError:
        value = SpfResult.PERMERROR
    return SpfOutcome(value, domain, scope, str(explanation))


# -- DKIM -----------------------------------------------------------------------
_TAG: Final = re.compile(rb"\s*([a-zA-Z][a-zA-Z0-9_]*)\s*=\s*([^;]*)")


def _tags(value: bytes) -> dict[str, str]:
    tags: dict[str, str] = {}
    for part in value.split(b";"):
        match = _TAG.match(part)
        if match:
            tags.setdefault(match.group(1).decode("ascii").lower(),
                            re.sub(rb"\s+", b"", match.group(2)).decode("ascii", "replace"))
    return tags


class _DebugOnly(logging.LoggerAdapter):  # type: ignore[type-arg]
    """dkimpy logs every bad signature at ERROR; on an MX that is routine
    (spam), and the outcome is in the results, so it goes to DEBUG."""

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        super().log(logging.DEBUG, msg, *args, **kwargs)


_DKIMPY_LOG: Final = _DebugOnly(logging.getLogger(f"{__name__}.dkimpy"), {})


_PARSABLE_HEAD: Final = re.compile(rb"(?:[\x21-\x39\x3b-\x7e]+:[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*)*\r\n")
"""A header section, with the empty line after it, that dkimpy's ``rfc822_parse``
splits without raising: every field starts with a name of printable characters
before its colon, and only a field is continued (no mbox ``From `` line, no
lone CR)."""


def _unsigned(head: bytes) -> bool:
    """True when ``dkim.DKIM(head)`` would find no DKIM-Signature and raise
    nothing: ``verify_dkim`` then returns () without dkimpy's parse
    (tests/policy/test_auth_fast.py compares both)."""
    return b"dkim-signature" not in head.lower() and _PARSABLE_HEAD.fullmatch(head) is not None


def verify_dkim(resolver: Resolver, message: bytes) -> tuple[DkimOutcome, ...]:
    """Verify every DKIM-Signature (RFC 6376 section 6.1); () when unsigned."""
    # The header section decides whether there is anything to verify; dkimpy
    # splits the whole message into lines, which costs more than everything
    # else here for a large unsigned message.
    head = message[: header_end(message)]
    if _unsigned(head):
        return ()
    try:
        verifier = dkim.DKIM(head, logger=_DKIMPY_LOG, timeout=DKIM_TIMEOUT)
        signatures = [v for n, v in verifier.headers if n.lower() == b"dkim-signature"]
        if signatures and len(head) < len(message):
            verifier = dkim.DKIM(message, logger=_DKIMPY_LOG, timeout=DKIM_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - dkimpy raises IndexError & co. on odd input
        # A header section dkimpy cannot split (a first line that starts with
        # white space raises IndexError inside it) is the sender's fault: a
        # permanent error, never a server fault that would answer 451.
        return (DkimOutcome(DkimResult.PERMERROR, "", "", "", f"unparsable message: {exc!r}"),)
    outcomes: list[DkimOutcome] = []
    for idx, raw in enumerate(signatures[:MAX_SIGNATURES]):
        tags = _tags(raw)
        domain, selector, algorithm = tags.get("d", "").lower(), tags.get("s", ""), tags.get("a", "")
        state: dict[str, bool] = {"temp": False, "key": False}

        def dnsfunc(
            name: bytes, timeout: int = DKIM_TIMEOUT, _state: dict[str, bool] = state
        ) -> bytes | None:
            try:
                answers = resolver.query_sync(name.decode("ascii", "replace").rstrip("."), "TXT")
            except DnsTempError as exc:
                _state["temp"] = True
                raise dkim.DnsTimeoutError(str(exc)) from None
            if not answers:
                return None
            _state["key"] = True
            return answers[0].encode("utf-8")

        try:
            ok = bool(verifier.verify(idx, dnsfunc=dnsfunc))
        except dkim.DKIMException as exc:
            # RFC 6376 section 6.1.3: a body hash mismatch is a failed
            # verification (dkim=fail); anything malformed is a permerror.
            failed = isinstance(exc, dkim.ValidationError) and "body hash mismatch" in str(exc)
            result = DkimResult.FAIL if failed else DkimResult.PERMERROR
            outcomes.append(DkimOutcome(result, domain, selector, algorithm, str(exc)))
            continue
        except Exception as exc:  # noqa: BLE001 - any other dkimpy crash is the input's fault
            outcomes.append(DkimOutcome(DkimResult.PERMERROR, domain, selector, algorithm, repr(exc)))
            continue
        if ok:
            result, reason = DkimResult.PASS, ""
        elif state["temp"]:
            result, reason = DkimResult.TEMPERROR, "key lookup failed"
        elif not state["key"]:
            result, reason = DkimResult.PERMERROR, "no key"
        else:
            result, reason = DkimResult.FAIL, "signature did not verify"
        outcomes.append(DkimOutcome(result, domain, selector, algorithm, reason))
    return tuple(outcomes)


# -- DMARC ----------------------------------------------------------------------
_DMARC_VERSION: Final = re.compile(r"^v\s*=\s*DMARC1\s*(;|$)")
_POLICIES: Final[dict[str, DmarcPolicy]] = {"none": "none", "quarantine": "quarantine", "reject": "reject"}


def parse_dmarc_record(text: str) -> DmarcRecord | None:
    """RFC 7489 section 6.3/6.4; None for a record without a valid ``p``."""
    if not _DMARC_VERSION.match(text):
        return None
    tags: dict[str, str] = {}
    for part in text.split(";")[1:]:
        key, eq, value = part.partition("=")
        if eq:
            tags.setdefault(key.strip().lower(), value.strip())
    policy = _POLICIES.get(tags.get("p", "").lower())
    if policy is None:
        return None
    sub = _POLICIES.get(tags.get("sp", "").lower(), policy)
    adkim: Alignment = "s" if tags.get("adkim", "r").lower() == "s" else "r"
    aspf: Alignment = "s" if tags.get("aspf", "r").lower() == "s" else "r"
    pct_text = tags.get("pct", "100")
    pct = min(max(int(pct_text), 0), 100) if pct_text.isdigit() else 100
    rua = tuple(u.strip() for u in tags.get("rua", "").split(",") if u.strip())
    # Section 7.2: at least daily, and no receiver need report more often
    # than hourly; other values are clamped to that range.
    ri_text = tags.get("ri", "86400")
    ri = min(max(int(ri_text), 3600), 86400) if ri_text.isdigit() else 86400
    return DmarcRecord(policy, sub, adkim, aspf, pct, rua, ri)


def _fetch_dmarc(resolver: Resolver, domain: str) -> DmarcRecord | None:
    records = [r for r in resolver.query_sync(f"_dmarc.{domain}", "TXT") if _DMARC_VERSION.match(r)]
    # RFC 7489 section 6.6.3 step 3: more than one record is as good as none.
    return parse_dmarc_record(records[0]) if len(records) == 1 else None


def lookup_dmarc(resolver: Resolver, from_domain: str) -> tuple[DmarcRecord | None, str | None]:
    """RFC 7489 section 6.6.3: the From domain's record, else the
    organizational domain's. Returns (record, domain it was found at).
    ``DnsTempError`` propagates."""
    domain = normalise_domain(from_domain)
    record = _fetch_dmarc(resolver, domain)
    if record is not None:
        return record, domain
    org = organizational_domain(domain)
    if org != domain:
        record = _fetch_dmarc(resolver, org)
        if record is not None:
            return record, org
    return None, None


def evaluate_dmarc(
    from_domains: tuple[str, ...],
    record: DmarcRecord | None,
    record_domain: str | None,
    spf_outcome: SpfOutcome,
    dkim_outcomes: tuple[DkimOutcome, ...],
    *,
    lookup_failed: bool = False,
) -> DmarcOutcome:
    """Alignment and result (RFC 7489 section 4.2, 6.6.2). Alignment is
    computed even without a record (relaxed), for the local-domain rule."""
    distinct = tuple(dict.fromkeys(from_domains))
    if not distinct:
        return DmarcOutcome(DmarcResult.PERMERROR, None, reason="no From domain")
    if len(distinct) > 1:
        # Section 6.6.1: several author domains cannot be evaluated as one.
        return DmarcOutcome(DmarcResult.PERMERROR, distinct[0], reason="several From domains")
    from_domain = distinct[0]
    aspf: Alignment = record.aspf if record else "r"
    adkim: Alignment = record.adkim if record else "r"
    spf_ok = spf_outcome.result is SpfResult.PASS and aligned(spf_outcome.domain, from_domain, aspf)
    dkim_ok = any(
        d.result is DkimResult.PASS and aligned(d.domain, from_domain, adkim) for d in dkim_outcomes
    )
    policy: DmarcPolicy | None = None
    if record is not None:
        policy = record.policy if record_domain == from_domain else record.subdomain_policy

    def outcome(result: DmarcResult, reason: str = "") -> DmarcOutcome:
        return DmarcOutcome(result, from_domain, policy, record_domain, spf_ok, dkim_ok, reason, record)

    if lookup_failed:
        return outcome(DmarcResult.TEMPERROR, "policy lookup failed")
    if record is None:
        return outcome(DmarcResult.NONE, "no policy published")
    if spf_ok or dkim_ok:
        return outcome(DmarcResult.PASS)
    transient = spf_outcome.result is SpfResult.TEMPERROR or any(
        d.result is DkimResult.TEMPERROR for d in dkim_outcomes
    )
    if transient:
        return outcome(DmarcResult.TEMPERROR, "an underlying check failed temporarily")
    return outcome(DmarcResult.FAIL, "no aligned SPF or DKIM pass")


# -- ARC --------------------------------------------------------------------------
_AAR_DMARC_PASS: Final = re.compile(r"(?i)(?:^|;)\s*dmarc\s*=\s*pass\b")


def verify_arc(resolver: Resolver, message: bytes) -> ArcOutcome:
    """Validate the ARC chain (RFC 8617 section 5.2) with dkimpy; keys come
    through ``resolver``. A DNS failure fails the chain (no override then)."""
    head = message[: header_end(message)]
    if b"arc-seal" not in head.lower():
        return ArcOutcome()

    def dnsfunc(name: bytes, timeout: int = DKIM_TIMEOUT) -> bytes | None:
        try:
            answers = resolver.query_sync(name.decode("ascii", "replace").rstrip("."), "TXT")
        except DnsTempError as exc:
            raise dkim.DnsTimeoutError(str(exc)) from None
        return answers[0].encode("utf-8") if answers else None

    try:
        cv, sets, reason = dkim.arc_verify(message, logger=_DKIMPY_LOG, dnsfunc=dnsfunc)
    except Exception as exc:  # noqa: BLE001 - dkimpy raises odd errors on odd input
        return ArcOutcome(ArcResult.FAIL, reason=f"unverifiable chain: {exc!r}")
    hops: list[ArcHop] = []
    oldest_pass = 0
    for item in sets:
        aar = item.get("aar-value") or b""
        hops.append(ArcHop(
            int(item.get("instance", 0)),
            (item.get("as-domain") or b"").decode("ascii", "replace").lower(),
            (item.get("as-selector") or b"").decode("ascii", "replace"),
            bool(_AAR_DMARC_PASS.search(aar.decode("utf-8", "replace"))),
        ))
        if item.get("ams-valid"):
            oldest_pass = int(item.get("instance", 0))
    result = ArcResult.PASS if cv == dkim.CV_Pass else ArcResult.FAIL
    if result is ArcResult.PASS and oldest_pass == 1:
        oldest_pass = 0  # section 7.2: omitted (0) when every AMS validates
    text = reason.decode() if isinstance(reason, bytes) else str(reason)
    return ArcOutcome(result, tuple(hops), oldest_pass, "" if result is ArcResult.PASS else text)


def arc_override(arc: ArcOutcome, trusted_sealers: frozenset[str]) -> str:
    """The trusted sealer that vouches for DMARC, or "": the chain passes and
    a set sealed by a domain in ``trusted_sealers`` recorded ``dmarc=pass``."""
    if arc.result is not ArcResult.PASS or not trusted_sealers:
        return ""
    for hop in arc.hops:
        if hop.dmarc_pass and hop.sealer in trusted_sealers:
            return hop.sealer
    return ""


# -- all together -------------------------------------------------------------------
def authenticate_sync(
    resolver: Resolver, *, ip: str, helo: str, sender: str, message: bytes,
    trusted_sealers: frozenset[str] = frozenset(),
) -> AuthResults:
    """SPF, DKIM, DMARC and ARC for one message (blocking: DNS through ``query_sync``)."""
    spf_outcome = check_spf(resolver, ip=ip, sender=sender, helo=helo)
    dkim_outcomes = verify_dkim(resolver, message)
    domains = from_domains(message)
    record: DmarcRecord | None = None
    record_domain: str | None = None
    failed = False
    if len(set(domains)) == 1:
        try:
            record, record_domain = lookup_dmarc(resolver, domains[0])
        except DnsTempError:
            failed = True
    dmarc_outcome = evaluate_dmarc(domains, record, record_domain, spf_outcome, dkim_outcomes,
                                   lookup_failed=failed)
    arc = verify_arc(resolver, message)
    override = arc_override(arc, trusted_sealers) if dmarc_outcome.result is DmarcResult.FAIL else ""
    return AuthResults(spf_outcome, dkim_outcomes, dmarc_outcome, domains, arc, override, _plain_ip(ip))


async def authenticate(
    resolver: Resolver, *, ip: str, helo: str, sender: str, message: bytes,
    trusted_sealers: frozenset[str] = frozenset(),
) -> AuthResults:
    """``authenticate_sync`` in a worker thread (pyspf and dkimpy block)."""
    return await asyncio.to_thread(
        authenticate_sync, resolver, ip=ip, helo=helo, sender=sender, message=message,
        trusted_sealers=trusted_sealers,
    )


def auth_reply(results: AuthResults, is_local: Callable[[str], bool]) -> Reply | None:
    """The MX decision on ``results``; None to accept (see module docstring).

    ``is_local(domain)`` tells our own domains; a subdomain of one counts too
    (its organizational domain is ours), so ``x.dongnai.gov.vn`` cannot be
    used to impersonate the province either.
    """
    local = any(is_local(d) or is_local(organizational_domain(d)) for d in results.from_domains)
    if local and not results.aligned and not results.arc_override:
        if results.temperror:
            return codes.S451_AUTH_TEMPFAIL
        return codes.S550_LOCAL_SENDER_UNAUTHENTICATED
    if results.dmarc.policy == "reject":
        if results.reject:
            return codes.S550_DMARC_REJECT
        if results.dmarc.result is DmarcResult.TEMPERROR:
            return codes.S451_AUTH_TEMPFAIL
    return None
