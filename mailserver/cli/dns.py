"""``mailserver dns records [--domain D] [--json]``: every DNS record a local domain
publishes (``mailserver/ops/dnsrecords.py``), in zone-file format or as JSON."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from mailserver.cli.common import CliError, SubParsers, print_json
from mailserver.cli.routing import added_domains
from mailserver.config import Config
from mailserver.ops.dnsrecords import records, zone_text
from pki.keystore import KeyStoreError


def register(sub: SubParsers, common: argparse.ArgumentParser) -> None:
    dns = sub.add_parser("dns", parents=[common], help="DNS records to publish")
    actions = dns.add_subparsers(dest="dns_command", required=True, metavar="ACTION")
    show = actions.add_parser(
        "records", parents=[common],
        help="MX, SPF, DKIM, DMARC, SRV (RFC 6186), autoconfiguration, MTA-STS, TLS-RPT and TLSA records,"
        " zone-file format",
    )
    show.add_argument(
        "--domain", default=None, help="only this local domain; default: all (server.domains, domain add)"
    )
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(action=_records)


async def _records(config: Config, args: argparse.Namespace) -> int:
    # Domains added with `mailserver domain add` (alias domains too) receive
    # and send mail here as well: they publish the same records.
    added = [d.name for d in await added_domains(config)]
    local = [*config.server.domains, *added]
    if args.domain is not None and args.domain.lower().rstrip(".") not in {d.lower() for d in local}:
        known = ", ".join(local)
        raise CliError(f"{args.domain!r} không phải tên miền cục bộ / is not a local domain "
                       f"(server.domains, domain add: {known})")
    domains = [args.domain.lower().rstrip(".")] if args.domain else local
    today = datetime.now(UTC).date()
    try:
        if args.json:
            print_json([r.as_dict() | {"domain": d} for d in domains for r in records(config, d, today)])
        else:
            print(zone_text(config, domains, today), end="")
    except KeyStoreError as exc:
        raise CliError(str(exc)) from None
    return 0
