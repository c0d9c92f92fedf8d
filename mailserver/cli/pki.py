"""``mailserver pki init|issue|issue-tls|revoke|crl|import|list``: the internal
CA (pki/ca.py; RFC 5280, RFC 8550/8551) that signs official mail (Decision
70/2009/QĐ-UBND Điều 7 khoản 1: the Sở deploys PKI and digital signatures).

``pki issue --out FILE.p12`` never writes a private key in clear: without
``--p12-password-stdin`` a strong password is generated, used, and printed once
(as ``account add`` does with initial passwords). ``pki revoke`` publishes the
new CRL at once when the passphrase is at hand; otherwise the running server
does within ``pki.crl_check_interval`` seconds."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from mailserver.auth import generate_password
from mailserver.certs import crl_url
from mailserver.cli.common import CliError, SubParsers, print_json, with_store
from mailserver.config import Config
from pki.ca import ALGORITHMS, REASONS, CertificateAuthority, CertRecord, PkiError, atomic_write, load_import
from storage.api import MailStore
from storage.directory import open_directory


def register(sub: SubParsers, common: argparse.ArgumentParser) -> None:
    pki = sub.add_parser("pki", parents=[common], help="certificate authority, S/MIME and TLS certificates")
    actions = pki.add_subparsers(dest="pki_command", required=True, metavar="ACTION")

    init = actions.add_parser("init", parents=[common], help="create the root and issuing CA")
    init.add_argument("--algorithm", choices=ALGORITHMS, default="ecdsa-p256")
    init.add_argument("--organization", default=None, help="O= of the CA (default pki.organization)")
    init.add_argument("--force", action="store_true", help="replace an existing CA")
    init.set_defaults(action=_init)

    issue = actions.add_parser("issue", parents=[common], help="issue an S/MIME certificate for ADDRESS")
    issue.add_argument("address")
    issue.add_argument("--algorithm", choices=ALGORITHMS, default="ecdsa-p256")
    issue.add_argument("--name", default=None, help="CN (default: the person's or agency's name)")
    issue.add_argument("--organization", default=None, help="O= (default: the agency's name)")
    issue.add_argument("--out", type=Path, default=None, metavar="FILE.p12", help="export as PKCS#12")
    issue.add_argument("--p12-password-stdin", action="store_true",
                       help="read the PKCS#12 password from standard input (without it a strong "
                       "password is generated and printed once)")
    issue.add_argument("--json", action="store_true")
    issue.set_defaults(action=_issue)

    tls = actions.add_parser("issue-tls", parents=[common], help="server certificate for the listeners")
    tls.add_argument("hostname")
    tls.add_argument("--alt", action="append", default=[], help="further DNS name or IP (repeatable)")
    tls.add_argument("--algorithm", choices=ALGORITHMS, default="ecdsa-p256")
    tls.set_defaults(action=_issue_tls)

    rev = actions.add_parser("revoke", parents=[common], help="revoke by serial or every cert of an address")
    rev.add_argument("target", metavar="SERIAL|ADDRESS")
    rev.add_argument("--reason", choices=list(REASONS), default="unspecified")
    rev.add_argument("--json", action="store_true")
    rev.set_defaults(action=_revoke)

    crl = actions.add_parser("crl", parents=[common], help="publish the CRL (also kept as <pki>/crl.pem)")
    crl.add_argument("--out", type=Path, default=None, help="write here too (.der: DER, else PEM)")
    crl.set_defaults(action=_crl)

    imp = actions.add_parser("import", parents=[common], help="import an external CA's chain and key")
    src = imp.add_mutually_exclusive_group(required=True)
    src.add_argument("--chain", type=Path, help="PEM certificates (may include the key)")
    src.add_argument("--p12", type=Path, help="PKCS#12 file")
    imp.add_argument("--key", type=Path, default=None, help="PEM private key for --chain")
    imp.add_argument("--password-stdin", action="store_true", help="read the file's password from stdin")
    imp.set_defaults(action=_import)

    lst = actions.add_parser("list", parents=[common], help="certificates issued or imported")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(action=_list)


def _ca(config: Config) -> CertificateAuthority:
    try:
        return CertificateAuthority.open(config.pki, config.data_dir, crl_url=crl_url(config))
    except PkiError as exc:
        raise CliError(str(exc)) from None


def record_dict(r: CertRecord) -> dict[str, Any]:
    return {"serial": r.serial, "kind": r.kind, "subject": r.subject, "common_name": r.common_name,
            "not_after": r.not_after, "revoked_at": r.revoked_at, "reason": r.reason}


async def _init(config: Config, args: argparse.Namespace) -> int:
    ca = _ca(config)
    try:
        root, issuing = ca.init(algorithm=args.algorithm, organization=args.organization, force=args.force)
    except PkiError as exc:
        raise CliError(str(exc)) from None
    print(f"root CA: {root.subject.rfc4514_string()} ({ca.directory / 'root.pem'})")
    print(f"issuing CA: {issuing.subject.rfc4514_string()} ({ca.directory / 'ca.pem'})")
    return 0


async def _names(config: Config, address: str) -> tuple[str, str]:
    """(CN, O) from the directory: the person's name and agency, or the agency's name."""

    async def run(store: MailStore) -> tuple[str, str]:
        directory = open_directory(store)
        person = await directory.person_by_address(address)
        if person is not None:
            agency = await directory.get_agency(person.agency_code)
            return person.full_name, agency.name if agency else ""
        for agency in await directory.list_agencies():
            if agency.address and agency.address.lower() == address:
                return agency.name, agency.name
        account = await store.get_account(address)
        if account is None:
            raise CliError(f"không có hộp thư / no mailbox {address}")
        return account.name or address, config.pki.organization

    result: tuple[str, str] = ("", "")

    async def keep(store: MailStore) -> int:
        nonlocal result
        result = await run(store)
        return 0

    await with_store(config, keep)
    return result


async def _issue(config: Config, args: argparse.Namespace) -> int:
    address = args.address.strip().lower()
    ca = _ca(config)
    cn, org = await _names(config, address)
    generated: str | None = None
    password: bytes | None = None
    if args.out is not None:
        if args.p12_password_stdin:
            password = sys.stdin.readline().rstrip("\r\n").encode()
            if not password:
                raise CliError("mật khẩu PKCS#12 rỗng / empty PKCS#12 password on standard input")
        else:
            # Never a private key in clear on disk: a generated password, shown once.
            generated = generate_password()
            password = generated.encode()
    try:
        record, _, _ = ca.issue_smime(address, args.name or cn, args.organization or org,
                                      algorithm=args.algorithm)
        if args.out is not None:
            atomic_write(args.out, ca.pkcs12(record, password, f"{cn} <{address}>"), 0o600)
    except PkiError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        data = record_dict(record)
        if args.out is not None:
            data["p12"] = str(args.out)
        if generated is not None:
            data["p12_password"] = generated
        print_json(data)
    else:
        print(f"đã cấp chứng thư {record.serial} cho {address} (CN={record.common_name}), hạn đến "
              f"{record.not_after} / issued {record.serial} for {address}, valid until {record.not_after}")
        if args.out is not None:
            print(f"đã ghi PKCS#12 vào / PKCS#12 written to {args.out}")
        if generated is not None:
            print(f"mật khẩu PKCS#12 (chỉ hiện một lần) / PKCS#12 password (shown once): {generated}")
    return 0


async def _issue_tls(config: Config, args: argparse.Namespace) -> int:
    ca = _ca(config)
    try:
        record, cert, key = ca.issue_tls(args.hostname, args.alt, algorithm=args.algorithm)
    except PkiError as exc:
        raise CliError(str(exc)) from None
    chain = cert.public_bytes(serialization.Encoding.PEM) + b"".join(
        c.public_bytes(serialization.Encoding.PEM) for c in ca.chain()[:1]
    )
    atomic_write(config.tls_key, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()), 0o600)
    atomic_write(config.tls_cert, chain)
    print(f"issued {record.serial} for {record.subject}; wrote {config.tls_cert} and {config.tls_key} "
          "(restart the server to use it)")
    return 0


async def _revoke(config: Config, args: argparse.Namespace) -> int:
    ca = _ca(config)
    try:
        changed = ca.revoke(args.target, args.reason)
    except PkiError as exc:
        raise CliError(str(exc)) from None
    if not changed:
        raise CliError(f"no unrevoked certificate matches {args.target}")
    published = ca.publish_if_possible()
    if args.json:
        print_json([record_dict(r) for r in changed])
    else:
        for r in changed:
            print(f"đã thu hồi / revoked {r.serial} ({r.subject}): {r.reason}")
        if published:
            print(f"đã công bố lại CRL / CRL republished: {ca.directory / 'crl.pem'}")
        else:
            print("CRL sẽ được máy chủ đang chạy công bố lại / the running server republishes the CRL "
                  f"within {config.pki.crl_check_interval:g} s (or run `mailserver pki crl` "
                  "with the passphrase)")
    return 0


async def _crl(config: Config, args: argparse.Namespace) -> int:
    ca = _ca(config)
    try:
        crl = ca.publish_crl()
    except PkiError as exc:
        raise CliError(str(exc)) from None
    if args.out is not None:
        der = str(args.out).lower().endswith((".der", ".crl"))
        atomic_write(args.out, crl.public_bytes(
            serialization.Encoding.DER if der else serialization.Encoding.PEM))
    print(f"CRL with {len(list(crl))} revoked certificate(s), next update {crl.next_update_utc}")
    return 0


async def _import(config: Config, args: argparse.Namespace) -> int:
    ca = _ca(config)
    password = sys.stdin.readline().rstrip("\r\n").encode() if args.password_stdin else None
    path: Path = args.p12 if args.p12 is not None else args.chain
    try:
        data = path.read_bytes()
        key_data = args.key.read_bytes() if args.key is not None else None
    except OSError as exc:
        raise CliError(f"cannot read {exc.filename}: {exc.strerror}") from None
    try:
        certs, key = load_import(data, key_data, password, args.p12 is not None)
        imported = ca.import_external(certs, key)
    except PkiError as exc:
        raise CliError(str(exc)) from None
    anchors = sum(1 for c in certs if c.issuer == c.subject)
    print(f"imported {len(certs)} certificate(s), {anchors} trust anchor(s)")
    for r in imported:
        print(f"  {r.serial} for {r.subject} (signs mail from it)")
    return 0


async def _list(config: Config, args: argparse.Namespace) -> int:
    try:
        records = _ca(config).records()
    except PkiError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print_json([record_dict(r) for r in records])
        return 0
    for r in records:
        state = f"revoked {r.revoked_at[:10]} ({r.reason})" if r.revoked_at else f"until {r.not_after[:10]}"
        print(f"{r.serial:40} {r.kind:8} {r.subject:35} {state}")
    return 0
