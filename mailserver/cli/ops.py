"""Operator commands: ``health``, ``backup``, ``report`` and ``mail`` (find/remove).

``mailserver health`` exits 0 only when every listener answers and the database
is reachable (the container HEALTHCHECK). Backups, reports and mail removal are
described in ``mailserver.ops``; this module only parses and prints.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from mailserver.cli.common import CliError, SubParsers, cli_actor, print_json, with_store
from mailserver.config import Config
from mailserver.ops import backup as backup_mod
from mailserver.ops.report import (
    ReportError,
    build_check_report,
    build_usage_report,
    parse_date,
    render_checks,
    render_csv,
    render_json,
    render_table,
)
from storage.activity import SEARCHABLE_HEADERS, activity_for
from storage.api import FlagMode, MailStore, Uid
from storage.directory import By, open_directory


def register(sub: SubParsers, common: argparse.ArgumentParser) -> None:
    health = sub.add_parser("health", parents=[common],
                            help="exit 0 only if every listener answers and the database is reachable")
    health.add_argument("--quiet", action="store_true", help="print nothing, only the exit status")
    health.set_defaults(action=_health)

    backup = sub.add_parser("backup", parents=[common], help="online backups: create, verify, restore")
    actions = backup.add_subparsers(dest="backup_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", parents=[common], help="back up into a new directory under DEST")
    create.add_argument("dest", metavar="DEST", help="directory holding backups (one sub-directory each)")
    create.add_argument("--incremental", action="store_true",
                        help="hard-link message files the previous backup in DEST already holds")
    create.add_argument("--keep", type=int, default=None, help="then delete all but the newest N backups")
    create.set_defaults(action=_backup_create)
    verify = actions.add_parser("verify", parents=[common], help="check every file against the manifest")
    verify.add_argument("dest", metavar="DEST", help="a backup, or a directory of backups (newest checked)")
    verify.set_defaults(action=_backup_verify)
    restore = actions.add_parser("restore", parents=[common], help="restore into an empty data directory")
    restore.add_argument("dest", metavar="DEST", help="a backup, or a directory of backups (newest used)")
    restore.add_argument("--to", required=True, metavar="DIR", help="empty data directory to restore into")
    restore.add_argument("--database-url", default=None, metavar="URL",
                         help="empty PostgreSQL database for a PostgreSQL backup")
    restore.set_defaults(action=_backup_restore)
    listing = actions.add_parser("list", parents=[common], help="backups in DEST, oldest first")
    listing.add_argument("dest", metavar="DEST", nargs="?", default=None)
    listing.set_defaults(action=_backup_list)

    report = sub.add_parser("report", parents=[common], help="usage reports and mailbox-check compliance")
    kinds = report.add_subparsers(dest="report_command", required=True, metavar="REPORT")
    usage = kinds.add_parser("usage", parents=[common],
                             help="six-monthly usage report per agency and account (Điều 13)")
    usage.add_argument("--from", dest="start", required=True, metavar="DATE", help="first day, YYYY-MM-DD")
    usage.add_argument("--to", dest="end", required=True, metavar="DATE", help="last day, YYYY-MM-DD")
    usage.add_argument("--agency", default=None, metavar="CODE", help="only this agency")
    usage.add_argument("--format", choices=("table", "csv", "json", "html"), default="table")
    usage.add_argument("--output", "-o", default=None, metavar="FILE", help="write here instead of stdout")
    usage.set_defaults(action=_report_usage)
    checks = kinds.add_parser("checks", parents=[common],
                              help="agency mailboxes not checked twice on a day (Điều 6 khoản 6)")
    checks.add_argument("--date", default=None, metavar="DATE", help="the day (default: today, local)")
    checks.add_argument("--json", action="store_true")
    checks.set_defaults(action=_report_checks)
    tlsrpt = kinds.add_parser(
        "tlsrpt", parents=[common],
        help="TLS reports (RFC 8460): outbound TLS results, reports sent now, reports received",
    )
    tlsrpt.add_argument("--send-now", action="store_true",
                        help="queue the reports of every result not yet reported, up to now")
    tlsrpt.add_argument("--received", action="store_true", help="list the reports others sent to tlsrpt.rua")
    tlsrpt.add_argument("--json", action="store_true")
    tlsrpt.set_defaults(action=_report_tlsrpt)
    dmarc = kinds.add_parser(
        "dmarc", parents=[common],
        help="DMARC aggregate reports (RFC 7489 section 7.2): who sends as our domains, per the reports "
             "received at dmarc.rua; --send-now sends ours",
    )
    dmarc.add_argument("--send-now", action="store_true",
                       help="queue the aggregate reports of every domain with pending evaluations now")
    dmarc.add_argument("--import", dest="import_files", nargs="+", default=None, metavar="FILE",
                       help="read received reports from files (.xml, .xml.gz, .zip or a whole message)")
    dmarc.add_argument("--domain", default=None, help="only senders as this domain")
    dmarc.add_argument("--json", action="store_true")
    dmarc.set_defaults(action=_report_dmarc)

    mail = sub.add_parser(
        "mail", parents=[common], help="find and remove unsuitable mail; list and restore deleted mail"
    )
    mactions = mail.add_subparsers(dest="mail_command", required=True, metavar="ACTION")
    find = mactions.add_parser("find", parents=[common], help="messages whose header contains a value")
    find.add_argument("--header", required=True, metavar="NAME:VALUE",
                      help=f"header ({', '.join(SEARCHABLE_HEADERS)}) and the text it contains")
    find.add_argument("--since", default=None, metavar="DATE", help="only mail received since (ISO date)")
    find.add_argument("--limit", type=int, default=1000)
    find.add_argument("--json", action="store_true")
    find.set_defaults(action=_mail_find)
    remove = mactions.add_parser("remove", parents=[common], help="remove messages by ID (from `mail find`)")
    remove.add_argument("ids", nargs="+", type=int, metavar="ID")
    remove.add_argument("--reason", required=True, help="why (kept in the audit log)")
    remove.add_argument("--decision", default="", help="number of the decision this executes")
    remove.set_defaults(action=_mail_remove)
    from mailserver.cli import vault

    vault.register_mail(mactions, common)


# -- health ----------------------------------------------------------------------


async def _health(config: Config, args: argparse.Namespace) -> int:
    from mailserver.ops.health import check_health

    checks = await check_health(config)
    if not args.quiet:
        for check in checks:
            print(f"{'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
    return 0 if all(c.ok for c in checks) else 1


# -- backup ----------------------------------------------------------------------


def _passphrase(config: Config) -> bytes | None:
    try:
        return backup_mod.load_passphrase(config)
    except backup_mod.BackupError as exc:
        raise CliError(str(exc)) from None


async def _backup_create(config: Config, args: argparse.Namespace) -> int:
    root = Path(args.dest)
    try:
        result = await backup_mod.create_backup(
            config, root, incremental=args.incremental, passphrase=_passphrase(config)
        )
        removed = backup_mod.prune_backups(root, args.keep) if args.keep else []
    except backup_mod.BackupError as exc:
        raise CliError(f"backup failed: {exc}") from None
    print(f"backup {result.path}: {result.files} files, {result.octets} octets"
          + (f", {result.linked} linked from the previous backup" if result.linked else "")
          + (f", {result.vanished} expunged during the backup" if result.vanished else ""))
    for path in removed:
        print(f"removed old backup {path}")
    return 0


async def _backup_verify(config: Config, args: argparse.Namespace) -> int:
    try:
        result = backup_mod.verify_backup(Path(args.dest))
    except backup_mod.BackupError as exc:
        raise CliError(str(exc)) from None
    for problem in result.problems:
        print(f"FAIL {problem}")
    if result.ok:
        print(f"backup {result.path}: {result.files} files verified")
        return 0
    print(f"backup {result.path}: {len(result.problems)} problem(s)", file=sys.stderr)
    return 1


async def _backup_restore(config: Config, args: argparse.Namespace) -> int:
    try:
        used = await backup_mod.restore_backup(
            Path(args.dest), Path(args.to), passphrase=_passphrase(config), database_url=args.database_url
        )
    except backup_mod.BackupError as exc:
        raise CliError(f"restore failed: {exc}") from None
    print(f"restored {used} into {args.to}")
    if args.database_url:
        print(f"start the server with server.data_dir = {args.to!r} and storage.url = the restored database")
    else:
        print(f"start the server with server.data_dir = {args.to!r}")
    return 0


async def _backup_list(config: Config, args: argparse.Namespace) -> int:
    root = Path(args.dest) if args.dest else backup_mod.backup_root(config)
    for path in backup_mod.list_backups(root):
        print(path)
    return 0


# -- reports ---------------------------------------------------------------------


async def _report_usage(config: Config, args: argparse.Namespace) -> int:
    try:
        start, end = parse_date(args.start), parse_date(args.end)
    except ReportError as exc:
        raise CliError(str(exc)) from None

    async def run(store: MailStore) -> int:
        try:
            report = await build_usage_report(config, store, open_directory(store), activity_for(store),
                                              start, end, agency=args.agency)
        except ReportError as exc:
            raise CliError(str(exc)) from None
        if args.format == "html":
            from mailserver.ops.report_html import render_usage_html

            text = render_usage_html(report)
        else:
            text = {"table": render_table, "csv": render_csv, "json": render_json}[args.format](report)
        if args.output:
            Path(args.output).write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return 0

    return await with_store(config, run)


async def _report_checks(config: Config, args: argparse.Namespace) -> int:
    from mailserver.ops.report import parse_offset

    try:
        today = datetime.now(parse_offset(config.report.utc_offset)).date()
        day = parse_date(args.date) if args.date else today
    except ReportError as exc:
        raise CliError(str(exc)) from None

    async def run(store: MailStore) -> int:
        report = await build_check_report(config, open_directory(store), activity_for(store), day)
        if args.json:
            print_json({
                "date": day.isoformat(), "working_day": report.working_day, "min_checks": report.min_checks,
                "agencies": [{"code": a.code, "name": a.name, "mailbox": a.mailbox, "opens": a.opens,
                              "checked": a.checked} for a in report.agencies],
            })
        else:
            sys.stdout.write(render_checks(report))
        return 0

    return await with_store(config, run)


async def _report_tlsrpt(config: Config, args: argparse.Namespace) -> int:
    from mailserver.smtp.outbound_settings import spool_path
    from mailserver.smtp.queue import Outbound
    from mailserver.smtp.tlsrpt import send_reports
    from pki.dkim import DkimSigner, key_directory
    from pki.keystore import DkimKeyStore
    from policy.dns import build_resolver
    from storage.queue import open_queue
    from storage.tlsrpt import open_tlsrpt

    async def run(store: MailStore) -> int:
        reports = open_tlsrpt(config.storage_url, store=store)
        await reports.start()
        now = datetime.now(UTC)
        if args.received:
            received = await reports.received()
            if args.json:
                print_json([{"id": g.id, "received_at": g.received_at, "organization": g.organization,
                             "report_id": g.report_id, "start": g.start, "end": g.end,
                             "policy_domains": list(g.policy_domains), "success": g.success,
                             "failure": g.failure} for g in received])
            else:
                for got in received:
                    domains = " ".join(got.policy_domains)
                    print(f"{got.received_at:%Y-%m-%d %H:%M} {got.organization} {domains} "
                          f"thành công/success={got.success} lỗi/failure={got.failure} ({got.report_id})")
                if not received:
                    print("chưa nhận báo cáo nào / no reports received")
            return 0
        if args.send_now:
            queue = open_queue(config.storage_url, spool_path(config.outbound, config.data_dir))
            await queue.start()
            try:
                signer = DkimSigner(DkimKeyStore(key_directory(config.dkim, config.data_dir)), config.dkim)
                outbound = Outbound(queue, signer)
                resolver = build_resolver(config.dns)
                sent = await send_reports(config, reports, resolver, outbound, until=now, now=now)
            finally:
                await queue.close()
            if args.json:
                print_json([{"domain": item.domain, "rua": list(item.recipients), "posted": list(item.posted),
                             "report": item.report} for item in sent])
            else:
                for item in sent:
                    where = ", ".join(list(item.recipients) + list(item.posted))
                    print(f"{item.domain}: đã gửi / sent to {where}")
                if not sent:
                    print("không có báo cáo nào cần gửi / no report to send")
            return 0
        pending = await reports.unreported(now)
        counts: dict[tuple[str, str, str], int] = {}
        for r in pending:
            key = (r.policy_domain, r.policy_type, r.result)
            counts[key] = counts.get(key, 0) + 1
        if args.json:
            print_json([{"domain": d, "policy_type": t, "result": res, "count": n}
                        for (d, t, res), n in sorted(counts.items())])
        else:
            for (d, t, res), n in sorted(counts.items()):
                print(f"{d} {t} {res} {n}")
        return 0

    return await with_store(config, run)


async def _report_dmarc(config: Config, args: argparse.Namespace) -> int:
    from mailserver.ops.dmarc import DmarcReports, send_reports_now
    from policy.aggregate import ReportFormatError
    from policy.dns import build_resolver
    from storage.dmarc import dmarc_for

    async def run(store: MailStore) -> int:
        if args.send_now:
            outcome = await send_reports_now(config, store)
            for sent in outcome.sent:
                print(f"queued {sent.report_id}: {sent.domain} -> {sent.destination} "
                      f"({sent.records} records, {sent.messages} messages, queue id {sent.queue_id})")
            for line in outcome.skipped:
                print(f"skipped {line}", file=sys.stderr)
            print(f"{len(outcome.sent)} report(s) queued", file=sys.stderr)
            return 0
        reports = DmarcReports(config, dmarc_for(store), build_resolver(config.dns))
        if args.import_files:
            for name in args.import_files:
                try:
                    data = Path(name).read_bytes()
                except OSError as exc:
                    raise CliError(f"{name}: {exc.strerror or exc}") from None
                try:
                    stored = await reports.ingest(data)
                except ReportFormatError as exc:
                    raise CliError(f"{name}: not a DMARC aggregate report: {exc}") from None
                print(f"{name}: {'imported' if stored else 'already imported (or empty)'}")
            return 0
        domains = [args.domain.lower()] if args.domain else None
        senders = await dmarc_for(store).senders(domains)
        if args.json:
            print_json([{"header_from": s.header_from, "source_ip": s.source_ip, "messages": s.messages,
                         "passed": s.passed, "failed": s.messages - s.passed, "reporters": list(s.reporters)}
                        for s in senders])
            return 0
        if not senders:
            print("chưa nhận báo cáo DMARC nào / no DMARC reports received yet")
            return 0
        print("header_from\tsource_ip\tmessages\tpass\tfail\treporters")
        for s in senders:
            print(f"{s.header_from}\t{s.source_ip}\t{s.messages}\t{s.passed}\t{s.messages - s.passed}\t"
                  f"{','.join(s.reporters)}")
        return 0

    return await with_store(config, run)


# -- mail find / remove ------------------------------------------------------------


def _since(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CliError(f"--since: not an ISO date: {text!r}") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


async def _mail_find(config: Config, args: argparse.Namespace) -> int:
    name, sep, value = args.header.partition(":")
    if not sep or not name.strip() or not value.strip():
        raise CliError("--header must be NAME:VALUE, e.g. --header 'subject:quảng cáo'")
    since = _since(args.since)

    async def run(store: MailStore) -> int:
        try:
            found = await activity_for(store).find_messages(
                name, value.strip(), since=since, limit=args.limit
            )
        except ValueError as exc:
            raise CliError(str(exc)) from None
        if args.json:
            print_json([
                {"id": m.id, "address": m.address, "folder": m.folder, "uid": m.uid,
                 "date": m.internal_date.isoformat(), "size": m.size, "from": m.from_,
                 "subject": m.subject, "message_id": m.message_id}
                for m in found
            ])
        else:
            for m in found:
                print(f"{m.id}\t{m.address}\t{m.folder}\tuid {m.uid}\t{m.internal_date:%Y-%m-%d %H:%M}\t"
                      f"{m.from_[:40]}\t{m.subject[:60]}")
            print(f"{len(found)} message(s)", file=sys.stderr)
        return 0

    return await with_store(config, run)


async def _mail_remove(config: Config, args: argparse.Namespace) -> int:
    reason = args.reason.strip()
    if not reason:
        raise CliError("--reason must not be empty")
    by = By(actor=cli_actor(), decision=args.decision)

    async def run(store: MailStore) -> int:
        activity, directory = activity_for(store), open_directory(store)
        located = []
        for message_id in args.ids:
            found = await activity.locate(message_id)
            if found is None:
                raise CliError(f"no message with id {message_id}")
            located.append(found)
        for m in located:
            # Through the store's own operations: IMAP sessions see an ordinary
            # EXPUNGE, and QRESYNC clients get the UID as VANISHED.
            await store.store_flags(m.account_id, m.folder_id, [Uid(m.uid)], ["\\Deleted"], FlagMode.ADD)
            # Removed for good, not to the deleted-mail vault (unless a hold keeps it).
            await store.expunge(m.account_id, m.folder_id, [Uid(m.uid)], vault=False)
            await directory.audit(
                "mail.remove", m.address, by=by,
                detail={"message": m.id, "folder": m.folder, "uid": m.uid, "message_id": m.message_id,
                        "subject": m.subject, "from": m.from_, "reason": reason,
                        "host": os.uname().nodename},
            )
            print(f"removed {m.id} ({m.address} {m.folder} uid {m.uid})")
        return 0

    return await with_store(config, run)
