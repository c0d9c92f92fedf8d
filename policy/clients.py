"""Optional scanner daemons, clients only (never required):

* ClamAV ``clamd`` ``INSTREAM`` (clamd(8), "zINSTREAM\\0" then chunks of a
  4-octet network-order length and data, a zero length to end; the answer is
  ``stream: OK`` or ``stream: <name> FOUND``);
* SpamAssassin ``spamd`` SPAMC/1.5 ``CHECK`` (answer header
  ``Spam: True ; 15.0 / 5.0``);
* rspamd ``POST /checkv2`` (JSON with ``score`` and ``action``). The rspamd
  client is not exercised by the tests against a real rspamd; a fake on
  loopback covers its parsing.

Addresses are ``host:port``, or a path for a unix socket (clamd only).
"""

from __future__ import annotations

import asyncio
import json
import re
import struct
from dataclasses import dataclass
from typing import Final

_CHUNK: Final = 64 * 1024


class ScannerError(Exception):
    """The daemon could not be asked or answered nonsense (a temporary failure)."""


async def _open(address: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if address.startswith("/"):
        return await asyncio.open_unix_connection(address)
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ScannerError(f"bad scanner address {address!r}")
    return await asyncio.open_connection(host.strip("[]"), int(port))


async def clamd_scan(address: str, data: bytes, timeout: float) -> str | None:
    """Signature name if clamd finds one, None if clean; ScannerError otherwise."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await _open(address)
            try:
                writer.write(b"zINSTREAM\0")
                for start in range(0, len(data), _CHUNK):
                    chunk = data[start : start + _CHUNK]
                    writer.write(struct.pack("!L", len(chunk)) + chunk)
                    await writer.drain()
                writer.write(struct.pack("!L", 0))
                await writer.drain()
                answer = (await reader.read(4096)).rstrip(b"\0\r\n").decode("utf-8", "replace")
            finally:
                writer.close()
    except (OSError, TimeoutError) as exc:
        raise ScannerError(f"clamd {address}: {exc.__class__.__name__}") from None
    if answer.endswith(" FOUND"):
        return answer.removeprefix("stream: ").removesuffix(" FOUND")
    if answer.endswith(" OK"):
        return None
    raise ScannerError(f"clamd {address}: unexpected answer {answer[:100]!r}")


@dataclass(frozen=True, slots=True)
class SpamResult:
    score: float
    is_spam: bool


_SPAMD_LINE: Final = re.compile(r"Spam:\s*(True|False|Yes|No)\s*;\s*(-?[\d.]+)\s*/\s*(-?[\d.]+)", re.I)


async def spamd_check(address: str, data: bytes, timeout: float) -> SpamResult:
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await _open(address)
            try:
                writer.write(b"CHECK SPAMC/1.5\r\nContent-length: %d\r\n\r\n" % len(data) + data)
                await writer.drain()
                if writer.can_write_eof():
                    writer.write_eof()
                answer = (await reader.read(65536)).decode("utf-8", "replace")
            finally:
                writer.close()
    except (OSError, TimeoutError) as exc:
        raise ScannerError(f"spamd {address}: {exc.__class__.__name__}") from None
    match = _SPAMD_LINE.search(answer)
    if not answer.startswith("SPAMD/") or match is None:
        raise ScannerError(f"spamd {address}: unexpected answer {answer[:100]!r}")
    return SpamResult(float(match.group(2)), match.group(1).lower() in ("true", "yes"))


async def rspamd_check(address: str, data: bytes, timeout: float) -> SpamResult:
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await _open(address)
            try:
                writer.write(b"POST /checkv2 HTTP/1.0\r\nContent-Length: %d\r\n\r\n" % len(data) + data)
                await writer.drain()
                answer = await reader.read()
            finally:
                writer.close()
    except (OSError, TimeoutError) as exc:
        raise ScannerError(f"rspamd {address}: {exc.__class__.__name__}") from None
    head, _, body = answer.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/") or b" 200 " not in head.split(b"\r\n", 1)[0] + b" ":
        raise ScannerError(f"rspamd {address}: {head[:60]!r}")
    try:
        result = json.loads(body)
        score = float(result["score"])
        action = str(result.get("action", ""))
    except (ValueError, KeyError, TypeError) as exc:
        raise ScannerError(f"rspamd {address}: bad JSON ({exc})") from None
    return SpamResult(score, action in ("reject", "add header", "rewrite subject"))
