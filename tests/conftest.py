"""Shared fixtures: a real server (SMTP + IMAP) on ephemeral loopback ports over a
real SQLite file, or the real PostgreSQL on 127.0.0.1:5432."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from mailserver.app import App
from mailserver.auth import hash_password
from mailserver.config import (
    AuthSettings,
    Config,
    ImapSettings,
    ServerSettings,
    SmtpSettings,
    SubmissionSettings,
)
from mailserver.managesieve.settings import ManageSieveSettings
from mailserver.web.settings import WebSettings
from policy.dns import DnsSettings
from storage import open_store
from storage.api import Account, MailStore
from storage.settings import StorageSettings

# Schema upgrades run in this process, not a child per fresh database (storage/sql/migrate.py);
# tests/storage/test_migrate_child.py covers the child path.
os.environ.setdefault("MAILSERVER_MIGRATE_INLINE", "1")

PG_ADMIN_DSN = os.environ.get("MAILSERVER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def make_config(
    data_dir: Path, storage_url: str = "", dns_static: dict[str, list[str]] | None = None
) -> Config:
    """Defaults with every listener on an ephemeral loopback port; DNS answers
    only from ``dns_static`` (no network: everything else does not exist)."""
    return Config(
        server=ServerSettings(hostname="mx.test.dongnai.gov.vn", data_dir=str(data_dir)),
        storage=StorageSettings(url=storage_url),
        smtp=SmtpSettings(listen="127.0.0.1:0"),
        submission=SubmissionSettings(listen="127.0.0.1:0", tls_listen="127.0.0.1:0",
                                      allow_plaintext_auth=True),
        imap=ImapSettings(listen="127.0.0.1:0", tls_listen="127.0.0.1:0"),
        managesieve=ManageSieveSettings(listen="127.0.0.1:0"),
        auth=AuthSettings(failure_delay=0.05),
        dns=DnsSettings(static=dict(dns_static or {}), use_servers=False),
        web=WebSettings(listen="127.0.0.1:0"),
    )


@dataclass
class RunningServer:
    app: App
    config: Config

    def port(self, name: str) -> int:
        return self.app.addresses[name][1]

    async def add_account(self, address: str, password: str = "S3cret-pass-word",
                          name: str = "Test User") -> Account:
        return await self.app.store.create_account(
            address, name, hash_password(password), must_change_password=False
        )


def _pg_database() -> Iterator[str]:
    """Create a throw-away database on the real PostgreSQL; drop it afterwards."""
    import asyncio

    import asyncpg

    name = f"mailtest_{uuid.uuid4().hex[:12]}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Storage URL for each backend: '' means the SQLite default under data_dir."""
    if request.param == "sqlite":
        yield ""
    else:
        yield from _pg_database()


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path / "data")


@pytest.fixture
async def server(config: Config) -> AsyncIterator[RunningServer]:
    """A running server over SQLite in tmp_path."""
    async with App(config) as app:
        yield RunningServer(app, config)


@pytest.fixture
async def any_server(tmp_path: Path, backend_url: str) -> AsyncIterator[RunningServer]:
    """A running server, parametrized over SQLite and PostgreSQL."""
    config = make_config(tmp_path / "data", backend_url)
    async with App(config) as app:
        yield RunningServer(app, config)


__all__ = ["RunningServer", "make_config", "replace"]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[MailStore]:
    """A mail store on a SQLite file in the test's tmp_path (tests/storage has its own,
    run on both backends)."""
    store = open_store(f"sqlite+aiosqlite:///{tmp_path / 'index.db'}", tmp_path / "maildir")
    await store.start()
    try:
        yield store
    finally:
        await store.close()
