"""``mailserver agency add|set-head|delegate|revoke|handover|rename|merge|list|show|alias``: agency
mailboxes ``<code>@dongnai.gov.vn`` (Decision 70/2009/QĐ-UBND Điều 4 khoản 2,
Điều 10: the head administers the agency mailbox and may delegate; a new head
takes over administration and all content). The changing commands print what
changed, Vietnamese first (``cli.directory.print_changes``)."""

from __future__ import annotations

import argparse
from typing import Any

from mailserver.cli.common import SubParsers, print_json
from mailserver.cli.directory import (
    add_change_options,
    agency_dict,
    by_of,
    changes_json,
    issued_dict,
    person_dict,
    print_changes,
    print_issued,
    with_service,
)
from mailserver.config import Config
from mailserver.directory import aliases, naming, reorg
from mailserver.directory.reorg import Reorganised
from mailserver.directory.service import DEFAULT_RIGHTS, AgencyView, DirectoryService
from storage.directory import AgencyAlias, Delegation, NoSuchAgency


def register(sub: SubParsers, common: argparse.ArgumentParser) -> None:
    agency = sub.add_parser("agency", parents=[common], help="agency mailboxes (hộp thư cơ quan)")
    actions = agency.add_subparsers(dest="agency_command", required=True, metavar="ACTION")

    add = actions.add_parser("add", parents=[common], help="create an agency and its mailbox CODE@domain")
    add.add_argument("code", help="agency code, e.g. stttt, ubndbienhoa")
    add.add_argument("--name", required=True, help="full Vietnamese name")
    add.add_argument("--parent", default=None, metavar="CODE", help="parent agency")
    add_change_options(add)
    add.set_defaults(action=_add)

    head = actions.add_parser("set-head", parents=[common], help="set the head (thủ trưởng) of an agency")
    head.add_argument("code")
    head.add_argument("address", help="the head's personal address")
    add_change_options(head)
    head.set_defaults(action=_set_head)

    dele = actions.add_parser("delegate", parents=[common], help="authorise someone on the agency mailbox")
    dele.add_argument("code")
    dele.add_argument("address")
    dele.add_argument(
        "--rights",
        default=DEFAULT_RIGHTS,
        help="RFC 4314 letters (lrswipkxtea) and/or words read, write, folders, admin, all, send "
        f"(send as the agency address); default {DEFAULT_RIGHTS}",
    )
    add_change_options(dele)
    dele.set_defaults(action=_delegate)

    rev = actions.add_parser("revoke", parents=[common], help="withdraw a delegation")
    rev.add_argument("code")
    rev.add_argument("address")
    add_change_options(rev)
    rev.set_defaults(action=_revoke)

    hand = actions.add_parser("handover", parents=[common], help="hand the agency mailbox over to a new head")
    hand.add_argument("code")
    hand.add_argument("new_head", metavar="NEW_HEAD", help="the new head's personal address")
    add_change_options(hand)
    hand.set_defaults(action=_handover)

    ren = actions.add_parser("rename", parents=[common], help="rename an agency (đổi tên)")
    ren.add_argument("code")
    ren.add_argument("--name", required=True, help="the new full Vietnamese name")
    ren.add_argument("--code", dest="new_code", default=None, metavar="NEWCODE",
                     help="new code: new mailbox NEWCODE@domain, mail moved, old address kept as an alias")
    add_change_options(ren)
    ren.set_defaults(action=_rename)

    merge = actions.add_parser("merge", parents=[common], help="merge an agency into another (sáp nhập)")
    merge.add_argument("old", metavar="OLD")
    merge.add_argument("--into", required=True, metavar="NEW", help="the agency it merges into")
    add_change_options(merge)
    merge.set_defaults(action=_merge)

    lst = actions.add_parser("list", parents=[common], help="list agencies")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    lst.set_defaults(action=_list)

    show = actions.add_parser("show", parents=[common], help="one agency with head and delegations")
    show.add_argument("code")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(action=_show)
    _register_alias(actions, common)


def _delegation_dict(d: Delegation) -> dict[str, Any]:
    return {
        "address": d.address,
        "rights": d.rights,
        "may_send": d.may_send,
        "granted_at": d.granted_at.isoformat(),
    }


def _view_dict(view: AgencyView) -> dict[str, Any]:
    data = agency_dict(view.agency)
    data["head"] = person_dict(view.head) if view.head else None
    data["delegations"] = [_delegation_dict(d) for d in view.delegations]
    return data


async def _add(config: Config, args: argparse.Namespace) -> int:
    async def run(service: DirectoryService) -> int:
        issued = await service.add_agency(args.code, args.name, args.parent, by=by_of(args))
        if args.json:
            print_json(issued_dict(issued))
        else:
            print_issued(issued, args.name)
        return 0

    return await with_service(config, run)


async def _set_head(config: Config, args: argparse.Namespace) -> int:
    async def run(service: DirectoryService) -> int:
        result = await service.set_head(args.code, args.address, by=by_of(args))
        view = await service.agency_view(args.code)
        if args.json:
            print_json({**_view_dict(view), "changes": changes_json(result.changes)})
        else:
            print_changes(result.changes)
        return 0

    return await with_service(config, run)


async def _delegate(config: Config, args: argparse.Namespace) -> int:
    async def run(service: DirectoryService) -> int:
        result = await service.delegate(args.code, args.address, args.rights, by=by_of(args))
        assert result.delegation is not None  # noqa: S101 - delegate returns it
        if args.json:
            print_json({**_delegation_dict(result.delegation), "changes": changes_json(result.changes)})
        else:
            print_changes(result.changes)
        return 0

    return await with_service(config, run)


async def _revoke(config: Config, args: argparse.Namespace) -> int:
    async def run(service: DirectoryService) -> int:
        result = await service.revoke(args.code, args.address, by=by_of(args))
        if args.json:
            changes = changes_json(result.changes)
            print_json({"agency": args.code, "revoked": args.address, "changes": changes})
        else:
            print_changes(result.changes)
        return 0

    return await with_service(config, run)


async def _handover(config: Config, args: argparse.Namespace) -> int:
    async def run(service: DirectoryService) -> int:
        issued = await service.handover(args.code, args.new_head, by=by_of(args))
        if args.json:
            print_json({**issued_dict(issued), "changes": changes_json(issued.changes)})
        else:
            head = issued.person.address if issued.person else args.new_head
            print(f"{args.code}: {head} nay là thủ trưởng, quản lý {issued.address} / "
                  f"{head} is now head and administers {issued.address}")
            print_changes(issued.changes)
            print(f"mật khẩu ban đầu mới của / new initial password of {issued.address}: {issued.password}")
            print("thủ trưởng mới phải đổi mật khẩu trước lần đăng nhập đầu (Điều 10 khoản 2) / "
                  "the new head must change it before the first login")
        return 0

    return await with_service(config, run)


def _print_reorganised(result: Reorganised, args: argparse.Namespace) -> None:
    if args.json:
        data: dict[str, Any] = {**agency_dict(result.agency), "changes": changes_json(result.changes)}
        if result.password:
            data["password"] = result.password
        print_json(data)
        return
    print_changes(result.changes)
    if result.password:
        print(f"mật khẩu ban đầu của / initial password of {result.agency.address}: {result.password}")


async def _rename(config: Config, args: argparse.Namespace) -> int:
    async def run(service: DirectoryService) -> int:
        result = await reorg.rename_agency(service, args.code, args.name, args.new_code, by=by_of(args))
        _print_reorganised(result, args)
        return 0

    return await with_service(config, run)


async def _merge(config: Config, args: argparse.Namespace) -> int:
    async def run(service: DirectoryService) -> int:
        result = await reorg.merge_agency(service, args.old, args.into, by=by_of(args))
        _print_reorganised(result, args)
        return 0

    return await with_service(config, run)


async def _list(config: Config, args: argparse.Namespace) -> int:
    async def run(service: DirectoryService) -> int:
        agencies = await service.directory.list_agencies()
        if args.json:
            print_json([agency_dict(a) for a in agencies])
        else:
            for a in agencies:
                parent = f"\t(under {a.parent_code})" if a.parent_code else ""
                print(f"{a.code}\t{a.address}\t{a.name}{parent}")
        return 0

    return await with_service(config, run)


async def _show(config: Config, args: argparse.Namespace) -> int:
    async def run(service: DirectoryService) -> int:
        view = await service.agency_view(args.code)
        merges = [e for e in await service.directory.audit_log(subject=view.agency.code)
                  if e.action == "agency.merge"]
        merged_into = str(merges[-1].detail.get("into")) if merges else None
        if args.json:
            print_json({**_view_dict(view), "merged_into": merged_into})
        else:
            a = view.agency
            print(f"code: {a.code}\nname: {a.name}\naddress: {a.address}\nparent: {a.parent_code or '-'}")
            if merged_into:
                print(f"đã sáp nhập vào / merged into: {merged_into}")
            print(f"head: {view.head.address} ({view.head.full_name})" if view.head else "head: -")
            for d in view.delegations:
                print(f"delegate: {d.address} rights {d.rights or '-'}{' +send' if d.may_send else ''}")
        return 0

    return await with_service(config, run)


# -- aliases: other names of an agency (mailserver/directory/aliases.py) ----------------


def _register_alias(actions: SubParsers, common: argparse.ArgumentParser) -> None:
    alias = actions.add_parser(
        "alias", parents=[common], help="other names of an agency that documents use (tên khác)"
    )
    verbs = alias.add_subparsers(dest="alias_command", required=True, metavar="ACTION")
    add = verbs.add_parser("add", parents=[common], help='add a name: agency alias add CODE "NAME"')
    add.add_argument("code")
    add.add_argument("name", help='as documents write it, e.g. "VP UBND tỉnh"')
    add_change_options(add)
    add.set_defaults(action=_alias_add)
    rem = verbs.add_parser("remove", parents=[common], help="remove a name")
    rem.add_argument("code")
    rem.add_argument("name")
    add_change_options(rem)
    rem.set_defaults(action=_alias_remove)
    lst = verbs.add_parser("list", parents=[common], help="the names of one agency, or of all")
    lst.add_argument("code", nargs="?", default=None)
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    lst.set_defaults(action=_alias_list)


def _alias_dict(a: AgencyAlias) -> dict[str, Any]:
    return {"agency": a.agency_code, "name": a.name, "key": a.key, "created_at": a.created_at.isoformat()}


async def _alias_add(config: Config, args: argparse.Namespace) -> int:
    async def run(service: DirectoryService) -> int:
        added = await aliases.add_alias(service.directory, args.code, args.name, by=by_of(args))
        if args.json:
            print_json(_alias_dict(added))
        else:
            print(f"{added.agency_code}: đã thêm tên khác / alias added: {added.name}")
        return 0

    return await with_service(config, run)


async def _alias_remove(config: Config, args: argparse.Namespace) -> int:
    async def run(service: DirectoryService) -> int:
        removed = await aliases.remove_alias(service.directory, args.code, args.name, by=by_of(args))
        if args.json:
            print_json(_alias_dict(removed))
        else:
            print(f"{removed.agency_code}: đã bỏ tên khác / alias removed: {removed.name}")
        return 0

    return await with_service(config, run)


async def _alias_list(config: Config, args: argparse.Namespace) -> int:
    async def run(service: DirectoryService) -> int:
        code = naming.agency_code(args.code) if args.code else None
        if code is not None and await service.directory.get_agency(code) is None:
            raise NoSuchAgency(f"không có cơ quan / no agency {code!r}")
        found = await service.directory.aliases(code)
        if args.json:
            print_json([_alias_dict(a) for a in found])
        else:
            for a in found:
                print(f"{a.agency_code}\t{a.name}")
        return 0

    return await with_service(config, run)
