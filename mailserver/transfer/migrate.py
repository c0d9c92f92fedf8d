"""``mailserver migrate imap``: copy a mailbox from another IMAP server.

Two passes per mailbox. The plan reads, folder by folder, every message's UID,
flags, INTERNALDATE, size and Message-ID (no bodies) and decides what is new:
not in the ledger of earlier runs, and no message with the same fingerprint in
the destination folder (``destination``). The copy then fetches the new
messages' bodies in batches of a few MB (the next batch is fetched while the
current one is stored) and appends each with its flags and INTERNALDATE.

A failure of one message (vanished at the source, refused by the store) is
reported and the rest goes on; a connection lost mid-folder is reopened once
per batch. A mailbox whose server cannot be reached or refuses the login is
reported and the next mailbox goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

from storage.api import MailStore, StoreError

from .destination import Destination, Fingerprint, TargetFolder, fingerprint, second
from .folders import place_folders
from .imapsource import ImapSource, Security, SourceError, SourceFolder, SourceMessage, body_batches
from .progress import Progress

APPEND_WINDOW = 8
"""Appends in flight at once: the store commits concurrent appends together
(group commit, storage/api.py), three times the rate of one at a time. The
price: within a window, the new UIDs may not follow the source's order."""

MAX_ERROR_LINES = 50
"""Per mailbox, the message errors printed one by one; the rest are counted."""


@dataclass(frozen=True, slots=True)
class MailboxJob:
    host: str
    port: int | None
    security: Security
    user: str
    password: str
    to: str
    folder_map: tuple[tuple[str, str], ...] = ()
    since: datetime | None = None
    ca_file: str | None = None


@dataclass
class FolderReport:
    source: str
    target: str | None
    copied: int = 0
    present: int = 0
    """Already in the destination (an earlier run, or the ledger)."""
    skipped_since: int = 0
    errors: int = 0
    note: str = ""


@dataclass
class MailboxReport:
    to: str
    source: str
    folders: list[FolderReport] = field(default_factory=list)
    error: str | None = None
    """Why the whole mailbox was skipped (unreachable server, refused login)."""
    messages_errors: list[str] = field(default_factory=list)

    @property
    def copied(self) -> int:
        return sum(f.copied for f in self.folders)

    @property
    def present(self) -> int:
        return sum(f.present for f in self.folders)

    @property
    def skipped_since(self) -> int:
        return sum(f.skipped_since for f in self.folders)

    @property
    def errors(self) -> int:
        return sum(f.errors for f in self.folders) + (1 if self.error else 0)

    def as_json(self) -> dict[str, object]:
        return {
            "to": self.to,
            "source": self.source,
            "error": self.error,
            "copied": self.copied,
            "present": self.present,
            "skipped_since": self.skipped_since,
            "errors": self.errors,
            "message_errors": self.messages_errors,
            "folders": [vars(f) for f in self.folders],
        }


class Ledger:
    """Source messages copied by earlier runs into one account: one line per
    message, (server, user, folder, UIDVALIDITY, UID). A message listed here is
    not copied again even if the user deleted it here since."""

    def __init__(self, path: Path | None, *, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        """A dry run reads the ledger (to answer as a real run would) but adds nothing."""
        self.keys: set[str] = set()
        self._file: TextIO | None = None
        if path is not None and path.exists():
            self.keys = set(path.read_text(encoding="utf-8").splitlines())

    @staticmethod
    def key(source: ImapSource, folder: SourceFolder, uidvalidity: int, uid: int) -> str:
        server = f"{source.host}:{source.port}"
        return "\t".join((server, source.user, folder.wire, str(uidvalidity), str(uid)))

    def add(self, key: str) -> None:
        if self.path is None or self.read_only:
            return
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        self._file.write(key + "\n")
        self._file.flush()
        self.keys.add(key)

    def sync(self) -> None:
        if self._file is not None:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self.sync()
            self._file.close()
            self._file = None


@dataclass
class _FolderPlan:
    folder: SourceFolder
    report: FolderReport
    target: TargetFolder
    uidvalidity: int = 0
    copy: list[SourceMessage] = field(default_factory=list)


async def migrate_mailbox(
    store: MailStore,
    job: MailboxJob,
    *,
    dry_run: bool = False,
    ledger_dir: Path | None = None,
    stream: TextIO | None = None,
) -> MailboxReport:
    source = ImapSource(job.host, job.port, job.security, job.user, job.password, ca_file=job.ca_file)
    report = MailboxReport(job.to, source.label)
    account = await store.get_account(job.to)
    if account is None:
        report.error = f"không có tài khoản {job.to} / no such account {job.to}"
        return report
    report.to = account.address
    try:
        await asyncio.to_thread(source.connect)
    except SourceError as exc:
        report.error = str(exc)
        return report
    ledger_path = None if ledger_dir is None else ledger_dir / f"{account.address}.ledger"
    ledger = Ledger(ledger_path, read_only=dry_run)
    try:
        destination = Destination(store, account, dry_run=dry_run)
        plans = await _plan(source, destination, job, report, ledger)
        total = sum(len(plan.copy) for plan in plans)
        progress = Progress(account.address, total, stream)
        for plan in plans:
            await _copy_folder(source, destination, plan, ledger, progress, report)
            ledger.sync()
        progress.finish()
    except (SourceError, imaplib.IMAP4.error, OSError) as exc:
        report.error = f"dừng giữa chừng / stopped midway: {exc}"
    finally:
        ledger.close()
        await asyncio.to_thread(source.close)
    return report


async def _plan(
    source: ImapSource, destination: Destination, job: MailboxJob, report: MailboxReport, ledger: Ledger
) -> list[_FolderPlan]:
    folders = await asyncio.to_thread(source.folders)
    special = await destination.special_names()
    placements = place_folders([(f.name, f.attributes) for f in folders], job.folder_map, special)
    plans: list[_FolderPlan] = []
    for folder, placement in zip(folders, placements, strict=True):
        folder_report = FolderReport(folder.name, placement.target, note=placement.reason)
        report.folders.append(folder_report)
        if placement.target is None:
            continue
        if not folder.selectable:
            folder_report.note = "\\Noselect"
            continue
        try:
            target = await destination.target(placement.target)
        except (StoreError, ValueError) as exc:
            _error(report, folder_report, folder.name, None, f"{placement.target}: {exc}")
            continue
        plan = _FolderPlan(folder, folder_report, target)
        try:
            plan.uidvalidity, messages = await _examine(source, folder)
        except imaplib.IMAP4.error as exc:
            # A folder the server will not open (NO): reported, the others go on.
            _error(report, folder_report, folder.name, None, str(exc))
            continue
        copied_before = {
            m.uid for m in messages if Ledger.key(source, folder, plan.uidvalidity, m.uid) in ledger.keys
        }
        plan_messages(plan, messages, job.since, copied_before)
        plans.append(plan)
    return plans


async def _examine(source: ImapSource, folder: SourceFolder) -> tuple[int, list[SourceMessage]]:
    """UIDVALIDITY and the messages of a folder; a dropped connection is reopened once."""
    try:
        uidvalidity, _ = await asyncio.to_thread(source.examine, folder)
        return uidvalidity, await asyncio.to_thread(source.messages)
    except (imaplib.IMAP4.abort, OSError):
        uidvalidity, _ = await _examine_only(source, folder)
        return uidvalidity, await asyncio.to_thread(source.messages)


def plan_messages(
    plan: _FolderPlan, messages: Sequence[SourceMessage], since: datetime | None, copied_before: set[int]
) -> None:
    """Split the folder's messages into already there, filtered out, and to copy.
    ``copied_before`` are UIDs the ledger lists: they claim their fingerprint
    first, so an identical message not yet copied still finds none to claim."""
    pending: list[SourceMessage] = []
    for message in messages:
        if since is not None and message.internal_date < since:
            plan.report.skipped_since += 1
            continue
        if message.uid in copied_before:
            Destination.claim(plan.target, _print(message))
            plan.report.present += 1
            continue
        pending.append(message)
    for message in pending:
        if Destination.claim(plan.target, _print(message)):
            plan.report.present += 1
        else:
            plan.copy.append(message)


def _print(message: SourceMessage) -> Fingerprint:
    return Fingerprint(second(message.internal_date), message.size, message.message_id)


async def _copy_folder(
    source: ImapSource,
    destination: Destination,
    plan: _FolderPlan,
    ledger: Ledger,
    progress: Progress,
    report: MailboxReport,
) -> None:
    if not plan.copy:
        return
    try:
        uidvalidity, _ = await _examine_only(source, plan.folder)
    except (imaplib.IMAP4.error, OSError) as exc:
        failure = str(exc)
    else:
        failure = "" if uidvalidity == plan.uidvalidity else "UIDVALIDITY đổi giữa chừng / changed meanwhile"
    if failure:
        for message in plan.copy:
            _error(report, plan.report, plan.folder.name, message.uid, failure)
        progress.advance(len(plan.copy))
        return
    batches = body_batches(plan.copy)
    fetch: asyncio.Task[dict[int, bytes]] | None = None
    try:
        for index, batch in enumerate(batches):
            try:
                bodies = await (fetch if fetch is not None else _fetch(source, plan.folder, batch))
            except (imaplib.IMAP4.error, OSError) as exc:
                # Even a fresh connection failed: these messages are reported, the
                # next batch tries again.
                bodies, failure = {}, f"máy chủ nguồn / source server: {exc}"
            fetch = None
            if index + 1 < len(batches):
                fetch = asyncio.create_task(_fetch(source, plan.folder, batches[index + 1]))
            if failure:
                for message in batch:
                    _error(report, plan.report, plan.folder.name, message.uid, failure)
                progress.advance(len(batch))
                failure = ""
                continue
            for start in range(0, len(batch), APPEND_WINDOW):
                window = batch[start : start + APPEND_WINDOW]
                await asyncio.gather(*(
                    _copy_one(source, destination, plan, message, bodies.get(message.uid), ledger, report)
                    for message in window
                ))
                progress.advance(len(window))
    finally:
        if fetch is not None:
            with contextlib.suppress(BaseException):
                await fetch


async def _examine_only(source: ImapSource, folder: SourceFolder) -> tuple[int, int]:
    try:
        return await asyncio.to_thread(source.examine, folder)
    except (imaplib.IMAP4.abort, OSError):
        await asyncio.to_thread(source.reopen, folder)
        return await asyncio.to_thread(source.examine, folder)


async def _fetch(source: ImapSource, folder: SourceFolder, batch: list[SourceMessage]) -> dict[int, bytes]:
    uids = [m.uid for m in batch]
    try:
        return await asyncio.to_thread(source.bodies, uids)
    except (imaplib.IMAP4.abort, OSError):
        # The connection dropped (idle timeout, server restart): once more on a new one.
        await asyncio.to_thread(source.reopen, folder)
        return await asyncio.to_thread(source.bodies, uids)


async def _copy_one(
    source: ImapSource,
    destination: Destination,
    plan: _FolderPlan,
    message: SourceMessage,
    data: bytes | None,
    ledger: Ledger,
    report: MailboxReport,
) -> None:
    target = plan.target
    if data is None:
        _error(report, plan.report, plan.folder.name, message.uid,
               "máy chủ nguồn không trả nội dung (thư đã bị xóa?) / the source returned no body (expunged?)")
        return
    if len(data) != message.size and Destination.claim(target, fingerprint(data, message.internal_date)):
        # The source's RFC822.SIZE was not the size of the bytes it sends: the
        # plan could not recognise the copy an interrupted run already made.
        plan.report.present += 1
        return
    try:
        await destination.add(target, data, message.flags, message.internal_date)
    except (StoreError, ValueError) as exc:
        _error(report, plan.report, plan.folder.name, message.uid, str(exc))
        return
    plan.report.copied += 1
    if not destination.dry_run:
        ledger.add(Ledger.key(source, plan.folder, plan.uidvalidity, message.uid))


def _error(report: MailboxReport, folder: FolderReport, name: str, uid: int | None, text: str) -> None:
    folder.errors += 1
    where = f"{name} UID {uid}" if uid is not None else name
    report.messages_errors.append(f"{where}: {text}")


def iter_summary(reports: Sequence[MailboxReport], *, dry_run: bool) -> Iterator[str]:
    """The summary printed at the end, one line per mailbox and a total."""
    if dry_run:
        yield "Tóm tắt (chạy thử, không ghi gì) / Summary (dry run, nothing written)"
    else:
        yield "Tóm tắt / Summary"
    verb = "sẽ chép / would copy" if dry_run else "đã chép / copied"
    for report in reports:
        if report.error:
            yield f"  {report.to} ← {report.source}: LỖI / FAILED: {report.error}"
        used = sum(1 for f in report.folders if f.target is not None)
        yield (
            f"  {report.to} ← {report.source}: {used} thư mục / folders, {report.copied} {verb}, "
            f"{report.present} đã có / already there, {report.skipped_since} bỏ qua theo --since / "
            f"before --since, {report.errors} lỗi / errors"
        )
        for line in report.messages_errors[:MAX_ERROR_LINES]:
            yield f"    lỗi / error: {line}"
        if len(report.messages_errors) > MAX_ERROR_LINES:
            yield f"    … và {len(report.messages_errors) - MAX_ERROR_LINES} lỗi nữa / and more errors"
    if len(reports) > 1:
        yield (
            f"Tổng / Total: {len(reports)} hộp thư / mailboxes, {sum(r.copied for r in reports)} {verb}, "
            f"{sum(r.present for r in reports)} đã có / already there, "
            f"{sum(r.errors for r in reports)} lỗi / errors"
        )
