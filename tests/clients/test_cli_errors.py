"""Issue 16: CLI errors are Vietnamese first, with English beside it, like the
rest of what operators read; one line, no traceback. Run as the operator does:
``python -m mailserver`` in a subprocess."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailserver.cli.errors import bilingual, describe, is_vietnamese_first
from storage.directory import NoSuchAgency
from tests.clients.test_cli_directory import cli


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    path = tmp_path / "mailserver.toml"
    path.write_text(f'[server]\ndata_dir = "{tmp_path / "data"}"\n', "utf-8")
    return path


def one_line(stderr: str) -> str:
    lines = [x for x in stderr.splitlines() if x.startswith("mailserver")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def vietnamese_first(line: str) -> None:
    text = line.split(": ", 1)[1]
    assert is_vietnamese_first(text), line


def test_operator_mistakes_read_vietnamese_first(conf: Path, tmp_path: Path) -> None:
    cli(conf, "agency", "add", "stttt", "--name", "Sở Thông tin và Truyền thông")
    # An agency that does not exist (the directory's refusal).
    proc = cli(conf, "directory", "add-person", "--name", "Lê Văn Tám", "--agency", "khongco", ok=False)
    line = one_line(proc.stderr)
    vietnamese_first(line)
    assert line.startswith("mailserver: không có cơ quan / ") and "khongco" in line
    # Twice the same agency.
    proc = cli(conf, "agency", "add", "stttt", "--name", "Sở Thông tin và Truyền thông", ok=False)
    line = one_line(proc.stderr)
    vietnamese_first(line)
    assert line.startswith("mailserver: cơ quan đã có / ") and "stttt" in line
    # An account that does not exist (the accounts commands' own message).
    proc = cli(conf, "account", "show", "khongai@dongnai.gov.vn", ok=False)
    line = one_line(proc.stderr)
    assert line == "mailserver: không có tài khoản / no such account: khongai@dongnai.gov.vn"
    # A file the import cannot read, line by line in the file's own errors.
    staff = tmp_path / "staff.csv"
    staff.write_text("ho_ten,ma_co_quan\nLê Văn Tám,khongco\n", encoding="utf-8")
    proc = cli(conf, "directory", "import", str(staff), ok=False)
    assert f"{staff}:2: không có cơ quan / no agency 'khongco'" in proc.stderr
    vietnamese_first(one_line(proc.stderr))
    # The command line itself (argparse), exit status 2 as before.
    proc = cli(conf, "dispatch", ok=False)
    assert proc.returncode == 2
    line = one_line(proc.stderr.replace("usage: mailserver", "usage:"))
    assert line.startswith("mailserver dispatch: lỗi cú pháp lệnh: thiếu tham số bắt buộc / usage error: ")
    # A configuration mistake.
    bad = tmp_path / "bad.toml"
    bad.write_text('[server]\nkhong_co = 1\n', "utf-8")
    proc = cli(bad, "account", "list", ok=False)
    assert proc.returncode == 2
    line = one_line(proc.stderr)
    assert line.startswith("mailserver: lỗi cấu hình / configuration error: ") and "khong_co" in line


@pytest.mark.parametrize(("english", "vietnamese"), [
    ("no queued message 7", "không có thư này trong hàng đợi"),
    ("no such quarantine entry: abc", "không có thư cách ly này"),
    ("password too short: at least 10 characters", "mật khẩu quá ngắn"),
    ("--since: not an ISO date: 'x'", "ngày không hợp lệ (YYYY-MM-DD)"),
    ("[Errno 13] Permission denied: '/var/lib/x'", "không có quyền truy cập"),
    ("something nobody foresaw", "lỗi / error:"),
])
def test_every_message_gets_its_vietnamese(english: str, vietnamese: str) -> None:
    line = bilingual(english)
    assert line.startswith(vietnamese) and line.endswith(english)
    assert bilingual(line) == line  # already bilingual: unchanged
    assert describe(NoSuchAgency("ubnd")) == "không có cơ quan / no such agency: ubnd"
