"""The ManageSieve driver: sockets, STARTTLS and timeouts around the sans-IO
parser and session (RFC 5804 sections 1.4, 2.2).

Read, feed the parser, run each event through the ``Session``, write its
responses, and nothing else. The only broad ``except`` is here: a fault while
running a command is logged with the connection id and answered
``NO "Internal server error"``; no traceback reaches the client.

STARTTLS (section 2.2, CVE-2011-0411): octets received in clear before the
handshake, in the parser's buffer or in the stream reader's, are dropped.

Timeouts (then ``BYE`` and close): ``managesieve.timeout`` seconds of
silence before login, ``managesieve.autologout`` after; ``login_timeout``
from connect to a successful login, whatever the client sends meanwhile;
``command_timeout`` from the first octet of a command to its end, so a
command dripped one octet at a time cannot hold the connection. At most
``max_connections`` at once; one more gets ``BYE`` at connect.

With ``managesieve.proxy_protocol`` the listener sits behind a load balancer
(``mailserver/proxyproto.py``): the client it names is the one throttled,
logged and checked for loopback.

Lifecycle: ``ManageSieveService(settings, deps, ssl_context, trusted_proxies=)``; ``await
start()`` binds ``managesieve.listen`` and returns what was bound; ``await
stop()`` closes the listener and ends every session with ``BYE``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import ssl
import time
from typing import Final

from mailserver import proxyproto
from mailserver.config import parse_hostport
from mailserver.imap.server import _discard_unread
from mailserver.managesieve.parser import NeedData, Parser
from mailserver.managesieve.responses import Bye, No, Response
from mailserver.managesieve.session import ManageSieveDeps, Session
from mailserver.managesieve.settings import ManageSieveSettings

__all__ = ["ManageSieveService"]

log = logging.getLogger(__name__)

READ_SIZE: Final = 65536
REFUSAL: Final = (
    'BYE "Kết nối phải đi qua bộ cân bằng tải được tin cậy / '
    'Connection must come through a trusted proxy (PROXY protocol)"\r\n'
).encode()
_ids = itertools.count(1)


class ManageSieveService:
    def __init__(
        self,
        settings: ManageSieveSettings,
        deps: ManageSieveDeps,
        ssl_context: ssl.SSLContext | None,
        *,
        trusted_proxies: list[str] | None = None,
    ) -> None:
        self._settings = settings
        self._trusted_proxies = trusted_proxies or []
        self._deps = deps
        self._ssl_context = ssl_context
        self._server: asyncio.Server | proxyproto.ProxiedServer | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> dict[str, tuple[str, int]]:
        host, port = parse_hostport(self._settings.listen)
        if self._settings.proxy_protocol:
            loop = asyncio.get_running_loop()

            def stream_protocol() -> asyncio.BaseProtocol:
                # What asyncio.start_server builds for each connection.
                return asyncio.StreamReaderProtocol(asyncio.StreamReader(loop=loop), self._accept, loop=loop)

            self._server = await proxyproto.serve(
                stream_protocol,
                host,
                port,
                name="managesieve",
                refusal=REFUSAL,
                trusted_proxies=proxyproto.parse_networks(self._trusted_proxies),
            )
        else:
            self._server = await asyncio.start_server(self._accept, host, port, backlog=256)
        sockname = self._server.sockets[0].getsockname()
        return {"managesieve": (sockname[0], sockname[1])}

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # noqa: S101 - always inside a task here
        if len(self._connections) >= self._settings.max_connections:
            with contextlib.suppress(Exception):
                writer.write(
                    Bye("Máy chủ đang quá tải / Too many connections, try again later", "TRYLATER").to_bytes()
                )
                async with asyncio.timeout(5.0):
                    await writer.drain()
            writer.close()
            return
        self._connections.add(task)
        conn = _Connection(self, reader, writer, proxyproto.client_ip(writer.transport))
        try:
            await conn.run()
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await conn.send([Bye("Máy chủ đang dừng / Server shutting down")])
        except (ConnectionError, ssl.SSLError, TimeoutError):
            pass
        except Exception:
            log.exception("managesieve %s: connection failed", conn.id)
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)


class _Connection:
    def __init__(
        self,
        service: ManageSieveService,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        remote_ip: str,
    ) -> None:
        self.id = f"s{next(_ids)}"
        self.connected = time.monotonic()
        self.service = service
        self.reader = reader
        self.writer = writer
        settings = service._settings
        self.parser = Parser(max_line=settings.max_line, max_literal=settings.max_preauth_literal)
        self.session = Session(
            service._deps,
            remote_ip=remote_ip,
            secure=False,
            starttls_available=service._ssl_context is not None,
            connection_id=self.id,
        )

    async def send(self, responses: list[Response]) -> None:
        if responses:
            self.writer.write(b"".join(r.to_bytes() for r in responses))
            async with asyncio.timeout(self.service._settings.autologout):
                await self.writer.drain()

    def _wait(self, command_started: float | None) -> tuple[float, str]:
        """Seconds to wait for more input, and what to say when they run out."""
        settings = self.service._settings
        now = time.monotonic()
        if self.session.state == "auth":
            wait, why = float(settings.autologout), "Hết thời gian chờ / Timed out"
        else:
            wait, why = float(settings.timeout), "Hết thời gian chờ / Timed out"
            login_left = self.connected + settings.login_timeout - now
            if login_left < wait:
                wait, why = login_left, "Quá thời gian đăng nhập / Login took too long"
        if command_started is not None:
            command_left = command_started + settings.command_timeout - now
            if command_left < wait:
                wait, why = command_left, "Lệnh gửi quá chậm / Command took too long"
        return max(wait, 0.0), why

    async def run(self) -> None:
        await self.send(self.session.greeting())
        command_started: float | None = None
        while not self.session.closed:
            event = self.parser.next_event()
            if isinstance(event, NeedData):
                if self.parser.pending and command_started is None:
                    command_started = time.monotonic()
                wait, why = self._wait(command_started)
                try:
                    data = await asyncio.wait_for(self.reader.read(READ_SIZE), wait)
                except TimeoutError:
                    await self.send([Bye(why)])
                    return
                if not data:
                    return
                self.parser.receive_data(data)
                continue
            command_started = None
            try:
                responses = await self.session.handle(event)
            except Exception:
                log.exception("managesieve %s: error running a command", self.id)
                responses = [No("Lỗi máy chủ / Internal server error")]
            await self.send(responses)
            self.parser.max_literal = self.session.max_literal
            if self.session.start_tls:
                await self._start_tls()

    async def _start_tls(self) -> None:
        context = self.service._ssl_context
        assert context is not None  # noqa: S101 - STARTTLS is refused without one
        dropped = _discard_unread(self.reader) + self.parser.drop_buffered()
        if dropped:
            log.warning("managesieve %s: %d plaintext octets after STARTTLS discarded", self.id, dropped)
        await self.writer.start_tls(context)
        await self.send(self.session.tls_started())
