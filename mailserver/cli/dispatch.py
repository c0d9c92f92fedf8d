"""``mailserver dispatch DOCUMENT --from AGENCY --to CODE,… | --to-group G |
--from-document`` and ``mailserver dispatch status ID``: signed dispatch of an
official document's electronic copy (mailserver/dispatch/service.py)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

from mailserver.cli.common import CliError, SubParsers, print_json, with_store
from mailserver.config import Config
from mailserver.dispatch.groups import GroupError, GroupStore
from mailserver.dispatch.recipients import DocumentError, Resolver, read_recipient_block
from mailserver.dispatch.service import Dispatcher, DispatchError, DispatchLog, DispatchRecord
from storage.api import MailStore
from storage.directory import open_directory


def register(sub: SubParsers, common: argparse.ArgumentParser) -> None:
    disp = sub.add_parser(
        "dispatch", parents=[common],
        help="send an official document, signed, to agencies (DOCUMENT …) or show one (status ID)",
        description="mailserver dispatch DOCUMENT.pdf|docx --from AGENCY [--to CODE,…] [--to-group G] "
        "[--from-document [--skip LINE]…]   |   mailserver dispatch status ID   |   mailserver dispatch list",
    )
    disp.add_argument("target", metavar="DOCUMENT|status|list")
    disp.add_argument("dispatch_id", nargs="?", metavar="ID", help="with status: the dispatch id")
    disp.add_argument("--from", dest="agency", metavar="AGENCY", help="issuing agency code")
    disp.add_argument("--to", default="", metavar="CODE,CODE…", help="agency codes or addresses")
    disp.add_argument("--to-group", action="append", default=[], metavar="GROUP")
    disp.add_argument("--subject", default="")
    disp.add_argument("--number", default="", help='document number, e.g. "Số 70/2009/QĐ-UBND"')
    disp.add_argument("--from-document", action="store_true",
                      help='recipients from the document\'s "Nơi nhận:" block')
    disp.add_argument("--skip", action="append", default=[], metavar="LINE",
                      help='a "Nơi nhận" line not to send to (repeatable)')
    disp.add_argument("--dry-run", action="store_true", help="resolve and show recipients, send nothing")
    disp.add_argument("--unsigned", action="store_true", help="send without S/MIME signature")
    disp.add_argument("--json", action="store_true")
    disp.set_defaults(action=_dispatch)


def _print_record(record: DispatchRecord) -> None:
    print(f"dispatch {record.id}: {record.number or record.document} from {record.sender}"
          f" ({'signed' if record.signed else 'unsigned'}), {record.created}")
    for r in record.recipients:
        print(f"  {r.address:40} {r.status}{'  ' + r.detail if r.detail else ''}")


async def _dispatch(config: Config, args: argparse.Namespace) -> int:
    log = DispatchLog(config.data_dir)
    try:
        if args.target == "status":
            if not args.dispatch_id:
                raise CliError("usage: mailserver dispatch status ID")
            record = log.get(args.dispatch_id)
            print_json(asdict(record)) if args.json else _print_record(record)
            return 0
        if args.target == "list":
            records = log.all()
            if args.json:
                print_json([asdict(r) for r in records])
            else:
                for r in records:
                    counts = {s: sum(1 for x in r.recipients if x.status == s)
                              for s in ("delivered", "queued", "bounced")}
                    print(f"{r.id}  {r.agency:12} {r.number or r.document}  "
                          + " ".join(f"{k}={v}" for k, v in counts.items()))
            return 0
    except DispatchError as exc:
        raise CliError(str(exc)) from None
    return await _send(config, args)


async def _send(config: Config, args: argparse.Namespace) -> int:
    document = Path(args.target)
    if not args.agency:
        raise CliError("--from AGENCY is required")
    if not document.is_file():
        raise CliError(f"không có tệp / no such file: {document}")
    if not (args.to or args.to_group or args.from_document):
        raise CliError("give recipients: --to, --to-group or --from-document")

    async def run(store: MailStore) -> int:
        directory = open_directory(store)
        try:
            groups = GroupStore(config.data_dir).all()
        except GroupError as exc:
            raise CliError(str(exc)) from None
        resolver = Resolver(await directory.list_agencies(), groups)
        addresses: list[str] = []
        for item in (t.strip().lower() for t in args.to.split(",") if t.strip()):
            address = item if "@" in item else resolver.agency_address(item)
            if address is None:
                raise CliError(f"không có cơ quan / no such agency: {item}")
            addresses.append(address)
        for code in args.to_group:
            if code.strip().lower() not in {g.code for g in groups}:
                raise CliError(f"không có nhóm / no such group: {code}")
            addresses += resolver.group_addresses(code.strip().lower())
        if args.from_document:
            try:
                lines = read_recipient_block(document.name, document.read_bytes())
            except DocumentError as exc:
                raise CliError(str(exc)) from None
            resolution = resolver.resolve(lines, args.skip)
            for line, code in resolution.matched:
                print(f"  ✓ {line}  →  {code}", file=sys.stderr)
            for line in resolution.skipped:
                print(f"  – {line}  (bỏ qua / skipped)", file=sys.stderr)
            if resolution.unresolved:
                for line in resolution.unresolved:
                    print(f"  ✗ {line}", file=sys.stderr)
                raise CliError(
                    f"{len(resolution.unresolved)} dòng \"Nơi nhận\" chưa xác định được, chưa gửi / "
                    f"unresolved recipient line(s), nothing sent: "
                    + "; ".join(f'"{x}"' for x in resolution.unresolved)
                    + ". Add a group or agency that matches, or pass --skip \"LINE\" for each."
                )
            addresses += resolution.addresses
        unique = list(dict.fromkeys(a.lower() for a in addresses))
        if args.dry_run:
            for address in unique:
                print(address)
            return 0
        try:
            record = await Dispatcher(config, store).send(
                agency_code=args.agency, recipients=unique, document=document, subject=args.subject,
                number=args.number, unsigned=args.unsigned,
            )
        except DispatchError as exc:
            raise CliError(str(exc)) from None
        print_json(asdict(record)) if args.json else _print_record(record)
        return 0 if all(r.status != "bounced" for r in record.recipients) else 3

    return await with_store(config, run)
