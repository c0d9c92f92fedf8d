"""The operator's path end to end: `mailserver account add`, `mailserver serve`,
a real SMTP delivery, SIGTERM, restart, and the mail still there over IMAP."""

from __future__ import annotations

import imaplib
import json
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import end_all

ADDRESS = "annv@dongnai.gov.vn"
PASSWORD = "Mot-mat-khau-rat-dai-2026"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "mailserver.toml"
    path.write_text(
        f"""
[server]
data_dir = "{tmp_path / 'data'}"
[smtp]
listen = "127.0.0.1:{free_port()}"
[submission]
listen = "127.0.0.1:{free_port()}"
tls_listen = "127.0.0.1:{free_port()}"
[imap]
listen = "127.0.0.1:{free_port()}"
tls_listen = "127.0.0.1:{free_port()}"
[managesieve]
listen = "127.0.0.1:{free_port()}"
[web]
listen = "127.0.0.1:{free_port()}"
""",
        encoding="utf-8",
    )
    return path


def cli(config: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailserver", "--config", str(config), *args],
        input=stdin, capture_output=True, text=True, timeout=60, check=False,
    )


def port_of(config: Path, section: str) -> int:
    import tomllib

    return int(tomllib.loads(config.read_text())[section]["listen"].rsplit(":", 1)[1])


@pytest.fixture
def serve(config_file: Path) -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    end_all(procs)


def start(config: Path, procs: list[subprocess.Popen[str]]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailserver", "--config", str(config), "serve"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    procs.append(proc)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("mailserver ready"), (line, proc.stderr.read() if proc.poll() is not None else "")
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0


def test_account_commands(config_file: Path) -> None:
    added = cli(config_file, "account", "add", ADDRESS, "--name", "Nguyễn Văn An")
    assert added.returncode == 0, added.stderr
    assert f"created {ADDRESS}" in added.stdout
    initial = [ln for ln in added.stdout.splitlines() if ln.startswith("initial password: ")]
    assert len(initial) == 1 and len(initial[0].split(": ", 1)[1]) >= 16

    again = cli(config_file, "account", "add", ADDRESS.upper())
    assert again.returncode == 1 and "account exists" in again.stderr

    foreign = cli(config_file, "account", "add", "someone@gmail.com")
    assert foreign.returncode == 1 and "not a local domain" in foreign.stderr
    bad = cli(config_file, "account", "add", "../../etc@dongnai.gov.vn")
    assert bad.returncode == 1 and "not a valid address" in bad.stderr

    listed = json.loads(cli(config_file, "account", "list", "--json").stdout)
    assert [a["address"] for a in listed] == [ADDRESS]
    assert listed[0]["name"] == "Nguyễn Văn An" and listed[0]["must_change_password"] is True

    shown = json.loads(cli(config_file, "account", "show", ADDRESS, "--json").stdout)
    assert shown["messages"] == 0

    short = cli(config_file, "account", "add", "b@dongnai.gov.vn", "--password-stdin", stdin="short\n")
    assert short.returncode == 1 and "too short" in short.stderr

    assert cli(config_file, "account", "delete", ADDRESS).returncode == 0
    gone = cli(config_file, "account", "show", ADDRESS)
    assert gone.returncode == 1 and "no such account" in gone.stderr
    assert cli(config_file, "db", "upgrade").returncode == 0


def test_console_script_is_installed() -> None:
    exe = shutil.which("mailserver")
    assert exe is not None, "pip install -e . provides the `mailserver` console script"
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=30, check=True)
    assert "account" in out.stdout and "serve" in out.stdout


def test_serve_accepts_mail_and_it_survives_a_restart(
    config_file: Path, serve: list[subprocess.Popen[str]]
) -> None:
    added = cli(config_file, "account", "add", ADDRESS, "--password-stdin", "--no-change-required",
                stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    assert "initial password" not in added.stdout

    proc = start(config_file, serve)
    # From, Date and Message-ID present: without them the spam check files it in Junk.
    body = ("From: sender@example.org\r\nDate: Mon, 6 May 2024 08:30:00 +0000\r\n"
            "Message-ID: <serve-1@example.org>\r\nSubject: =?UTF-8?B?VGjGsCBt4budaQ==?=\r\n\r\n"
            "Xin chào, đây là thư thử.\r\n").encode()
    with smtplib.SMTP("127.0.0.1", port_of(config_file, "smtp"), timeout=30) as smtp:
        refused = smtp.sendmail("sender@example.org", [ADDRESS], body)
    assert refused == {}
    stop(proc)

    start(config_file, serve)
    with imaplib.IMAP4("127.0.0.1", port_of(config_file, "imap")) as imap:
        imap.login(ADDRESS, PASSWORD)
        typ, data = imap.select("INBOX")
        assert typ == "OK" and data[0] == b"1"
        typ, fetched = imap.fetch("1", "(BODY.PEEK[TEXT])")
        assert typ == "OK"
        assert fetched[0][1] == "Xin chào, đây là thư thử.\r\n".encode()

