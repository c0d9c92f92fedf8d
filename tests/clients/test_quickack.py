"""Clients that write one command in several pieces are acknowledged at once (issue 17).

``imaplib`` sends an APPEND literal and its closing CRLF in two writes, with
Nagle's algorithm on: the CRLF leaves only when our side has acknowledged the
literal. Linux delays that ACK (40 ms and more) on a connection it sees as
interactive, so each APPEND used to wait for the delayed-ACK timer. The same
holds for an SMTP client that writes the message and the final ``.CRLF``
apart. The fix (``mailserver/netopt.py``) re-arms ``TCP_QUICKACK`` whenever a
read leaves a command incomplete and after an IMAP continuation.

No timing here (bench/ measures it): each test stops the real client just
before the write Nagle would hold, waits until our server has read everything
sent so far, and asks the kernel whether the server's socket is still in
delayed-ACK ("ping-pong") mode - ``getsockopt(TCP_QUICKACK)`` is 0 exactly
then. Before the fix it was, after every continuation.
"""

from __future__ import annotations

import array
import asyncio
import fcntl
import imaplib
import os
import smtplib
import socket
import ssl
import struct
import termios
from collections.abc import Callable
from typing import Any

import pytest

from mailserver.imap.server import ImapService
from tests.conftest import RunningServer

pytestmark = pytest.mark.skipif(not hasattr(socket, "TCP_QUICKACK"), reason="Linux TCP_QUICKACK")

ANNV = "annv@dongnai.gov.vn"
PASSWORD = "S3cret-pass-word"
APPENDS = 5
MESSAGE = (
    b"From: Tran Van A <vana@example.com>\r\nTo: annv@dongnai.gov.vn\r\n"
    b"Subject: =?utf-8?b?Q8O0bmcgdsSDbg==?=\r\n\r\n" + b"Noi dung cong van.\r\n" * 150
)


def delayed_ack_mode(sock: Any) -> bool:
    """True while Linux delays the ACKs of this socket (``inet_csk_in_pingpong_mode``)."""
    return not sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK)


def unverified() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class _Watched:
    """Mixin for ``imaplib.IMAP4``: counts the octets written and, before the CRLF
    that ends a literal (the write Nagle holds), runs ``before_crlf(sent)``."""

    before_crlf: Callable[[int], None]
    sent = 0

    def send(self, data: Any) -> None:
        if data == b"\r\n":
            self.before_crlf(self.sent)
        super().send(data)  # type: ignore[misc]
        self.sent += len(data)


class WatchedIMAP4(_Watched, imaplib.IMAP4):
    pass


class WatchedIMAP4_SSL(_Watched, imaplib.IMAP4_SSL):  # noqa: N801 - imaplib's name
    pass


def imap_service(server: RunningServer) -> ImapService:
    return next(s for s in server.app.services if isinstance(s, ImapService))


@pytest.mark.parametrize("mode", ["plain", "starttls", "imaps"])
async def test_imaplib_append_literal_acknowledged_at_once(server: RunningServer, mode: str) -> None:
    await server.add_account(ANNV, PASSWORD)
    service = imap_service(server)
    loop = asyncio.get_running_loop()
    seen: list[tuple[bool, bool]] = []

    async def server_state(sent: int) -> tuple[bool, bool]:
        """Once the server has read all ``sent`` octets: (delayed-ACK mode, NODELAY)."""
        (conn,) = service.connections.values()
        async with asyncio.timeout(10):
            while conn.received < sent:
                await asyncio.sleep(0.001)
        assert conn.sock is not None
        nodelay = bool(conn.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))  # type: ignore[attr-defined]
        return delayed_ack_mode(conn.sock), nodelay

    def before_crlf(sent: int) -> None:
        seen.append(asyncio.run_coroutine_threadsafe(server_state(sent), loop).result(15))

    def run() -> list[str]:
        m: imaplib.IMAP4
        if mode == "imaps":
            m = WatchedIMAP4_SSL("127.0.0.1", server.port("imaps"), ssl_context=unverified())
        else:
            m = WatchedIMAP4("127.0.0.1", server.port("imap"))
            if mode == "starttls":
                assert m.starttls(unverified())[0] == "OK"
        assert isinstance(m, _Watched)
        m.before_crlf = before_crlf
        assert m.login(ANNV, PASSWORD)[0] == "OK"
        for i in range(APPENDS):
            date = imaplib.Time2Internaldate(1_700_000_000 + 3600 * i)
            typ, data = m.append("INBOX", r"(\Seen \Flagged)", date, MESSAGE)
            assert typ == "OK", data
            assert b"APPENDUID" in data[0]
        assert m.select("INBOX", readonly=True)[0] == "OK"
        typ, lines = m.fetch("1:*", "(FLAGS INTERNALDATE RFC822.SIZE)")
        m.logout()
        return [line.decode() for line in lines if isinstance(line, bytes)]

    fetched = await asyncio.to_thread(run)
    assert len(fetched) == APPENDS
    assert all("\\Seen" in f and "\\Flagged" in f and f"RFC822.SIZE {len(MESSAGE)}" in f for f in fetched)
    assert "14-Nov-2023" in fetched[0]
    assert len(seen) == APPENDS  # one literal per APPEND
    assert all(nodelay for _, nodelay in seen)
    # The heart of it: while the client waits for our ACK of the literal, the
    # server's socket must not be delaying that ACK.
    assert [delayed for delayed, _ in seen] == [False] * APPENDS


def _tcp_bytes_received(sock: socket.socket) -> int:
    """``tcpi_bytes_received`` of struct tcp_info (linux/tcp.h, offset 128)."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    return int(struct.unpack_from("Q", info, 128)[0])


def _unread(sock: socket.socket) -> int:
    buf = array.array("i", [0])
    fcntl.ioctl(sock.fileno(), termios.FIONREAD, buf)
    return buf[0]


def server_side(client: socket.socket) -> socket.socket:
    """The server's end of ``client``'s connection (this process serves it), as a
    duplicate descriptor of the very same kernel socket."""
    want = (client.getpeername(), client.getsockname())
    for name in os.listdir("/proc/self/fd"):
        try:
            fd = os.dup(int(name))
        except OSError:
            continue  # the directory's own descriptor, closed meanwhile
        try:
            sock = socket.socket(fileno=fd)
        except OSError:
            os.close(fd)  # not a socket
            continue
        try:
            if sock.type == socket.SOCK_STREAM and (sock.getsockname(), sock.getpeername()) == want:
                return sock
        except OSError:
            pass
        sock.close()
    raise AssertionError("no server socket for this connection")


class SplitEndSMTP(smtplib.SMTP):
    """smtplib, but writing the mail data and its final ``.CRLF`` apart (as MTAs
    that flush the message before the dot do); ``before_end(sent)`` runs between."""

    before_end: Callable[[int], None]
    sent = 0

    def send(self, s: Any) -> None:
        data = s.encode("ascii") if isinstance(s, str) else bytes(s)
        if data.endswith(b"\r\n.\r\n") and len(data) > 5:
            super().send(data[:-3])
            self.sent += len(data) - 3
            self.before_end(self.sent)
            data = data[-3:]
        super().send(data)
        self.sent += len(data)


async def test_smtp_data_end_acknowledged_at_once(server: RunningServer) -> None:
    await server.add_account(ANNV, PASSWORD)
    loop = asyncio.get_running_loop()
    seen: list[bool] = []
    peer: list[socket.socket] = []

    async def server_state(sent: int) -> bool:
        """Once the server has read all ``sent`` octets: is its socket delaying ACKs?
        (The transport reads the kernel's queue and hands the data to the protocol
        in one callback, so an empty queue means the protocol has seen it.)"""
        sock = peer[0]
        async with asyncio.timeout(10):
            while _tcp_bytes_received(sock) < sent or _unread(sock):
                await asyncio.sleep(0.001)
        return delayed_ack_mode(sock)

    def before_end(sent: int) -> None:
        seen.append(asyncio.run_coroutine_threadsafe(server_state(sent), loop).result(15))

    def run() -> None:
        client = SplitEndSMTP("127.0.0.1", server.port("smtp"))
        client.before_end = before_end
        assert client.sock is not None
        peer.append(server_side(client.sock))
        for _ in range(3):
            assert client.sendmail("vana@example.com", [ANNV], MESSAGE) == {}
        client.quit()

    try:
        await asyncio.to_thread(run)
    finally:
        for sock in peer:
            sock.close()
    assert seen == [False, False, False]
    account = await server.app.store.get_account(ANNV)
    assert account is not None
    inbox = await server.app.store.get_folder(account.id, "INBOX")
    assert len(await server.app.store.list_messages(account.id, inbox.id)) == 3
