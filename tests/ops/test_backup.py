"""Backups while SMTP deliveries run, verification, restore, and the restored
server serving exactly the same mail over IMAP (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import aiosmtplib
import pytest
from imapclient import IMAPClient

from mailserver.app import App
from mailserver.auth import hash_password
from mailserver.ops.backup import (
    MANIFEST,
    BackupError,
    create_backup,
    list_backups,
    load_passphrase,
    next_run,
    parse_schedule,
    prune_backups,
    restore_backup,
    verify_backup,
)
from storage.api import FlagMode, Uid
from tests.conftest import _pg_database, eventually, make_config

PASSWORD = "Mat-khau-sao-luu-2026"
State = dict[str, dict[int, tuple[frozenset[bytes], str]]]
"""folder -> uid -> (flags, sha256 of the message)."""


def imap_state(port: int, user: str) -> State:
    out: State = {}
    with IMAPClient("127.0.0.1", port=port, ssl=False, timeout=30) as client:
        client.login(user, PASSWORD)
        for _flags, _delim, name in client.list_folders():
            client.select_folder(name, readonly=True)
            uids = client.search("ALL")
            fetched = client.fetch(uids, ["FLAGS", "BODY.PEEK[]"]) if uids else {}
            out[name] = {
                int(uid): (frozenset(d[b"FLAGS"]), hashlib.sha256(d[b"BODY[]"]).hexdigest())
                for uid, d in fetched.items()
            }
    return out


@contextlib.asynccontextmanager
async def pg_target(backend_url: str) -> AsyncIterator[str]:
    """An empty PostgreSQL database to restore into ('' for SQLite)."""
    if not backend_url:
        yield ""
        return
    gen = _pg_database()  # synchronous (asyncio.run inside): run it in a thread
    url = await asyncio.to_thread(next, gen)
    try:
        yield url
    finally:
        await asyncio.to_thread(lambda: next(gen, None))


async def test_backup_during_deliveries_restores_the_same_mail(
    tmp_path: Path, backend_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILSERVER_BACKUP_PASSPHRASE", "cum-tu-bi-mat")
    config = make_config(tmp_path / "data", backend_url)
    users = ["an@dongnai.gov.vn", "binh@dongnai.gov.vn"]
    async with App(config) as app:
        for user in users:
            await app.store.create_account(user, user, hash_password(PASSWORD), must_change_password=False)
        smtp_port = app.addresses["smtp"][1]

        async def send(n: int) -> None:
            message = (f"From: x@example.org\r\nTo: {users[n % 2]}\r\nSubject: thu {n}\r\n"
                       f"Message-ID: <{n}@example.org>\r\n\r\nNoi dung {n}\r\n").encode()
            await aiosmtplib.send(message, sender="x@example.org", recipients=[users[n % 2]],
                                  hostname="127.0.0.1", port=smtp_port, start_tls=False)
            delivered.append(n)

        delivered: list[int] = []

        for n in range(6):
            await send(n)
        # Folders and flags that the restore must reproduce.
        an = await app.store.get_account(users[0])
        assert an is not None
        inbox = await app.store.get_folder(an.id, "INBOX")
        project = await app.store.create_folder(an.id, "Dự án/2026")
        await app.store.store_flags(an.id, inbox.id, [Uid(1)], ["\\Seen", "$Important"], FlagMode.ADD)
        await app.store.move(an.id, inbox.id, [Uid(3)], project.id)
        before = {u: await asyncio.to_thread(imap_state, app.addresses["imap"][1], u) for u in users}

        flow = asyncio.gather(*(send(n) for n in range(6, 40)))
        await eventually(lambda: len(delivered) > 6, "deliveries under way")
        result = await create_backup(config, tmp_path / "backups", passphrase=load_passphrase(config))
        await flow
        after = {u: await asyncio.to_thread(imap_state, app.addresses["imap"][1], u) for u in users}
        key = (config.data_dir / "tls" / "key.pem").read_bytes()

    assert verify_backup(tmp_path / "backups").ok
    assert not list((result.path / "files" / "tls").glob("key.pem")), "keys are stored encrypted"
    assert (result.path / "files" / "tls" / "key.pem.enc").exists()
    async with pg_target(backend_url) as target_url:
        restored_dir = tmp_path / "restored"
        await restore_backup(tmp_path / "backups", restored_dir, passphrase=b"cum-tu-bi-mat",
                             database_url=target_url or None)
        assert (restored_dir / "tls" / "key.pem").read_bytes() == key
        async with App(make_config(restored_dir, target_url)) as restored:
            port = restored.addresses["imap"][1]
            got = {u: await asyncio.to_thread(imap_state, port, u) for u in users}
    for user in users:
        assert set(got[user]) == set(after[user])  # same folders
        for folder, messages in got[user].items():
            # Everything that was there before the backup, exactly (UID, flags, bytes) ...
            assert before[user][folder].items() <= messages.items()
            # ... and nothing but what the live server had, with no gaps in UIDs.
            assert messages.items() <= after[user][folder].items()
            live = sorted(after[user][folder])
            assert sorted(messages) == live[: len(messages)]
    assert len(got[users[0]]["Dự án/2026"]) == 1
    assert frozenset({b"\\Seen", b"$Important"}) == got[users[0]]["INBOX"][1][0]


async def test_corruption_is_detected_and_restore_refuses(tmp_path: Path) -> None:
    config = make_config(tmp_path / "data")
    async with App(config) as app:
        account = await app.store.create_account("an@dongnai.gov.vn", "An", hash_password(PASSWORD))
        await app.store.deliver([account.id], b"Subject: a\r\n\r\nbody\r\n")
        first = await create_backup(config, tmp_path / "b")
        await app.store.deliver([account.id], b"Subject: b\r\n\r\nbody two\r\n")
        second = await create_backup(config, tmp_path / "b", incremental=True)
    assert second.linked == 1 and first.path != second.path
    blobs = sorted((second.path / "maildir").rglob("*,S=*")) or sorted(
        p for p in (second.path / "maildir").rglob("*") if p.is_file())
    assert verify_backup(second.path).ok
    victim = blobs[-1]
    data = bytearray(victim.read_bytes())
    data[-3] ^= 0x20
    victim.unlink()  # break the hard link so the first backup stays intact
    victim.write_bytes(bytes(data))
    report = verify_backup(second.path)
    assert not report.ok and any("checksum differs" in p for p in report.problems)
    (second.path / "stray.txt").write_text("x")
    assert any("not in the manifest" in p for p in verify_backup(second.path).problems)
    with pytest.raises(BackupError, match="failed verification"):
        await restore_backup(second.path, tmp_path / "r1")
    manifest = first.path / MANIFEST
    manifest.write_text(manifest.read_text().replace('"format": 1', '"format": 1 '))
    assert any("altered" in p for p in verify_backup(first.path).problems)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    with pytest.raises(BackupError, match="not empty|verification"):
        await restore_backup(first.path, tmp_path / "busy")
    assert [p.name for p in prune_backups(tmp_path / "b", 1)] == [first.path.name]
    assert list_backups(tmp_path / "b") == [second.path]


def test_schedule() -> None:
    assert parse_schedule("") is None
    assert parse_schedule("daily 02:00") == (2, 0)
    with pytest.raises(BackupError):
        parse_schedule("weekly 02:00")
    now = datetime.fromisoformat("2026-01-05T03:00:00+07:00")
    assert next_run((2, 0), now) == datetime.fromisoformat("2026-01-06T02:00:00+07:00")
    assert next_run((4, 30), now) == datetime.fromisoformat("2026-01-05T04:30:00+07:00")
