"""A real Dovecot (the apt package's /usr/sbin/dovecot) started by the tests:
its own config in a temp directory, IMAP on a free loopback port, a passwd-file
of test users, Maildir++ mail that the tests fill by writing files directly
(thousands of messages in a second, INTERNALDATE = the file's mtime, as Dovecot
reads it), then read back through Dovecot's IMAP with IMAPClient."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"

# Maildir flag letters (https://cr.yp.to/proto/maildir.html): sorted in the name.
FLAG_LETTERS = {"\\Draft": "D", "\\Flagged": "F", "\\Answered": "R", "\\Seen": "S", "\\Deleted": "T"}


def available() -> bool:
    return os.path.exists(DOVECOT)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mutf7_level(level: str) -> str:
    """RFC 3501 section 5.1.3 modified UTF-7, written here independently of the
    server's own encoder so that the two are checked against each other."""
    import base64

    out, run = [], []

    def flush() -> None:
        if run:
            raw = "".join(run).encode("utf-16-be")
            out.append("&" + base64.b64encode(raw).decode().rstrip("=").replace("/", ",") + "-")
            run.clear()

    for ch in level:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    flush()
    return "".join(out)


@dataclass(frozen=True)
class Message:
    data: bytes
    """As written to the file (LF line ends, as Dovecot stores them)."""
    flags: tuple[str, ...]
    internal_date: datetime


class Dovecot:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.tls_port = free_port()
        self.ca_file = root / "ca.pem"
        self.passwd = root / "passwd"
        self.mail = root / "mail"
        self.proc: subprocess.Popen[bytes] | None = None
        if os.geteuid() == 0:
            # Dovecot refuses to run its login and mail processes as root.
            self.login_user, self.internal_user, self.mail_user = "dovenull", "dovecot", "dovecot"
        else:
            me = pwd.getpwuid(os.geteuid()).pw_name
            self.login_user = self.internal_user = self.mail_user = me
        entry = pwd.getpwnam(self.mail_user)
        self.uid, self.gid = entry.pw_uid, entry.pw_gid

    def config(self) -> str:
        r = self.root
        return f"""
base_dir = {r}/run
state_dir = {r}/state
log_path = {r}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{r}/cert.pem
ssl_key = <{r}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {self.internal_user}
default_internal_group = {self._group(self.internal_user)}
default_login_user = {self.login_user}
first_valid_uid = {min(self.uid, 100)}
mail_location = maildir:{self.mail}/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.passwd}
}}
userdb {{
  driver = static
  args = uid={self.uid} gid={self.gid} home={r}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.tls_port}
    ssl = yes
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
namespace inbox {{
  inbox = yes
  mailbox "Sent Items" {{
    special_use = \\Sent
  }}
  mailbox Drafts {{
    special_use = \\Drafts
  }}
}}
"""

    @staticmethod
    def _group(user: str) -> str:
        import grp

        return grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name

    def start(self) -> None:
        for sub in ("run", "state", "home", "mail"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.passwd.write_text("", encoding="utf-8")
        self._certificate()
        (self.root / "dovecot.conf").write_text(self.config(), encoding="utf-8")
        self._own(self.root / "mail")
        self._own(self.root / "home")
        self.proc = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.root / "dovecot.conf")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        # Poll until the listener accepts (the master binds before forking).
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"dovecot exited: {err}{self.log()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 1) as conn:
                if conn.recv(100).startswith(b"* OK"):
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"dovecot did not start: {self.log()}")
            time.sleep(0.05)

    def _certificate(self) -> None:
        """A self-signed certificate for 127.0.0.1, which is also the CA file clients trust."""
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dovecot test")])
        now = datetime.now().astimezone()
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        pem = cert.public_bytes(serialization.Encoding.PEM)
        (self.root / "cert.pem").write_bytes(pem)
        self.ca_file.write_bytes(pem)
        (self.root / "key.pem").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ))

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stderr:
            self.proc.stderr.close()

    def _own(self, path: Path) -> None:
        if os.geteuid() == 0:
            os.chown(path, self.uid, self.gid)
            for base, dirs, files in os.walk(path):
                for name in dirs + files:
                    os.chown(os.path.join(base, name), self.uid, self.gid)

    def add_user(self, user: str, password: str) -> None:
        with self.passwd.open("a", encoding="utf-8") as handle:
            handle.write(f"{user}:{{PLAIN}}{password}\n")

    def fill(self, user: str, folders: dict[str, Sequence[Message]]) -> None:
        """Write the messages as Maildir++ files: folder "A/B" is ".A.B" (each
        level modified UTF-7), keywords through the folder's dovecot-keywords file."""
        home = self.mail / user
        for folder, messages in folders.items():
            levels = ".".join(mutf7_level(p) for p in folder.split("/"))
            base = home if folder == "INBOX" else home / f".{levels}"
            for sub in ("cur", "new", "tmp"):
                (base / sub).mkdir(parents=True, exist_ok=True)
            keywords = sorted({f for m in messages for f in m.flags if not f.startswith("\\")})
            assert len(keywords) <= 26
            letters = {kw: chr(ord("a") + i) for i, kw in enumerate(keywords)}
            if keywords:
                (base / "dovecot-keywords").write_text(
                    "".join(f"{i} {kw}\n" for i, kw in enumerate(keywords)), encoding="utf-8"
                )
            for n, message in enumerate(messages):
                info = "".join(sorted(FLAG_LETTERS[f] for f in message.flags if f in FLAG_LETTERS))
                info += "".join(sorted(letters[f] for f in message.flags if f in letters))
                stamp = int(message.internal_date.timestamp())
                path = base / "cur" / f"{stamp}.M{n}P{os.getpid()}.test,S={len(message.data)}:2,{info}"
                path.write_bytes(message.data)
                os.utime(path, (stamp, stamp))
        self._own(self.mail)


@contextlib.contextmanager
def running_dovecot() -> Iterator[Dovecot]:
    # Not under pytest's tmp_path: its parents are mode 0700, closed to the
    # unprivileged users Dovecot switches to.
    root = Path(tempfile.mkdtemp(prefix="dovecot-test-"))
    root.chmod(0o755)
    dovecot = Dovecot(root)
    try:
        dovecot.start()
        yield dovecot
    finally:
        dovecot.stop()
        shutil.rmtree(root, ignore_errors=True)
