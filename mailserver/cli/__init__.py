"""The ``mailserver`` command.

Commands, flags and output are a public interface operators script against: add
to them freely, never rename. Each area registers its sub-commands from its own
module (``register(sub, common)``), and each leaf parser names its coroutine with
``set_defaults(action=...)``; ``main`` only loads the config and runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import NoReturn

from mailserver import config as config_mod
from mailserver.cli import (
    accounts,
    agency,
    audit,
    db,
    directory,
    dispatch,
    dkim,
    dns,
    group,
    mailbox,
    migrate,
    ops,
    passwords,
    pdf,
    pki,
    quarantine,
    queue,
    routing,
    search,
    serve,
    sieve,
    spam,
    vault,
)
from mailserver.cli.common import Action, CliError, add_config_option, common_parser
from mailserver.cli.errors import bilingual, usage_error
from mailserver.config import ConfigError
from mailserver.ops.logs import configure_logging, use_uvloop

# One line per command area; keep alphabetical after serve.
MODULES = (
    serve, accounts, agency, audit, db, directory, dispatch, dkim, dns, group, mailbox, migrate, ops,
    passwords, pdf, pki, quarantine, queue, routing, search, sieve, spam, vault,
)


class _Parser(argparse.ArgumentParser):
    """argparse, with its complaints Vietnamese first (mailserver/cli/errors.py);
    sub-command parsers are of the same class."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: {usage_error(message)}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mailserver", description="Mail server for the state agencies of Dong Nai province."
    )
    add_config_option(parser, None)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = common_parser()
    for module in MODULES:
        module.register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = config_mod.load(args.config)
    except ConfigError as exc:
        print(f"mailserver: lỗi cấu hình / configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        configure_logging(config)
    except ConfigError as exc:
        print(f"mailserver: lỗi cấu hình / configuration error: {exc}", file=sys.stderr)
        return 2
    if getattr(args, "uvloop", False):
        use_uvloop()
    try:
        action: Action = args.action
        return asyncio.run(action(config, args))
    except CliError as exc:
        # Vietnamese first, English beside it, one line (mailserver/cli/errors.py).
        print(f"mailserver: {bilingual(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        # Unreachable database, unwritable data dir, port in use: one line, no traceback.
        print(f"mailserver: {bilingual(str(exc))}", file=sys.stderr)
        return 1
