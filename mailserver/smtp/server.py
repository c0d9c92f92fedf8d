"""The inbound SMTP (MX) listener: RFC 5321 over TCP with STARTTLS (RFC 3207).

``SmtpService`` binds ``smtp.listen`` (port 0 allowed; ``start`` reports the
port actually bound) and runs one ``handler.MxSMTP`` protocol per connection.
Every message passes the content policy (``policy.pipeline``) given by the
app, in ``delivery.Inbound``.
STARTTLS is offered but not required: on port 25 a sender that cannot do TLS
must still reach us (RFC 3207 section 4). What one client may cost (sessions
in total and per address, DATA spooled to disk, memory for checks, the
recipient-harvesting limits) is ``limits.session_limits``'.

Lifecycle: ``await start()``; ``await stop()`` stops accepting, lets sessions
that are storing a message finish (briefly), tells the others ``421`` and
closes them (RFC 5321 section 3.8).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import Final

from mailserver import proxyproto
from mailserver.auth import Authenticator
from mailserver.config import Config, parse_hostport
from mailserver.smtp.delivery import Inbound
from mailserver.smtp.handler import MxHandler, MxSMTP, ReverseLookup, reverse_lookup, status
from mailserver.smtp.hooks import ReportHooks
from mailserver.smtp.limits import session_limits
from mailserver.smtp.queue import Outbound
from pki.arc import ArcSealer
from policy import codes
from policy.dns import Resolver
from policy.pipeline import Pipeline
from storage.api import MailStore
from storage.quarantine import Quarantine

log = logging.getLogger(__name__)

STOP_GRACE: Final = 5.0
"""Seconds stop() waits for deliveries in progress to become durable."""
_BACKLOG: Final = 1024


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


def _quiet_aiosmtpd() -> None:
    logger = logging.getLogger("mail.log")
    if not any(isinstance(f, _QuietAiosmtpd) for f in logger.filters):
        logger.addFilter(_QuietAiosmtpd())
    if not logger.isEnabledFor(logging.DEBUG):
        # The filter would drop every record below ERROR: do not make them
        # (several per session) in the first place.
        logger.setLevel(logging.ERROR)


class SmtpService:
    """The MX front end (see module docstring)."""

    def __init__(
        self,
        config: Config,
        store: MailStore,
        authenticator: Authenticator,
        ssl_context: ssl.SSLContext | None,
        *,
        resolver: ReverseLookup = reverse_lookup,
        dns: Resolver | None = None,
        outbound: Outbound | None = None,
        pipeline: Pipeline | None = None,
        quarantine: Quarantine | None = None,
        listen: str | None = None,
        processes: int = 1,
        sealer: ArcSealer | None = None,
        reports: ReportHooks | None = None,
    ) -> None:
        self._config = config
        self._listen = listen or config.smtp.listen
        self._processes = processes
        """Processes serving the MX address (mailserver/smtp/workers.py): above 1
        the socket is bound with SO_REUSEPORT and the limits are shared out."""
        self._store = store
        self._authenticator = authenticator
        self._ssl_context = ssl_context
        self._inbound = Inbound(
            config, store, resolver=dns, outbound=outbound, pipeline=pipeline, quarantine=quarantine,
            sealer=sealer, reports=reports,
        )
        self._handler = MxHandler(self._inbound, config.server.hostname, resolver)
        self._server: asyncio.Server | proxyproto.ProxiedServer | None = None
        self._sessions: set[MxSMTP] = set()
        self.limits = session_limits(config, processes)
        self.on_session: Callable[[int], None] | None = None
        """Told the number of open sessions at each new one (on-demand SMTP workers)."""

    def _make_protocol(self) -> MxSMTP:
        protocol = MxSMTP(
            self._handler,
            on_close=self._sessions.discard,
            limits=self.limits,
            hostname=self._config.server.hostname,
            ident="ESMTP",
            tls_context=self._ssl_context,
            require_starttls=False,
            timeout=self._config.smtp.timeout,
            data_size_limit=self._config.smtp.max_message_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            loop=asyncio.get_running_loop(),
        )
        self._sessions.add(protocol)
        if self.on_session is not None:
            self.on_session(len(self._sessions))
        return protocol

    async def start(self) -> dict[str, tuple[str, int]]:
        _quiet_aiosmtpd()
        host, port = parse_hostport(self._listen)
        loop = asyncio.get_running_loop()
        if self._config.smtp.proxy_protocol:
            self._server = await proxyproto.serve(
                self._make_protocol, host or "0.0.0.0", port, backlog=_BACKLOG, name="smtp",  # noqa: S104
                refusal=proxyproto.SMTP_REFUSAL, reuse_port=self._processes > 1,
                trusted_proxies=proxyproto.parse_networks(self._config.server.trusted_proxies),
            )
        else:
            self._server = await loop.create_server(
                self._make_protocol, host or None, port, backlog=_BACKLOG, reuse_address=True,
                reuse_port=self._processes > 1 or None,
            )
        bound = self._server.sockets[0].getsockname()
        return {"smtp": (str(bound[0]), int(bound[1]))}

    def connection_count(self) -> int:
        """Sessions open now (metrics, the portal's dashboard)."""
        return len(self._sessions)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        await server.wait_closed()
        await end_sessions(self._sessions, "smtp")


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
            if isinstance(transport, asyncio.WriteTransport):
                transport.write(goodbye)
            transport.close()
        task = session._handler_coroutine
        if task is not None and not task.done():
            tasks.append(task)
    if tasks:
        await asyncio.wait(tasks, timeout=STOP_GRACE)
    sessions.clear()
