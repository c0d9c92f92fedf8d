"""Issue 16, directory: the staff list as agencies send it (a CSV saved by Excel
under Vietnamese regional settings, separated by ";", or the .xlsx itself), and
a search that puts the person asked for first. Driven as the operator does:
``python -m mailserver directory import|search`` in a subprocess."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from mailserver.directory.service import DirectoryService
from storage import open_store
from storage.directory import By, open_directory
from tests.clients.test_cli_directory import cli, cli_json
from tests.conftest import make_config


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    """Two agencies; the config file the CLI reads."""
    config = make_config(tmp_path / "data")
    config.data_dir.mkdir(parents=True)

    async def seed() -> None:
        store = open_store(config.storage_url, config.maildir)
        await store.start()
        try:
            service = DirectoryService(store, open_directory(store), config)
            await service.add_agency("stttt", "Sở Thông tin và Truyền thông", None, by=By("test"))
            await service.add_agency("ubndbienhoa", "Ủy ban nhân dân thành phố Biên Hòa", None, by=By("test"))
        finally:
            await store.close()

    asyncio.run(seed())
    path = tmp_path / "mailserver.toml"
    path.write_text(f'[server]\ndata_dir = "{tmp_path / "data"}"\n', "utf-8")
    return path


def test_excel_csv_with_semicolons_and_xlsx(conf: Path, tmp_path: Path) -> None:
    # "CSV UTF-8" from Excel with Vietnamese regional settings: BOM, CRLF, ";"
    # (the comma is the decimal separator there), commas inside values unquoted.
    excel_csv = tmp_path / "nhan-su.csv"
    excel_csv.write_bytes(
        "\ufeffho_ten;ma_co_quan;chuc_vu;dien_thoai\r\n"
        "Nguyễn Thị Ơn;stttt;Chuyên viên Văn phòng, phụ trách văn thư;0251 3822 123\r\n"
        "Nguyễn Văn An;stttt;Phó Giám đốc;0909 123 456\r\n"
        ";;;\r\n"
        "Trần Văn Toàn;ubndbienhoa;Chuyên viên;\r\n".encode()
    )
    dry = cli_json(conf, "directory", "import", str(excel_csv), "--dry-run")
    assert [(r["line"], r["address"], r["agency"]) for r in dry["rows"]] == [
        (2, "onnt@dongnai.gov.vn", "stttt"), (3, "annv@dongnai.gov.vn", "stttt"),
        (5, "toantv@dongnai.gov.vn", "ubndbienhoa"),
    ]
    done = cli_json(conf, "directory", "import", str(excel_csv))
    assert len(done["rows"]) == 3
    shown = cli_json(conf, "directory", "search", "on nguyen thi")
    assert shown["persons"][0]["position"] == "Chuyên viên Văn phòng, phụ trách văn thư"

    # The workbook itself, as the agency sent it: header in row 1, an empty row,
    # a phone typed as a number, empty columns to the right.
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Danh sách"
    sheet.append(["ho", "ten_dem", "ten", "ma_co_quan", "chuc_vu", "dien_thoai", None])
    sheet.append(["Nguyễn", "Văn", "Anh", "stttt", "Chuyên viên", 909123456, None])
    sheet.append([None, None, None, None, None, None, None])
    sheet.append(["Lê", "Thị", "Lan", "ubndbienhoa", "Văn thư", "0251 3 456 789", None])
    workbook = tmp_path / "nhan-su.xlsx"
    book.save(workbook)
    done = cli_json(conf, "directory", "import", str(workbook))
    assert [(r["line"], r["address"]) for r in done["rows"]] == [
        (2, "anhnv@dongnai.gov.vn"), (4, "lanlt@dongnai.gov.vn"),
    ]
    assert done["rows"][0]["person"]["phone"] == "909123456"
    # A broken row in a workbook: the row number, nothing imported.
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["ho_ten", "ma_co_quan"])
    sheet.append(["Phạm Văn Bình", "khongco"])
    bad = tmp_path / "sai.xlsx"
    book.save(bad)
    proc = cli(conf, "directory", "import", str(bad), ok=False)
    assert proc.returncode == 1 and f"{bad}:2:" in proc.stderr and "khongco" in proc.stderr
    garbage = tmp_path / "hong.xlsx"
    garbage.write_bytes(b"PK\x03\x04 not really a workbook")
    proc = cli(conf, "directory", "import", str(garbage), ok=False)
    assert proc.returncode == 1 and "xlsx" in proc.stderr and "Traceback" not in proc.stderr


def test_search_ranks_whole_names_and_words_first(conf: Path, tmp_path: Path) -> None:
    staff = tmp_path / "staff.csv"
    staff.write_text(
        "ho_ten,ma_co_quan,chuc_vu\n"
        "Nguyễn Thị Ơn,stttt,Chuyên viên Văn phòng\n"
        "Nguyễn Văn Anh,stttt,Chuyên viên\n"
        "Nguyễn Văn An,ubndbienhoa,Chuyên viên\n"
        "Trần Văn Toàn,stttt,Văn thư\n"
        "Hoàng Thị Lan,stttt,Kế toán\n"
        "Phạm Văn Bình,stttt,Phó Giám đốc\n",
        encoding="utf-8",
    )
    cli(conf, "directory", "import", str(staff))
    found = cli_json(conf, "directory", "search", "nguyen van an")
    assert [p["full_name"] for p in found["persons"]] == ["Nguyễn Văn An", "Nguyễn Văn Anh"]
    # A lone "an" is a whole word of one name only, not a piece of everyone's.
    found = cli_json(conf, "directory", "search", "an")
    assert [p["full_name"] for p in found["persons"]] == ["Nguyễn Văn An", "Nguyễn Văn Anh"]
    # No word starts with "oan": then substrings are better than nothing.
    found = cli_json(conf, "directory", "search", "oan")
    assert [p["full_name"] for p in found["persons"]] == ["Hoàng Thị Lan", "Trần Văn Toàn"]
    # Agencies by their usual short forms.
    text = cli(conf, "directory", "search", "Sở", "TT&TT").stdout
    assert text.splitlines()[0].startswith("stttt@dongnai.gov.vn\tSở Thông tin và Truyền thông")
    found = cli_json(conf, "directory", "search", "UBND tp. Biên Hòa")
    assert [a["code"] for a in found["agencies"]] == ["ubndbienhoa"]
    assert json.dumps(found, ensure_ascii=False).count("Hoàng Thị Lan") == 0
    # The competent officials published with their agency (Điều 5 khoản 5).
    cli(conf, "agency", "set-head", "ubndbienhoa", "annv@dongnai.gov.vn")
    lines = cli(conf, "directory", "export", "--format", "csv", "--include-heads").stdout.splitlines()
    addresses = [line.split(",")[1] for line in lines[1:]]
    assert addresses == ["stttt@dongnai.gov.vn", "binhpv@dongnai.gov.vn", "ubndbienhoa@dongnai.gov.vn",
                         "annv@dongnai.gov.vn"]
