"""Configuration loading: defaults, derived paths, and operator-readable errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailserver import config as cfg
from mailserver.cli import main

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mailserver.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_builtin_defaults_serve_a_newcomer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cfg.ENV_CONFIG, raising=False)
    config = cfg.load(None)
    assert config.server.domains == ["dongnai.gov.vn"]
    assert config.smtp.listen == "127.0.0.1:2525"
    assert config.submission.listen == "127.0.0.1:2587"
    assert config.submission.tls_listen == "127.0.0.1:2465"
    assert config.imap.listen == "127.0.0.1:2143"
    assert config.imap.tls_listen == "127.0.0.1:2993"
    assert config.smtp.relay_networks == []
    assert config.storage_url.startswith("sqlite+aiosqlite:///")


def test_data_dir_alone_places_everything_under_it(tmp_path: Path) -> None:
    config = cfg.load(write(tmp_path, f'[server]\ndata_dir = "{tmp_path / "d"}"\n'))
    assert config.storage_url == f"sqlite+aiosqlite:///{tmp_path / 'd' / 'mailserver.db'}"
    assert config.maildir == tmp_path / "d" / "maildir"
    assert config.tls_cert == tmp_path / "d" / "tls" / "cert.pem"
    assert config.tls_key == tmp_path / "d" / "tls" / "key.pem"


def test_env_variable_selects_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, '[server]\nhostname = "mx.example.vn"\n')
    monkeypatch.setenv(cfg.ENV_CONFIG, str(path))
    assert cfg.load().server.hostname == "mx.example.vn"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server]\nhostnme = 'x'\n", "unknown key server.hostnme"),
        ("[smpt]\nlisten = '1:2'\n", "unknown section [smpt]"),
        ("[smtp]\nmax_message_size = 'big'\n", "smtp.max_message_size must be int, got str"),
        ("[smtp]\nmax_message_size = true\n", "smtp.max_message_size must be int, got bool"),
        ("[server]\ndomains = 'dongnai.gov.vn'\n", "server.domains must be list[str]"),
        ("[server]\ndomains = [1]\n", "server.domains must be list[str]"),
        ("[imap]\nlisten = '127.0.0.1'\n", "imap.listen: expected host:port"),
        ("[imap]\nlisten = '127.0.0.1:99999'\n", "imap.listen: expected host:port"),
        ("[server]\ndomains = []\n", "server.domains must name at least one domain"),
        ("[server\n", "not valid TOML"),
        ("server = 3\n", "[server] must be a table"),
    ],
)
def test_bad_config_names_key_and_file(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(cfg.ConfigError) as info:
        cfg.load(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(cfg.ConfigError, match="no such configuration file"):
        cfg.load(tmp_path / "absent.toml")


def test_cli_reports_config_error_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "[smtp]\nport = 25\n")
    assert main(["--config", str(path), "account", "list"]) == 2
    err = capsys.readouterr().err
    assert "unknown key smtp.port" in err and str(path) in err
    assert "Traceback" not in err


def test_committed_example_matches_the_dataclasses() -> None:
    committed = (ROOT / "conf" / "mailserver.toml").read_text(encoding="utf-8")
    assert committed == cfg.render_example(), "regenerate: python -m mailserver.config > conf/mailserver.toml"


def test_example_file_loads_and_equals_defaults() -> None:
    loaded = cfg.load(ROOT / "conf" / "mailserver.toml")
    defaults = cfg.Config()
    for section in cfg.SECTIONS:
        assert getattr(loaded, section) == getattr(defaults, section)
