"""``mailserver sieve check FILE``: exit status, OK line, FILE:line:column errors, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailserver.cli import main


@pytest.mark.parametrize(
    ("text", "status", "expected"),
    [
        ('require "fileinto";\nif header :contains "subject" "Báo cáo" { fileinto "Báo cáo"; }\n', 0, "OK"),
        (
            'require "fileinto";\nif true {\n  fileinto "a"\n}\n',
            1,
            ":4:1: expected ';' or '{' after fileinto",
        ),
        ('fileinto "x";\n', 1, ':1:1: missing require "fileinto"'),
        ('require "vacation";\nvacation :days "7" "x";\n', 1, ":2:16: :days needs a number"),
    ],
)
def test_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, status: int, expected: str
) -> None:
    config = tmp_path / "mailserver.toml"
    config.write_text(f'[server]\ndata_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    script = tmp_path / "loc.sieve"
    script.write_text(text, encoding="utf-8")
    assert main(["--config", str(config), "sieve", "check", str(script)]) == status
    out, err = capsys.readouterr()
    assert expected in (out if status == 0 else err)
    assert "Traceback" not in err
    if status:
        assert f"{script}:" in err


def test_check_unreadable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "mailserver.toml"
    config.write_text(f'[server]\ndata_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    assert main(["--config", str(config), "sieve", "check", str(tmp_path / "none.sieve")]) == 1
    bad = tmp_path / "latin1.sieve"
    bad.write_bytes(b"keep; # \xe9\n")
    assert main(["--config", str(config), "sieve", "check", str(bad)]) == 1
    assert "UTF-8" in capsys.readouterr().err
