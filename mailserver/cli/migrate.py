"""``mailserver migrate imap``: move mailboxes over from another IMAP server
(mailserver/transfer/migrate.py), one (flags) or many (``--csv FILE``)."""

from __future__ import annotations

import argparse
import csv
import ipaddress
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Final

from mailserver.cli.common import CliError, SubParsers, print_json, with_store
from mailserver.config import Config
from mailserver.transfer.folders import parse_folder_map
from mailserver.transfer.imapsource import Security
from mailserver.transfer.migrate import MailboxJob, MailboxReport, iter_summary, migrate_mailbox
from storage.api import MailStore

VIETNAM: Final = timezone(timedelta(hours=7))
"""A --since without a zone is a date or time in Việt Nam (UTC+07:00)."""

CSV_COLUMNS: Final = (
    "to", "host", "port", "security", "user", "password_file", "password", "folder_map", "since",
)
"""The --csv columns (header row required; the order is free):
to, host, user and password_file or password are required; port (default 143,
or 993 with security=tls), security (plain, tls or starttls; default plain),
folder_map (SRC=DST rules separated by ';'), since (a date, as --since)."""


def register(sub: SubParsers, common: argparse.ArgumentParser) -> None:
    migrate = sub.add_parser("migrate", parents=[common], help="move mail in from another server")
    actions = migrate.add_subparsers(dest="migrate_command", required=True, metavar="SOURCE")
    imap = actions.add_parser(
        "imap", parents=[common],
        help="copy mailboxes from another IMAP server (idempotent, resumable)",
        description="Copy every folder with flags, keywords and INTERNALDATE from another IMAP "
        "server into an existing account. A second run copies only what is new.",
    )
    imap.add_argument("--host", help="source IMAP server")
    imap.add_argument("--port", type=int, help="default 143, or 993 with --tls")
    security = imap.add_mutually_exclusive_group()
    security.add_argument("--tls", action="store_const", dest="security", const="tls",
                          help="implicit TLS (port 993)")
    security.add_argument("--starttls", action="store_const", dest="security", const="starttls",
                          help="STARTTLS on the plain port")
    imap.add_argument("--ca-file", metavar="FILE", help="CA certificates that sign the source's certificate")
    imap.add_argument("--user", help="login name at the source")
    imap.add_argument("--password-file", metavar="FILE", help="file whose first line is the source password")
    imap.add_argument("--to", metavar="ADDRESS", help="our account that receives the mail")
    imap.add_argument("--folder-map", metavar="SRC=DST", action="append", default=[],
                      help="put source folder SRC (and its children) into DST; empty DST skips it")
    imap.add_argument("--since", metavar="DATE",
                      help="only messages received on or after DATE (YYYY-MM-DD, Việt Nam time)")
    imap.add_argument("--csv", metavar="FILE",
                      help=f"many mailboxes, one per row; columns: {', '.join(CSV_COLUMNS)}")
    imap.add_argument("--dry-run", action="store_true", help="report what would be copied; write nothing")
    imap.add_argument("--json", action="store_true", help="print the summary as JSON")
    imap.set_defaults(action=_migrate_imap, security=None)


def parse_since(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CliError(f"ngày không hợp lệ / invalid date (YYYY-MM-DD): {text!r}") from None
    return value.replace(tzinfo=VIETNAM) if value.tzinfo is None else value


def read_password(path: str) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"không đọc được tệp mật khẩu / cannot read the password file {path}: {exc}") from None
    password = text.splitlines()[0] if text else ""
    if not password:
        raise CliError(f"tệp mật khẩu trống / the password file is empty: {path}")
    return password


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _job_from_args(args: argparse.Namespace) -> MailboxJob:
    needed = ("host", "user", "password_file", "to")
    missing = [f"--{n.replace('_', '-')}" for n in needed if not getattr(args, n)]
    if missing:
        raise CliError(f"thiếu / missing {', '.join(missing)} (hoặc dùng / or use --csv FILE)")
    try:
        rules = parse_folder_map(args.folder_map)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    return MailboxJob(
        host=args.host, port=args.port, security=args.security or "plain", user=args.user,
        password=read_password(args.password_file), to=args.to, folder_map=rules,
        since=parse_since(args.since) if args.since else None, ca_file=args.ca_file,
    )


def read_csv_jobs(path: str, ca_file: str | None) -> tuple[list[tuple[int, MailboxJob]], list[str]]:
    """Jobs from the --csv file, and one bilingual line per bad row (skipped)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.DictReader(handle))
            header = rows[0].keys() if rows else set()
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CliError(f"không đọc được tệp CSV / cannot read the CSV file {path}: {exc}") from None
    unknown = sorted(set(header) - set(CSV_COLUMNS) - {""})
    if unknown:
        raise CliError(f"cột không rõ / unknown column: {', '.join(map(str, unknown))} "
                       f"(các cột / columns: {', '.join(CSV_COLUMNS)})")
    base = Path(path).parent
    jobs: list[tuple[int, MailboxJob]] = []
    bad: list[str] = []
    for line, row in enumerate(rows, start=2):
        try:
            jobs.append((line, _job_from_row(row, base, ca_file)))
        except (CliError, ValueError) as exc:
            bad.append(f"dòng / row {line}: {exc}")
    return jobs, bad


def _job_from_row(row: dict[str, str | None], base: Path, ca_file: str | None) -> MailboxJob:
    def cell(name: str) -> str:
        return (row.get(name) or "").strip()

    missing = [n for n in ("to", "host", "user") if not cell(n)]
    if not cell("password_file") and not cell("password"):
        missing.append("password_file/password")
    if missing:
        raise CliError(f"thiếu cột / missing column value: {', '.join(missing)}")
    security = cell("security").lower() or "plain"
    if security not in ("plain", "tls", "starttls"):
        raise CliError(
            f"security phải là plain, tls hoặc starttls / must be plain, tls or starttls: {security!r}"
        )
    port: int | None = None
    if cell("port"):
        if not cell("port").isdigit() or not 0 < int(cell("port")) < 65536:
            raise CliError(f"cổng không hợp lệ / invalid port: {cell('port')!r}")
        port = int(cell("port"))
    if cell("password_file"):
        password_path = Path(cell("password_file"))
        password = read_password(str(password_path if password_path.is_absolute() else base / password_path))
    else:
        password = cell("password")
    rules = parse_folder_map(r for r in cell("folder_map").split(";") if r.strip())
    sec: Security = "tls" if security == "tls" else "starttls" if security == "starttls" else "plain"
    return MailboxJob(
        host=cell("host"), port=port, security=sec, user=cell("user"), password=password,
        to=cell("to"), folder_map=rules, since=parse_since(cell("since")) if cell("since") else None,
        ca_file=ca_file,
    )


async def _migrate_imap(config: Config, args: argparse.Namespace) -> int:
    bad_rows: list[str] = []
    if args.csv:
        if args.host or args.user or args.to or args.password_file:
            raise CliError("--csv không dùng chung với --host/--user/--to / "
                           "--csv excludes --host/--user/--to")
        jobs, bad_rows = read_csv_jobs(args.csv, args.ca_file)
        for line in bad_rows:
            print(f"mailserver: bỏ qua / skipped {line}", file=sys.stderr)
    else:
        jobs = [(0, _job_from_args(args))]
    for _, job in jobs:
        if job.security == "plain" and not _is_loopback(job.host):
            print(f"mailserver: cảnh báo: mật khẩu gửi tới {job.host} không mã hóa / warning: the password "
                  f"goes to {job.host} unencrypted (--tls, --starttls)", file=sys.stderr)

    async def run(store: MailStore) -> int:
        reports: list[MailboxReport] = []
        for _, job in jobs:
            report = await migrate_mailbox(
                store, job, dry_run=args.dry_run, ledger_dir=config.data_dir / "migrate"
            )
            if report.error:
                print(f"mailserver: {report.to}: {report.error}", file=sys.stderr)
            reports.append(report)
        if args.json:
            print_json({"dry_run": args.dry_run, "bad_rows": bad_rows,
                        "mailboxes": [r.as_json() for r in reports]})
        else:
            for line in iter_summary(reports, dry_run=args.dry_run):
                print(line)
            for line in bad_rows:
                print(f"  bỏ qua / skipped {line}")
        failed = bad_rows or any(r.errors for r in reports)
        return 1 if failed else 0

    return await with_store(config, run)
