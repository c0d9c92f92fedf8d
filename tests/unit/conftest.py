"""Unit-test fixtures: a mail store on a SQLite file in the test's tmp_path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage import open_store
from storage.api import MailStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[MailStore]:
    store = open_store(f"sqlite+aiosqlite:///{tmp_path}/db.sqlite", tmp_path / "maildir")
    await store.start()
    try:
        yield store
    finally:
        await store.close()
