"""Full-text search over real clients (issue #21): mail delivered over SMTP with
PDF and DOCX attachments, indexed in the background, found by imaplib,
imapclient and curl without diacritics, by document symbol, in exact mode; the
work list survives a restart; expunge removes entries. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import imaplib
import json
import shutil
import smtplib
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from imapclient import IMAPClient

from mailserver.app import App
from mailserver.config import Config
from mailserver.search.settings import SearchSettings
from tests.conftest import RunningServer, make_config
from tests.policy.corpus import DOCX, docx, message, pdf

ANNV = "annv@dongnai.gov.vn"
PASSWORD = "S3cret-pass-word"


def _config(tmp_path: Path, url: str = "", **search: object) -> Config:
    config = make_config(tmp_path / "data", url)
    return replace(config, search=SearchSettings(poll_interval=0.05, processes=0, **search))  # type: ignore[arg-type]


@pytest.fixture
async def search_server(tmp_path: Path, backend_url: str) -> AsyncIterator[RunningServer]:
    config = _config(tmp_path, backend_url)
    async with App(config) as app:
        yield RunningServer(app, config)


LETTER = message(
    "Công văn gửi Sở Nội vụ",
    "Kính gửi anh chị, xin gửi tài liệu đính kèm.",
    attachments=[
        (
            "qd123.pdf",
            pdf(["Số: 123/QĐ-UBND", "QUYẾT ĐỊNH về việc phê duyệt kế hoạch năm 2024"]),
            "application/pdf",
        ),
        ("kehoach.docx", docx(["Ủy ban nhân dân tỉnh Đồng Nai", "Kế hoạch tuyển dụng viên chức"]), DOCX),
    ],
)
OTHER = message("Lịch họp tuần", "Họp giao ban tại Hà Nội, thứ hai.")


def _send(port: int, *messages: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        for data in messages:
            smtp.sendmail("nguoigui@example.org", [ANNV], data.replace(b"\n", b"\r\n"))


async def _indexed(server: RunningServer, count: int) -> None:
    """Wait (at most 60 s) until nothing is pending and ``count`` entries exist."""
    deadline = time.monotonic() + 60
    while True:
        status = await server.app.store.index_status()
        if status.pending == 0 and status.indexed >= count:
            return
        assert time.monotonic() < deadline, status
        await asyncio.sleep(0.05)


def _uids(imap: imaplib.IMAP4, *criteria: str) -> list[int]:
    typ, data = imap.uid("SEARCH", *criteria)
    assert typ == "OK", data
    return [int(n) for n in data[0].split()]


async def test_clients_find_attachment_words_without_diacritics(search_server: RunningServer) -> None:
    server = search_server
    await server.add_account(ANNV, PASSWORD)
    await asyncio.to_thread(_send, server.port("smtp"), LETTER, OTHER)
    await _indexed(server, 2)

    def with_imaplib() -> None:
        imap = imaplib.IMAP4("127.0.0.1", server.port("imap"))
        imap.login(ANNV, PASSWORD)
        imap.select("INBOX")
        assert _uids(imap, "TEXT", '"quyet dinh"') == [1]  # in the PDF
        assert _uids(imap, "BODY", '"dong nai"') == [1]  # in the DOCX
        assert _uids(imap, "TEXT", "123/qd-ubnd") == [1]
        assert _uids(imap, "TEXT", '"tuyen dung vien"') == [1]  # the last word a prefix
        assert _uids(imap, "SUBJECT", '"cong van"') == [1]
        assert _uids(imap, "FROM", "nguoigui") == [1, 2]
        assert _uids(imap, "TEXT", '"ha noi"') == [2]
        assert _uids(imap, "TEXT", '"noi ha"') == []
        assert _uids(imap, "NOT", "TEXT", "kehoach") == [2]  # attachment file names count
        # Short strings are scanned (substrings of the body texts), and still folded.
        assert _uids(imap, "BODY", "ai") == [1, 2]  # "tài", "tại"
        assert _uids(imap, "BODY", "ch") == [1]  # "chị"
        # Diacritics typed: matches any diacritics by default (a literal, UTF-8).
        imap.literal = "Đồng Nai".encode()
        typ, data = imap.uid("SEARCH", "CHARSET", "UTF-8", "TEXT")
        assert typ == "OK" and data[0].split() == [b"1"]
        # ESEARCH (RFC 4731) is answered from the same index.
        typ, _ = imap.uid("SEARCH", "RETURN", "(COUNT MIN)", "TEXT", '"quyet dinh"')
        _, found = imap.response("ESEARCH")
        assert typ == "OK" and found[0] is not None and found[0].endswith(b"UID MIN 1 COUNT 1"), found
        imap.logout()

    def with_imapclient() -> None:
        with IMAPClient("127.0.0.1", port=server.port("imap"), ssl=False) as client:
            client.login(ANNV, PASSWORD)
            client.select_folder("INBOX")
            assert client.search(["TEXT", "quyet dinh"]) == [1]
            assert client.search(["BODY", "Quyết định"], charset="UTF-8") == [1]
            assert client.search(["TEXT", "ke hoach"]) == [1]

    await asyncio.to_thread(with_imaplib)
    await asyncio.to_thread(with_imapclient)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
async def test_curl_search(server_with_letter: RunningServer) -> None:
    url = f"imap://127.0.0.1:{server_with_letter.port('imap')}/INBOX"
    out = await asyncio.to_thread(
        subprocess.run,
        [
            "curl",
            "-s",
            "-S",
            "--max-time",
            "20",
            "--user",
            f"{ANNV}:{PASSWORD}",
            url,  # noqa: S607
            "-X",
            'UID SEARCH TEXT "quyet dinh"',
        ],
        capture_output=True,
        check=True,
    )
    assert b"* SEARCH 1" in out.stdout


@pytest.fixture
async def server_with_letter(tmp_path: Path) -> AsyncIterator[RunningServer]:
    config = _config(tmp_path)
    async with App(config) as app:
        server = RunningServer(app, config)
        await server.add_account(ANNV, PASSWORD)
        await asyncio.to_thread(_send, server.port("smtp"), LETTER, OTHER)
        await _indexed(server, 2)
        yield server


async def test_exact_diacritics(tmp_path: Path) -> None:
    config = _config(tmp_path, exact_diacritics=True)
    async with App(config) as app:
        server = RunningServer(app, config)
        await server.add_account(ANNV, PASSWORD)
        await asyncio.to_thread(_send, server.port("smtp"), LETTER, OTHER)
        await _indexed(server, 2)

        def run() -> None:
            with IMAPClient("127.0.0.1", port=server.port("imap"), ssl=False) as client:
                client.login(ANNV, PASSWORD)
                client.select_folder("INBOX")
                assert client.search(["TEXT", "Đồng Nai"], charset="UTF-8") == [1]
                assert client.search(["TEXT", "Đông Nai"], charset="UTF-8") == []  # other marks
                assert client.search(["TEXT", "dong nai"]) == [1]  # no marks: any spelling
                assert client.search(["SUBJECT", "Công văn"], charset="UTF-8") == [1]
                assert client.search(["SUBJECT", "Cong văn"], charset="UTF-8") == []
                assert client.search(["SUBJECT", "cong van"]) == [1]

        await asyncio.to_thread(run)


async def test_work_list_survives_restart_and_expunge_removes(tmp_path: Path) -> None:
    # Delivered while nothing indexes (search.index = false), as if the server died first.
    config = _config(tmp_path, index=False)
    async with App(config) as app:
        server = RunningServer(app, config)
        await server.add_account(ANNV, PASSWORD)
        await asyncio.to_thread(_send, server.port("smtp"), LETTER, OTHER)
        status = await app.store.index_status()
        assert (status.pending, status.indexed) == (2, 0)
    config = _config(tmp_path)
    async with App(config) as app:
        server = RunningServer(app, config)
        await _indexed(server, 2)
        status = await app.store.index_status()
        assert 0 < status.index_bytes and status.message_bytes > 0

        def expunge() -> None:
            imap = imaplib.IMAP4("127.0.0.1", server.port("imap"))
            imap.login(ANNV, PASSWORD)
            imap.select("INBOX")
            assert _uids(imap, "TEXT", '"quyet dinh"') == [1]
            imap.uid("STORE", "1", "+FLAGS", "(\\Deleted)")
            imap.expunge()
            assert _uids(imap, "TEXT", '"quyet dinh"') == []
            imap.logout()

        await asyncio.to_thread(expunge)
        assert (await app.store.index_status()).indexed == 1


def _cli(server: RunningServer, *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI on the running server's data directory and database."""
    config = Path(server.config.server.data_dir).parent / "cli.toml"
    config.write_text(f'[server]\ndata_dir = "{server.config.server.data_dir}"\n', encoding="utf-8")
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "mailserver", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_cli_reindex_and_status(server_with_letter: RunningServer) -> None:
    done = await asyncio.to_thread(_cli, server_with_letter, "search", "reindex", ANNV)
    assert done.returncode == 0, done.stderr
    assert "2 thư" in done.stdout and "100% (2/2)" in done.stderr  # the progress bar, not a terminal
    shown = await asyncio.to_thread(_cli, server_with_letter, "search", "status", "--json")
    status = json.loads(shown.stdout)
    assert status["pending"] == 0 and status["indexed"] == 2 and 0 < status["index_share"] < 1
    missing = await asyncio.to_thread(_cli, server_with_letter, "search", "reindex", "nobody@dongnai.gov.vn")
    assert (
        missing.returncode == 1 and "no such account" in missing.stderr and "Traceback" not in missing.stderr
    )
    usage = await asyncio.to_thread(_cli, server_with_letter, "search", "reindex")
    assert usage.returncode == 2
