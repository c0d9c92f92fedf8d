"""``mailserver passwd ADDRESS``, ``mailserver account reset-password ADDRESS`` and
``mailserver account warn-expiring``: passwords (Decision 70/2009/QĐ-UBND Điều 9
khoản 1: change the initial password, change it regularly; Điều 7 khoản 1: the
Sở TT&TT issues initial passwords)."""

from __future__ import annotations

import argparse
import getpass
import sys

from mailserver.cli.common import CliError, SubParsers, print_json
from mailserver.cli.directory import add_change_options, by_of, with_service
from mailserver.config import Config
from mailserver.directory.passwords import PasswordRejected, change_password, reset_password
from mailserver.directory.service import DirectoryService
from mailserver.directory.tasks import run_password_warnings


def register(sub: SubParsers, common: argparse.ArgumentParser) -> None:
    passwd = sub.add_parser(
        "passwd",
        parents=[common],
        help="change your password (old, then new twice on a terminal; two lines old/new on stdin otherwise)",
    )
    passwd.add_argument("address")
    passwd.add_argument("--json", action="store_true", help="machine-readable output")
    passwd.set_defaults(action=_passwd)


def register_account_actions(actions: SubParsers, common: argparse.ArgumentParser) -> None:
    """Sub-commands of ``mailserver account`` that live here."""
    reset = actions.add_parser("reset-password", parents=[common], help="issue a new initial password")
    reset.add_argument("address")
    add_change_options(reset)
    reset.set_defaults(action=_reset)
    warn = actions.add_parser(
        "warn-expiring", parents=[common], help="deliver password expiry warnings now (serve does it hourly)"
    )
    warn.add_argument("--json", action="store_true", help="machine-readable output")
    warn.set_defaults(action=_warn)


def _read_passwords() -> tuple[str, str]:
    if sys.stdin.isatty():
        old = getpass.getpass("Mật khẩu cũ / old password: ")
        new = getpass.getpass("Mật khẩu mới / new password: ")
        again = getpass.getpass("Nhập lại / repeat new password: ")
        if new != again:
            raise CliError("the two new passwords differ")
        return old, new
    lines = sys.stdin.read().splitlines()
    if len(lines) < 2 or not lines[0] or not lines[1]:
        raise CliError("expected two lines on standard input: the old password, then the new one")
    return lines[0], lines[1]


async def _passwd(config: Config, args: argparse.Namespace) -> int:
    old, new = _read_passwords()

    async def run(service: DirectoryService) -> int:
        try:
            account = await change_password(
                service.store, service.directory, config.accounts, args.address, old, new
            )
        except PasswordRejected as exc:
            if args.json:
                print_json({"changed": False, "reasons": exc.reasons})
            else:
                for reason in exc.reasons:
                    print(f"mailserver: {reason}", file=sys.stderr)
            raise CliError("password not changed") from None
        if args.json:
            print_json({"changed": True, "address": account.address})
        else:
            print(f"password of {account.address} changed")
        return 0

    return await with_service(config, run)


async def _reset(config: Config, args: argparse.Namespace) -> int:
    async def run(service: DirectoryService) -> int:
        password = await reset_password(
            service.store, service.directory, config.accounts, args.address, by=by_of(args)
        )
        address = args.address.strip().lower()
        if args.json:
            print_json({"address": address, "initial_password": password, "must_change_password": True})
        else:
            print(f"new initial password of {address}: {password}")
            print("the password must be changed before the next login")
        return 0

    return await with_service(config, run)


async def _warn(config: Config, args: argparse.Namespace) -> int:
    async def run(service: DirectoryService) -> int:
        warned = await run_password_warnings(config, service.store)
        if args.json:
            print_json({"warned": warned})
        else:
            for address in warned:
                print(f"warned {address}")
            print(f"{len(warned)} warning(s) delivered")
        return 0

    return await with_service(config, run)
