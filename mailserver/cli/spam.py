"""``mailserver spam``: the spam filter of this installation.

* ``spam train --spam DIR --ham DIR``: teach the Bayesian classifier
  (``policy/bayes.py``) from folders of messages (one message per file: .eml
  files, a Maildir's cur/ and new/); IMAP moves into and out of Junk teach it
  too, while the server runs.
* ``spam status [--json]``: what it has learned, and whether it still speaks
  from the shipped seed model alone (its score then capped).
* ``spam check FILE... [--sender ADDR] [--json]``: score message files as the
  MX would score them from an outside sender (rules, Bayes, scanners) and
  list the rules that fired with their evidence, to see why.
"""

from __future__ import annotations

import argparse
import asyncio
import email.parser
import email.policy
from dataclasses import replace
from email.utils import getaddresses, parseaddr
from pathlib import Path

from mailserver.cli.common import CliError, SubParsers, print_json
from mailserver.config import Config
from policy.bayes import MIN_TRAINED, TOKENIZER, Bayes, Seed
from policy.checks import MessageView
from policy.checks.spam import SpamCheck
from policy.context import Direction, EnvelopeInfo, PolicyContext, SessionInfo
from policy.pipeline import Pipeline


def register(sub: SubParsers, common: argparse.ArgumentParser) -> None:
    spam = sub.add_parser("spam", parents=[common], help="spam filter: train, status, check")
    actions = spam.add_subparsers(dest="spam_command", required=True, metavar="ACTION")
    train = actions.add_parser("train", parents=[common], help="learn from folders of spam and ham")
    train.add_argument(
        "--spam", action="append", default=[], metavar="DIR", help="folder of spam (repeatable)"
    )
    train.add_argument(
        "--ham", action="append", default=[], metavar="DIR", help="folder of good mail (repeatable)"
    )
    train.set_defaults(action=_train)
    status = actions.add_parser("status", parents=[common], help="what the classifier has learned")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(action=_status)
    check = actions.add_parser("check", parents=[common], help="score message files and say why")
    check.add_argument("files", nargs="+", metavar="FILE", help="a message (RFC 5322, .eml)")
    check.add_argument("--sender", metavar="ADDR", help="envelope sender (default: the From address)")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.set_defaults(action=_check)


def bayes_path(config: Config) -> Path:
    configured = str(config.policy.options("spam").bayes_path)
    return Path(configured) if configured else config.data_dir / "policy" / "bayes.sqlite"


def _seed(config: Config) -> Seed | None:
    if not config.policy.options("spam").bayes_seed:
        return None
    try:
        return Seed.load()
    except (OSError, ValueError, KeyError) as exc:
        raise CliError(f"the Bayes seed model cannot be read: {exc}") from exc


def _files(folder: str) -> list[Path]:
    root = Path(folder)
    if not root.is_dir():
        raise CliError(f"not a directory: {folder}")
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def train(bayes: Bayes, spam_dirs: list[str], ham_dirs: list[str]) -> tuple[int, int]:
    counts = [0, 0]
    for dirs, is_spam in ((spam_dirs, True), (ham_dirs, False)):
        for folder in dirs:
            for path in _files(folder):
                bayes.learn(path.read_bytes(), is_spam)
                counts[0 if is_spam else 1] += 1
    return counts[0], counts[1]


async def _train(config: Config, args: argparse.Namespace) -> int:
    if not args.spam and not args.ham:
        raise CliError("give --spam DIR and/or --ham DIR")
    bayes = Bayes(bayes_path(config))
    try:
        nspam, nham = await asyncio.to_thread(train, bayes, args.spam, args.ham)
        total_spam, total_ham = bayes.totals()
    finally:
        bayes.close()
    print(f"learned {nspam} spam and {nham} ham; trained on {total_spam} spam and {total_ham} ham in all")
    return 0


async def _status(config: Config, args: argparse.Namespace) -> int:
    seed = _seed(config)
    bayes = Bayes(bayes_path(config), seed)
    try:
        spam, ham = bayes.totals()
        local = bayes.local_trained()
    finally:
        bayes.close()
    data = {
        "path": str(bayes_path(config)),
        "tokenizer": TOKENIZER,
        "learned": {"spam": spam, "ham": ham},
        "seed": {"spam": seed.spam, "ham": seed.ham, "tokens": len(seed.counts)} if seed else None,
        "mode": "local" if local else "seed" if seed else "untrained",
    }
    if args.json:
        print_json(data)
        return 0
    print(f"{data['path']}: learned {spam} spam and {ham} ham here")
    if seed is not None:
        print(f"seed model: {seed.spam} spam, {seed.ham} ham, {len(seed.counts)} tokens")
    if local:
        print("the classifier scores with this installation's training (BAYES_99/90/00)")
    elif seed is not None:
        print(
            f"until {MIN_TRAINED} spam and {MIN_TRAINED} ham are learned here, it speaks from the seed,"
            " capped (BAYES_SEED_*)"
        )
    else:
        print(f"untrained: no opinion until {MIN_TRAINED} spam and {MIN_TRAINED} ham are learned")
    return 0


async def _check(config: Config, args: argparse.Namespace) -> int:
    messages = []
    for name in args.files:
        try:
            messages.append((name, Path(name).read_bytes()))
        except OSError as exc:
            raise CliError(f"cannot read {name}: {exc.strerror or exc}") from exc
    settings = replace(config.policy, workers=0)
    pipeline = Pipeline.from_settings(settings, data_dir=config.data_dir, local_domains=config.server.domains)
    results = []
    try:
        spam = next((c for c in pipeline.checks if isinstance(c, SpamCheck)), None)
        if spam is None:
            raise CliError("the spam check is not in policy.checks")
        for name, raw in messages:
            header = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
            sender = args.sender or parseaddr(str(header.get("From", "")))[1]
            recipients = [a for _, a in getaddresses([str(v) for v in header.get_all("To", [])]) if a]
            ctx = PolicyContext(
                SessionInfo("192.0.2.1", "outside.example", session_id="spam-check"),
                EnvelopeInfo(sender, recipients or [f"postmaster@{config.server.domains[0]}"]),
                Direction.INBOUND,
                {},
                tuple(config.server.domains),
            )
            analysis = await pipeline.analyse(raw)
            score, hits = await spam.evaluate(ctx, MessageView(raw, header, analysis))
            tag_score, reject_score = spam.thresholds()
            verdict = "reject" if score >= reject_score else "junk" if score >= tag_score else "inbox"
            results.append(
                {
                    "file": name,
                    "score": round(score, 2),
                    "verdict": verdict,
                    "tag_score": tag_score,
                    "reject_score": reject_score,
                    "rules": [{"name": h.name, "score": h.score, "detail": h.detail} for h in hits],
                }
            )
    finally:
        await pipeline.close()
    if args.json:
        print_json(results)
        return 0
    for result in results:
        print(
            f"{result['file']}: score {result['score']:.1f} -> {result['verdict']} "
            f"(tag {result['tag_score']:g}, reject {result['reject_score']:g})"
        )
        for rule in result["rules"]:
            print(f"  {rule['name']:<24} {rule['score']:+5.1f}  {rule['detail']}")
    return 0
