"""What every SMTP listener service shares: binding, sessions, graceful stop.

The MX (``server.SmtpService``) and submission (``submission.SubmissionService``)
are built alike: from the same ``SmtpDeps`` (what the wiring hands a front
end), a protocol class (``protocol.MxSMTP`` / ``sasl.SubmissionSMTP``), one
``handler.SmtpHandler`` with the port's ``FrontEnd``, and a service
subclassing ``SmtpListeners`` that says which addresses it binds and how it
makes a protocol; everything else is here.

Lifecycle: ``await start()`` binds (port 0 allowed: the result names the
ports actually bound); ``await stop()`` stops accepting, lets sessions that
are storing a message finish (briefly, ``STOP_GRACE``), tells the others
``421`` and closes them (RFC 5321 section 3.8).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from mailserver import proxyproto
from mailserver.config import Config, parse_hostport
from mailserver.smtp.delivery import Inbound
from mailserver.smtp.handler import FrontEnd, ReverseLookup, SmtpHandler, reverse_lookup
from mailserver.smtp.hooks import ReportHooks
from mailserver.smtp.limits import SessionLimits
from mailserver.smtp.protocol import MxSMTP, status
from pki.arc import ArcSealer
from policy import codes
from policy.dns import Resolver
from storage.api import MailStore
from storage.quarantine import Quarantine

if TYPE_CHECKING:
    from mailserver.smtp.queue import Outbound
    from policy.pipeline import Pipeline

log = logging.getLogger(__name__)

STOP_GRACE: Final = 5.0
"""Seconds stop() waits for deliveries in progress to become durable."""


class _QuietAiosmtpd(logging.Filter):
    """aiosmtpd logs every command line and connection at INFO and client
    mistakes at WARNING; those are session noise here, so they become DEBUG.
    Errors stay errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR:
            record.levelno = logging.DEBUG
            record.levelname = "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


def quiet_aiosmtpd() -> None:
    logger = logging.getLogger("mail.log")
    if not any(isinstance(f, _QuietAiosmtpd) for f in logger.filters):
        logger.addFilter(_QuietAiosmtpd())
    if not logger.isEnabledFor(logging.DEBUG):
        # The filter would drop every record below ERROR: do not make them
        # (several per session) in the first place.
        logger.setLevel(logging.ERROR)


@dataclass(frozen=True, slots=True)
class SmtpDeps:
    """What the wiring (``App``) hands an SMTP front end: where accepted mail
    goes and what judges it. The same for every port."""

    config: Config
    store: MailStore
    ssl_context: ssl.SSLContext | None
    """STARTTLS (and implicit TLS on submission); None: no TLS offered."""
    outbound: Outbound | None = None
    """The queue of mail for other domains; None: relaying answers 451."""
    pipeline: Pipeline | None = None
    """The policy; None: the relay and sender rules alone (unit tests)."""
    quarantine: Quarantine | None = None
    dns: Resolver | None = None
    """DNS for SPF/DKIM/DMARC of unauthenticated senders; None skips it."""
    reverse: ReverseLookup = reverse_lookup
    """Reverse DNS of client addresses, for the Received field."""
    sealer: ArcSealer | None = None
    """ARC sealing of forwarded and expanded copies (pki/arc.py); None: unsealed."""
    reports: ReportHooks | None = None
    """DMARC aggregate report hooks (MX only); None: evaluations not counted."""


class SmtpListeners:
    """The shared part of an SMTP front end's service (module docstring)."""

    name: str = "smtp"
    """For log lines."""

    def __init__(self, deps: SmtpDeps, front_end: FrontEnd, limits: SessionLimits) -> None:
        config = deps.config
        inbound = Inbound(
            config, deps.store, resolver=deps.dns, outbound=deps.outbound, pipeline=deps.pipeline,
            quarantine=deps.quarantine, sealer=deps.sealer, reports=deps.reports,
        )
        self._config = config
        self._ssl_context = deps.ssl_context
        self._handler = SmtpHandler(inbound, config.server.hostname, deps.reverse, front_end)
        self.limits = limits
        self._servers: list[asyncio.Server | proxyproto.ProxiedServer] = []
        self._sessions: set[MxSMTP] = set()

    def connection_count(self) -> int:
        """Sessions open now."""
        return len(self._sessions)

    def protocol_options(self, tls_context: ssl.SSLContext | None) -> dict[str, Any]:
        """aiosmtpd's parameters, alike on every port (STARTTLS offered, not required:
        RFC 3207 section 4)."""
        return {
            "on_close": self._sessions.discard,
            "limits": self.limits,
            "hostname": self._config.server.hostname,
            "ident": "ESMTP",
            "tls_context": tls_context,
            "require_starttls": False,
            "timeout": self._config.smtp.timeout,
            "data_size_limit": self._config.smtp.max_message_size,
            "enable_SMTPUTF8": True,
            "decode_data": False,
            "loop": asyncio.get_running_loop(),
        }

    def track(self, protocol: MxSMTP) -> None:
        """Count a new session (it leaves the set when it closes)."""
        self._sessions.add(protocol)

    async def listen(
        self,
        name: str,
        listen: str,
        factory: Callable[[], MxSMTP],
        *,
        backlog: int,
        proxy: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        reuse_port: bool = False,
    ) -> tuple[str, int]:
        """Bind ``listen`` (host:port) and serve ``factory``'s protocols there;
        with ``proxy``, every connection comes from a ``server.trusted_proxies``
        load balancer and starts with a PROXY protocol header (mailserver/proxyproto.py)."""
        quiet_aiosmtpd()
        host, port = parse_hostport(listen)
        server: asyncio.Server | proxyproto.ProxiedServer
        if proxy:
            server = await proxyproto.serve(
                factory, host or "0.0.0.0", port, backlog=backlog, name=name,  # noqa: S104 - every address
                refusal=b"" if ssl_context is not None else proxyproto.SMTP_REFUSAL, reuse_port=reuse_port,
                ssl_context=ssl_context,
                trusted_proxies=proxyproto.parse_networks(self._config.server.trusted_proxies),
            )
        else:
            server = await asyncio.get_running_loop().create_server(
                factory, host or None, port, backlog=backlog, reuse_address=True,
                reuse_port=reuse_port or None, ssl=ssl_context,
            )
        self._servers.append(server)
        bound = server.sockets[0].getsockname()
        return str(bound[0]), int(bound[1])

    async def stop(self) -> None:
        servers, self._servers = self._servers, []
        if not servers:
            return
        for server in servers:
            server.close()
        for server in servers:
            await server.wait_closed()
        await end_sessions(self._sessions, self.name)


async def end_sessions(sessions: set[MxSMTP], name: str) -> None:
    """Graceful stop of a listener's sessions (its server already closed): let
    deliveries in progress commit, so their clients get the 250 they are owed
    rather than a retry of a stored message; then 421 and close the rest."""
    busy = [s for s in sessions if s.busy]
    if busy:
        try:
            async with asyncio.timeout(STOP_GRACE):
                while any(s.busy for s in busy):
                    await asyncio.sleep(0.01)
        except TimeoutError:
            log.warning("%s: stopping with %d deliveries unfinished", name, sum(s.busy for s in busy))
    goodbye = (status(codes.S421_SHUTTING_DOWN) + "\r\n").encode()
    tasks = []
    for session in list(sessions):
        transport = session.transport
        if transport is not None and not transport.is_closing():
            write = getattr(transport, "write", None)  # uvloop's transports are no asyncio.WriteTransport
            if write is not None:
                write(goodbye)
            transport.close()
        task = session._handler_coroutine
        if task is not None and not task.done():
            tasks.append(task)
    if tasks:
        await asyncio.wait(tasks, timeout=STOP_GRACE)
    sessions.clear()
