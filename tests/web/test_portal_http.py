"""The portal over HTTP with aiohttp's test client: password change, directory,
operator pages, CSRF, throttling shared with IMAP/SMTP, PKI downloads."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from mailserver.app import App
from mailserver.auth import AuthStatus, hash_password
from mailserver.config import AuthSettings
from mailserver.web.security import decode_secret, totp
from mailserver.web.server import build_application
from tests.web.helpers import OPERATOR, OPERATOR_PASSWORD, csrf_of, portal_config, seed_directory

INITIAL = "Kq7m-x3Tz-9bWe-hR4p"
NEW = "Dong-Nai-2024-Mail!"
TOTP_SECRET = "JBSWY3DPEHPK3PXP"


@dataclass
class Portal:
    app: App
    client: TestClient  # type: ignore[type-arg]


async def _portal(config_dir: Path, **web: object) -> AsyncIterator[Portal]:
    config = portal_config(config_dir, **web)
    config = replace(config, auth=AuthSettings(failure_delay=0.01, max_failures=3))
    async with App(config) as app:
        await app.store.create_account("user@dongnai.gov.vn", "Trần Thị Bích", hash_password(INITIAL),
                                       must_change_password=True)
        await app.store.create_account(OPERATOR, "Vận hành", hash_password(OPERATOR_PASSWORD),
                                       must_change_password=False)
        async with TestClient(TestServer(build_application(app.portal_dependencies()))) as client:
            yield Portal(app, client)


@pytest.fixture
async def portal(tmp_path: Path) -> AsyncIterator[Portal]:
    async for p in _portal(tmp_path / "data"):
        yield p


@pytest.fixture
async def totp_portal(tmp_path: Path) -> AsyncIterator[Portal]:
    async for p in _portal(tmp_path / "data", totp_secrets={OPERATOR: TOTP_SECRET}):
        yield p


async def _form(client: TestClient, path: str) -> str:  # type: ignore[type-arg]
    resp = await client.get(path)
    assert resp.status == 200
    return csrf_of(await resp.text())


async def _change(client: TestClient, current: str, new: str, confirm: str | None = None,  # type: ignore[type-arg]
                  address: str = "user@dongnai.gov.vn") -> tuple[int, str]:
    token = await _form(client, "/password")
    resp = await client.post("/password", data={
        "csrf": token, "address": address, "current": current, "new": new,
        "confirm": new if confirm is None else confirm,
    })
    return resp.status, await resp.text()


# -- /password -----------------------------------------------------------------------
async def test_initial_password_changed_and_accepted_at_once(portal: Portal) -> None:
    auth = portal.app.authenticator
    outcome = await auth.authenticate("user@dongnai.gov.vn", INITIAL, "192.0.2.1")
    assert outcome.status is AuthStatus.MUST_CHANGE
    status, html = await _change(portal.client, INITIAL, NEW)
    assert status == 200 and 'id="pw-done"' in html
    assert (await auth.authenticate("user@dongnai.gov.vn", NEW, "192.0.2.1")).ok
    assert (await auth.authenticate("user@dongnai.gov.vn", INITIAL, "192.0.2.1")).status is AuthStatus.FAILED
    log = await seed_directory_log(portal)
    assert ("password.change", "user@dongnai.gov.vn") in log


async def seed_directory_log(portal: Portal) -> list[tuple[str, str]]:
    from storage.directory import open_directory

    return [(e.action, e.subject) for e in await open_directory(portal.app.store).audit_log()]


async def test_weak_password_refused_with_the_rules(portal: Portal) -> None:
    status, html = await _change(portal.client, INITIAL, "bich12345")
    assert status == 400
    assert "ít nhất 10 ký tự" not in html or "3 trong 4" in html
    assert "bich" in html  # the name syllable it contains is named
    assert (await portal.app.store.get_account("user@dongnai.gov.vn")).must_change_password  # type: ignore[union-attr]


async def test_mismatch_and_missing_fields(portal: Portal) -> None:
    status, html = await _change(portal.client, INITIAL, NEW, confirm=NEW + "x")
    assert status == 400 and "không giống nhau" in html
    status, html = await _change(portal.client, "", NEW)
    assert status == 400 and "điền đủ" in html


async def test_unknown_address_answers_like_a_wrong_password(portal: Portal) -> None:
    _, unknown = await _change(portal.client, INITIAL, NEW, address="nobody@dongnai.gov.vn")
    _, wrong = await _change(portal.client, "wrong-Password-1", NEW)
    assert "the old password is wrong" in unknown and "the old password is wrong" in wrong
    assert "no such mailbox" not in unknown


async def test_web_failures_throttle_imap_logins_too(portal: Portal) -> None:
    for _ in range(3):
        await _change(portal.client, "wrong-Password-1", NEW)
    status, html = await _change(portal.client, INITIAL, NEW)
    assert status == 429 and "Quá nhiều lần thử sai" in html
    # The same Authenticator serves IMAP and SMTP: that address is throttled there
    # too, for this account; the owner elsewhere is not locked out.
    auth = portal.app.authenticator
    here = await auth.authenticate("user@dongnai.gov.vn", INITIAL, "127.0.0.1")
    elsewhere = await auth.authenticate("user@dongnai.gov.vn", INITIAL, "198.51.100.7")
    assert here.status is AuthStatus.THROTTLED and elsewhere.status is AuthStatus.MUST_CHANGE


async def test_post_without_csrf_token_is_refused(portal: Portal) -> None:
    await _form(portal.client, "/password")  # has a session cookie, but no token sent
    resp = await portal.client.post("/password", data={
        "address": "user@dongnai.gov.vn", "current": INITIAL, "new": NEW, "confirm": NEW})
    assert resp.status == 403
    resp = await portal.client.post("/password", data={
        "csrf": "forged", "address": "user@dongnai.gov.vn", "current": INITIAL, "new": NEW, "confirm": NEW})
    assert resp.status == 403
    assert (await portal.app.store.get_account("user@dongnai.gov.vn")).must_change_password  # type: ignore[union-attr]


async def test_password_never_in_a_url_and_cookie_flags(portal: Portal) -> None:
    resp = await portal.client.get("/password")
    html = await resp.text()
    assert 'method="post"' in html and 'type="password"' in html
    cookie = resp.headers.getall("Set-Cookie")
    session = next(c for c in cookie if c.startswith("portal_session="))
    assert "HttpOnly" in session and "SameSite=Strict" in session and "Secure" not in session
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    resp = await portal.client.get("/password?current=x")
    assert resp.status == 200  # a GET never changes anything


async def test_language_switch(portal: Portal) -> None:
    resp = await portal.client.get("/password?lang=en")
    html = await resp.text()
    assert '<html lang="en">' in html and "Change your mailbox password" in html
    resp = await portal.client.get("/password")  # remembered in the cookie
    assert "Change your mailbox password" in await resp.text()
    resp = await portal.client.get("/password?lang=vi")
    assert "Đổi mật khẩu hộp thư" in await resp.text()


# -- /directory ----------------------------------------------------------------------
async def test_directory_lists_agencies_and_searches_without_accents(portal: Portal) -> None:
    await seed_directory(portal.app)
    html = await (await portal.client.get("/directory")).text()
    assert "stttt@dongnai.gov.vn" in html and "Sở Thông tin và Truyền thông" in html
    assert "Ủy ban nhân dân tỉnh Đồng Nai" in html  # the parent's name is shown
    assert "annv@" not in html  # persons unpublished by default
    html = await (await portal.client.get("/directory", params={"q": "truyen thong"})).text()
    assert "stttt@dongnai.gov.vn" in html and "sgd" not in html.split('id="directory"')[1]
    html = await (await portal.client.get("/directory", params={"q": "giao duc dao tao"})).text()
    assert "Sở Giáo dục và Đào tạo" in html and "stttt@" not in html


async def test_directory_json_and_vcard(portal: Portal) -> None:
    await seed_directory(portal.app)
    resp = await portal.client.get("/directory.json")
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    data = json.loads(await resp.text())
    assert {e["address"] for e in data} >= {"stttt@dongnai.gov.vn", "ubnd@dongnai.gov.vn"}
    assert all(e["kind"] == "agency" for e in data)
    resp = await portal.client.get("/directory.vcf")
    assert resp.content_type == "text/vcard"
    text = await resp.text()
    assert text.count("BEGIN:VCARD") == len(data) and "\r\nKIND:org\r\n" in text


async def test_directory_publishes_persons_when_configured(tmp_path: Path) -> None:
    async for p in _portal(tmp_path / "data", publish_persons=True):
        await seed_directory(p.app)
        html = await (await p.client.get("/directory", params={"q": "nguyen van an"})).text()
        assert "annv@dongnai.gov.vn" in html and "Chuyên viên" in html


# -- /admin --------------------------------------------------------------------------
async def _login(client: TestClient, address: str, password: str, code: str = "") -> int:  # type: ignore[type-arg]
    token = await _form(client, "/admin/login")
    resp = await client.post("/admin/login", data={"csrf": token, "address": address, "password": password,
                                                   "totp": code}, allow_redirects=False)
    return resp.status


async def test_dashboard_only_after_operator_login(portal: Portal) -> None:
    resp = await portal.client.get("/admin", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/admin/login"
    assert (await portal.client.get("/admin/stats.json")).status == 401
    # A valid mailbox that is not an operator gets nowhere.
    await portal.app.store.create_account("staff@dongnai.gov.vn", "Staff", hash_password(NEW),
                                          must_change_password=False)
    assert await _login(portal.client, "staff@dongnai.gov.vn", NEW) == 401
    assert await _login(portal.client, OPERATOR, "wrong") == 401
    assert await _login(portal.client, OPERATOR, OPERATOR_PASSWORD) == 303
    html = await (await portal.client.get("/admin")).text()
    assert 'id="dashboard"' in html and "<svg" in html and OPERATOR in html
    stats = await (await portal.client.get("/admin/stats.json")).json()
    assert stats["accounts"] == 3 and stats["queue_messages"] == 0 and "imap" in stats["connections"]
    for page in ("/admin/queue", "/admin/quarantine", "/admin/reports", "/admin/audit"):
        assert (await portal.client.get(page)).status == 200
    reports = await (await portal.client.get("/admin/reports", params={"day": "2024-03-04"})).text()
    assert 'id="checks"' in reports and 'id="usage"' in reports
    assert (await portal.client.get("/admin/reports", params={"start": "2024-02-30"})).status == 400
    audit = await (await portal.client.get("/admin/audit")).text()
    assert "web.operator-login" in audit
    # Signing out ends the session.
    token = csrf_of(html)
    await portal.client.post("/admin/logout", data={"csrf": token}, allow_redirects=False)
    assert (await portal.client.get("/admin", allow_redirects=False)).status == 303


async def test_dashboard_hours_and_audit_in_province_time(portal: Portal) -> None:
    """Issue 16: staff read the clock of Đồng Nai; the dashboard and audit log say so."""
    from datetime import UTC, datetime, timedelta, timezone

    vn = timezone(timedelta(hours=7))
    user = await portal.app.store.get_account("user@dongnai.gov.vn")
    assert user is not None
    now = datetime.now(UTC)
    await portal.app.store.deliver([user.id], b"From: a@example.org\r\nSubject: x\r\n\r\nx\r\n",
                                   internal_date=now)
    assert await _login(portal.client, OPERATOR, OPERATOR_PASSWORD) == 303
    html = await (await portal.client.get("/admin")).text()
    assert "UTC+07:00" in html
    hour = now.astimezone(vn).strftime("%H")
    # The hour the message arrived, as a clock in Biên Hòa shows it, holds the delivery.
    assert f'<th scope="row">{hour}:00 +07:00</th><td>1</td>' in html
    audit = await (await portal.client.get("/admin/audit")).text()
    assert "UTC+07:00" in audit
    shown = re.findall(r'<time datetime="([^"]+)">([^<]+)</time>', audit)
    assert shown
    for iso, text in shown:
        assert text == datetime.fromisoformat(iso).astimezone(vn).strftime("%Y-%m-%d %H:%M:%S +07:00")


async def test_totp_required_when_enrolled(totp_portal: Portal) -> None:
    client = totp_portal.client
    assert await _login(client, OPERATOR, OPERATOR_PASSWORD) == 401
    assert await _login(client, OPERATOR, OPERATOR_PASSWORD, "000000") == 401
    code = totp(decode_secret(TOTP_SECRET), time.time())
    assert await _login(client, OPERATOR, OPERATOR_PASSWORD, code) == 303
    assert (await client.get("/admin", allow_redirects=False)).status == 200


async def test_totp_code_usable_once(totp_portal: Portal) -> None:
    client = totp_portal.client
    code = totp(decode_secret(TOTP_SECRET), time.time())
    assert await _login(client, OPERATOR, OPERATOR_PASSWORD, code) == 303
    token = csrf_of(await (await client.get("/admin")).text())
    await client.post("/admin/logout", data={"csrf": token}, allow_redirects=False)
    # RFC 6238 section 5.2: the same code, replayed within its 30 s step, is refused.
    assert await _login(client, OPERATOR, OPERATOR_PASSWORD, code) == 401
    assert (await client.get("/admin", allow_redirects=False)).status == 303


async def test_totp_failures_are_not_reset_by_the_right_password(tmp_path: Path) -> None:
    async for p in _portal(tmp_path / "data", totp_secrets={OPERATOR: TOTP_SECRET}, totp_max_failures=3):
        # Whoever has the password gets three codes, not three per right password.
        for guess in ("111111", "222222", "333333"):
            assert await _login(p.client, OPERATOR, OPERATOR_PASSWORD, guess) == 401
        code = totp(decode_secret(TOTP_SECRET), time.time())
        assert await _login(p.client, OPERATOR, OPERATOR_PASSWORD, code) == 429
        # Locked before the password is looked at: a wrong one gets the same answer.
        assert await _login(p.client, OPERATOR, "Sai-mat-khau-1", code) == 429
        # Counted apart: IMAP/SMTP logins of the operator's mailbox are not throttled.
        outcome = await p.app.authenticator.authenticate(OPERATOR, OPERATOR_PASSWORD, "127.0.0.1")
        assert outcome.ok


async def test_wrong_code_waits_as_long_as_a_wrong_password(
    totp_portal: Portal, monkeypatch: pytest.MonkeyPatch
) -> None:
    delay = totp_portal.app.config.auth.failure_delay
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def recording(seconds: float, *args: object) -> object:
        if seconds == delay:
            waits.append(seconds)
        return await real_sleep(seconds, *args)

    monkeypatch.setattr(asyncio, "sleep", recording)
    assert await _login(totp_portal.client, OPERATOR, "Sai-mat-khau-1", "123456") == 401
    wrong_password = len(waits)
    code = str((int(totp(decode_secret(TOTP_SECRET), time.time())) + 1) % 10**6).zfill(6)
    assert await _login(totp_portal.client, OPERATOR, OPERATOR_PASSWORD, code) == 401
    assert wrong_password == 1 and len(waits) - wrong_password == 1


async def test_concurrent_sign_ins_get_no_more_guesses(portal: Portal) -> None:
    """The portal shares the authenticator: 30 password guesses at once test at
    most ``auth.max_failures`` (3 here), and the 20th, right one, is refused."""
    token = await _form(portal.client, "/admin/login")
    guesses = [f"Sai-mat-khau-{n}" for n in range(30)]
    guesses[19] = OPERATOR_PASSWORD

    async def post(password: str) -> int:
        resp = await portal.client.post("/admin/login", data={
            "csrf": token, "address": OPERATOR, "password": password, "totp": ""}, allow_redirects=False)
        return resp.status

    statuses = await asyncio.gather(*(post(g) for g in guesses))
    assert len([s for s in statuses if s != 429]) <= 3
    assert statuses[19] == 429


async def test_queue_actions(portal: Portal) -> None:
    queue = portal.app.queue
    kept = await queue.enqueue("user@dongnai.gov.vn", ["a@example.org"], b"Subject: x\r\n\r\nhi\r\n",
                               origin="submission")
    dropped = await queue.enqueue("user@dongnai.gov.vn", ["b@example.org"], b"Subject: y\r\n\r\nhi\r\n",
                                  origin="submission")
    assert await _login(portal.client, OPERATOR, OPERATOR_PASSWORD) == 303
    html = await (await portal.client.get("/admin/queue")).text()
    assert "a@example.org" in html and "b@example.org" in html
    token = csrf_of(html)
    resp = await portal.client.post(f"/admin/queue/{dropped}/delete", data={"csrf": token})
    assert "Đã thực hiện" in await resp.text()
    resp = await portal.client.post(f"/admin/queue/{kept}/retry", data={"csrf": token})
    assert resp.status == 200
    assert [m.id for m in await queue.list()] == [kept]
    resp = await portal.client.post("/admin/queue/999999/delete", data={"csrf": token})
    assert "Không tìm thấy" in await resp.text()
    log = await seed_directory_log(portal)
    assert ("queue.delete", f"queue:{dropped}") in log


async def test_quarantine_release_and_delete(portal: Portal) -> None:
    app = portal.app
    held = app.quarantine.put(b"Subject: held\r\n\r\nbody\r\n", sender="x@example.org",
                              recipients=[OPERATOR], reasons=["spam: score 9"], subject="held")
    other = app.quarantine.put(b"Subject: junk\r\n\r\nbody\r\n", sender="x@example.org",
                               recipients=[OPERATOR], reasons=["malware: EICAR"], subject="junk")
    assert await _login(portal.client, OPERATOR, OPERATOR_PASSWORD) == 303
    html = await (await portal.client.get("/admin/quarantine")).text()
    assert "spam: score 9" in html
    token = csrf_of(html)
    await portal.client.post(f"/admin/quarantine/{held.id}/release", data={"csrf": token})
    await portal.client.post(f"/admin/quarantine/{other.id}/delete", data={"csrf": token})
    assert app.quarantine.list() == []
    account = await app.store.get_account(OPERATOR)
    assert account is not None
    inbox = await app.store.get_folder(account.id, "INBOX")
    assert len(await app.store.list_messages(account.id, inbox.id)) == 1


async def test_unknown_page_is_a_page_not_a_traceback(portal: Portal) -> None:
    resp = await portal.client.get("/nope")
    assert resp.status == 404 and "<h1>" in await resp.text()
    resp = await portal.client.get("/static/../config.py")
    assert resp.status == 404


async def test_pki_downloads_absent_without_ca(portal: Portal) -> None:
    assert (await portal.client.get("/ca.pem")).status == 404
    assert (await portal.client.get("/crl")).status == 404
