"""Extension points of submission and outbound delivery, held by ``App``.

* ``SenderPolicy`` (``app.sender_policy``): which addresses an authenticated
  account may use in MAIL FROM and in the From/Sender header fields (RFC 6409
  section 6.1 lets a submission server enforce this). The default allows only
  the account's own address; the electronic directory plugs in agency and
  delegate rules.
* ``OutboundSigner`` (``app.signer``): signs a message before it enters the
  outbound queue (DKIM, RFC 6376). It is called exactly once per queued
  message, at enqueue time, and the signed bytes are what the queue stores, so
  every retry sends identical octets and a signature never covers headers the
  queue adds later (there are none). Local deliveries are not signed. The
  default returns the message unchanged.
* ``ReportHooks`` (``app.dmarc``): the MX tells it every DMARC evaluation
  (counted for the aggregate reports of RFC 7489 section 7.2) and every
  message it stored locally (so reports sent to our ``rua`` get parsed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from policy.aggregate import Evaluation
from storage.api import Account


class SenderPolicy(Protocol):
    """Decides whether ``account`` may send as ``address``.

    Called on the submission port for MAIL FROM and for every address in the
    From and Sender header fields, after authentication. ``address`` is an
    addr-spec as the client wrote it (case preserved); implementations compare
    case-insensitively. Must not raise for malformed input (answer False).
    """

    async def may_send_as(self, account: Account, address: str) -> bool: ...


class OwnAddressOnly:
    """Default ``SenderPolicy``: only the account's own address."""

    async def may_send_as(self, account: Account, address: str) -> bool:
        return address.strip().lower() == account.address.lower()


class OutboundSigner(Protocol):
    """Signs a message for ``from_domain`` (the domain of its From header field).

    ``message`` is the complete message with CRLF line ends as it will be
    queued; the result is what gets queued and sent (typically a
    DKIM-Signature field prepended). Runs in a worker thread. Must return the
    input unchanged when it has no key for ``from_domain``; an exception makes
    the submission fail with a temporary error.
    """

    def sign(self, message: bytes, from_domain: str) -> bytes: ...


class NoSigner:
    """Default ``OutboundSigner``: leaves messages unsigned."""

    def sign(self, message: bytes, from_domain: str) -> bytes:
        return message


class ReportHooks(Protocol):
    """DMARC aggregate reporting seen from the MX (mailserver/ops/dmarc.py).

    Both methods run on the event loop, must return at once (work happens in
    the background) and must not raise: a report is never a reason to refuse
    or lose mail.
    """

    def observe(self, evaluation: Evaluation) -> None:
        """Count one message's DMARC evaluation."""
        ...

    def delivered(self, addresses: Sequence[str], message: bytes) -> None:
        """``message`` was stored durably for the accounts ``addresses``."""
        ...
