"""Schema upgrades in a child process, and no Alembic in a server whose schema is current."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from storage.sql.migrate import script_heads
from storage.sql.store import SqlMailStore

_PROBE = """
import asyncio, sys
from pathlib import Path
from storage.sql.store import SqlMailStore

async def main() -> None:
    store = SqlMailStore(sys.argv[1], Path(sys.argv[2]))
    await store.start()
    try:
        account = await store.create_account("probe@dongnai.gov.vn", "Probe", "x", must_change_password=False)
        print(account.address, "alembic" in sys.modules)
    finally:
        await store.close()

asyncio.run(main())
"""


def test_heads_are_read_from_the_scripts() -> None:
    # One head per feature branch off 0001; 0001 itself is not a head, nor is a
    # revision another one depends on (0006_agency_alias needs 0002_directory's tables).
    heads = script_heads()
    assert "0001" not in heads
    assert {"0008_queue_lease", "0006_agency_alias"} <= heads
    # A revision another one depends on is no head (Alembic records only the dependent).
    assert "0002_directory" not in heads and "0002_queue" not in heads


async def test_fresh_database_is_upgraded_by_a_child(
    store_url: str, maildir_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MAILSERVER_MIGRATE_INLINE", raising=False)
    store = SqlMailStore(store_url, maildir_root)
    await store.start()
    try:
        account = await store.create_account("a@dongnai.gov.vn", "A", "x", must_change_password=False)
        assert account.address == "a@dongnai.gov.vn"
    finally:
        await store.close()


def _probe(url: str, maildir: Path, address: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.replace("probe@dongnai.gov.vn", address), url, str(maildir)],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},  # no MAILSERVER_MIGRATE_INLINE: the server's own path
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_server_process_does_not_import_alembic(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'index.db'}"
    assert _probe(url, tmp_path / "md", "probe@dongnai.gov.vn") == ["probe@dongnai.gov.vn", "False"]
    # What the upgrade recorded is what start-up compares with: no upgrade on the next start.
    with contextlib.closing(sqlite3.connect(tmp_path / "index.db")) as db:
        recorded = {row[0] for row in db.execute("SELECT version_num FROM alembic_version")}
    assert recorded == script_heads()
    # Second start on the migrated file: nothing to do, still no Alembic in the process.
    assert _probe(url, tmp_path / "md", "second@dongnai.gov.vn") == ["second@dongnai.gov.vn", "False"]
