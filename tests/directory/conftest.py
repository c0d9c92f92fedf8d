"""Directory fixtures: a started store (SQLite, and the real PostgreSQL) with the
directory service over it, and two agencies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailserver.directory.service import DirectoryService
from storage import open_store
from storage.directory import By, open_directory
from tests.conftest import make_config

BY = By("tester", "Số 42/QĐ-UBND")


@pytest.fixture
async def svc(tmp_path: Path, backend_url: str) -> AsyncIterator[DirectoryService]:
    config = make_config(tmp_path / "data", backend_url)
    config.data_dir.mkdir(parents=True)
    store = open_store(config.storage_url, config.maildir)
    await store.start()
    try:
        service = DirectoryService(store, open_directory(store), config)
        await service.add_agency("stttt", "Sở Thông tin và Truyền thông", None, by=BY)
        await service.add_agency("ubndbienhoa", "UBND thành phố Biên Hòa", None, by=BY)
        yield service
    finally:
        await store.close()
