"""The servers under test, each in its own temporary directory on loopback high ports.

* ``Postfix`` (RFC 5321 MX) with its own ``config_directory`` and ``queue_directory``
  (``postfix -c DIR``), delivering through LMTP (RFC 2033) to
* ``Dovecot`` (RFC 9051 IMAP + LMTP) with its own ``base_dir`` and config file
  (``dovecot -c FILE``), Maildir under the temp dir, ``mail_fsync = always``;
* ``Ours``: ``python -m mailserver serve`` with its own data dir (SQLite, or a
  scratch PostgreSQL database).

Every ``start`` records what it started so ``stop`` (always called from a
``finally``) can end exactly those processes and nothing else.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

DOMAIN = "dongnai.gov.vn"
USER = f"bench@{DOMAIN}"
PASSWORD = "Bench-password-2026"
REPO = Path(os.environ.get("BENCH_OURS_REPO") or Path(__file__).resolve().parent.parent)
"""Checkout whose server is "ours" (``BENCH_OURS_REPO``: another tree, e.g. a commit
before a change, measured with this harness)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def raise_nofile(want: int = 65536) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, want)), hard))


def process_tree(root: int) -> list[int]:
    """``root`` and every descendant, from /proc (no psutil needed)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def memory_kib(pid: int) -> tuple[int, int, str]:
    """(RSS, PSS, command name) of one process; zeros if it is gone."""
    try:
        name = Path(f"/proc/{pid}/comm").read_text().strip()
        rss = pss = 0
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
        return rss, pss, name
    except OSError:
        return 0, 0, ""


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of ``pids`` and of their children already
    reaped (``cutime``/``cstime``: short-lived smtpd, cleanup, lmtp processes
    are counted once their parent has waited for them)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # after the comm: state ppid ... utime(11) stime(12) cutime(13) cstime(14)
        total += sum(int(v) for v in fields[11:15])
    return total / tick


def terminate(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, 20 s to end (sessions finish), then SIGKILL."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class Postfix:
    """Postfix 3.x instance: smtpd on ``port``, the virtual domain delivered over
    LMTP to Dovecot (``lmtp_port``), or, with ``maildir=True``, by virtual(8)
    itself into Maildirs under ``self.mailboxes`` (Postfix alone on the box)."""

    def __init__(self, root: Path, lmtp_port: int = 0, *, maildir: bool = False) -> None:
        self.dir = root / ("postfix-virtual" if maildir else "postfix")
        self.maildir = maildir
        self.mailboxes = self.dir / "mailboxes"
        self.conf = self.dir / "etc"
        self.queue = self.dir / "queue"
        self.port = free_port()
        self.lmtp_port = lmtp_port
        self.started = False

    def _run(self, *args: str) -> None:
        done = subprocess.run(["postfix", "-c", str(self.conf), *args], check=False,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if done.returncode:
            raise RuntimeError(f"postfix {' '.join(args)}: {done.stderr.decode(errors='replace').strip()}")

    def start(self) -> None:
        self.conf.mkdir(parents=True)
        self.queue.mkdir()
        (self.dir / "data").mkdir()
        shutil.chown(self.dir / "data", "postfix", "postfix")
        main = {
            "compatibility_level": "3.6",
            "config_directory": str(self.conf),
            "queue_directory": str(self.queue),
            "data_directory": str(self.dir / "data"),
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": "postfix.bench.invalid",
            "mydomain": "bench.invalid",
            "mydestination": "",
            "inet_interfaces": "loopback-only",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "relay_domains": "",
            "virtual_mailbox_domains": DOMAIN,
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "smtpd_recipient_restrictions": "permit_mynetworks, reject_unauth_destination",
            "message_size_limit": "33554432",
            "maillog_file": str(self.dir / "maillog"),
            "maillog_file_prefixes": str(self.dir),
            "smtputf8_enable": "no",
            "biff": "no",
            "lmtp_destination_concurrency_limit": "20",
            "default_process_limit": "100",
            "import_environment": "MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C",
            "shlib_directory": "/usr/lib/postfix",
            "daemon_directory": "/usr/lib/postfix/sbin",
            "meta_directory": str(self.conf),
        }
        if self.maildir:
            # virtual(8): every recipient of the domain to one Maildir per local
            # part ("static:" map, trailing slash = Maildir), as the mail user.
            self.mailboxes.mkdir()
            shutil.chown(self.mailboxes, "mail", "mail")
            import pwd

            mail = pwd.getpwnam("mail")
            main.update({
                "virtual_transport": "virtual",
                "virtual_mailbox_base": str(self.mailboxes),
                "virtual_mailbox_maps": f"static:{DOMAIN}/ingest/",
                "virtual_minimum_uid": "1",
                "virtual_uid_maps": f"static:{mail.pw_uid}",
                "virtual_gid_maps": f"static:{mail.pw_gid}",
                "virtual_destination_concurrency_limit": "20",
                "virtual_mailbox_limit": "0",
            })
        else:
            main["virtual_transport"] = f"lmtp:inet:127.0.0.1:{self.lmtp_port}"
        (self.conf / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in main.items()))
        # chroot "n" everywhere: the services read nothing outside the queue dir anyway.
        master = f"""\
127.0.0.1:{self.port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""
        (self.conf / "master.cf").write_text(master)
        for name in ("postfix-files", "dynamicmaps.cf"):
            src = Path("/etc/postfix") / name
            if src.exists():
                shutil.copy(src, self.conf / name)
        for sub in ("postfix-files.d", "dynamicmaps.cf.d"):
            src = Path("/etc/postfix") / sub
            if src.is_dir():
                shutil.copytree(src, self.conf / sub)
        self.started = True
        self._run("start")
        wait_port(self.port)

    def stop(self) -> None:
        if self.started:
            subprocess.run(["postfix", "-c", str(self.conf), "stop"], check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            pidfile = self.queue / "pid" / "master.pid"
            for _ in range(100):  # bounded: up to 10 s for the master to go
                if not pidfile.exists():
                    break
                time.sleep(0.1)
            self.started = False

    def master_pid(self) -> int:
        return int((self.queue / "pid" / "master.pid").read_text().split()[0])

    def server_pids(self) -> list[int]:
        return process_tree(self.master_pid())


class Dovecot:
    """Dovecot 2.3 instance: IMAP on ``imap_port``, LMTP on ``lmtp_port``, Maildir under the temp dir."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "dovecot"
        self.mail = self.dir / "mail"
        self.imap_port = free_port()
        self.lmtp_port = free_port()
        self.conf = self.dir / "dovecot.conf"
        self.started = False

    @property
    def maildir(self) -> Path:
        return self.mail / DOMAIN / "bench" / "Maildir"

    def master_pid(self) -> int:
        return int((self.dir / "run" / "master.pid").read_text().split()[0])

    def start(self) -> None:
        (self.dir / "run").mkdir(parents=True)
        self.mail.mkdir(parents=True)
        shutil.chown(self.mail, "mail", "mail")
        self.conf.write_text(f"""\
base_dir = {self.dir}/run
state_dir = {self.dir}/state
log_path = {self.dir}/dovecot.log
info_log_path = {self.dir}/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
mail_fsync = always
first_valid_uid = 8
first_valid_gid = 8
default_process_limit = 2000
default_client_limit = 4000
default_vsz_limit = 1G
passdb {{
  driver = static
  args = password={PASSWORD}
}}
userdb {{
  driver = static
  args = uid=mail gid=mail home={self.mail}/%d/%n allow_all_users=yes
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {self.lmtp_port}
  }}
}}
protocol imap {{
  mail_max_userip_connections = 5000
}}
service anvil {{
  client_limit = 5000
}}
service auth {{
  client_limit = 8000
}}
""")
        (self.dir / "state").mkdir()
        self.started = True
        subprocess.run(["dovecot", "-c", str(self.conf)], check=True, preexec_fn=raise_nofile)
        wait_port(self.imap_port)
        wait_port(self.lmtp_port)

    def stop(self) -> None:
        if not self.started:
            return
        try:
            pid = self.master_pid()
        except (OSError, ValueError):
            self.started = False
            return
        subprocess.run(["doveadm", "-c", str(self.conf), "stop"], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
        self.started = False

    def server_pids(self) -> list[int]:
        return process_tree(self.master_pid())


class Ours:
    """Our server as a child process (``python -m mailserver serve``)."""

    def __init__(self, root: Path, postgres_dsn: str = "",
                 extra: dict[str, dict[str, str]] | None = None) -> None:
        self.extra = extra or {}
        """Further config keys by section (TOML values), e.g. {"smtp": {"processes": "1"}}."""
        self.dir = root / "ours"
        self.smtp_port = free_port()
        self.imap_port = free_port()
        self.postgres_dsn = postgres_dsn
        self.db_name = ""
        self.storage_url = ""
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def maildir(self) -> Path:
        return self.dir / "data" / "maildir" / DOMAIN / "bench"

    def _cli(self, *args: str, stdin: bytes = b"") -> None:
        subprocess.run([sys.executable, "-m", "mailserver", "--config", str(self.dir / "mailserver.toml"),
                        *args], input=stdin, check=True, cwd=REPO, stdout=subprocess.DEVNULL)

    def _pg(self, sql: str) -> None:
        import asyncio

        import asyncpg  # type: ignore[import-untyped]

        async def run() -> None:
            conn = await asyncpg.connect(self.postgres_dsn)
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        asyncio.run(run())

    def start(self) -> None:
        self.dir.mkdir(parents=True)
        if self.postgres_dsn:
            self.db_name = f"mailbench_{uuid.uuid4().hex[:10]}"
            self._pg(f'CREATE DATABASE "{self.db_name}"')
            base = self.postgres_dsn.split("://", 1)[1].rsplit("/", 1)[0]
            self.storage_url = f"postgresql+asyncpg://{base}/{self.db_name}"
        # Every listener the config knows (other front ends keep being added) on a
        # free loopback port; SMTP and IMAP on the ports the scenarios use.
        from mailserver.config import SECTIONS

        fixed = {("smtp", "listen"): self.smtp_port, ("imap", "listen"): self.imap_port}
        tables: dict[str, dict[str, str]] = {
            "server": {"hostname": '"ours.bench.invalid"', "domains": f'["{DOMAIN}"]',
                       "data_dir": f'"{self.dir / "data"}"', "log_level": '"WARNING"'},
            "storage": {"url": f'"{self.storage_url}"'},
            "dns": {"use_servers": "false"},
            # Scenario 4 holds 1,000 IDLE sessions of one account from loopback (and
            # Dovecot's side is given mail_max_userip_connections = 5000 too).
            "imap": {"max_connections": "20000", "max_connections_per_ip": "20000",
                     "max_connections_per_user": "20000"},
        }
        for section, cls in SECTIONS.items():
            for f in dataclasses.fields(cls):
                if f.name.endswith("listen") and isinstance(f.default, str) and ":" in f.default:
                    port = fixed.get((section, f.name)) or free_port()
                    tables.setdefault(section, {})[f.name] = f'"127.0.0.1:{port}"'
        for section, keys in self.extra.items():
            tables.setdefault(section, {}).update(keys)
        (self.dir / "mailserver.toml").write_text("".join(
            f"[{section}]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items())
            for section, keys in tables.items()
        ))
        self._cli("account", "add", USER, "--name", "Bench", "--password-stdin", "--no-change-required",
                  stdin=PASSWORD.encode() + b"\n")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mailserver", "--config", str(self.dir / "mailserver.toml"), "serve"],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=open(self.dir / "server.log", "wb"),  # noqa: SIM115
            preexec_fn=raise_nofile,
        )
        wait_port(self.smtp_port)
        wait_port(self.imap_port)

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc)
            self.proc = None
        if self.db_name:
            self._pg(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            self.db_name = ""

    def server_pids(self) -> list[int]:
        assert self.proc is not None
        return process_tree(self.proc.pid)


class Floor:
    """bench/smtp_floor.py: aiosmtpd writing each message to a Maildir with fsync, nothing else."""

    def __init__(self, root: Path, processes: int = 0, *, our_reader: bool = False) -> None:
        self.our_reader = our_reader
        self.dir = root / ("floor-reader" if our_reader else "floor")
        self.port = free_port()
        self.processes = processes or (os.cpu_count() or 1)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def mailboxes(self) -> Path:
        return self.dir / "Maildir"

    def start(self) -> None:
        self.dir.mkdir(parents=True)
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "bench" / "smtp_floor.py"), "--port", str(self.port),
             "--maildir", str(self.mailboxes), "--processes", str(self.processes),
             *(["--our-reader"] if self.our_reader else [])],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=open(self.dir / "floor.log", "wb"),  # noqa: SIM115
            preexec_fn=raise_nofile,
        )
        wait_port(self.port)

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc)
            self.proc = None

    def server_pids(self) -> list[int]:
        assert self.proc is not None
        return process_tree(self.proc.pid)

    def master_pid(self) -> int:
        return self.proc.pid if self.proc else 0
