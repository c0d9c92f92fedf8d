"""A killed server leaves no process behind: the indexer's forked workers end with it
(they would otherwise wait forever on a pipe their siblings keep open)."""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
import time
from pathlib import Path

from tests.clients.test_cli_serve import free_port


def _children(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_indexer_workers_end_when_the_server_is_killed(tmp_path: Path) -> None:
    smtp = free_port()
    config = tmp_path / "mailserver.toml"
    config.write_text(
        f'[server]\ndata_dir = "{tmp_path / "data"}"\n'
        f'[smtp]\nlisten = "127.0.0.1:{smtp}"\nprocesses = 1\n'
        f'[submission]\nlisten = "127.0.0.1:{free_port()}"\ntls_listen = "127.0.0.1:{free_port()}"\n'
        f'[imap]\nlisten = "127.0.0.1:{free_port()}"\ntls_listen = "127.0.0.1:{free_port()}"\n'
        f'[web]\nlisten = "127.0.0.1:{free_port()}"\n'
        f'[managesieve]\nlisten = "127.0.0.1:{free_port()}"\n'
        "[search]\nprocesses = 1\n"
    )
    base = [sys.executable, "-m", "mailserver", "--config", str(config)]
    added = subprocess.run([*base, "account", "add", "an@dongnai.gov.vn", "--password-stdin",
                            "--no-change-required"], input="Mot-mat-khau-rat-dai-2026\n", text=True,
                           capture_output=True, timeout=120, check=False)
    assert added.returncode == 0, added.stderr
    proc = subprocess.Popen([*base, "serve"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().startswith("mailserver ready")
        with smtplib.SMTP("127.0.0.1", smtp, timeout=30) as client:
            client.sendmail("a@example.org", ["an@dongnai.gov.vn"],
                            b"From: a@example.org\r\nSubject: x\r\nDate: Mon, 6 May 2024 08:30:00 +0000\r\n"
                            b"Message-ID: <x@example.org>\r\n\r\nNoi dung.\r\n")
        deadline = time.monotonic() + 30
        workers: set[int] = set()
        while not workers and time.monotonic() < deadline:
            workers = _children(proc.pid)
            time.sleep(0.1)
        assert workers, "the indexer started a worker process"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        deadline = time.monotonic() + 30
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [w for w in workers if _alive(w)], "worker processes outlived the killed server"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)
