"""Process life of ``mailserver serve`` (a real subprocess): SIGTERM while DATA
transfers run loses no acknowledged message; health; SIGHUP reloads the TLS
certificate without dropping connections; metrics; JSON logs without secrets."""

from __future__ import annotations

import base64
import imaplib
import io
import json
import re
import signal
import smtplib
import ssl
import threading
import time
import urllib.request
import zipfile
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

from imapclient import IMAPClient

from pki.tls import ensure_certificate
from tests.conftest import wait_until
from tests.ops.conftest import Servers, cli, free_port, port_of, server_config

ADDRESS = "annv@dongnai.gov.vn"
PASSWORD = "Mot-mat-khau-rat-dai-2026"


def add_account(config: Path) -> None:
    added = cli(config, "account", "add", ADDRESS, "--password-stdin", "--no-change-required",
                stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr


class Flood:
    """Clients delivering unique messages over SMTP, one connection each, as fast
    as they can until the server goes away; remembers what was answered 250."""

    def __init__(self, port: int, workers: int, text: Callable[[int, int], str]) -> None:
        self.acked: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._client, args=(port, w, text)) for w in range(workers)]
        for thread in self._threads:
            thread.start()

    def _client(self, port: int, worker: int, text: Callable[[int, int], str]) -> None:
        for n in range(100_000):
            mid = f"{worker}.{n}@example.org"
            body = text(worker, n)
            data = (f"From: x@example.org\r\nTo: {ADDRESS}\r\nDate: Mon, 6 May 2024 08:30:00 +0000\r\n"
                    f"Message-ID: <{mid}>\r\nSubject: {mid}\r\n\r\n{body}").encode()
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
                    smtp.sendmail("x@example.org", [ADDRESS], data)
            except (OSError, smtplib.SMTPException):
                return  # refused or cut by the signal: not acknowledged, no promise
            with self._lock:
                self.acked[mid] = body.encode()

    def wait_for(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acked) < count and time.monotonic() < deadline:
            time.sleep(0.01)

    def join(self) -> dict[str, bytes]:
        for thread in self._threads:
            thread.join(60)
        return self.acked


def stored_texts(config: Path) -> dict[str, bytes]:
    """Message-ID -> body of every message in the INBOX, over IMAP."""
    with IMAPClient("127.0.0.1", port=port_of(config, "imap"), ssl=False, timeout=30) as imap:
        imap.login(ADDRESS, PASSWORD)
        imap.select_folder("INBOX", readonly=True)
        fetched = imap.fetch(imap.search("ALL"), ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]", "BODY.PEEK[TEXT]"])
    return {
        d[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].decode().split("<", 1)[1].split(">", 1)[0]: d[b"BODY[TEXT]"]
        for d in fetched.values()
    }


def test_sigterm_during_data_loses_no_acknowledged_message(tmp_path: Path, servers: Servers) -> None:
    config = server_config(tmp_path)
    add_account(config)
    proc = servers.start(config)
    flood = Flood(port_of(config, "smtp"), 4, lambda w, n: "Dong noi dung thu.\r\n" * 2000)
    flood.wait_for(8)
    proc.send_signal(signal.SIGTERM)  # transfers are in flight right now
    assert proc.wait(60) == 0
    acked = flood.join()
    assert len(acked) >= 8
    servers.start(config)
    assert set(acked) <= set(stored_texts(config))


def test_sigkill_loses_no_acknowledged_message(tmp_path: Path, servers: Servers) -> None:
    """Nothing lost: eight clients deliver while the server is killed (SIGKILL, no
    shutdown of any kind). After a restart every message that was answered 250
    is in the INBOX byte for byte; one the kill interrupted may be there or not,
    never half of it (staged files of unfinished deliveries are not placed)."""
    config = server_config(tmp_path)
    add_account(config)
    proc = servers.start(config)
    flood = Flood(port_of(config, "smtp"), 8, lambda w, n: f"Client {w}, message {n}.\r\n" * (1 + n % 50))
    flood.wait_for(150)
    proc.kill()
    # A process killed inside fsync leaves only when the disk answers (uninterruptible
    # sleep): under a loaded disk that has taken over ten seconds.
    proc.wait(60)
    acked = flood.join()
    assert len(acked) >= 150
    servers.start(config)
    stored = stored_texts(config)
    assert not set(acked) - set(stored), f"{len(set(acked) - set(stored))} acknowledged messages lost"
    for mid, text in stored.items():
        assert text == acked.get(mid, text)
        assert text.endswith(b".\r\n")  # whole, even when not acknowledged


def test_sigkill_leaves_no_process_holding_the_server_output(tmp_path: Path, servers: Servers) -> None:
    """A killed server takes its helpers with it: the policy pool's forkserver and
    workers (started by a zipped attachment), the indexer's worker and the SMTP
    workers. Before, the forkserver workers waited on their queue for ever and
    kept the forkserver alive, and both kept serve's stdout open: a supervisor
    reading it (here: communicate) waited for ever."""
    config = server_config(tmp_path, smtp={"processes": 2})
    add_account(config)
    proc = servers.start(config)
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as archive:
        archive.writestr("bao-cao.txt", "Báo cáo tình hình tháng 11.\n" * 50)
    message = EmailMessage()
    message["From"] = "x@example.org"
    message["To"] = ADDRESS
    message["Subject"] = "Báo cáo"
    message.set_content("Gửi kèm báo cáo.")
    message.add_attachment(packed.getvalue(), maintype="application", subtype="zip", filename="bao-cao.zip")
    with smtplib.SMTP("127.0.0.1", port_of(config, "smtp"), timeout=30) as smtp:
        assert smtp.send_message(message) == {}
    flood = Flood(port_of(config, "smtp"), 10, lambda w, n: "Dong noi dung.\r\n")
    flood.wait_for(40)  # ten sessions at once: SMTP workers started meanwhile
    helpers = _children(proc.pid)
    assert helpers, "the attachment started no worker process"
    proc.kill()
    proc.communicate(timeout=60)  # EOF on stdout: nobody holds it any more
    flood.join()
    wait_until(lambda: not [pid for pid in helpers if _state(pid) != "Z"], "the helpers to end", timeout=30)


def _children(pid: int) -> list[int]:
    """Every process descending from ``pid`` (Linux /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def test_health_metrics_reload_and_logs(tmp_path: Path, servers: Servers) -> None:
    metrics_port = free_port()
    config = server_config(tmp_path, metrics={"listen": f"127.0.0.1:{metrics_port}"},
                           server={"log_format": "json", "log_level": "DEBUG"})
    add_account(config)
    proc = servers.start(config)

    healthy = cli(config, "health")
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "ok   database" in healthy.stdout and "ok   imaps" in healthy.stdout

    # The database unreachable (PostgreSQL URL on a closed port): unhealthy, though listeners answer.
    broken = tmp_path / "broken.toml"
    broken.write_text(config.read_text() + f'\n[storage]\nurl = "postgresql+asyncpg://postgres@127.0.0.1:'
                      f'{free_port()}/none"\n', encoding="utf-8")
    sick = cli(broken, "health")
    assert sick.returncode == 1
    assert "FAIL database" in sick.stdout and "ok   smtp" in sick.stdout

    # A login on IMAP and an AUTH PLAIN on submission, then the metrics.
    imap = imaplib.IMAP4("127.0.0.1", port_of(config, "imap"))
    imap.login(ADDRESS, PASSWORD)
    imap.select("INBOX")
    with smtplib.SMTP("127.0.0.1", port_of(config, "submission"), timeout=30) as smtp:
        smtp.login(ADDRESS, PASSWORD)
        message = f"From: {ADDRESS}\r\nTo: {ADDRESS}\r\nSubject: t\r\n\r\nhi\r\n"
        smtp.sendmail(ADDRESS, [ADDRESS], message.encode())
    with smtplib.SMTP("127.0.0.1", port_of(config, "submission"), timeout=30) as smtp:
        try:
            smtp.login(ADDRESS, "Sai-mat-khau-2026")
        except smtplib.SMTPAuthenticationError:
            pass
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as response:
        exposition = response.read().decode()
    assert 'mailserver_imap_commands_total{command="Select"} 1' in exposition
    assert 'mailserver_auth_total{outcome="ok"} 2' in exposition
    failures = re.search(r"^mailserver_auth_failures_total (\d+)$", exposition, re.M)
    assert failures is not None and int(failures.group(1)) >= 1  # smtplib tries PLAIN, then LOGIN
    assert 'mailserver_deliveries_total{result="stored"} 1' in exposition
    assert 'mailserver_connections{service="imap"} 1' in exposition
    assert "mailserver_queue_messages 0" in exposition
    assert "mailserver_imap_command_seconds_bucket" in exposition

    # SIGHUP with a new certificate: new TLS connections get it, the open session goes on.
    data = tmp_path / "data" / "tls"
    old = ssl.get_server_certificate(("127.0.0.1", port_of(config, "imap", "tls_listen")))
    (data / "cert.pem").unlink()
    (data / "key.pem").unlink()
    ensure_certificate(data / "cert.pem", data / "key.pem", "renewed.dongnai.gov.vn")
    proc.send_signal(signal.SIGHUP)
    new = old

    def reloaded() -> bool:
        nonlocal new
        new = ssl.get_server_certificate(("127.0.0.1", port_of(config, "imap", "tls_listen")))
        return new != old

    wait_until(reloaded, "the new certificate served", timeout=10, interval=0.05)
    assert new != old and new.strip() == (data / "cert.pem").read_text().strip()
    assert imap.noop()[0] == "OK"
    imap.logout()

    err = servers.stop(proc)
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert lines and all({"ts", "level", "logger", "msg"} <= set(line) for line in lines)
    assert any(line.get("session") for line in lines)
    secret_forms = [PASSWORD, base64.b64encode(f"\0{ADDRESS}\0{PASSWORD}".encode()).decode(),
                    "Sai-mat-khau-2026", "hi\\r\\n"]
    for secret in secret_forms:
        assert secret not in err


def test_health_fails_without_a_server(tmp_path: Path) -> None:
    config = server_config(tmp_path)
    result = cli(config, "health")
    assert result.returncode == 1 and "FAIL smtp" in result.stdout
