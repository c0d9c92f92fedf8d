"""IMAP at scale against our server alone (peers come with bench/run):

1. fill an INBOX with N messages (store.deliver, group-committed),
2. time SELECT and ``UID FETCH 1:* (FLAGS)`` with imaplib,
3. open C connections that LOGIN, SELECT and IDLE; report the server's RSS
   (the server runs in a child process so its RSS is its own).

    python bench/imap_scale.py [--messages 100000] [--idle 1000]

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import imaplib
import json
import multiprocessing
import os
import resource
import socket
import tempfile
import time
from pathlib import Path

from mailserver.app import App
from mailserver.auth import hash_password
from mailserver.config import Config, ImapSettings, ServerSettings, SmtpSettings, SubmissionSettings
from mailserver.managesieve.settings import ManageSieveSettings
from mailserver.web.settings import WebSettings

USER = "bench@dongnai.gov.vn"
PASSWORD = "Bench-password-2026"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def config(data_dir: str, imap_port: int) -> Config:
    return Config(
        server=ServerSettings(data_dir=data_dir, log_level="WARNING"),
        smtp=SmtpSettings(listen="127.0.0.1:0"),
        submission=SubmissionSettings(listen="127.0.0.1:0", tls_listen="127.0.0.1:0"),
        web=WebSettings(listen="127.0.0.1:0"),
        managesieve=ManageSieveSettings(enabled=False),
        # --idle N sessions of one account from loopback: above the per-address and
        # per-account defaults on purpose.
        imap=ImapSettings(listen=f"127.0.0.1:{imap_port}", tls_listen="127.0.0.1:0",
                          max_connections=100_000, max_connections_per_ip=100_000,
                          max_connections_per_user=100_000),
    )


async def fill(data_dir: str, messages: int) -> float:
    async with App(config(data_dir, 0)) as app:
        account = await app.store.create_account(
            USER, "Bench", hash_password(PASSWORD), must_change_password=False
        )
        start = time.perf_counter()
        batch = 200
        for first in range(0, messages, batch):
            await asyncio.gather(*(
                app.store.deliver([account.id], (
                    f"From: a{i}@example.org\r\nTo: {USER}\r\nSubject: Thư số {i}\r\n"
                    f"Message-ID: <{i}@bench>\r\nDate: Mon, 4 Mar 2024 10:00:00 +0700\r\n\r\n"
                    + "Nội dung thư.\r\n" * 20
                ).encode())
                for i in range(first, min(first + batch, messages))
            ))
        return time.perf_counter() - start


def serve(data_dir: str, imap_port: int) -> None:
    async def run() -> None:
        async with App(config(data_dir, imap_port)):
            await asyncio.Event().wait()

    asyncio.run(run())


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def idle_clients(port: int, count: int) -> list[asyncio.StreamWriter]:
    async def one() -> asyncio.StreamWriter:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await reader.readline()
        for tag, cmd in ((b"a", f"LOGIN {USER} {PASSWORD}".encode()), (b"b", b"SELECT INBOX")):
            writer.write(tag + b" " + cmd + b"\r\n")
            while not (await reader.readline()).startswith(tag + b" "):
                pass
        writer.write(b"c IDLE\r\n")
        await reader.readline()
        return writer

    sem = asyncio.Semaphore(50)

    async def limited() -> asyncio.StreamWriter:
        async with sem:
            return await one()

    return await asyncio.gather(*(limited() for _ in range(count)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--idle", type=int, default=1000)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.idle + 256)), hard))
    with tempfile.TemporaryDirectory() as data_dir:
        fill_s = asyncio.run(fill(data_dir, args.messages))
        port = free_port()
        proc = multiprocessing.get_context("spawn").Process(target=serve, args=(data_dir, port))
        proc.start()
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), 1).close()
                    break
                except OSError:
                    time.sleep(0.2)
            rss_start = rss_kib(proc.pid or 0)
            with imaplib.IMAP4("127.0.0.1", port) as m:
                m.login(USER, PASSWORD)
                t0 = time.perf_counter()
                typ, data = m.select("INBOX")
                select_s = time.perf_counter() - t0
                assert typ == "OK" and int(data[0]) == args.messages
                t0 = time.perf_counter()
                typ, rows = m.uid("FETCH", "1:*", "(FLAGS)")
                fetch_s = time.perf_counter() - t0
                assert typ == "OK" and len(rows) == args.messages
            rss_after_fetch = rss_kib(proc.pid or 0)

            async def idle_phase() -> int:
                writers = await idle_clients(port, args.idle)
                await asyncio.sleep(1)
                rss = rss_kib(proc.pid or 0)
                for w in writers:
                    w.close()
                return rss

            rss_idle = asyncio.run(idle_phase())
        finally:
            proc.terminate()
            proc.join(10)
    print(json.dumps({
        "scenario": "imap_scale", "messages": args.messages, "fill_seconds": round(fill_s, 1),
        "select_seconds": round(select_s, 3), "uid_fetch_flags_seconds": round(fetch_s, 3),
        "idle_connections": args.idle, "server_rss_mib_start": round(rss_start / 1024, 1),
        "server_rss_mib_after_fetch": round(rss_after_fetch / 1024, 1),
        "server_rss_mib_with_idle": round(rss_idle / 1024, 1), "pid": os.getpid(),
    }))


if __name__ == "__main__":
    main()
