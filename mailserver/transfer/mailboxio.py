"""``mailbox export`` and ``mailbox import``: one account to and from files
(formats.py), through the public store interface, idempotent on import
(destination.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TextIO

from storage.api import INBOX, Account, MailStore, StoreError

from .destination import Destination, TargetFolder, fingerprint
from .folders import place_folders
from .formats import (
    FileMessage,
    MaildirWriter,
    count_mbox,
    is_maildir,
    maildir_files,
    maildir_folders,
    maildir_keywords,
    read_eml,
    read_maildir_message,
    read_mbox,
    write_mbox,
)
from .migrate import APPEND_WINDOW, FolderReport
from .progress import Progress

ExportFormat = Literal["mbox", "maildir"]


class TransferError(Exception):
    """A path that cannot be used (bilingual text for the operator)."""


@dataclass
class TransferReport:
    address: str
    kind: str
    folders: list[FolderReport] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def copied(self) -> int:
        return sum(f.copied for f in self.folders)

    @property
    def present(self) -> int:
        return sum(f.present for f in self.folders)

    def as_json(self) -> dict[str, object]:
        return {
            "address": self.address, "format": self.kind, "copied": self.copied, "present": self.present,
            "errors": self.errors, "warnings": self.warnings, "folders": [vars(f) for f in self.folders],
        }


# -- export ---------------------------------------------------------------------
def mbox_path(root: Path, folder: str) -> Path:
    """Folder "A/B" is ``A/B.mbox`` under the output directory (UTF-8 names)."""
    return root.joinpath(*folder.split("/")).with_name(folder.split("/")[-1] + ".mbox")


async def export_mailbox(
    store: MailStore, account: Account, kind: ExportFormat, out: Path, stream: TextIO | None = None
) -> TransferReport:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise TransferError(f"thư mục đích phải trống / the output directory must be empty: {out}")
    out.mkdir(parents=True, exist_ok=True)
    report = TransferReport(account.address, kind)
    folders = await store.list_folders(account.id)
    listings = [(f, await store.list_messages(account.id, f.id)) for f in folders]
    progress = Progress(account.address, sum(len(infos) for _, infos in listings), stream)
    for folder, infos in listings:
        folder_report = FolderReport(folder.name, folder.name)
        report.folders.append(folder_report)
        if kind == "maildir":
            writer = MaildirWriter(out, folder.name)
            for info in infos:
                data = await store.read_message(account.id, folder.id, info.uid)
                await asyncio.to_thread(writer.write, data, info.flags, info.internal_date)
                folder_report.copied += 1
                progress.advance()
            if writer.dropped_keywords:
                report.warnings.append(
                    f"{folder.name}: {writer.dropped_keywords} từ khóa quá 26 bị bỏ / "
                    "keywords beyond 26 dropped"
                )
            continue
        path = mbox_path(out, folder.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            for info in infos:
                data = await store.read_message(account.id, folder.id, info.uid)
                write_mbox(handle, data, info.flags, info.internal_date)
                folder_report.copied += 1
                progress.advance()
    progress.finish()
    return report


# -- import ---------------------------------------------------------------------
Source = list[tuple[str, int, Callable[[], Iterator[FileMessage]]]]
"""(folder name, message count, reader) for every folder found under a path."""


def scan(path: Path) -> tuple[str, Source]:
    """What ``path`` holds: a Maildir++ tree, a tree of ``.mbox`` files, a single
    mbox file, a directory of ``.eml`` files, or one ``.eml`` file."""
    if not path.exists():
        raise TransferError(f"không có / no such file or directory: {path}")
    if path.is_file():
        with path.open("rb") as handle:
            start = handle.read(5)
        if start == b"From ":
            return "mbox", [(INBOX, count_mbox(path), lambda: read_mbox(path))]
        return "eml", [(INBOX, 1, lambda: iter([read_eml(path)]))]
    if is_maildir(path) or any(is_maildir(p) for p in path.glob(".*")):
        source: Source = []
        for name, folder in maildir_folders(path):
            files = maildir_files(folder)
            source.append((name, len(files), _maildir_reader(folder, files)))
        return "maildir", source
    mboxes = sorted(p for p in path.rglob("*.mbox") if p.is_file())
    if mboxes:
        return "mbox", [
            ("/".join(p.relative_to(path).with_suffix("").parts), count_mbox(p), _mbox_reader(p))
            for p in mboxes
        ]
    emls = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() == ".eml")
    if not emls:
        raise TransferError(
            f"không thấy thư (mbox, Maildir, .eml) / no mail found (mbox, Maildir, .eml) in {path}"
        )
    by_folder: dict[str, list[Path]] = {}
    for p in emls:
        parts = p.relative_to(path).parent.parts
        by_folder.setdefault("/".join(parts) or INBOX, []).append(p)
    return "eml", [(name, len(files), _eml_reader(files)) for name, files in by_folder.items()]


def _maildir_reader(folder: Path, files: list[Path]) -> Callable[[], Iterator[FileMessage]]:
    def read() -> Iterator[FileMessage]:
        keywords = maildir_keywords(folder)
        for p in files:
            yield read_maildir_message(p, keywords)
    return read


def _mbox_reader(path: Path) -> Callable[[], Iterator[FileMessage]]:
    return lambda: read_mbox(path)


def _eml_reader(files: list[Path]) -> Callable[[], Iterator[FileMessage]]:
    return lambda: (read_eml(p) for p in files)


async def import_path(
    store: MailStore,
    account: Account,
    path: Path,
    *,
    folder: str | None = None,
    dry_run: bool = False,
    stream: TextIO | None = None,
) -> TransferReport:
    kind, source = await asyncio.to_thread(scan, path)
    report = TransferReport(account.address, kind)
    destination = Destination(store, account, dry_run=dry_run)
    if folder:
        prefix = folder.strip("/")
        targets: list[str | None] = [prefix if name == INBOX else f"{prefix}/{name}" for name, _, _ in source]
    else:
        special = await destination.special_names()
        placed = place_folders([(name, frozenset()) for name, _, _ in source], (), special)
        targets = [p.target for p in placed]
    progress = Progress(account.address, sum(n for _, n, _ in source), stream)
    for (name, size, reader), target_name in zip(source, targets, strict=True):
        folder_report = FolderReport(name, target_name)
        report.folders.append(folder_report)
        if target_name is None:
            progress.advance(size)
            continue
        try:
            target = await destination.target(target_name)
        except (StoreError, ValueError) as exc:
            report.errors.append(f"{name}: {exc}")
            folder_report.errors += size
            progress.advance(size)
            continue
        messages = reader()
        done = False
        while not done:
            window: list[FileMessage] = []
            while len(window) < APPEND_WINDOW:
                try:
                    message = await asyncio.to_thread(next, messages, None)
                except (OSError, ValueError) as exc:
                    report.errors.append(f"{name}: {exc}")
                    folder_report.errors += 1
                    message = None
                if message is None:
                    done = True
                    break
                if Destination.claim(target, fingerprint(message.data, message.internal_date)):
                    folder_report.present += 1
                    progress.advance()
                else:
                    window.append(message)
            await asyncio.gather(*(_add(destination, target, m, folder_report, report) for m in window))
            progress.advance(len(window))
    progress.finish()
    return report


async def _add(
    destination: Destination, target: TargetFolder, message: FileMessage, folder: FolderReport,
    report: TransferReport,
) -> None:
    try:
        await destination.add(target, message.data, message.flags, message.internal_date)
    except (StoreError, ValueError) as exc:
        report.errors.append(f"{message.origin}: {exc}")
        folder.errors += 1
        return
    folder.copied += 1
