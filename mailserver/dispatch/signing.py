"""S/MIME on the SMTP data path (RFC 8551): signing what agencies submit and
checking signatures on what arrives.

``SmimeHooks.process(authenticated, message)`` is called by
``delivery.Inbound.deliver`` once the content policy has accepted a message and
before it is stored or queued (DKIM signs later, at enqueue time, so its
signature covers the S/MIME structure; relaxed canonicalisation leaves the
body octets alone, RFC 6376 section 3.4.4):

* from an authenticated client: when the From address is an agency mailbox
  (``pki.sign_agency_mail``) or listed in ``pki.sign_accounts`` and has a
  usable certificate, the message is signed (Decision 70/2009/QĐ-UBND Điều 11:
  digital signatures make official mail authentic). Mail the client already
  signed or encrypted passes unchanged;
* from anyone else: the signature, if any, is verified and the result put in
  ``X-Signature-Status`` (a copy the sender wrote is removed first);
* ``check`` does the same for the local copies of mail between colleagues
  (submission and internal delivery): a signature is only ever shown as
  ``valid`` after this server checked it, From included (RFC 8550 section 3).

Signing needs the PKI passphrase in the server's environment or
``pki.passphrase_file``; without it mail leaves unsigned and this is logged
once, so a missing passphrase never stops mail.
"""

from __future__ import annotations

import asyncio
import logging
from email.parser import BytesHeaderParser
from email.utils import getaddresses

from mailserver.config import Config
from pki.ca import CertificateAuthority, CertRecord, PkiError, PrivateKey
from pki.smime import SmimeVerifier, is_signed_or_encrypted, sign_message, with_status_header
from storage.api import MailStore
from storage.directory import AddressKind, DirectoryStore, open_directory

log = logging.getLogger(__name__)


def from_address(message: bytes) -> str | None:
    end = message.find(b"\r\n\r\n")
    head = message if end < 0 else message[: end + 2]
    values = BytesHeaderParser().parsebytes(head).get_all("From") or []
    found = [addr for _, addr in getaddresses([str(v) for v in values]) if addr]
    return found[0].lower() if len(found) == 1 else None


class SmimeHooks:
    """The S/MIME step of delivery (module docstring). One per Inbound."""

    def __init__(self, config: Config, ca: CertificateAuthority, directory: DirectoryStore | None) -> None:
        self._settings = config.pki
        self._ca = ca
        self._directory = directory
        self._verifier = SmimeVerifier(ca)
        self._keys: dict[str, PrivateKey] = {}
        self._warned = False

    @classmethod
    def build(cls, config: Config, store: MailStore | None) -> SmimeHooks:
        try:
            ca = CertificateAuthority.open(config.pki, config.data_dir)
        except PkiError as exc:
            log.error("pki: %s; mail is neither signed nor verified", exc)
            ca = CertificateAuthority(config.data_dir / "pki", config.pki, None)
        directory = open_directory(store) if store is not None else None
        return cls(config, ca, directory)

    async def process(self, authenticated: str | None, message: bytes) -> bytes:
        if authenticated:
            return await self.sign(message)
        if not self._settings.verify_inbound:
            return message
        return await self.check(message)

    async def check(self, message: bytes) -> bytes:
        """``message`` with our ``X-Signature-Status`` (any other copy removed)."""
        end = message.find(b"\r\n\r\n")
        if b"multipart/signed" not in message[: len(message) if end < 0 else end].lower():
            return with_status_header(message, None)  # unsigned: no trip to a thread
        status = await asyncio.to_thread(self._verifier.verify, message)
        return with_status_header(message, status)

    async def _wants_signature(self, address: str) -> bool:
        if address in {a.lower() for a in self._settings.sign_accounts}:
            return True
        if not self._settings.sign_agency_mail or self._directory is None:
            return False
        entry = await self._directory.lookup_address(address)
        return entry is not None and entry.kind is AddressKind.AGENCY

    async def sign(self, message: bytes) -> bytes:
        address = from_address(message)
        if address is None or is_signed_or_encrypted(message):
            return message
        if not await self._wants_signature(address):
            return message
        record = self._ca.valid_for(address)
        if record is None:
            return message
        try:
            return await asyncio.to_thread(self.sign_with, record, message)
        except PkiError as exc:
            if not self._warned:
                log.error("pki: cannot sign mail from %s: %s", address, exc)
                self._warned = True
            return message

    def sign_with(self, record: CertRecord, message: bytes) -> bytes:
        assert record.key is not None  # noqa: S101 - valid_for returns keyed records only
        key = self._keys.get(record.serial)
        if key is None:
            key = self._keys[record.serial] = self._ca.load_key(record.key)
        return sign_message(message, self._ca.certificate(record.cert), key, self._ca.extra_chain(record))
