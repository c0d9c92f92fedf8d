"""CPU the inbound content policy spends per message (issue 17), and print JSON.

``Pipeline.check_data`` as ``Inbound.check_content`` calls it (default
``[policy]`` settings, the shipped Bayes seed, an inbound session without DNS
results), in this process, over message shapes: smtp-source's 4 KB and 200 KB
messages (its header fields, then lines of a digit and 77 "X", byte for byte
what ``smtp-source -l N`` sends), a Vietnamese text mail of 4 KB and one of
200 KB (lines of the decision's words in random order: few repeats), and the 4 KB
one as the decision is typed (some marks typed apart from their letters, a
no-break space).
``time.process_time`` over ``--count`` messages, median of ``--reps`` after a
warm-up pass; microseconds per message.

    python bench/policy_cpu.py [--reps 5] [--count 400] [--profile SHAPE]
    python bench/policy_cpu.py --dump FILE   # every Outcome of the comparison set, one a line

``--dump`` writes each message's whole ``Outcome`` (action, reply, every
verdict with its reason, summary and headers), the spam check's exact score
and hits, the classifier's exact probability and a digest of its tokens
(``spam_details``) for the three corpus splits of
``tests/policy/corpus.py``, the same with each body repeated 40 times (the
repeated-line paths) and the shapes above: run it in two trees
(``PYTHONPATH=<tree>``) and compare the files. This script imports from
``PYTHONPATH``, not from the tree it lies in.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import logging
import pstats
import random
import statistics
import tempfile
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path

from policy.context import Direction, EnvelopeInfo, PolicyContext, SessionInfo
from policy.pipeline import Pipeline
from policy.settings import PolicySettings
from policy.verdict import Outcome

SEED = Path(__file__).resolve().parent.parent / "tests" / "policy" / "data" / "decision-70-2009.txt"
RCPT = "bench@dongnai.gov.vn"
SENDER = "sender@example.org"


def smtp_source(size: int) -> bytes:
    """``smtp-source -l size``'s message (Postfix 3.7): header fields, then
    80-octet lines of a digit (1, 2 ... 9, 0), 77 "X" and CRLF, the last
    80 octets (or fewer) all "X", and a CRLF."""
    head = (
        b"From: <sender@example.org>\r\nTo: <bench@dongnai.gov.vn>\r\n"
        b"Date: Sun,  6 Dec 2026 04:17:06 +0000 (UTC)\r\n"
        b"Message-Id: <3460.0003.0000@client.example.org>\r\n\r\n"
    )
    body = bytearray(b"X" * size)
    for start in range(0, size - 80, 80):
        body[start] = ord(str((start // 80 + 1) % 10))
        body[start + 78 : start + 80] = b"\r\n"
    return head + bytes(body) + b"\r\n"


def vietnamese(size: int, *, nfc: bool = True) -> bytes:
    """A Vietnamese text/plain mail of about ``size`` octets: the decision's
    text from its start, and beyond it lines of its words in random order;
    NFC (as mail clients write it) or, ``nfc`` false, as the decision's text
    is (a few marks typed apart from their letters, a no-break space: text
    that Unicode normalisation has to rewrite)."""
    seed = SEED.read_text(encoding="utf-8").replace("\t", " ")
    if nfc:
        seed = unicodedata.normalize("NFC", seed)
    lines = [line.rstrip() for line in seed.split("\n")]
    words = seed.split()
    rng = random.Random(17)
    body: list[str] = []
    used = 0
    for line in lines:
        body.append(line)
        used += len(line.encode()) + 2
        if used >= size:
            break
    while used < size:
        line = " ".join(rng.choice(words) for _ in range(rng.randint(8, 16)))
        body.append(line)
        used += len(line.encode()) + 2
    head = (
        "From: =?utf-8?b?Tmd1eeG7hW4gVsSDbiBBbg==?= <an.nguyen@example.org>\r\nTo: <bench@dongnai.gov.vn>\r\n"
        "Subject: =?UTF-8?B?QsOhbyBjw6FvIHR14bqnbiB24buBIGjhu5lwIHRoxrAgxJFp4buHbiB04butIA==?=\r\n"
        "Date: Mon, 4 Mar 2024 10:00:00 +0700\r\nMessage-ID: <vn.1@example.org>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    )
    return (head + "\r\n".join(body) + "\r\n").encode()


SHAPES: dict[str, Callable[[], bytes]] = {
    "smtp_source_4k": lambda: smtp_source(4096),
    "smtp_source_200k": lambda: smtp_source(200_000),
    "vietnamese_4k": lambda: vietnamese(4096),
    "vietnamese_4k_decomposed": lambda: vietnamese(4096, nfc=False),
    "vietnamese_200k": lambda: vietnamese(200_000),
}


def context(name: str, sender: str = SENDER) -> PolicyContext:
    """What ``Inbound.check_content`` passes: an inbound session from outside
    (no DNS servers: SPF, DKIM and DMARC none)."""
    return PolicyContext(
        SessionInfo("203.0.113.5", "client.example.org", session_id=name),
        EnvelopeInfo(sender, [RCPT]),
        Direction.INBOUND,
        {"spf": "none", "dkim": "none", "dmarc": "none"},
    )


def pipeline(data_dir: str) -> Pipeline:
    return Pipeline.from_settings(PolicySettings(), data_dir=data_dir, local_domains=["dongnai.gov.vn"])


def describe(outcome: Outcome) -> str:
    """Everything of an outcome, as text."""
    return repr((outcome.action, outcome.reply, outcome.verdicts, outcome.headers, outcome.decided_by,
                 outcome.reasons, outcome.junk, outcome.header_bytes()))


async def spam_details(pipe: Pipeline, ctx: PolicyContext, data: bytes) -> str:
    """The spam check's exact score and hits, the classifier's exact
    probability and a digest of its tokens, as the check computes them."""
    import hashlib
    import inspect

    from policy import bayes
    from policy.checks import MessageView
    from policy.checks.spam import SpamCheck
    from policy.pipeline import _header_section

    spam = next(c for c in pipe.checks if isinstance(c, SpamCheck))
    try:
        analysis, parsed = await pipe._scan(data)
    except Exception as exc:  # noqa: BLE001 - recorded as it is
        return f"scan: {exc!r}"
    view = MessageView(data, parsed if parsed is not None else _header_section(data), analysis)
    score, hits = await spam.evaluate(ctx, view)
    text = analysis.body_text()
    subject = next((u.text for u in analysis.units if u.role == "subject"), "")
    args: tuple[object, ...] = (text, subject, "a@b.example", analysis.urls)
    if "folding" in inspect.signature(bayes.tokens).parameters:  # as the check calls it, after the rules
        from policy.rules.normalize import FoldMemo

        memo = FoldMemo()
        spam.score(ctx, view, memo)
        args += (memo,)
    toks = bayes.tokens(*args)  # type: ignore[arg-type]
    digest = hashlib.sha256("\n".join(sorted(toks)).encode()).hexdigest()[:16]
    assert spam.bayes is not None
    return repr((score, hits, spam.bayes.probability(toks), len(toks), digest))


async def dump(path: str) -> int:
    from tests.policy import corpus

    messages: list[tuple[str, str, bytes]] = []
    for split in corpus.SPLITS:
        for sample in corpus.build(split):
            messages.append((f"{split}/{sample.name}", sample.sender, sample.data))
            for sep in (b"\r\n\r\n", b"\n\n"):
                head, found, body = sample.data.partition(sep)
                if found:
                    messages.append((f"{split}/{sample.name}*40", sample.sender, head + sep + body * 40))
                    break
    messages += [(name, SENDER, make()) for name, make in SHAPES.items()]
    with tempfile.TemporaryDirectory() as tmp:
        pipe = pipeline(tmp)
        try:
            with open(path, "w", encoding="utf-8") as out:
                for name, sender, data in messages:
                    outcome = await pipe.check_data(context(name, sender), data)
                    details = await spam_details(pipe, context(name, sender), data)
                    out.write(f"{name}\t{describe(outcome)}\t{details}\n")
        finally:
            await pipe.close()
    return len(messages)


async def measure(reps: int, count: int, profile: str | None) -> dict[str, float]:
    result: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        pipe = pipeline(tmp)
        try:
            for name, make in SHAPES.items():
                if profile and name != profile:
                    continue
                data = make()
                n = count if len(data) < 100_000 else max(1, count // 10)
                contexts = [context(f"{name}.{i}") for i in range(n)]
                for ctx in contexts:  # warm-up (and the same contexts again: check_data reads them only)
                    await pipe.check_data(ctx, data)
                profiler = cProfile.Profile() if profile else None
                runs = []
                for _ in range(reps):
                    if profiler is not None:
                        profiler.enable()
                    start = time.process_time()
                    for ctx in contexts:
                        await pipe.check_data(ctx, data)
                    runs.append((time.process_time() - start) / n * 1e6)
                    if profiler is not None:
                        profiler.disable()
                result[f"{name}_us"] = round(statistics.median(runs), 1)
                if profiler is not None:
                    for key in ("tottime", "cumulative"):
                        pstats.Stats(profiler).sort_stats(key).print_stats(45)
        finally:
            await pipe.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--count", type=int, default=400, help="messages per repetition (a tenth for 200 KB)")
    parser.add_argument("--profile", choices=sorted(SHAPES), help="cProfile of one shape (stdout)")
    parser.add_argument("--dump", help="write every outcome of the comparison set to this file")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    if args.dump:
        print(json.dumps({"messages": asyncio.run(dump(args.dump))}))
        return
    print(json.dumps(asyncio.run(measure(args.reps, args.count, args.profile))))


if __name__ == "__main__":
    main()
