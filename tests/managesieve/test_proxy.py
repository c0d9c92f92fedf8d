"""ManageSieve behind a load balancer (managesieve.proxy_protocol): the client
the PROXY header names is the one the session sees (not loopback, so no
AUTHENTICATE before TLS) and the one in the login history; a connection
without a valid header is refused with BYE."""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from mailserver.app import App
from mailserver.auth import hash_password
from storage.credentials import credentials_for
from tests.clients.test_proxy_protocol import v2_header
from tests.conftest import make_config

from .conftest import SieveClient

USER = "annv@dongnai.gov.vn"
PASSWORD = "S3cret-pass-word"


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    base = make_config(tmp_path / "data")
    config = replace(
        base,
        server=replace(base.server, trusted_proxies=["127.0.0.1/32"]),
        managesieve=replace(base.managesieve, proxy_protocol=True),
    )
    async with App(config) as running:
        await running.store.create_account(USER, "An", hash_password(PASSWORD), must_change_password=False)
        yield running


def _through_proxy(port: int) -> tuple[bytes, bytes, bytes]:
    raw = socket.create_connection(("127.0.0.1", port), 10)
    raw.sendall(v2_header("192.0.2.10", 40000, dst_port=4190))
    client = SieveClient.__new__(SieveClient)
    client.sock, client.file = raw, raw.makefile("rb")
    greeting = b"".join(client.response())
    token = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode())
    refused = client.command(b'AUTHENTICATE "PLAIN" "' + token + b'"\r\n')[-1]
    client.starttls()
    accepted = client.command(b'AUTHENTICATE "PLAIN" "' + token + b'"\r\n')[-1]
    client.close()
    assert b'"SASL" ""' in greeting
    return refused, accepted, greeting


def _without_header(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), 10) as raw:
        raw.sendall(b"CAPABILITY\r\n")
        return raw.makefile("rb").readline()


async def test_the_named_client_is_the_one_seen(app: App) -> None:
    port = app.addresses["managesieve"][1]
    refused, accepted, _ = await asyncio.to_thread(_through_proxy, port)
    assert refused.startswith(b"NO (ENCRYPT-NEEDED)")  # 192.0.2.10 is not loopback
    assert accepted.startswith(b"OK")
    history = app.authenticator.history
    assert history is not None
    await history.flush()
    account = await app.store.get_account(USER)
    assert account is not None
    logins = await credentials_for(app.store).logins(account.id)
    assert (logins[0].protocol, logins[0].remote_ip, logins[0].success) == ("managesieve", "192.0.2.10", True)

    refusal = await asyncio.to_thread(_without_header, port)
    assert refusal.startswith(b"BYE") and b"PROXY protocol" in refusal
