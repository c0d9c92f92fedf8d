"""Administrative documents as agencies write them in Word (python-docx), and a
province to send them in: agencies created in the directory, a config file the
CLI reads."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mailserver.auth import hash_password
from mailserver.directory.service import DirectoryService
from storage import open_store
from storage.directory import By, open_directory
from tests.conftest import make_config

PASSWORD = "Mat-khau-co-quan-2026"
AGENCIES = (
    ("ubndtinh", "Ủy ban nhân dân tỉnh Đồng Nai"),
    ("vpubnd", "Văn phòng Ủy ban nhân dân tỉnh"),
    ("stttt", "Sở Thông tin và Truyền thông"),
    ("skhdt", "Sở Kế hoạch và Đầu tư"),
    ("stc", "Sở Tài chính"),
    ("ubndnhontrach", "Ủy ban nhân dân huyện Nhơn Trạch"),
    ("ubndlongthanh", "Ủy ban nhân dân huyện Long Thành"),
    ("ubndbienhoa", "Ủy ban nhân dân thành phố Biên Hòa"),
)


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "mailserver.toml"
    path.write_text(
        f'[server]\ndata_dir = "{tmp_path / "data"}"\ndomains = ["dongnai.gov.vn"]\n'
        '[policy]\nworkers = 0\nchecks = ["classified"]\n',
        "utf-8",
    )
    return path


def seed_province(tmp_path: Path) -> Path:
    """The agencies, each mailbox with a known password (as after its head changed it)."""
    config = make_config(tmp_path / "data")
    config.data_dir.mkdir(parents=True, exist_ok=True)

    async def run() -> None:
        store = open_store(config.storage_url, config.maildir)
        await store.start()
        try:
            service = DirectoryService(store, open_directory(store), config)
            for code, name in AGENCIES:
                issued = await service.add_agency(code, name, None, by=By("test"))
                account = await store.get_account(issued.address)
                assert account is not None
                await store.set_password(account.id, hash_password(PASSWORD), must_change_password=False)
        finally:
            await store.close()

    asyncio.run(run())
    return write_config(tmp_path)


def run_cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m mailserver`` as the operator types it (schema upgrades, if any,
    in their child process as in production, not inline as the test suite sets)."""
    env = {k: v for k, v in os.environ.items() if k != "MAILSERVER_MIGRATE_INLINE"}
    return subprocess.run(
        [sys.executable, "-m", "mailserver", "--config", str(config), *args],
        capture_output=True, text=True, timeout=300, check=False, env=env,
    )


def _list_paragraph(container: Any, text: str, *, numbered: bool, direct: bool) -> None:
    """A Word list entry: by style ("List Bullet"/"List Number") or, as Word's
    toolbar button does, by numbering properties on a Normal paragraph."""
    if not direct:
        container.add_paragraph(text, style="List Number" if numbered else "List Bullet")
        return
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    paragraph = container.add_paragraph(text)
    ppr = paragraph._p.get_or_add_pPr()
    num = OxmlElement("w:numPr")
    level = OxmlElement("w:ilvl")
    level.set(qn("w:val"), "0")
    num_id = OxmlElement("w:numId")
    num_id.set(qn("w:val"), "5" if numbered else "1")
    num.append(level)
    num.append(num_id)
    ppr.append(num)


def make_document(
    path: Path,
    *,
    recipients: Sequence[str],
    number: str = "Số: 1234/UBND-KGVX",
    summary: Sequence[str] = ("V/v triển khai sử dụng hệ thống thư điện tử",
                              "công vụ trong các cơ quan nhà nước"),
    title: Sequence[str] = (),
    addressees: Sequence[str] = (),
    articles: Sequence[str] = (),
    numbered: bool = False,
    direct: bool = False,
    typed: bool = False,
    extra: str = "",
) -> Path:
    """A công văn (``summary`` under the number) or, with ``title``, a quyết định
    (type and title centred under the header), ending with the signature table
    whose left cell holds "Nơi nhận:" and the recipients as a Word list (or
    typed with "-" when ``typed``)."""
    import docx

    document = docx.Document()
    header = document.add_table(rows=1, cols=2)
    left = header.cell(0, 0)
    left.paragraphs[0].text = "ỦY BAN NHÂN DÂN\nTỈNH ĐỒNG NAI"
    left.add_paragraph(number)
    if not title:
        for line in summary:
            left.add_paragraph(line)
    header.cell(0, 1).paragraphs[0].text = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM\nĐộc lập - Tự do - Hạnh phúc"
    header.cell(0, 1).add_paragraph("Đồng Nai, ngày 05 tháng 12 năm 2026")
    if extra:
        document.add_paragraph(extra)
    for line in title:
        document.add_paragraph(line)
    if addressees:
        document.add_paragraph("Kính gửi:")
        for name in addressees:
            _list_paragraph(document, name, numbered=False, direct=direct)
    document.add_paragraph("Căn cứ Quyết định số 70/2009/QĐ-UBND ngày 29/9/2009 của UBND tỉnh;")
    for article in articles:
        document.add_paragraph(article)
    signature = document.add_table(rows=1, cols=2)
    cell = signature.cell(0, 0)
    cell.paragraphs[0].text = "Nơi nhận:"
    for line in recipients:
        if typed:
            cell.add_paragraph(f"- {line}")
        else:
            _list_paragraph(cell, line, numbered=numbered, direct=direct)
    signature.cell(0, 1).paragraphs[0].text = "TM. ỦY BAN NHÂN DÂN\nKT. CHỦ TỊCH\nPHÓ CHỦ TỊCH"
    document.save(str(path))
    return path
