"""CPU the full-text indexer's worker spends per message (issue 17), and print JSON.

``document_of_file`` (read the file, parse, extract, fold, cut into words: what
an indexer worker process does for each job) over stored-message shapes:
smtp-source's 4 KB and 200 KB messages (lines of 79 "X", as ``bench/run`` sends
them), ``bench/smtp_ingest.py``'s Vietnamese 4 KB text, and the
``bench/corpus.py`` mix (one in five with a 10-200 KB attachment), each behind
the trace fields our server adds. ``time.process_time`` over the whole list,
median of ``--reps`` after one warm-up pass; milliseconds per message.

    python bench/index_cpu.py [--reps 5] [--corpus 500]

It imports the tree it lies in: to measure another, copy it into that tree's bench/.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import corpus  # noqa: E402

from mailserver.search.document import document_of_file  # noqa: E402
from policy.extract.walk import Limits  # noqa: E402

TRACE = (
    b"Return-Path: <sender@example.org>\r\n"
    b"Received: from client.example.org (localhost [127.0.0.1])\r\n"
    b"\tby mx.dongnai.gov.vn with ESMTP id 1a2b3c\r\n"
    b"\tfor <bench@dongnai.gov.vn>; Sun, 6 Dec 2026 01:00:00 +0000\r\n"
    b"Authentication-Results: mx.dongnai.gov.vn; spf=none smtp.mailfrom=example.org;\r\n"
    b"\tdkim=none; dmarc=none header.from=example.org\r\n"
)


def smtp_source(size: int) -> bytes:
    """smtp-source's message: its header fields, then ``size`` octets of lines of "X"."""
    head = (
        b"From: <sender@example.org>\r\nTo: <bench@dongnai.gov.vn>\r\n"
        b"Date: Sun, 6 Dec 2026 01:00:00 +0000 (UTC)\r\n"
        b"Message-Id: <0001.0002.0003@client.example.org>\r\n\r\n"
    )
    line = b"X" * 79 + b"\r\n"
    return TRACE + head + (line * (size // 80 + 1))[:size] + b"\r\n"


def ingest_4k() -> bytes:
    """``bench/smtp_ingest.py``'s message."""
    return TRACE + (
        b"From: Citizen <bench@example.org>\r\nTo: <bench@dongnai.gov.vn>\r\n"
        b"Subject: =?UTF-8?B?QsOhbyBjw6FvIHR14bqnbg==?=\r\nDate: Mon, 4 Mar 2024 10:00:00 +0700\r\n"
        b"Message-ID: <bench@example.org>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        + ("Nội dung báo cáo tuần của đơn vị, gửi kèm số liệu tổng hợp.\r\n" * 64).encode()
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--corpus", type=int, default=500, help="bench/corpus.py messages")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # pypdf's complaints about the corpus's random "PDF"s
    mix = [TRACE + m.data for m in corpus.build(args.corpus)]
    shapes = {
        "smtp_source_4k": [smtp_source(4096)] * 500,
        "smtp_source_200k": [smtp_source(200_000)] * 100,
        "vietnamese_4k": [ingest_4k()] * 500,
        "corpus": mix,
        "corpus_with_attachment": mix[::5],
        "corpus_without": [m for i, m in enumerate(mix) if i % 5],
    }
    limits = Limits()
    result: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, messages in shapes.items():
            paths = []
            for i, data in enumerate(messages[:1] if len(set(messages)) == 1 else messages):
                path = Path(tmp) / f"{name}.{i}"
                path.write_bytes(data)
                paths.append(str(path))
            jobs = paths * (len(messages) // len(paths))
            for path in jobs:
                document_of_file(1, path, limits)
            runs = []
            for _ in range(args.reps):
                start = time.process_time()
                for n, path in enumerate(jobs):
                    document_of_file(n, path, limits)
                runs.append((time.process_time() - start) / len(jobs) * 1000)
            result[f"{name}_ms"] = round(statistics.median(runs), 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
