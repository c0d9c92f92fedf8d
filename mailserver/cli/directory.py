"""``mailserver directory add-person|import|transfer|offboard|purge|search|export``:
the electronic directory (danh bạ điện tử, Decision 70/2009/QĐ-UBND Điều 4-5).

Every command accepts ``--json`` and ``--decision "Số …"`` (the decision the change
executes, recorded in the audit log with the operator's name, ``--actor``).
Lifecycle commands print what they changed, Vietnamese first with English
(``mailserver.directory.changes``): rights removed, certificates revoked,
passwords rotated (shown once), and the follow-up left to the operator;
warnings go to stderr. ``--json`` adds the same as a ``changes`` list.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from mailserver.cli.common import CliError, SubParsers, cli_actor, print_json, with_store
from mailserver.cli.errors import bilingual, describe
from mailserver.config import Config
from mailserver.directory.changes import Change, render
from mailserver.directory.export import FORMATS
from mailserver.directory.naming import NamingError
from mailserver.directory.passwords import PasswordRejected
from mailserver.directory.service import DirectoryService, ImportFailed, Issued, Planned
from storage.api import MailStore, OnHold, StoreError
from storage.directory import Agency, By, Person, open_directory


def add_change_options(parser: argparse.ArgumentParser, *, json_flag: bool = True) -> None:
    """``--decision``, ``--actor`` and ``--json``, shared by every changing command."""
    parser.add_argument(
        "--decision", default="", metavar="SỐ", help='decision executed, e.g. "Số 123/QĐ-UBND" (audit log)'
    )
    parser.add_argument("--actor", default="", help="who makes the change (default: the login name)")
    if json_flag:
        parser.add_argument("--json", action="store_true", help="machine-readable output")


def by_of(args: argparse.Namespace) -> By:
    actor = getattr(args, "actor", "") or cli_actor()
    return By(actor=actor, decision=getattr(args, "decision", "") or "")


async def with_service(config: Config, action: Callable[[DirectoryService], Awaitable[int]]) -> int:
    """Open the store, build the directory service, map refusals to CliError."""

    async def run(store: MailStore) -> int:
        service = DirectoryService(store, open_directory(store), config)
        try:
            return await action(service)
        except (StoreError, NamingError, PasswordRejected) as exc:
            raise CliError(describe(exc)) from None

    return await with_store(config, run)


def person_dict(p: Person) -> dict[str, Any]:
    return {
        "id": p.id,
        "address": p.address,
        "address_state": p.address_state.value if p.address_state else None,
        "full_name": p.full_name,
        "family": p.family,
        "middle": p.middle,
        "given": p.given,
        "agency": p.agency_code,
        "position": p.position,
        "phone": p.phone,
        "status": p.status.value,
        "created_at": p.created_at.isoformat(),
        "left_at": p.left_at.isoformat() if p.left_at else None,
    }


def agency_dict(a: Agency) -> dict[str, Any]:
    return {
        "code": a.code,
        "name": a.name,
        "parent": a.parent_code,
        "address": a.address,
        "head_person_id": a.head_person_id,
        "created_at": a.created_at.isoformat(),
    }


def issued_dict(i: Issued) -> dict[str, Any]:
    data: dict[str, Any] = {
        "address": i.address,
        "initial_password": i.password,
        "must_change_password": True,
    }
    if i.line is not None:
        data["line"] = i.line
    if i.person is not None:
        data["person"] = person_dict(i.person)
    if i.agency is not None:
        data["agency"] = agency_dict(i.agency)
    return data


def print_issued(issued: Issued, label: str) -> None:
    print(f"đã tạo hộp thư {issued.address} ({label}) / created {issued.address} ({label})")
    # Printed once, never stored in clear: the operator hands it over (Điều 7 khoản 1).
    print(f"mật khẩu ban đầu, chỉ hiện một lần / initial password: {issued.password}")
    print("phải đổi mật khẩu trước lần đăng nhập đầu / the password must be changed before the first login")


def print_changes(changes: Sequence[Change]) -> None:
    """What a lifecycle command changed (module docstring)."""
    out, err = render(list(changes))
    for line in out:
        print(line)
    for line in err:
        print(line, file=sys.stderr)


def changes_json(changes: Sequence[Change]) -> list[dict[str, str]]:
    return [c.as_dict() for c in changes]


def register(sub: SubParsers, common: argparse.ArgumentParser) -> None:
    directory = sub.add_parser("directory", parents=[common], help="electronic directory (danh bạ điện tử)")
    actions = directory.add_subparsers(dest="directory_command", required=True, metavar="ACTION")

    add = actions.add_parser("add-person", parents=[common], help="register a person and issue their mailbox")
    add.add_argument("--name", default="", help="full name as written, family name first: 'Nguyễn Văn An'")
    add.add_argument("--agency", required=True, metavar="CODE", help="agency code, e.g. stttt")
    add.add_argument("--position", default="", help="position (chức vụ)")
    add.add_argument("--phone", default="", help="telephone")
    add.add_argument("--family", default=None, help="family name (họ), with --given")
    add.add_argument("--middle", default=None, help="middle name (tên đệm)")
    add.add_argument("--given", default=None, help="given name (tên), may be compound: 'Bảo Ngọc'")
    add.add_argument("--local-part", default=None, help="issue this local part instead of the derived one")
    add.add_argument(
        "--namesake",
        action="store_true",
        help="a different person with the same name as someone already registered in the agency",
    )
    add_change_options(add)
    add.set_defaults(action=_add_person)

    imp = actions.add_parser(
        "import", parents=[common], help="import staff from a CSV or .xlsx file (all or nothing)"
    )
    imp.add_argument(
        "file", type=Path,
        help="Excel .xlsx, or UTF-8 CSV separated by , or ; (as Excel saves it) or tabs; "
        "columns ho_ten,ho,ten_dem,ten,ma_co_quan,chuc_vu,dien_thoai,hop_thu",
    )
    imp.add_argument("--dry-run", action="store_true", help="check and show the addresses, create nothing")
    add_change_options(imp)
    imp.set_defaults(action=_import)

    tr = actions.add_parser(
        "transfer", parents=[common],
        help="move a person to another agency; every right in the old agency ends",
    )
    tr.add_argument("address")
    tr.add_argument("--agency", required=True, metavar="CODE")
    tr.add_argument(
        "--new-head", default=None, metavar="ADDRESS",
        help="when the person heads the old agency: its new head (as `agency handover` does)",
    )
    tr.add_argument(
        "--force-headless", action="store_true",
        help="when the person heads the old agency: leave it without a head (warned and audited)",
    )
    add_change_options(tr)
    tr.set_defaults(action=_transfer)

    off = actions.add_parser(
        "offboard", parents=[common], help="a person leaves: disable, archive, keep mail"
    )
    off.add_argument("address")
    add_change_options(off)
    off.set_defaults(action=_offboard)

    purge = actions.add_parser(
        "purge", parents=[common], help="delete mailboxes whose grace period has passed"
    )
    purge.add_argument("--dry-run", action="store_true", help="list them, delete nothing")
    add_change_options(purge)
    purge.set_defaults(action=_purge)

    search = actions.add_parser(
        "search", parents=[common], help="find people and agencies (accents optional)"
    )
    search.add_argument("text", nargs="+")
    search.add_argument("--json", action="store_true", help="machine-readable output")
    search.set_defaults(action=_search)

    exp = actions.add_parser("export", parents=[common], help="publish the directory")
    exp.add_argument("--format", choices=FORMATS, default="json")
    exp.add_argument(
        "--include-persons", action="store_true", help="personal addresses too, not only agencies"
    )
    exp.add_argument(
        "--include-heads", action="store_true",
        help="each agency's head and deputies after it (as the portal with web.publish_heads)",
    )
    exp.add_argument(
        "--output", "-o", type=Path, default=None, help="write to FILE instead of standard output"
    )
    exp.set_defaults(action=_export)


async def _add_person(config: Config, args: argparse.Namespace) -> int:
    if not args.name and not args.given:
        raise CliError("cần --name, hoặc --given / give --name, or --given (with --family/--middle)")

    async def run(service: DirectoryService) -> int:
        issued = await service.add_person(
            args.name,
            args.agency,
            by=by_of(args),
            position=args.position,
            phone=args.phone,
            family=args.family,
            middle=args.middle,
            given=args.given,
            local=args.local_part,
            namesake=args.namesake,
        )
        if args.json:
            print_json(issued_dict(issued))
        else:
            person = issued.person
            print_issued(issued, f"{person.full_name}, {person.agency_code}" if person else "")
        return 0

    return await with_service(config, run)


async def _import(config: Config, args: argparse.Namespace) -> int:
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        raise CliError(f"{args.file}: {exc.strerror}") from None

    async def run(service: DirectoryService) -> int:
        try:
            result = await service.import_csv(
                data, by=by_of(args), dry_run=args.dry_run, filename=args.file.name
            )
        except ImportFailed as exc:
            if args.json:
                print_json({"errors": [{"line": e.line, "message": e.message} for e in exc.errors]})
            else:
                for error in exc.errors:
                    print(f"{args.file}:{error.line}: {bilingual(error.message)}", file=sys.stderr)
            raise CliError(f"{args.file}: {exc}") from None
        rows: list[dict[str, Any]] = []
        for item in result:
            if isinstance(item, Planned):
                rows.append(
                    {
                        "line": item.row.line,
                        "address": item.address,
                        "name": item.row.full_name,
                        "agency": item.row.agency_code,
                    }
                )
            else:
                rows.append(issued_dict(item))
        if args.json:
            print_json({"dry_run": args.dry_run, "rows": rows})
        else:
            for item in result:
                if isinstance(item, Planned):
                    print(
                        f"line {item.row.line}: {item.address}\t{item.row.full_name}\t{item.row.agency_code}"
                    )
                else:
                    name = item.person.full_name if item.person else ""
                    print(f"line {item.line}: {item.address}\t{item.password}\t{name}")
            verb = "would create" if args.dry_run else "created"
            print(
                f"{verb} {len(result)} mailbox(es)"
                + ("" if args.dry_run else "; initial passwords shown once")
            )
        return 0

    return await with_service(config, run)


async def _transfer(config: Config, args: argparse.Namespace) -> int:
    async def run(service: DirectoryService) -> int:
        result = await service.transfer(
            args.address, args.agency, by=by_of(args), new_head=args.new_head,
            force_headless=args.force_headless,
        )
        person = result.person
        if args.json:
            print_json({**person_dict(person), "changes": changes_json(result.changes)})
            _, err = render(list(result.changes))
            for line in err:
                print(line, file=sys.stderr)
        else:
            print(f"{person.address} nay thuộc / now in {person.agency_code}")
            print_changes(result.changes)
        return 0

    return await with_service(config, run)


async def _offboard(config: Config, args: argparse.Namespace) -> int:
    async def run(service: DirectoryService) -> int:
        result = await service.offboard(args.address, by=by_of(args))
        data = {
            "address": result.address,
            "archive": str(result.archive),
            "messages": result.messages,
            "purge_after": result.purge_after.isoformat(),
            "revoked_delegations": list(result.revoked),
            "headless_agencies": list(result.headless),
            "changes": changes_json(result.changes),
        }
        if args.json:
            print_json(data)
            _, err = render(list(result.changes))
            for line in err:
                print(line, file=sys.stderr)
        else:
            print(f"{result.address} nghỉ việc / has left:")
            print_changes(result.changes)
            until = f"{result.purge_after:%Y-%m-%d %H:%M} UTC"
            print(
                f"hộp thư giữ đến {until}, sau đó `mailserver directory purge` xóa / "
                f"mailbox kept until {until}, then `mailserver directory purge` deletes it"
            )
        return 0

    return await with_service(config, run)


async def _purge(config: Config, args: argparse.Namespace) -> int:
    async def run(service: DirectoryService) -> int:
        refused: list[OnHold] = []
        purged = await service.purge(by=by_of(args), dry_run=args.dry_run, refused=refused)
        for exc in refused:
            print(f"mailserver: {exc}", file=sys.stderr)
        if args.json:
            print_json({"dry_run": args.dry_run, "purged": purged,
                        "held": [{"address": e.address, "reasons": list(e.reasons)} for e in refused]})
        else:
            for address in purged:
                print(
                    f"{'would purge' if args.dry_run else 'purged'} {address} "
                    "(the address is retired and never re-issued)"
                )
            if not purged and not refused:
                print("nothing to purge")
        return 0

    return await with_service(config, run)


async def _search(config: Config, args: argparse.Namespace) -> int:
    async def run(service: DirectoryService) -> int:
        agencies, persons = await service.search(" ".join(args.text))
        if args.json:
            print_json(
                {"agencies": [agency_dict(a) for a in agencies], "persons": [person_dict(p) for p in persons]}
            )
        else:
            for a in agencies:
                print(f"{a.address}\t{a.name}\t(agency {a.code})")
            for p in persons:
                state = "" if p.status.value == "active" else f"\t({p.status.value})"
                print(f"{p.address}\t{p.full_name}\t{p.agency_code}\t{p.position}{state}")
        if not agencies and not persons and not args.json:
            print("no match", file=sys.stderr)
        return 0

    return await with_service(config, run)


async def _export(config: Config, args: argparse.Namespace) -> int:
    async def run(service: DirectoryService) -> int:
        text = await service.export(
            args.format, include_persons=args.include_persons, include_heads=args.include_heads
        )
        if args.output is not None:
            args.output.write_text(text, encoding="utf-8", newline="")
        else:
            sys.stdout.write(text)
        return 0

    return await with_service(config, run)


__all__ = [
    "add_change_options", "agency_dict", "by_of", "changes_json", "person_dict", "print_changes",
    "with_service",
]
