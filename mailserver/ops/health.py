"""``mailserver health``: the container HEALTHCHECK.

Healthy means every configured listener answers with its greeting (SMTP
``220``, RFC 5321 section 4.2; IMAP ``* OK``, RFC 9051 section 7.1.1; the
implicit-TLS ones after a TLS handshake, RFC 8314), the metrics endpoint (when
configured) answers HTTP, and the database answers a query on the mail index.
Wildcard listen addresses are probed on loopback.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from typing import Final

from sqlalchemy.exc import SQLAlchemyError

from mailserver.config import Config, parse_hostport
from storage import probe_database

TIMEOUT: Final = 5.0


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


def _probe_host(host: str) -> str:
    if host in ("", "0.0.0.0"):  # noqa: S104 - a wildcard is probed on loopback
        return "127.0.0.1"
    if host == "::":
        return "::1"
    return host


def listeners(config: Config) -> list[tuple[str, str, bool, bytes]]:
    """(name, host:port, implicit TLS, expected greeting prefix) of every listener."""
    out = [
        ("smtp", config.smtp.listen, False, b"220"),
        ("submission", config.submission.listen, False, b"220"),
        ("imap", config.imap.listen, False, b"* OK"),
    ]
    if config.submission.tls_listen:
        out.append(("submissions", config.submission.tls_listen, True, b"220"))
    if config.imap.tls_listen:
        out.append(("imaps", config.imap.tls_listen, True, b"* OK"))
    if config.metrics.listen:
        out.append(("metrics", config.metrics.listen, False, b"HTTP/1."))
    return out


async def _listener(name: str, where: str, tls: bool, greeting: bytes) -> Check:
    host, port = parse_hostport(where)
    context: ssl.SSLContext | None = None
    if tls:
        # Health is about answering, not about the certificate (often self-signed).
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        async with asyncio.timeout(TIMEOUT):
            reader, writer = await asyncio.open_connection(_probe_host(host), port, ssl=context)
            try:
                if name == "metrics":
                    writer.write(b"GET /healthz HTTP/1.0\r\n\r\n")
                line = await reader.readline()
                if name == "imap" or name == "imaps":
                    writer.write(b"h LOGOUT\r\n")
                elif name != "metrics":
                    writer.write(b"QUIT\r\n")
                await writer.drain()
            finally:
                writer.close()
                try:
                    await writer.wait_closed()
                except (OSError, ssl.SSLError):
                    pass
    except (OSError, ssl.SSLError, TimeoutError) as exc:
        return Check(name, False, f"{where}: {exc or type(exc).__name__}")
    if not line.startswith(greeting):
        return Check(name, False, f"{where}: unexpected greeting {line[:40]!r}")
    return Check(name, True, where)


async def _database(config: Config) -> Check:
    try:
        async with asyncio.timeout(TIMEOUT):
            where = await probe_database(config.storage_url)
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0] if str(exc) else type(exc).__name__
        return Check("database", False, reason[:200])
    return Check("database", True, where)


async def check_health(config: Config) -> list[Check]:
    checks = [_listener(*spec) for spec in listeners(config)]
    return list(await asyncio.gather(*checks, _database(config)))
