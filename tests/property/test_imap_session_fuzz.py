"""Stateful fuzzing of the IMAP server: hypothesis drives a real server (App over a
real SQLite store, in a thread with its own event loop) through a socket.

Each example opens one connection and sends a run of commands - well-formed ones
of every kind, in any state, with arguments drawn from the grammar's edges (huge
numbers, empty lists, odd spaces, literals, quoted strings with NUL, random
bytes, commands cut short), and answers every continuation request. After each
command the server must answer it in time (a hang fails), with lines that end in
CRLF, never ``[SERVERBUG]``, never a logged traceback, and must close only after
LOGOUT or a BYE. The run is bounded for CI; ``IMAP_FUZZ_EXAMPLES=N`` multiplies
it (README, "Fuzzing").
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from mailserver.app import App
from mailserver.auth import hash_password
from tests.conftest import make_config

SCALE = int(os.environ.get("IMAP_FUZZ_EXAMPLES", "1"))
USER = "fuzz@dongnai.gov.vn"
PASSWORD = "Fuzz-pass-word-2026"
LITERAL = re.compile(rb"\{(\d+)\}\r\n\Z")
PREAUTH_LITERAL = 8192
"""imap.max_preauth_literal's default."""
ANSWER_TIMEOUT = 60.0
"""Seconds a command may take before it counts as a hang (never reached when healthy)."""


class _Errors(logging.Handler):
    """Records what the server logs at ERROR or above (a traceback is always logged)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(self.format(record))


class _Server:
    """A real App in a thread of its own (hypothesis's stateful tests are synchronous)."""

    def __init__(self, data_dir: Path) -> None:
        base = make_config(data_dir)
        # Fuzzed LOGINs fail by the hundred: no throttling, or the rest of the run
        # would never get past LOGIN.
        self.config = replace(
            base, auth=replace(base.auth, max_failures=10**9, max_failures_per_ip=10**9, failure_delay=0.0)
        )
        self.port = 0
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        try:
            async with App(self.config) as app:
                account = await app.store.create_account(
                    USER, "Fuzz", hash_password(PASSWORD), must_change_password=False
                )
                inbox = await app.store.get_folder(account.id, "INBOX")
                for n in range(4):
                    body = f"Subject: m{n}\r\nFrom: a@example.org\r\n\r\nNoi dung {n}\r\n".encode()
                    await app.store.append(account.id, inbox.id, body, flags=["\\Seen"] if n % 2 else [])
                self.port = app.addresses["imap"][1]
                self._loop = asyncio.get_running_loop()
                self._stop = asyncio.Event()
                self._ready.set()
                await self._stop.wait()
        except BaseException as exc:  # reported by start()
            self._failure = exc
            self._ready.set()

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(120)
        if self._failure is not None or not self.port:
            raise RuntimeError(f"fuzz server did not start: {self._failure!r}")

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Server]:
    server = _Server(tmp_path_factory.mktemp("fuzz") / "data")
    server.start()
    yield server
    server.stop()


# -- what is sent ----------------------------------------------------------------------------
numbers = st.sampled_from(
    [b"0", b"1", b"2", b"3", b"4", b"*", b"1:*", b"2:3", b"4294967295", b"4294967296", b"1,3:*",
     b"99999999999999999999", b"9223372036854775807", b"$", b"0:0", b"00001"]
)
mailboxes = st.sampled_from(
    [b"INBOX", b"inbox", b"Sent", b"Drafts", b"Trash", b"Junk", b"Fuzz", b"Fuzz/Sub", b'"Fuzz Two"',
     b"&AMk-", b"&Jjo-x", b'"C&APQ-ng v&AQM-n"', b"Shared/x/INBOX", b'""', b"{3+}\r\nabc", b"\"a\x00b\""]
)
atoms = st.sampled_from(
    [b"ALL", b"FLAGS", b"UID", b"BODY[]", b"BODY.PEEK[1]", b"BODY[HEADER.FIELDS (SUBJECT)]", b"ENVELOPE",
     b"BODYSTRUCTURE", b"RFC822.SIZE", b"BINARY[1]", b"BINARY.SIZE[1]", b"MODSEQ", b"INTERNALDATE",
     b"BODY[]<0.10>", b"BODY[TEXT]<99999999999.1>", b"FAST", b"FULL", b"\\Seen", b"\\Deleted", b"\\Flagged",
     b"$Junk", b"\\Bogus", b"SEEN", b"UNSEEN", b"NEW", b"OLD", b"RECENT", b"DELETED", b"LARGER 10",
     b"SMALLER 99999999999999999999", b"BEFORE 1-Jun-2024", b"SINCE 31-Feb-2024", b"SUBJECT m1",
     b'SUBJECT "C\xc3\xb4ng"', b"BODY dung", b"TEXT {4+}\r\nNoi ", b"HEADER From example", b"NOT SEEN",
     b"OR SEEN FLAGGED", b"( SEEN )", b"UID 1:*", b"MODSEQ 1", b"KEYWORD $Junk", b"CHANGEDSINCE 1",
     b"MESSAGES", b"UIDNEXT", b"UNSEEN", b"SIZE", b"HIGHESTMODSEQ", b"CONDSTORE", b"QRESYNC",
     b"UTF8=ACCEPT", b"IMAP4rev2", b"(REVERSE DATE SUBJECT)", b"(DISPLAYFROM)", b"UTF-8", b"RETURN (MIN ALL)",
     b"REFERENCES", b"ORDEREDSUBJECT", b"NIL", b"()", b"(", b")", b"\"\"", b"~{1}\r\nx", b"{0}\r\n"]
)
verbs = st.sampled_from(
    [b"NOOP", b"CAPABILITY", b"ID", b"ENABLE", b"SELECT", b"EXAMINE", b"CREATE", b"DELETE", b"RENAME",
     b"SUBSCRIBE", b"UNSUBSCRIBE", b"LIST", b"LSUB", b"STATUS", b"APPEND", b"CHECK", b"CLOSE", b"UNSELECT",
     b"EXPUNGE", b"SEARCH", b"FETCH", b"STORE", b"COPY", b"MOVE", b"UID FETCH", b"UID SEARCH",
     b"UID STORE", b"UID COPY", b"UID MOVE", b"UID EXPUNGE", b"NAMESPACE", b"GETQUOTAROOT", b"GETQUOTA",
     b"MYRIGHTS", b"GETACL", b"SETACL", b"LISTRIGHTS", b"DELETEACL", b"STARTTLS", b"AUTHENTICATE",
     b"SORT", b"UID SORT", b"THREAD", b"UID THREAD", b"FROBNICATE", b"UID FROB", b"IDLE", b"LOGOUT", b"LOGIN"]
)
# Random octets, but no literal announcements the client would not follow with data.
octets = st.binary(max_size=12).map(lambda b: b.replace(b"{", b"(").replace(b"\n", b" ").replace(b"\r", b" "))
pieces = st.one_of(numbers, mailboxes, atoms, octets)


@st.composite
def command_lines(draw: st.DrawFn) -> bytes:
    """One command line (literals inline as LITERAL+), or a deliberately broken one."""
    verb = draw(verbs)
    args = draw(st.lists(pieces, max_size=6))
    if draw(st.booleans()) and args:
        # A parenthesised list with odd spacing, the way clients build them.
        cut = draw(st.integers(0, len(args) - 1))
        inner = b" ".join(args[cut:])
        left, right = b" " * draw(st.integers(0, 2)), b" " * draw(st.integers(0, 2))
        args = [*args[:cut], b"(" + left + inner + right + b")"]
    line = b" ".join([verb, *args])
    if draw(st.integers(0, 9)) == 0:  # APPEND with a literal the size it says
        message = draw(st.binary(min_size=1, max_size=200))
        line = b"APPEND " + draw(mailboxes) + b" (\\Seen) {%d+}\r\n" % len(message) + message
    return line


class ImapFuzz(RuleBasedStateMachine):
    server: _Server
    errors: _Errors

    def __init__(self) -> None:
        super().__init__()
        self.sock: socket.socket | None = None
        self.count = 0
        self.closed = False
        self.logged_in = False

    @initialize()
    def connect(self) -> None:
        self.sock = socket.create_connection(("127.0.0.1", self.server.port), timeout=ANSWER_TIMEOUT)
        self.file = self.sock.makefile("rb")
        self.closed = self.logged_in = False
        greeting = self.file.readline()
        assert greeting.startswith(b"* OK"), greeting

    @precondition(lambda self: self.closed)
    @rule()
    def reconnect(self) -> None:
        self._hang_up()
        self.connect()

    def _hang_up(self) -> None:
        if self.sock is not None:
            self.file.close()
            self.sock.close()
            self.sock = None

    def _tag(self) -> bytes:
        self.count += 1
        return b"f%d" % self.count

    def _exchange(self, data: bytes, *, tag: bytes, answers: list[bytes]) -> list[bytes]:
        """Send ``data``; read until the tagged answer, feeding ``answers`` (then ``*``)
        to continuation requests. Returns the lines; notes a close."""
        assert self.sock is not None
        self.sock.sendall(data)
        lines: list[bytes] = []
        while True:
            line = self.file.readline()
            if not line:
                self.closed = True
                assert lines and any(
                    ln.startswith(b"* BYE") for ln in lines
                ), f"closed without BYE after {data!r}: {lines!r}"
                return lines
            assert line.endswith(b"\r\n"), line
            assert b"SERVERBUG" not in line, (data, line)
            literal = LITERAL.search(line)
            if literal is not None:  # a literal in a response: its octets, then the line goes on
                self.file.read(int(literal.group(1)))
            lines.append(line)
            if line.startswith(b"+"):
                self.sock.sendall(answers.pop(0) if answers else b"*\r\n")
                continue
            if line.startswith(tag + b" "):
                if any(ln.startswith(b"* BYE") for ln in lines):
                    self.closed = True  # the server closes after a BYE (LOGOUT, limits)
                return lines

    @precondition(lambda self: not self.closed)
    @rule(line=command_lines())
    def command(self, line: bytes) -> None:
        tag = self._tag()
        lines = self._exchange(tag + b" " + line + b"\r\n", tag=tag, answers=[b"DONE\r\n"])
        if lines and lines[-1].startswith(tag + b" OK [CAPABILITY") and b"LOGIN" in line.upper():
            self.logged_in = True
        if lines and lines[-1].startswith(tag + b" OK Begin TLS"):
            self.closed = True  # STARTTLS accepted: this plain client stops here

    @precondition(lambda self: not self.closed and not self.logged_in)
    @rule()
    def login(self) -> None:
        tag = self._tag()
        lines = self._exchange(tag + f" LOGIN {USER} {PASSWORD}\r\n".encode(), tag=tag, answers=[])
        assert self.closed or lines[-1].startswith(tag + b" OK"), lines
        self.logged_in = True

    @precondition(lambda self: not self.closed and self.logged_in)
    @rule(mailbox=mailboxes, readonly=st.booleans())
    def select(self, mailbox: bytes, readonly: bool) -> None:
        tag = self._tag()
        verb = b"EXAMINE " if readonly else b"SELECT "
        self._exchange(tag + b" " + verb + mailbox + b"\r\n", tag=tag, answers=[])

    @precondition(lambda self: not self.closed)
    @rule(raw=st.binary(min_size=1, max_size=40))
    def garbage(self, raw: bytes) -> None:
        tag = self._tag()
        # Random bytes, then a line end and a NOOP: the NOOP must still be answered.
        self._exchange(raw.replace(b"\n", b" ").replace(b"{", b"(") + b"\r\n" + tag + b" NOOP\r\n",
                       tag=tag, answers=[])

    @precondition(lambda self: not self.closed)
    @rule(size=st.sampled_from([0, 1, 64, 8192, 8193, 100_000, 67_108_865, 10**12]), plus=st.booleans())
    def literal_announcement(self, size: int, plus: bool) -> None:
        tag = self._tag()
        head = tag + b" LOGIN {%d%b}\r\n" % (size, b"+" if plus else b"")
        data = b"x" * min(size, 100_000) + b" y\r\n"
        if not plus:  # the octets follow the server's "+" (none comes if it refuses)
            self._exchange(head, tag=tag, answers=[data] if size <= 100_000 else [])
        elif size <= 100_000:
            lines = self._exchange(head + data, tag=tag, answers=[])
            if size > PREAUTH_LITERAL and not self.logged_in:
                self._expect_close(lines)
        else:
            lines = self._exchange(head, tag=tag, answers=[])
            assert any(line.startswith(tag + b" BAD [TOOBIG]") for line in lines), lines
            if not self.logged_in:
                self._expect_close(lines)
            # Logged in, the server now skips the announced octets: this client
            # would have to send them all; it hangs up instead.
            self.closed = True

    def _expect_close(self, lines: list[bytes]) -> None:
        """An oversized LITERAL+ before login: BAD [TOOBIG], * BYE, closed."""
        while line := self.file.readline():
            lines.append(line)
        assert any(line.startswith(b"* BYE") for line in lines), lines
        self.closed = True

    @invariant()
    def no_traceback_logged(self) -> None:
        assert not self.errors.records, self.errors.records[:3]

    def teardown(self) -> None:
        try:
            if self.sock is not None and not self.closed:
                tag = self._tag()
                lines = self._exchange(tag + b" NOOP\r\n", tag=tag, answers=[])
                assert self.closed or lines[-1].startswith(tag + b" OK"), lines
        finally:
            self._hang_up()


def test_imap_session_fuzz(fuzz_server: _Server) -> None:
    errors = _Errors()
    logging.getLogger("mailserver").addHandler(errors)
    try:
        ImapFuzz.server = fuzz_server
        ImapFuzz.errors = errors
        run = ImapFuzz.TestCase
        run.settings = settings(
            max_examples=30 * SCALE,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        run().runTest()
    finally:
        logging.getLogger("mailserver").removeHandler(errors)
