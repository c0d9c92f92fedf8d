"""``mailserver mailbox export|import``: one account to and from mbox, Maildir
and ``.eml`` files (mailserver/transfer/mailboxio.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mailserver.cli.common import CliError, SubParsers, print_json, with_store
from mailserver.config import Config
from mailserver.transfer.mailboxio import TransferError, TransferReport, export_mailbox, import_path
from storage.api import Account, MailStore


def register(sub: SubParsers, common: argparse.ArgumentParser) -> None:
    mailbox = sub.add_parser("mailbox", parents=[common], help="export and import a mailbox's mail")
    actions = mailbox.add_subparsers(dest="mailbox_command", required=True, metavar="ACTION")
    export = actions.add_parser(
        "export", parents=[common], help="write every folder of an account to mbox or Maildir files",
    )
    export.add_argument("address")
    export.add_argument("--format", choices=("mbox", "maildir"), required=True,
                        help="mbox: one FOLDER.mbox file per folder; maildir: one Maildir++ tree")
    export.add_argument("-o", "--output", metavar="DIR", required=True, help="an empty or new directory")
    export.add_argument("--json", action="store_true", help="print the summary as JSON")
    export.set_defaults(action=_export)
    imp = actions.add_parser(
        "import", parents=[common],
        help="add mail from an mbox file or tree, a Maildir, or .eml files (idempotent)",
    )
    imp.add_argument("address")
    imp.add_argument("path", metavar="PATH",
                     help="mbox file, directory of .mbox files, Maildir, .eml file(s)")
    imp.add_argument("--folder", metavar="FOLDER",
                     help="put the mail under this folder (default: INBOX for a single file, "
                     "the folders found otherwise)")
    imp.add_argument("--dry-run", action="store_true", help="report what would be imported; write nothing")
    imp.add_argument("--json", action="store_true", help="print the summary as JSON")
    imp.set_defaults(action=_import)


async def _account(store: MailStore, address: str) -> Account:
    account = await store.get_account(address)
    if account is None:
        raise CliError(f"không có tài khoản {address} / no such account {address}")
    return account


def _print(report: TransferReport, verb: str, as_json: bool) -> None:
    if as_json:
        print_json(report.as_json())
        return
    print(f"{report.address} ({report.kind}): {report.copied} {verb}, "
          f"{report.present} đã có / already there, {len(report.errors)} lỗi / errors")
    for folder in report.folders:
        where = folder.target if folder.target is not None else "— (bỏ qua / skipped)"
        print(f"  {folder.source} → {where}: {folder.copied}")
    for line in report.warnings:
        print(f"  cảnh báo / warning: {line}")
    for line in report.errors:
        print(f"  lỗi / error: {line}")


async def _export(config: Config, args: argparse.Namespace) -> int:
    async def run(store: MailStore) -> int:
        account = await _account(store, args.address)
        try:
            report = await export_mailbox(store, account, args.format, Path(args.output))
        except TransferError as exc:
            raise CliError(str(exc)) from None
        _print(report, "thư đã xuất / messages exported", args.json)
        return 0

    return await with_store(config, run)


async def _import(config: Config, args: argparse.Namespace) -> int:
    async def run(store: MailStore) -> int:
        account = await _account(store, args.address)
        try:
            report = await import_path(
                store, account, Path(args.path), folder=args.folder, dry_run=args.dry_run
            )
        except TransferError as exc:
            raise CliError(str(exc)) from None
        verb = "sẽ nhập / would import" if args.dry_run else "đã nhập / imported"
        _print(report, verb, args.json)
        if report.errors:
            print(f"mailserver: {len(report.errors)} thư lỗi / messages failed", file=sys.stderr)
        return 1 if report.errors else 0

    return await with_store(config, run)
