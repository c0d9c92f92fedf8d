"""``mailserver spam train --spam DIR --ham DIR``: teach the Bayesian spam
classifier of this installation (``policy/bayes.py``) from folders of
messages (one message per file: .eml files, a Maildir's cur/ and new/)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from mailserver.cli.common import CliError, SubParsers
from mailserver.config import Config
from policy.bayes import Bayes


def register(sub: SubParsers, common: argparse.ArgumentParser) -> None:
    spam = sub.add_parser("spam", parents=[common], help="spam classifier")
    actions = spam.add_subparsers(dest="spam_command", required=True, metavar="ACTION")
    train = actions.add_parser("train", parents=[common], help="learn from folders of spam and ham")
    train.add_argument(
        "--spam", action="append", default=[], metavar="DIR", help="folder of spam (repeatable)"
    )
    train.add_argument(
        "--ham", action="append", default=[], metavar="DIR", help="folder of good mail (repeatable)"
    )
    train.set_defaults(action=_train)


def bayes_path(config: Config) -> Path:
    configured = str(config.policy.options("spam").bayes_path)
    return Path(configured) if configured else config.data_dir / "policy" / "bayes.sqlite"


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
