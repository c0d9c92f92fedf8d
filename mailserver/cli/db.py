"""``mailserver db upgrade``."""

from __future__ import annotations

import argparse

from mailserver.cli.common import SubParsers, redact_url, with_store
from mailserver.config import Config
from storage.api import MailStore


def register(sub: SubParsers, common: argparse.ArgumentParser) -> None:
    db = sub.add_parser("db", parents=[common], help="database schema")
    actions = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = actions.add_parser("upgrade", parents=[common], help="apply schema migrations")
    upgrade.set_defaults(action=_upgrade)


async def _upgrade(config: Config, args: argparse.Namespace) -> int:
    async def run(store: MailStore) -> int:
        # Opening the store applied the migrations.
        print(f"database schema is up to date ({redact_url(config.storage_url)})")
        return 0

    return await with_store(config, run)
