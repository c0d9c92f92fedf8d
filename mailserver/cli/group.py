"""``mailserver group add|add-member|remove-member|list|show``: distribution
groups of the directory (mailserver/dispatch/groups.py), used by dispatch."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from mailserver.cli.common import CliError, SubParsers, print_json, with_store
from mailserver.config import Config
from mailserver.dispatch.groups import Group, GroupError, GroupStore
from storage.api import MailStore
from storage.directory import open_directory


def register(sub: SubParsers, common: argparse.ArgumentParser) -> None:
    group = sub.add_parser("group", parents=[common], help="distribution groups (nhóm nhận)")
    actions = group.add_subparsers(dest="group_command", required=True, metavar="ACTION")
    add = actions.add_parser("add", parents=[common], help="create a group")
    add.add_argument("code")
    add.add_argument("--name", required=True, help='Vietnamese name, as written in "Nơi nhận"')
    add.set_defaults(action=_add)
    mem = actions.add_parser("add-member", parents=[common], help="add an agency code or an address")
    mem.add_argument("code")
    mem.add_argument("member", metavar="AGENCY|ADDRESS|GROUP")
    mem.set_defaults(action=_add_member)
    rem = actions.add_parser("remove-member", parents=[common], help="remove a member")
    rem.add_argument("code")
    rem.add_argument("member")
    rem.set_defaults(action=_remove_member)
    lst = actions.add_parser("list", parents=[common], help="all groups")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(action=_list)
    show = actions.add_parser("show", parents=[common], help="one group and its members")
    show.add_argument("code")
    show.add_argument("--json", action="store_true")
    show.set_defaults(action=_show)


async def _add(config: Config, args: argparse.Namespace) -> int:
    try:
        group = GroupStore(config.data_dir).add(args.code, args.name)
    except GroupError as exc:
        raise CliError(str(exc)) from None
    print(f"group {group.code}: {group.name}")
    return 0


async def _add_member(config: Config, args: argparse.Namespace) -> int:
    member = args.member.strip().lower()
    groups = GroupStore(config.data_dir)

    async def check(store: MailStore) -> int:
        if "@" in member:
            local = config.is_local_domain(member.rpartition("@")[2])
            if local and await store.get_account(member) is None:
                raise CliError(f"không có hộp thư / no mailbox {member}")
        elif await open_directory(store).get_agency(member) is None and member not in {
            g.code for g in groups.all()
        }:
            raise CliError(f"không có cơ quan hoặc nhóm / no agency or group {member}")
        return 0

    await with_store(config, check)
    try:
        group = groups.add_member(args.code, member)
    except GroupError as exc:
        raise CliError(str(exc)) from None
    print(f"{group.code}: {', '.join(group.members)}")
    return 0


async def _remove_member(config: Config, args: argparse.Namespace) -> int:
    try:
        group = GroupStore(config.data_dir).remove_member(args.code, args.member)
    except GroupError as exc:
        raise CliError(str(exc)) from None
    print(f"{group.code}: {', '.join(group.members) or '(no members)'}")
    return 0


def _print(group: Group) -> None:
    print(f"{group.code}\t{group.name}\t{len(group.members)} member(s)")


async def _list(config: Config, args: argparse.Namespace) -> int:
    try:
        groups = GroupStore(config.data_dir).all()
    except GroupError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print_json([asdict(g) for g in groups])
    else:
        for group in groups:
            _print(group)
    return 0


async def _show(config: Config, args: argparse.Namespace) -> int:
    try:
        group = GroupStore(config.data_dir).get(args.code)
    except GroupError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print_json(asdict(group))
    else:
        _print(group)
        for member in group.members:
            print(f"  {member}")
    return 0
