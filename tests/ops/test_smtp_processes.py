"""``smtp.processes``: a real ``mailserver serve`` with SMTP worker processes
sharing the MX address (SO_REUSEPORT). Mail taken by any of them is stored
(committed by the main process on SQLite) and wakes an IMAP IDLE in the main
process; a worker that dies is started again."""

from __future__ import annotations

import contextlib
import imaplib
import os
import signal
import smtplib
import socket
import time
from pathlib import Path

import pytest

from tests.conftest import wait_until
from tests.ops.conftest import Servers, cli, port_of, server_config

USER = "can.bo@dongnai.gov.vn"
PASSWORD = "Mat-khau-that-dai-2026"


def children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out


def workers_of(pid: int) -> list[int]:
    found = []
    for child in children(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"mailserver.smtp.worker" in cmdline:
            found.append(child)
    return found


def serving_pid(client: socket.socket, server_port: int, pids: list[int]) -> int | None:
    """The process holding the server end of ``client``'s connection (from
    /proc/net/tcp and each process's descriptors)."""
    client_port = client.getsockname()[1]
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == client_port:
            inode = fields[9]
    if inode is None:
        return None
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return pid
        except OSError:
            continue
    return None


def message(n: int) -> bytes:
    return (
        f"From: Dan <dan@example.org>\r\nTo: <{USER}>\r\nSubject: Thu so {n}\r\n"
        f"Date: Sat, 5 Dec 2026 10:00:00 +0700\r\nMessage-ID: <m{n}@example.org>\r\n\r\n"
        f"Noi dung thu so {n}.\r\n"
    ).encode()


def open_on(port: int, want: set[int], pids: list[int]) -> tuple[smtplib.SMTP, int]:
    """A session served by one of the processes ``want`` (connections are spread
    by the kernel: open until one lands there; bounded)."""
    for _ in range(500):
        client = smtplib.SMTP("127.0.0.1", port, timeout=30)
        assert client.sock is not None
        pid = serving_pid(client.sock, port, pids)
        if pid in want:
            return client, pid
        client.quit()
    raise AssertionError(f"no connection reached {want} in 500 tries")


def test_worker_processes_deliver_and_wake_idle(tmp_path: Path, servers: Servers, backend_url: str) -> None:
    """SQLite: the workers' deliveries committed by the main process; PostgreSQL:
    by the workers themselves, NOTIFY waking the main process's IDLE."""
    storage = {"storage": {"url": backend_url}} if backend_url else {}
    config = server_config(tmp_path, smtp={"processes": 3}, **storage)
    assert cli(config, "account", "add", USER, "--name", "Cán bộ", "--password-stdin",
               "--no-change-required", stdin=PASSWORD + "\n").returncode == 0
    proc = servers.start(config)
    smtp_port = port_of(config, "smtp")
    workers = workers_of(proc.pid)
    assert len(workers) == 2, workers
    pids = [proc.pid, *workers]

    imap = imaplib.IMAP4("127.0.0.1", port_of(config, "imap"))
    imap.login(USER, PASSWORD)
    imap.select("INBOX")
    tag = imap._new_tag().decode()
    imap.send(f"{tag} IDLE\r\n".encode())
    assert imap.readline().startswith(b"+")

    served = []
    for n, want in enumerate([{workers[0]}, {workers[1]}, {proc.pid}, {workers[0]}], start=1):
        client, pid = open_on(smtp_port, want, pids)
        client.ehlo("client.example.org")
        client.sendmail("dan@example.org", [USER], message(n))  # 250 after the commit
        client.quit()
        served.append(pid)
        # IDLE in the main process hears of it (no poll would come within the test's wait).
        line = imap.readline()
        while line.endswith(b" RECENT\r\n"):
            line = imap.readline()
        assert line == f"* {n} EXISTS\r\n".encode(), line
    assert set(served) == set(pids)

    imap.send(b"DONE\r\n")
    while not imap.readline().startswith(tag.encode()):
        pass
    typ, data = imap.uid("FETCH", "1:*", "(BODY.PEEK[TEXT])")
    bodies = sorted(item[1] for item in data if isinstance(item, tuple))
    assert bodies == sorted(f"Noi dung thu so {n}.\r\n".encode() for n in range(1, 5))
    imap.logout()

    # A worker that dies is replaced; mail goes on.
    os.kill(workers[0], signal.SIGKILL)
    def replaced() -> bool:
        now = workers_of(proc.pid)
        return len(now) == 2 and workers[0] not in now

    wait_until(replaced, "the killed worker replaced", timeout=60, interval=0.1)
    now = workers_of(proc.pid)
    client, _ = open_on(smtp_port, set(now) - {workers[1]}, [proc.pid, *now])
    client.sendmail("dan@example.org", [USER], message(5))
    client.quit()
    err = servers.stop(proc)
    assert "exited with -9" in err
    assert workers_of(proc.pid) == []


def test_default_workers_start_when_the_main_process_is_busy(tmp_path: Path, servers: Servers) -> None:
    """``smtp.processes = 0`` (the default, the CPU count): no worker while quiet;
    eight sessions at once start them, and mail through them is stored."""
    if (os.cpu_count() or 1) < 2:
        return  # one CPU: one process, nothing to start
    config = server_config(tmp_path)
    assert cli(config, "account", "add", USER, "--name", "Cán bộ", "--password-stdin",
               "--no-change-required", stdin=PASSWORD + "\n").returncode == 0
    proc = servers.start(config)
    smtp_port = port_of(config, "smtp")
    assert workers_of(proc.pid) == []
    held = [smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) for _ in range(10)]
    wait_until(lambda: len(workers_of(proc.pid)) == (os.cpu_count() or 1) - 1, "workers started",
               timeout=120, interval=0.1)
    for client in held:
        client.quit()
    workers = workers_of(proc.pid)
    # A worker binds once it is up: wait until a connection reaches one.
    opened: list[smtplib.SMTP] = []

    def reached() -> bool:
        try:
            opened.append(open_on(smtp_port, set(workers), [proc.pid, *workers])[0])
        except AssertionError:
            return False
        return True

    wait_until(reached, "a connection served by a worker", timeout=120)
    client = opened[0]
    client.sendmail("dan@example.org", [USER], message(1))
    client.quit()
    imap = imaplib.IMAP4("127.0.0.1", port_of(config, "imap"))
    imap.login(USER, PASSWORD)
    typ, data = imap.select("INBOX")
    assert data == [b"1"]
    imap.logout()
    servers.stop(proc)


def admitted(port: int) -> smtplib.SMTP:
    """A session, once the server has seen the ones closed just before end (their
    release is asynchronous: a few tries)."""
    for _ in range(100):
        try:
            return smtplib.SMTP("127.0.0.1", port, timeout=30)
        except smtplib.SMTPConnectError:
            time.sleep(0.05)
    raise AssertionError("still refused after 5 s")


def test_the_per_address_limit_holds_across_processes(tmp_path: Path, servers: Servers) -> None:
    """smtp.max_connections_per_ip counts the sessions of all SMTP processes together
    (before, each process counted its own: three processes let an address hold
    three times the limit). A worker killed with sessions open gives them back."""
    config = server_config(tmp_path, smtp={"processes": 3, "max_connections_per_ip": 4})
    proc = servers.start(config)
    port = port_of(config, "smtp")
    workers = workers_of(proc.pid)
    assert len(workers) == 2, workers
    pids = [proc.pid, *workers]
    held = [open_on(port, {pid}, pids)[0] for pid in pids]  # one session in each process
    held.append(smtplib.SMTP("127.0.0.1", port, timeout=30))  # the fourth, wherever it lands

    for _ in range(12):  # the kernel spreads them: every process must refuse
        with pytest.raises(smtplib.SMTPConnectError) as refused:
            smtplib.SMTP("127.0.0.1", port, timeout=30)
        assert refused.value.smtp_code == 421 and b"4.7.0" in refused.value.smtp_error

    held.pop().quit()  # one ends: one more is admitted
    held.append(admitted(port))
    assert held[-1].noop()[0] == 250

    # The worker holding one session dies: its count goes with it once it is replaced.
    os.kill(workers[0], signal.SIGKILL)
    wait_until(lambda: len(workers_of(proc.pid)) == 2 and workers[0] not in workers_of(proc.pid),
               "the killed worker replaced", timeout=60, interval=0.1)
    for client in held:
        with contextlib.suppress(smtplib.SMTPException, OSError):
            client.quit()
    fresh = [admitted(port) for _ in range(4)]
    assert all(client.noop()[0] == 250 for client in fresh)
    for client in fresh:
        client.quit()

    # Stopping: an open session is told 421 before the close (uvloop's transports are
    # no asyncio.WriteTransport: both 421s used to be skipped under `serve`).
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    assert raw.makefile("rb").readline().startswith(b"220 ")
    servers.stop(proc)
    assert raw.recv(200).startswith(b"421 ")
    raw.close()
