"""SMTP listener processes: the MX port served by ``smtp.processes`` processes.

One Python process runs one event loop on one core; a connection per message
(what many sending MTAs do) keeps that core busy with sessions, the content
policy and the message file while the other core idles. With ``smtp.processes``
above 1, ``mailserver serve`` starts that many minus one **worker processes**
(``python -m mailserver.smtp.worker``), each binding the MX address itself with
``SO_REUSEPORT`` beside the main process's listener (which sets it too): the
kernel spreads new connections over the listening sockets.

A worker runs the same ``SmtpService`` with the same configuration, content
policy, quarantine and outbound queue, reading the directory and quotas from
the store itself. What differs is the last step of a delivery:

* on **SQLite** the database keeps one writer and one group commit, the main
  process's. The worker analyses the message and writes it, fsynced, into the
  Maildir's staging directory (``SqlMailStore.stage_delivery``), then asks the
  main process over its channel (a Unix socket pair) to commit it
  (``SqlMailStore.commit_staged``): the staged file is renamed into the target
  folders, the directory fsynced and the rows committed in the main process's
  group commit, batched with the main process's own deliveries. The worker
  answers 250 only after the main process said the commit is done. The
  change is published on the main process's ChangeHub, so IMAP IDLE there
  hears of it at once.
* on **PostgreSQL** several writers are fine: a worker delivers with its own
  store, and ``storage.sql.notify`` tells the other processes.

Connection limits (``smtp.max_connections``, ``max_data_in_memory``) are shared
out among the processes (each enforces its part); ``max_connections_per_ip``
is enforced by each process on its own connections.

The main process supervises the workers: one that exits is started again
(after a pause that grows while they keep failing); ``stop`` sends SIGTERM and
waits for their sessions to end as ``SmtpService.stop`` does. A worker exits
when its channel closes (the main process is gone). A SIGHUP reload restarts
the workers with the new configuration (connections in progress finish).

Channel frames: a 4-octet big-endian length, then a pickle (both ends are this
program, started by the main process; the socket pair is not reachable by
anyone else).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import socket
import struct
import sys
import time
from typing import TYPE_CHECKING, Any, Final

from mailserver.config import Config
from storage.api import DeliveryResult, OverQuota, StoreError

if TYPE_CHECKING:
    from mailserver.smtp.limits import SharedAddressCounts

log = logging.getLogger(__name__)

_HEADER: Final = struct.Struct(">I")
_MAX_FRAME: Final = 16 * 1024 * 1024
_RESTART_MIN: Final = 1.0
_RESTART_MAX: Final = 30.0
_READY_TIMEOUT: Final = 120.0
"""Seconds a starting worker may take to bind its listener (imports, store start)."""
BUSY_SESSIONS: Final = 8
"""SMTP sessions open at once in the main process that start on-demand workers."""
IDLE_STOP: Final = 60.0
"""Seconds without that many sessions nor a delivery through a worker before
on-demand workers stop."""
IDLE_CHECK: Final = 10.0
STOP_TIMEOUT: Final = 15.0
"""Seconds a stopping worker may take (it lets deliveries finish first)."""


def worker_count(config: Config) -> int:
    """Worker processes to start beside the main process: ``smtp.processes``
    (0: the CPU count) minus the main process itself."""
    wanted = config.smtp.processes or os.cpu_count() or 1
    return max(0, wanted - 1)


async def read_frame(reader: asyncio.StreamReader) -> Any:
    """One frame's object; IncompleteReadError at the end of the stream."""
    size = _HEADER.unpack(await reader.readexactly(_HEADER.size))[0]
    if size > _MAX_FRAME:
        raise ValueError(f"channel frame of {size} octets")
    return pickle.loads(await reader.readexactly(size))  # noqa: S301 - our own processes only


def frame(obj: Any) -> bytes:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(data)) + data


class _Worker:
    """One worker process as the main process sees it."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.proc: asyncio.subprocess.Process | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.tasks: set[asyncio.Task[None]] = set()


class SmtpWorkers:
    """The main process's side: starts, serves and supervises the workers.

    ``on_demand`` (``smtp.processes = 0``, the default): the workers start only
    when the main process has ``BUSY_SESSIONS`` SMTP sessions at once (``wake``,
    called by its SmtpService) and stop again once it has had fewer for
    ``IDLE_STOP`` seconds with no delivery through them: one core is enough
    for a quiet MX, and a worker costs ~80 MB. Otherwise they run all the time."""

    def __init__(self, config: Config, store: Any, address: tuple[str, int], count: int, *,
                 on_demand: bool = False, address_counts: SharedAddressCounts | None = None) -> None:
        self._config = config
        self._address_counts = address_counts
        """The main SmtpService's per-address session counts, handed to each worker."""
        self._store = store
        self._address = address
        self._count = count
        self._on_demand = on_demand
        self._workers: list[_Worker] = []
        self._supervisors: list[asyncio.Task[None]] = []
        self._stopping = False
        self._paused = on_demand
        """True while the workers are (to be) stopped: supervisors do not restart them."""
        self._starting: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._busy_at = 0.0
        self.committed = 0
        """Deliveries committed for workers (tests, metrics)."""

    @property
    def pids(self) -> list[int]:
        return [w.proc.pid for w in self._workers if w.proc is not None and w.proc.returncode is None]

    async def start(self) -> dict[str, tuple[str, int]]:
        """Start every worker and wait until each listens (they bind the main
        process's address: no listener of their own to report); on demand,
        only the watch that stops them when idle."""
        if self._on_demand:
            self._watch = asyncio.create_task(self._idle_watch(), name="smtp-workers-idle")
        else:
            await self._start_all()
        return {}

    def wake(self, sessions: int) -> None:
        """The main process has ``sessions`` SMTP sessions open (it just took one)."""
        if sessions < BUSY_SESSIONS:
            return
        self._busy_at = time.monotonic()
        if self._paused and self._starting is None and not self._stopping:
            self._starting = asyncio.create_task(self._start_all(), name="smtp-workers-start")

    async def _start_all(self) -> None:
        try:
            self._paused = False
            self._workers = []
            for index in range(self._count):
                worker = _Worker(index)
                self._workers.append(worker)
                await self._spawn(worker)
            for worker in self._workers:
                task = asyncio.create_task(self._supervise(worker), name=f"smtp-worker-{worker.index}")
                self._supervisors.append(task)
            self._busy_at = time.monotonic()
        except OSError as exc:
            log.error("%s", exc)
            await self._stop_all()  # on demand: tried again at the next busy moment
            if not self._on_demand:
                raise
        finally:
            self._starting = None

    async def _idle_watch(self) -> None:
        while True:
            await asyncio.sleep(IDLE_CHECK)
            idle = time.monotonic() - self._busy_at > IDLE_STOP
            if idle and not self._paused and self._starting is None:
                log.info("smtp workers idle for %.0f s: stopping them", IDLE_STOP)
                await self._stop_all()

    async def restart(self, config: Config) -> None:
        """SIGHUP: the workers again, with ``config`` (one at a time; the other
        listeners keep accepting meanwhile)."""
        self._config = config
        for worker in self._workers:
            if worker.proc is not None and worker.proc.returncode is None:
                worker.proc.send_signal(signal.SIGTERM)  # the supervisor starts it again

    async def stop(self) -> None:
        self._stopping = True
        for task in (self._watch, self._starting):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self._stop_all()

    async def _stop_all(self) -> None:
        """SIGTERM to every worker (each finishes its sessions' deliveries as
        ``SmtpService.stop`` does), then wait for them."""
        self._paused = True
        for worker in self._workers:
            if worker.proc is not None and worker.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.proc.send_signal(signal.SIGTERM)
        for worker in self._workers:
            await self._reap(worker)
        for task in self._supervisors:
            task.cancel()
        await asyncio.gather(*self._supervisors, return_exceptions=True)
        self._supervisors = []
        self._workers = []

    async def _reap(self, worker: _Worker) -> None:
        proc = worker.proc
        if proc is not None:
            try:
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
            except TimeoutError:
                log.warning("smtp worker %d (pid %d) did not stop; killed", worker.index, proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._address_counts is not None:
            self._address_counts.clear_row(worker.index + 1)  # its sessions are gone with it
        # Commits asked for before it went still complete (their files are staged).
        if worker.tasks:
            await asyncio.gather(*worker.tasks, return_exceptions=True)
        if worker.writer is not None:
            worker.writer.close()
            worker.writer = None

    async def _spawn(self, worker: _Worker) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        counts = self._address_counts
        fds = [theirs.fileno()] if counts is None else [theirs.fileno(), counts.fd]
        if counts is not None:
            counts.clear_row(worker.index + 1)  # a killed predecessor could not release its sessions
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "mailserver.smtp.worker", str(theirs.fileno()), str(os.getpid()),
                str(counts.fd if counts is not None else -1),
                pass_fds=fds, stdin=asyncio.subprocess.DEVNULL,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        writer.write(frame((self._config, self._address, worker.index, self._count + 1)))
        try:
            ready = await asyncio.wait_for(read_frame(reader), _READY_TIMEOUT)
        except (TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            ready = type(exc).__name__
        if ready != "ready":
            writer.close()
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise OSError(f"smtp worker {worker.index} did not start: {ready}")
        worker.proc = proc
        worker.writer = writer
        log.info("smtp worker %d started (pid %d)", worker.index, proc.pid)
        worker.tasks.add(asyncio.create_task(self._serve(worker, reader, writer)))

    async def _serve(
        self, worker: _Worker, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """The worker's requests, each answered when done (several in flight)."""
        while True:
            try:
                request = await read_frame(reader)
            except (asyncio.IncompleteReadError, ConnectionError, ValueError):
                return
            task = asyncio.create_task(self._answer(request, writer))
            worker.tasks.add(task)
            task.add_done_callback(worker.tasks.discard)

    async def _answer(self, request: tuple[Any, ...], writer: asyncio.StreamWriter) -> None:
        request_id, op, *args = request
        reply: tuple[Any, ...]
        if op in ("sieve_file", "sieve_state"):
            reply = await self._sieve(request_id, op, args)
        elif op != "commit":
            reply = (request_id, "error", f"unknown request {op!r}")
        else:
            account_ids, staged, special_use, quota = args
            try:
                self._busy_at = time.monotonic()
                result = await self._store.commit_staged(account_ids, staged, special_use=special_use,
                                                         quota=quota)
                self.committed += 1
                reply = (request_id, "ok", result.placed)
            except OverQuota as exc:
                reply = (request_id, "over_quota", exc.account_id, exc.used, exc.limit, exc.size)
            except Exception as exc:  # noqa: BLE001 - told to the worker, which answers 451
                log.exception("commit for an smtp worker failed")
                reply = (request_id, "error", f"{type(exc).__name__}: {exc}")
        if not writer.is_closing():
            writer.write(frame(reply))

    async def _sieve(self, request_id: int, op: str, args: list[Any]) -> tuple[Any, ...]:
        """A worker's Sieve writes (filed copies, vacation and duplicate memory),
        done here: on SQLite the main process is the one writer."""
        from mailserver.sieve.deliver import file_copies
        from storage.sievestate import sieve_state_for

        try:
            self._busy_at = time.monotonic()
            if op == "sieve_file":
                result: Any = await file_copies(self._store, *args)
            else:
                method, *rest = args
                if method not in _STATE_METHODS:
                    raise ValueError(f"unknown state method {method!r}")
                result = await getattr(sieve_state_for(self._store), method)(*rest)
            return (request_id, "ok", result)
        except OverQuota as exc:
            return (request_id, "over_quota", exc.account_id, exc.used, exc.limit, exc.size)
        except Exception as exc:  # noqa: BLE001 - told to the worker, which answers 451
            log.exception("sieve request for an smtp worker failed")
            return (request_id, "error", f"{type(exc).__name__}: {exc}")

    async def _supervise(self, worker: _Worker) -> None:
        delay = _RESTART_MIN
        while not self._stopping and not self._paused:
            proc = worker.proc
            if proc is not None:
                code = await proc.wait()
                if self._stopping or self._paused:
                    return
                await self._reap(worker)
                worker.proc = None
                if code in (0, -signal.SIGTERM):  # stopped, or restarted by a reload
                    delay = _RESTART_MIN
                else:
                    log.error("smtp worker %d (pid %d) exited with %s; starting it again in %.0f s",
                              worker.index, proc.pid, code, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _RESTART_MAX)
            if self._stopping or self._paused:
                return
            try:
                await self._spawn(worker)
            except OSError as exc:
                log.error("%s; trying again in %.0f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RESTART_MAX)


_STATE_METHODS: Final = frozenset({"vacation_recent", "vacation_sent", "duplicates", "track", "purge"})


class SieveThroughMain:
    """What an SMTP worker's Sieve writes through the main process (SQLite has
    one writer): ``file_copies`` (mailserver/sieve/deliver.py) and the
    ``storage.sievestate.SieveState`` methods."""

    def __init__(self, channel: MainChannel) -> None:
        self._channel = channel

    async def file_copies(
        self, account_id: int, targets: list[Any], data: bytes, when: Any, junk: bool
    ) -> tuple[list[tuple[int, int, Any]], str | None]:
        placed, failure = await self._channel.request("sieve_file", account_id, targets, data, when, junk)
        return list(placed), failure

    async def vacation_recent(self, owner: str, handle: str, sender: str, now: Any) -> bool:
        return bool(await self._channel.request("sieve_state", "vacation_recent", owner, handle, sender, now))

    async def vacation_sent(self, owner: str, handle: str, sender: str, expires: Any) -> None:
        await self._channel.request("sieve_state", "vacation_sent", owner, handle, sender, expires)

    async def duplicates(self, owner: str, now: Any) -> frozenset[str]:
        return frozenset(await self._channel.request("sieve_state", "duplicates", owner, now))

    async def track(self, owner: str, entries: Any) -> None:
        await self._channel.request("sieve_state", "track", owner, list(entries))

    async def purge(self, now: Any) -> int:
        return int(await self._channel.request("sieve_state", "purge", now))


class MainChannel:
    """The worker's side of the channel: commits asked of the main process."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._next = 0
        self._waiting: dict[int, asyncio.Future[tuple[Any, ...]]] = {}
        self.closed = asyncio.Event()
        self._task = asyncio.create_task(self._receive(), name="smtp-worker-channel")

    async def _receive(self) -> None:
        try:
            while True:
                reply = await read_frame(self._reader)
                future = self._waiting.pop(reply[0], None)
                if future is not None and not future.done():
                    future.set_result(reply)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            self.closed.set()
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(StoreError("the main process is gone"))
            self._waiting.clear()

    async def request(self, op: str, *args: Any) -> Any:
        """One request to the main process; its result, or the store's exception."""
        if self.closed.is_set():
            raise StoreError("the main process is gone")
        self._next += 1
        request_id = self._next
        future: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        self._writer.write(frame((request_id, op, *args)))
        reply = await future
        if reply[1] == "ok":
            return reply[2]
        if reply[1] == "over_quota":
            raise OverQuota(*reply[2:6])
        raise StoreError(f"{op} in the main process failed: {reply[2]}")

    async def commit(self, account_ids: list[int], staged: Any, special_use: str | None,
                     quota: bool) -> DeliveryResult:
        if self.closed.is_set():
            raise StoreError("the main process is gone")
        self._next += 1
        request_id = self._next
        future: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        self._writer.write(frame((request_id, "commit", account_ids, staged, special_use, quota)))
        reply = await future
        if reply[1] == "ok":
            return DeliveryResult(placed=tuple(reply[2]))
        if reply[1] == "over_quota":
            raise OverQuota(*reply[2:6])
        raise StoreError(f"commit in the main process failed: {reply[2]}")

    async def close(self) -> None:
        self._writer.close()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
