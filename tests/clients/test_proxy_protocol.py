"""PROXY protocol (HAProxy v1/v2) on the listeners: the client named by a trusted
balancer drives Received, relay decisions and the login history; untrusted or
malformed headers are refused. Driven by smtplib/imaplib over real sockets, and
through a real HAProxy when it is installed."""

from __future__ import annotations

import asyncio
import imaplib
import ipaddress
import shutil
import smtplib
import socket
import ssl
import struct
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from mailserver.app import App
from mailserver.auth import hash_password
from storage.credentials import credentials_for
from tests.conftest import end_process, eventually, make_config

PASSWORD = "S3cret-pass-word"
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def v2_header(
    src: str, src_port: int, dst: str = "127.0.0.1", dst_port: int = 25, *, local: bool = False
) -> bytes:
    """A PROXY v2 header (haproxy doc/proxy-protocol.txt section 2.2), TCP over IPv4."""
    if local:
        return V2_SIGNATURE + bytes([0x20, 0x00]) + struct.pack("!H", 0)
    body = (
        ipaddress.IPv4Address(src).packed
        + ipaddress.IPv4Address(dst).packed
        + struct.pack("!HH", src_port, dst_port)
    )
    return V2_SIGNATURE + bytes([0x21, 0x11]) + struct.pack("!H", len(body)) + body


def v1_header(src: str, src_port: int) -> bytes:
    return f"PROXY TCP4 {src} 127.0.0.1 {src_port} 25\r\n".encode()


class ProxiedSMTP(smtplib.SMTP):
    """smtplib that opens each connection with a PROXY header, as a balancer does."""

    def __init__(self, header: bytes, *args: Any, **kwargs: Any) -> None:
        self._header = header
        super().__init__(*args, **kwargs)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = super()._get_socket(host, port, timeout)
        sock.sendall(self._header)
        return sock


class ProxiedIMAP(imaplib.IMAP4):
    def __init__(self, header: bytes, host: str, port: int) -> None:
        self._header = header
        super().__init__(host, port, timeout=10)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        sock = super()._create_socket(timeout)
        sock.sendall(self._header)
        return sock


@pytest.fixture
async def proxied(tmp_path: Path) -> AsyncIterator[App]:
    base = make_config(tmp_path / "data")
    config = replace(
        base,
        server=replace(base.server, trusted_proxies=["127.0.0.1/32"]),
        smtp=replace(base.smtp, proxy_protocol=True),
        submission=replace(base.submission, proxy_protocol=True),
        imap=replace(base.imap, proxy_protocol=True, allow_plaintext_login=True),
    )
    async with App(config) as app:
        await app.store.create_account(
            "an.nv@dongnai.gov.vn", "Nguyễn Văn An", hash_password(PASSWORD), must_change_password=False
        )
        yield app


def _message(sender: str, to: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, "Qua bộ cân bằng tải"
    msg.set_content("Nội dung thử.\n")
    return msg


def _send(port: int, header: bytes, sender: str, to: str) -> None:
    with ProxiedSMTP(header, "127.0.0.1", port, timeout=10) as client:
        client.send_message(_message(sender, to))


def _inbox_received(port: int, header: bytes) -> list[bytes]:
    client = ProxiedIMAP(header, "127.0.0.1", port)
    try:
        client.login("an.nv@dongnai.gov.vn", PASSWORD)
        client.select("INBOX")
        _, data = client.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (RECEIVED)])")
        return [part[1] for part in data if isinstance(part, tuple)]
    finally:
        client.logout()


async def test_mx_and_imap_see_the_client_the_v2_header_names(proxied: App) -> None:
    smtp_port, imap_port = proxied.addresses["smtp"][1], proxied.addresses["imap"][1]
    await asyncio.to_thread(
        _send, smtp_port, v2_header("203.0.113.7", 40000), "ban@example.org", "an.nv@dongnai.gov.vn"
    )
    received = await asyncio.to_thread(_inbox_received, imap_port, v2_header("198.51.100.23", 51000))
    assert len(received) == 1
    assert b"203.0.113.7" in received[0]
    assert b"([203.0.113.7])" in received[0]  # the client, not the balancer
    # The IMAP login is recorded with the client the balancer named, not the balancer.
    account = await proxied.store.get_account("an.nv@dongnai.gov.vn")
    assert account is not None
    logins = credentials_for(proxied.store)

    async def recorded() -> bool:
        return any(event.remote_ip == "198.51.100.23" for event in await logins.logins(account.id))

    await eventually(recorded, "an IMAP login from 198.51.100.23 in the login history")


async def test_v1_header_and_local_command_are_accepted(proxied: App) -> None:
    smtp_port = proxied.addresses["smtp"][1]
    await asyncio.to_thread(
        _send, smtp_port, v1_header("192.0.2.44", 1234), "x@example.org", "an.nv@dongnai.gov.vn"
    )
    # LOCAL (the balancer's own health check): the balancer's address stands.
    await asyncio.to_thread(
        _send, smtp_port, v2_header("", 0, local=True), "y@example.org", "an.nv@dongnai.gov.vn"
    )
    received = await asyncio.to_thread(
        _inbox_received, proxied.addresses["imap"][1], v2_header("192.0.2.1", 9)
    )
    assert any(b"192.0.2.44" in r for r in received)
    assert any(b"127.0.0.1" in r for r in received)


async def test_relay_decision_uses_the_named_client(tmp_path: Path) -> None:
    """The balancer (127.0.0.1) is in relay_networks; a client behind it is not, so it may not relay."""
    base = make_config(tmp_path / "data")
    config = replace(
        base,
        server=replace(base.server, trusted_proxies=["127.0.0.0/8"]),
        smtp=replace(base.smtp, proxy_protocol=True, relay_networks=["127.0.0.1/32"]),
    )
    async with App(config) as app:
        port = app.addresses["smtp"][1]

        def relay(header: bytes) -> tuple[int, bytes]:
            with ProxiedSMTP(header, "127.0.0.1", port, timeout=10) as client:
                client.ehlo("client.example.org")
                code, text = client.mail("someone@example.org")
                assert code == 250, text
                return client.rcpt("outside@example.com")

        code, text = await asyncio.to_thread(relay, v2_header("203.0.113.9", 5555))
        assert code == 554 or code == 550, text
        assert b"5.7.1" in text
        code, _ = await asyncio.to_thread(relay, v2_header("127.0.0.1", 5556))
        assert code == 250


def _refused(port: int, payload: bytes, source: str = "127.0.0.1") -> bytes:
    """Connect (from ``source``), send ``payload``, return what the server says before closing."""
    with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0)) as sock:
        if payload:
            sock.sendall(payload)
        chunks = b""
        while True:
            data = sock.recv(4096)
            if not data:
                return chunks
            chunks += data


async def test_untrusted_peer_and_bad_headers_are_refused(tmp_path: Path) -> None:
    base = make_config(tmp_path / "data")
    config = replace(
        base,
        server=replace(base.server, trusted_proxies=["127.0.0.1/32"]),
        smtp=replace(base.smtp, proxy_protocol=True),
        imap=replace(base.imap, proxy_protocol=True),
    )
    async with App(config) as app:
        smtp_port, imap_port = app.addresses["smtp"][1], app.addresses["imap"][1]
        # Not a trusted balancer: closed before any greeting, whatever it claims.
        refused = await asyncio.to_thread(_refused, smtp_port, v2_header("10.0.0.1", 1), "127.0.0.2")
        assert refused.startswith(b"421 4.7.0 "), refused
        # A direct client (no header) or garbage: a clear refusal, then the close; no greeting.
        refused = await asyncio.to_thread(_refused, imap_port, b"a001 CAPABILITY\r\n")
        assert refused.startswith(b"* BYE ") and b"PROXY" in refused, refused
        for garbage in (b"PROXY TCP4 not-an-ip 127.0.0.1 1 2\r\n", b"PROXY " + b"x" * 200, b"EHLO x\r\n"):
            refused = await asyncio.to_thread(_refused, smtp_port, garbage)
            assert refused.startswith(b"421 4.7.0 ") and b"220" not in refused, refused
        # The listener keeps serving afterwards.
        code, _ = await asyncio.to_thread(_ehlo_code, smtp_port, v2_header("192.0.2.8", 8))
        assert code == 250


def _ehlo_code(port: int, header: bytes) -> tuple[int, bytes]:
    with ProxiedSMTP(header, "127.0.0.1", port, timeout=10) as client:
        return client.ehlo("client.example.org")


async def test_implicit_tls_submission_after_the_header(proxied: App) -> None:
    """Port 465 behind a balancer in TCP mode: header in clear, then the TLS handshake."""
    port = proxied.addresses["submissions"][1]

    def submit() -> None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(v2_header("198.51.100.99", 4242))
            with context.wrap_socket(raw) as tls:
                assert tls.recv(1024).startswith(b"220")
                tls.sendall(b"EHLO client.example.org\r\n")
                assert b"250" in tls.recv(4096)
                tls.sendall(b"QUIT\r\n")

    await asyncio.to_thread(submit)


# --- through a real HAProxy --------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def haproxy(tmp_path: Path) -> Iterator[Callable[[int, int], None]]:
    binary = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
    if binary is None:
        pytest.skip("haproxy is not installed")
    processes: list[subprocess.Popen[bytes]] = []

    def start(front: int, back: int) -> None:
        cfg = tmp_path / f"haproxy-{front}.cfg"
        cfg.write_text(
            "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n"
            f"frontend f\n  bind 127.0.0.1:{front}\n  default_backend b\n"
            f"backend b\n  server s1 127.0.0.1:{back} send-proxy-v2\n"
        )
        check = subprocess.run([binary, "-c", "-f", str(cfg)], capture_output=True, check=False)
        assert check.returncode == 0, check.stderr
        processes.append(
            subprocess.Popen(
                [binary, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", front), timeout=1).close()
                return
            except OSError:
                import time

                time.sleep(0.05)  # noqa: ASYNC251 - waiting for an outside process to listen
        raise AssertionError("haproxy did not start listening")

    yield start
    for process in processes:
        process.terminate()
        process.wait(10)


async def test_through_haproxy_the_client_address_reaches_received(
    proxied: App, haproxy: Callable[[int, int], None]
) -> None:
    front = _free_port()
    await asyncio.to_thread(haproxy, front, proxied.addresses["smtp"][1])

    def send_from_127_0_0_9() -> None:
        with smtplib.SMTP("127.0.0.1", front, timeout=10, source_address=("127.0.0.9", 0)) as client:
            client.send_message(_message("ban@example.org", "an.nv@dongnai.gov.vn"))

    await asyncio.to_thread(send_from_127_0_0_9)
    received = await asyncio.to_thread(
        _inbox_received, proxied.addresses["imap"][1], v2_header("192.0.2.1", 9)
    )
    assert len(received) == 1
    assert b"127.0.0.9" in received[0], received[0]


async def test_portal_behind_the_balancer(tmp_path: Path) -> None:
    base = make_config(tmp_path / "data")
    config = replace(
        base,
        server=replace(base.server, trusted_proxies=["127.0.0.1/32"]),
        web=replace(base.web, proxy_protocol=True),
    )
    async with App(config) as app:
        port = app.addresses["web"][1]

        def get(header: bytes) -> bytes:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(header + b"GET /directory HTTP/1.1\r\nHost: mail\r\nConnection: close\r\n\r\n")
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
                return data

        assert (await asyncio.to_thread(get, v2_header("203.0.113.50", 443))).startswith(b"HTTP/1.1 200")
        # Without the header the portal does not answer.
        assert not (await asyncio.to_thread(get, b"")).startswith(b"HTTP/1.1")


def test_serve_on_uvloop_behind_a_proxy(tmp_path: Path) -> None:
    """`mailserver serve` (uvloop): MX and IMAPS (TLS after the header) name the client."""
    import sys
    import tomllib

    config = tmp_path / "mailserver.toml"
    ports = {name: _free_port() for name in ("smtp", "sub", "subs", "imap", "imaps", "web")}
    config.write_text(
        f'[server]\ndata_dir = "{tmp_path / "data"}"\ntrusted_proxies = ["127.0.0.1/32"]\n'
        f'[smtp]\nlisten = "127.0.0.1:{ports["smtp"]}"\nproxy_protocol = true\nprocesses = 1\n'
        f'[submission]\nlisten = "127.0.0.1:{ports["sub"]}"\ntls_listen = "127.0.0.1:{ports["subs"]}"\n'
        f'[imap]\nlisten = "127.0.0.1:{ports["imap"]}"\ntls_listen = "127.0.0.1:{ports["imaps"]}"\n'
        "proxy_protocol = true\n"
        f'[web]\nlisten = "127.0.0.1:{ports["web"]}"\n'
        "[managesieve]\nenabled = false\n"
    )
    assert tomllib.loads(config.read_text())["imap"]["proxy_protocol"] is True
    base = [sys.executable, "-m", "mailserver", "--config", str(config)]
    added = subprocess.run([*base, "account", "add", "an.nv@dongnai.gov.vn", "--password-stdin",
                            "--no-change-required"], input=PASSWORD + "\n", capture_output=True, text=True,
                           timeout=120, check=False)
    assert added.returncode == 0, added.stderr
    proc = subprocess.Popen([*base, "serve"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("mailserver ready")
        _send(ports["smtp"], v2_header("203.0.113.77", 2525), "ban@example.org", "an.nv@dongnai.gov.vn")
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", ports["imaps"]), timeout=30) as raw:
            raw.sendall(v2_header("198.51.100.77", 993))
            with context.wrap_socket(raw) as tls:
                reader = tls.makefile("rb")
                assert reader.readline().startswith(b"* OK")
                tls.sendall(b'a LOGIN an.nv@dongnai.gov.vn "' + PASSWORD.encode() + b'"\r\n')
                assert reader.readline().startswith(b"a OK")
                tls.sendall(
                    b"b SELECT INBOX\r\nc FETCH 1 (BODY.PEEK[HEADER.FIELDS (RECEIVED)])\r\nd LOGOUT\r\n"
                )
                seen = b""
                while not seen.endswith(b"d OK Logout completed.\r\n") and (line := reader.readline()):
                    seen += line
                assert b"([203.0.113.77])" in seen, seen
    finally:
        end_process(proc, 30, terminate=True)
