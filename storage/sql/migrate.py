"""Schema migrations: Alembic ``upgrade heads`` run programmatically.

Each feature area (core, outbound queue, directory, …) may keep its own branch of
revisions off the initial one (``branch_labels``), so ``heads`` applies them all.

The Alembic ``Config`` is built in code (no alembic.ini on disk) and the
migration runs on a connection of an async engine through
``AsyncConnection.run_sync``, so no sync database driver is needed.

Memory: Alembic (with Mako and Pygments) adds about 12 MB to a process that
imports it, and a long-running server needs it only when the schema is behind.
So ``upgrade_engine`` first compares the database's ``alembic_version`` rows with
the heads of the scripts (read with ``ast``, without importing Alembic) and
returns when they match; when they do not, the upgrade runs in a short-lived
child process (``python -m storage.sql.migrate``, URL on stdin), except for an
in-memory SQLite database, which only this process can see, and unless
``MAILSERVER_MIGRATE_INLINE=1`` (the test suite sets it: hundreds of fresh
databases would each pay the child's start-up).
"""

from __future__ import annotations

import ast
import asyncio
import os
import sys
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.sql.engine import WRITE_OPTION, make_engine

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["alembic_config", "current_versions", "script_heads", "upgrade", "upgrade_engine"]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@cache
def script_heads() -> frozenset[str]:
    """Revisions no other revision builds on (as down_revision or depends_on), read
    from the scripts' assignments."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if not isinstance(node, ast.AnnAssign | ast.Assign) or node.value is None:
                continue
            targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
            names = {t.id for t in targets if isinstance(t, ast.Name)}
            # A revision named in depends_on is not kept in alembic_version once its
            # dependant is applied, exactly like a down_revision.
            if not names & {"revision", "down_revision", "depends_on"}:
                continue
            value = ast.literal_eval(node.value)
            values = {value} if isinstance(value, str) else set(value or ())
            (revisions if "revision" in names else parents).update(values)
    return frozenset(revisions - parents)


def current_versions(connection: Connection) -> frozenset[str]:
    """The revisions recorded in the database; empty when it was never migrated."""
    try:
        rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
        return frozenset(str(r) for r in rows)
    except DBAPIError:
        return frozenset()


def _upgrade(connection: Connection) -> None:
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "heads")


async def _upgrade_in_process(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execution_options(**{WRITE_OPTION: True})
        async with conn.begin():
            await conn.run_sync(_upgrade)


async def upgrade_engine(engine: AsyncEngine) -> None:
    """Bring the database behind ``engine`` to the newest revision."""
    async with engine.connect() as conn:
        # A failed probe (no table yet) must not poison a PostgreSQL transaction
        # the upgrade would then use: the probe has its own connection.
        current = await conn.run_sync(current_versions)
    if current == script_heads():
        return
    in_memory = engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:")
    if in_memory or os.environ.get("MAILSERVER_MIGRATE_INLINE") == "1":
        await _upgrade_in_process(engine)
        return
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "storage.sql.migrate",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    url = engine.url.render_as_string(hide_password=False).encode()
    _, err = await child.communicate(url + b"\n")
    if child.returncode != 0:
        detail = err.decode("utf-8", "replace").strip().splitlines()
        raise RuntimeError(f"schema upgrade failed: {detail[-1] if detail else child.returncode}")


def upgrade(url: str) -> None:
    """Synchronous entry point (CLI): migrate the database at the async ``url``.
    Must not be called from a running event loop; use ``upgrade_engine`` there."""

    async def run() -> None:
        engine = make_engine(url)
        try:
            await _upgrade_in_process(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())


if __name__ == "__main__":
    upgrade(sys.stdin.readline().strip())
