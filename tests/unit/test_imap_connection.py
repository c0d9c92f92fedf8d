"""The sans-IO ``Connection`` (h11 style): literals, continuation requests, raw
lines after IDLE, the limits switched at login and pipelined commands, fed a
byte at a time or all at once. One real SQLite store, no sockets."""

from __future__ import annotations

import pytest

from mailserver.auth import Authenticator, hash_password
from mailserver.config import AuthSettings, ImapSettings
from mailserver.imap.connection import LITERAL_CONTINUATION, NEED_DATA, Connection
from mailserver.imap.parser import BadCommand, Command, RawLine
from mailserver.imap.responses import Continuation
from mailserver.imap.session import Session
from storage.api import MailStore

ADDRESS = "annv@dongnai.gov.vn"
PASSWORD = "S3cret-pass-word"


@pytest.fixture
async def connection(store: MailStore) -> Connection:
    await store.create_account(ADDRESS, "An", hash_password(PASSWORD), must_change_password=False)
    settings = ImapSettings(max_preauth_literal=100, max_literal=5000)
    session = Session(
        store,
        Authenticator(store, AuthSettings(failure_delay=0)),
        settings,
        secure=True,
        remote_ip="127.0.0.1",
        starttls_available=False,
    )
    return Connection(session, settings)


async def run(conn: Connection, data: bytes, *, bytewise: bool = False) -> list[str]:
    """Feed ``data``; the wire lines sent back (continuations included)."""
    out: list[str] = []
    for chunk in [data[i : i + 1] for i in range(len(data))] if bytewise else [data]:
        conn.receive_data(chunk)
        while (event := conn.next_event()) is not NEED_DATA:
            if isinstance(event, Continuation):
                out.append(event.to_bytes().decode().rstrip("\r\n"))
                continue
            assert isinstance(event, Command | BadCommand | RawLine)
            for resp in await conn.session.handle(event):
                out += resp.to_bytes().decode().split("\r\n")[:-1]
    return out


@pytest.mark.parametrize("bytewise", [False, True])
async def test_synchronising_literal_gets_one_continuation(connection: Connection, bytewise: bool) -> None:
    data = b"a1 LOGIN {19}\r\n" + ADDRESS.encode() + b" {16+}\r\n" + PASSWORD.encode() + b"\r\n"
    got = await run(connection, data, bytewise=bytewise)
    assert got[0] == LITERAL_CONTINUATION.to_bytes().decode().rstrip("\r\n")
    assert got.count("+ Ready for literal") == 1  # none for the LITERAL+ one
    assert got[-1].startswith("a1 OK")


async def test_limits_switch_at_login_for_pipelined_commands(connection: Connection) -> None:
    # Before login a 200-octet literal is over max_preauth_literal; after the
    # LOGIN in the same packet, the same literal fits max_literal.
    big = b"x" * 200
    before = await run(connection, b"a0 LOGIN {200}\r\n")
    assert before == ["a0 BAD [TOOBIG] Literal too large"]
    got = await run(
        connection,
        f"a1 LOGIN {ADDRESS} {PASSWORD}\r\na2 APPEND INBOX {{200+}}\r\n".encode() + big + b"\r\na3 NOOP\r\n",
    )
    assert [line.split(" ")[:2] for line in got] == [["a1", "OK"], ["a2", "OK"], ["a3", "OK"]]
    assert connection.logged_in and connection.parser.max_literal == 5000


async def test_idle_lines_are_raw_until_done(connection: Connection) -> None:
    await run(connection, f"a1 LOGIN {ADDRESS} {PASSWORD}\r\na2 SELECT INBOX\r\n".encode())
    got = await run(connection, b"a3 IDLE\r\n")
    assert got == ["+ idling"]
    assert connection.session.idling
    got = await run(connection, b"DONE\r\n")
    assert got == ["a3 OK IDLE terminated"]
    # Commands again after DONE.
    assert await run(connection, b"a4 NOOP\r\n") == ["a4 OK NOOP completed"]


async def test_bytes_received_while_events_wait_are_fed_after_them(connection: Connection) -> None:
    connection.receive_data(f"a1 LOGIN {ADDRESS} {PASSWORD}\r\n".encode())
    connection.receive_data(b"a2 APPEND INBOX {200+}\r\n" + b"y" * 200 + b"\r\n")
    event = connection.next_event()
    assert isinstance(event, Command)
    await connection.session.handle(event)  # the LOGIN runs before the APPEND is parsed
    event = connection.next_event()
    assert isinstance(event, Command) and event.tag == "a2"
    assert connection.next_event() is NEED_DATA


async def test_drop_buffered_forgets_everything(connection: Connection) -> None:
    connection.receive_data(b"a1 NOOP\r\na2 NOOP\r\na3 NO")
    assert connection.drop_buffered() > 0
    assert connection.next_event() is NEED_DATA
    assert not connection.pending
