"""Folder changes across processes and nodes on PostgreSQL: LISTEN/NOTIFY.

The ChangeHub (``storage.api``) tells the sessions of one process that a folder
changed, so IMAP IDLE and NOOP answer at once instead of polling. Several
processes or nodes on one PostgreSQL database would each hear only their own
changes and learn of the others' at their next poll (``Session`` polls every 5 s,
every 30 s in IDLE). ``PgChangeHub`` closes that gap: every ``publish`` is also
sent as ``NOTIFY mailstore_changes, '<folder id>,<folder id>,...'`` on a
connection of its own, which also LISTENs and publishes what other processes
sent into the local hub (its own notifications, recognised by the sending
backend's PID, are skipped).

Notifications are sent after the change committed (``publish`` is called then),
coalesced while one is in flight, and chunked under PostgreSQL's 8,000-byte
payload limit. If the connection is lost the hub keeps working in-process and
reconnects with a growing delay; the sessions' polls cover the gap. SQLite has no
equivalent: a SQLite store is one process's (with ``mailserver`` CLI commands
beside it, which the polls cover).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any, Final

import asyncpg  # type: ignore[import-untyped,unused-ignore]
from sqlalchemy.engine import URL

from storage.api import ChangeHub

log = logging.getLogger(__name__)

CHANNEL: Final = "mailstore_changes"
_PAYLOAD_LIMIT: Final = 7900
"""Octets per NOTIFY payload (PostgreSQL's limit is 8,000 by default)."""
_RETRY_MAX: Final = 30.0
_CHECK_INTERVAL: Final = 10.0
"""Seconds between checks that the listening connection is still open."""


def payloads(folder_ids: Iterable[int]) -> list[str]:
    """Comma-separated folder ids, split so that no payload passes the limit."""
    out: list[str] = []
    current = ""
    for folder_id in sorted(set(folder_ids)):
        piece = str(folder_id)
        if current and len(current) + 1 + len(piece) > _PAYLOAD_LIMIT:
            out.append(current)
            current = ""
        current = f"{current},{piece}" if current else piece
    if current:
        out.append(current)
    return out


def parse_payload(payload: str) -> list[int]:
    """The folder ids of one payload; anything else in it is ignored."""
    return [int(part) for part in payload.split(",") if part.strip().isdigit()]


def asyncpg_dsn(url: URL) -> str:
    """The libpq form of a SQLAlchemy ``postgresql+asyncpg://`` URL."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class PgChangeHub(ChangeHub):
    """A ChangeHub whose publications also reach, and come from, the other
    processes using the same PostgreSQL database."""

    def __init__(self) -> None:
        super().__init__()
        self._dsn = ""
        self._conn: Any = None
        self._pending: set[int] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.received = 0
        """Notifications taken from other processes (tests and metrics)."""

    async def start(self, url: URL) -> None:
        self._dsn = asyncpg_dsn(url)
        await self._connect()  # the first connection must work: a bad URL fails start
        self._task = asyncio.create_task(self._run(), name="mailstore-notify")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._disconnect()

    def publish(self, folder_ids: Iterable[int]) -> None:
        ids = set(folder_ids)
        super().publish(ids)
        if self._task is not None and ids:
            self._pending |= ids
            self._wake.set()

    # -- the connection ---------------------------------------------------------
    async def _connect(self) -> None:
        conn = await asyncpg.connect(self._dsn)
        try:
            await conn.add_listener(CHANNEL, self._received)
        except BaseException:
            await conn.close()
            raise
        self._conn = conn

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)

    def _received(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        if pid == conn.get_server_pid():
            return  # our own: already published here
        ids = parse_payload(payload)
        if ids:
            self.received += 1
            super().publish(ids)

    async def _run(self) -> None:
        """Send what ``publish`` collected; reconnect when the connection is lost."""
        delay = 1.0
        while True:
            with contextlib.suppress(TimeoutError):
                # Also wake now and then: a connection lost while nothing was
                # published would otherwise stop the receiving side unnoticed.
                # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a
                # cancel that arrives as the event is set, and close() then
                # waited for this task forever.
                async with asyncio.timeout(_CHECK_INTERVAL):
                    await self._wake.wait()
            self._wake.clear()
            if not self._pending and self._conn is not None and not self._conn.is_closed():
                continue
            ids, self._pending = self._pending, set()
            try:
                if self._conn is None or self._conn.is_closed():
                    await self._disconnect()
                    await self._connect()
                for payload in payloads(ids):
                    await self._conn.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
                delay = 1.0
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("change notification to other processes failed (%s); retry in %.0f s", exc, delay)
                self._pending |= ids  # sent again after the reconnect
                await self._disconnect()
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX)
                self._wake.set()
