"""``mailserver quarantine list|show|release|delete``: mail held by the policy
pipeline (``storage/quarantine.py``, under ``<data_dir>/quarantine``)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict

from mailserver.cli.common import CliError, SubParsers, cli_actor, print_json, with_store
from mailserver.config import Config
from mailserver.ops import admin
from storage.api import MailStore
from storage.directory import By, open_directory
from storage.quarantine import FileQuarantine, NoSuchEntry


def register(sub: SubParsers, common: argparse.ArgumentParser) -> None:
    q = sub.add_parser("quarantine", parents=[common], help="messages held by the content policy")
    actions = q.add_subparsers(dest="quarantine_command", required=True, metavar="ACTION")
    lst = actions.add_parser("list", parents=[common], help="list held messages")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    lst.set_defaults(action=_list)
    show = actions.add_parser("show", parents=[common], help="metadata and the message of one entry")
    show.add_argument("id")
    show.add_argument("--raw", action="store_true", help="print only the message bytes")
    show.set_defaults(action=_show)
    release = actions.add_parser(
        "release", parents=[common], help="deliver to the original local recipients, then remove"
    )
    release.add_argument("id")
    release.set_defaults(action=_release)
    delete = actions.add_parser("delete", parents=[common], help="remove without delivering")
    delete.add_argument("id")
    delete.set_defaults(action=_delete)


def quarantine_of(config: Config) -> FileQuarantine:
    return FileQuarantine(config.data_dir / "quarantine")


async def _list(config: Config, args: argparse.Namespace) -> int:
    entries = quarantine_of(config).list()
    if args.json:
        print_json([asdict(e) for e in entries])
    else:
        for e in entries:
            reason = e.reasons[0] if e.reasons else ""
            print(f"{e.id}\t{e.sender or '<>'}\t{','.join(e.recipients)}\t{reason[:100]}")
    return 0


async def _show(config: Config, args: argparse.Namespace) -> int:
    try:
        entry, data = quarantine_of(config).get(args.id)
    except NoSuchEntry:
        raise CliError(f"no such quarantine entry: {args.id}") from None
    if args.raw:
        sys.stdout.buffer.write(data)
        return 0
    print_json(asdict(entry))
    print()
    print(data.decode("utf-8", "replace"))
    return 0


async def _release(config: Config, args: argparse.Namespace) -> int:
    quarantine = quarantine_of(config)

    async def run(store: MailStore) -> int:
        try:
            released = await admin.release_held(
                store, quarantine, open_directory(store), args.id, by=By(cli_actor())
            )
        except NoSuchEntry:
            raise CliError(f"no such quarantine entry: {args.id}") from None
        missing = ", ".join(released.missing)
        if not released.delivered:
            raise CliError(f"no local recipient left for {args.id}: {missing}")
        print(f"released {args.id} to {released.delivered} mailbox(es)")
        if missing:
            print(f"not delivered (no such local account): {missing}")
        return 0

    return await with_store(config, run)


async def _delete(config: Config, args: argparse.Namespace) -> int:
    async def run(store: MailStore) -> int:
        try:
            await admin.delete_held(quarantine_of(config), open_directory(store), args.id, by=By(cli_actor()))
        except NoSuchEntry:
            raise CliError(f"no such quarantine entry: {args.id}") from None
        print(f"deleted {args.id}")
        return 0

    return await with_store(config, run)
