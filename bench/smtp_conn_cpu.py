"""Server CPU per message with a connection per message (issue 17): our server in
this process (uvloop, smtp.processes=1, no full-text index, no DNS servers),
Postfix's ``smtp-source -s 20`` without ``-d`` as the client, 200 messages of
warm-up, then the process's CPU (getrusage: every thread) and the event loop
thread's alone per message over ``--messages``.

    python bench/smtp_conn_cpu.py [--messages 1000] [--size 4096] [--profile FILE]
                                  [--dialogue-only]

``--dialogue-only`` answers DATA with 250 without delivering (no sender
authentication, content policy or store): what is left is the dialogue, from
the connection to QUIT. ``--profile`` writes a cProfile of the measured part.
Compare trees with ``PYTHONPATH=<tree>``, alternating, on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import resource
import tempfile
import time
from typing import Any

import uvloop

from mailserver.app import App
from mailserver.auth import hash_password
from mailserver.config import Config, ImapSettings, ServerSettings, SmtpSettings, SubmissionSettings
from mailserver.managesieve.settings import ManageSieveSettings
from mailserver.search.settings import SearchSettings
from mailserver.smtp.handler import SmtpHandler
from mailserver.web.settings import WebSettings
from policy.settings import DnsSettings
from storage.settings import StorageSettings

RCPT = "bench@dongnai.gov.vn"


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def no_delivery(self: SmtpHandler, server: Any, session: Any, envelope: Any) -> str:
    return "250 2.0.0 Message accepted"


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = Config(
            server=ServerSettings(data_dir=tmp, log_level="WARNING"),
            storage=StorageSettings(url=""),
            smtp=SmtpSettings(listen="127.0.0.1:0", processes=1),
            submission=SubmissionSettings(listen="127.0.0.1:0", tls_listen="127.0.0.1:0"),
            web=WebSettings(listen="127.0.0.1:0"),
            managesieve=ManageSieveSettings(enabled=False),
            imap=ImapSettings(listen="127.0.0.1:0", tls_listen="127.0.0.1:0"),
            dns=DnsSettings(use_servers=False),
            search=SearchSettings(index=False),
        )
        async with App(config) as app:
            account = await app.store.create_account(RCPT, "Bench", hash_password("x" * 12))
            port = app.addresses["smtp"][1]
            if args.dialogue_only:
                SmtpHandler.handle_DATA = no_delivery  # type: ignore[method-assign]

            async def batch(n: int) -> None:
                before = (await app.store.quota(account.id)).messages_used
                proc = await asyncio.create_subprocess_exec(
                    "smtp-source", "-s", "20", "-m", str(n), "-l", str(args.size),
                    "-f", "sender@example.org", "-t", RCPT, "-M", "client.example.org", f"127.0.0.1:{port}",
                )
                await proc.wait()
                if args.dialogue_only:
                    return
                while (await app.store.quota(account.id)).messages_used < before + n:
                    await asyncio.sleep(0.02)

            await batch(200)  # warm-up
            profile = cProfile.Profile() if args.profile else None
            cpu0, wall0, loop0 = cpu(), time.perf_counter(), time.thread_time()
            if profile is not None:
                profile.enable()
            await batch(args.messages)
            if profile is not None:
                profile.disable()
                profile.dump_stats(args.profile)
            cpu1, wall1, loop1 = cpu(), time.perf_counter(), time.thread_time()
            print(json.dumps({
                "messages": args.messages,
                "dialogue_only": args.dialogue_only,
                "cpu_ms_per_msg": round((cpu1 - cpu0) / args.messages * 1000, 3),
                "loop_thread_ms_per_msg": round((loop1 - loop0) / args.messages * 1000, 3),
                "msg_per_s": round(args.messages / (wall1 - wall0), 1),
            }))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--profile", help="write a cProfile of the measured part here")
    parser.add_argument("--dialogue-only", action="store_true", help="answer DATA without delivering")
    uvloop.install()
    asyncio.run(main(parser.parse_args()))
