"""PROXY protocol (HAProxy, versions 1 and 2) in front of any listener.

A load balancer in TCP mode hides the client: the connection we accept comes
from the balancer. With ``<service>.proxy_protocol = true`` the balancer opens
every connection with a PROXY header naming the client (haproxy's
``doc/proxy-protocol.txt``: v1 is a text line, v2 a binary block), and the
client's own bytes (SMTP commands, a TLS ClientHello) follow.

Theory of operation: ``serve`` owns the listening socket and runs its own accept
loop. For each connection it (1) refuses a peer outside
``server.trusted_proxies`` (anybody who may send a header may claim any address,
so only the balancer may), (2) reads the header from the raw socket with exact
reads, never a byte more, so the first TLS record or command after it is left for
the protocol, (3) hands the socket to the service's protocol with
``loop.connect_accepted_socket`` (TLS still done by the event loop, asyncio or
uvloop), remembering the client address for that protocol object. Code that
needs the client's address calls ``client_address(transport)`` instead of reading
``peername``: it gives the address from the header, or the peer itself when the
listener is not behind a proxy. A ``LOCAL`` header (the balancer's health check)
keeps the balancer's address. Parsing is aiosmtpd's (``aiosmtpd.proxy_protocol``),
over a reader that reads the socket exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import ssl
import weakref
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any, Final

from aiosmtpd.proxy_protocol import V2_CMD, get_proxy

log = logging.getLogger(__name__)

HEADER_TIMEOUT: Final = 10.0
"""Seconds a trusted proxy has to send the whole header."""
MAX_V1_LINE: Final = 107  # haproxy doc section 2.1: the longest v1 line with CRLF
MAX_V2_BODY: Final = 4096  # TLVs beyond this are not something a balancer sends us

Address = tuple[str, int]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Handshake = Callable[[socket.socket, Address], Coroutine[Any, Any, None]]

# The client each proxied connection's protocol serves. Keyed by the protocol
# (it outlives a STARTTLS, which swaps the transport); protocols that cannot be
# weakly referenced (aiohttp's, slotted) are keyed by their transport instead,
# through ``_pending`` until the transport exists.
_by_protocol: weakref.WeakKeyDictionary[asyncio.BaseProtocol, Address] = weakref.WeakKeyDictionary()
_by_transport: weakref.WeakKeyDictionary[asyncio.BaseTransport, Address] = weakref.WeakKeyDictionary()
_pending: dict[int, Address] = {}


SMTP_REFUSAL: Final = (
    "421 4.7.0 Kết nối phải đi qua bộ cân bằng tải được tin cậy / "
    "Connection must come through a trusted proxy (PROXY protocol)\r\n"
).encode()
IMAP_REFUSAL: Final = (
    "* BYE Kết nối phải đi qua bộ cân bằng tải được tin cậy / "
    "Connection must come through a trusted proxy (PROXY protocol)\r\n"
).encode()


class HeaderError(Exception):
    """The PROXY header is missing, malformed, too long or too slow."""


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """CIDR strings (``server.trusted_proxies``) to networks; a bad one raises ValueError."""
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)


def trusted(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


def _lookup(table: weakref.WeakKeyDictionary[Any, Address], key: object) -> Address | None:
    # Some objects cannot be weakly referenced (aiohttp's slotted protocol,
    # uvloop's TLS transport): they are simply not in the table.
    try:
        return table.get(key)
    except TypeError:
        return None


def _remember(table: weakref.WeakKeyDictionary[Any, Address], key: object, client: Address) -> bool:
    try:
        table[key] = client
    except TypeError:
        return False
    return True


def client_address(transport: asyncio.BaseTransport | None) -> Address | None:
    """The client's (host, port): from the PROXY header when there was one, else the peer."""
    if transport is None:
        return None
    protocol = transport.get_protocol()
    remembered = _lookup(_by_protocol, protocol) or _lookup(_by_transport, transport)
    if remembered is None and id(protocol) in _pending:
        remembered = _pending.pop(id(protocol))
        _remember(_by_transport, transport, remembered)
    if remembered is not None:
        return remembered
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return str(peer[0]), int(peer[1])
    return None


def client_ip(transport: asyncio.BaseTransport | None) -> str:
    address = client_address(transport)
    return address[0] if address is not None else ""


class _SocketReader:
    """``aiosmtpd.proxy_protocol.AsyncReader`` over a raw socket: exact reads only."""

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        self._sock = sock
        self._loop = loop
        self._taken = 0

    async def readexactly(self, n: int) -> bytes:
        self._taken += n
        if n < 0 or self._taken > 16 + MAX_V2_BODY:
            raise HeaderError("PROXY header too long")
        chunks = bytearray()
        while len(chunks) < n:
            data = await self._loop.sock_recv(self._sock, n - len(chunks))
            if not data:
                raise HeaderError("connection closed inside the PROXY header")
            chunks += data
        return bytes(chunks)

    async def read(self, n: int = -1) -> bytes:
        return await self.readexactly(max(n, 0))

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        line = bytearray()
        while not line.endswith(separator):
            if len(line) >= MAX_V1_LINE:
                raise HeaderError("PROXY v1 line too long")
            line += await self.readexactly(1)
        return bytes(line)


async def read_header(sock: socket.socket, peer: Address) -> Address:
    """Read one PROXY header from ``sock``; return the client it names (or ``peer`` for LOCAL)."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(HEADER_TIMEOUT):
            data = await get_proxy(_SocketReader(sock, loop))
    except TimeoutError as exc:
        raise HeaderError("no PROXY header in time") from exc
    if data.version == 2 and data.command == V2_CMD.LOCAL:
        return peer
    if not data.valid:
        raise HeaderError(data.error or "malformed PROXY header")
    if data.src_addr is None or data.src_port is None:
        # v1 "UNKNOWN" / v2 UNSPEC family: the balancer does not know the client either.
        return peer
    return str(data.src_addr), int(data.src_port)


def _refuse(sock: socket.socket, refusal: bytes) -> None:
    """Say why (when the protocol has a way), then close without a reset: what the
    client sent is read and dropped first, as a close with unread input sends RST."""
    with contextlib.suppress(OSError):
        if refusal:
            sock.send(refusal)
        sock.shutdown(socket.SHUT_WR)
        for _ in range(16):
            if not sock.recv(65536):
                break
    sock.close()


class ProxiedServer:
    """What ``serve`` returns: closes like ``asyncio.Server`` (``sockets``, ``close``, ``wait_closed``)."""

    def __init__(self, listener: socket.socket, handshake: Handshake, name: str) -> None:
        self._listener = listener
        self._handshake = handshake
        self._name = name
        self._handshakes: set[asyncio.Task[None]] = set()
        self._task = asyncio.create_task(self._accept_loop())

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return (self._listener,)

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, raw_peer = await loop.sock_accept(self._listener)
            except OSError as exc:  # EMFILE and friends: back off, keep listening
                log.warning("%s: accept failed: %s", self._name, exc)
                await asyncio.sleep(0.1)
                continue
            sock.setblocking(False)
            task = asyncio.create_task(self._handshake(sock, (str(raw_peer[0]), int(raw_peer[1]))))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)

    def close(self) -> None:
        self._task.cancel()
        for task in list(self._handshakes):
            task.cancel()
        with contextlib.suppress(OSError):
            self._listener.close()

    async def wait_closed(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        if self._handshakes:
            await asyncio.gather(*self._handshakes, return_exceptions=True)


async def serve(
    factory: Callable[[], asyncio.BaseProtocol],
    host: str,
    port: int,
    *,
    trusted_proxies: Sequence[Network],
    ssl_context: ssl.SSLContext | None = None,
    backlog: int = 1024,
    name: str = "proxy",
    refusal: bytes = b"",
    reuse_port: bool = False,
) -> ProxiedServer:
    """Listen on host:port; every connection must come from a trusted proxy and start with a header.

    ``refusal`` is what a refused connection reads before the close (``421 4.7.0 …`` for SMTP,
    ``* BYE …`` for IMAP; nothing on TLS listeners, whose client expects a handshake)."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # reuse_port: SMTP worker processes bind the same MX address (mailserver/smtp/workers.py).
    listener = socket.create_server((host, port), family=family, backlog=backlog, reuse_port=reuse_port)
    listener.setblocking(False)

    async def handshake(sock: socket.socket, peer: Address) -> None:
        try:
            if not trusted(peer[0], trusted_proxies):
                raise HeaderError(f"{peer[0]} is not in server.trusted_proxies")
            client = await read_header(sock, peer)
        except (HeaderError, OSError) as exc:
            log.warning("%s: connection from %s refused: %s", name, peer[0], exc)
            _refuse(sock, refusal)
            return

        made: list[asyncio.BaseProtocol] = []

        def remembering() -> asyncio.BaseProtocol:
            protocol = factory()
            made.append(protocol)
            if not _remember(_by_protocol, protocol, client):
                _pending[id(protocol)] = client
            return protocol

        try:
            transport, _ = await loop.connect_accepted_socket(remembering, sock, ssl=ssl_context)
        except (OSError, ssl.SSLError) as exc:
            log.info("%s: connection from %s (via %s) failed: %s", name, client[0], peer[0], exc)
            sock.close()
        else:
            if made and id(made[0]) in _pending:
                _remember(_by_transport, transport, _pending.pop(id(made[0])))
        finally:
            for protocol in made:
                _pending.pop(id(protocol), None)

    return ProxiedServer(listener, handshake, name)
