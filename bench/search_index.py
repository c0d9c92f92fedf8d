"""Full-text search benchmark (issue #21), ours beside Dovecot on the same corpus:

1. the ``bench/corpus.py`` corpus of N messages (one in five with a 10-200 KB
   attachment), one in 1,000 carrying the rare word "thẩm" in a base64 body;
   stored into our server (``store.deliver``, indexing off) and written as
   Maildir files into Dovecot's (Debian's Dovecot: no FTS plugin);
2. indexing rate: ``mailserver.search.indexer.Indexer`` over the whole work list
   (one extraction worker process), and the index size as a share of message bytes;
3. ``UID SEARCH CHARSET UTF-8 TEXT "thẩm"`` with imaplib against both servers
   (ours in a child process), after one warm-up, median of ``--reps``; the two
   must find the same messages;
4. SMTP ingest (``bench/smtp_ingest.py``, 4 KB, 20 sessions) with the indexer
   running and with ``search.index = false``, interleaved, medians.

    flock /work/wt/bench.lock python bench/search_index.py [--messages 20000] [--reps 7]

Prints one JSON line. Needs root for Dovecot (``bench/peers.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import imaplib
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import corpus  # noqa: E402
import smtp_ingest  # noqa: E402
from peers import PASSWORD, USER, Dovecot, free_port, wait_port  # noqa: E402

from mailserver.app import App  # noqa: E402
from mailserver.auth import hash_password  # noqa: E402
from mailserver.config import Config, ImapSettings, ServerSettings, SmtpSettings, SubmissionSettings  # noqa: E402
from mailserver.managesieve.settings import ManageSieveSettings  # noqa: E402
from mailserver.search.indexer import Indexer  # noqa: E402
from mailserver.search.settings import SearchSettings  # noqa: E402
from mailserver.web.settings import WebSettings  # noqa: E402
from policy.dns import DnsSettings  # noqa: E402
from policy.extract.walk import Limits  # noqa: E402

WORD = "thẩm"


def config(data_dir: str, imap_port: int, *, index: bool) -> Config:
    return Config(
        server=ServerSettings(data_dir=data_dir, log_level="WARNING"),
        smtp=SmtpSettings(listen="127.0.0.1:0"),
        submission=SubmissionSettings(listen="127.0.0.1:0", tls_listen="127.0.0.1:0"),
        web=WebSettings(listen="127.0.0.1:0"),
        managesieve=ManageSieveSettings(enabled=False),
        imap=ImapSettings(listen=f"127.0.0.1:{imap_port}", tls_listen="127.0.0.1:0"),
        dns=DnsSettings(use_servers=False),
        search=SearchSettings(index=index),
    )


def rare(i: int) -> bytes:
    text = "Hồ sơ thẩm định dự án đầu tư công, kính gửi các đơn vị.\r\n" * 5
    body = base64.encodebytes(text.encode()).decode().replace("\n", "\r\n")
    return (
        f"From: vanthu@example.org\r\nTo: {USER}\r\nSubject: Ho so {i}\r\n"
        f"Date: Mon, 4 Mar 2024 10:00:00 +0700\r\nMessage-ID: <rare.{i}@example.org>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{body}"
    ).encode()


def messages(count: int) -> list[bytes]:
    return [rare(i) if i % 1000 == 7 else m.data for i, m in enumerate(corpus.build(count))]


async def fill_and_index(data_dir: str, data: list[bytes]) -> dict[str, float]:
    async with App(config(data_dir, 0, index=False)) as app:
        account = await app.store.create_account(
            USER, "Bench", hash_password(PASSWORD), must_change_password=False
        )
        start = time.perf_counter()
        for first in range(0, len(data), 200):
            await asyncio.gather(*(app.store.deliver([account.id], m) for m in data[first : first + 200]))
        filled = time.perf_counter() - start
        indexer = Indexer(app.store, Limits(), SearchSettings(batch=256, processes=1))
        start = time.perf_counter()
        while await indexer.run_once():
            pass
        indexed = time.perf_counter() - start
        indexer.close()
        status = await app.store.index_status()
        return {
            "fill_seconds": round(filled, 1),
            "index_seconds": round(indexed, 1),
            "index_messages_per_second": round(len(data) / indexed, 1),
            "index_bytes": status.index_bytes,
            "message_bytes": status.message_bytes,
            "index_share": round(status.index_bytes / status.message_bytes, 4),
        }


def serve(data_dir: str, imap_port: int) -> None:
    async def run() -> None:
        async with App(config(data_dir, imap_port, index=True)):
            await asyncio.Event().wait()

    asyncio.run(run())


def time_search(port: int, reps: int) -> tuple[float, list[int], float]:
    """(median ms, UIDs found, first-SELECT seconds) of UID SEARCH TEXT WORD."""
    imap = imaplib.IMAP4("127.0.0.1", port)
    imap.login(USER, PASSWORD)
    start = time.perf_counter()
    imap.select("INBOX")
    selected = time.perf_counter() - start
    times: list[float] = []
    found: list[int] = []
    for n in range(reps + 1):
        imap.literal = WORD.encode()
        start = time.perf_counter()
        typ, data = imap.uid("SEARCH", "CHARSET", "UTF-8", "TEXT")
        elapsed = time.perf_counter() - start
        assert typ == "OK", data
        found = [int(x) for x in data[0].split()]
        if n:  # the first is a warm-up (Dovecot builds its index and caches there)
            times.append(elapsed * 1000)
    imap.logout()
    return statistics.median(times), found, selected


def dovecot_fill(dovecot: Dovecot, data: list[bytes]) -> None:
    cur = dovecot.maildir / "cur"
    for sub in ("cur", "new", "tmp"):
        (dovecot.maildir / sub).mkdir(parents=True, exist_ok=True)
    for i, m in enumerate(data):
        (cur / f"{1_700_000_000 + i}.bench{i}.host:2,S").write_bytes(m)
    for path in [
        dovecot.maildir.parent.parent,
        dovecot.maildir.parent,
        dovecot.maildir,
        *dovecot.maildir.iterdir(),
    ]:
        shutil.chown(path, "mail", "mail")
    for path in cur.iterdir():
        shutil.chown(path, "mail", "mail")


async def ingest(index: bool, count: int) -> float:
    result = await smtp_ingest.run(count, 20, 4096, "", search=SearchSettings(index=index))
    return float(result["messages_per_second"])  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--ingest", type=int, default=1500, help="messages per SMTP ingest run (0: skip)")
    args = parser.parse_args()
    out: dict[str, object] = {"scenario": "search_index", "messages": args.messages}
    data = messages(args.messages)
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)  # noqa: S103 - Dovecot's imap runs as user mail under it
        ours = str(Path(tmp) / "ours")
        out.update(asyncio.run(fill_and_index(ours, data)))
        port = free_port()
        child = multiprocessing.get_context("spawn").Process(target=serve, args=(ours, port), daemon=True)
        child.start()
        dovecot = Dovecot(Path(tmp))
        try:
            wait_port(port)
            ms, found, _ = time_search(port, args.reps)
            out.update(ours_search_ms=round(ms, 2), ours_found=len(found))
            dovecot.start()
            dovecot_fill(dovecot, data)
            ms_d, found_d, select_d = time_search(dovecot.imap_port, args.reps)
            out.update(
                dovecot_search_ms=round(ms_d, 2),
                dovecot_found=len(found_d),
                dovecot_first_select_s=round(select_d, 1),
                ratio=round(ms / ms_d, 4),
            )
        finally:
            dovecot.stop()
            child.terminate()
            child.join(10)
    if args.ingest:
        with_index, without = [], []
        for _ in range(2):
            with_index.append(asyncio.run(ingest(True, args.ingest)))
            without.append(asyncio.run(ingest(False, args.ingest)))
        out.update(
            ingest_with_index=statistics.median(with_index),
            ingest_without_index=statistics.median(without),
            ingest_ratio=round(statistics.median(with_index) / statistics.median(without), 3),
        )
    print(json.dumps(out))


if __name__ == "__main__":
    os.environ.setdefault("MAILSERVER_MIGRATE_INLINE", "1")
    main()
