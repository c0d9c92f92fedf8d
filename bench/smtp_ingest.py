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
from mailserver.managesieve.settings import ManageSieveSettings
from mailserver.web.settings import WebSettings
from policy.dns import DnsSettings
from storage.settings import StorageSettings

RCPT = "bench@dongnai.gov.vn"


async def run(messages: int, sessions: int, size: int, url: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        config = Config(
            server=ServerSettings(data_dir=tmp, log_level="WARNING"),
            storage=StorageSettings(url=url),
            smtp=SmtpSettings(listen="127.0.0.1:0"),
            submission=SubmissionSettings(listen="127.0.0.1:0", tls_listen="127.0.0.1:0"),
            web=WebSettings(listen="127.0.0.1:0"),
            managesieve=ManageSieveSettings(enabled=False),
            imap=ImapSettings(listen="127.0.0.1:0", tls_listen="127.0.0.1:0"),
            # No DNS on the bench machine: SPF/DKIM/DMARC lookups answer "none" at once
            # instead of timing out against an unreachable resolver.
            dns=DnsSettings(use_servers=False),
        )
        async with App(config) as app:
            account = await app.store.create_account(RCPT, "Bench", hash_password("x" * 12))
            port = app.addresses["smtp"][1]
            body = (
                b"From: Citizen <bench@example.org>\r\nTo: <bench@dongnai.gov.vn>\r\n"
                b"Subject: =?UTF-8?B?QsOhbyBjw6FvIHR14bqnbg==?=\r\nDate: Mon, 4 Mar 2024 10:00:00 +0700\r\n"
                b"Message-ID: <bench@example.org>\r\nMIME-Version: 1.0\r\n"
                b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
                + ("Nội dung báo cáo tuần của đơn vị, gửi kèm số liệu tổng hợp.\r\n" * (size // 64)).encode()
            )
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
            # Counted over all folders: the spam check may file some into Junk.
            stored = (await app.store.quota(account.id)).messages_used
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
