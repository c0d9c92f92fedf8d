"""TCP options that let every listener answer a client at once (issue 17).

Why: many clients write one command in several ``send`` calls and leave Nagle's
algorithm on. Python's ``imaplib`` sends an APPEND literal and its closing CRLF
in two writes; Nagle holds the CRLF until our side has acknowledged the
literal. Linux, seeing an interactive ("ping-pong") connection, delays that ACK
(40 ms at least) hoping to piggyback it on a reply - but we cannot reply before
the CRLF. Each such command then waits ~40 ms doing nothing (APPEND with
``imaplib``: 49 ms each, Dovecot ~3 ms). The same happens to the last segment
of SMTP DATA sent in several writes.

What: ``tune`` sets ``TCP_NODELAY`` on an accepted socket (our own replies made
of several writes never wait for the client's ACK; asyncio sets it too, this
states it for every event loop) and ``quickack`` sets Linux's ``TCP_QUICKACK``,
which sends an ACK that is due now and leaves the delayed-ACK mode. The kernel
re-enters that mode whenever we send soon after receiving, so it does not stay
set: the drivers call ``quickack`` at the moments a client may be waiting for
our ACK before it sends the rest of a command - after a read that left a command
incomplete (an IMAP literal or line in parts, SMTP DATA in progress) and after an
IMAP continuation ``+``. It changes when the kernel acknowledges octets it
received, never what is acknowledged to the client in a protocol reply: ``250``
and ``OK`` still come only after fsync and commit.

Elsewhere than Linux ``TCP_QUICKACK`` does not exist and ``quickack`` does nothing.
Both functions take a transport's socket (``transport.get_extra_info("socket")``:
asyncio's ``TransportSocket``, uvloop's ``PseudoSocket``; the raw TCP socket under
TLS too) and never raise: a socket already closed or not TCP is left alone.
"""

from __future__ import annotations

import socket
from typing import Final, Protocol

_QUICKACK: Final[int | None] = getattr(socket, "TCP_QUICKACK", None)
_TCP_FAMILIES: Final = (socket.AF_INET, socket.AF_INET6)


class TcpSocket(Protocol):
    """What a transport's ``socket`` extra offers (asyncio, uvloop)."""

    @property
    def family(self) -> int: ...

    def setsockopt(self, level: int, option: int, value: int, /) -> None: ...


class Transport(Protocol):
    def get_extra_info(self, name: str, default: object = None) -> object: ...


def tune(transport: Transport) -> TcpSocket | None:
    """Set ``TCP_NODELAY`` and ``TCP_QUICKACK`` on ``transport``'s TCP socket and
    return the socket for later ``quickack`` calls; None if it has no TCP socket."""
    sock = transport.get_extra_info("socket")
    if sock is None or getattr(sock, "family", None) not in _TCP_FAMILIES:
        return None
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[attr-defined]
    except OSError:
        return None  # closed (reset) already
    quickack(sock)  # type: ignore[arg-type]
    return sock  # type: ignore[return-value]


def quickack(sock: TcpSocket | None) -> None:
    """Acknowledge what was received now and leave delayed-ACK mode (Linux)."""
    if sock is None or _QUICKACK is None:
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
    except OSError:
        pass  # the connection is going away; its reader will see that
