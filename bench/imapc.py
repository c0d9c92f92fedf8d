"""A minimal asyncio IMAP client for the benchmarks (RFC 9051 §2.2, §4.3 literals, RFC 7888 LITERAL+).

It adds as little client-side overhead as it can, so the figures measure the
servers: one command in flight per connection, responses read as raw lines with
literals spliced in, no parsing beyond what a scenario needs.
"""

from __future__ import annotations

import asyncio
import re

_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")


class ImapError(Exception):
    pass


class Imap:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.counter = 0

    @classmethod
    async def connect(cls, port: int, user: str, password: str) -> Imap:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 24)
        client = cls(reader, writer)
        await reader.readline()  # greeting
        await client.command(f'LOGIN "{user}" "{password}"'.encode())
        return client

    async def read_response(self) -> bytes:
        """One response line with any literals it announces spliced in."""
        parts = []
        while True:
            line = await self.reader.readline()
            if not line:
                raise ImapError("connection closed by server")
            parts.append(line)
            match = _LITERAL.search(line)
            if not match:
                return b"".join(parts)
            parts.append(await self.reader.readexactly(int(match.group(1))))

    async def command(self, line: bytes, literal: bytes | None = None) -> list[bytes]:
        """Send ``TAG line`` (with a LITERAL+ literal when given); return the untagged lines."""
        self.counter += 1
        tag = b"b%d" % self.counter
        if literal is None:
            self.writer.write(tag + b" " + line + b"\r\n")
        else:
            self.writer.write(tag + b" " + line + b" {%d+}\r\n" % len(literal) + literal + b"\r\n")
        untagged: list[bytes] = []
        while True:
            response = await self.read_response()
            if response.startswith(tag + b" "):
                if not response[len(tag) + 1:].startswith(b"OK"):
                    raise ImapError(response.decode(errors="replace").strip())
                return untagged
            untagged.append(response)

    async def close(self) -> None:
        try:
            self.writer.write(b"z LOGOUT\r\n")
            await self.writer.drain()
        except OSError:
            pass
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass
