"""The ``mailserver`` command: serve, database and account administration.

Commands, flags and their output are a public interface operators script
against: add to them freely, never rename.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Final

from mailserver import config as config_mod
from mailserver.auth import generate_password, hash_password
from mailserver.config import Config, ConfigError
from storage import open_store
from storage.api import Account, AccountExists, MailStore, NoSuchAccount

# RFC 5321 section 4.1.2 Dot-string local part, restricted to what we issue.
_LOCAL_PART: Final = re.compile(r"^[a-z0-9](?:[a-z0-9._+-]{0,62}[a-z0-9])?$")
MIN_PASSWORD_LENGTH: Final = 10


class CliError(Exception):
    """An operator mistake: printed as one line, exit status 1."""


def _add_config_option(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=default,
        help="configuration file (TOML); default: $MAILSERVER_CONFIG, else built-in defaults",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mailserver", description="Mail server for the state agencies of Dong Nai province."
    )
    _add_config_option(parser, None)
    # Sub-commands accept --config too (after the command), without overriding
    # a value given before it.
    common = argparse.ArgumentParser(add_help=False)
    _add_config_option(common, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("serve", parents=[common], help="run the SMTP and IMAP listeners until stopped")

    db = sub.add_parser("db", parents=[common], help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_sub.add_parser("upgrade", parents=[common], help="apply schema migrations (also done at start)")

    account = sub.add_parser("account", parents=[common], help="mail accounts")
    acc_sub = account.add_subparsers(dest="account_command", required=True, metavar="ACTION")
    add = acc_sub.add_parser("add", parents=[common], help="create an account")
    add.add_argument("address")
    add.add_argument("--name", default="", help="display name, e.g. 'Nguyễn Văn An'")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input instead of generating one",
    )
    add.add_argument(
        "--no-change-required",
        action="store_true",
        help="do not force a password change at first login",
    )
    lst = acc_sub.add_parser("list", parents=[common], help="list accounts")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    delete = acc_sub.add_parser("delete", parents=[common], help="delete an account and all its mail")
    delete.add_argument("address")
    show = acc_sub.add_parser("show", parents=[common], help="show one account")
    show.add_argument("address")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def normalise_address(address: str, config: Config) -> str:
    local, sep, domain = address.strip().lower().rpartition("@")
    if not sep or not _LOCAL_PART.match(local):
        raise CliError(f"not a valid address: {address!r}")
    if not config.is_local_domain(domain):
        domains = ", ".join(config.server.domains)
        raise CliError(f"{domain!r} is not a local domain (server.domains: {domains})")
    return f"{local}@{domain}"


def _account_dict(account: Account, used: int | None = None, messages: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "address": account.address,
        "name": account.name,
        "must_change_password": account.must_change_password,
        "disabled": account.disabled,
        "created_at": account.created_at.isoformat(),
        "password_changed_at": account.password_changed_at.isoformat()
        if account.password_changed_at
        else None,
        "last_login_at": account.last_login_at.isoformat() if account.last_login_at else None,
    }
    if used is not None:
        data["storage_used"] = used
        data["messages"] = messages
    return data


async def _with_store(config: Config, action: Callable[[MailStore], Awaitable[int]]) -> int:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(config.storage_url, config.maildir, quota_bytes=config.storage.quota or None)
    await store.start()
    try:
        return await action(store)
    finally:
        await store.close()


def _read_password_stdin() -> str:
    line = sys.stdin.readline()
    password = line.rstrip("\r\n")
    if not password:
        raise CliError("no password on standard input")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise CliError(f"password too short: at least {MIN_PASSWORD_LENGTH} characters")
    return password


async def _account_add(config: Config, args: argparse.Namespace) -> int:
    address = normalise_address(args.address, config)
    generated = not args.password_stdin
    password = generate_password() if generated else _read_password_stdin()
    must_change = not args.no_change_required
    password_hash = await asyncio.to_thread(hash_password, password)

    async def run(store: MailStore) -> int:
        try:
            account = await store.create_account(
                address, args.name, password_hash, must_change_password=must_change
            )
        except AccountExists:
            raise CliError(f"account exists: {address}") from None
        print(f"created {account.address}")
        if generated:
            # Printed once, never stored in clear: the operator hands it over.
            print(f"initial password: {password}")
        if must_change:
            print("the password must be changed before the first login")
        return 0

    return await _with_store(config, run)


async def _account_list(config: Config, args: argparse.Namespace) -> int:
    async def run(store: MailStore) -> int:
        accounts = await store.list_accounts()
        if args.json:
            print(json.dumps([_account_dict(a) for a in accounts], ensure_ascii=False, indent=2))
        else:
            for a in accounts:
                state = "disabled" if a.disabled else ("must-change" if a.must_change_password else "active")
                print(f"{a.address}\t{state}\t{a.name}")
        return 0

    return await _with_store(config, run)


async def _account_show(config: Config, args: argparse.Namespace) -> int:
    address = args.address.strip().lower()

    async def run(store: MailStore) -> int:
        account = await store.get_account(address)
        if account is None:
            raise CliError(f"no such account: {address}")
        quota = await store.quota(account.id)
        data = _account_dict(account, quota.storage_used, quota.messages_used)
        if args.json:
            print(json.dumps(data, ensure_ascii=False, indent=2))
        else:
            for key, value in data.items():
                print(f"{key}: {value}")
        return 0

    return await _with_store(config, run)


async def _account_delete(config: Config, args: argparse.Namespace) -> int:
    address = args.address.strip().lower()

    async def run(store: MailStore) -> int:
        try:
            await store.delete_account(address)
        except NoSuchAccount:
            raise CliError(f"no such account: {address}") from None
        print(f"deleted {address}")
        return 0

    return await _with_store(config, run)


async def _db_upgrade(config: Config, args: argparse.Namespace) -> int:
    async def run(store: MailStore) -> int:
        # start() applied the migrations already.
        print(f"database schema is up to date ({_redact(config.storage_url)})")
        return 0

    return await _with_store(config, run)


def _redact(url: str) -> str:
    """Hide a password in a database URL before printing it."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def _serve(config: Config) -> int:
    from mailserver.app import serve

    asyncio.run(serve(config))
    return 0


_Action = Callable[[Config, argparse.Namespace], Coroutine[Any, Any, int]]
_ACTIONS: Final[dict[tuple[str, str | None], _Action]] = {
    ("account", "add"): _account_add,
    ("account", "list"): _account_list,
    ("account", "show"): _account_show,
    ("account", "delete"): _account_delete,
    ("db", "upgrade"): _db_upgrade,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = config_mod.load(args.config)
    except ConfigError as exc:
        print(f"mailserver: configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=getattr(logging, config.server.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "serve":
            return _serve(config)
        sub = getattr(args, f"{args.command}_command", None)
        return asyncio.run(_ACTIONS[(args.command, sub)](config, args))
    except CliError as exc:
        print(f"mailserver: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        # Unreachable database, unwritable data dir, port in use: one line, no traceback.
        print(f"mailserver: {exc}", file=sys.stderr)
        return 1
