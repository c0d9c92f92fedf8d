"""What one SMTP client may cost the server: connections, memory, errors.

* ``ConnectionLimiter``: ``smtp.max_connections`` sessions per listener service
  and ``smtp.max_connections_per_ip`` from one client address (Postfix's
  process limit and anvil ``smtpd_client_connection_count_limit``); a client
  over either gets ``421 4.7.0`` at connect and is disconnected (RFC 5321
  section 3.8 lets a server refuse service with 421 at any time). Clients in
  ``smtp.relay_networks`` count towards the total only (Postfix exempts
  ``$mynetworks`` from anvil limits the same way). With SMTP worker processes
  (``smtp.processes``) the per-address counts live in ``SharedAddressCounts``,
  one table every process serving the listener updates, so an address gets
  ``max_connections_per_ip`` sessions in all, not that many per process.
* ``Spool``: the mail data of one DATA command as it arrives. Up to
  ``SPOOL_THRESHOLD`` octets stay in memory (most mail, so the common case
  costs no file); beyond it everything goes to an anonymous file in
  ``<data_dir>/tmp`` (``O_TMPFILE``: nothing is left behind by a crash), so a
  session mid-DATA holds at most the threshold in memory whatever the size.
  The file is a staging copy only: durability is the store's (fsync of the
  message file, its directory and the committed row before the 250).
* ``MemoryBudget``: once DATA is complete, a spooled message is read back to be
  checked (sender authentication, the content policy) and stored. At most
  ``smtp.max_data_in_memory`` octets of such messages are in memory at once
  across the sessions of a service; the others wait, on disk, for their turn
  (a message larger than the budget is admitted alone).
* Recipient harvesting (``smtp.soft_error_limit`` / ``hard_error_limit``,
  Postfix's ``smtpd_soft_error_limit`` / ``smtpd_hard_error_limit``): counted
  per session by ``handler.MxSMTP``; ``tarpit_delay`` gives the delay.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import mmap
import os
import tempfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final

from mailserver.config import Config
from mailserver.smtp.delivery import IpNetwork, in_networks, parse_networks

SPOOL_THRESHOLD: Final = 256 * 1024
"""Octets of mail data a session keeps in memory before spooling to a file."""
MAX_TARPIT_DELAY: Final = 10.0
"""Longest delay, in seconds, before a reply to a client over the soft error limit."""


class SharedAddressCounts:
    """Sessions per client address, counted together by every process serving one
    listener (the main process and its SMTP workers, ``mailserver.smtp.workers``).

    An anonymous shared memory file (``memfd``: nothing on disk, gone with the last
    process) that the main process creates and each worker inherits as a
    descriptor. It holds a row of ``SLOTS`` 32-bit counters per process (row 0 the
    main process, row i+1 worker i); an address counts in the slot its CRC-32
    picks. A process adds to its own row only after summing the slot over all
    rows under a POSIX lock of that slot (a lock is per process, and each process
    counts from its event loop's thread only), and removes from its own row. A
    worker that dies cannot release its sessions: the main process clears its row
    before starting its replacement (``clear_row``). Two addresses that share a
    slot are counted together: with 65,536 slots that needs two busy clients
    whose sum reaches the limit in one slot, and it errs on the side of refusing."""

    SLOTS: Final = 65536

    def __init__(self, fd: int, rows: int, row: int = 0) -> None:
        self.fd = fd
        self.rows = rows
        self.row = row
        self._map = mmap.mmap(fd, rows * self.SLOTS * 4)
        self._counts = memoryview(self._map).cast("i")

    @classmethod
    def create(cls, rows: int) -> SharedAddressCounts | None:
        """A zeroed table for ``rows`` processes, this one row 0; None where memfds
        do not exist (each process then counts on its own)."""
        memfd_create = getattr(os, "memfd_create", None)
        if memfd_create is None:
            return None
        try:
            fd = memfd_create("mailserver-smtp-clients", os.MFD_CLOEXEC)
            os.ftruncate(fd, rows * cls.SLOTS * 4)
        except OSError:
            return None
        return cls(fd, rows)

    def _slot(self, ip: str) -> int:
        return zlib.crc32(ip.encode()) % self.SLOTS

    def count(self, ip: str) -> int:
        """Sessions of ``ip`` in all processes."""
        slot = self._slot(ip)
        return sum(self._counts[row * self.SLOTS + slot] for row in range(self.rows))

    def add(self, ip: str, limit: int) -> bool:
        """Count one more session of ``ip`` unless it already has ``limit`` in all (0: no limit)."""
        slot = self._slot(ip)
        fcntl.lockf(self.fd, fcntl.LOCK_EX, 4, slot * 4)
        try:
            if limit and self.count(ip) >= limit:
                return False
            self._counts[self.row * self.SLOTS + slot] += 1
            return True
        finally:
            fcntl.lockf(self.fd, fcntl.LOCK_UN, 4, slot * 4)

    def remove(self, ip: str) -> None:
        """One session of ``ip`` in this process ended (only this process writes its row)."""
        index = self.row * self.SLOTS + self._slot(ip)
        if self._counts[index] > 0:
            self._counts[index] -= 1

    def clear_row(self, row: int) -> None:
        """Forget what a process that has ended counted."""
        self._map[row * self.SLOTS * 4:(row + 1) * self.SLOTS * 4] = bytes(self.SLOTS * 4)


class ConnectionLimiter:
    """Open sessions of one listener service, in total and per client address
    (in ``shared`` when several processes serve the listener)."""

    def __init__(self, max_total: int, max_per_ip: int, exempt: Sequence[IpNetwork] = (),
                 shared: SharedAddressCounts | None = None) -> None:
        self.max_total = max_total
        self.max_per_ip = max_per_ip
        self._exempt = tuple(exempt)
        self._shared = shared
        self._total = 0
        self._per_ip: dict[str, int] = {}

    @property
    def total(self) -> int:
        return self._total

    def admit(self, ip: str) -> bool:
        """Count a new session from ``ip``; False (nothing counted) when over a limit.
        0 means no limit."""
        if self.max_total and self._total >= self.max_total:
            return False
        # relay_networks clients are exempt (parsed only when there are such networks).
        limit = 0 if self._exempt and in_networks(ip, self._exempt) else self.max_per_ip
        if self._shared is not None:
            if not self._shared.add(ip, limit):
                return False
        else:
            count = self._per_ip.get(ip, 0)
            if limit and count >= limit:
                return False
            self._per_ip[ip] = count + 1
        self._total += 1
        return True

    def release(self, ip: str) -> None:
        """Forget a session ``admit`` counted."""
        self._total -= 1
        if self._shared is not None:
            self._shared.remove(ip)
            return
        count = self._per_ip.get(ip, 0) - 1
        if count > 0:
            self._per_ip[ip] = count
        else:
            self._per_ip.pop(ip, None)


class MemoryBudget:
    """Octets of complete spooled messages held in memory at once (module
    docstring). Waiters are served in order; ``release`` never blocks, so it
    is safe in a ``finally`` of a cancelled session."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()

    def _fits(self, size: int) -> bool:
        return self.used == 0 or self.used + size <= self.limit

    async def acquire(self, size: int) -> None:
        """Wait until ``size`` more octets fit (or nothing else is held)."""
        if not self._waiters and self._fits(size):
            self.used += size
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (size, waiter)
        self._waiters.append(entry)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(size)  # granted just as it was cancelled
            else:
                self._waiters.remove(entry)
                self._wake()
            raise

    def release(self, size: int) -> None:
        self.used -= size
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._fits(self._waiters[0][0]):
            size, waiter = self._waiters.popleft()
            if not waiter.done():
                self.used += size
                waiter.set_result(None)


class Spool:
    """The unstuffed mail data of one DATA command (module docstring)."""

    def __init__(self, directory: Path | None, threshold: int = SPOOL_THRESHOLD) -> None:
        self._directory = directory
        self._threshold = threshold
        self._memory: list[bytes] = []
        self._buffered = 0
        self._file: IO[bytes] | None = None
        self.size = 0

    @property
    def on_disk(self) -> bool:
        return self._file is not None

    async def write(self, data: bytes) -> None:
        if not data:
            return
        self._memory.append(data)
        self._buffered += len(data)
        self.size += len(data)
        if self._directory is not None and self._buffered >= self._threshold:
            await self._flush()

    async def _flush(self) -> None:
        chunk = b"".join(self._memory)
        self._memory.clear()
        self._buffered = 0
        if self._file is None:
            self._file = await asyncio.to_thread(_anonymous_file, self._directory)
        await asyncio.to_thread(self._file.write, chunk)

    async def read(self) -> bytes:
        """Everything written, as one bytes object."""
        if self._file is None:
            return b"".join(self._memory)
        if self._memory:
            await self._flush()
        return await asyncio.to_thread(_read_all, self._file)

    def close(self) -> None:
        self._memory.clear()
        file, self._file = self._file, None
        if file is not None:
            with contextlib.suppress(OSError):
                file.close()


def _anonymous_file(directory: Path | None) -> IO[bytes]:
    if directory is not None:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 - closed by Spool.close


def _read_all(file: IO[bytes]) -> bytes:
    file.flush()
    file.seek(0)
    data = file.read()
    file.seek(0, os.SEEK_END)
    return data


def tarpit_delay(errors: int, soft_limit: int) -> float:
    """Seconds to wait before each reply once a session made ``errors`` errors:
    none up to the soft limit, then one second more per error (Postfix slows
    every reply down by the error count), at most ``MAX_TARPIT_DELAY``."""
    if soft_limit <= 0 or errors <= soft_limit:
        return 0.0
    return min(float(errors - soft_limit), MAX_TARPIT_DELAY)


@dataclass(frozen=True, slots=True)
class SessionLimits:
    """What ``handler.MxSMTP`` enforces; the defaults limit nothing (unit tests)."""

    spool_dir: Path | None = None
    """Where spooled DATA goes; None keeps all of it in memory."""
    budget: MemoryBudget | None = None
    connections: ConnectionLimiter | None = None
    soft_error_limit: int = 0
    """Refused recipients after which every reply is delayed; 0: never."""
    hard_error_limit: int = 0
    """Refused recipients at which the session gets 421 and is closed; 0: never."""
    spool_threshold: int = field(default=SPOOL_THRESHOLD)


def session_limits(config: Config, processes: int = 1,
                   address_counts: SharedAddressCounts | None = None) -> SessionLimits:
    """The limits of one listener service (its own connection count and budget);
    served by ``processes`` processes, each gets its share of the connections
    and of the memory; the limit per client address holds for all of them
    together through ``address_counts`` (without it, per process)."""
    smtp = config.smtp
    share = max(1, processes)
    return SessionLimits(
        spool_dir=config.data_dir / "tmp",
        budget=MemoryBudget(max(1, smtp.max_data_in_memory // share)),
        connections=ConnectionLimiter(
            -(-smtp.max_connections // share), smtp.max_connections_per_ip,
            parse_networks(smtp.relay_networks), address_counts,
        ),
        soft_error_limit=smtp.soft_error_limit,
        hard_error_limit=smtp.hard_error_limit,
    )
