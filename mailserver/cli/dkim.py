"""``mailserver dkim keygen|show``: DKIM keys and the DNS records to publish
(RFC 6376 section 3.6; Ed25519 per RFC 8463).

``keygen`` makes a new key the active one for its domain and algorithm; the key
it replaces stays published (``show`` prints it) until ``--retire-after``, so
mail signed with it just before the switch still verifies (see
``pki.keystore``). Works with the server stopped or running: the server
re-reads the key index when it changes.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, date, datetime, timedelta

from mailserver.cli.common import CliError, SubParsers, print_json, with_store
from mailserver.config import Config
from pki.dkim import default_selector, key_directory
from pki.keystore import ALGORITHMS, Algorithm, DkimKey, DkimKeyStore, KeyStoreError, key_summary
from storage.api import MailStore
from storage.routes import Domain, open_routes


def register(sub: SubParsers, common: argparse.ArgumentParser) -> None:
    dkim = sub.add_parser("dkim", parents=[common], help="DKIM signing keys and their DNS records")
    actions = dkim.add_subparsers(dest="dkim_command", required=True, metavar="ACTION")
    keygen = actions.add_parser(
        "keygen", parents=[common], help="generate a key, make it active and print its DNS record"
    )
    keygen.add_argument("--domain", required=True, help="a local domain (server.domains)")
    keygen.add_argument(
        "--selector", default=None, help="selector name; default s<YYYYMM> (rsa) or e<YYYYMM> (ed25519)"
    )
    keygen.add_argument(
        "--algorithm", choices=ALGORITHMS, default="rsa", help="rsa (2048 bits, default) or ed25519"
    )
    keygen.add_argument(
        "--retire-after",
        type=_parse_date,
        default=None,
        metavar="YYYY-MM-DD",
        help="keep the key this one replaces published until this date; default: dkim.retire_days from now",
    )
    keygen.add_argument("--json", action="store_true", help="machine-readable output")
    keygen.set_defaults(action=_keygen)
    show = actions.add_parser(
        "show", parents=[common], help="print the DNS records to publish (active and retiring keys)"
    )
    show.add_argument("--domain", default=None, help="only this domain")
    show.add_argument("--all", action="store_true", help="include expired keys")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(action=_show)


def _parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def _store(config: Config) -> DkimKeyStore:
    return DkimKeyStore(key_directory(config.dkim, config.data_dir))


def _describe(key: DkimKey, today: date) -> str:
    state = key.state(today)
    until = f" until {key.retire_after}" if key.status == "retiring" and key.retire_after else ""
    return f"; {key.domain} selector {key.selector} ({key.algorithm}), {state}{until}, created {key.created}"


async def _added_domains(config: Config) -> list[Domain]:
    found: list[Domain] = []

    async def run(store: MailStore) -> int:
        found.extend(await open_routes(store).domains())
        return 0

    await with_store(config, run)
    return found


async def _keygen(config: Config, args: argparse.Namespace) -> int:
    if not config.is_local_domain(args.domain):
        # Domains added with `mailserver domain add` sign too (alias domains included:
        # their users send as x@D).
        added = [d.name for d in await _added_domains(config)]
        if args.domain.strip().lower().rstrip(".") not in added:
            domains = ", ".join([*config.server.domains, *added])
            raise CliError(f"{args.domain!r} is not a local domain (server.domains, domain add: {domains})")
    now = datetime.now(UTC)
    algorithm: Algorithm = args.algorithm
    selector: str = args.selector or default_selector(algorithm, now)
    retire_after: date = args.retire_after or (now + timedelta(days=config.dkim.retire_days)).date()
    store = _store(config)
    try:
        replaced = [k for k in store.active(args.domain) if k.algorithm == algorithm]
        # RSA key generation takes a moment; keep the event loop free anyway.
        key = await asyncio.to_thread(
            store.generate, args.domain, selector, algorithm, retire_after=retire_after, now=now
        )
    except KeyStoreError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print_json(key_summary(key, now.date()))
        return 0
    print(_describe(key, now.date()))
    print(key.zone_line)
    for old in replaced:
        print(f"; selector {old.selector} is retiring: keep its record published until {retire_after}")
    return 0


async def _show(config: Config, args: argparse.Namespace) -> int:
    today = datetime.now(UTC).date()
    store = _store(config)
    try:
        keys = store.keys(args.domain) if args.all else store.published(args.domain, today)
    except KeyStoreError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print_json([key_summary(k, today) for k in keys])
        return 0
    if not keys:
        print("; no DKIM keys" + (f" for {args.domain}" if args.domain else ""))
        return 0
    for key in keys:
        print(_describe(key, today))
        print(key.zone_line)
    return 0
