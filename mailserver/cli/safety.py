"""``mailserver account app-password add|list|revoke`` and ``mailserver account logins``:
per-device passwords and the login history of an account."""

from __future__ import annotations

import argparse
from typing import Any

from mailserver.apppasswords import (
    LOCAL_TIME,
    AppPasswordError,
    create_app_password,
    local_time,
    parse_scopes,
)
from mailserver.cli.common import CliError, SubParsers, cli_actor, print_json, with_store
from mailserver.config import Config
from storage.api import Account, MailStore
from storage.credentials import SCOPES, DuplicateName, credentials_for
from storage.directory import By, open_directory


def register_account_actions(actions: SubParsers, common: argparse.ArgumentParser) -> None:
    app = actions.add_parser(
        "app-password", parents=[common], help="app passwords: one per device, shown once, revocable"
    )
    app_actions = app.add_subparsers(dest="app_password_command", required=True, metavar="ACTION")
    add = app_actions.add_parser("add", parents=[common], help="create one and print it (once)")
    add.add_argument("address")
    add.add_argument("--name", required=True, help="the device, e.g. 'Điện thoại'")
    add.add_argument(
        "--scope", default=",".join(SCOPES),
        help=f"protocols it opens, comma-separated (default {','.join(SCOPES)})",
    )
    add.set_defaults(action=_add)
    lst = app_actions.add_parser("list", parents=[common], help="list an account's app passwords")
    lst.add_argument("address")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    lst.set_defaults(action=_list)
    revoke = app_actions.add_parser("revoke", parents=[common], help="revoke one by name")
    revoke.add_argument("address")
    revoke.add_argument("name")
    revoke.set_defaults(action=_revoke)
    logins = actions.add_parser("logins", parents=[common], help="the latest logins of an account")
    logins.add_argument("address")
    logins.add_argument("--json", action="store_true", help="machine-readable output")
    logins.set_defaults(action=_logins)


async def _account(store: MailStore, address: str) -> Account:
    account = await store.get_account(address.strip().lower())
    if account is None:
        raise CliError(f"no such account: {address}")
    return account


async def _add(config: Config, args: argparse.Namespace) -> int:
    try:
        scopes = parse_scopes(args.scope)
    except AppPasswordError as exc:
        raise CliError(str(exc)) from None

    async def run(store: MailStore) -> int:
        account = await _account(store, args.address)
        domain = config.directory.domain or config.server.domains[0]
        try:
            app, secret = await create_app_password(
                store, credentials_for(store), account, args.name, scopes,
                sender=f"postmaster@{domain}", hostname=config.server.hostname,
            )
        except AppPasswordError as exc:
            raise CliError(str(exc)) from None
        except DuplicateName:
            raise CliError(
                f"đã có mật khẩu ứng dụng tên {args.name!r} / an app password named {args.name!r} exists"
            ) from None
        await open_directory(store).audit(
            "account.app-password.add", account.address, by=By(cli_actor()),
            detail={"name": app.name, "scopes": list(app.scopes)},
        )
        print(f"app password {app.name!r} for {account.address} ({', '.join(app.scopes)}):")
        # Printed once, never stored in clear.
        print(secret)
        return 0

    return await with_store(config, run)


async def _list(config: Config, args: argparse.Namespace) -> int:
    async def run(store: MailStore) -> int:
        account = await _account(store, args.address)
        apps = await credentials_for(store).list_app_passwords(account.id)
        rows: list[dict[str, Any]] = [
            {"name": a.name, "scopes": list(a.scopes), "created_at": a.created_at.isoformat(),
             "last_used_at": a.last_used_at.isoformat() if a.last_used_at else None,
             "last_used_ip": a.last_used_ip}
            for a in apps
        ]
        if args.json:
            print_json(rows)
        elif not apps:
            print(f"{account.address}: chưa có mật khẩu ứng dụng / no app passwords")
        for a in apps if not args.json else []:
            used = f"{local_time(a.last_used_at)} {a.last_used_ip}" if a.last_used_at else "never used"
            print(f"{a.name}\t{','.join(a.scopes)}\tcreated {local_time(a.created_at)}\t{used}")
        return 0

    return await with_store(config, run)


async def _revoke(config: Config, args: argparse.Namespace) -> int:
    async def run(store: MailStore) -> int:
        account = await _account(store, args.address)
        if not await credentials_for(store).revoke_app_password(account.id, args.name):
            raise CliError(
                f"không có mật khẩu ứng dụng tên {args.name!r} / no app password named {args.name!r}"
            )
        await open_directory(store).audit(
            "account.app-password.revoke", account.address, by=By(cli_actor()), detail={"name": args.name}
        )
        print(f"revoked {args.name!r} of {account.address}")
        return 0

    return await with_store(config, run)


async def _logins(config: Config, args: argparse.Namespace) -> int:
    async def run(store: MailStore) -> int:
        account = await _account(store, args.address)
        events = await credentials_for(store).logins(account.id)
        if args.json:
            print_json([
                {"at": e.at.astimezone(LOCAL_TIME).isoformat(), "remote_ip": e.remote_ip,
                 "protocol": e.protocol,
                 "client": e.client, "success": e.success, "detail": e.detail}
                for e in events
            ])
            return 0
        if not events:
            print(f"{account.address}: chưa có lần đăng nhập / no logins recorded")
        for e in events:
            result = "thành công/ok" if e.success else f"thất bại/failed ({e.detail})"
            print(f"{local_time(e.at)}\t{e.remote_ip}\t{e.protocol}\t{e.client or '-'}\t{result}")
        return 0

    return await with_store(config, run)

