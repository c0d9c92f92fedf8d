"""Self-service app passwords and login history on the portal (issue 23), over HTTP
with aiohttp's client, then the new app password used by imaplib against the
same running server; ``accounts.require_app_passwords`` on, so the main password
opens the portal but not IMAP."""

from __future__ import annotations

import asyncio
import imaplib
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from mailserver.app import App
from mailserver.auth import hash_password
from mailserver.web.server import build_application
from tests.web.helpers import csrf_of, portal_config

USER = "lethib@dongnai.gov.vn"
PASSWORD = "Mat-khau-chinh-2026"


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[tuple[App, TestClient]]:  # type: ignore[type-arg]
    config = portal_config(tmp_path / "data")
    config = replace(config, accounts=replace(config.accounts, require_app_passwords=True))
    async with App(config) as app:
        await app.store.create_account(USER, "Lê Thị B", hash_password(PASSWORD), must_change_password=False)
        async with TestClient(TestServer(build_application(app.portal_dependencies()))) as client:
            yield app, client


def imap_login(port: int, password: str) -> str:
    imap = imaplib.IMAP4("127.0.0.1", port)
    try:
        imap.login(USER, password)
    except imaplib.IMAP4.error as exc:
        return str(exc)
    finally:
        imap.logout()
    return "OK"


async def test_user_manages_app_passwords(site: tuple[App, TestClient]) -> None:  # type: ignore[type-arg]
    app, client = site
    assert (await client.get("/app-passwords", allow_redirects=False)).headers["Location"] == "/account/login"
    token = csrf_of(await (await client.get("/account/login")).text())
    wrong = await client.post("/account/login", data={"csrf": token, "address": USER, "password": "nope"})
    assert wrong.status == 401
    token = csrf_of(await wrong.text())
    resp = await client.post("/account/login", data={"csrf": token, "address": USER, "password": PASSWORD})
    assert resp.status == 200 and resp.url.path == "/app-passwords"
    page = await resp.text()
    assert "Chưa có / none yet" in page
    # A token from before the sign-in is refused: it was rotated.
    stale = await client.post("/app-passwords", data={"csrf": token, "name": "x", "scope": "imap"})
    assert stale.status == 403

    token = csrf_of(page)
    made = await client.post("/app-passwords", data=[("csrf", token), ("name", "Điện thoại"),
                                                     ("scope", "imap"), ("scope", "smtp")])
    assert made.status == 200
    html = await made.text()
    found = re.search(r'<code id="app-secret">([^<]+)</code>', html)
    assert found is not None
    secret = found.group(1)
    # Shown once: the list page never shows it again.
    assert secret not in await (await client.get("/app-passwords")).text()

    port = app.addresses["imap"][1]
    assert await asyncio.to_thread(imap_login, port, secret) == "OK"
    refused = await asyncio.to_thread(imap_login, port, PASSWORD)
    assert "app passwords only" in refused

    page = await (await client.get("/app-passwords")).text()
    history = page.split('id="login-history"')[1]
    assert "imap" in history and "Điện thoại" in history and "app-password-required" in history
    assert "web" in history and "+0700" in history
    assert "chưa dùng / never" not in page.split('id="app-list"')[1].split("</table>")[0]

    token = csrf_of(page)
    gone = await client.post("/app-passwords/revoke", data={"csrf": token, "name": "Điện thoại"})
    assert gone.status == 200 and "Đã thu hồi / revoked" in await gone.text()
    assert "AUTHENTICATIONFAILED" in await asyncio.to_thread(imap_login, port, secret)
