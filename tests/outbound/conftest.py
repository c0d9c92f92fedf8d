"""Loopback "remote" world for MTA-STS, DANE and TLS-RPT tests: a test CA, remote
MX servers (aiosmtpd, with or without STARTTLS, right or wrong certificate), an
HTTPS server for policy files, DNS answers from the static map or tests/dnsstub.py.
Nothing leaves 127.0.0.1."""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from mailserver.app import App
from mailserver.config import Config
from mailserver.smtp.outbound_settings import OutboundSettings
from pki.tls import server_context
from policy.dns import DnsSettings
from tests.clients.test_submission import RemoteMx
from tests.conftest import RunningServer, make_config
from tests.tlsca import TestCa

SENDER = "annv@dongnai.gov.vn"


@pytest.fixture
def ca(tmp_path: Path) -> TestCa:
    return TestCa(tmp_path / "ca")


def tls_for(ca: TestCa, *names: str) -> ssl.SSLContext:
    issued = ca.issue(*names)
    return server_context(issued.cert, issued.key)


class PolicyServer:
    """https://mta-sts.<domain>/.well-known/mta-sts.txt on a loopback port."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.policies: dict[str, str] = {}
        """Host name -> policy text."""
        self.requests: list[str] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def _serve(self, request: web.Request) -> web.Response:
        host = request.host.rpartition(":")[0] or request.host
        self.requests.append(host)
        text = self.policies.get(host)
        if text is None:
            return web.Response(status=404)
        return web.Response(text=text, content_type="text/plain")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/.well-known/mta-sts.txt", self._serve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.context)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def policy_server(ca: TestCa) -> AsyncIterator[PolicyServer]:
    server = PolicyServer(tls_for(ca, "mta-sts.example.org", "mta-sts.testing.example"))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def remote_mx(context: ssl.SSLContext | None) -> RemoteMx:
    mx = RemoteMx(context)
    await mx.start()
    return mx


def world_config(
    data_dir: Path, mx_port: int, *, static: dict[str, list[str]], dns: DnsSettings | None = None,
    **outbound: Any,
) -> Config:
    base = make_config(data_dir, dns_static=static)
    settings: dict[str, Any] = dict(retry_base=60.0, retry_cap=120.0, poll_interval=0.1,
                                    delay_warning_hours=0.0, timeout=10.0, port=mx_port)
    settings.update(outbound)
    config = replace(base, outbound=OutboundSettings(**settings))
    if dns is not None:
        config = replace(config, dns=dns)
    return config


def mx_records(domain: str, mx: str = "mx.example.org") -> dict[str, list[str]]:
    return {f"{domain} MX": [f"10 {mx}."], f"{mx} A": ["127.0.0.1"]}


def sts_records(domain: str, ident: str = "20261205") -> dict[str, list[str]]:
    return {
        f"_mta-sts.{domain} TXT": [f"v=STSv1; id={ident};"],
        f"mta-sts.{domain} A": ["127.0.0.1"],
        f"_smtp._tls.{domain} TXT": [f"v=TLSRPTv1; rua=mailto:tls-reports@{domain}"],
    }


def policy(mode: str, *mx: str, max_age: int = 86400) -> str:
    return "version: STSv1\r\nmode: " + mode + "\r\n" + "".join(f"mx: {m}\r\n" for m in mx) + (
        f"max_age: {max_age}\r\n")


def message(to: str, subject: str = "Công văn số 12") -> bytes:
    msg = email.message.EmailMessage(policy=email.policy.SMTP)
    msg["From"] = SENDER
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content("Nội dung bí mật không được gửi dạng thô.\n")
    return msg.as_bytes()


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.05)
    assert await check(), what


async def attempted(app: App) -> bool:
    queued = await app.queue.list()
    return bool(queued) and all(r.attempts >= 1 for m in queued for r in m.recipients)


def parse(data: bytes) -> Message:
    return email.message_from_bytes(data, policy=email.policy.default)


__all__ = ["RunningServer"]
