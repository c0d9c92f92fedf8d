"""``mailserver search reindex [ADDRESS|--all]`` and ``mailserver search status``:
the full-text index of existing mail (mailserver/search/, storage/sql/fulltext.py)."""

from __future__ import annotations

import argparse

from mailserver.cli.common import CliError, SubParsers, print_json, with_store
from mailserver.config import Config
from mailserver.search.indexer import Indexer
from mailserver.transfer.progress import Progress
from policy.pipeline import limits_of
from storage.api import IndexStatus, MailStore


def register(sub: SubParsers, common: argparse.ArgumentParser) -> None:
    search = sub.add_parser("search", parents=[common], help="the full-text search index")
    actions = search.add_subparsers(dest="search_command", required=True, metavar="ACTION")
    reindex = actions.add_parser(
        "reindex",
        parents=[common],
        help="index again every message of ADDRESS (or of every mailbox with --all), with a progress bar",
    )
    which = reindex.add_mutually_exclusive_group(required=True)
    which.add_argument("address", nargs="?", metavar="ADDRESS")
    which.add_argument("--all", action="store_true", help="every mailbox")
    reindex.set_defaults(action=_reindex)
    status = actions.add_parser(
        "status", parents=[common], help="messages waiting, messages indexed, index size"
    )
    status.add_argument("--json", action="store_true")
    status.set_defaults(action=_status)


async def _reindex(config: Config, args: argparse.Namespace) -> int:
    async def run(store: MailStore) -> int:
        account_id = None
        if not args.all:
            account = await store.get_account(args.address)
            if account is None:
                raise CliError(f"không có tài khoản {args.address} / no such account {args.address}")
            account_id = account.id
        queued = await store.queue_reindex(account_id)
        # Index here rather than leave it to the server: the bar shows the work being done.
        # A running server's indexer shares the list; an entry is replaced, never doubled.
        total = (await store.index_status()).pending
        progress = Progress("lập chỉ mục / indexing", total)
        indexer = Indexer(store, limits_of(config.policy), config.search)
        try:
            while done := await indexer.run_once():
                progress.advance(done)
        finally:
            indexer.close()
        progress.finish()
        print(f"{queued} thư được lập chỉ mục lại / message(s) re-indexed")
        return 0

    return await with_store(config, run)


def _share(status: IndexStatus) -> float:
    return status.index_bytes / status.message_bytes if status.message_bytes else 0.0


async def _status(config: Config, args: argparse.Namespace) -> int:
    async def run(store: MailStore) -> int:
        status = await store.index_status()
        if args.json:
            print_json(
                {
                    "pending": status.pending,
                    "indexed": status.indexed,
                    "index_bytes": status.index_bytes,
                    "message_bytes": status.message_bytes,
                    "index_share": round(_share(status), 4),
                }
            )
            return 0
        print(f"chờ lập chỉ mục / pending: {status.pending}")
        print(f"đã lập chỉ mục / indexed: {status.indexed}")
        print(
            f"kích thước chỉ mục / index size: {status.index_bytes} B "
            f"({_share(status):.1%} của thư / of {status.message_bytes} B of messages)"
        )
        return 0

    return await with_store(config, run)
