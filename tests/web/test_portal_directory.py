"""Issue 16, the public directory (Decision 70/2009 Điều 5 khoản 5: agencies
publish their addresses and those of their competent officials): heads and
deputies listed with their agency (``web.publish_heads``), the search that
understands "Sở TT&TT" as dispatch does, over HTTP (aiohttp's client) and in
headless Chromium at a phone's width."""

from __future__ import annotations

import html as htmllib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailserver.app import App
from mailserver.directory import aliases
from mailserver.directory.service import DirectoryService
from storage.directory import By
from tests.web.helpers import seed_directory
from tests.web.test_portal_http import _portal


async def seed_leaders(app: App) -> DirectoryService:
    """seed_directory's agencies and Nguyễn Văn An (Chuyên viên), plus the head
    of the Sở, a deputy, a city ("UBND tp. Biên Hòa" in documents) and an alias."""
    service = await seed_directory(app)
    by = By("test")
    head = await service.add_person("Trần Thị Bích Ngọc", "stttt", by=by, position="Giám đốc")
    await service.set_head("stttt", head.address, by=by)
    await service.add_person("Lê Văn Tám", "stttt", by=by, position="Phó Giám đốc")
    await service.add_agency("ubndbienhoa", "Ủy ban nhân dân thành phố Biên Hòa", "ubnd", by=by)
    await aliases.add_alias(service.directory, "stttt", "Sở Thông tin - Truyền thông Đồng Nai", by=by)
    return service


def rows(page: str) -> list[list[str]]:
    """The directory table's rows as lists of cell texts."""
    body = page.split('id="directory"', 1)[1].split("</table>", 1)[0]
    out = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.DOTALL)[1:]:
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)
        out.append([htmllib.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells])
    return out


async def test_heads_and_deputies_listed_with_their_agency(tmp_path: Path) -> None:
    async for p in _portal(tmp_path / "data"):
        await seed_leaders(p.app)
        table = rows(await (await p.client.get("/directory")).text())
        names = [r[0] for r in table]
        at = names.index("Sở Thông tin và Truyền thông")
        assert names[at + 1 : at + 3] == ["Trần Thị Bích Ngọc (Giám đốc)", "Lê Văn Tám (Phó Giám đốc)"]
        assert table[at + 1][1:] == ["ngocttb@dongnai.gov.vn", "Sở Thông tin và Truyền thông"]
        assert not any("Nguyễn Văn An" in n for n in names)  # a Chuyên viên: not an official
        published = await (await p.client.get("/directory.json")).json()
        assert {e["address"] for e in published if e["kind"] == "person"} == {
            "ngocttb@dongnai.gov.vn", "tamlv@dongnai.gov.vn"}
    async for p in _portal(tmp_path / "data2", publish_heads=False):
        await seed_leaders(p.app)
        page = await (await p.client.get("/directory")).text()
        assert "ngocttb@" not in page and "tamlv@" not in page


@pytest.mark.parametrize(("query", "first"), [
    ("Sở TT&TT", "stttt@dongnai.gov.vn"),
    ("so tttt", "stttt@dongnai.gov.vn"),
    ("Sở GD&ĐT", "sgddt@dongnai.gov.vn"),
    ("UBND tp. Biên Hòa", "ubndbienhoa@dongnai.gov.vn"),
    ("UBND tỉnh Đồng Nai", "ubnd@dongnai.gov.vn"),
    ("le van tam", "tamlv@dongnai.gov.vn"),
    ("Sở Thông tin - Truyền thông Đồng Nai", "stttt@dongnai.gov.vn"),  # an alias
])
async def test_search_understands_the_short_forms_of_dispatch(tmp_path: Path, query: str, first: str) -> None:
    async for p in _portal(tmp_path / "data"):
        await seed_leaders(p.app)
        table = rows(await (await p.client.get("/directory", params={"q": query})).text())
        assert table and table[0][1] == first, table
        if query == "Sở TT&TT":
            # The Sở first, then its officials; no other agency.
            assert [r[1] for r in table] == ["stttt@dongnai.gov.vn", "ngocttb@dongnai.gov.vn",
                                             "tamlv@dongnai.gov.vn"]


# -- Chromium, phone width --------------------------------------------------------------
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
pytestmark_browser = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="needs Debian chromium and chromium-driver (installed by .ci/run)",
)


@pytest.fixture
def phone_site(tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    pytest.importorskip("selenium.webdriver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from tests.web.helpers import portal_config
    from tests.web.test_portal_browser import ThreadedServer

    server = ThreadedServer(App(portal_config(tmp_path / "data")))
    server.start()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=390,844", "--lang=vi"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield server, driver
    finally:
        driver.quit()
        server.stop()


@pytestmark_browser
def test_phone_labels_a_persons_own_agency(phone_site: tuple[Any, Any]) -> None:
    from selenium.webdriver.common.by import By as Css
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.web.test_portal_browser import shot

    server, browser = phone_site
    server.call(seed_leaders(server.app))
    browser.get(server.url("/directory?q=" + "Sở TT&TT".replace("&", "%26")))
    WebDriverWait(browser, 15).until(
        expected_conditions.presence_of_element_located((Css.CSS_SELECTOR, "#directory tbody tr")))
    assert browser.execute_script("return window.innerWidth") <= 640  # the phone layout (40rem)

    def label(cell: Any) -> str:
        text = browser.execute_script(
            "return getComputedStyle(arguments[0], '::before').getPropertyValue('content')", cell)
        return str(text).strip('"')

    agency_row, head_row, _ = browser.find_elements(Css.CSS_SELECTOR, "#directory tbody tr")
    head_cells = head_row.find_elements(Css.TAG_NAME, "td")
    # The person's third cell is their own agency, and is labelled so on a phone.
    assert head_cells[2].text == "Sở Thông tin và Truyền thông"
    assert label(head_cells[2]) == "Cơ quan"
    agency_cells = agency_row.find_elements(Css.TAG_NAME, "td")
    assert agency_cells[2].text == "Ủy ban nhân dân tỉnh Đồng Nai"
    assert label(agency_cells[2]) == "Cơ quan cấp trên"
    # Stacked cards: the label sits above the value, inside the phone's width.
    width = browser.execute_script("return document.documentElement.clientWidth")
    assert head_cells[2].rect["x"] + head_cells[2].rect["width"] <= width, width
    shot(browser, "directory-phone-officials")
