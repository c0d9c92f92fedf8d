"""ARC sealing of mail we pass on (RFC 8617, with dkimpy's ``arc_sign``).

When we forward or expand a message (a ``forward set`` forward, an alias or
group with outside members, a Sieve redirect), the next hop sees our IP and
SPF fails for the original sender; a footer or re-encoding would break its
DKIM signature. An ARC set records what we saw when the message reached us
(RFC 8617 section 4.1): ARC-Authentication-Results copies our
Authentication-Results, ARC-Message-Signature signs the message as we send it
and ARC-Seal signs the chain, with ``cv=`` the chain status we found
(``none`` for the first set, section 5.1.1).

``seal_forwarded(message, ...)`` is the one entry point every forwarding path
calls, on the final bytes (after any header it adds such as ``Delivered-To``,
before the outbound queue's DKIM signature). It

* finds our ``Authentication-Results`` (authserv-id = our hostname); mail that
  never went through the MX checks (a colleague's mail expanded by a group)
  has none, so one saying ``arc=<chain>`` (default ``none``) is prepended,
  since RFC 8617 section 5.1.1 builds the AAR from it;
* signs with the sealing domain's active RSA key from ``pki.keystore`` (the
  DKIM key: dkimpy seals with rsa-sha256 only, RFC 8617 section 4.1.3 admits
  only the DKIM algorithms of RFC 6376); without one the message is returned
  unchanged, as the DKIM signer does;
* returns the ARC set prepended (section 4.1: the three fields of one set
  sit together at the top).

Never raises for a message it cannot seal (dkimpy's errors, a chain already
at ``i=50``): forwarding must not fail because sealing did; it is logged.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Final

import dkim

from pki.dkim import DEFAULT_HEADERS, header_names, signed_headers
from pki.keystore import DkimKeyStore, KeyStoreError

log = logging.getLogger(__name__)

_AR_FIELD: Final = re.compile(rb"(?im)^Authentication-Results:[ \t]*([^;\r\n]+?)[ \t]*;")


@dataclass(frozen=True, slots=True)
class ArcSettings:
    seal: bool = field(
        default=True,
        metadata={
            "help": "Add an ARC set (RFC 8617) to mail we forward or expand to outside addresses\n"
            "(forwards, aliases and groups with outside members, Sieve redirects), signed with\n"
            "the sealing domain's DKIM RSA key."
        },
    )
    domain: str = field(
        default="",
        metadata={"help": "Sealing domain (d= of the ARC set); empty: the first of server.domains."},
    )
    trusted_sealers: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Domains whose passing ARC chain overrides a DMARC failure (mailing lists\n"
            "and forwarders we trust, e.g. [\"lists.example.org\"]): their ARC-Authentication-Results\n"
            "must say dmarc=pass. Recorded in Authentication-Results as arc-override."
        },
    )


def _has_own_results(message: bytes, authserv_id: str) -> bool:
    end = message.find(b"\r\n\r\n")
    head = message if end < 0 else message[: end + 2]
    wanted = authserv_id.lower().encode("ascii", "replace")
    return any(m.group(1).strip().lower() == wanted for m in _AR_FIELD.finditer(head))


def seal_forwarded(
    message: bytes,
    *,
    keys: DkimKeyStore,
    domain: str,
    authserv_id: str,
    chain: str = "none",
    timestamp: int | None = None,
) -> bytes:
    """``message`` (CRLF line ends) with an ARC set by ``domain`` prepended; the
    message unchanged when ``domain`` has no active RSA key or sealing fails.

    ``authserv_id`` is our Authentication-Results id (``server.hostname``);
    ``chain`` the ARC result to record when the message carries no
    Authentication-Results of ours (see the module docstring)."""
    try:
        key = next((k for k in keys.active(domain) if k.algorithm == "rsa"), None)
        private = keys.private_key(key) if key is not None else None
    except (KeyStoreError, OSError) as exc:
        log.error("arc: no key for %s: %s", domain, exc)
        return message
    if key is None or private is None:
        log.debug("arc: %s has no active RSA key; not sealed", domain)
        return message
    source = message
    if not _has_own_results(message, authserv_id):
        source = f"Authentication-Results: {authserv_id}; arc={chain}\r\n".encode("ascii") + message
    include = signed_headers(header_names(source), DEFAULT_HEADERS, [])
    try:
        fields: list[bytes] = dkim.arc_sign(
            source, key.selector.encode("ascii"), key.domain.encode("ascii"), private,
            authserv_id.encode("ascii"), include_headers=[h.encode("ascii") for h in include],
            timestamp=timestamp,
        )
    except Exception as exc:  # noqa: BLE001 - dkimpy's errors on odd input: forward unsealed
        log.warning("arc: cannot seal for %s: %s", domain, exc)
        return message
    if not fields:
        # dkimpy ends the chain when our results name no arc= for an existing chain.
        log.info("arc: chain not continued (no arc result of ours for an existing chain)")
        return message
    return b"".join(f if f.endswith(b"\r\n") else f + b"\r\n" for f in fields) + source


@dataclass(frozen=True, slots=True)
class ArcSealer:
    """``seal_forwarded`` bound to our configuration; built by the wiring and
    handed to every forwarding path (None there when ``arc.seal`` is off)."""

    keys: DkimKeyStore
    domain: str
    authserv_id: str

    def seal(self, message: bytes, chain: str = "none") -> bytes:
        return seal_forwarded(
            message, keys=self.keys, domain=self.domain, authserv_id=self.authserv_id, chain=chain
        )
