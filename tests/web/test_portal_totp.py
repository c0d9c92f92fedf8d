"""Two-factor sign-in on the portal for every user (issue 23), over HTTP with
aiohttp's client: QR enrolment, each code accepted once, recovery codes spent
once, wrong codes throttled apart from wrong passwords (IMAP still signs in),
a notice mail when 2FA is turned off, and ``web.require_totp_operators``."""

from __future__ import annotations

import asyncio
import email.header
import imaplib
import re
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from mailserver.app import App
from mailserver.auth import hash_password
from mailserver.config import AuthSettings
from mailserver.web.security import decode_secret, totp
from mailserver.web.server import build_application
from tests.web.helpers import OPERATOR, OPERATOR_PASSWORD, csrf_of, portal_config

USER = "tranvc@dongnai.gov.vn"
PASSWORD = "Mat-khau-chinh-2026"


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[tuple[App, TestClient]]:  # type: ignore[type-arg]
    config = portal_config(tmp_path / "data", require_totp_operators=True, totp_max_failures=3)
    config = replace(config, auth=AuthSettings(failure_delay=0.01, max_failures=3))
    async with App(config) as app:
        for address, password in ((USER, PASSWORD), (OPERATOR, OPERATOR_PASSWORD)):
            await app.store.create_account(address, "Người dùng", hash_password(password),
                                           must_change_password=False)
        async with TestClient(TestServer(build_application(app.portal_dependencies()))) as client:
            yield app, client


async def sign_in(client: TestClient, address: str, password: str, code: str = "",  # type: ignore[type-arg]
                  path: str = "/account/login") -> tuple[int, str]:
    token = csrf_of(await (await client.get(path)).text())
    form = {"csrf": token, "address": address, "password": password, "totp": code}
    resp = await client.post(path, data=form)
    return resp.status, await resp.text()


async def sign_out(client: TestClient, page: str) -> None:  # type: ignore[type-arg]
    await client.post("/account/logout", data={"csrf": csrf_of(page)})


async def enrol(client: TestClient) -> tuple[bytes, list[str]]:  # type: ignore[type-arg]
    page = await (await client.get("/account/totp")).text()
    assert 'id="totp-qr" src="data:image/svg+xml;base64,' in page
    secret = re.search(r'<code id="totp-secret">([A-Z2-7]+)</code>', page)
    assert secret is not None
    key = decode_secret(secret.group(1))
    wrong = "000000" if totp(key, time.time()) != "000000" else "111111"
    bad = await client.post("/account/totp/enable", data={"csrf": csrf_of(page), "totp": wrong})
    assert bad.status == 400
    right = totp(key, time.time())
    done = await client.post("/account/totp/enable", data={"csrf": csrf_of(page), "totp": right})
    html = await done.text()
    codes = re.findall(r'<code class="recovery">([^<]+)</code>', html)
    assert done.status == 200 and len(codes) == 10 and len(set(codes)) == 10
    return key, codes


def subjects(port: int) -> list[str]:
    imap = imaplib.IMAP4("127.0.0.1", port)
    imap.login(USER, PASSWORD)
    imap.select("INBOX")
    _, data = imap.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    imap.logout()
    out = []
    for item in data:
        if isinstance(item, tuple):
            raw = item[1].decode().split(":", 1)[1].strip()
            out.append(str(email.header.make_header(email.header.decode_header(raw))))
    return out


async def test_user_totp_guards_the_portal(site: tuple[App, TestClient]) -> None:  # type: ignore[type-arg]
    app, client = site
    status, page = await sign_in(client, USER, PASSWORD)
    assert status == 200
    key, codes = await enrol(client)
    page = await (await client.get("/account/totp")).text()
    assert 'id="totp-on"' in page and "10" in page
    await sign_out(client, page)

    # The password alone no longer opens the portal; the code of a step already
    # used (enrolment took the current one) is refused: each code once.
    assert (await sign_in(client, USER, PASSWORD))[0] == 401
    assert (await sign_in(client, USER, PASSWORD, totp(key, time.time() - 30)))[0] == 401
    status, page = await sign_in(client, USER, PASSWORD, totp(key, time.time() + 30))
    assert status == 200 and 'id="app-list"' in page
    await sign_out(client, page)
    assert (await sign_in(client, USER, PASSWORD, totp(key, time.time() + 30)))[0] == 401

    # A recovery code works once.
    status, page = await sign_in(client, USER, PASSWORD, codes[0])
    assert status == 200
    await sign_out(client, page)
    assert (await sign_in(client, USER, PASSWORD, codes[0]))[0] == 401
    # Wrong codes count apart from passwords: the third locks the second factor,
    # and then even the right code is refused (429) ...
    for wrong in ("aaaa-bbbb-cccc", "9999999"):
        assert (await sign_in(client, USER, PASSWORD, wrong))[0] == 401
    assert (await sign_in(client, USER, PASSWORD, codes[1]))[0] == 429
    # ... while the password throttle is untouched: IMAP signs in.
    port = app.addresses["imap"][1]
    assert not any("Đã tắt" in s for s in await asyncio.to_thread(subjects, port))


async def test_turning_totp_off_sends_a_notice(site: tuple[App, TestClient]) -> None:  # type: ignore[type-arg]
    app, client = site
    await sign_in(client, USER, PASSWORD)
    key, codes = await enrol(client)
    page = await (await client.get("/account/totp")).text()
    wrong = await client.post("/account/totp/disable", data={"csrf": csrf_of(page), "totp": "12-34"})
    assert wrong.status == 400
    off = await client.post("/account/totp/disable", data={"csrf": csrf_of(page), "totp": codes[3]})
    assert off.status == 200 and "two-factor sign-in turned off" in await off.text()
    found = await asyncio.to_thread(subjects, app.addresses["imap"][1])
    assert "Đã tắt xác thực hai bước / Two-factor sign-in turned off" in found
    # Off: the password alone opens the portal again, and a fresh enrolment gets a new key.
    page = await (await client.get("/account/totp")).text()
    await sign_out(client, page)
    assert (await sign_in(client, USER, PASSWORD))[0] == 200
    assert key != decode_secret(re.search(r'id="totp-secret">([A-Z2-7]+)<', await (
        await client.get("/account/totp")).text()).group(1))  # type: ignore[union-attr]


async def test_operators_need_totp_when_required(site: tuple[App, TestClient]) -> None:  # type: ignore[type-arg]
    _, client = site
    status, page = await sign_in(client, OPERATOR, OPERATOR_PASSWORD, path="/admin/login")
    assert status == 403 and "/account/totp" in page
    assert (await sign_in(client, OPERATOR, OPERATOR_PASSWORD))[0] == 200
    key, _ = await enrol(client)
    assert (await sign_in(client, OPERATOR, OPERATOR_PASSWORD, path="/admin/login"))[0] == 401
    status, page = await sign_in(client, OPERATOR, OPERATOR_PASSWORD, totp(key, time.time() + 30),
                                 path="/admin/login")
    assert status == 200 and "/admin/logout" in page
