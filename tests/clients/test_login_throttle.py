"""Login throttling over real sockets (issue 15): IMAP LOGIN, submission AUTH.

The attacks: 300 concurrent LOGINs from one address used to test 299 wrong
passwords and let the right one in; ten wrong passwords from anyone locked the
account for everyone; a burst of bad logins queued every other login behind
it. Client addresses are taken from 127/8 (the loopback interface answers all
of it): the sockets are bound to 127.0.0.2, 127.0.0.3, ...
"""

from __future__ import annotations

import asyncio
import imaplib
import smtplib
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from mailserver import auth
from mailserver.app import App
from mailserver.config import AuthSettings, Config
from tests.conftest import RunningServer, eventually, make_config

ACCOUNT = "giamdoc@dongnai.gov.vn"
PASSWORD = "Dung-mat-khau-2026"
BURST = 300


class SourceImap(imaplib.IMAP4):
    """imaplib with the client socket bound to a chosen source address."""

    def __init__(self, host: str, port: int, source: str) -> None:
        self._source = source
        super().__init__(host, port, timeout=30)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout, source_address=(self._source, 0))


@pytest.fixture
def verified(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every Argon2 verification the server runs, by the password it checked, in order."""
    calls: list[str] = []
    lock = threading.Lock()
    real = auth.verify_password

    def counting(password_hash: str, password: str) -> bool:
        with lock:
            calls.append(password)
        return real(password_hash, password)

    monkeypatch.setattr(auth, "verify_password", counting)
    yield calls


def throttle_config(tmp_path: Path, **settings: float) -> Config:
    config = make_config(tmp_path / "data")
    values: dict[str, float] = {"failure_delay": 0.05, "max_failures": 10, **settings}
    # The bursts open 300 connections from one address: above imap.max_connections_per_ip
    # (200), which would refuse some at connect, and the right ones above
    # imap.max_connections_per_user (20); here the throttle itself is under test.
    imap = replace(config.imap, max_connections_per_ip=10 * BURST, max_connections_per_user=10 * BURST)
    return replace(config, auth=AuthSettings(**values), imap=imap)  # type: ignore[arg-type]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    config = throttle_config(tmp_path)
    async with App(config) as app:
        running = RunningServer(app, config)
        await running.add_account(ACCOUNT, PASSWORD, name="Giám đốc Sở")
        yield running


async def raw_login(port: int, source: str, user: str, password: str, start: asyncio.Event) -> bytes:
    """Connect from ``source``, wait for ``start``, send one LOGIN: its tagged answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    try:
        assert (await asyncio.wait_for(reader.readline(), 60)).startswith(b"* OK")
        await start.wait()
        writer.write(f'a LOGIN "{user}" "{password}"\r\n'.encode())
        await writer.drain()
        while True:
            line = await asyncio.wait_for(reader.readline(), 120)
            assert line, "connection closed"
            if line.startswith(b"a "):
                return line
    finally:
        writer.close()


async def burst(port: int, source: str, logins: list[tuple[str, str]]) -> list[bytes]:
    """Every login on its own connection, all sent at once once all are connected."""
    start = asyncio.Event()
    tasks = [asyncio.ensure_future(raw_login(port, source, user, pw, start)) for user, pw in logins]
    await asyncio.sleep(0)
    start.set()
    return list(await asyncio.gather(*tasks))


async def test_concurrent_burst_gets_no_more_guesses_than_allowed(
    server: RunningServer, verified: list[str]
) -> None:
    limit = server.config.auth.max_failures
    guesses = [f"Sai-mat-khau-{n}" for n in range(BURST)]
    guesses[249] = PASSWORD  # the 250th guess is the right one
    answers = await burst(server.port("imap"), "127.0.0.2", [(ACCOUNT, g) for g in guesses])
    checked = [a for a in answers if a.startswith(b"a OK") or b"[AUTHENTICATIONFAILED]" in a]
    refused = [a for a in answers if b"[UNAVAILABLE]" in a]
    # At most `max_failures` passwords were tried at all, concurrency or not.
    assert len(checked) <= limit, f"{len(checked)} passwords checked out of {BURST}"
    assert len(checked) + len(refused) == BURST
    assert len(verified) <= limit
    if PASSWORD not in verified:
        assert not any(a.startswith(b"a OK") for a in answers)
    # The pair is locked now: the right password from that address is refused too.
    again = await burst(server.port("imap"), "127.0.0.2", [(ACCOUNT, PASSWORD)])
    assert b"[UNAVAILABLE]" in again[0]


async def test_concurrent_right_logins_all_succeed_wrong_ones_are_still_throttled(
    server: RunningServer, verified: list[str]
) -> None:
    """A client (or an office behind one NAT address) opening 300 connections at
    once with the right password: every LOGIN succeeds (attempts beyond the
    pair's ``max_failures`` wait for a turn instead of being refused), with one
    Argon2 check. The same burst with wrong passwords still gets no more checks
    than ``max_failures`` and the pair is locked afterwards."""
    port = server.port("imap")
    answers = await burst(port, "127.0.0.5", [(ACCOUNT, PASSWORD)] * BURST)
    refused = [a for a in answers if not a.startswith(b"a OK")]
    assert not refused, f"{len(refused)} of {BURST} right logins refused, e.g. {refused[0]!r}"
    assert verified == [PASSWORD]
    limit = server.config.auth.max_failures
    wrong = await burst(port, "127.0.0.5", [(ACCOUNT, f"Sai-mat-khau-{n}") for n in range(BURST)])
    checked = [a for a in wrong if b"[AUTHENTICATIONFAILED]" in a]
    assert 0 < len(checked) <= limit, f"{len(checked)} wrong passwords checked out of {BURST}"
    assert len([a for a in wrong if b"[UNAVAILABLE]" in a]) == BURST - len(checked)
    assert len(verified) - 1 == len(checked)
    again = await burst(port, "127.0.0.5", [(ACCOUNT, PASSWORD)])
    assert b"[UNAVAILABLE]" in again[0]


async def test_another_address_still_logs_in(server: RunningServer) -> None:
    port = server.port("imap")
    wrong = await burst(port, "127.0.0.2", [(ACCOUNT, f"Sai-{n}") for n in range(25)])
    assert all(b"NO" in a for a in wrong)

    def imap_login(source: str) -> tuple[str, bytes]:
        client = SourceImap("127.0.0.1", port, source)
        try:
            typ, data = client.login(ACCOUNT, PASSWORD)
            return typ, data[0]
        except imaplib.IMAP4.error as exc:
            return "NO", str(exc).encode()
        finally:
            client.shutdown()

    typ, text = await asyncio.to_thread(imap_login, "127.0.0.2")
    assert typ == "NO" and b"UNAVAILABLE" in text  # the guessing address is locked out
    # The account's owner, elsewhere, is not: IMAP and submission both let them in.
    assert (await asyncio.to_thread(imap_login, "127.0.0.3"))[0] == "OK"

    def smtp_login(source: str) -> int:
        with smtplib.SMTP("127.0.0.1", server.port("submission"), timeout=30,
                          source_address=(source, 0)) as smtp:
            smtp.ehlo()
            try:
                return smtp.login(ACCOUNT, PASSWORD)[0]
            except smtplib.SMTPAuthenticationError as exc:
                return exc.smtp_code

    assert await asyncio.to_thread(smtp_login, "127.0.0.4") == 235
    assert await asyncio.to_thread(smtp_login, "127.0.0.2") == 454


async def test_burst_does_not_queue_other_logins_behind_it(
    server: RunningServer, verified: list[str]
) -> None:
    """Password spraying from 127.0.0.2 (many accounts, so no pair runs out):
    the address's checks are bounded, and a login from 127.0.0.3 waits behind
    at most the address's running and queued checks, never the whole burst."""
    settings = server.config.auth
    port = server.port("imap")
    spray = asyncio.ensure_future(
        burst(port, "127.0.0.2", [(f"user{n}@dongnai.gov.vn", f"Sai-{n}") for n in range(BURST)])
    )
    await eventually(lambda: len(verified) >= 3 or spray.done(), "the burst being checked", timeout=60)
    assert not spray.done()
    mark = len(verified)
    good = await burst(port, "127.0.0.3", [(ACCOUNT, PASSWORD)])
    assert good[0].startswith(b"a OK")
    ahead = verified.index(PASSWORD) - mark
    bound = settings.max_concurrent_per_ip + settings.max_queued_per_ip
    assert ahead <= bound, f"{ahead} burst checks ran before the other address's login"
    answers = await spray
    assert not any(a.startswith(b"a OK") for a in answers)
    # The burst itself got no more checks than its address may have under way or failed.
    assert len([p for p in verified if p.startswith("Sai-")]) <= settings.max_failures_per_ip
