"""IMAP hardening (issue 15) over real sockets: what an unauthenticated or hostile
client can take (literal size before login, slow-drip commands, the login
deadline, connection caps), STARTTLS command injection (CVE-2011-0411 class),
numbers beyond RFC 9051's ranges, SEARCH cost limits, Dovecot-style whitespace
in lists and ASCII response text. The memory goal with clients that do not read
a large FETCH runs against a ``mailserver serve`` subprocess in
tests/ops/test_memory_goal.py."""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import socket
import ssl
import unicodedata
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import pytest

from mailserver.app import App
from mailserver.auth import hash_password
from mailserver.config import Config
from tests.conftest import RunningServer, eventually, make_config

T = TypeVar("T")
ANNV = "annv@dongnai.gov.vn"
PASSWORD = "S3cret-pass-word"


class Client:
    """A line-level IMAP client over a socket (what libraries hide)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.greeting = b""

    @classmethod
    async def connect(cls, port: int) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(reader, writer)
        client.greeting = await client.line()
        return client

    async def line(self, timeout: float = 30) -> bytes:
        return await asyncio.wait_for(self.reader.readline(), timeout)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def command(self, tag: bytes, data: bytes) -> list[bytes]:
        await self.send(tag + b" " + data + b"\r\n")
        return await self.until(tag)

    async def until(self, tag: bytes) -> list[bytes]:
        lines = []
        while True:
            line = await self.line()
            assert line, f"connection closed; got {lines!r}"
            lines.append(line)
            if line.startswith(tag + b" "):
                return lines

    async def login(self) -> None:
        assert (await self.command(b"l", f"LOGIN {ANNV} {PASSWORD}".encode()))[-1].startswith(b"l OK")

    async def rest(self, timeout: float = 60) -> list[bytes]:
        """Every line until the server closes the connection."""
        lines = []
        while line := await self.line(timeout):
            lines.append(line)
        return lines

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, ssl.SSLError):
            pass


async def in_thread(fn: Callable[[], T]) -> T:
    return await asyncio.to_thread(fn)


def with_imap(config: Config, **changes: Any) -> Config:
    return replace(config, imap=replace(config.imap, **changes))


@contextlib.asynccontextmanager
async def tuned(tmp_path: Path, **imap: Any) -> AsyncIterator[RunningServer]:
    """A server over SQLite with the [imap] settings given, and ANNV's account."""
    config = with_imap(make_config(tmp_path / "data"), **imap)
    async with App(config) as app:
        running = RunningServer(app, config)
        await running.add_account(ANNV, PASSWORD)
        yield running


@pytest.fixture
async def annv(server: RunningServer) -> RunningServer:
    await server.add_account(ANNV, PASSWORD)
    return server


# -- memory an unauthenticated client can take -----------------------------------------------
async def test_preauth_literal_limit(annv: RunningServer) -> None:
    limit = annv.config.imap.max_preauth_literal
    assert limit == 8192  # the documented default
    client = await Client.connect(annv.port("imap"))
    # Above the limit: BAD [TOOBIG] at once, no continuation (the client sends nothing more).
    await client.send(b"a LOGIN {%d}\r\n" % (limit + 1))
    assert (await client.line()).startswith(b"a BAD [TOOBIG]")
    assert (await client.command(b"b", b"NOOP"))[-1].startswith(b"b OK")
    # At the limit: the continuation, and the command runs.
    await client.send(b"c LOGIN {%d}\r\n" % limit)
    assert (await client.line()).startswith(b"+ ")
    await client.send(b"x" * limit + b" password\r\n")
    assert (await client.line()).startswith(b"c NO [AUTHENTICATIONFAILED]")
    # Logged in, the literal may be as large as imap.max_literal (an APPEND).
    await client.login()
    message = b"Subject: big\r\n\r\n" + b"y" * (4 * limit) + b"\r\n"
    await client.send(b"d APPEND INBOX {%d}\r\n" % len(message))
    assert (await client.line()).startswith(b"+ ")
    await client.send(message + b"\r\n")
    assert (await client.until(b"d"))[-1].startswith(b"d OK [APPENDUID")
    await client.close()


async def test_preauth_nonsync_literal_over_limit_ends_connection(annv: RunningServer) -> None:
    client = await Client.connect(annv.port("imap"))
    size = 4 * 1024 * 1024
    await client.send(b"a LOGIN {%d+}\r\n" % size)
    try:
        await client.send(b"x" * size)  # the server may close before it has all of it
    except ConnectionError:
        pass
    lines = await client.rest()
    assert lines[0].startswith(b"a BAD [TOOBIG]"), lines
    assert lines[1].startswith(b"* BYE"), lines
    await client.close()
    # Logged in, an oversized LITERAL+ is still skipped and the session goes on.
    client = await Client.connect(annv.port("imap"))
    await client.login()
    size = annv.config.imap.max_literal + 1
    await client.send(b"b APPEND INBOX {%d+}\r\n" % size + b"x" * size + b"\r\n")
    assert (await client.line()).startswith(b"b BAD [TOOBIG]")
    assert (await client.command(b"c", b"NOOP"))[-1].startswith(b"c OK")
    await client.close()


async def test_command_dripped_byte_by_byte_is_cut(tmp_path: Path) -> None:
    async with tuned(tmp_path, command_timeout=1, login_timeout=600, timeout=600) as server:
        # Before: the pre-auth timeout restarted on every byte, so this held forever.
        client = await Client.connect(server.port("imap"))

        async def drip() -> None:
            with_pause = b"a LOGIN " + b"x" * 10_000
            for byte in with_pause:
                await client.send(bytes([byte]))
                await asyncio.sleep(0.05)

        dripping = asyncio.ensure_future(drip())
        try:
            lines = await client.rest()
        finally:
            dripping.cancel()
        assert lines and lines[-1].startswith(b"* BYE") and b"Command timeout" in lines[-1], lines
        await client.close()


async def test_endless_line_after_login_is_cut(tmp_path: Path) -> None:
    """A line longer than imap.max_line is refused (BAD [TOOBIG]) and the rest of it
    skipped; one that never ends is cut at the command deadline all the same."""
    async with tuned(tmp_path, command_timeout=1, timeout=600, autologout=600) as server:
        client = await Client.connect(server.port("imap"))
        await client.login()
        await client.send(b"a NOOP " + b"x" * 70_000)
        assert (await client.line()).startswith(b"a BAD [TOOBIG]")

        async def drip() -> None:
            for _ in range(100_000):
                await client.send(b"x" * 100)
                await asyncio.sleep(0.02)

        dripping = asyncio.ensure_future(drip())
        try:
            lines = await client.rest()
        finally:
            dripping.cancel()
        assert lines and lines[-1].startswith(b"* BYE") and b"Command timeout" in lines[-1], lines
        await client.close()


async def test_literal_dripped_is_cut(tmp_path: Path) -> None:
    async with tuned(tmp_path, command_timeout=1, login_timeout=600, timeout=600) as server:
        client = await Client.connect(server.port("imap"))
        await client.send(b"a LOGIN {4000}\r\n")
        assert (await client.line()).startswith(b"+ ")

        async def drip() -> None:
            for _ in range(4000):
                await client.send(b"z")
                await asyncio.sleep(0.05)

        dripping = asyncio.ensure_future(drip())
        try:
            lines = await client.rest()
        finally:
            dripping.cancel()
        assert lines and lines[-1].startswith(b"* BYE") and b"Command timeout" in lines[-1], lines
        await client.close()


async def test_login_deadline_is_absolute(tmp_path: Path) -> None:
    """Complete commands (NOOP) keep coming, but no login: cut at imap.login_timeout."""
    async with tuned(tmp_path, login_timeout=1, timeout=600) as server:
        client = await Client.connect(server.port("imap"))
        answered = 0
        lines: list[bytes] = []
        while True:
            try:
                await client.send(b"n%d NOOP\r\n" % answered)
                line = await client.line()
            except ConnectionError:
                break
            if not line.startswith(b"n%d OK" % answered):
                lines = [line, *await client.rest()]
                break
            answered += 1
            assert answered < 10_000, "never cut"
            await asyncio.sleep(0.02)
        assert any(line.startswith(b"* BYE") and b"Login timeout" in line for line in lines), lines
        await client.close()


async def test_connections_per_address_capped(tmp_path: Path) -> None:
    async with tuned(tmp_path, max_connections_per_ip=3) as server:
        port = server.port("imap")
        held = [await Client.connect(port) for _ in range(3)]
        assert all(c.greeting.startswith(b"* OK") for c in held)
        refused = await Client.connect(port)
        assert refused.greeting.startswith(b"* BYE") and b"Too many connections" in refused.greeting
        assert await refused.rest() == []
        await refused.close()
        await held.pop().close()

        async def admitted() -> bool:
            client = await Client.connect(port)
            ok = client.greeting.startswith(b"* OK")
            if ok:
                held.append(client)
            else:
                await client.close()
            return ok

        await eventually(admitted, "a connection admitted once one of the three closed")
        for client in held:
            await client.close()


async def test_connections_capped_overall(tmp_path: Path) -> None:
    async with tuned(tmp_path, max_connections=2, max_connections_per_ip=100) as server:
        port = server.port("imap")
        held = [await Client.connect(port) for _ in range(2)]
        refused = await Client.connect(port)
        assert refused.greeting.startswith(b"* BYE"), refused.greeting
        await refused.close()
        for client in held:
            await client.close()


async def test_connections_per_account_capped(tmp_path: Path) -> None:
    async with tuned(tmp_path, max_connections_per_user=2) as server:
        port = server.port("imap")
        first, second, third = [await Client.connect(port) for _ in range(3)]
        await first.login()
        await second.login()
        lines = await third.command(b"a", f"LOGIN {ANNV} {PASSWORD}".encode())
        assert lines[-1].startswith(b"a NO [LIMIT]"), lines
        # AUTHENTICATE is counted the same way.
        import base64

        plain = base64.b64encode(f"\0{ANNV}\0{PASSWORD}".encode())
        lines = await third.command(b"b", b"AUTHENTICATE PLAIN " + plain)
        assert lines[-1].startswith(b"b NO [LIMIT]"), lines
        assert (await first.command(b"z", b"LOGOUT"))[-1].startswith(b"z OK")
        await first.close()

        async def logs_in() -> bool:
            return (await third.command(b"c", f"LOGIN {ANNV} {PASSWORD}".encode()))[-1].startswith(b"c OK")

        await eventually(logs_in, "a login once a slot was given back")
        # imaplib sees a clear refusal too.
        def refused() -> str:
            m = imaplib.IMAP4("127.0.0.1", port)
            try:
                m.login(ANNV, PASSWORD)
            except imaplib.IMAP4.error as exc:
                return str(exc)
            finally:
                m.shutdown()
            return "logged in"

        assert "[LIMIT]" in await in_thread(refused)
        await second.close()
        await third.close()


# -- STARTTLS command injection (CVE-2011-0411) -------------------------------------------------
def starttls_with_injection(port: int) -> tuple[list[bytes], list[bytes]]:
    """Pipeline STARTTLS and a LOGIN in one write, then handshake; the plaintext after
    STARTTLS is padded so that it sits beyond the server's first read (65,536
    octets), in the stream reader's buffer rather than the parser's."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    reader = sock.makefile("rb")
    assert reader.readline().startswith(b"* OK")
    starttls = b"a STARTTLS\r\n"
    pad = b"p " + b"x" * (65536 - len(starttls) - 4) + b"\r\n"  # one BAD command, 65,524 octets
    injected = f"b LOGIN {ANNV} {PASSWORD}\r\nc SELECT INBOX\r\n".encode()
    assert len(pad + starttls) == 65536
    sock.sendall(pad + starttls + injected)
    plain = []
    while not (line := reader.readline()).startswith(b"a "):
        assert line, plain
        plain.append(line)
    plain.append(line)
    assert line.startswith(b"a OK"), plain
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    tls = context.wrap_socket(sock, server_hostname="localhost")
    tls_reader = tls.makefile("rb")
    tls.sendall(b"d NOOP\r\ne SELECT INBOX\r\n")
    secure = []
    while not (line := tls_reader.readline()).startswith(b"e "):
        assert line, secure
        secure.append(line)
    secure.append(line)
    tls.close()
    return plain, secure


async def test_starttls_discards_plaintext_sent_before_the_handshake(annv: RunningServer) -> None:
    plain, secure = await in_thread(lambda: starttls_with_injection(annv.port("imap")))
    assert plain[0].startswith(b"p BAD"), plain
    # Nothing sent in clear ran over TLS: no answer to b or c, and not logged in.
    assert not [line for line in secure if line.startswith((b"b ", b"c "))], secure
    assert secure[-2].startswith(b"d OK"), secure
    assert secure[-1].startswith(b"e BAD"), secure  # SELECT before login


async def test_starttls_then_normal_session(annv: RunningServer) -> None:
    def run() -> None:
        m = imaplib.IMAP4("127.0.0.1", annv.port("imap"))
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        assert m.starttls(context)[0] == "OK"
        assert m.login(ANNV, PASSWORD)[0] == "OK"
        assert m.select("INBOX")[0] == "OK"
        m.logout()

    await in_thread(run)


# -- numbers, SEARCH cost, liberal lists -------------------------------------------------------
@pytest.fixture
async def selected(any_server: RunningServer) -> AsyncIterator[Client]:
    """Three messages in a selected INBOX; on SQLite and PostgreSQL (numbers reach the store)."""
    await any_server.add_account(ANNV, PASSWORD)
    client = await Client.connect(any_server.port("imap"))
    await client.login()
    for n in range(3):
        msg = f"Subject: m{n}\r\nFrom: a@example.org\r\n\r\nbody {n}\r\n".encode()
        await client.send(b"a APPEND INBOX (\\Seen) {%d+}\r\n" % len(msg) + msg + b"\r\n")
        assert (await client.until(b"a"))[-1].startswith(b"a OK")
    assert (await client.command(b"s", b"SELECT INBOX"))[-1].startswith(b"s OK")
    yield client
    await client.close()


async def status(client: Client, tag: bytes, command: bytes) -> bytes:
    lines = await client.command(tag, command)
    assert not any(b"SERVERBUG" in line for line in lines), lines
    return lines[-1][len(tag) + 1 :].split(b" ", 1)[0]


BEYOND_RANGE: list[bytes] = [
    b"SEARCH LARGER 99999999999999999999",
    b"SEARCH SMALLER 9223372036854775808",
    b"SEARCH MODSEQ 9223372036854775808",
    b"SEARCH 4294967296",
    b"SEARCH UID 1:4294967296",
    b"FETCH 1:4294967296 FLAGS",
    b"UID FETCH 99999999999999999999 FLAGS",
    b"FETCH 1 (FLAGS) (CHANGEDSINCE 9223372036854775808)",
    b"STORE 1 (UNCHANGEDSINCE 99999999999999999999) +FLAGS (\\Seen)",
    b"FETCH 1 BODY[4294967296]",
    b"FETCH 1 BODY[1.99999999999999999999]",
    b"FETCH 1 BODY[]<0.9223372036854775808>",
    b"SEARCH BEFORE 99999999999-Jan-2024",
    b"COPY 1:99999999999 INBOX",
]
AT_THE_LIMITS: list[bytes] = [
    b"SEARCH LARGER 9223372036854775807",
    b"SEARCH SMALLER 9223372036854775807",
    b"SEARCH MODSEQ 9223372036854775807",
    b"SEARCH NOT LARGER 4294967295",
    b"UID SEARCH UID 1:4294967295",
    b"UID FETCH 4294967295 FLAGS",
    b"FETCH 1:4294967295 FLAGS",
    b"FETCH 1 (FLAGS) (CHANGEDSINCE 9223372036854775807)",
    b"FETCH 1 BODY.PEEK[]<0.9223372036854775807>",
    b"FETCH 1 BODY.PEEK[]<9223372036854775807.1>",
    b"STORE 1 (UNCHANGEDSINCE 9223372036854775807) +FLAGS (\\Seen)",
]


async def test_numbers_beyond_rfc9051_are_bad(selected: Client) -> None:
    """number and nz-number are 32-bit, number64 63-bit (RFC 9051 section 9): beyond,
    BAD - before, a traceback and NO [SERVERBUG] (SQLite cannot bind the integer)."""
    answers = {command: await status(selected, b"t", command) for command in BEYOND_RANGE}
    assert answers == dict.fromkeys(BEYOND_RANGE, b"BAD")
    answers = {command: await status(selected, b"t", command) for command in AT_THE_LIMITS}
    assert answers == dict.fromkeys(AT_THE_LIMITS, b"OK")
    lines = await selected.command(b"a", b"SEARCH SMALLER 9223372036854775807")
    assert lines[0] == b"* SEARCH 1 2 3\r\n"
    lines = await selected.command(b"b", b"SEARCH LARGER 9223372036854775807")
    assert lines[0] == b"* SEARCH\r\n"


async def test_search_key_limit(selected: Client) -> None:
    limit = 200  # imap.max_search_keys
    many = b" ".join([b"SEEN"] * (limit + 1))
    lines = await selected.command(b"a", b"SEARCH " + many)
    assert lines[-1].startswith(b"a NO [LIMIT]"), lines
    nested = b"OR " * (limit // 2) + b"SEEN " * (limit // 2 + 1)
    lines = await selected.command(b"b", b"SEARCH " + nested.strip())
    assert lines[-1].startswith(b"b NO [LIMIT]") or lines[-1].startswith(b"b BAD"), lines
    lines = await selected.command(b"c", b"SEARCH " + b" ".join([b"SEEN"] * limit))
    assert lines[-1].startswith(b"c OK"), lines


async def test_search_time_budget(tmp_path: Path) -> None:
    async with tuned(tmp_path, search_time_budget=0.0) as server:
        client = await Client.connect(server.port("imap"))
        await client.login()
        msg = b"Subject: x\r\n\r\nnoi dung\r\n"
        await client.send(b"a APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
        assert (await client.until(b"a"))[-1].startswith(b"a OK")
        assert (await client.command(b"s", b"SELECT INBOX"))[-1].startswith(b"s OK")
        # BODY reads the message files: over a zero budget at the first one.
        lines = await client.command(b"b", b"SEARCH BODY dung")
        assert lines[-1].startswith(b"b NO [LIMIT]"), lines
        # What the index answers reads no file and is not limited.
        lines = await client.command(b"c", b"SEARCH UNSEEN SUBJECT x")
        assert lines == [b"* SEARCH 1\r\n", lines[-1]] and lines[-1].startswith(b"c OK"), lines
        await client.close()


LIBERAL: list[tuple[bytes, bytes]] = [
    (b"SEARCH ( OR SEEN FLAGGED ) BEFORE 1-Jun-2099", b"* SEARCH 1 2 3\r\n"),
    (b"SEARCH (SEEN  UNFLAGGED )", b"* SEARCH 1 2 3\r\n"),
    (b"SEARCH RETURN ( COUNT ) ( SEEN )", b'* ESEARCH (TAG "t") COUNT 3\r\n'),
    (b"FETCH 1 ( UID FLAGS )", b"* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent))\r\n"),
    (b"FETCH 1 (UID  FLAGS)", b"* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent))\r\n"),
    (b"FETCH 1 (BODY.PEEK[HEADER.FIELDS ( SUBJECT )])",
     b"* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {15}\r\n"),
    (b"STORE 1 +FLAGS ( \\Flagged )", b"* 1 FETCH (FLAGS (\\Flagged \\Seen \\Recent))\r\n"),
    (b"STATUS INBOX ( MESSAGES UIDNEXT )", b"* STATUS INBOX (MESSAGES 3 UIDNEXT 4)\r\n"),
    (b'LIST "" ( INBOX ) RETURN ( CHILDREN )', b'* LIST (\\HasNoChildren) "/" INBOX\r\n'),
    (b'ID ( "name" "test" )',
     b'* ID ("name" "dongnai-mailserver" "vendor" "Dong Nai" "version" "0.1.0")\r\n'),
]


async def test_spaces_inside_parentheses_accepted(selected: Client) -> None:
    """Dovecot accepts spaces just inside the parentheses of a list; so do we."""
    for command, first in LIBERAL:
        lines = await selected.command(b"t", command)
        assert lines[-1].startswith(b"t OK"), lines
        assert lines[0] == first, lines


# -- response text ---------------------------------------------------------------------------------
async def test_password_change_text_is_ascii_and_names_the_portal(server: RunningServer) -> None:
    await server.app.store.create_account(ANNV, "An", hash_password(PASSWORD), must_change_password=True)

    def refused() -> str:
        m = imaplib.IMAP4("127.0.0.1", server.port("imap"))
        try:
            m.login(ANNV, PASSWORD)
        except imaplib.IMAP4.error as exc:
            return str(exc)
        finally:
            m.shutdown()
        return "logged in"

    text = await in_thread(refused)
    assert "[EXPIRED]" in text
    assert "Mat khau ban dau hoac da het han" in text, text
    assert f"https://{server.config.server.hostname}/password" in text, text
    # On the wire: ASCII only.
    client = await Client.connect(server.port("imap"))
    lines = await client.command(b"a", f"LOGIN {ANNV} {PASSWORD}".encode())
    assert lines[-1].isascii() and lines[-1].startswith(b"a NO [EXPIRED]"), lines
    await client.close()


async def test_public_url_is_named(tmp_path: Path) -> None:
    base = make_config(tmp_path / "data")
    config = replace(base, web=replace(base.web, public_url="https://thudientu.dongnai.gov.vn/"))
    async with App(config) as app:
        await app.store.create_account(ANNV, "An", hash_password(PASSWORD), must_change_password=True)
        client = await Client.connect(app.addresses["imap"][1])
        lines = await client.command(b"a", f"LOGIN {ANNV} {PASSWORD}".encode())
        assert b"https://thudientu.dongnai.gov.vn/password " in lines[-1], lines
        await client.close()


async def test_utf8_text_only_once_enabled(selected: Client) -> None:
    lines = await selected.command(b"a", b"SETACL INBOX binhtt@dongnai.gov.vn lrs")
    refusal = "NO [CANNOT] Hộp thư cá nhân không chia sẻ được / Personal mailboxes cannot be shared\r\n"
    ascii_refusal = unicodedata.normalize("NFKD", refusal.replace("đ", "d")).encode("ascii", "ignore")
    assert lines[-1] == b"a " + ascii_refusal
    assert (await selected.command(b"b", b"ENABLE IMAP4rev2"))[-1].startswith(b"b OK")
    lines = await selected.command(b"c", b"SETACL INBOX binhtt@dongnai.gov.vn lrs")
    assert lines[-1].decode() == "c " + refusal
