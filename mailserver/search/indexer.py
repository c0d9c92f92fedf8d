"""The background indexer: work list -> text extraction -> index entries.

Theory of operation
-------------------
Every stored message is on the work list (``fts_pending``) from the
transaction that stored it (``storage.sql.fulltext``); the SMTP 250 and the
APPEND OK never wait for indexing. ``Indexer.run`` takes a batch of jobs, has
worker processes read the files and extract and fold their text
(``mailserver.search.document``), and saves the entries, which takes the jobs
off the list in the same transaction. The next batch is handed to the workers
before a batch is saved, so extraction and the database write overlap; it
stays on the list until its own save. A crash anywhere before that commit
leaves the jobs on the list for the next start; nothing is lost, at worst a
batch is indexed twice (an entry is replaced, never duplicated).

A worker that dies on a message (a crash in a parser) costs that batch one
retry, one message at a time; a message that kills a worker on its own is
indexed by its header fields only, so a poisoned message never blocks the list.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Final, TypeAlias

from mailserver.search.document import document, document_of_file
from mailserver.search.settings import SearchSettings
from policy.extract.walk import Limits
from policy.lifeline import watch_owner
from storage.api import IndexDoc, IndexJob, MailStore

log = logging.getLogger(__name__)

__all__ = ["Indexer"]

_Batch: TypeAlias = tuple[list[IndexJob], "asyncio.Future[list[IndexDoc | None]]"]
"""Jobs taken off the work list and their extraction under way."""


def _documents(jobs: Sequence[tuple[int, str]], limits: Limits) -> list[IndexDoc | None]:
    """Worker side: the entries of a chunk of jobs (None for a file gone meanwhile)."""
    return [document_of_file(message_id, path, limits) for message_id, path in jobs]


BATCH_BYTES: Final = 8 * 1024 * 1024
"""Message octets one batch may hold (at least one message): a batch of large
messages is parsed and returned at once, and the worker's memory follows it."""


def _within_bytes(jobs: list[IndexJob]) -> list[IndexJob]:
    total = 0
    for n, job in enumerate(jobs):
        total += job.size
        if n and total > BATCH_BYTES:
            return jobs[:n]
    return jobs


def _lower_priority(server_pid: int) -> None:
    """Worker start: yield the CPU to SMTP and IMAP (indexing can wait, a client cannot),
    and end with the server even when it is killed (SIGKILL, OOM). A lifeline rather than
    PR_SET_PDEATHSIG: that fires when the *thread* that started the worker ends, and
    workers are started from whichever thread submits."""
    os.nice(10)
    watch_owner(server_pid)


def _header_only(message_id: int, path: str) -> IndexDoc | None:
    try:
        with open(path, "rb") as file:
            head = file.read(256 * 1024)
    except FileNotFoundError:
        return None
    return document(message_id, head.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n", Limits())


class Indexer:
    """Indexes the store's work list; ``run`` until cancelled, or ``run_once`` per batch."""

    def __init__(self, store: MailStore, limits: Limits, settings: SearchSettings) -> None:
        self.store = store
        self.limits = limits
        self.settings = settings
        self.indexed = 0
        """Messages indexed by this indexer (for metrics and the CLI)."""
        self._pool: Executor | None = None
        self._ahead: _Batch | None = None

    def _executor(self) -> Executor:
        if self._pool is None:
            workers = self.settings.processes
            if workers > 0:
                # spawn: a worker forked from the server would inherit its client
                # sockets and keep connections open after the server closed them (an
                # mbsync run waited for EOF until its timeout); a forkserver outlives a
                # killed server and keeps its output pipes open. A spawned worker holds
                # neither, and ends with the server (EOF on its queue, policy.lifeline).
                context = multiprocessing.get_context("spawn")
                self._pool = ProcessPoolExecutor(
                    workers, mp_context=context, initializer=_lower_priority, initargs=(os.getpid(),)
                )
            else:
                self._pool = ThreadPoolExecutor(1, "mailserver-index")
        return self._pool

    def _drop_ahead(self) -> None:
        """Forget the batch handed out ahead (its jobs stay on the work list); in the
        event loop's thread."""
        if self._ahead is not None:
            extraction = self._ahead[1]
            self._ahead = None
            if not extraction.done():
                extraction.cancel()
            elif not extraction.cancelled():
                extraction.exception()  # seen: a broken pool there is handled at the next start

    def close(self) -> None:
        """Stop the workers (call ``_drop_ahead`` first when calling from another thread)."""
        self._drop_ahead()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    async def _extract(self, jobs: list[IndexJob]) -> list[IndexDoc | None]:
        loop = asyncio.get_running_loop()
        pairs = [(job.message_id, job.path) for job in jobs]
        chunks = max(1, self.settings.processes)
        size = -(-len(pairs) // chunks)
        parts = [pairs[i : i + size] for i in range(0, len(pairs), size)]
        results = await asyncio.gather(
            *(loop.run_in_executor(self._executor(), _documents, part, self.limits) for part in parts)
        )
        return [doc for part in results for doc in part]

    async def _extract_one_by_one(self, jobs: list[IndexJob]) -> list[IndexDoc | None]:
        loop = asyncio.get_running_loop()
        docs: list[IndexDoc | None] = []
        for job in jobs:
            try:
                found = await loop.run_in_executor(
                    self._executor(), _documents, [(job.message_id, job.path)], self.limits
                )
                docs.append(found[0])
            except BrokenProcessPool:
                log.warning("index: message %d crashed the text extractor; headers only", job.message_id)
                self.close()
                docs.append(_header_only(job.message_id, job.path))
        return docs

    async def _start(self, busy: Collection[int] = ()) -> _Batch | None:
        """Take the next batch off the work list (leaving out jobs ``busy`` already in
        hand) and hand it to the workers; None when there is nothing to take."""
        taken = await self.store.index_jobs(self.settings.batch + len(busy))
        jobs = _within_bytes([j for j in taken if j.message_id not in busy][: self.settings.batch])
        if not jobs:
            return None
        return jobs, asyncio.ensure_future(self._extract(jobs))

    async def run_once(self) -> int:
        """Index one batch; the number of jobs it took off the list (0: the list is empty).

        The next batch goes to the workers before this one is saved, so they extract
        while the server process writes; it is the next call's batch (still on the
        work list until saved, like any other)."""
        batch = self._ahead or await self._start()
        self._ahead = None
        if batch is None:
            return 0
        jobs, extraction = batch
        try:
            docs = await extraction
        except BrokenProcessPool:
            self.close()
            docs = await self._extract_one_by_one(jobs)
        else:
            self._ahead = await self._start({j.message_id for j in jobs})
        await self.store.save_index([d for d in docs if d is not None], [j.message_id for j in jobs])
        self.indexed += len(jobs)
        return len(jobs)

    async def run(self, on_batch: Callable[[int], None] | None = None) -> None:
        """Index until cancelled: batches back to back while there is work, a look at
        the list every ``search.poll_interval`` seconds when there is none."""
        try:
            while True:
                try:
                    done = await self.run_once()
                except asyncio.CancelledError:
                    raise
                except Exception:  # a database hiccup: the jobs stay queued; try again later
                    log.exception("index: batch failed; retrying")
                    done = 0
                if on_batch is not None and done:
                    on_batch(done)
                if done < self.settings.batch:
                    await asyncio.sleep(self.settings.poll_interval)
        finally:
            self._drop_ahead()
            await asyncio.to_thread(self.close)  # workers finish the message in hand
