"""The inbound SMTP (MX) listener: RFC 5321 over TCP with STARTTLS (RFC 3207).

Built like the submission ports (``service``): the protocol is
``protocol.MxSMTP``, the hooks ``handler.SmtpHandler`` with nothing added
(the plain ``FrontEnd``), and ``SmtpService`` binds ``smtp.listen`` (port 0
allowed; ``start`` reports the port actually bound). Every message passes the
policy pipeline (``policy.pipeline``: relay, sender and content rules) given
by the app, in ``delivery.Inbound``, and the sender authentication (SPF,
DKIM, DMARC) of ``SmtpDeps.dns``.
STARTTLS is offered but not required: on port 25 a sender that cannot do TLS
must still reach us (RFC 3207 section 4). What one client may cost (sessions
in total and per address, DATA spooled to disk, memory for checks, the
recipient-harvesting limits) is ``limits.session_limits``'.

Lifecycle: ``await start()``, then ``await stop()`` (``service.SmtpListeners``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from mailserver.smtp.handler import FrontEnd
from mailserver.smtp.limits import SharedAddressCounts, session_limits
from mailserver.smtp.protocol import MxSMTP
from mailserver.smtp.service import SmtpDeps, SmtpListeners

_BACKLOG: Final = 1024


class SmtpService(SmtpListeners):
    """The MX front end (see module docstring)."""

    name = "smtp"

    def __init__(self, deps: SmtpDeps, *, listen: str | None = None, processes: int = 1,
                 address_counts: SharedAddressCounts | None = None) -> None:
        if processes > 1 and address_counts is None:
            address_counts = SharedAddressCounts.create(processes)  # the main process: workers inherit it
        self.address_counts = address_counts
        """Sessions per client address across the processes serving the MX address."""
        super().__init__(deps, FrontEnd(), session_limits(deps.config, processes, address_counts))
        self._listen = listen or deps.config.smtp.listen
        self._processes = processes
        """Processes serving the MX address (mailserver/smtp/workers.py): above 1
        the socket is bound with SO_REUSEPORT and the limits are shared out."""
        self.on_session: Callable[[int], None] | None = None
        """Told the number of open sessions at each new one (on-demand SMTP workers)."""

    def _make_protocol(self) -> MxSMTP:
        protocol = MxSMTP(self._handler, **self.protocol_options(self._ssl_context))
        self.track(protocol)
        if self.on_session is not None:
            self.on_session(self.connection_count())
        return protocol

    async def start(self) -> dict[str, tuple[str, int]]:
        bound = await self.listen("smtp", self._listen, self._make_protocol, backlog=_BACKLOG,
                                  proxy=self._config.smtp.proxy_protocol, reuse_port=self._processes > 1)
        return {"smtp": bound}
