"""``mailserver account add|list|show|delete|set-quota|set``: mail accounts."""

from __future__ import annotations

import argparse
import asyncio
import re
from typing import Any, Final

from mailserver.auth import generate_password, hash_password
from mailserver.cli.common import CliError, SubParsers, cli_actor, print_json, read_stdin_line, with_store
from mailserver.config import Config
from mailserver.directory.addressing import Addressing
from storage.api import Account, AccountExists, MailStore, NoSuchAccount, OnHold
from storage.directory import AddressState, By, open_directory

# RFC 5321 section 4.1.2 Dot-string local part, restricted to what we issue.
_LOCAL_PART: Final = re.compile(r"^[a-z0-9](?:[a-z0-9._+-]{0,62}[a-z0-9])?$")
_SIZE: Final = re.compile(r"(\d+)\s*([KMGT]?)(?:I?B)?", re.IGNORECASE)
_UNITS: Final = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
MAX_QUOTA: Final = 1 << 60
MIN_PASSWORD_LENGTH: Final = 10


def register(sub: SubParsers, common: argparse.ArgumentParser) -> None:
    account = sub.add_parser("account", aliases=["accounts"], parents=[common], help="mail accounts")
    actions = account.add_subparsers(dest="account_command", required=True, metavar="ACTION")
    add = actions.add_parser("add", parents=[common], help="create an account")
    add.add_argument("address")
    add.add_argument("--name", default="", help="display name, e.g. 'Nguyễn Văn An'")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input instead of generating one",
    )
    add.add_argument(
        "--no-change-required", action="store_true", help="do not force a password change at first login"
    )
    add.set_defaults(action=_account_add)
    lst = actions.add_parser("list", parents=[common], help="list accounts")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    lst.set_defaults(action=_account_list)
    show = actions.add_parser("show", parents=[common], help="show one account")
    show.add_argument("address")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(action=_account_show)
    delete = actions.add_parser("delete", parents=[common], help="delete an account and all its mail")
    delete.add_argument("address")
    delete.set_defaults(action=_account_delete)
    quota = actions.add_parser(
        "set-quota", parents=[common], help="storage quota of an account or agency mailbox (RFC 9208)"
    )
    quota.add_argument("address")
    quota.add_argument(
        "size", metavar="SIZE",
        help="octets, or with a K, M, G or T suffix (binary: 1M = 1024 KiB), e.g. 500M, 2G; "
        "0 = unlimited; 'default' = follow storage.quota",
    )
    quota.set_defaults(action=_account_set_quota)
    from mailserver.cli import passwords  # the directory's password commands: reset-password, warn-expiring

    passwords.register_account_actions(actions, common)
    from mailserver.cli import safety  # app passwords and login history

    safety.register_account_actions(actions, common)
    from mailserver.cli import certlogin  # account set --cert-login

    certlogin.register_account_actions(actions, common)


def normalise_address(address: str, config: Config, added: tuple[str, ...] = ()) -> str:
    """``address`` lower-case, in a configured domain or one of ``added``
    (domains added with ``mailserver domain add``, not alias domains)."""
    local, sep, domain = address.strip().lower().rpartition("@")
    if not sep or not _LOCAL_PART.match(local):
        raise CliError(f"not a valid address: {address!r}")
    if not config.is_local_domain(domain) and domain.rstrip(".") not in added:
        domains = ", ".join([*config.server.domains, *added])
        raise CliError(f"{domain!r} is not a local domain (server.domains, domain add: {domains})")
    return f"{local}@{domain}"


async def _added_domains(config: Config) -> tuple[str, ...]:
    """Local (not alias) domains added with ``mailserver domain add``."""

    async def run(store: MailStore) -> int:
        found.extend(d.name for d in await Addressing(store, config).domains() if not d.alias_of)
        return 0

    found: list[str] = []
    await with_store(config, run)
    return tuple(found)


def parse_size(text: str) -> int | None:
    """``500M``, ``2G``, ``1048576``, ``0`` -> octets (0: unlimited); ``default`` -> None.
    Raises CliError naming what is accepted."""
    value = text.strip()
    if value.lower() == "default":
        return None
    match = _SIZE.fullmatch(value)
    if match is None:
        raise CliError(
            f"not a size: {text!r} (octets, or a number with K, M, G or T, e.g. 500M or 2G; "
            "0 = unlimited; 'default' = storage.quota)"
        )
    octets = int(match.group(1)) * _UNITS[match.group(2).upper()]
    if octets > MAX_QUOTA:
        raise CliError(f"size too large: {text!r}")
    return octets


def human_size(octets: int) -> str:
    for unit in ("T", "G", "M", "K"):
        if octets >= _UNITS[unit] and octets % _UNITS[unit] == 0:
            return f"{octets // _UNITS[unit]}{unit}"
    return str(octets)


def _account_dict(
    account: Account, used: int | None = None, messages: int | None = None, limit: int | None = None
) -> dict[str, Any]:
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
        "cert_login": account.cert_login,
    }
    if used is not None:
        data["storage_used"] = used
        data["messages"] = messages
        data["quota"] = limit  # octets allowed; None: unlimited
        data["quota_source"] = "default" if account.quota_bytes is None else "account"
    return data


def _read_password_stdin() -> str:
    password = read_stdin_line()
    if not password:
        raise CliError("no password on standard input")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise CliError(f"password too short: at least {MIN_PASSWORD_LENGTH} characters")
    return password


async def _account_add(config: Config, args: argparse.Namespace) -> int:
    local_domain = config.is_local_domain(args.address.strip().rpartition("@")[2])
    address = normalise_address(args.address, config, () if local_domain else await _added_domains(config))
    generated = not args.password_stdin
    password = generate_password() if generated else _read_password_stdin()
    must_change = not args.no_change_required
    password_hash = await asyncio.to_thread(hash_password, password)

    async def run(store: MailStore) -> int:
        # Decision 70/2009 Điều 4: an address the directory retired is never issued again.
        entry = await open_directory(store).lookup_address(address)
        if entry is not None and entry.state is not AddressState.ACTIVE:
            raise CliError(f"{address} is {entry.state} in the directory and is never issued again")
        try:
            account = await store.create_account(
                address, args.name, password_hash, must_change_password=must_change
            )
        except AccountExists:
            raise CliError(f"account exists: {address}") from None
        await open_directory(store).audit("account.add", account.address, by=By(cli_actor()))
        print(f"created {account.address}")
        if generated:
            # Printed once, never stored in clear: the operator hands it over.
            print(f"initial password: {password}")
        if must_change:
            print("the password must be changed before the first login")
        return 0

    return await with_store(config, run)


async def _account_list(config: Config, args: argparse.Namespace) -> int:
    async def run(store: MailStore) -> int:
        accounts = await store.list_accounts()
        if args.json:
            print_json([_account_dict(a) for a in accounts])
        else:
            for a in accounts:
                state = "disabled" if a.disabled else ("must-change" if a.must_change_password else "active")
                print(f"{a.address}\t{state}\t{a.name}")
        return 0

    return await with_store(config, run)


async def _account_show(config: Config, args: argparse.Namespace) -> int:
    address = args.address.strip().lower()

    async def run(store: MailStore) -> int:
        account = await store.get_account(address)
        if account is None:
            raise CliError(f"no such account: {address}")
        quota = await store.quota(account.id)
        data = _account_dict(account, quota.storage_used, quota.messages_used, quota.storage_limit)
        routes = await Addressing(store, config).for_address(account.address)
        data["aliases"] = routes.aliases
        data["alias_domain_addresses"] = routes.domains
        data["forward"] = (
            {"to": routes.forward.target, "keep_copy": routes.forward.keep_copy} if routes.forward else None
        )
        if args.json:
            print_json(data)
        else:
            for key, value in data.items():
                if key == "quota":
                    value = "unlimited" if value is None else f"{value} ({human_size(value)})"
                elif key in ("aliases", "alias_domain_addresses"):
                    value = ", ".join(value) or "-"
                elif key == "forward":
                    copy = " (keep copy)" if value and value["keep_copy"] else ""
                    value = "-" if value is None else value["to"] + copy
                print(f"{key}: {value}")
        return 0

    return await with_store(config, run)


async def _account_set_quota(config: Config, args: argparse.Namespace) -> int:
    address = args.address.strip().lower()
    limit = parse_size(args.size)

    async def run(store: MailStore) -> int:
        account = await store.get_account(address)
        if account is None:
            raise CliError(f"no such account: {address}")
        await store.set_quota(account.id, limit)
        await open_directory(store).audit(
            "account.set-quota", account.address, by=By(cli_actor()), detail={"quota": limit}
        )
        quota = await store.quota(account.id)
        shown = "unlimited" if quota.storage_limit is None else human_size(quota.storage_limit)
        source = " (storage.quota)" if limit is None else ""
        print(f"{account.address}: quota {shown}{source}, {quota.storage_used} octets used")
        return 0

    return await with_store(config, run)


async def _account_delete(config: Config, args: argparse.Namespace) -> int:
    address = args.address.strip().lower()

    async def run(store: MailStore) -> int:
        try:
            await store.delete_account(address)
        except NoSuchAccount:
            raise CliError(f"no such account: {address}") from None
        except OnHold as exc:
            raise CliError(str(exc)) from None
        await open_directory(store).audit("account.delete", address, by=By(cli_actor()))
        print(f"deleted {address}")
        return 0

    return await with_store(config, run)
