"""``mailserver audit [--since DATE] [--subject X] [--json]``: the audit log of every
directory and account change (who, what, when, on which decision)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from mailserver.cli.common import CliError, SubParsers, print_json
from mailserver.cli.directory import with_service
from mailserver.config import Config
from mailserver.directory.service import DirectoryService


def register(sub: SubParsers, common: argparse.ArgumentParser) -> None:
    audit = sub.add_parser("audit", parents=[common], help="audit log of directory and account changes")
    audit.add_argument("--since", default=None, metavar="DATE", help="ISO date or date-time (UTC if no zone)")
    audit.add_argument("--subject", default=None, help="only entries about this address or agency code")
    audit.add_argument("--limit", type=int, default=None, help="only the newest N entries")
    audit.add_argument("--json", action="store_true", help="machine-readable output")
    audit.set_defaults(action=_audit)


def parse_since(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CliError(f"--since: not an ISO date: {text!r}") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


async def _audit(config: Config, args: argparse.Namespace) -> int:
    since = parse_since(args.since) if args.since else None

    async def run(service: DirectoryService) -> int:
        entries = await service.directory.audit_log(since=since, subject=args.subject, limit=args.limit)
        if args.json:
            print_json(
                [
                    {
                        "id": e.id,
                        "at": e.at.isoformat(),
                        "actor": e.actor,
                        "action": e.action,
                        "subject": e.subject,
                        "decision": e.decision,
                        "detail": dict(e.detail),
                    }
                    for e in entries
                ]
            )
        else:
            for e in entries:
                decision = f"\t[{e.decision}]" if e.decision else ""
                detail = " ".join(f"{k}={v}" for k, v in sorted(e.detail.items()) if v not in (None, ""))
                print(f"{e.at:%Y-%m-%d %H:%M:%S}\t{e.actor}\t{e.action}\t{e.subject}{decision}\t{detail}")
        return 0

    return await with_service(config, run)
