"""End-to-end: the portal in headless Chromium (Debian ``chromium`` +
``chromium-driver``, driven by Selenium), the server in a thread of its own so
the blocking WebDriver calls never stall its event loop. Screenshots of every
page go to ``tests/artifacts/`` (or ``$MAILSERVER_TEST_ARTIFACTS``)."""

from __future__ import annotations

import asyncio
import imaplib
import os
import shutil
import threading
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import pytest

from mailserver.app import App
from mailserver.auth import hash_password
from storage.directory import By as DirBy
from tests.web.helpers import OPERATOR, OPERATOR_PASSWORD, portal_config, seed_directory

T = TypeVar("T")
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
INITIAL = "Hq4m-x7Tz-9bWe-kR3p"
NEW = "Bien-Hoa-2024-Mail!"

pytestmark = pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
    reason="needs Debian chromium and chromium-driver (installed by .ci/run)",
)
webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

ARTIFACTS = Path(os.environ.get("MAILSERVER_TEST_ARTIFACTS", Path(__file__).parent.parent / "artifacts"))


class ThreadedServer:
    """An App on its own event loop in a daemon thread."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._main())
        self.loop.close()

    async def _main(self) -> None:
        try:
            await self.app.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.app.stop()

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(60)
        if self._error is not None:
            raise self._error

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(60)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)

    def url(self, path: str) -> str:
        host, port = self.app.addresses["web"]
        return f"http://{host}:{port}{path}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1100,900", "--lang=vi"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def site(tmp_path: Path, browser: Any) -> Iterator[ThreadedServer]:
    server = ThreadedServer(App(portal_config(tmp_path / "data")))
    server.start()
    browser.delete_all_cookies()
    try:
        yield server
    finally:
        server.stop()


def shot(browser: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def wait_for(browser: Any, css: str) -> Any:
    """The element once the page that has it has loaded (a click returns before)."""
    return WebDriverWait(browser, 15).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css))
    )


def fill(browser: Any, **fields: str) -> None:
    for name, value in fields.items():
        element = browser.find_element(By.ID, name)
        element.clear()
        element.send_keys(value)


def test_change_initial_password_then_imap_login(site: ThreadedServer, browser: Any) -> None:
    address = "ngoctb@dongnai.gov.vn"
    site.call(site.app.store.create_account(address, "Trần Bích Ngọc", hash_password(INITIAL),
                                            must_change_password=True))
    imap_port = site.app.addresses["imap"][1]
    with imaplib.IMAP4("127.0.0.1", imap_port) as imap, pytest.raises(imaplib.IMAP4.error):
        imap.login(address, INITIAL)  # expired: must be changed first
    browser.get(site.url("/password"))
    shot(browser, "password-form")
    fill(browser, address=address, current=INITIAL, new=NEW, confirm=NEW)
    browser.find_element(By.ID, "pw-submit").click()
    done = wait_for(browser, "#pw-done")
    assert "Đã đổi mật khẩu" in done.text
    assert NEW not in browser.current_url and INITIAL not in browser.current_url
    shot(browser, "password-done")
    with imaplib.IMAP4("127.0.0.1", imap_port) as imap:
        typ, _ = imap.login(address, NEW)
        assert typ == "OK"
        imap.logout()
    # A weak password is refused with the rules spelled out.
    browser.get(site.url("/password?lang=en"))
    fill(browser, address=address, current=NEW, new="ngoc", confirm="ngoc")
    # Past the browser's own minlength check, to reach the server's rules.
    browser.execute_script(
        "document.querySelectorAll('[minlength]').forEach(e => e.removeAttribute('minlength'))"
    )
    browser.find_element(By.ID, "pw-submit").click()
    assert "at least 10 characters" in wait_for(browser, "#pw-errors").text
    shot(browser, "password-refused-en")


def test_directory_search_without_accents(site: ThreadedServer, browser: Any) -> None:
    site.call(seed_directory(site.app))
    browser.get(site.url("/directory"))
    shot(browser, "directory")
    fill(browser, q="so thong tin truyen thong")
    browser.find_element(By.ID, "q").submit()
    WebDriverWait(browser, 15).until(expected_conditions.url_contains("q="))
    wait_for(browser, "#directory")
    rows = browser.find_elements(By.CSS_SELECTOR, "#directory tbody tr")
    assert len(rows) == 1
    assert "stttt@dongnai.gov.vn" in rows[0].text and "Ủy ban nhân dân tỉnh Đồng Nai" in rows[0].text
    shot(browser, "directory-search")
    browser.set_window_size(390, 844)  # a phone screen
    shot(browser, "directory-phone")
    browser.set_window_size(1100, 900)


def test_dashboard_after_operator_login_only(site: ThreadedServer, browser: Any) -> None:
    site.call(site.app.store.create_account(OPERATOR, "Vận hành", hash_password(OPERATOR_PASSWORD),
                                            must_change_password=False))
    browser.get(site.url("/admin"))
    assert browser.current_url.endswith("/admin/login")
    assert not browser.find_elements(By.ID, "dashboard")
    shot(browser, "admin-login")
    fill(browser, address=OPERATOR, password=OPERATOR_PASSWORD)
    browser.find_element(By.ID, "login-submit").click()
    assert wait_for(browser, "#dashboard").is_displayed()
    assert browser.find_elements(By.CSS_SELECTOR, "svg.chart")
    shot(browser, "admin-dashboard")
    for page in ("queue", "quarantine", "reports", "audit"):
        browser.get(site.url(f"/admin/{page}"))
        assert "/admin/login" not in browser.current_url
        shot(browser, f"admin-{page}")


CLIPPED_TEXT = """
const out = [];
for (const svg of document.querySelectorAll('#usage svg')) {
  const box = svg.getBoundingClientRect();
  for (const t of svg.querySelectorAll('text')) {
    const r = t.getBoundingClientRect();
    if (r.right > box.right + 1 || r.left < box.left - 1 || r.bottom > box.bottom + 1) {
      out.push(t.textContent);
    }
  }
}
return out;
"""


def test_reports_and_audit_read_in_province_time(site: ThreadedServer, browser: Any) -> None:
    """Issue 16: chart titles of /admin/reports are whole at desktop and phone width,
    charts name agencies, and the dashboard chart and audit log say +07:00."""
    site.call(site.app.store.create_account(OPERATOR, "Vận hành", hash_password(OPERATOR_PASSWORD),
                                            must_change_password=False))
    service = site.call(seed_directory(site.app))
    site.call(service.add_agency("bqlkcn", "Ban Quản lý các Khu công nghiệp tỉnh Đồng Nai", "ubnd",
                                 by=DirBy("test")))
    browser.get(site.url("/admin/login"))
    fill(browser, address=OPERATOR, password=OPERATOR_PASSWORD)
    browser.find_element(By.ID, "login-submit").click()
    dashboard = wait_for(browser, "#dashboard")
    assert dashboard.is_displayed()
    assert "UTC+07:00" in browser.find_element(By.CSS_SELECTOR, "main h2").text
    browser.get(site.url("/admin/reports"))
    usage = wait_for(browser, "#usage svg")
    assert usage.is_displayed()
    svgs = browser.find_elements(By.CSS_SELECTOR, "#usage svg")
    charts = " ".join(e.get_attribute("textContent") for e in svgs)
    assert "Sở Thông tin và Truyền thông" in charts and "Ban Quản lý các Khu công nghiệp" in charts
    assert "Tỷ lệ ngày làm việc hộp thư cơ quan được kiểm tra" in charts
    assert browser.execute_script(CLIPPED_TEXT) == []
    shot(browser, "admin-reports-charts")
    browser.set_window_size(390, 844)  # a phone
    try:
        browser.get(site.url("/admin/reports"))
        wait_for(browser, "#usage svg")
        assert browser.execute_script(CLIPPED_TEXT) == []
        shot(browser, "admin-reports-phone")
    finally:
        browser.set_window_size(1100, 900)
    browser.get(site.url("/admin/audit"))
    table = wait_for(browser, "#audit")
    assert "UTC+07:00" in table.find_element(By.CSS_SELECTOR, "thead").text
    first = table.find_element(By.CSS_SELECTOR, "tbody tr td").text
    assert first.endswith("+07:00"), first
    shot(browser, "admin-audit-province-time")


def test_post_without_csrf_token_refused(site: ThreadedServer, browser: Any) -> None:
    site.call(site.app.store.create_account("annv@dongnai.gov.vn", "Nguyễn Văn An", hash_password(INITIAL),
                                            must_change_password=True))
    browser.get(site.url("/password"))
    # The attacker's form: same fields, no token (the session cookie is there).
    browser.execute_script("document.querySelector('input[name=csrf]').remove()")
    fill(browser, address="annv@dongnai.gov.vn", current=INITIAL, new=NEW, confirm=NEW)
    browser.find_element(By.ID, "pw-submit").click()
    assert "không hợp lệ" in wait_for(browser, "[role=alert]").text
    shot(browser, "csrf-refused")
    account = site.call(site.app.store.get_account("annv@dongnai.gov.vn"))
    assert account is not None and account.must_change_password


def test_setup_page_on_a_phone(site: ThreadedServer, browser: Any) -> None:
    browser.set_window_size(390, 844)  # a phone screen
    try:
        browser.get(site.url("/setup"))
        fill(browser, address="annv@dongnai.gov.vn")
        browser.find_element(By.ID, "address").submit()
        WebDriverWait(browser, 15).until(expected_conditions.url_contains("address="))
        link = wait_for(browser, "#setup-profile")
        profile = "/setup/apple.mobileconfig?emailaddress=annv%40dongnai.gov.vn"
        assert link.get_attribute("href").endswith(profile)
        # The QR codes load under the portal's Content-Security-Policy (img-src 'self').
        images = browser.find_elements(By.CSS_SELECTOR, "#setup-iphone img, #setup-android img")
        assert len(images) == 2
        WebDriverWait(browser, 15).until(
            lambda b: all(b.execute_script("return arguments[0].complete && arguments[0].naturalWidth", i)
                          for i in images)
        )
        assert "Gmail" in browser.find_element(By.ID, "setup-android").text
        shot(browser, "setup-phone")
        assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        browser.execute_script("document.getElementById('setup-iphone').scrollIntoView()")
        shot(browser, "setup-phone-qr")
    finally:
        browser.set_window_size(1100, 900)


def test_screenshots_written() -> None:
    # Runs after the others in this module: every page left its picture.
    if shutil.which("chromium") or os.path.exists(CHROMIUM):
        assert (ARTIFACTS / "password-form.png").stat().st_size > 1000
