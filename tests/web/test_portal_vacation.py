"""The portal's /vacation page over HTTP (aiohttp's client against the real
application and store): sign-in comes back to it, CSRF is required, turning
the reply on wraps the user's own script (kept intact and still run), bad
dates are refused with the form kept, turning it off restores the script."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from mailserver.app import App
from mailserver.auth import hash_password
from mailserver.ops.vacation import SCRIPT_NAME
from mailserver.web.server import build_application
from storage.sieve import sieve_scripts_for
from tests.web.helpers import csrf_of, portal_config

USER = "lethib@dongnai.gov.vn"
PASSWORD = "Mat-khau-chinh-2026"
FILTER = 'require "fileinto";\nif header :contains "subject" "Báo cáo" { fileinto "Báo cáo"; }\n'


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[tuple[App, TestClient]]:  # type: ignore[type-arg]
    config = portal_config(tmp_path / "data")
    async with App(config) as app:
        await app.store.create_account(USER, "Lê Thị B", hash_password(PASSWORD), must_change_password=False)
        async with TestClient(TestServer(build_application(app.portal_dependencies()))) as client:
            yield app, client


async def test_vacation_page(site: tuple[App, TestClient]) -> None:  # type: ignore[type-arg]
    app, client = site
    scripts = sieve_scripts_for(app.store)
    await scripts.put_script(USER, "lọc thư", FILTER)
    await scripts.set_active(USER, "lọc thư")

    first = await client.get("/vacation", allow_redirects=False)
    assert first.status == 303 and first.headers["Location"] == "/account/login?next=/vacation"
    form = await (await client.get("/account/login?next=/vacation")).text()
    assert 'name="next" value="/vacation"' in form
    signed = await client.post(
        "/account/login",
        data={"csrf": csrf_of(form), "address": USER, "password": PASSWORD, "next": "/vacation"},
        allow_redirects=False,
    )
    assert signed.status == 303 and signed.headers["Location"] == "/vacation"
    page = await (await client.get("/vacation")).text()
    assert "Vắng mặt / Out of office" in page and "Đang tắt / Off" in page
    token = csrf_of(page)

    # No CSRF token: refused, nothing stored.
    forged = await client.post(
        "/vacation",
        data={
            "action": "on",
            "start": "2026-12-10",
            "end": "2026-12-20",
            "subject": "x",
            "message": "y",
            "days": "7",
        },
    )
    assert forged.status == 403
    assert await scripts.get_script(USER, SCRIPT_NAME) is None

    bad = await client.post(
        "/vacation",
        data={
            "csrf": token,
            "action": "on",
            "start": "2026-12-20",
            "end": "2026-12-10",
            "subject": "Vắng mặt",
            "message": "Tôi đi công tác Hà Nội",
            "days": "7",
        },
    )
    assert bad.status == 400
    text = await bad.text()
    assert "before the start date" in text and "Tôi đi công tác Hà Nội" in text  # the form is kept

    on = await client.post(
        "/vacation",
        data={
            "csrf": token,
            "action": "on",
            "start": "2026-12-10",
            "end": "2026-12-20",
            "subject": "Vắng mặt <đi công tác>",
            "message": "Tôi đi công tác Hà Nội.\r\nLiên hệ chị Bình.",
            "days": "3",
        },
        allow_redirects=False,
    )
    assert on.status == 303 and on.headers["Location"] == "/vacation?msg=on"
    active = await scripts.active_script(USER)
    assert active is not None and active.name == SCRIPT_NAME
    assert 'include :personal :optional "lọc thư";' in active.text
    assert 'vacation :days 3 :subject "Vắng mặt <đi công tác>"' in active.text
    assert (await scripts.get_script(USER, "lọc thư")).text == FILTER  # type: ignore[union-attr]
    page = await (await client.get("/vacation?msg=on")).text()
    assert "Đang bật / On" in page and 'value="2026-12-10"' in page and "&lt;đi công tác&gt;" in page

    off = await client.post("/vacation", data={"csrf": token, "action": "off"}, allow_redirects=False)
    assert off.status == 303
    restored = await scripts.active_script(USER)
    assert restored is not None and restored.name == "lọc thư"
    page = await (await client.get("/vacation")).text()
    assert "Đang tắt / Off" in page and 'value="2026-12-20"' in page  # the last settings are shown


async def test_next_only_goes_to_our_pages(site: tuple[App, TestClient]) -> None:  # type: ignore[type-arg]
    _, client = site
    form = await (await client.get("/account/login?next=https://evil.example/")).text()
    assert 'name="next"' not in form
    signed = await client.post(
        "/account/login",
        data={"csrf": csrf_of(form), "address": USER, "password": PASSWORD, "next": "https://evil.example/"},
        allow_redirects=False,
    )
    assert signed.status == 303 and signed.headers["Location"] == "/app-passwords"
