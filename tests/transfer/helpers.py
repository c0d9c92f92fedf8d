"""Shared by the migration and export/import tests: a data dir with accounts, the
CLI as a subprocess, a generated mailbox, and what the store holds afterwards."""

from __future__ import annotations

import asyncio
import hashlib
import random
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mailserver import config as config_mod
from mailserver.auth import hash_password
from storage import open_store
from storage.api import MailStore
from tests.transfer.dovecot import Message

ANNV = "annv@dongnai.gov.vn"

Snapshot = dict[str, Counter[tuple[str, frozenset[str], datetime]]]
"""Folder name -> multiset of (sha256 of the bytes, flags, INTERNALDATE in UTC)."""

FOLDERS = (
    "INBOX", "Sent Items", "Drafts", "Deleted Items", "Spam", "Archive", "Công văn đến", "Công văn đi",
    "Dự án", "Dự án/Cầu Đồng Nai", "Lưu trữ 2019", "Báo cáo & Thống kê",
)
"""A dozen source folders: special-use ones under other servers' names, Vietnamese names, a child."""

OURS = {"Sent Items": "Sent", "Deleted Items": "Trash", "Spam": "Junk"}
"""Where the source folders of FOLDERS land here (the others keep their name)."""

KEYWORDS = ("$Forwarded", "$Label1", "QuanTrong", "NonJunk")
SUBJECTS = ("Giấy mời họp giao ban", "Báo cáo tháng", "Re: Kế hoạch năm 2025", "Công văn số 123/UBND",
            "Thông báo nghỉ lễ", "Weekly report")


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "mailserver.toml"
    path.write_text(f'[server]\ndata_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    return path


async def with_store(config_path: Path) -> MailStore:
    config = config_mod.load(config_path)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(config.storage_url, config.maildir)
    await store.start()
    return store


async def add_accounts(config_path: Path, *addresses: str) -> None:
    store = await with_store(config_path)
    try:
        for address in addresses:
            await store.create_account(address, "Test", hash_password("S3cret-pass-word"),
                                       must_change_password=False)
    finally:
        await store.close()


async def cli(config_path: Path, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mailserver", "--config", str(config_path), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def snapshot(config_path: Path, address: str) -> Snapshot:
    store = await with_store(config_path)
    try:
        account = await store.get_account(address)
        assert account is not None
        out: Snapshot = {}
        for folder in await store.list_folders(account.id):
            counter: Counter[tuple[str, frozenset[str], datetime]] = Counter()
            for info in await store.list_messages(account.id, folder.id):
                data = await store.read_message(account.id, folder.id, info.uid)
                counter[(hashlib.sha256(data).hexdigest(), info.flags, info.internal_date)] += 1
            if counter:
                out[folder.name] = counter
        return out
    finally:
        await store.close()


def count(snap: Snapshot) -> int:
    return sum(sum(c.values()) for c in snap.values())


def make_message(rng: random.Random, n: int, date: datetime) -> bytes:
    subject = rng.choice(SUBJECTS)
    lines = [
        f"From: Nguyễn Văn {chr(65 + n % 26)} <user{n % 37}@binhphuoc.gov.vn>",
        "To: annv@dongnai.gov.vn",
        f"Subject: {subject} #{n}",
        f"Date: {date.strftime('%a, %d %b %Y %H:%M:%S +0000')}",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
    ]
    if n % 97 != 5:  # a few without Message-ID
        lines.insert(0, f"Message-ID: <{n}.{rng.getrandbits(40):x}@binhphuoc.gov.vn>")
    body = [f"Kính gửi đồng chí, thư số {n}.", "Đề nghị các đơn vị báo cáo trước ngày 15."]
    if n % 11 == 0:
        body += ["From the mbox point of view this line needs quoting.", ">From this one too."]
    body += ["x" * rng.randint(0, 200) for _ in range(rng.randint(1, 30))]
    if n % 150 == 7:  # a few larger ones
        body += ["".join(rng.choice("abcdefghij") for _ in range(76)) for _ in range(1500)]
    return ("\n".join(lines) + "\n\n" + "\n".join(body) + "\n").encode("utf-8")


def make_mailbox(seed: int, total: int, folders: tuple[str, ...] = FOLDERS) -> dict[str, list[Message]]:
    """``total`` messages over ``folders`` (INBOX heavier), with flags, keywords,
    INTERNALDATEs from 2009 on, and a pair of identical messages."""
    rng = random.Random(seed)
    out: dict[str, list[Message]] = {f: [] for f in folders}
    start = datetime(2009, 3, 1, tzinfo=UTC)
    for n in range(total):
        folder = "INBOX" if rng.random() < 0.3 else rng.choice(folders)
        date = start + timedelta(seconds=rng.randint(0, 16 * 365 * 86400))
        flags = [f for f in ("\\Seen", "\\Flagged", "\\Answered") if rng.random() < 0.4]
        if folder == "Drafts":
            flags.append("\\Draft")
        flags += [k for k in KEYWORDS if rng.random() < 0.1]
        out[folder].append(Message(make_message(rng, n, date), tuple(flags), date))
    twin = out["INBOX"][0]
    out["INBOX"].append(Message(twin.data, twin.flags, twin.internal_date))
    return out


def expected(mailbox: dict[str, list[Message]], *, since: datetime | None = None,
             where: dict[str, str | None] | None = None) -> Snapshot:
    """What the store must hold after moving ``mailbox``: bytes as IMAP serves
    them (CRLF), flags, INTERNALDATE. ``where`` overrides the folder mapping."""
    places = {**OURS, **(where or {})}
    out: Snapshot = {}
    for folder, messages in mailbox.items():
        target = places.get(folder, folder)
        if target is None:
            continue
        for m in messages:
            if since is not None and m.internal_date < since:
                continue
            data = m.data.replace(b"\n", b"\r\n")
            key = (hashlib.sha256(data).hexdigest(), frozenset(m.flags), m.internal_date)
            out.setdefault(target, Counter())[key] += 1
    return out
