"""Signed dispatch of an official document to agency mailboxes.

Decision 70/2009/QĐ-UBND: whenever an agency issues a paper document, its
electronic copy is e-mailed to every recipient under "Nơi nhận", and
digital signatures give it weight (Điều 11). ``Dispatcher.send``:

0. signs a PDF document inside (PAdES, with a visible block on its last
   page; mailserver/dispatch/pdfsign.py) with the agency's certificate, unless
   ``pdf_signature=False`` (``--no-pdf-signature``); a .docx goes as it is;
1. builds the message (RFC 5322; the document as a base64 attachment,
   RFC 2045/2183, with the number in ``X-Document-Number``);
2. runs the content policy's DATA stage on it, exactly as submission does
   (Điều 6: classified documents are never sent by e-mail) -- a refusal or a
   quarantine verdict stops the dispatch and nothing is sent;
3. signs it with the sending agency's certificate (S/MIME, RFC 8551);
4. stores it durably, with ``X-PDF-Signature`` checked as the MX would,
   in each local recipient's INBOX (``delivered``), queues
   recipients in other domains (``queued``, DKIM-signed at enqueue) and marks
   unknown or disabled local mailboxes ``bounced``;
5. files the issuer's copy, seen, in the agency mailbox's Sent folder ("Lưu:
   VT"; ``sent_copy``);
6. records the dispatch with per-recipient status under
   ``<data_dir>/dispatch/<id>.json`` (``mailserver dispatch status ID``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import mimetypes
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any, Final, Literal

from mailserver.config import Config
from mailserver.dispatch.document import number_label
from mailserver.dispatch.pdfcheck import check_message, pdf_trust, with_pdf_headers
from mailserver.dispatch.pdfsign import SignerError, resolve_signer, sign_document_async
from mailserver.dispatch.signing import SmimeHooks
from mailserver.headers import POLICY
from mailserver.sieve.deliver import SieveDelivery
from pki.ca import CertificateAuthority, PkiError, atomic_write
from policy.context import Direction, EnvelopeInfo, PolicyContext, SessionInfo
from policy.pipeline import Pipeline
from storage.api import FolderExists, MailStore, OverQuota
from storage.directory import open_directory

_ID: Final = "%Y%m%d-%H%M%S"


class DispatchError(Exception):
    """Nothing was sent: the reason, Vietnamese first, for the operator."""


@dataclass(slots=True)
class RecipientStatus:
    address: str
    status: str
    """``delivered``, ``queued`` or ``bounced``."""
    detail: str = ""


@dataclass(slots=True)
class DispatchRecord:
    id: str
    created: str
    agency: str
    sender: str
    subject: str
    number: str
    document: str
    sha256: str
    message_id: str
    signed: bool
    recipients: list[RecipientStatus] = field(default_factory=list)
    sent_copy: str = ""
    """The sending agency's folder holding its copy ("Lưu: VT"), or "" (older records)."""
    sent_copy_error: str = ""
    """Why the copy could not be filed (the agency mailbox is full), or ""."""
    pdf_signed: bool = False
    """The PDF document was signed inside (PAdES) before sending."""
    pdf_checks: list[dict[str, Any]] = field(default_factory=list)
    """The X-PDF-Signature verdict on each PDF as sent (pki.pdfsig.PdfCheck.as_dict)."""


def document_subject(number: str, summary: str, filename: str) -> str:
    """The subject of a dispatch: the document's number and summary (trích yếu),
    "Số 123/UBND-VP - V/v triển khai …"; the file name only when the document
    gives no summary."""
    label = number_label(number)
    text = summary or filename
    return f"{label} - {text}" if label else text


class DispatchLog:
    def __init__(self, data_dir: Path) -> None:
        self.directory = data_dir / "dispatch"

    def new_id(self, now: datetime) -> str:
        return f"{now.strftime(_ID)}-{secrets.token_hex(2)}"

    def save(self, record: DispatchRecord) -> None:
        text = json.dumps(asdict(record), ensure_ascii=False, indent=2) + "\n"
        atomic_write(self.directory / f"{record.id}.json", text.encode("utf-8"))

    def get(self, dispatch_id: str) -> DispatchRecord:
        if not dispatch_id or "/" in dispatch_id or dispatch_id.startswith("."):
            raise DispatchError(f"không có công văn / no such dispatch: {dispatch_id!r}")
        path = self.directory / f"{dispatch_id}.json"
        try:
            data = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            raise DispatchError(f"không có công văn / no such dispatch: {dispatch_id}") from None
        except (OSError, ValueError) as exc:
            raise DispatchError(f"{path}: unreadable: {exc}") from None
        recipients = [RecipientStatus(**r) for r in data.pop("recipients")]
        return DispatchRecord(**data, recipients=recipients)

    def all(self) -> list[DispatchRecord]:
        if not self.directory.is_dir():
            return []
        return [self.get(p.stem) for p in sorted(self.directory.glob("*.json"))]


def build_message(*, sender: str, sender_name: str, recipients: list[str], subject: str, number: str,
                  filename: str, document: bytes, now: datetime, hostname: str) -> bytes:
    msg = EmailMessage(policy=POLICY)
    local, _, domain = sender.partition("@")
    msg["From"] = Address(sender_name, local, domain)
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid(domain=hostname)
    if number:
        msg["X-Document-Number"] = number
    msg.set_content(
        f"{sender_name} gửi văn bản điện tử{' ' + number if number else ''} (tệp đính kèm: {filename}).\n"
        "Thư được ký số S/MIME; kiểm tra chữ ký trong chương trình thư.\n\n"
        f"{sender_name} sends the electronic copy of document {number or filename} (attached),\n"
        "signed with S/MIME.\n",
        charset="utf-8", cte="quoted-printable",
    )
    ctype = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    maintype, _, subtype = ctype.partition("/")
    msg.add_attachment(document, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


class Dispatcher:
    def __init__(self, config: Config, store: MailStore) -> None:
        self.config = config
        self.store = store
        self.directory = open_directory(store)
        self.log = DispatchLog(config.data_dir)
        self._sieve: SieveDelivery | None | Literal[False] = None
        """The recipients' Sieve filters, built at first use; False when disabled."""

    async def _deliver(self, account_id: int, address: str, stored: bytes, relay: bytes, *, sender: str,
                       now: datetime, log_id: str) -> str | None:
        """Into the recipient's mailbox through its Sieve filters (mailserver/sieve/deliver.py):
        the refusal text when its script rejects the document, else None."""
        if self._sieve is None:
            self._sieve = SieveDelivery.build(self.config, self.store, outbound=None) or False
        if self._sieve is False:
            await self.store.deliver([account_id], stored, internal_date=now)
            return None
        decisions, view = await self._sieve.decide([account_id], [address], stored, sender=sender, sid=log_id)
        refused = self._sieve.rejected_by_all(decisions)
        if refused is None:
            await self._sieve.store(decisions, stored, when=now, junk=False)
        await self._sieve.after(decisions, view, relay, sender=sender, sid=log_id)
        return refused

    async def check_policy(self, sender: str, recipients: list[str], message: bytes) -> None:
        """The pipeline's DATA stage, as for submitted mail (Điều 6)."""
        # A thread rather than a process pool: one message, one CLI run.
        pipeline = Pipeline.from_settings(
            dataclasses.replace(self.config.policy, workers=0), data_dir=self.config.data_dir,
            local_domains=self.config.server.domains,
        )
        try:
            local = all(self.config.is_local_domain(r.rpartition("@")[2]) for r in recipients)
            ctx = PolicyContext(
                SessionInfo("127.0.0.1", "dispatch", sender, None, None, "dispatch"),
                EnvelopeInfo(sender, list(recipients)),
                Direction.INTERNAL if local else Direction.SUBMISSION,
                local_domains=tuple(d.lower() for d in self.config.server.domains),
            )
            outcome = await pipeline.check_data(ctx, message)
        finally:
            await pipeline.close()
        if not outcome.accepted or outcome.quarantine:
            detail = "; ".join(outcome.reasons) or outcome.reply.text
            raise DispatchError(
                f"chính sách từ chối gửi văn bản / refused by policy ({outcome.reply.code} "
                f"{outcome.reply.enhanced}): {detail}"
            )

    async def send(self, *, agency_code: str, recipients: list[str], document: Path, subject: str = "",
                   number: str = "", unsigned: bool = False, pdf_signature: bool = True) -> DispatchRecord:
        agency = await self.directory.get_agency(agency_code.strip().lower())
        if agency is None or not agency.address:
            raise DispatchError(f"không có cơ quan / no such agency: {agency_code}")
        if not recipients:
            raise DispatchError("không có nơi nhận / no recipients")
        try:
            data = document.read_bytes()
        except OSError as exc:
            raise DispatchError(f"không đọc được / cannot read {document}: {exc.strerror}") from None
        now = datetime.now(UTC).astimezone()
        sender = agency.address.lower()
        pdf = data[:1024].lstrip().startswith(b"%PDF-")
        if pdf and pdf_signature:
            # The document itself carries the agency's signature (PAdES, NĐ 30/2020):
            # it stays with the file in the recipients' document systems, where the
            # mail's S/MIME signature does not.
            try:
                ca = CertificateAuthority.open(self.config.pki, self.config.data_dir)
                who = await resolve_signer(self.config, self.store, agency.code)
                data = await sign_document_async(self.config, ca, who, data, now=now)
            except (SignerError, PkiError) as exc:
                raise DispatchError(f"không ký được tệp PDF / cannot sign the PDF: {exc} "
                                    "(--no-pdf-signature: send it as it is)") from None
        message = build_message(
            sender=sender, sender_name=agency.name, recipients=recipients,
            subject=subject or document_subject(number, "", document.name),
            number=number, filename=document.name, document=data, now=now,
            hostname=self.config.server.hostname,
        )
        await self.check_policy(sender, recipients, message)
        signed = False
        if not unsigned:
            try:
                ca = CertificateAuthority.open(self.config.pki, self.config.data_dir)
                record = ca.valid_for(sender)
                if record is None:
                    raise DispatchError(
                        f"{sender} chưa có chứng thư số / has no certificate: "
                        f"run `mailserver pki issue {sender}` (or pass --unsigned)"
                    )
                hooks = SmimeHooks(self.config, ca, None)
                message = hooks.sign_with(record, message)
                signed = True
            except PkiError as exc:
                raise DispatchError(f"không ký được / cannot sign: {exc}") from None
        log_id = self.log.new_id(now)
        received = (
            f"Received: from dispatch by {self.config.server.hostname} with local id {log_id};\r\n"
            f"\t{format_datetime(now)}\r\n"
        ).encode()
        result = DispatchRecord(
            id=log_id, created=now.isoformat(timespec="seconds"), agency=agency.code, sender=sender,
            subject=subject, number=number, document=document.name,
            sha256=hashlib.sha256(data).hexdigest(), message_id="", signed=signed,
        )
        result.message_id = _message_id(message)
        result.pdf_signed = pdf and pdf_signature
        local_copy = await self._pdf_headers(message, result) if pdf else message
        remote: list[str] = []
        for address in recipients:
            domain = address.rpartition("@")[2]
            if not self.config.is_local_domain(domain):
                remote.append(address)
                continue
            account = await self.store.get_account(address)
            if account is None or account.disabled:
                why = "no such mailbox" if account is None else "mailbox disabled"
                result.recipients.append(RecipientStatus(address, "bounced", f"550 5.1.1 {why}"))
                continue
            stored = f"Return-Path: <{sender}>\r\n".encode() + received + local_copy
            try:
                refused = await self._deliver(account.id, account.address, stored, received + local_copy,
                                              sender=sender, now=now, log_id=log_id)
            except OverQuota as full:
                reply = "552 5.2.2" if full.whole else "452 4.2.2"
                result.recipients.append(RecipientStatus(address, "bounced", f"{reply} mailbox full"))
                continue
            if refused is not None:
                result.recipients.append(RecipientStatus(address, "bounced", f"550 5.7.1 {refused}"))
                continue
            result.recipients.append(RecipientStatus(address, "delivered"))
        if remote:
            queue_id = await self._enqueue(sender, remote, received + message)
            result.recipients += [RecipientStatus(a, "queued", f"queue id {queue_id}") for a in remote]
        try:
            result.sent_copy = await self._file_copy(sender, received + local_copy, now)
        except OverQuota:  # the recipients have it; only the issuer's copy is missing
            result.sent_copy_error = "552 5.2.2 mailbox full"
        self.log.save(result)
        return result

    async def _pdf_headers(self, message: bytes, result: DispatchRecord) -> bytes:
        """The local copies with X-PDF-Signature, as the MX would add it
        (mailserver/dispatch/pdfcheck.py); the verdicts go in the record too."""
        settings = self.config.pki
        if not settings.verify_pdf:
            return message
        try:
            ca = CertificateAuthority.open(settings, self.config.data_dir)
            trust = pdf_trust(ca, settings.fetch_revocation)
        except PkiError as exc:
            raise DispatchError(str(exc)) from None
        checks = await asyncio.to_thread(check_message, message, trust, settings.pdf_max_size,
                                         settings.pdf_timeout)
        result.pdf_checks = [c.as_dict() for c in checks]
        return with_pdf_headers(message, checks)

    async def _file_copy(self, sender: str, message: bytes, now: datetime) -> str:
        """The issuer keeps a copy ("Lưu: VT", Nghị định 30/2020/NĐ-CP): the signed
        message, seen, in the agency mailbox's Sent folder (RFC 6154 \\Sent),
        created when the mailbox has none."""
        account = await self.store.get_account(sender)
        if account is None:
            return ""
        folders = await self.store.list_folders(account.id)
        sent = next((f for f in folders if f.special_use == "\\Sent"), None)
        if sent is None:
            try:
                sent = await self.store.create_folder(account.id, "Sent", special_use="\\Sent")
            except FolderExists:  # a "Sent" without the attribute: file the copy there
                sent = await self.store.get_folder(account.id, "Sent")
        await self.store.append(account.id, sent.id, message, flags=["\\Seen"], internal_date=now)
        return sent.name

    async def _enqueue(self, sender: str, recipients: list[str], message: bytes) -> int:
        from mailserver.smtp.outbound_settings import spool_path
        from mailserver.smtp.queue import Outbound
        from pki.dkim import DkimSigner, key_directory
        from pki.keystore import DkimKeyStore
        from storage.queue import open_queue

        queue = open_queue(self.config.storage_url, spool_path(self.config.outbound, self.config.data_dir))
        await queue.start()
        try:
            signer = DkimSigner(DkimKeyStore(key_directory(self.config.dkim, self.config.data_dir)),
                                self.config.dkim)
            return await Outbound(queue, signer).enqueue(sender, recipients, message, origin="submission",
                                                         account=sender)
        finally:
            await queue.close()


def _message_id(message: bytes) -> str:
    for line in message.split(b"\r\n"):
        if not line:
            break
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode("ascii", "replace")
    return ""
