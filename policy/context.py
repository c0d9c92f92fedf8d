"""Policy's own view of an SMTP transaction (RFC 5321 section 3.3), so that
``policy`` never imports the protocol code: the SMTP handler fills these.

Lifecycle: one ``PolicyContext`` per transaction. The handler creates it at
MAIL FROM (``session`` comes from the connection), appends accepted
recipients after RCPT, and sets ``auth_results`` before DATA is checked when
SPF/DKIM/DMARC have been evaluated.

What the relay and sender rules (``policy.checks.sender``) need to know about
the server comes in here too, supplied by the wiring: whether the client may
relay, which domains are ours, and whom an authenticated user may send as.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field


class Direction(enum.StrEnum):
    INBOUND = "inbound"
    """From another server to a local recipient (MX port)."""
    SUBMISSION = "submission"
    """From an authenticated local user (RFC 6409), to anywhere."""
    INTERNAL = "internal"
    """From one local user to another, on submission."""


@dataclass(frozen=True, slots=True)
class SessionInfo:
    client_ip: str
    helo: str = ""
    authenticated: str | None = None
    """Account the client authenticated as (submission), or None."""
    tls: str | None = None
    """Protocol and cipher once TLS is up, or None."""
    rdns: str | None = None
    session_id: str = ""


@dataclass(slots=True)
class EnvelopeInfo:
    mail_from: str = ""
    """Reverse-path without brackets; ``""`` for ``<>``."""
    rcpts: list[str] = field(default_factory=list)


AuthResults = Mapping[str, str]
"""Method -> result, as in Authentication-Results (RFC 8601 section 2.7):
``{"spf": "pass", "dkim": "fail", "dmarc": "none"}``. Kept a plain mapping so
the DKIM/SPF code's ``AuthResults`` type need not be imported here; a value may
carry more after a space (``"pass header.d=example.org"``), only the first word
is read."""


LocalDomain = Callable[[str], bool]
"""Whether a domain is one of ours (alias domains included), any case."""
SendAs = Callable[[str], Awaitable[bool]]
"""Whether the authenticated account may use an address as its sender."""


def _not_local(domain: str) -> bool:
    return False


@dataclass(slots=True)
class PolicyContext:
    session: SessionInfo
    envelope: EnvelopeInfo = field(default_factory=EnvelopeInfo)
    direction: Direction = Direction.INBOUND
    auth_results: AuthResults = field(default_factory=dict)
    local_domains: tuple[str, ...] = ()
    """Lower-case local mail domains (``server.domains``)."""
    may_relay: bool = False
    """The client may send to other domains and as our domains: it
    authenticated, or it is in ``smtp.relay_networks`` (RFC 5321 section 7.1)."""
    is_local: LocalDomain = _not_local
    """Whether a domain is ours, as routing sees it (alias domains included)."""
    may_send_as: SendAs | None = None
    """Submission: whether the authenticated account may use an address in
    MAIL FROM, From and Sender (RFC 6409 section 6.1); None on the MX."""

    def auth(self, method: str) -> str:
        """Result word of one method (``pass``, ``fail``...), ``none`` if absent."""
        value = self.auth_results.get(method, "none") or "none"
        return value.split()[0].lower()

    def sender_domain(self) -> str:
        return self.envelope.mail_from.rpartition("@")[2].lower()
