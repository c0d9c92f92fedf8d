"""``mailserver pdf sign FILE --as AGENCY|ADDRESS -o OUT`` and ``mailserver pdf verify
FILE [--json]``: signatures inside PDF documents (PAdES; pki/pdfsig.py), the
signature Nghị định 30/2020/NĐ-CP asks on an agency's electronic documents.

``verify`` exits 0 when the document's signatures are all valid, 3 otherwise
(invalid, revoked, untrusted or unsigned), 1 when the file cannot be read."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from mailserver.cli.common import CliError, SubParsers, print_json, with_store
from mailserver.config import Config
from mailserver.dispatch.pdfcheck import pdf_trust
from mailserver.dispatch.pdfsign import PdfSigner, SignerError, resolve_signer, sign_document_async
from pki.ca import CertificateAuthority, PkiError, atomic_write
from pki.pdfsig import PdfCheck, verify_pdf
from storage.api import MailStore

STATUS_TEXT = {
    "valid": "hợp lệ / valid",
    "invalid": "không hợp lệ / invalid",
    "revoked": "chứng thư đã bị thu hồi / revoked",
    "untrusted": "không xác minh được nguồn gốc / untrusted",
    "unsigned": "không có chữ ký số / unsigned",
}


def register(sub: SubParsers, common: argparse.ArgumentParser) -> None:
    pdf = sub.add_parser("pdf", parents=[common], help="sign a PDF document (PAdES) or check its signatures")
    actions = pdf.add_subparsers(dest="pdf_command", required=True, metavar="ACTION")

    sign = actions.add_parser("sign", parents=[common],
                              help="sign FILE with the certificate of an agency or address")
    sign.add_argument("file", type=Path, metavar="FILE")
    sign.add_argument("--as", dest="signer", required=True, metavar="AGENCY|ADDRESS",
                      help="agency code, agency address or person's address")
    sign.add_argument("-o", "--out", type=Path, required=True, metavar="OUT", help="the signed PDF")
    sign.set_defaults(action=_sign)

    verify = actions.add_parser("verify", parents=[common], help="check the signatures inside FILE")
    verify.add_argument("file", type=Path, metavar="FILE")
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(action=_verify)


def _ca(config: Config) -> CertificateAuthority:
    try:
        return CertificateAuthority.open(config.pki, config.data_dir)
    except PkiError as exc:
        raise CliError(str(exc)) from None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CliError(f"không đọc được / cannot read {path}: {exc.strerror}") from None


async def _sign(config: Config, args: argparse.Namespace) -> int:
    data = _read(args.file)
    if not data.lstrip()[:5] == b"%PDF-":
        raise CliError(f"không phải tệp PDF / not a PDF file: {args.file}")
    ca = _ca(config)
    found: list[PdfSigner] = []

    async def run(store: MailStore) -> int:
        try:
            found.append(await resolve_signer(config, store, args.signer))
        except SignerError as exc:
            raise CliError(str(exc)) from None
        return 0

    await with_store(config, run)
    try:
        signed = await sign_document_async(config, ca, found[0], data)
    except SignerError as exc:
        raise CliError(str(exc)) from None
    try:
        atomic_write(args.out, signed)
    except OSError as exc:
        raise CliError(f"không ghi được / cannot write {args.out}: {exc.strerror}") from None
    who = found[0]
    print(f"đã ký / signed: {args.out} ({who.signer or who.address}, {who.address})")
    return 0


def describe(check: PdfCheck) -> str:
    text = f"{check.file}: {STATUS_TEXT[check.status]}"
    if check.signer:
        text += f"; người ký / signer: {check.signer}"
    if check.signed_at:
        source = "dấu thời gian / time-stamp" if check.timestamped else "máy người ký / signer's clock"
        text += f"; lúc / signed at: {check.signed_at} ({source})"
    if check.reason and check.status != "valid":
        text += f"; lý do / reason: {check.reason}"
    return text


async def _verify(config: Config, args: argparse.Namespace) -> int:
    data = _read(args.file)
    try:
        trust = pdf_trust(_ca(config), config.pki.fetch_revocation)
    except PkiError as exc:
        raise CliError(str(exc)) from None
    check = await asyncio.to_thread(verify_pdf, data, args.file.name, trust, max_size=config.pki.pdf_max_size,
                                    budget=config.pki.pdf_timeout)
    if args.json:
        print_json(check.as_dict())
    else:
        print(describe(check))
    return 0 if check.status == "valid" else 3
