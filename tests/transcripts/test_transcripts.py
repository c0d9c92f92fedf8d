"""C:/S: dialogues fed to the Session without sockets, over a real SQLite store.

Format of ``*.txt``:

* ``C: text`` - a line the client sends (CRLF appended); a line ending in a
  literal announcement is followed by more ``C:`` lines holding the literal;
* ``S: text`` - the next line the server sends, matched literally except for
  ``{{regex}}`` holes;
* ``X: deliver SUBJECT`` - deliver a small message to the INBOX of the account;
* ``#`` comments and blank lines are ignored.

The account ``annv@dongnai.gov.vn`` with password ``S3cret-pass-word`` exists.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from mailserver.auth import Authenticator, hash_password
from mailserver.config import AuthSettings, ImapSettings
from mailserver.imap.connection import NEED_DATA, Connection
from mailserver.imap.responses import Continuation
from mailserver.imap.session import Session
from storage.api import Account, MailStore

HERE = Path(__file__).parent
TRANSCRIPTS = sorted(HERE.glob("*.txt"))


def pattern(expected: str) -> re.Pattern[str]:
    parts = re.split(r"\{\{(.*?)\}\}", expected)
    regex = "".join(re.escape(p) if i % 2 == 0 else p for i, p in enumerate(parts))
    return re.compile(regex, re.DOTALL)


def _message_id(subject: str) -> str:
    # Fixed length and independent of PYTHONHASHSEED, so sizes in transcripts are stable.
    return str(int(hashlib.sha256(subject.encode()).hexdigest(), 16))[:19]


def message(subject: str) -> bytes:
    return (
        f"From: Tester <tester@example.com>\r\nTo: annv@dongnai.gov.vn\r\nSubject: {subject}\r\n"
        f"Date: Mon, 4 Mar 2024 10:00:00 +0700\r\nMessage-ID: <{_message_id(subject)}@example.com>\r\n"
        f"\r\nHello from {subject}.\r\n"
    ).encode()


class Harness:
    def __init__(self, store: MailStore, account: Account) -> None:
        self.store = store
        self.account = account
        settings = ImapSettings(max_literal=1000, max_line=2000)
        self.session = Session(
            store,
            Authenticator(store, AuthSettings(failure_delay=0)),
            settings,
            secure=False,
            remote_ip="127.0.0.1",
            starttls_available=False,
            connection_id="t",
        )
        self.connection = Connection(self.session, settings)
        self.output: list[str] = []
        self._add(self.session.greeting().to_bytes())

    def _add(self, data: bytes) -> None:
        text = data.decode("utf-8")
        lines = text.split("\r\n")
        assert lines[-1] == ""
        self.output.extend(lines[:-1])

    async def client(self, data: bytes) -> None:
        """What the driver does with bytes from the socket (the same ``Connection``)."""
        self.connection.receive_data(data)
        while (event := self.connection.next_event()) is not NEED_DATA:
            if isinstance(event, Continuation):
                self._add(event.to_bytes())
                continue
            for response in await self.session.handle(event):
                self._add(response.to_bytes())


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=[p.stem for p in TRANSCRIPTS])
async def test_transcript(path: Path, store: MailStore) -> None:
    account = await store.create_account(
        "annv@dongnai.gov.vn", "An", hash_password("S3cret-pass-word"), must_change_password=False
    )
    harness = Harness(store, account)
    seen = 0
    for number, raw in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not raw.strip() or raw.startswith("#"):
            continue
        kind, _, text = raw.partition(": ")
        if kind == "C":
            await harness.client(text.encode("utf-8") + b"\r\n")
        elif kind == "X":
            verb, _, arg = text.partition(" ")
            assert verb == "deliver"
            await store.deliver([account.id], message(arg))
        elif kind == "S":
            assert seen < len(harness.output), f"{path.name}:{number}: server said nothing, expected {text!r}"
            actual = harness.output[seen]
            assert pattern(text).fullmatch(actual), (
                f"{path.name}:{number}:\n  expected {text!r}\n  actual   {actual!r}"
            )
            seen += 1
        else:
            raise AssertionError(f"{path.name}:{number}: bad line {raw!r}")
    assert harness.output[seen:] == [], f"{path.name}: unexpected server output"
