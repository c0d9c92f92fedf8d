"""``mailserver domain add|list|remove``, ``alias add|list|remove`` and
``forward set|clear|list``: local and alias domains, address aliases and
forwarding with SRS (mailserver/directory/addressing.py, routing.py). Every
change is in the audit log; ``account show`` lists what reaches an account."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any

from mailserver.cli.common import CliError, SubParsers, print_json, with_store
from mailserver.cli.directory import add_change_options, by_of
from mailserver.cli.errors import describe
from mailserver.config import Config
from mailserver.directory.addressing import Addressing
from storage.api import MailStore, StoreError
from storage.routes import AddressAlias, Domain, Forward


def register(sub: SubParsers, common: argparse.ArgumentParser) -> None:
    domain = sub.add_parser("domain", parents=[common], help="local and alias domains (tên miền)")
    verbs = domain.add_subparsers(dest="domain_command", required=True, metavar="ACTION")
    add = verbs.add_parser("add", parents=[common], help="another local domain, or an alias domain")
    add.add_argument("domain")
    add.add_argument(
        "--alias-of",
        default=None,
        metavar="DOMAIN",
        help="x@DOMAIN' is x@DOMAIN: delivery and sending (e.g. dongnai.gov.vn)",
    )
    add_change_options(add)
    add.set_defaults(action=_domain_add)
    rem = verbs.add_parser("remove", parents=[common], help="remove an added domain")
    rem.add_argument("domain")
    add_change_options(rem)
    rem.set_defaults(action=_domain_remove)
    lst = verbs.add_parser("list", parents=[common], help="configured and added domains")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    lst.set_defaults(action=_domain_list)

    alias = sub.add_parser("alias", parents=[common], help="address aliases (địa chỉ bí danh)")
    verbs = alias.add_subparsers(dest="alias_command", required=True, metavar="ACTION")
    add = verbs.add_parser("add", parents=[common], help="ALIAS delivers to TARGET (several allowed)")
    add.add_argument("alias", metavar="ALIAS")
    add.add_argument("targets", metavar="TARGET", nargs="+", help="local or agency address")
    add_change_options(add)
    add.set_defaults(action=_alias_add)
    rem = verbs.add_parser("remove", parents=[common], help="remove an alias, or one of its targets")
    rem.add_argument("alias", metavar="ALIAS")
    rem.add_argument("target", metavar="TARGET", nargs="?", default=None)
    add_change_options(rem)
    rem.set_defaults(action=_alias_remove)
    lst = verbs.add_parser("list", parents=[common], help="every alias, or one")
    lst.add_argument("alias", metavar="ALIAS", nargs="?", default=None)
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    lst.set_defaults(action=_alias_list)

    forward = sub.add_parser("forward", parents=[common], help="forwarding to outside addresses (SRS)")
    verbs = forward.add_subparsers(dest="forward_command", required=True, metavar="ACTION")
    fset = verbs.add_parser("set", parents=[common], help="forward ADDRESS's mail to --to")
    fset.add_argument("address", metavar="ADDRESS")
    fset.add_argument("--to", required=True, metavar="EXTERNAL", help="the outside address")
    fset.add_argument("--keep-copy", action="store_true", help="keep a copy in the mailbox too")
    add_change_options(fset)
    fset.set_defaults(action=_forward_set)
    clr = verbs.add_parser("clear", parents=[common], help="stop forwarding")
    clr.add_argument("address", metavar="ADDRESS")
    add_change_options(clr)
    clr.set_defaults(action=_forward_clear)
    lst = verbs.add_parser("list", parents=[common], help="every forward")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    lst.set_defaults(action=_forward_list)


async def with_addressing(config: Config, action: Callable[[Addressing], Awaitable[int]]) -> int:
    async def run(store: MailStore) -> int:
        try:
            return await action(Addressing(store, config))
        except StoreError as exc:
            raise CliError(describe(exc)) from None

    return await with_store(config, run)


async def added_domains(config: Config) -> list[Domain]:
    """Domains added with ``mailserver domain add`` (for commands that list local domains)."""
    found: list[Domain] = []

    async def run(store: MailStore) -> int:
        found.extend(await Addressing(store, config).domains())
        return 0

    await with_store(config, run)
    return found


def domain_dict(d: Domain) -> dict[str, Any]:
    return {"domain": d.name, "alias_of": d.alias_of, "created_at": d.created_at.isoformat()}


def alias_dict(a: AddressAlias) -> dict[str, Any]:
    return {"alias": a.alias, "target": a.target, "created_at": a.created_at.isoformat()}


def forward_dict(f: Forward) -> dict[str, Any]:
    return {
        "address": f.address,
        "to": f.target,
        "keep_copy": f.keep_copy,
        "created_at": f.created_at.isoformat(),
    }


async def _domain_add(config: Config, args: argparse.Namespace) -> int:
    async def run(a: Addressing) -> int:
        d = await a.add_domain(args.domain, args.alias_of, by=by_of(args))
        if args.json:
            print_json(domain_dict(d))
        elif d.alias_of:
            print(f"đã thêm tên miền bí danh / alias domain added: x@{d.name} -> x@{d.alias_of}")
        else:
            print(f"đã thêm tên miền / local domain added: {d.name}")
        return 0

    return await with_addressing(config, run)


async def _domain_remove(config: Config, args: argparse.Namespace) -> int:
    async def run(a: Addressing) -> int:
        d = await a.remove_domain(args.domain, by=by_of(args))
        if args.json:
            print_json(domain_dict(d))
        else:
            print(f"đã gỡ tên miền / domain removed: {d.name}")
        return 0

    return await with_addressing(config, run)


async def _domain_list(config: Config, args: argparse.Namespace) -> int:
    async def run(a: Addressing) -> int:
        added = await a.domains()
        rows = [
            {"domain": d.lower(), "alias_of": None, "source": "server.domains"} for d in config.server.domains
        ]
        rows += [{**domain_dict(d), "source": "directory"} for d in added]
        if args.json:
            print_json(rows)
        else:
            for row in rows:
                kind = f"bí danh của / alias of {row['alias_of']}" if row["alias_of"] else "cục bộ / local"
                print(f"{row['domain']}\t{kind}\t({row['source']})")
        return 0

    return await with_addressing(config, run)


async def _alias_add(config: Config, args: argparse.Namespace) -> int:
    async def run(a: Addressing) -> int:
        added = await a.add_alias(args.alias, args.targets, by=by_of(args))
        if args.json:
            print_json([alias_dict(x) for x in added])
        else:
            for x in added:
                print(f"bí danh / alias: {x.alias} -> {x.target}")
        return 0

    return await with_addressing(config, run)


async def _alias_remove(config: Config, args: argparse.Namespace) -> int:
    async def run(a: Addressing) -> int:
        removed = await a.remove_alias(args.alias, args.target, by=by_of(args))
        if args.json:
            print_json([alias_dict(x) for x in removed])
        else:
            for x in removed:
                print(f"đã gỡ bí danh / alias removed: {x.alias} -> {x.target}")
        return 0

    return await with_addressing(config, run)


async def _alias_list(config: Config, args: argparse.Namespace) -> int:
    async def run(a: Addressing) -> int:
        rows = await a.aliases(args.alias)
        if args.json:
            print_json([alias_dict(x) for x in rows])
        else:
            for x in rows:
                print(f"{x.alias}\t{x.target}")
        return 0

    return await with_addressing(config, run)


async def _forward_set(config: Config, args: argparse.Namespace) -> int:
    async def run(a: Addressing) -> int:
        f = await a.set_forward(args.address, args.to, args.keep_copy, by=by_of(args))
        if args.json:
            print_json(forward_dict(f))
        else:
            copy = " (giữ bản sao / keeping a copy)" if f.keep_copy else ""
            print(f"chuyển tiếp / forwarding: {f.address} -> {f.target}{copy}")
        return 0

    return await with_addressing(config, run)


async def _forward_clear(config: Config, args: argparse.Namespace) -> int:
    async def run(a: Addressing) -> int:
        f = await a.clear_forward(args.address, by=by_of(args))
        if args.json:
            print_json(forward_dict(f))
        else:
            print(f"đã dừng chuyển tiếp / forwarding stopped: {f.address} -> {f.target}")
        return 0

    return await with_addressing(config, run)


async def _forward_list(config: Config, args: argparse.Namespace) -> int:
    async def run(a: Addressing) -> int:
        rows = await a.forwards()
        if args.json:
            print_json([forward_dict(f) for f in rows])
        else:
            for f in rows:
                print(f"{f.address}\t{f.target}{chr(9) + 'keep-copy' if f.keep_copy else ''}")
        return 0

    return await with_addressing(config, run)
