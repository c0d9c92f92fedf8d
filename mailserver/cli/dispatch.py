"""``mailserver dispatch DOCUMENT --from AGENCY --to CODE,… | --to-group G |
--from-document`` and ``mailserver dispatch status ID``: signed dispatch of an
official document's electronic copy (mailserver/dispatch/service.py)."""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import asdict
from pathlib import Path

from mailserver.cli.common import CliError, SubParsers, print_json, with_store
from mailserver.config import Config
from mailserver.directory.aliases import alias_map
from mailserver.dispatch.document import Document, DocumentError, read_document
from mailserver.dispatch.groups import GroupError, GroupStore
from mailserver.dispatch.recipients import Line, Resolver
from mailserver.dispatch.service import (
    Dispatcher,
    DispatchError,
    DispatchLog,
    DispatchRecord,
    document_subject,
)
from pki.pdfsig import PdfCheck
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
    disp.add_argument("--subject", default="",
                      help="default: the number and the summary (trích yếu) read from the document")
    disp.add_argument("--number", default="",
                      help='document number, e.g. "70/2009/QĐ-UBND"; default: the document\'s "Số: …" line')
    disp.add_argument("--from-document", action="store_true",
                      help='recipients from the document\'s "Nơi nhận:" block')
    disp.add_argument("--skip", action="append", default=[], metavar="LINE",
                      help='a "Nơi nhận" line not to send to (repeatable)')
    disp.add_argument("--dry-run", action="store_true", help="resolve and show recipients, send nothing")
    disp.add_argument("--unsigned", action="store_true", help="send without S/MIME signature")
    disp.add_argument("--no-pdf-signature", action="store_true",
                      help="send a PDF as it is, without signing it inside (PAdES)")
    disp.add_argument("--json", action="store_true")
    disp.set_defaults(action=_dispatch)


def _print_record(record: DispatchRecord) -> None:
    print(f"dispatch {record.id}: {record.number or record.document} from {record.sender}"
          f" ({'signed' if record.signed else 'unsigned'}), {record.created}")
    print(f"  {record.subject}")
    if record.pdf_signed:
        print("  tệp PDF đã được ký số / the PDF is signed inside (PAdES)")
    for check in record.pdf_checks:
        print(f"  X-PDF-Signature: {PdfCheck(**check).header_value()}")
    if record.sent_copy:
        print(f"  bản lưu / file copy: {record.sender} {record.sent_copy}")
    if record.sent_copy_error:
        print(f"  chưa lưu được bản lưu: hộp thư {record.sender} đầy / the issuer's copy could not be filed: "
              f"{record.sent_copy_error}", file=sys.stderr)
    for r in record.recipients:
        print(f"  {r.address:40} {r.status}{'  ' + r.detail if r.detail else ''}")


async def _dispatch(config: Config, args: argparse.Namespace) -> int:
    log = DispatchLog(config.data_dir)
    try:
        if args.target == "status":
            if not args.dispatch_id:
                raise CliError("thiếu mã công văn / usage: mailserver dispatch status ID")
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


def _describe(line: Line) -> str:
    targets = ", ".join(f"{t.name} ({t.code})" for t in line.targets)
    if line.status == "matched":
        return f"  ✓ {line.text}  →  {targets}"
    if line.status == "expanded":
        return f"  ✓ {line.text}  →  {line.via}: {targets}"
    if line.status == "archive":
        return f"  – {line.text}  (bản lưu: thư mục Sent của cơ quan gửi / the issuer's copy: in its Sent)"
    if line.status == "skipped":
        return f"  – {line.text}  (bỏ qua / skipped)"
    return f"  ✗ {line.text}  ({line.reason})"


def _unresolved_error(unresolved: list[Line]) -> CliError:
    plain = [x for x in unresolved if not x.as_above]
    above = [x for x in unresolved if x.as_above]
    advice: list[str] = []
    if plain:
        advice.append(
            "thêm tên khác cho cơ quan (mailserver agency alias add MÃ \"TÊN\") hoặc một nhóm, hoặc bỏ qua "
            "bằng --skip \"DÒNG\" / add the name to the agency (mailserver agency alias add CODE \"NAME\") "
            "or a group, or leave the line out with --skip \"LINE\""
        )
    if above:
        advice.append(
            '"Như trên" / "Như Điều …" là nơi nhận chính: sửa văn bản hoặc danh bạ để nhận ra được / '
            "they are the main addressees: make the document's \"Kính gửi\" / article names known "
            "(agency alias add) or give them with --to"
        )
    return CliError(
        f"{len(unresolved)} dòng \"Nơi nhận\" chưa xác định được (✗ ở trên), chưa gửi / "
        f"{len(unresolved)} recipient line(s) unresolved (✗ above), nothing sent: " + "; ".join(advice)
    )


async def _send(config: Config, args: argparse.Namespace) -> int:
    document = Path(args.target)
    if not args.agency:
        raise CliError("thiếu --from CƠ_QUAN / --from AGENCY is required")
    if not document.is_file():
        raise CliError(f"không có tệp / no such file: {document}")
    if not (args.to or args.to_group or args.from_document):
        raise CliError("chưa có nơi nhận / give recipients: --to, --to-group or --from-document")
    try:
        data = document.read_bytes()
    except OSError as exc:
        raise CliError(f"không đọc được / cannot read {document}: {exc.strerror}") from None
    parsed: Document | None = None
    try:
        parsed = read_document(document.name, data)
    except DocumentError as exc:
        if args.from_document:
            raise CliError(str(exc)) from None
    number = args.number.strip() or (parsed.number() if parsed else "")
    summary = parsed.summary() if parsed else ""
    subject = args.subject.strip() or document_subject(number, summary, document.name)

    async def run(store: MailStore) -> int:
        directory = open_directory(store)
        try:
            groups = GroupStore(config.data_dir).all()
        except GroupError as exc:
            raise CliError(str(exc)) from None
        resolver = Resolver(await directory.list_agencies(), groups, await alias_map(directory))
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
            assert parsed is not None  # noqa: S101 - read above, or CliError
            try:
                lines = parsed.recipient_lines()
            except DocumentError as exc:
                raise CliError(str(exc)) from None
            resolution = resolver.resolve(lines, parsed, args.skip)
            for line in resolution.lines:
                print(_describe(line), file=sys.stderr)
            if resolution.unresolved:
                raise _unresolved_error(resolution.unresolved)
            addresses += resolution.addresses
        unique = list(dict.fromkeys(a.lower() for a in addresses))
        if not unique:
            raise CliError(
                "không có nơi nhận nào có hộp thư, chưa gửi / no recipient with a mailbox, nothing sent"
            )
        print(f"  Tiêu đề / Subject: {subject}", file=sys.stderr)
        if args.dry_run:
            for address in unique:
                print(address)
            return 0
        # The policy's verdict is reported once, by DispatchError below, not as a log line too.
        logging.getLogger("policy").setLevel(max(logging.WARNING, logging.getLogger().getEffectiveLevel()))
        try:
            record = await Dispatcher(config, store).send(
                agency_code=args.agency, recipients=unique, document=document, subject=subject,
                number=number, unsigned=args.unsigned, pdf_signature=not args.no_pdf_signature,
            )
        except DispatchError as exc:
            raise CliError(str(exc)) from None
        print_json(asdict(record)) if args.json else _print_record(record)
        return 0 if all(r.status != "bounced" for r in record.recipients) else 3

    return await with_store(config, run)
