"""ManageSieve (RFC 5804) over a real socket to a real server: every command,
the response codes, STARTTLS, SASL PLAIN/LOGIN, agency delegation and bad input
(NO or BYE with a reason, never a traceback, hang or silent close)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import pytest

from mailserver.ops.sieve import DEFAULT_MAX_SCRIPT_SIZE
from storage.sieve import sieve_scripts_for
from tests.conftest import RunningServer

from .conftest import SieveClient, literal

T = TypeVar("T")
USER = "annv@dongnai.gov.vn"
PASSWORD = "S3cret-pass-word"
SCRIPT = 'require "fileinto";\r\nif header :contains "subject" "Báo cáo" { fileinto "Báo cáo"; }\r\n'


async def in_thread(fn: Callable[[], T]) -> T:
    return await asyncio.to_thread(fn)


@pytest.fixture
async def sieve(server: RunningServer) -> AsyncIterator[tuple[RunningServer, int]]:
    await server.add_account(USER, PASSWORD, "Nguyễn Văn An")
    yield server, server.port("managesieve")


def _session(port: int) -> list[tuple[bytes, list[bytes]]]:
    """Every command once, in order; the transcript."""
    client = SieveClient(port)
    log: list[tuple[bytes, list[bytes]]] = [(b"", client.response())]

    def say(data: bytes) -> list[bytes]:
        answer = client.command(data)
        log.append((data, answer))
        return answer

    log.append((b"STARTTLS", client.starttls()))
    say(b'AUTHENTICATE "PLAIN" "' + base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()) + b'"\r\n')
    say(b"CAPABILITY\r\n")
    say('HAVESPACE "lọc" 100\r\n'.encode())
    say('PUTSCRIPT "lọc" '.encode() + literal(SCRIPT) + b"\r\n")
    say('PUTSCRIPT "khác" {6}\r\nkeep;\n\r\n'.encode())  # synchronising form accepted too
    say(b"LISTSCRIPTS\r\n")
    say('SETACTIVE "lọc"\r\n'.encode())
    say(b"LISTSCRIPTS\r\n")
    say('GETSCRIPT "lọc"\r\n'.encode())
    say('DELETESCRIPT "lọc"\r\n'.encode())
    say('RENAMESCRIPT "khác" "lọc"\r\n'.encode())
    say('RENAMESCRIPT "khác" "mới"\r\n'.encode())
    say('DELETESCRIPT "mới"\r\n'.encode())
    say(b'GETSCRIPT "nope"\r\n')
    say(b"CHECKSCRIPT " + literal("keep;\n") + b"\r\n")
    say(b'NOOP "abc"\r\n')
    say(b'SETACTIVE ""\r\n')
    say('DELETESCRIPT "lọc"\r\n'.encode())
    say(b"UNAUTHENTICATE\r\n")
    say(b"LISTSCRIPTS\r\n")
    say(b"LOGOUT\r\n")
    client.close()
    return log


async def test_every_command(sieve: tuple[RunningServer, int]) -> None:
    server, port = sieve
    log = await in_thread(lambda: _session(port))
    answers = [answer for _, answer in log]
    greeting = b"".join(answers[0])
    assert b'"SASL" "PLAIN LOGIN"' in greeting  # loopback: allowed before TLS
    assert b'"STARTTLS"' in greeting and b'"VERSION" "1.0"' in greeting and b'"SIEVE" "' in greeting
    after_tls = b"".join(answers[1])
    assert b'"STARTTLS"' not in after_tls and after_tls.endswith(b"\r\n") and answers[1][-1].startswith(b"OK")
    (
        _,
        _,
        auth,
        capability,
        havespace,
        put1,
        put2,
        list1,
        setactive,
        list2,
        get,
        del_active,
        rename_taken,
        rename,
        delete,
        get_missing,
        check,
        noop,
        deactivate,
        delete_last,
        unauth,
        list_after,
        logout,
    ) = answers
    assert auth[-1].startswith(b"OK")
    assert b'"OWNER" "annv@dongnai.gov.vn"' in b"".join(capability)
    assert havespace == [b'OK "Putscript would succeed"\r\n']
    assert put1[-1].startswith(b"OK") and put2[-1].startswith(b"OK")
    assert list1[:-1] == ['"khác"\r\n'.encode(), '"lọc"\r\n'.encode()]
    assert setactive[-1].startswith(b"OK")
    assert list2[:-1] == ['"khác"\r\n'.encode(), '"lọc" ACTIVE\r\n'.encode()]
    data = SCRIPT.encode()
    assert get[0] == b"{%d}\r\n" % len(data) + data + b"\r\n" and get[1].startswith(b"OK")
    assert del_active[-1].startswith(b"NO (ACTIVE)")
    assert rename_taken[-1].startswith(b"NO (ALREADYEXISTS)")
    assert rename[-1].startswith(b"OK") and delete[-1].startswith(b"OK")
    assert get_missing[-1].startswith(b"NO (NONEXISTENT)")
    assert check[-1].startswith(b"OK")
    assert noop == [b'OK (TAG "abc") "Done"\r\n']
    assert deactivate[-1].startswith(b"OK") and delete_last[-1].startswith(b"OK")
    assert unauth[-1].startswith(b"OK")
    assert list_after[-1].startswith(b"NO")
    assert logout[-1].startswith(b"OK")
    assert await sieve_scripts_for(server.app.store).list_scripts(USER) == []


def _quota(port: int, max_size: int) -> list[list[bytes]]:
    client = SieveClient(port)
    client.response()
    client.login(USER, PASSWORD)
    out = [
        client.command(b'HAVESPACE "big" %d\r\n' % (max_size + 1)),
        client.command(b'PUTSCRIPT "big" ' + literal("#" * (max_size + 1)) + b"\r\n"),
        client.command(b'PUTSCRIPT "bad\\"name" "keep;"\r\n'),
        client.command(b'PUTSCRIPT "a\\\\b" "keep;"\r\n'),
        client.command(b'PUTSCRIPT "broken" ' + literal('require "fileinto";\nfileinto "x"\n') + b"\r\n"),
        client.command(b"CHECKSCRIPT " + literal("frobnicate;\n") + b"\r\n"),
    ]
    client.close()
    return out


async def test_size_limit(sieve: tuple[RunningServer, int]) -> None:
    _, port = sieve
    havespace, put, quoted_ok, escaped, broken, check = await in_thread(
        lambda: _quota(port, DEFAULT_MAX_SCRIPT_SIZE)
    )
    assert havespace[-1].startswith(b"NO (QUOTA/MAXSIZE)")
    assert put[-1].startswith(b"NO (QUOTA/MAXSIZE)")
    assert quoted_ok[-1].startswith(b"OK") and escaped[-1].startswith(b"OK")
    # Not valid Sieve: NO with line:column (the compiler of mailserver/sieve).
    assert broken[-1].startswith(b"NO") and b"3:1: expected ';'" in broken[-1], broken
    assert check[-1].startswith(b"NO") and b"1:1: frobnicate: unknown command" in check[-1], check


def _count(port: int) -> list[list[bytes]]:
    client = SieveClient(port)
    client.response()
    client.login(USER, PASSWORD)
    answers = [client.command(f'PUTSCRIPT "s{i}" "keep;"\r\n'.encode()) for i in range(21)]
    answers.append(client.command(b'HAVESPACE "s99" 10\r\n'))
    answers.append(client.command(b'HAVESPACE "s0" 10\r\n'))
    client.close()
    return answers


async def test_script_count_limit(sieve: tuple[RunningServer, int]) -> None:
    _, port = sieve
    answers = await in_thread(lambda: _count(port))
    assert all(a[-1].startswith(b"OK") for a in answers[:20])
    assert answers[20][-1].startswith(b"NO (QUOTA/MAXSCRIPTS)")
    assert answers[21][-1].startswith(b"NO (QUOTA/MAXSCRIPTS)")
    assert answers[22][-1].startswith(b"OK")  # replacing one is fine


def _bad_input(port: int) -> list[list[bytes]]:
    client = SieveClient(port)
    client.response()
    out = [
        client.command(b"LISTSCRIPTS\r\n"),  # before login
        client.command(b"FROB\r\n"),
        client.command(b"\r\n"),
        client.command(b'PUTSCRIPT "x\r\n'),  # unterminated quoted string
        client.command(b"CAPABILITY extra\r\n"),
        client.command(b'AUTHENTICATE "CRAM-MD5"\r\n'),
        client.command(b'AUTHENTICATE "PLAIN" "not base64!"\r\n'),
        client.command(b'AUTHENTICATE "PLAIN" "' + base64.b64encode(f"\0{USER}\0wrong".encode()) + b'"\r\n'),
    ]
    client.send(b'AUTHENTICATE "LOGIN"\r\n')
    out.append([client.read_line()])  # a challenge, not a status
    out.append(client.command(b'"*"\r\n'))  # cancel the exchange
    out.append(client.command(b'NOOP "\xff\xfe"\r\n'))  # not UTF-8
    out.append(client.command(b'HAVESPACE "x" 99999999999\r\n'))
    out.append(client.command(b"{999999}\r\n"))  # literal over the pre-login limit: BYE
    client.close()
    return out


async def test_bad_input(sieve: tuple[RunningServer, int]) -> None:
    _, port = sieve
    out = await in_thread(lambda: _bad_input(port))
    (
        before_login,
        unknown,
        empty,
        unterminated,
        extra,
        mech,
        b64,
        wrong,
        login_challenge,
        cancel,
        utf8,
        big,
        bye,
    ) = out
    assert before_login[-1].startswith(b"NO") and b"Authenticate first" in before_login[-1]
    assert unknown[-1].startswith(b"NO") and b"Unknown command" in unknown[-1]
    assert empty[-1].startswith(b"NO") and unterminated[-1].startswith(b"NO")
    assert extra[-1].startswith(b"NO") and b"arguments" in extra[-1]
    assert mech[-1].startswith(b"NO") and b"Unsupported" in mech[-1]
    assert b64[-1].startswith(b"NO") and wrong[-1].startswith(b"NO")
    assert login_challenge == [b'"VXNlcm5hbWU6"\r\n']  # base64 of "Username:"
    assert cancel[-1].startswith(b"NO") and b"cancelled" in cancel[-1]
    assert utf8[-1].startswith(b"NO") and b"UTF-8" in utf8[-1]
    assert big[-1].startswith(b"NO") and b"Number too large" in big[-1]
    assert bye[-1].startswith(b"BYE") and b"999999" in bye[-1]
    for answer in out:
        assert b"Traceback" not in b"".join(answer)


def _login_answers(port: int, secrets: list[str]) -> list[bytes]:
    answers = []
    for secret in secrets:
        client = SieveClient(port)
        client.response()
        answers.append(client.login(USER, secret)[-1])
        client.close()
    return answers


async def test_app_passwords_and_login_history(sieve: tuple[RunningServer, int]) -> None:
    """App passwords work when scoped to managesieve only; logins reach the history."""
    from mailserver.apppasswords import create_app_password
    from storage.credentials import credentials_for

    server, port = sieve
    store = server.app.store
    account = await store.get_account(USER)
    assert account is not None
    credentials = credentials_for(store)
    _, sieve_secret = await create_app_password(
        store,
        credentials,
        account,
        "Thunderbird",
        ("managesieve",),
        sender="postmaster@dongnai.gov.vn",
        hostname="mx.test",
    )
    _, imap_secret = await create_app_password(
        store,
        credentials,
        account,
        "Điện thoại",
        ("imap",),
        sender="postmaster@dongnai.gov.vn",
        hostname="mx.test",
    )
    scoped, other = await in_thread(lambda: _login_answers(port, [sieve_secret, imap_secret]))
    assert scoped.startswith(b"OK") and other.startswith(b"NO")
    history = server.app.authenticator.history
    assert history is not None
    await history.flush()
    logins = await credentials.logins(account.id)
    assert [(e.protocol, e.success) for e in logins[:2]] == [("managesieve", False), ("managesieve", True)]


def _sasl_login(port: int) -> list[bytes]:
    client = SieveClient(port)
    client.response()
    client.send(b'AUTHENTICATE "LOGIN"\r\n')
    user = client.read_line()
    client.send(b'"' + base64.b64encode(USER.encode()) + b'"\r\n')
    password = client.read_line()
    secret = base64.b64encode(PASSWORD.encode())
    done = client.command(b"{%d+}\r\n" % len(secret) + secret + b"\r\n")  # a literal works too
    listed = client.command(b"LISTSCRIPTS\r\n")
    client.close()
    return [user, password, done[-1], listed[-1]]


async def test_sasl_login_exchange(sieve: tuple[RunningServer, int]) -> None:
    _, port = sieve
    user, password, done, listed = await in_thread(lambda: _sasl_login(port))
    assert (user, password) == (b'"VXNlcm5hbWU6"\r\n', b'"UGFzc3dvcmQ6"\r\n')
    assert done.startswith(b"OK") and listed.startswith(b"OK")
