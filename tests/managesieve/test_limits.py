"""ManageSieve resource limits over real sockets: a command dripped too slowly,
a login that never comes, too many connections; each ends with BYE and a
reason (the waits are the server's own timeouts, read as they arrive)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from mailserver.app import App
from tests.conftest import make_config

from .conftest import SieveClient


@pytest.fixture
async def port(tmp_path: Path) -> AsyncIterator[int]:
    config = make_config(tmp_path / "data")
    settings = replace(config.managesieve, login_timeout=2, command_timeout=1, max_connections=2)
    async with App(replace(config, managesieve=settings)) as app:
        yield app.addresses["managesieve"][1]


def _slow_command(port: int) -> bytes:
    client = SieveClient(port)
    client.response()
    client.send(b"NOO")  # never finished
    line = client.read_line()
    client.close()
    return line


def _no_login(port: int) -> tuple[bytes, bytes]:
    client = SieveClient(port)
    client.response()
    noop = client.command(b"NOOP\r\n")[-1]  # activity does not extend the login deadline
    line = client.read_line()
    client.close()
    return noop, line


def _too_many(port: int) -> bytes:
    first, second = SieveClient(port), SieveClient(port)
    first.response()
    second.response()
    third = SieveClient(port)
    line = third.read_line()
    for client in (first, second, third):
        client.close()
    return line


async def test_command_timeout(port: int) -> None:
    line = await asyncio.to_thread(_slow_command, port)
    assert line.startswith(b"BYE") and b"Command took too long" in line


async def test_login_timeout(port: int) -> None:
    noop, line = await asyncio.to_thread(_no_login, port)
    assert noop.startswith(b"OK")
    assert line.startswith(b"BYE") and b"Login took too long" in line


async def test_connection_limit(port: int) -> None:
    line = await asyncio.to_thread(_too_many, port)
    assert line.startswith(b"BYE (TRYLATER)")
