"""Sieve under ``mailserver serve`` with two SMTP processes on SQLite: the
worker process files copies and remembers vacation replies through the main
process (the one writer), and every message lands where the script says."""

from __future__ import annotations

import email
import email.policy
import imaplib
import re
import smtplib
import subprocess
import sys
from pathlib import Path

from tests.clients.test_cli_serve import cli, free_port
from tests.conftest import end_process

ANNV = "annv@dongnai.gov.vn"
PASSWORD = "Mat-khau-that-dai-2026"
SCRIPT = """require ["fileinto", "imap4flags", "mailbox", "vacation"];
if header :contains "subject" "Báo cáo" { fileinto :create :flags "$BaoCao" "Reports"; }
vacation :days 1 "Vắng mặt / away";
"""
MESSAGES = 12


def test_filing_through_the_main_process(tmp_path: Path) -> None:
    smtp_port, imap_port = free_port(), free_port()
    config = tmp_path / "mailserver.toml"
    config.write_text(
        f"""
[server]
data_dir = "{tmp_path / 'data'}"
log_level = "WARNING"
[smtp]
listen = "127.0.0.1:{smtp_port}"
processes = 2
[submission]
listen = "127.0.0.1:{free_port()}"
tls_listen = "127.0.0.1:{free_port()}"
allow_plaintext_auth = true
[imap]
listen = "127.0.0.1:{imap_port}"
tls_listen = "127.0.0.1:{free_port()}"
[managesieve]
enabled = false
[web]
enabled = false
[dns]
use_servers = false
""",
        encoding="utf-8",
    )
    assert cli(config, "account", "add", ANNV, "--password-stdin", "--no-change-required",
               stdin=PASSWORD + "\n").returncode == 0
    script = tmp_path / "loc.sieve"
    script.write_text(SCRIPT, encoding="utf-8")
    put = cli(config, "sieve", "put", ANNV, str(script), "--activate")
    assert put.returncode == 0, put.stderr
    proc = subprocess.Popen([sys.executable, "-m", "mailserver", "--config", str(config), "serve"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("mailserver ready")
        for i in range(MESSAGES):  # one connection each: the kernel spreads them over both processes
            msg = email.message.EmailMessage(policy=email.policy.SMTP)
            msg["From"], msg["To"], msg["Subject"] = "a@partner.test", ANNV, f"Báo cáo số {i}"
            msg.set_content("Nội dung")
            with smtplib.SMTP("127.0.0.1", smtp_port, local_hostname="mail.partner.test", timeout=30) as smtp:
                assert smtp.sendmail("a@partner.test", [ANNV], msg.as_bytes()) == {}
        with imaplib.IMAP4("127.0.0.1", imap_port) as imap:
            imap.login(ANNV, PASSWORD)
            assert imap.select("Reports", readonly=True)[0] == "OK"
            typ, data = imap.fetch("1:*", "(FLAGS)")
            flags = [d for d in data if isinstance(d, bytes)]
            assert len(flags) == MESSAGES and all(b"$BaoCao" in f for f in flags), flags
            assert imap.select("INBOX", readonly=True)[1] == [b"0"]
    finally:
        _, err = end_process(proc, 60, terminate=True)
    assert "Traceback" not in err, err
    assert not re.search(r"sieve request for an smtp worker failed|database is locked", err), err
