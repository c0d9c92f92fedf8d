"""The floor of an aiosmtpd server (issue 17): how fast can *any* SMTP server built
on aiosmtpd go on this machine, keeping only the one guarantee nobody may drop?

Each accepted message is written to ``<maildir>/tmp``, fsynced, renamed into
``new/`` and the directory fsynced before ``250`` (the file part of what our
server does before its 250; no database row, no content policy, no sender
authentication, no index, no directory look-up: every RCPT is accepted).
``--processes N`` runs N processes on the same port (``SO_REUSEPORT``), uvloop
as our server uses. ``--our-reader`` replaces aiosmtpd's DATA loop (a
``readuntil`` per line) with our server's streaming reader
(``mailserver.smtp.protocol.read_data_into``, 64 KB blocks): the floor of our
own front end rather than of stock aiosmtpd. ``bench/run --floor`` starts it beside the other servers and
measures it with the same ``smtp-source`` runs, so its rate can be set beside
Postfix's in the same run: if even this floor cannot reach a goal, no server on
aiosmtpd can.

    python bench/smtp_floor.py --port P --maildir DIR [--processes 2]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import uvloop
from aiosmtpd.smtp import SMTP, Envelope, Session, syntax

from mailserver.smtp.limits import Spool
from mailserver.smtp.protocol import read_data_into


class MaildirHandler:
    """DATA → tmp/ file, fsync, rename to new/, fsync of new/ → 250."""

    def __init__(self, maildir: Path) -> None:
        self.tmp = maildir / "tmp"
        self.new = maildir / "new"
        self.names = itertools.count()
        self.prefix = f"{os.getpid()}.floor"

    def _write(self, data: bytes) -> None:
        name = f"{next(self.names)}.{self.prefix}"
        path = self.tmp / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(path, self.new / name)
        dir_fd = os.open(self.new, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        data = envelope.original_content or b""
        await asyncio.get_running_loop().run_in_executor(None, self._write, data)
        return "250 2.0.0 OK"


class BlockReaderSMTP(SMTP):
    """aiosmtpd with our DATA reader: dot-unstuffed and limit-checked a block at a time."""

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:  # noqa: N802 - aiosmtpd's command method
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        spool = Spool(None)
        await read_data_into(self._reader, spool, size_limit=self.data_size_limit,
                             line_limit=self.line_length_limit)
        content = await spool.read()
        self.envelope.content = self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push(status)


async def serve(port: int, maildir: Path, our_reader: bool) -> None:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(1024)
    handler = MaildirHandler(maildir)
    kwargs: dict[str, Any] = {"hostname": "floor.bench.invalid", "decode_data": False,
                              "data_size_limit": 64 * 1024 * 1024}
    protocol = BlockReaderSMTP if our_reader else SMTP
    server = await loop.create_server(lambda: protocol(handler, **kwargs), sock=sock)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--maildir", type=Path, required=True)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--our-reader", action="store_true", help="our streaming DATA reader")
    args = parser.parse_args()
    for sub in ("tmp", "new", "cur"):
        (args.maildir / sub).mkdir(parents=True, exist_ok=True)
    children = []
    for _ in range(max(1, args.processes) - 1):
        pid = os.fork()
        if pid == 0:
            uvloop.run(serve(args.port, args.maildir, args.our_reader))
            os._exit(0)
        children.append(pid)
    try:
        uvloop.run(serve(args.port, args.maildir, args.our_reader))
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
