"""App passwords and the login history over real clients (issue 23): created with
the real CLI on the running server's data, then IMAP LOGIN with imaplib and
submission AUTH with smtplib; ``accounts.require_app_passwords`` refuses the main
password on both (clear bilingual text) while the portal still signs in with it."""

from __future__ import annotations

import asyncio
import imaplib
import json
import smtplib
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from mailserver.app import App
from tests.conftest import RunningServer, make_config

ANNV = "annv@dongnai.gov.vn"
PASSWORD = "S3cret-pass-word"
DEVICE = "Điện thoại"


def cli(server: RunningServer, *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI on the running server's data directory and database."""
    config = Path(server.config.server.data_dir).parent / "cli.toml"
    config.write_text(f'[server]\ndata_dir = "{server.config.server.data_dir}"\n', encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "mailserver", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=120, check=False)


async def run_cli(server: RunningServer, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(cli, server, *args)


@pytest.fixture(params=[False, True], ids=["main-allowed", "app-required"])
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RunningServer]:
    config = make_config(tmp_path / "data")
    config = replace(config, accounts=replace(config.accounts, require_app_passwords=request.param))
    async with App(config) as app:
        running = RunningServer(app, config)
        await running.add_account(ANNV, PASSWORD, name="Nguyễn Văn An")
        yield running


def imap_login(server: RunningServer, user: str, password: str, client: str | None = None) -> str:
    """LOGIN over imaplib (after ID when ``client``); 'OK' or the NO text."""
    imaplib.Commands.setdefault("ID", ("NONAUTH", "AUTH", "SELECTED", "LOGOUT"))
    imap = imaplib.IMAP4("127.0.0.1", server.port("imap"))
    if client is not None:
        typ, _ = imap._simple_command("ID", f'("name" "{client}" "version" "1.0")')
        assert typ == "OK"
    try:
        imap.login(user, password)
    except imaplib.IMAP4.error as exc:
        return str(exc)
    finally:
        imap.logout()
    return "OK"


def smtp_login(server: RunningServer, user: str, password: str) -> str:
    with smtplib.SMTP("127.0.0.1", server.port("submission"), timeout=30) as smtp:
        smtp.ehlo()
        try:
            smtp.login(user, password)
        except smtplib.SMTPAuthenticationError as exc:
            return f"{exc.smtp_code} {exc.smtp_error.decode()}"
        return "OK"


def notices(server: RunningServer, password: str) -> list[bytes]:
    imap = imaplib.IMAP4("127.0.0.1", server.port("imap"))
    imap.login(ANNV, password)
    imap.select("INBOX")
    _, data = imap.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    imap.logout()
    return [item[1] for item in data if isinstance(item, tuple)]


async def test_app_password_signs_in_and_is_revoked(server: RunningServer) -> None:
    required = server.config.accounts.require_app_passwords
    added = await run_cli(server, "account", "app-password", "add", ANNV, "--name", DEVICE,
                          "--scope", "imap,smtp")
    assert added.returncode == 0, added.stderr
    secret = added.stdout.strip().splitlines()[-1]
    assert len(secret) >= 16 and DEVICE in added.stdout

    # The secret itself is never stored: only its Argon2id hash.
    listed = json.loads((await run_cli(server, "account", "app-password", "list", ANNV, "--json")).stdout)
    assert [(a["name"], a["scopes"], a["last_used_at"]) for a in listed] == [(DEVICE, ["imap", "smtp"], None)]
    with sqlite3.connect(Path(server.config.server.data_dir) / "mailserver.db") as db:
        (stored,) = db.execute("SELECT password_hash FROM app_passwords").fetchone()
    assert stored.startswith("$argon2id$") and secret not in stored

    assert await asyncio.to_thread(imap_login, server, ANNV, secret) == "OK"
    assert await asyncio.to_thread(smtp_login, server, ANNV, secret) == "OK"
    main_imap = await asyncio.to_thread(imap_login, server, ANNV, PASSWORD, "Thunderbird")
    main_smtp = await asyncio.to_thread(smtp_login, server, ANNV, PASSWORD)
    if required:
        assert "AUTHENTICATIONFAILED" in main_imap and "mat khau ung dung" in main_imap  # ASCII-folded
        assert "app passwords only" in main_imap
        assert main_smtp.startswith("535 ") and "app passwords only" in main_smtp
    else:
        assert main_imap == main_smtp == "OK"
    # The secret with its last character changed (to "x", or "y" when it ends in "x":
    # a random secret ends in "x" now and then, and was then its own "wrong" password).
    mistyped = secret[:-1] + ("y" if secret.endswith("x") else "x")
    wrong = await asyncio.to_thread(imap_login, server, ANNV, mistyped, "K-9 Mail")
    assert "AUTHENTICATIONFAILED" in wrong

    # The owner is told, in Vietnamese first, in the INBOX (read here with the app password).
    subjects = await asyncio.to_thread(notices, server, secret)
    assert any("Mật khẩu ứng dụng mới".encode() in s or b"=?utf-8?" in s.lower() for s in subjects)
    assert any(b"New app password" in s or b"=?utf-8?" in s.lower() for s in subjects)

    await server.app.authenticator.history.flush()  # type: ignore[union-attr]
    listed = json.loads((await run_cli(server, "account", "app-password", "list", ANNV, "--json")).stdout)
    assert listed[0]["last_used_at"] is not None and listed[0]["last_used_ip"] == "127.0.0.1"

    history = json.loads((await run_cli(server, "account", "logins", ANNV, "--json")).stdout)
    seen = [(h["protocol"], h["client"], h["success"], h["detail"]) for h in history]
    assert ("imap", DEVICE, True, "app-password") in seen
    assert ("smtp", DEVICE, True, "app-password") in seen
    assert ("imap", "K-9 Mail 1.0", False, "password") in seen
    if required:
        assert ("imap", "Thunderbird 1.0", False, "app-password-required") in seen
        assert ("smtp", "", False, "app-password-required") in seen
    else:
        assert ("imap", "Thunderbird 1.0", True, "password") in seen
    assert all(h["at"].endswith("+07:00") and h["remote_ip"] == "127.0.0.1" for h in history)
    text = (await run_cli(server, "account", "logins", ANNV)).stdout
    assert "thất bại/failed" in text and DEVICE in text

    revoked = await run_cli(server, "account", "app-password", "revoke", ANNV, DEVICE)
    assert revoked.returncode == 0, revoked.stderr
    assert "AUTHENTICATIONFAILED" in await asyncio.to_thread(imap_login, server, ANNV, secret)
    assert (await asyncio.to_thread(smtp_login, server, ANNV, secret)).startswith("535 ")
    again = await run_cli(server, "account", "app-password", "revoke", ANNV, DEVICE)
    assert again.returncode != 0 and "no app password named" in again.stderr


async def test_scope_and_bad_input(server: RunningServer) -> None:
    added = await run_cli(server, "account", "app-password", "add", ANNV, "--name", "Máy tính",
                          "--scope", "smtp")
    secret = added.stdout.strip().splitlines()[-1]
    # An SMTP-only app password does not open the mailbox.
    assert "AUTHENTICATIONFAILED" in await asyncio.to_thread(imap_login, server, ANNV, secret)
    assert await asyncio.to_thread(smtp_login, server, ANNV, secret) == "OK"
    duplicate = await run_cli(server, "account", "app-password", "add", ANNV, "--name", "Máy tính")
    assert duplicate.returncode != 0 and "exists" in duplicate.stderr and "Traceback" not in duplicate.stderr
    bad = await run_cli(server, "account", "app-password", "add", ANNV, "--name", "x", "--scope", "pop3")
    assert bad.returncode != 0 and "pop3" in bad.stderr and "Traceback" not in bad.stderr
    nobody = await run_cli(server, "account", "logins", "nobody@dongnai.gov.vn")
    assert nobody.returncode != 0 and "no such account" in nobody.stderr
