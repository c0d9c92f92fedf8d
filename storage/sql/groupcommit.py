"""Group commit: requests made at the same time committed in one transaction.

Theory of operation
-------------------
A store hands ``Database.group_commit`` the function that commits a batch of
its requests in one transaction (``commit_batch``: a list of requests in, one
result per request out; a result that is an exception is that request's
refusal, e.g. ``OverQuota``, while the others of the batch commit). Callers
``await submit(request)``; one committer task takes whatever requests are
waiting (up to ``max_batch``), commits them together and wakes their callers.
While a transaction runs the next requests queue up, so under load one commit
(one fsync of the database) serves many requests, and alone a request waits
for nobody.

When a whole batch fails (an exception from ``commit_batch``: a constraint, a
file that could not be placed), each of its requests is committed again on
its own, so one bad request fails alone. ``close`` commits what is queued
before it, and requests that arrive after it fail with ``closed_error``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Request = TypeVar("Request")
Result = TypeVar("Result")


class GroupCommit(Generic[Request, Result]):
    """One committer task and its queue (module docstring)."""

    def __init__(
        self,
        commit_batch: Callable[[list[Request]], Awaitable[Sequence[Result | BaseException]]],
        *,
        max_batch: int,
        name: str,
        closed_error: Callable[[], Exception],
    ) -> None:
        self._commit_batch = commit_batch
        self._max_batch = max_batch
        self._name = name
        self._closed_error = closed_error
        self._queue: asyncio.Queue[tuple[Request, asyncio.Future[Result]] | None] | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run(self._queue), name=self._name)

    async def close(self) -> None:
        """Commit what was submitted before, then stop."""
        if self._queue is not None and self._task is not None:
            await self._queue.put(None)
            await self._task
        self._queue = self._task = None

    async def submit(self, request: Request) -> Result:
        """Commit ``request`` with whatever else is waiting; its result, or its refusal raised."""
        if self._queue is None:
            raise RuntimeError(f"{self._name}: start() has not been called")
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        await self._queue.put((request, future))
        return await future

    async def _run(self, queue: asyncio.Queue[tuple[Request, asyncio.Future[Result]] | None]) -> None:
        stopping = False
        while not stopping:
            first = await queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    item = queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            await self._commit(batch)
        while not queue.empty():
            item = queue.get_nowait()
            if item is not None and not item[1].done():
                item[1].set_exception(self._closed_error())

    async def _commit(self, batch: list[tuple[Request, asyncio.Future[Result]]]) -> None:
        try:
            results = await self._commit_batch([request for request, _ in batch])
        except Exception as exc:  # noqa: BLE001 - handed to the waiters, who raise it
            if len(batch) == 1:
                if not batch[0][1].done():
                    batch[0][1].set_exception(exc)
                return
            for one in batch:  # find the one that fails: each commits alone
                await self._commit([one])
            return
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue  # its caller was cancelled: the commit stands
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
