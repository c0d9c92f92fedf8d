"""A running server whose outbound queue reaches a recording SMTP server on
loopback for the outside domains example.org and partner.test (static routes,
as tests/clients/test_submission.py does)."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from mailserver.app import App
from mailserver.directory.addressing import Addressing
from storage.directory import By
from tests.clients.test_submission import ANNV, BINH, PASSWORD, RemoteMx, outbound_config, remote, remote_tls
from tests.conftest import RunningServer

__all__ = ["remote", "remote_tls"]

BY = By("test", "Số 7/QĐ-UBND")


@pytest.fixture
async def routed(
    tmp_path: Path, remote: RemoteMx, backend_url: str
) -> AsyncIterator[tuple[RunningServer, Addressing]]:
    """On SQLite and on PostgreSQL (``backend_url``)."""
    routes = {"example.org": f"127.0.0.1:{remote.port}", "partner.test": f"127.0.0.1:{remote.port}"}
    config = outbound_config(tmp_path / "data", routes)
    config = replace(config, storage=replace(config.storage, url=backend_url))
    async with App(config) as app:
        running = RunningServer(app, config)
        await running.add_account(ANNV, PASSWORD, "Nguyễn Văn An")
        await running.add_account(BINH, PASSWORD, "Trần Thị Bình")
        yield running, Addressing(app.store, config)


def _mx_send(port: int, sender: str, rcpts: list[str], data: bytes) -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP("127.0.0.1", port, local_hostname="mail.partner.test", timeout=30) as smtp:
        return smtp.sendmail(sender, rcpts, data)


async def mx_send(
    server: RunningServer, sender: str, rcpts: list[str], data: bytes
) -> dict[str, tuple[int, bytes]]:
    """Mail from outside to the MX with smtplib (in a thread: the server runs on this loop)."""
    return await asyncio.to_thread(_mx_send, server.port("smtp"), sender, rcpts, data)
