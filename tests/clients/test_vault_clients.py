"""Deleted mail that can be brought back, end to end: messages expunged over IMAP
(imapclient, a real socket) listed and restored with ``mailserver mail
deleted|undelete`` (a subprocess), byte for byte with their flags; the purge
after ``retention.deleted_days``; holds that keep the vault and refuse the
offboarding purge; backups that keep the vault; the portal's page, where a
user sees and restores only their own deleted mail."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from imapclient import IMAPClient
from sqlalchemy import update

from mailserver.app import App
from mailserver.auth import hash_password
from mailserver.config import Config
from mailserver.directory.service import DirectoryService
from mailserver.ops.backup import create_backup, restore_backup
from mailserver.ops.vault import purge_expired, purge_loop
from mailserver.web.server import build_application
from storage.api import INBOX, Account, FlagMode, MailStore, OnHold, Uid
from storage.directory import By, open_directory
from storage.sql.store import SqlMailStore
from storage.sql.vault import V
from tests.conftest import RunningServer, make_config
from tests.ops.test_backup import pg_target
from tests.web.helpers import csrf_of

PASSWORD = "Khoi-phuc-thu-2026!"
WHEN = datetime(2026, 3, 2, 9, 15, 0, tzinfo=UTC)


def mail(n: int, subject: str) -> bytes:
    return (
        f"From: Trần Thị Bích <bichtt@dongnai.gov.vn>\r\nTo: an@dongnai.gov.vn\r\n"
        f"Subject: {subject}\r\nMessage-ID: <vault{n}@dongnai.gov.vn>\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\nNội dung số {n}\r\n"
    ).encode()


def cli_config(tmp_path: Path, config: Config, **sections: dict[str, object]) -> Path:
    """A TOML file naming the running server's data directory and database, for the CLI."""
    lines = ["[server]", f'data_dir = "{config.data_dir}"', 'hostname = "mx.test.dongnai.gov.vn"']
    if config.storage.url:
        lines += ["[storage]", f'url = "{config.storage.url}"']
    for name, items in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in items.items()]
    path = tmp_path / "cli.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def cli(conf: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "mailserver", "--config", str(conf), *args],
        capture_output=True, text=True, timeout=120, check=False,
    )


async def account(store: MailStore, address: str) -> Account:
    return await store.create_account(address, address, hash_password(PASSWORD), must_change_password=False)


async def age(store: MailStore, days: int) -> None:
    """Every vault entry deleted ``days`` ago: drives the retention without waiting."""
    assert isinstance(store, SqlMailStore)
    when = datetime.now(UTC) - timedelta(days=days)
    await store.db.run_write(lambda conn: conn.execute(update(V).values(deleted_at=when)))


def imap_delete_in_every_way(port: int, user: str) -> None:
    """EXPUNGE, UID EXPUNGE, CLOSE, folder deletion, and a MOVE (not a deletion)."""
    with IMAPClient("127.0.0.1", port=port, ssl=False, timeout=30) as c:
        c.login(user, PASSWORD)
        c.append(INBOX, mail(1, "Công văn số 1"), flags=[b"\\Seen", b"\\Flagged", b"$Label1"], msg_time=WHEN)
        c.append(INBOX, mail(2, "Công văn số 2"))
        c.create_folder("Dự án")
        c.append("Dự án", mail(3, "Kế hoạch 2026"))
        c.select_folder(INBOX)
        first, second = c.search("ALL")
        c.add_flags([first], [b"\\Deleted"])
        assert c.expunge() is not None  # EXPUNGE
        c.add_flags([second], [b"\\Deleted"])
        c.expunge([second])  # UID EXPUNGE
        c.select_folder("Dự án")
        c.move(c.search("ALL"), "Archive")  # not a deletion
        c.select_folder("Archive")
        c.add_flags(c.search("ALL"), [b"\\Deleted"])
        c.close_folder()  # CLOSE expunges
        c.append("Dự án", mail(4, "Biên bản họp"))
        c.delete_folder("Dự án")  # with its message


def imap_folder(port: int, user: str, folder: str) -> dict[int, tuple[bytes, frozenset[bytes], datetime]]:
    with IMAPClient("127.0.0.1", port=port, ssl=False, timeout=30) as c:
        c.login(user, PASSWORD)
        c.select_folder(folder, readonly=True)
        uids = c.search("ALL")
        fetched = c.fetch(uids, ["BODY.PEEK[]", "FLAGS", "INTERNALDATE"]) if uids else {}
        return {
            int(uid): (d[b"BODY[]"], frozenset(d[b"FLAGS"]), d[b"INTERNALDATE"].astimezone(UTC))
            for uid, d in fetched.items()
        }


async def test_expunged_mail_comes_back_byte_for_byte_with_its_flags(
    any_server: RunningServer, tmp_path: Path
) -> None:
    app, port = any_server.app, any_server.port("imap")
    user = "an@dongnai.gov.vn"
    await account(app.store, user)
    await asyncio.to_thread(imap_delete_in_every_way, port, user)
    conf = cli_config(tmp_path, any_server.config)

    listed = await cli(conf, "mail", "deleted", user, "--json")
    assert listed.returncode == 0, listed.stderr
    entries = json.loads(listed.stdout)
    by_subject = {e["subject"]: e for e in entries}
    assert set(by_subject) == {"Công văn số 1", "Công văn số 2", "Kế hoạch 2026", "Biên bản họp"}
    subjects = ("Công văn số 1", "Công văn số 2", "Kế hoạch 2026", "Biên bản họp")
    # The MOVE left nothing from "Dự án" in the vault; its deletion did.
    assert [by_subject[s]["folder"] for s in subjects] == [INBOX, INBOX, "Archive", "Dự án"]
    first = by_subject["Công văn số 1"]
    assert first["from"] == "Trần Thị Bích <bichtt@dongnai.gov.vn>"
    assert first["size"] == len(mail(1, "Công văn số 1")) and first["date"] == WHEN.isoformat()
    assert set(first["flags"]) == {"\\Seen", "\\Flagged", "$Label1", "\\Deleted"}
    text = await cli(conf, "mail", "deleted", user)
    assert "Công văn số 1" in text.stdout and "4 thư đã xóa / deleted message(s)" in text.stdout

    before = await asyncio.to_thread(imap_folder, port, user, INBOX)
    assert before == {}
    undone = await cli(conf, "mail", "undelete", str(first["id"]), str(by_subject["Biên bản họp"]["id"]))
    assert undone.returncode == 0, undone.stderr
    assert "folder created again" in undone.stdout
    inbox = await asyncio.to_thread(imap_folder, port, user, INBOX)
    ((uid, (data, flags, date)),) = inbox.items()
    assert data == mail(1, "Công văn số 1")
    assert flags == {b"\\Seen", b"\\Flagged", b"$Label1"}
    assert date == WHEN and uid > 2  # a new UID, never a reused one
    project = await asyncio.to_thread(imap_folder, port, user, "Dự án")
    assert [d for d, _, _ in project.values()] == [mail(4, "Biên bản họp")]
    left = json.loads((await cli(conf, "mail", "deleted", user, "--json")).stdout)
    assert sorted(e["subject"] for e in left) == ["Công văn số 2", "Kế hoạch 2026"]

    missing = await cli(conf, "mail", "undelete", str(first["id"]))  # already restored
    assert missing.returncode == 1
    number = first["id"]
    assert f"không có thư đã xóa số {number} / no deleted message with id {number}" in missing.stderr
    assert "Traceback" not in missing.stderr
    nobody = await cli(conf, "mail", "deleted", "nobody@dongnai.gov.vn")
    assert nobody.returncode == 1 and "no such account" in nobody.stderr
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    later = await cli(conf, "mail", "deleted", user, "--since", tomorrow, "--json")
    assert later.returncode == 0 and json.loads(later.stdout) == []
    bad = await cli(conf, "mail", "deleted", user, "--since", "hôm qua")
    assert bad.returncode == 1 and "not an ISO date" in bad.stderr
    audit = open_directory(app.store)
    assert [e.action for e in await audit.audit_log(subject=user)].count("mail.undelete") == 2


async def test_purge_after_retention_and_holds(server: RunningServer, tmp_path: Path) -> None:
    app = server.app
    by = By("test", "Số 5/QĐ-STTTT")
    service = DirectoryService(app.store, open_directory(app.store), app.config)
    await service.add_agency("stttt", "Sở Thông tin và Truyền thông", None, by=by)
    issued = await service.add_person("Nguyễn Văn An", "stttt", by=by, position="Chuyên viên")
    address = issued.address
    person = await app.store.get_account(address)
    other = await account(app.store, "binh@dongnai.gov.vn")
    assert person is not None
    for acc in (person, other):
        inbox = await app.store.get_folder(acc.id, INBOX)
        info = await app.store.append(acc.id, inbox.id, mail(acc.id, f"Thư của {acc.address}"))
        await app.store.store_flags(acc.id, inbox.id, [info.uid], ["\\Deleted"], FlagMode.ADD)
        await app.store.expunge(acc.id, inbox.id)
    conf = cli_config(tmp_path, server.config)

    # Recent deletions stay; 31-day-old ones go, except under a hold on the agency.
    assert await purge_expired(app.store, 30) == 0
    held = await cli(conf, "hold", "set", "stttt", "--reason", "Thanh tra theo QĐ 12/QĐ-TTr")
    assert held.returncode == 0, held.stderr
    assert "on hold" in held.stdout
    listing = json.loads((await cli(conf, "hold", "list", "--json")).stdout)
    assert [(h["scope"], h["target"]) for h in listing] == [("agency", "stttt")]
    await age(app.store, 31)
    assert await purge_expired(app.store, 30) == 1  # binh's
    assert len(await app.store.deleted_messages(person.id)) == 1
    assert await app.store.deleted_messages(other.id) == []

    # Offboarding: the archive carries the vault; the purge is refused while held.
    gone = await service.offboard(address, by=by, now=datetime.now(UTC) - timedelta(days=91))
    local = address.split("@")[0]
    with tarfile.open(gone.archive) as tar:
        names = tar.getnames()
        assert f"{local}.deleted/INBOX.mbox" in names
        member = tar.extractfile(f"{local}.deleted/INBOX.mbox")
        assert member is not None and f"Thư của {address}".encode() in member.read()
    refused = await cli(conf, "directory", "purge")
    assert refused.returncode == 0
    assert "đang bị giữ nguyên trạng (Thanh tra theo QĐ 12/QĐ-TTr)" in refused.stderr
    assert "is on hold" in refused.stderr and "purged" not in refused.stdout
    assert await app.store.get_account(address) is not None
    holds: list[OnHold] = []
    assert await service.purge(by=by, refused=holds) == [] and holds[0].address == address
    kept = await cli(conf, "account", "delete", address)
    assert kept.returncode == 1 and "is on hold" in kept.stderr and "Traceback" not in kept.stderr
    stray = await cli(conf, "hold", "set", "nowhere", "--reason", "x")
    assert stray.returncode == 1 and "không có cơ quan nowhere / no agency nowhere" in stray.stderr

    cleared = await cli(conf, "hold", "clear", "stttt")
    assert cleared.returncode == 0 and "hold cleared" in cleared.stdout
    # The server's loop: a purge at once, then one every purge_interval.
    passes = 0

    async def stop_after_one(_: float) -> None:
        nonlocal passes
        passes += 1
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await purge_loop(app.store, 30, 3600, sleep=stop_after_one)
    assert passes == 1 and await app.store.deleted_messages(person.id) == []
    purged = await cli(conf, "directory", "purge")
    assert purged.returncode == 0 and f"purged {address}" in purged.stdout
    actions = [e.action for e in await open_directory(app.store).audit_log(subject="stttt")]
    assert "hold.set" in actions and "hold.clear" in actions


async def test_backup_and_restore_keep_the_vault(tmp_path: Path, backend_url: str) -> None:
    config = make_config(tmp_path / "data", backend_url)
    user = "an@dongnai.gov.vn"
    async with App(config) as app:
        acc = await account(app.store, user)
        inbox = await app.store.get_folder(acc.id, INBOX)
        info = await app.store.append(acc.id, inbox.id, mail(9, "Tờ trình"), flags=["\\Answered"],
                                      internal_date=WHEN)
        await app.store.store_flags(acc.id, inbox.id, [info.uid], ["\\Deleted"], FlagMode.ADD)
        await app.store.expunge(acc.id, inbox.id, [Uid(info.uid)])
        before = await app.store.deleted_messages(acc.id)
        await create_backup(config, tmp_path / "backups")
    async with pg_target(backend_url) as target_url:
        restored_dir = tmp_path / "restored"
        await restore_backup(tmp_path / "backups", restored_dir, database_url=target_url or None)
        async with App(make_config(restored_dir, target_url)) as restored:
            acc2 = await restored.store.get_account(user)
            assert acc2 is not None
            assert await restored.store.deleted_messages(acc2.id) == before
            (back,) = await restored.store.undelete([before[0].id])
            port = restored.addresses["imap"][1]
            got = await asyncio.to_thread(imap_folder, port, user, INBOX)
    assert got[int(back.uid)] == (mail(9, "Tờ trình"), frozenset({b"\\Answered"}), WHEN)


async def test_portal_shows_and_restores_only_ones_own_deleted_mail(tmp_path: Path) -> None:
    config = make_config(tmp_path / "data")
    async with App(config) as app:
        ids: dict[str, int] = {}
        for user in ("an@dongnai.gov.vn", "binh@dongnai.gov.vn"):
            acc = await account(app.store, user)
            inbox = await app.store.get_folder(acc.id, INBOX)
            info = await app.store.append(acc.id, inbox.id, mail(acc.id, f"Riêng của {user}"))
            await app.store.store_flags(acc.id, inbox.id, [info.uid], ["\\Deleted"], FlagMode.ADD)
            await app.store.expunge(acc.id, inbox.id)
            (entry,) = await app.store.deleted_messages(acc.id)
            ids[user] = entry.id
        async with TestClient(TestServer(build_application(app.portal_dependencies()))) as client:
            page = await (await client.get("/deleted")).text()
            assert 'action="/deleted/login"' in page and "Riêng của" not in page
            token = csrf_of(page)
            wrong = (("binh@dongnai.gov.vn", "sai-mat-khau"), ("ai@dongnai.gov.vn", PASSWORD))
            for who, password in wrong:
                resp = await client.post("/deleted/login", data={
                    "csrf": token, "address": who, "password": password})
                assert resp.status == 401 and "Sai địa chỉ hoặc mật khẩu." in await resp.text()
            resp = await client.post("/deleted/login", data={
                "csrf": token, "address": "binh@dongnai.gov.vn", "password": PASSWORD})
            assert resp.status == 200 and str(resp.url).endswith("/deleted")
            page = await resp.text()
            assert "Riêng của binh@dongnai.gov.vn" in page and "Riêng của an@" not in page
            fresh = csrf_of(page)
            assert fresh != token  # rotated at sign-in

            # Another user's entry id: "not found", nothing restored anywhere.
            resp = await client.post("/deleted/restore", data={
                "csrf": fresh, "id": str(ids["an@dongnai.gov.vn"])})
            assert "Không tìm thấy thư đã chọn" in await resp.text()
            an = await app.store.get_account("an@dongnai.gov.vn")
            assert an is not None and len(await app.store.deleted_messages(an.id)) == 1
            an_inbox = await app.store.get_folder(an.id, INBOX)
            assert await app.store.list_messages(an.id, an_inbox.id) == []
            # No CSRF token, no restore.
            resp = await client.post("/deleted/restore", data={"id": str(ids["binh@dongnai.gov.vn"])})
            assert resp.status == 403
            resp = await client.post("/deleted/restore", data={"csrf": fresh, "id": "x"})
            assert resp.status == 400

            resp = await client.post("/deleted/restore", data={
                "csrf": fresh, "id": str(ids["binh@dongnai.gov.vn"])})
            assert "Đã khôi phục 1 thư về thư mục cũ." in await resp.text()
            resp = await client.post("/deleted/logout", data={"csrf": fresh})
            assert 'action="/deleted/login"' in await resp.text()
            resp = await client.post("/deleted/restore", data={
                "csrf": fresh, "id": str(ids["an@dongnai.gov.vn"])})
            assert 'action="/deleted/login"' in await resp.text()
        port = app.addresses["imap"][1]
        binh = await asyncio.to_thread(imap_folder, port, "binh@dongnai.gov.vn", INBOX)
        assert [d for d, _, _ in binh.values()] == [mail(2, "Riêng của binh@dongnai.gov.vn")]
        assert len(await app.store.deleted_messages(an.id)) == 1
