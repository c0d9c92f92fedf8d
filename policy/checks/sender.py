"""Relay and sender rules: who may send where, and as whom.

Implements, as a check every pipeline runs first (``policy.pipeline``):

* relay control (RFC 5321 section 3.6.1 and 7.1): a recipient in another
  domain is accepted only from a client that may relay (authenticated, or in
  ``smtp.relay_networks``): ``554 5.7.1`` otherwise. A recipient without a
  domain is ``postmaster`` (section 4.5.1), which is ours;
* senders in our domains (MAIL FROM): only our users send as our domains, and
  they do so on submission (RFC 6409): ``553 5.7.1`` for anyone else;
* sender alignment on submission (RFC 6409 section 6.1): MAIL FROM, and every
  address in the From and Sender header fields, must be one the authenticated
  account may send as (``PolicyContext.may_send_as``, the directory's rules):
  ``553 5.7.1``; a message without From is refused (RFC 5322 section 3.6,
  ``550 5.6.0``). The null reverse-path is allowed (RFC 5321 section 4.5.5;
  MDNs use it, RFC 8098 section 2.1).

The facts come from the wiring through ``PolicyContext`` (``may_relay``,
``is_local``, ``may_send_as``): policy never imports the SMTP code. A stage
that finds nothing wrong answers None, so the ``X-Policy`` field is the content
checks' alone.
"""

from __future__ import annotations

from typing import Any, ClassVar

from policy import codes
from policy.checks import Check, MessageView
from policy.context import PolicyContext
from policy.settings import SenderOptions
from policy.verdict import Verdict, reject
from storage import headers


def _domain(address: str) -> str:
    return address.rpartition("@")[2]


def header_addresses(data: bytes, name: str) -> list[str] | None:
    """addr-specs in every ``name`` header field; None when the field is absent.
    Read by ``storage.headers``, as IMAP ENVELOPE and sender authentication read them."""
    values = headers.field_values(data, name)
    if not values:
        return None
    return [addr for _, addr in headers.addresses(values)]


class SenderCheck(Check[SenderOptions]):
    name: ClassVar[str] = "sender"
    options_type: ClassVar[type[Any]] = SenderOptions

    async def mail_from(self, ctx: PolicyContext) -> Verdict | None:
        sender = ctx.envelope.mail_from
        if not sender:
            return None
        if ctx.may_send_as is not None and not await ctx.may_send_as(sender):
            why = f"{ctx.session.authenticated} may not send as <{sender}>"
            return reject(self.name, codes.S553_SENDER_NOT_OWNED, why, "not-owned")
        if ctx.is_local(_domain(sender)) and not ctx.may_relay:
            why = f"our domain in <{sender}> from a client that may not relay"
            return reject(self.name, codes.S553_SENDER_NOT_ALLOWED, why, "local-sender")
        return None

    async def rcpt(self, ctx: PolicyContext, rcpt: str) -> Verdict | None:
        if ctx.may_relay or "@" not in rcpt or ctx.is_local(_domain(rcpt)):
            return None
        return reject(self.name, codes.S554_RELAY_DENIED, f"relaying to <{rcpt}> denied", "relay")

    async def data(self, ctx: PolicyContext, message: MessageView) -> Verdict | None:
        """From/Sender alignment of a submitted message. A header section that
        could be read two ways is refused first (``storage.headers``)."""
        may_send_as = ctx.may_send_as
        if may_send_as is None:
            return None
        data = message.raw
        if headers.ambiguity(data) is not None:
            return reject(self.name, codes.S550_AMBIGUOUS_HEADER, "ambiguous header section", "ambiguous")
        senders = header_addresses(data, "From")
        if not senders or not any(senders):
            return reject(self.name, codes.S550_NO_FROM, "no From address", "no-from")
        for addr in senders + (header_addresses(data, "Sender") or []):
            if not addr or not await may_send_as(addr):
                why = f"{ctx.session.authenticated} may not use <{addr}> in From/Sender"
                return reject(self.name, codes.S553_FROM_NOT_OWNED, why, "from")
        return None
