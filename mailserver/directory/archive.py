"""Export of a mailbox for its agency when a person leaves (Decision 70/2009 Điều 5
khoản 4 and Điều 9 khoản 2: the mail is the agency's record, not deleted with
the address).

The archive is a gzip-compressed tar file holding one mbox per folder
(``<local part>/<folder>.mbox``, "mboxrd" quoting: every line matching
``^>*From `` gets one more ``>``), readable by mutt, Thunderbird (ImportExport)
or ``python -m mailbox``. Line ends are LF as mbox expects. The mailbox's
deleted-mail vault (storage/sql/vault.py) goes in beside it, one mbox per folder
the messages were deleted from, under ``<local part>.deleted/<folder>.mbox``:
deleted official mail is part of the record too. The file is written under a
temporary name and renamed when complete, so a half-written archive never
carries the final name.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Final

from storage.api import Account, DeletedMessage, MailStore

_FROM_LINE: Final = re.compile(rb"^(>*From )", re.MULTILINE)


def _mbox_entry(data: bytes, when: datetime) -> bytes:
    body = data.replace(b"\r\n", b"\n")
    body = _FROM_LINE.sub(rb">\1", body)
    if not body.endswith(b"\n"):
        body += b"\n"
    stamp = when.astimezone(UTC).strftime("%a %b %d %H:%M:%S %Y").encode()
    return b"From MAILER-DAEMON " + stamp + b"\n" + body + b"\n"


def _safe_folder_file(name: str) -> str:
    levels = [level.replace("\\", "_").replace("\x00", "_") for level in name.split("/")]
    levels = [level if level not in ("", ".", "..") else "_" for level in levels]
    return "/".join(levels) + ".mbox"


def _tar(sources: list[tuple[Path, str]], dest: Path) -> None:
    tmp = dest.with_name(dest.name + ".tmp")
    with tarfile.open(tmp, "w:gz") as tar:
        for source, arcname in sources:
            if source.exists():
                tar.add(source, arcname=arcname)
    os.chmod(tmp, 0o640)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, dest)


async def archive_mailbox(store: MailStore, account: Account, dest_dir: Path) -> tuple[Path, int]:
    """Write every folder of ``account`` and its deleted-mail vault to
    ``dest_dir/<local>-<UTC time>.tar.gz``; returns the path and the number of
    messages (vaulted ones included)."""
    local = account.address.rpartition("@")[0]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    await asyncio.to_thread(dest_dir.mkdir, mode=0o750, parents=True, exist_ok=True)
    dest = dest_dir / f"{local}-{stamp}.tar.gz"
    work = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=".archive-", dir=dest_dir))
    count = 0
    try:
        root = work / local
        for folder in await store.list_folders(account.id):
            path = root / _safe_folder_file(folder.name)
            await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
            fh: BinaryIO = await asyncio.to_thread(open, path, "wb")
            try:
                for info in await store.list_messages(account.id, folder.id):
                    data = await store.read_message(account.id, folder.id, info.uid)
                    await asyncio.to_thread(fh.write, _mbox_entry(data, info.internal_date))
                    count += 1
            finally:
                await asyncio.to_thread(fh.close)
        deleted = work / f"{local}.deleted"
        by_folder: dict[str, list[DeletedMessage]] = {}
        for entry in sorted(await store.deleted_messages(account.id), key=lambda e: e.id):
            by_folder.setdefault(entry.folder, []).append(entry)
        for name, entries in by_folder.items():
            path = deleted / _safe_folder_file(name)
            await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
            fh = await asyncio.to_thread(open, path, "wb")
            try:
                for entry in entries:
                    data = await store.read_deleted(account.id, entry.id)
                    await asyncio.to_thread(fh.write, _mbox_entry(data, entry.internal_date))
                    count += 1
            finally:
                await asyncio.to_thread(fh.close)
        await asyncio.to_thread(_tar, [(root, local), (deleted, f"{local}.deleted")], dest)
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)
    return dest, count
