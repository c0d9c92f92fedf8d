"""Quotas enforced over real clients (issue 15): set with the real CLI
(``mailserver account set-quota``, a subprocess on the running server's data),
then IMAP APPEND/COPY/MOVE with imaplib (``NO [OVERQUOTA]``, RFC 9208 section
4.3) and SMTP with smtplib (``452 4.2.2`` at RCPT or DATA, ``552 5.2.2`` for a
message larger than the whole quota), for a person and for an agency mailbox."""

from __future__ import annotations

import asyncio
import imaplib
import json
import smtplib
import subprocess
import sys
from pathlib import Path

import pytest

from mailserver.directory.passwords import change_password
from mailserver.directory.service import DirectoryService
from storage.directory import By, open_directory
from tests.conftest import RunningServer

ANNV = "annv@dongnai.gov.vn"
PASSWORD = "S3cret-pass-word"


def message(n: int, pad: int = 0) -> bytes:
    """About 120 octets plus ``pad``."""
    filler = "".join("x" * 68 + "\r\n" for _ in range(pad // 70)) + "x" * (pad % 70)
    return (f"From: x@example.org\r\nTo: {ANNV}\r\nSubject: so {n}\r\nMessage-ID: <q{n}@example.org>\r\n"
            f"\r\nNoi dung {n}.\r\n{filler}\r\n").encode()


def cli(server: RunningServer, *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI on the running server's data directory and database."""
    config = Path(server.config.server.data_dir).parent / "cli.toml"
    config.write_text(f'[server]\ndata_dir = "{server.config.server.data_dir}"\n', encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "mailserver", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=120, check=False)


async def set_quota(server: RunningServer, address: str, size: str) -> None:
    done = await asyncio.to_thread(cli, server, "account", "set-quota", address, size)
    assert done.returncode == 0, done.stderr


async def test_cli_set_quota_and_show(server: RunningServer) -> None:
    await server.add_account(ANNV, PASSWORD)
    await set_quota(server, ANNV, "2G")
    shown = json.loads((await asyncio.to_thread(cli, server, "account", "show", ANNV, "--json")).stdout)
    assert shown["quota"] == 2 << 30 and shown["quota_source"] == "account" and shown["storage_used"] == 0
    bad = await asyncio.to_thread(cli, server, "account", "set-quota", ANNV, "lots")
    assert bad.returncode == 1 and "not a size" in bad.stderr and "Traceback" not in bad.stderr
    missing = await asyncio.to_thread(cli, server, "account", "set-quota", "nobody@dongnai.gov.vn", "1M")
    assert missing.returncode == 1 and "no such account" in missing.stderr
    await set_quota(server, ANNV, "0")
    text = (await asyncio.to_thread(cli, server, "account", "show", ANNV)).stdout
    assert "quota: unlimited" in text


async def test_imap_append_copy_move_beyond_the_quota(server: RunningServer) -> None:
    await server.add_account(ANNV, PASSWORD)
    await set_quota(server, ANNV, "3K")  # room for three of these ~1,000-octet messages

    def run() -> None:
        imap = imaplib.IMAP4("127.0.0.1", server.port("imap"))
        imap.login(ANNV, PASSWORD)
        for n in range(1, 3):
            assert imap.append("INBOX", None, None, message(n, pad=880))[0] == "OK"
        typ, data = imap.getquotaroot("INBOX")
        assert typ == "OK" and data[1] == [b'"" (STORAGE 1 3)']  # KiB used, KiB allowed
        imap.select("INBOX")
        # COPY of two messages needs more than is left: refused whole.
        typ, data = imap.copy("1:2", "Archive")
        assert typ == "NO" and data[0].startswith(b"[OVERQUOTA]")
        assert imap.status("Archive", "(MESSAGES)")[1][0].endswith(b"(MESSAGES 0)")
        assert imap.append("INBOX", None, None, message(3, pad=880))[0] == "OK"
        typ, data = imap.append("INBOX", None, None, message(4, pad=880))
        assert typ == "NO" and data[0].startswith(b"[OVERQUOTA]")
        # Full, yet a MOVE (say to Trash) works: it adds nothing; then EXPUNGE frees space.
        typ, _ = imap._simple_command("MOVE", "1", "Trash")
        assert typ == "OK"
        imap.select("Trash")
        imap.store("1", "+FLAGS", "\\Deleted")
        imap.expunge()
        assert imap.append("INBOX", None, None, message(4, pad=880))[0] == "OK"
        imap.logout()

    await asyncio.to_thread(run)
    quota = await server.app.store.quota((await server.app.store.get_account(ANNV)).id)  # type: ignore[union-attr]
    assert quota.messages_used == 3


async def test_smtp_refuses_mail_the_quota_cannot_take(server: RunningServer) -> None:
    account = await server.add_account(ANNV, PASSWORD)
    await set_quota(server, ANNV, "4K")
    port = server.port("smtp")

    def run() -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
            smtp.ehlo("client.example.org")
            # SIZE larger than the whole quota: permanent, at RCPT.
            assert smtp.mail("x@example.org", ["SIZE=5000"])[0] == 250
            code, text = smtp.rcpt(ANNV)
            assert (code, text[:5]) == (552, b"5.2.2")
            smtp.rset()
            # Room for what SIZE announces: accepted, stored.
            data = message(1, pad=1500)
            assert smtp.mail("x@example.org", [f"SIZE={len(data)}"])[0] == 250
            assert smtp.rcpt(ANNV)[0] == 250
            assert smtp.data(data)[0] == 250
            # No SIZE, room at RCPT, but the message does not fit: 452 at the end of DATA.
            assert smtp.mail("x@example.org")[0] == 250
            assert smtp.rcpt(ANNV)[0] == 250
            code, text = smtp.data(message(2, pad=3000))
            assert (code, text[:5]) == (452, b"4.2.2")
            # SIZE says it no longer fits with what is stored: temporary, at RCPT.
            assert smtp.mail("x@example.org", ["SIZE=3000"])[0] == 250
            code, text = smtp.rcpt(ANNV)
            assert (code, text[:5]) == (452, b"4.2.2")

    await asyncio.to_thread(run)
    assert (await server.app.store.quota(account.id)).messages_used == 1


@pytest.fixture
async def agency(server: RunningServer) -> tuple[str, str]:
    """Agency mailbox stttt@ with its head (who may APPEND to Shared/stttt/...)."""
    store = server.app.store
    svc = DirectoryService(store, open_directory(store), server.config)
    by = By("tccb", "Số 77/QĐ-UBND")
    await svc.add_agency("stttt", "Sở Thông tin và Truyền thông", None, by=by)
    issued = await svc.add_person("Nguyễn Văn An", "stttt", by=by)
    await change_password(store, svc.directory, server.config.accounts, issued.address, issued.password,
                          PASSWORD)
    await svc.set_head("stttt", issued.address, by=by)
    return "stttt@dongnai.gov.vn", issued.address


async def test_agency_mailbox_quota(server: RunningServer, agency: tuple[str, str]) -> None:
    mailbox, head = agency
    await set_quota(server, mailbox, "1K")

    def run() -> None:
        with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=30) as smtp:
            smtp.ehlo("client.example.org")
            assert smtp.mail("x@example.org")[0] == 250
            assert smtp.rcpt(mailbox)[0] == 250
            assert smtp.data(message(1, pad=1200))[0] == 552  # larger than the whole quota
        imap = imaplib.IMAP4("127.0.0.1", server.port("imap"))
        imap.login(head, PASSWORD)
        # The head's own mailbox has no quota; the agency's is full for this one.
        assert imap.append("INBOX", None, None, message(2, pad=1200))[0] == "OK"
        typ, data = imap.append("Shared/stttt/INBOX", None, None, message(3, pad=1200))
        assert typ == "NO" and data[0].startswith(b"[OVERQUOTA]")
        imap.select("INBOX")
        typ, data = imap.copy("1", "Shared/stttt/INBOX")
        assert typ == "NO" and data[0].startswith(b"[OVERQUOTA]")
        imap.logout()

    await asyncio.to_thread(run)
