"""``mailserver account set ADDRESS --cert-login on|off``: account options
(certificate login, SASL EXTERNAL: mailserver/certlogin.py)."""

from __future__ import annotations

import argparse

from mailserver.cli.common import CliError, SubParsers, cli_actor, with_store
from mailserver.config import Config
from storage.api import MailStore
from storage.directory import By, open_directory


def register_account_actions(actions: SubParsers, common: argparse.ArgumentParser) -> None:
    set_ = actions.add_parser("set", parents=[common], help="change options of an account")
    set_.add_argument("address")
    set_.add_argument(
        "--cert-login", choices=("on", "off"),
        help="allow signing in to IMAP and submission with a TLS client certificate of our CA "
        "or an imported one (SASL EXTERNAL)",
    )
    set_.set_defaults(action=_account_set)


async def _account_set(config: Config, args: argparse.Namespace) -> int:
    address = args.address.strip().lower()
    if args.cert_login is None:
        raise CliError("nothing to change: give --cert-login on|off (chưa chọn thay đổi)")
    enabled = args.cert_login == "on"

    async def run(store: MailStore) -> int:
        account = await store.get_account(address)
        if account is None:
            raise CliError(f"no such account: {address} (không có tài khoản)")
        await store.set_cert_login(account.id, enabled)
        await open_directory(store).audit(
            "account.set", account.address, by=By(cli_actor()), detail={"cert_login": enabled}
        )
        state = "bật / on" if enabled else "tắt / off"
        print(f"{account.address}: đăng nhập bằng chứng thư số / certificate login: {state}")
        return 0

    return await with_store(config, run)
