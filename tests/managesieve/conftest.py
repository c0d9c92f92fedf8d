"""A tiny ManageSieve client over a real socket, for transcript tests: it reads
whole responses (lines up to the final OK/NO/BYE, server literals included)."""

from __future__ import annotations

import base64
import re
import socket
import ssl
from typing import Final

LITERAL: Final = re.compile(rb"\{(\d+)\}\r\n$")


class SieveClient:
    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock: socket.socket | ssl.SSLSocket = socket.create_connection(("127.0.0.1", port), timeout)
        self.file = self.sock.makefile("rb")

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def read_line(self) -> bytes:
        """One response line, with a trailing server literal folded in."""
        line = self.file.readline()
        if not line:
            raise ConnectionError("closed")
        match = LITERAL.search(line)
        if match:
            body = self.file.read(int(match.group(1)))
            line = line[: match.start()] + b"{" + match.group(1) + b"}\r\n" + body + self.file.readline()
        return line

    def response(self) -> list[bytes]:
        """Lines up to and including the final OK / NO / BYE."""
        lines = []
        while True:
            line = self.read_line()
            lines.append(line)
            if re.match(rb"(OK|NO|BYE)\b", line):
                return lines

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def command(self, data: bytes) -> list[bytes]:
        self.send(data)
        return self.response()

    def starttls(self) -> list[bytes]:
        assert self.command(b"STARTTLS\r\n")[-1].startswith(b"OK")
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        self.file.close()
        self.sock = context.wrap_socket(self.sock)
        self.file = self.sock.makefile("rb")
        return self.response()

    def login(self, user: str, password: str, authzid: str = "") -> list[bytes]:
        token = base64.b64encode(f"{authzid}\0{user}\0{password}".encode()).decode()
        return self.command(f'AUTHENTICATE "PLAIN" "{token}"\r\n'.encode())


def literal(text: str) -> bytes:
    data = text.encode("utf-8")
    return b"{%d+}\r\n" % len(data) + data
