"""SMTP ingest benchmark: N messages over C parallel sessions into our server,
timed until every message is durably stored (the 250 after DATA implies it).

    python bench/smtp_ingest.py [--messages 2000] [--sessions 20] [--size 4096] [--postgres]

Prints one JSON line. Peer servers (Postfix + Dovecot) are measured beside this
in the benchmarks issue; until then the figure is ours alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time

import aiosmtplib

from mailserver.app import App
from mailserver.auth import hash_password
from mailserver.config import Config, ImapSettings, ServerSettings, SmtpSettings, SubmissionSettings
from storage.settings import StorageSettings

RCPT = "bench@dongnai.gov.vn"


async def run(messages: int, sessions: int, size: int, url: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        config = Config(
            server=ServerSettings(data_dir=tmp, log_level="WARNING"),
            storage=StorageSettings(url=url),
            smtp=SmtpSettings(listen="127.0.0.1:0"),
            submission=SubmissionSettings(listen="127.0.0.1:0", tls_listen="127.0.0.1:0"),
            imap=ImapSettings(listen="127.0.0.1:0", tls_listen="127.0.0.1:0"),
        )
        async with App(config) as app:
            account = await app.store.create_account(RCPT, "Bench", hash_password("x" * 12))
            port = app.addresses["smtp"][1]
            body = b"Subject: bench\r\n\r\n" + (b"x" * 76 + b"\r\n") * (size // 78)
            queue: asyncio.Queue[int] = asyncio.Queue()
            for i in range(messages):
                queue.put_nowait(i)

            async def worker() -> None:
                client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
                await client.connect()
                while True:
                    try:
                        queue.get_nowait()
                    except asyncio.QueueEmpty:
                        break
                    await client.sendmail("bench@example.org", [RCPT], body)
                await client.quit()

            start = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(sessions)))
            elapsed = time.perf_counter() - start
            inbox = await app.store.get_folder(account.id, "INBOX")
            stored = len(await app.store.list_messages(account.id, inbox.id))
            assert stored == messages, (stored, messages)
            return {
                "scenario": "smtp_ingest",
                "backend": url.split(":", 1)[0] if url else "sqlite",
                "messages": messages,
                "sessions": sessions,
                "size": size,
                "seconds": round(elapsed, 3),
                "messages_per_second": round(messages / elapsed, 1),
            }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--postgres", action="store_true", help="use MAILSERVER_BENCH_PG (a scratch DB)")
    args = parser.parse_args()
    url = os.environ.get("MAILSERVER_BENCH_PG", "") if args.postgres else ""
    print(json.dumps(asyncio.run(run(args.messages, args.sessions, args.size, url))))


if __name__ == "__main__":
    main()
