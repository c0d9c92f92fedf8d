"""The login history writer: sign-ins recorded in batches, off the login path.

Theory of operation
-------------------
``LoginRecorder.record`` only appends the event to a list (no await, no I/O)
and makes sure one writer task runs. The task waits up to ``BATCH_INTERVAL``
seconds (less when ``BATCH_SIZE`` events are pending or ``flush`` is called),
then writes everything pending in one transaction
(``CredentialStore.record_logins``, which also updates app passwords' last use
and prunes each touched account to its newest rows); events that arrive
meanwhile form the next batch. So a client reconnecting in a loop, or a burst
of a thousand logins, costs a write per second rather than one per login
(writing each one at once cost a third of the login rate, measured). A failed
write is logged and its events dropped: a statistic must never fail a login.
``flush`` writes everything recorded so far at once and waits for it (tests,
the portal's history page, shutdown).
"""

from __future__ import annotations

import asyncio
import logging

from storage.credentials import CredentialStore, LoginEvent

log = logging.getLogger(__name__)

BATCH_INTERVAL = 1.0
"""Seconds a recorded login may wait to be written with the following ones."""
BATCH_SIZE = 500
"""Pending events that start a write at once."""
MAX_PENDING = 10_000
"""Beyond this many unwritten events (a database that stopped answering) new
ones are dropped rather than kept in memory."""


class LoginRecorder:
    def __init__(self, store: CredentialStore) -> None:
        self._store = store
        self._pending: list[LoginEvent] = []
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def record(self, event: LoginEvent) -> None:
        if len(self._pending) >= MAX_PENDING:
            return
        self._pending.append(event)
        if len(self._pending) >= BATCH_SIZE:
            self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain(), name="login-history")

    async def _drain(self) -> None:
        while self._pending:
            try:
                await asyncio.wait_for(self._wake.wait(), BATCH_INTERVAL)
            except TimeoutError:
                pass
            self._wake.clear()
            batch, self._pending = self._pending, []
            try:
                await self._store.record_logins(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("could not record %d login(s) in the history", len(batch))

    async def flush(self) -> None:
        """Write everything recorded so far now, and wait until it is written."""
        while self._task is not None and not self._task.done():
            self._wake.set()
            await asyncio.shield(self._task)
