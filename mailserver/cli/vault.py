"""``mailserver mail deleted|undelete`` and ``mailserver hold set|clear|list``:
deleted mail that can be brought back, and legal holds (mailserver/ops/vault.py,
storage/sql/vault.py)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from mailserver.cli.common import CliError, SubParsers, cli_actor, print_json, with_store
from mailserver.cli.errors import describe
from mailserver.config import Config
from mailserver.ops import vault
from storage.api import Hold, MailStore, StoreError
from storage.directory import By, open_directory


def register_mail(actions: SubParsers, common: argparse.ArgumentParser) -> None:
    """The vault's actions under ``mailserver mail``."""
    deleted = actions.add_parser(
        "deleted", parents=[common], help="an account's deleted mail that can still be brought back",
    )
    deleted.add_argument("address")
    deleted.add_argument("--since", default=None, metavar="DATE",
                         help="only mail deleted since (ISO date or date-time, UTC unless given)")
    deleted.add_argument("--json", action="store_true")
    deleted.set_defaults(action=_deleted)
    undelete = actions.add_parser(
        "undelete", parents=[common],
        help="put deleted messages back in their folders (IDs from `mail deleted`)",
    )
    undelete.add_argument("ids", nargs="+", type=int, metavar="ID")
    undelete.add_argument("--actor", default="", help="who asks (default: the login name; audit log)")
    undelete.add_argument("--json", action="store_true")
    undelete.set_defaults(action=_undelete)


def register(sub: SubParsers, common: argparse.ArgumentParser) -> None:
    hold = sub.add_parser(
        "hold", parents=[common], help="legal holds: keep every message of a mailbox or an agency",
    )
    actions = hold.add_subparsers(dest="hold_command", required=True, metavar="ACTION")
    set_ = actions.add_parser(
        "set", parents=[common],
        help="keep everything of ADDRESS (a mailbox) or AGENCY (its mailbox and its persons')",
    )
    set_.add_argument("target", metavar="ADDRESS|AGENCY")
    set_.add_argument("--reason", required=True, help="why (shown in refusals, kept in the audit log)")
    _by_options(set_)
    set_.set_defaults(action=_hold_set)
    clear = actions.add_parser("clear", parents=[common], help="end a hold")
    clear.add_argument("target", metavar="ADDRESS|AGENCY")
    _by_options(clear)
    clear.set_defaults(action=_hold_clear)
    listing = actions.add_parser("list", parents=[common], help="holds in force")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(action=_hold_list)


def _by_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--decision", default="", metavar="SỐ", help="decision executed (audit log)")
    parser.add_argument("--actor", default="", help="who makes the change (default: the login name)")
    parser.add_argument("--json", action="store_true")


def _by(args: argparse.Namespace) -> By:
    return By(actor=args.actor or cli_actor(), decision=getattr(args, "decision", "") or "")


def _since(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CliError(
            f"--since: không phải ngày ISO (YYYY-MM-DD) / not an ISO date: {text!r}"
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def _size(octets: int) -> str:
    if octets < 1024:
        return f"{octets} B"
    if octets < 1024 * 1024:
        return f"{octets / 1024:.1f} KB"
    return f"{octets / (1024 * 1024):.1f} MB"


async def _deleted(config: Config, args: argparse.Namespace) -> int:
    since = _since(args.since)

    async def run(store: MailStore) -> int:
        account = await store.get_account(args.address)
        if account is None:
            raise CliError(f"không có tài khoản {args.address} / no such account {args.address}")
        entries = await store.deleted_messages(account.id, since=since)
        if args.json:
            print_json([vault.as_json(e) for e in entries])
            return 0
        days = config.retention.deleted_days
        holds = await store.holds_on(account.id)
        for e in entries:
            print(f"{e.id}\t{e.folder}\t{e.internal_date:%Y-%m-%d %H:%M}\t{e.from_[:40]}\t{e.subject[:60]}\t"
                  f"{_size(e.size)}\t{e.deleted_at:%Y-%m-%d %H:%M}")
        kept = (
            "giữ nguyên trạng / on hold: kept until the hold ends" if holds
            else f"giữ {days} ngày / kept {days} days"
        )
        print(f"{len(entries)} thư đã xóa / deleted message(s) of {account.address} ({kept})")
        return 0

    return await with_store(config, run)


async def _undelete(config: Config, args: argparse.Namespace) -> int:
    async def run(store: MailStore) -> int:
        try:
            restored = await vault.restore(store, open_directory(store), args.ids, by=_by(args))
        except StoreError as exc:
            raise CliError(describe(exc)) from None
        if args.json:
            print_json([
                {"id": r.id, "account_id": r.account_id, "folder": r.folder, "uid": int(r.uid),
                 "recreated": r.recreated}
                for r in restored
            ])
            return 0
        for r in restored:
            again = " (thư mục được tạo lại / folder created again)" if r.recreated else ""
            print(f"đã khôi phục / restored {r.id} → {r.folder} uid {r.uid}{again}")
        return 0

    return await with_store(config, run)


def _hold_dict(hold: Hold) -> dict[str, object]:
    return {"scope": hold.scope, "target": hold.target, "reason": hold.reason, "set_by": hold.set_by,
            "set_at": hold.set_at.isoformat()}


async def _hold_set(config: Config, args: argparse.Namespace) -> int:
    reason = args.reason.strip()
    if not reason:
        raise CliError("--reason không được để trống / --reason must not be empty")

    async def run(store: MailStore) -> int:
        try:
            hold = await vault.set_hold(store, open_directory(store), args.target, reason, by=_by(args))
        except StoreError as exc:
            raise CliError(describe(exc)) from None
        if args.json:
            print_json(_hold_dict(hold))
        else:
            what = "hộp thư / mailbox" if hold.scope == "address" else "cơ quan / agency"
            print(f"giữ nguyên trạng / on hold: {what} {hold.target} ({hold.reason}): thư đã xóa không bị "
                  "dọn, hộp thư không bị xóa / deleted mail is kept, the mailbox is never deleted")
        return 0

    return await with_store(config, run)


async def _hold_clear(config: Config, args: argparse.Namespace) -> int:
    async def run(store: MailStore) -> int:
        try:
            hold = await vault.clear_hold(store, open_directory(store), args.target, by=_by(args))
        except StoreError as exc:
            raise CliError(describe(exc)) from None
        if args.json:
            print_json(_hold_dict(hold))
        else:
            print(f"đã bỏ giữ nguyên trạng / hold cleared: {hold.target} ({hold.reason})")
        return 0

    return await with_store(config, run)


async def _hold_list(config: Config, args: argparse.Namespace) -> int:
    async def run(store: MailStore) -> int:
        holds = await store.list_holds()
        if args.json:
            print_json([_hold_dict(h) for h in holds])
            return 0
        for h in holds:
            print(f"{h.scope}\t{h.target}\t{h.set_at:%Y-%m-%d %H:%M}\t{h.set_by}\t{h.reason}")
        print(f"{len(holds)} lệnh giữ nguyên trạng / hold(s)")
        return 0

    return await with_store(config, run)
