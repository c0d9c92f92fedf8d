"""DKIM signing of outgoing mail (RFC 6376, RSA-SHA256; RFC 8463, Ed25519-SHA256).

``DkimSigner.sign(message, from_domain)`` is the outbound hook (the
``OutboundSigner`` Protocol of the submission path): it prepends one
DKIM-Signature per active key of the From domain, so a domain with both an
RSA and an Ed25519 key is dual-signed (RFC 8463 section 4: verifiers that do
not know Ed25519 ignore that signature and use the RSA one). A domain without
a key gets the message back unchanged.

Choices (RFC 6376 section 5.4 and 8.15):

* relaxed/relaxed canonicalisation (section 3.4.2, 3.4.4): survives header
  re-folding and trailing-whitespace changes by relays, and leaves the body
  bytes untouched, so an S/MIME ``multipart/signed`` body stays valid;
* the signed header set is ``dkim.headers`` restricted to the fields present,
  plus one extra instance of each ``dkim.oversign`` field (From by default):
  signing a field once more than it occurs forbids adding another one
  ("oversigning", section 8.15), which stops a second From being prepended;
* no ``l=`` (section 8.2) and no ``x=``.

Keys come from ``pki.keystore.DkimKeyStore``; the index is re-read when
``mailserver dkim keygen`` changes it, so rotation needs no restart. A key
that exists but cannot be used raises ``SigningError`` rather than letting
mail leave unsigned.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import dkim

from pki.keystore import Algorithm, DkimKey, DkimKeyStore, KeyStoreError
from pki.settings import DkimSettings

log = logging.getLogger(__name__)

_FIELD_NAME: Final = re.compile(rb"^([!-9;-~]+)[ \t]*:", re.MULTILINE)



def key_directory(settings: DkimSettings, data_dir: Path) -> Path:
    return Path(settings.key_dir) if settings.key_dir else data_dir / "dkim"


def default_selector(algorithm: Algorithm, now: datetime | None = None) -> str:
    """``s202601`` for RSA, ``e202601`` for Ed25519: year and month of creation,
    so a rotation picks a new name without the operator inventing one."""
    when = now or datetime.now(UTC)
    return f"{'e' if algorithm == 'ed25519' else 's'}{when:%Y%m}"


def header_names(message: bytes) -> list[str]:
    """Lower-case names of the header fields of ``message``, in order."""
    end = message.find(b"\r\n\r\n")
    if end < 0:
        end = message.find(b"\n\n")
    head = message if end < 0 else message[: end + 1]
    return [m.group(1).decode("ascii").lower() for m in _FIELD_NAME.finditer(head)]


def signed_headers(present: Sequence[str], headers: Sequence[str], oversign: Sequence[str]) -> list[str]:
    """The ``h=`` list: configured fields as often as they occur, plus one more
    for each oversigned field (which is how its absence/count gets locked)."""
    counts: dict[str, int] = {}
    for name in present:
        counts[name] = counts.get(name, 0) + 1
    result: list[str] = []
    for name in dict.fromkeys(h.lower() for h in headers):
        result += [name] * counts.get(name, 0)
    for name in dict.fromkeys(h.lower() for h in oversign):
        result.append(name)
    if "from" not in result:  # RFC 6376 section 5.4: From MUST be signed
        result.append("from")
    return result


class SigningError(Exception):
    """A domain with a key could not be signed for (unreadable key or index)."""


class DkimSigner:
    """Signs with every active key of the From domain (see module docstring)."""

    def __init__(self, store: DkimKeyStore, settings: DkimSettings) -> None:
        self.store = store
        self.settings = settings
        self.sign_local: bool = settings.sign_local
        """Whether the caller should also sign mail it delivers locally."""
        self._private: dict[str, bytes] = {}

    def _private_key(self, key: DkimKey) -> bytes:
        cached = self._private.get(key.file)
        if cached is None:
            cached = self.store.private_key(key)
            self._private[key.file] = cached
        return cached

    def signatures(self, message: bytes, from_domain: str) -> list[bytes]:
        """DKIM-Signature fields for ``message`` (CRLF-terminated, folded)."""
        try:
            keys = self.store.active(from_domain)
        except KeyStoreError as exc:
            log.error("dkim: %s", exc)
            raise SigningError(str(exc)) from exc
        if not keys:
            return []
        linesep = b"\r\n" if b"\r\n" in message[:4096] or b"\n" not in message else b"\n"
        include = signed_headers(header_names(message), self.settings.headers, self.settings.oversign)
        fields: list[bytes] = []
        # Ed25519 first, so the RSA signature ends up on top, where verifiers
        # that know only RSA look first.
        for key in sorted(keys, key=lambda k: k.algorithm != "ed25519"):
            try:
                signer = dkim.DKIM(message, linesep=linesep)
                header: bytes = signer.sign(
                    key.selector.encode("ascii"),
                    key.domain.encode("ascii"),
                    self._private_key(key),
                    signature_algorithm=key.signature_algorithm.encode("ascii"),
                    canonicalize=(b"relaxed", b"relaxed"),
                    include_headers=[h.encode("ascii") for h in include],
                )
            except (dkim.DKIMException, OSError, ValueError) as exc:
                # The domain has a key, so its mail must be signed: mail sent
                # unsigned would fail DMARC at every recipient. A temporary
                # failure of the submission (OutboundSigner contract) makes the
                # fault visible at once and loses nothing.
                log.error("dkim: cannot sign for %s with %s: %s", key.domain, key.selector, exc)
                raise SigningError(f"cannot sign for {key.domain} with selector {key.selector}") from exc
            if linesep == b"\n":
                header = header.replace(b"\r\n", b"\n")
            fields.insert(0, header)
        return fields

    def sign(self, message: bytes, from_domain: str) -> bytes:
        """The message with DKIM-Signature fields prepended; unchanged when the
        domain has no key (``OutboundSigner`` contract). Raises ``SigningError``
        when the domain has a key that cannot be used."""
        return b"".join(self.signatures(message, from_domain)) + message
