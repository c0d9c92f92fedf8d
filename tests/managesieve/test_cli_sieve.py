"""``mailserver sieve put|list|get|activate|delete`` end to end on a real SQLite
file: exit codes, output, one-line bilingual errors, no tracebacks."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mailserver.cli import main
from mailserver.config import load
from storage import open_store

ADDRESS = "annv@dongnai.gov.vn"
SCRIPT = 'require "fileinto";\nif header :contains "subject" "Báo cáo" { fileinto "Báo cáo"; }\n'


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "mailserver.toml"
    path.write_text(f'[server]\ndata_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    asyncio.run(_add_account(path))
    return path


async def _add_account(path: Path) -> None:
    config = load(path)
    config.data_dir.mkdir(parents=True)
    store = open_store(config.storage_url, config.maildir)
    await store.start()
    await store.create_account(ADDRESS, "Nguyễn Văn An", "$argon2id$fake")
    await store.close()


def run(config: Path, *args: str) -> int:
    return main(["--config", str(config), *args])


def test_sieve_commands(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "lọc.sieve"
    script.write_text(SCRIPT, encoding="utf-8")
    capsys.readouterr()

    assert run(config, "sieve", "put", ADDRESS, str(script), "--activate") == 0
    assert "lọc" in capsys.readouterr().out
    assert run(config, "sieve", "put", ADDRESS, str(script), "--name", "khác") == 0
    capsys.readouterr()
    assert run(config, "sieve", "list", ADDRESS.upper()) == 0
    assert capsys.readouterr().out.splitlines() == ["khác", "lọc\tACTIVE"]
    assert run(config, "sieve", "get", ADDRESS, "lọc") == 0
    assert capsys.readouterr().out == SCRIPT

    # The active script cannot be deleted; another is activated first.
    assert run(config, "sieve", "delete", ADDRESS, "lọc") == 1
    err = capsys.readouterr().err
    assert "đang dùng" in err and "active" in err and "Traceback" not in err
    assert run(config, "sieve", "activate", ADDRESS, "khác") == 0
    assert run(config, "sieve", "delete", ADDRESS, "lọc") == 0
    capsys.readouterr()
    assert run(config, "sieve", "list", ADDRESS) == 0
    assert capsys.readouterr().out.splitlines() == ["khác\tACTIVE"]
    assert run(config, "sieve", "activate", ADDRESS, "") == 0
    capsys.readouterr()
    assert run(config, "sieve", "list", ADDRESS) == 0
    assert capsys.readouterr().out.splitlines() == ["khác"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("sieve", "get", ADDRESS, "missing"), "no such script"),
        (("sieve", "activate", ADDRESS, "missing"), "no such script"),
        (("sieve", "delete", ADDRESS, "missing"), "no such script"),
        (("sieve", "list", "nobody@dongnai.gov.vn"), "no such mailbox"),
        (("sieve", "put", ADDRESS, "/nonexistent/file.sieve"), "cannot read"),
    ],
)
def test_sieve_errors(
    config: Path, args: tuple[str, ...], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert run(config, *args) == 1
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_sieve_put_refuses_bad_input(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    latin1 = tmp_path / "latin1.sieve"
    latin1.write_bytes("# caf\xe9\nkeep;\n".encode("latin-1"))
    capsys.readouterr()
    assert run(config, "sieve", "put", ADDRESS, str(latin1)) == 1
    assert "not UTF-8" in capsys.readouterr().err
    big = tmp_path / "big.sieve"
    big.write_text("#" * 70000 + "\nkeep;\n", encoding="utf-8")
    assert run(config, "sieve", "put", ADDRESS, str(big)) == 1
    assert "exceeds the limit" in capsys.readouterr().err
    ok = tmp_path / "ok.sieve"
    ok.write_text("keep;\n", encoding="utf-8")
    assert run(config, "sieve", "put", ADDRESS, str(ok), "--name", "bad\x01name") == 1
    assert "control character" in capsys.readouterr().err


def test_sieve_put_refuses_invalid_sieve(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.sieve"
    broken.write_text('require "fileinto";\nif header :contains "subject" "x" {\n', encoding="utf-8")
    capsys.readouterr()
    assert run(config, "sieve", "put", ADDRESS, str(broken), "--activate") == 1
    err = capsys.readouterr().err
    assert "not valid Sieve" in err and "3:1" in err and "Traceback" not in err
    assert run(config, "sieve", "list", ADDRESS) == 0
    assert capsys.readouterr().out == ""  # nothing stored
