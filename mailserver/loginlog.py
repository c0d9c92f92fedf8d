"""The login history writer: sign-ins recorded in batches, off the login path.

Theory of operation
-------------------
``LoginRecorder.record`` only appends the event to a list (no await, no I/O)
and makes sure one writer task runs. The task takes everything pending and
writes it in one transaction (``CredentialStore.record_logins``, which also
updates app passwords' last use and prunes each touched account to its newest
rows); events that arrive meanwhile form the next batch. So a burst of a
thousand logins costs a handful of writes, and a single login one, after its
answer has been sent. A failed write is logged and its events dropped: a
statistic must never fail a login. ``flush`` waits until everything recorded so
far is written (tests, shutdown).
"""

from __future__ import annotations

import asyncio
import logging

from storage.credentials import CredentialStore, LoginEvent

log = logging.getLogger(__name__)

MAX_PENDING = 10_000
"""Beyond this many unwritten events (a database that stopped answering) new
ones are dropped rather than kept in memory."""


class LoginRecorder:
    def __init__(self, store: CredentialStore) -> None:
        self._store = store
        self._pending: list[LoginEvent] = []
        self._task: asyncio.Task[None] | None = None

    def record(self, event: LoginEvent) -> None:
        if len(self._pending) >= MAX_PENDING:
            return
        self._pending.append(event)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain(), name="login-history")

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await self._store.record_logins(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("could not record %d login(s) in the history", len(batch))

    async def flush(self) -> None:
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)
