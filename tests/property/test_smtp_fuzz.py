"""Fuzzing the SMTP front end (issue 15): hypothesis drives real MX and
submission sessions over a socket, statefully (EHLO, AUTH, MAIL, RCPT, DATA
with odd bodies, pipelined groups, raw bytes), against one server running in a
thread for the whole module. Whatever the input:

* every command line gets exactly one well-formed reply (``ddd`` then space or
  hyphen, CRLF, ASCII unless the session asked for SMTPUTF8), in time (no hang);
* the connection stays open unless the reply was 221 or 421 (or 220 to a
  STARTTLS, after which only TLS can follow);
* the server never answers a fault of its own (``4.3.0``) and logs no error.

Bounded here (``SMTP_FUZZ_EXAMPLES``, default 20 sequences of up to 30
steps); a longer run: ``SMTP_FUZZ_EXAMPLES=2000 python -m pytest
tests/property/test_smtp_fuzz.py`` (README, "Fuzzing"). A crash found becomes a
test in tests/clients/test_smtp_hardening.py.
"""

from __future__ import annotations

import asyncio
import base64
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
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from mailserver.app import App
from mailserver.auth import hash_password
from policy.settings import PolicySettings
from tests.conftest import make_config

ANNV = "annv@dongnai.gov.vn"
PASSWORD = "Mat-khau-that-dai-2026"
EXAMPLES = int(os.environ.get("SMTP_FUZZ_EXAMPLES", "20"))
REPLY_TIMEOUT = 30.0
_REPLY_LINE = re.compile(rb"([2-5]\d\d)([ -])([^\r\n]*)\r\n")


class Errors(logging.Handler):
    """ERROR records of the server (any thread)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class ServerThread:
    """An App on its own event loop in a thread, for synchronous hypothesis code."""

    def __init__(self, data_dir: Path) -> None:
        base = make_config(data_dir)
        self.config = replace(
            base,
            # Harvesting limits on but without the tarpit's delays (tested in
            # test_smtp_hardening); extraction in a thread, not processes.
            smtp=replace(base.smtp, soft_error_limit=0, hard_error_limit=6, max_connections_per_ip=0),
            policy=PolicySettings(workers=0),
        )
        self.ports: dict[str, int] = {}
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="smtp-fuzz-server", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            self._failure = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with App(self.config) as app:
            await app.store.create_account(ANNV, "An", hash_password(PASSWORD), must_change_password=False)
            self.ports = {name: port for name, (_, port) in app.addresses.items()}
            self._ready.set()
            await self._stop.wait()

    def start(self) -> None:
        self._thread.start()
        assert self._ready.wait(60), "server did not start"
        if self._failure is not None:
            raise self._failure

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerThread, Errors]]:
    errors = Errors()
    logging.getLogger().addHandler(errors)
    server = ServerThread(tmp_path_factory.mktemp("fuzz") / "data")
    server.start()
    try:
        yield server, errors
    finally:
        server.stop()
        logging.getLogger().removeHandler(errors)


# -- what clients say -------------------------------------------------------------------
_ADDRESSES = [
    "<annv@dongnai.gov.vn>", "<ANNV@DONGNAI.GOV.VN>", "<postmaster>", "<abuse@dongnai.gov.vn>",
    "<nobody@dongnai.gov.vn>", "<x@example.org>", "<>", "<@route,@r2:x@example.org>", '<"q\\"x"@example.org>',
    "<người@dongnai.gov.vn>", "<a\r@example.org>", "<a\x00b@example.org>", "<unterminated@example.org",
    "x@example.org", "<" + "l" * 80 + "@example.org>", "<a@[127.0.0.1]>", "<a@[IPv6:::1]>", "<a@>", "<@>",
]
_PARAMS = ["", " SIZE=10", " SIZE=99999999999", " BODY=8BITMIME", " BODY=BINARYMIME", " SMTPUTF8",
           " SIZE=", " NOTIFY=NEVER", " =x", " SIZE=1 SIZE=2", "\tBODY=7BIT"]
_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\n"), max_size=40)
_ARG = st.one_of(
    st.builds(lambda a, p: a + p, st.sampled_from(_ADDRESSES), st.sampled_from(_PARAMS)).map(str.encode),
    _TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.binary(max_size=60).map(lambda b: b.replace(b"\n", b"")),
)
_VERB = st.sampled_from([
    b"EHLO", b"HELO", b"MAIL FROM:", b"RCPT TO:", b"DATA", b"RSET", b"NOOP", b"VRFY", b"EXPN", b"HELP",
    b"QUIT", b"AUTH", b"AUTH PLAIN", b"AUTH LOGIN", b"BDAT", b"STARTTLS", b"mail from:", b"XCLIENT", b"",
    b"\x00", b"ehlo",
])
COMMAND = st.one_of(
    st.builds(lambda v, sep, a: v + sep + a, _VERB, st.sampled_from([b"", b" ", b"  ", b"\t"]), _ARG),
    st.sampled_from([b"EHLO client.example", b"MAIL FROM:<x@example.org>", b"RCPT TO:<annv@dongnai.gov.vn>",
                     b"MAIL FROM:<x@example.org> SMTPUTF8", b"RCPT TO:<postmaster>", b"DATA", b"RSET"]),
    st.binary(max_size=1200).map(lambda b: b.replace(b"\n", b"")),
)
SIMPLE = st.sampled_from([
    b"NOOP", b"RSET", b"VRFY x", b"MAIL FROM:<x@example.org>", b"RCPT TO:<annv@dongnai.gov.vn>",
    b"RCPT TO:<nobody@dongnai.gov.vn>", b"HELP", b"EXPN list", b"MAIL FROM:<a\x00@x>",
])
_BODY_LINE = st.one_of(
    st.sampled_from([b"From: <x@example.org>", b"From : <giamdoc@dongnai.gov.vn>", b" folded", b"Subject: x",
                     b"", b"..", b".x", b"x\rbare", b"x\nbare", b"nul\x00here", b"MIME-Version: 1.0",
                     b"Content-Type: multipart/mixed; boundary=b", b"--b", b"--b--", b"A" * 1200,
                     b"Content-Transfer-Encoding: base64", b"DKIM-Signature: v=1; d=example.org; b=x"]),
    st.binary(max_size=80).filter(lambda b: b"\r\n" not in b),
).filter(lambda line: line != b".")
BODY = st.lists(_BODY_LINE, max_size=25)


class SmtpSessions(RuleBasedStateMachine):
    """One client session per run; rules are what a client may send next."""

    server: ServerThread
    errors: Errors

    def __init__(self) -> None:
        super().__init__()
        self.sock: socket.socket | None = None
        self.buffer = b""
        self.in_data = False
        self.closed = False
        self.utf8 = False
        self.listener = "smtp"

    # -- wire ----------------------------------------------------------------------------
    def _line(self) -> bytes:
        assert self.sock is not None
        while b"\n" not in self.buffer:
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                raise AssertionError(f"no reply within {REPLY_TIMEOUT} s (hang)") from None
            assert chunk, f"connection dropped while a reply was due ({self.listener})"
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line + b"\n"

    def _reply(self) -> int:
        while True:
            line = self._line()
            match = _REPLY_LINE.fullmatch(line)
            assert match is not None, f"malformed reply line {line!r}"
            assert self.utf8 or line.isascii(), f"non-ASCII reply {line!r}"
            assert b" 4.3.0 " not in line, f"server fault: {line!r}"
            if match.group(2) == b" ":
                break
        code = int(match.group(1))
        if code in (221, 421) or (code == 220 and not self.in_data):
            self.closed = True  # QUIT, a 421, or STARTTLS: only TLS may follow
        return code

    def _send(self, data: bytes) -> None:
        assert self.sock is not None
        self.sock.sendall(data)

    def _command(self, line: bytes) -> int:
        if b"SMTPUTF8" in line.upper():
            self.utf8 = True
        self._send(line + b"\r\n")
        code = self._reply()
        self.in_data = code == 354
        return code

    # -- rules ---------------------------------------------------------------------------
    @initialize(listener=st.sampled_from(["smtp", "submission"]), ehlo=st.booleans())
    def connect(self, listener: str, ehlo: bool) -> None:
        self.listener = listener
        address = ("127.0.0.1", self.server.ports[listener])
        self.sock = socket.create_connection(address, timeout=REPLY_TIMEOUT)
        assert self._reply() == 220
        self.closed = False
        if ehlo:
            assert self._command(b"EHLO client.example") == 250

    @precondition(lambda self: self.closed)
    @rule(listener=st.sampled_from(["smtp", "submission"]))
    def reconnect(self, listener: str) -> None:
        if self.sock is not None:
            self.sock.close()
        self.buffer, self.in_data, self.utf8 = b"", False, False
        self.connect(listener, True)

    @precondition(lambda self: not self.closed and not self.in_data)
    @rule(line=COMMAND)
    def command(self, line: bytes) -> None:
        self._command(line)

    @precondition(lambda self: not self.closed and not self.in_data and self.listener == "submission")
    @rule(right=st.booleans())
    def authenticate(self, right: bool) -> None:
        password = PASSWORD if right else "wrong"
        token = base64.b64encode(f"\0{ANNV}\0{password}".encode())
        self._command(b"AUTH PLAIN " + token)

    @precondition(lambda self: not self.closed and not self.in_data)
    @rule(lines=st.lists(SIMPLE, min_size=2, max_size=6))
    def pipelined(self, lines: list[bytes]) -> None:
        self._send(b"".join(line + b"\r\n" for line in lines))
        for _ in lines:
            self._reply()
            if self.closed:
                break

    @precondition(lambda self: not self.closed and self.in_data)
    @rule(lines=BODY)
    def data(self, lines: list[bytes]) -> None:
        self._send(b"".join(line + b"\r\n" for line in lines) + b".\r\n")
        self.in_data = False
        self._reply()

    @invariant()
    def no_server_errors(self) -> None:
        assert not self.errors.records, [r.getMessage() for r in self.errors.records]

    def teardown(self) -> None:
        if self.sock is not None:
            self.sock.close()


def test_smtp_front_end_fuzz(fuzz_server: tuple[ServerThread, Errors]) -> None:
    server, errors = fuzz_server
    SmtpSessions.server, SmtpSessions.errors = server, errors
    errors.records.clear()
    run_state_machine_as_test(SmtpSessions, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=30, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    ))
