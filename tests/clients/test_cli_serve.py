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
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

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
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)  # reaps it and closes its pipes


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


def test_sigkill_loses_no_acknowledged_message(config_file: Path, serve: list[subprocess.Popen[str]]) -> None:
    """Nothing lost: eight clients deliver as fast as they can while the server is
    killed (SIGKILL, no shutdown of any kind). After a restart every message
    that was answered 250 is in the INBOX, byte for byte; a message the kill
    interrupted may or may not be there, never half of one."""
    added = cli(config_file, "account", "add", ADDRESS, "--password-stdin", "--no-change-required",
                stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    proc = start(config_file, serve)
    port = port_of(config_file, "smtp")
    acknowledged: dict[str, bytes] = {}
    lock = threading.Lock()
    killed = threading.Event()

    def client(n: int) -> None:
        for i in range(10_000):
            text = f"Client {n}, message {i}.\r\n" * (1 + i % 50)
            msgid = f"<crash-{n}-{i}@example.org>"
            body = (f"From: sender@example.org\r\nDate: Mon, 6 May 2024 08:30:00 +0000\r\n"
                    f"Message-ID: {msgid}\r\nSubject: crash {n} {i}\r\n\r\n{text}").encode()
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
                    if smtp.sendmail("sender@example.org", [ADDRESS], body) == {}:
                        with lock:
                            acknowledged[msgid] = text.encode()
            except (OSError, smtplib.SMTPException):
                if killed.is_set():
                    return
                raise

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 150 and time.monotonic() < deadline:
        time.sleep(0.01)
    killed.set()
    proc.kill()
    proc.wait(10)
    for thread in threads:
        thread.join(30)
    assert len(acknowledged) >= 150

    start(config_file, serve)
    with imaplib.IMAP4("127.0.0.1", port_of(config_file, "imap")) as imap:
        imap.login(ADDRESS, PASSWORD)
        typ, data = imap.select("INBOX", readonly=True)
        assert typ == "OK"
        typ, fetched = imap.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)] BODY.PEEK[TEXT])")
        assert typ == "OK"
    stored: dict[str, bytes] = {}
    parts = [item for item in fetched if isinstance(item, tuple)]
    for header, text in zip(parts[0::2], parts[1::2], strict=True):
        msgid = header[1].decode().split(":", 1)[1].strip()
        stored[msgid] = text[1]
    missing = set(acknowledged) - set(stored)
    assert not missing, f"{len(missing)} acknowledged messages lost"
    for msgid, text in stored.items():
        assert text == acknowledged.get(msgid, text)
        assert text.endswith(b".\r\n")  # whole, even if not acknowledged
