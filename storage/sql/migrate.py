"""Schema migrations: Alembic ``upgrade heads`` run programmatically.

Each feature area (core, outbound queue, directory, …) may keep its own branch of
revisions off the initial one (``branch_labels``), so ``heads`` applies them all.

The Alembic ``Config`` is built in code (no alembic.ini on disk) and the
migration runs on a connection of the application's own async engine through
``AsyncConnection.run_sync``, so no sync database driver is needed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.sql.engine import WRITE_OPTION, make_engine

__all__ = ["alembic_config", "upgrade", "upgrade_engine"]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _upgrade(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "heads")


async def upgrade_engine(engine: AsyncEngine) -> None:
    """Bring the database behind ``engine`` to the newest revision."""
    async with engine.connect() as conn:
        await conn.execution_options(**{WRITE_OPTION: True})
        async with conn.begin():
            await conn.run_sync(_upgrade)


def upgrade(url: str) -> None:
    """Synchronous entry point (CLI): migrate the database at the async ``url``.
    Must not be called from a running event loop; use ``upgrade_engine`` there."""

    async def run() -> None:
        engine = make_engine(url)
        try:
            await upgrade_engine(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())
