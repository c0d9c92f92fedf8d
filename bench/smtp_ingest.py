"""SMTP ingest benchmark: N messages over C parallel sessions into our server,
timed until every message is durably stored (the 250 after DATA implies it).

    python bench/smtp_ingest.py [--messages 2000] [--sessions 20] [--size 4096] [--postgres]
                                [--sieve-rules 50] [--compare-sieve | --compare-index]
                                [--per-message]

``--sieve-rules N`` gives the recipient an active Sieve script of N rules (the
last one files the message into a folder with a flag, the others do not
match); ``--compare-sieve`` runs without a script and with one in the same
process and prints both and their ratio (issue 20: within 10%);
``--compare-index`` does the same with the full-text indexer off and on
(issue 21: within 10%). ``--per-message`` opens a connection for every
message, as many sending MTAs do, instead of reusing each session's.

Prints one JSON line. Peer servers (Postfix + Dovecot) are measured beside this
in the benchmarks issue; until then the figure is ours alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time

import aiosmtplib

from mailserver.app import App
from mailserver.auth import hash_password
from mailserver.config import Config, ImapSettings, ServerSettings, SmtpSettings, SubmissionSettings
from mailserver.managesieve.settings import ManageSieveSettings
from mailserver.search.settings import SearchSettings
from mailserver.web.settings import WebSettings
from policy.settings import DnsSettings
from storage.settings import StorageSettings

RCPT = "bench@dongnai.gov.vn"


def sieve_script(rules: int) -> str:
    """``rules`` rules: rules-1 that do not match this message, then one that files it."""
    lines = ['require ["fileinto", "imap4flags", "mailbox", "subaddress", "envelope"];']
    for i in range(rules - 1):
        match i % 4:
            case 0:
                lines.append(f'if header :contains "subject" "Mục số {i}" {{ fileinto "Mục {i}"; stop; }}')
            case 1:
                lines.append(f'if address :domain :is "from" "donvi{i}.gov.vn" {{ fileinto "ĐV {i}"; }}')
            case 2:
                lines.append(f'if envelope :detail "to" "muc{i}" {{ addflag "$Muc{i}"; }}')
            case _:
                lines.append(f'if allof (exists "X-Muc-{i}", size :over 1M) {{ discard; stop; }}')
    if rules:
        lines.append('if header :contains "subject" "Báo cáo" {')
        lines.append('  fileinto :create :flags "$BaoCao" "Báo cáo";\n}')
    return "\n".join(lines) + "\n"


async def run(
    messages: int, sessions: int, size: int, url: str, sieve_rules: int = 0, *,
    search: SearchSettings | None = None, per_message: bool = False,
) -> dict[str, object]:
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
            search=search or SearchSettings(),
        )
        async with App(config) as app:
            account = await app.store.create_account(RCPT, "Bench", hash_password("x" * 12))
            if sieve_rules:
                from storage.sieve import sieve_scripts_for

                scripts = sieve_scripts_for(app.store)
                await scripts.put_script(RCPT, "bench", sieve_script(sieve_rules))
                await scripts.set_active(RCPT, "bench")
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
                    if per_message and not client.is_connected:
                        await client.connect()
                    await client.sendmail("bench@example.org", [RCPT], body)
                    if per_message:
                        await client.quit()
                if client.is_connected:
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
                "sieve_rules": sieve_rules,
                "index": (search or SearchSettings()).index,
                "connection_per_message": per_message,
                "seconds": round(elapsed, 3),
                "messages_per_second": round(messages / elapsed, 1),
            }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--postgres", action="store_true", help="use MAILSERVER_BENCH_PG (a scratch DB)")
    parser.add_argument("--sieve-rules", type=int, default=0, help="an active script of N rules (0: none)")
    parser.add_argument("--reps", type=int, default=4, help="with --compare-sieve: runs of each side")
    parser.add_argument("--compare-sieve", action="store_true",
                        help="run without a script, then with --sieve-rules (default 50); print the ratio")
    parser.add_argument("--compare-index", action="store_true",
                        help="run with the full-text indexer off, then on; print the ratio")
    parser.add_argument("--per-message", action="store_true", help="a new connection for every message")
    args = parser.parse_args()
    url = os.environ.get("MAILSERVER_BENCH_PG", "") if args.postgres else ""
    if not (args.compare_sieve or args.compare_index):
        print(json.dumps(asyncio.run(run(args.messages, args.sessions, args.size, url, args.sieve_rules,
                                         per_message=args.per_message))))
        return
    rules = args.sieve_rules or 50

    def side(with_feature: bool) -> dict[str, object]:
        if args.compare_index:
            return asyncio.run(run(args.messages, args.sessions, args.size, url, 0,
                                   search=SearchSettings(index=with_feature), per_message=args.per_message))
        return asyncio.run(run(args.messages, args.sessions, args.size, url, rules if with_feature else 0,
                               per_message=args.per_message))

    # Alternating A B B A ... so that warming up and other load on a shared
    # machine do not favour one side; the median of each side is compared.
    rates: dict[bool, list[float]] = {False: [], True: []}
    for rep in range(args.reps):
        for with_feature in ((False, True) if rep % 2 == 0 else (True, False)):
            result = side(with_feature)
            print(json.dumps(result))
            rates[with_feature].append(float(result["messages_per_second"]))  # type: ignore[arg-type]
    ratio = statistics.median(rates[True]) / statistics.median(rates[False])
    feature = "index" if args.compare_index else "sieve"
    print(json.dumps({"scenario": f"smtp_ingest_{feature}", "rules": 0 if args.compare_index else rules,
                      "reps": args.reps, "connection_per_message": args.per_message,
                      "without_median": statistics.median(rates[False]),
                      "with_median": statistics.median(rates[True]),
                      "throughput_ratio": round(ratio, 3)}))


if __name__ == "__main__":
    main()
