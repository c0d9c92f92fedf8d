"""Memory of DATA on a real ``mailserver serve`` process (issue 15): sessions of
unauthenticated clients, each in the middle of sending a 30 MB message, must
not make the server hold those messages in memory. The data is spooled to
anonymous files in ``<data_dir>/tmp`` as it arrives (mailserver/smtp/limits.py).

The server's resident set is read from /proc/<pid>/status; the octets it has
taken in are the sizes of the spool files it holds open (/proc/<pid>/fd), so
the measurement is made once the server has really read the data, not while
it still sits in socket buffers. A memory bound, not a timing: generous on
purpose (before the spool, 10 such sessions cost ~300 MB).
"""

from __future__ import annotations

import asyncio
import os
import smtplib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clients.test_cli_serve import cli, free_port
from tests.conftest import end_process

ANNV = "annv@dongnai.gov.vn"
PASSWORD = "Mot-mat-khau-rat-dai-2026"
SESSIONS = 10
MESSAGE = 30 * 1024 * 1024
BOUND = 150 * 1024 * 1024
LINE = b"A" * 76 + b"\r\n"


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def spooled(pid: int, spool: Path) -> int:
    """Octets in the spool files the server holds open (O_TMPFILE files have
    no name; their /proc link still points into the spool directory)."""
    total = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
            if target.startswith(str(spool)):
                total += os.stat(fd).st_size
        except OSError:
            continue
    return total


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, Path]]:
    smtp_port = free_port()
    config = tmp_path / "mailserver.toml"
    config.write_text(
        f"""
[server]
data_dir = "{tmp_path / 'data'}"
log_level = "WARNING"
[smtp]
listen = "127.0.0.1:{smtp_port}"
processes = 1
[submission]
listen = "127.0.0.1:{free_port()}"
tls_listen = "127.0.0.1:{free_port()}"
[imap]
listen = "127.0.0.1:{free_port()}"
tls_listen = "127.0.0.1:{free_port()}"
[managesieve]
listen = "127.0.0.1:{free_port()}"
[web]
enabled = false
[dns]
use_servers = false
""",
        encoding="utf-8",
    )
    added = cli(config, "account", "add", ANNV, "--password-stdin", "--no-change-required",
                stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailserver", "--config", str(config), "serve"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("mailserver ready"), (line, proc.stderr.read() if proc.poll() else "")
        yield proc, smtp_port, (tmp_path / "data" / "tmp").resolve()
    finally:
        end_process(proc, 30)


def warm_up(port: int) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
        smtp.sendmail("warm@example.org", [ANNV],
                      b"From: <warm@example.org>\r\nSubject: warm\r\n\r\nhello\r\n")


async def mid_data(port: int, started: asyncio.Event, stop: asyncio.Event) -> None:
    """One session that sends 30 MB of DATA and then waits, without the final dot."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        assert (await reader.readline()).startswith(b"220")
        for command in (b"EHLO client.example", b"MAIL FROM:<big@example.org>", f"RCPT TO:<{ANNV}>".encode(),
                        b"DATA"):
            writer.write(command + b"\r\n")
            while (line := await reader.readline())[3:4] == b"-":
                pass
            assert line[:1] in (b"2", b"3"), line
        writer.write(b"From: <big@example.org>\r\nSubject: big\r\n\r\n")
        chunk = LINE * (1024 * 1024 // len(LINE))
        for _ in range(MESSAGE // len(chunk)):
            writer.write(chunk)
            await writer.drain()
        started.set()
        await stop.wait()
    finally:
        writer.close()


async def test_sessions_mid_data_do_not_hold_their_messages_in_memory(
    server: tuple[subprocess.Popen[str], int, Path],
) -> None:
    proc, port, spool = server
    # Warm up: one delivery, so that what a first message loads is in the baseline.
    await asyncio.to_thread(warm_up, port)
    before = rss(proc.pid)
    stop = asyncio.Event()
    sent = [asyncio.Event() for _ in range(SESSIONS)]
    tasks = [asyncio.create_task(mid_data(port, sent[i], stop)) for i in range(SESSIONS)]
    try:
        for event in sent:
            await asyncio.wait_for(event.wait(), 300)
        # All but what may still be in flight in socket buffers has been read
        # by the server: into its spool files, or (before them) into memory.
        wanted = SESSIONS * (MESSAGE - 12 * 1024 * 1024)
        async with asyncio.timeout(120):
            while spooled(proc.pid, spool) < wanted and rss(proc.pid) - before < BOUND:
                await asyncio.sleep(0.2)
        growth = rss(proc.pid) - before
        assert growth < BOUND, f"server RSS grew by {growth // 2**20} MiB with {SESSIONS} sessions mid-DATA"
        assert spooled(proc.pid, spool) >= wanted
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert proc.poll() is None, "the server is still running"


IDLE_SESSIONS = 400
IDLE_BOUND = 50 * 1024
"""Issue 17: memory per idle SMTP session (greeted, after EHLO), at most 50 KiB."""


def tree_rss(pid: int) -> int:
    """RSS of ``pid`` and its children (SMTP worker processes, if any)."""
    total = rss(pid)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                if ppid == pid:
                    total += rss(int(entry.name))
            except (OSError, AssertionError):
                continue
    return total


async def idle_session(port: int) -> asyncio.StreamWriter:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert (await reader.readline()).startswith(b"220 ")
    writer.write(b"EHLO client.example.org\r\n")
    while True:
        line = await reader.readline()
        assert line.startswith(b"250"), line
        if line.startswith(b"250 "):
            return writer


# A connection attempt cancelled while the server starts can be collected unclosed (asyncio's
# open_connection on cancellation); that warning says nothing about the memory measured here.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_idle_sessions_cost_little_memory(tmp_path: Path) -> None:
    """400 sessions that said EHLO and then nothing, on a real ``serve`` with two
    SMTP processes (started before the count: the default starts its worker
    under load, which would count the worker's start as the sessions' cost):
    the server's RSS (all its processes) grows by at most 50 KiB per session.
    Measured after they are all served (the EHLO replies were read), so nothing
    waits in socket buffers."""
    smtp_port = free_port()
    config = tmp_path / "mailserver.toml"
    config.write_text(
        f"""
[server]
data_dir = "{tmp_path / 'data'}"
log_level = "WARNING"
[smtp]
listen = "127.0.0.1:{smtp_port}"
max_connections_per_ip = 0
processes = 2
[submission]
listen = "127.0.0.1:{free_port()}"
tls_listen = "127.0.0.1:{free_port()}"
[imap]
listen = "127.0.0.1:{free_port()}"
tls_listen = "127.0.0.1:{free_port()}"
[managesieve]
listen = "127.0.0.1:{free_port()}"
[web]
enabled = false
[dns]
use_servers = false
""",
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailserver", "--config", str(config), "serve"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    writers: list[asyncio.StreamWriter] = []
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("mailserver ready")
        for _ in range(20):  # first sessions: allocator arenas, lazily built objects
            (await idle_session(smtp_port)).close()
        await asyncio.sleep(1)
        before = tree_rss(proc.pid)
        for _ in range(IDLE_SESSIONS // 50):
            writers += await asyncio.gather(*(idle_session(smtp_port) for _ in range(50)))
        grown = tree_rss(proc.pid) - before
        assert grown / IDLE_SESSIONS < IDLE_BOUND, f"{grown / IDLE_SESSIONS / 1024:.1f} KiB per idle session"
    finally:
        for writer in writers:
            writer.close()
        end_process(proc, 30)
