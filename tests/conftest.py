"""Shared fixtures: a real server (SMTP + IMAP) on ephemeral loopback ports over a
real SQLite file, or the real PostgreSQL on 127.0.0.1:5432; and the helpers
every test module uses: ``eventually`` / ``wait_until`` (wait for an
observable condition, never a fixed sleep) and ``throwaway_pg_database``."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

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
from policy.settings import DnsSettings
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


PG_HOST = "postgres@127.0.0.1:5432"


async def pg_execute(dsn: str, *statements: str) -> None:
    """Run SQL statements on the real PostgreSQL (``dsn``: a libpq URL)."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.contextmanager
def throwaway_pg_database() -> Iterator[str]:
    """A new, empty database on the real PostgreSQL (its name), dropped afterwards.
    Synchronous (``asyncio.run`` inside): call it outside the event loop, or in a thread."""
    name = f"mailtest_{uuid.uuid4().hex[:12]}"
    asyncio.run(pg_execute(PG_ADMIN_DSN, f'CREATE DATABASE "{name}"'))
    try:
        yield name
    finally:
        asyncio.run(pg_execute(PG_ADMIN_DSN, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def pg_storage_url(name: str) -> str:
    """``storage.url`` of the PostgreSQL database ``name``."""
    return f"postgresql+asyncpg://{PG_HOST}/{name}"


def _pg_database() -> Iterator[str]:
    """The ``storage.url`` of a throw-away PostgreSQL database, for a fixture to yield from."""
    with throwaway_pg_database() as name:
        yield pg_storage_url(name)


async def eventually(
    check: Callable[[], bool | Awaitable[bool]], what: str = "the condition", timeout: float = 30.0,
    interval: float = 0.02,
) -> None:
    """Wait until ``check()`` (sync or async) is true, looking every ``interval``
    seconds; fail naming ``what`` after ``timeout``. For conditions only
    observable by looking (a queue drained, a file written, a counter)."""

    async def holds() -> bool:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        return bool(result)

    try:
        async with asyncio.timeout(timeout):
            while not await holds():
                await asyncio.sleep(interval)
    except TimeoutError:
        pytest.fail(f"not within {timeout} s: {what}")


def wait_until(
    check: Callable[[], bool], what: str = "the condition", timeout: float = 30.0, interval: float = 0.01
) -> None:
    """``eventually`` for threads and synchronous tests (other processes, files)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s: {what}")
        time.sleep(interval)


def end_process(
    proc: subprocess.Popen[Any], timeout: float = 30.0, *, terminate: bool = False
) -> tuple[Any, Any]:
    """Stop a server subprocess (SIGKILL, or SIGTERM with ``terminate``) and reap it,
    returning what it wrote. Its pipes are closed whatever happens: when something
    still holds them after ``timeout`` s (an orphaned helper of the killed process)
    this test fails saying so, and leaves no running Popen or open pipe behind to
    fail an unrelated later test with unraisable ResourceWarnings."""
    if proc.poll() is None:
        if terminate:
            proc.terminate()
        else:
            proc.kill()
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
        raise AssertionError(
            f"process {proc.pid} was stopped, but after {timeout} s its output pipes are still held "
            "open (by an orphaned child process?)"
        ) from None


def end_all(procs: list[subprocess.Popen[Any]], timeout: float = 10.0) -> None:
    """``end_process`` for each (SIGKILL); every one is reaped before the first failure is raised."""
    failures: list[AssertionError] = []
    for proc in procs:
        try:
            end_process(proc, timeout)
        except AssertionError as exc:
            failures.append(exc)
    if failures:
        raise failures[0]


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


__all__ = [
    "RunningServer", "eventually", "make_config", "pg_execute", "pg_storage_url", "replace",
    "throwaway_pg_database", "wait_until",
]


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
