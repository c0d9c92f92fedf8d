"""Contract-suite fixtures: every test runs against SQLite (a file in tmp_path) and
the real PostgreSQL on 127.0.0.1:5432 (marker ``postgres``).

PostgreSQL gets one throw-away database per session and a fresh ``public``
schema per test. If the server is unreachable the tests fail, never skip.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import cast

import pytest

from storage import open_store
from storage.api import Account
from storage.sql.store import SqlMailStore
from tests.conftest import PG_HOST, pg_execute, pg_storage_url, throwaway_pg_database

StoreFactory = Callable[..., Awaitable[SqlMailStore]]


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    with throwaway_pg_database() as name:
        yield name


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'index.db'}"
    name: str = request.getfixturevalue("pg_database")
    asyncio.run(
        pg_execute(
            f"postgresql://{PG_HOST}/{name}",
            "DROP SCHEMA public CASCADE",
            "CREATE SCHEMA public",
        )
    )
    return pg_storage_url(name)


@pytest.fixture
def maildir_root(tmp_path: Path) -> Path:
    return tmp_path / "maildir"


@pytest.fixture
async def make_store(store_url: str, maildir_root: Path) -> AsyncIterator[StoreFactory]:
    """Start stores on the same URL and Maildir (to test reopening); all closed at the end."""
    stores: list[SqlMailStore] = []

    async def factory(*, quota_bytes: int | None = None) -> SqlMailStore:
        # open_store: the store's other parts (directory, Sieve…) are found from it.
        store = cast(SqlMailStore, open_store(store_url, maildir_root, quota_bytes=quota_bytes))
        await store.start()
        stores.append(store)
        return store

    yield factory
    for store in stores:
        await store.close()


@pytest.fixture
async def store(make_store: StoreFactory) -> SqlMailStore:
    return await make_store()


@pytest.fixture
async def alice(store: SqlMailStore) -> Account:
    return await store.create_account(
        "Alice@Example.org", "Alice", "$argon2id$fake", must_change_password=False
    )


@pytest.fixture
async def bob(store: SqlMailStore) -> Account:
    return await store.create_account("bob@example.org", "Bob", "$argon2id$fake")
