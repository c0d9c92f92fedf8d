"""The IMAP driver: sockets, TLS, timeouts and IDLE around the sans-IO core.

RFC 9051 section 2.2 (client/server exchange), 6.2.1 (STARTTLS), RFC 8314
(implicit TLS), RFC 2177 (IDLE). This is the only asyncio code of the IMAP
server: it reads bytes, feeds them to ``Parser``, hands the events to
``Session`` and writes the responses as they are produced. It is also the only
place that catches broad exceptions: a fault while running a command is
logged with the connection id and answered ``NO [SERVERBUG]``; a fault outside
a command ends the connection with ``* BYE``. No traceback reaches a client.

Junk learning (the user as the spam filter's teacher): the session reports
messages put into (or rescued from) the \\Junk folder to ``JunkTrainer``, which
reads them and calls ``learner.learn`` in background tasks, a few at a time,
after the command has been answered; a failure is logged and nothing more.

Lifecycle: ``ImapService(config, store, authenticator, ssl_context, directory=,
learner=)``; ``await
start()`` binds ``imap.listen`` (STARTTLS offered when there is a TLS context)
and ``imap.tls_listen`` (implicit TLS) and returns what was bound; ``await
stop()`` closes the listeners and ends every session with ``* BYE``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import ssl
import time
from collections.abc import Sequence
from typing import Final, Protocol

from mailserver.auth import Authenticator
from mailserver.config import Config, parse_hostport
from mailserver.imap import commands as c
from mailserver.imap import responses as r
from mailserver.imap.parser import BadCommand, Command, NeedLiteral, Parser, RawLine
from mailserver.imap.responses import Response
from mailserver.imap.session import Session
from mailserver.ops.metrics import observe_command
from storage.api import MailStore, Uid
from storage.directory import DirectoryStore, open_directory

log = logging.getLogger(__name__)

READ_SIZE: Final = 65536
STOP_GRACE: Final = 5.0
"""Seconds stop() waits for commands in progress."""
TRAINING_CONCURRENCY: Final = 2
"""Messages trained at once (Bayes updates are SQLite writes in a thread)."""
TRAINING_BACKLOG: Final = 1000
"""Messages waiting beyond which further training is dropped (and logged)."""
IDLE_POLL_INTERVAL: Final = 30.0
"""Seconds between two looks at the store by a session in IDLE when the ChangeHub
reported nothing: changes by another process (CLI, a second node) reach idling
clients within this time (Dovecot's ``mailbox_idle_check_interval`` is 30 s too).
Changes made in this process wake the session at once."""
_ids = itertools.count(1)


class Learner(Protocol):
    """What trains the spam filter: ``policy.pipeline.Pipeline.learn``."""

    async def learn(self, message: bytes, is_spam: bool, *, undo: bool = False) -> None: ...


class JunkTrainer:
    """Background training from IMAP (the session's ``JunkTrainer`` hook).

    ``submit`` never blocks and never raises: it records the job and starts a task;
    a semaphore bounds how many messages are trained at once, the backlog bounds
    memory. Ham is learned as "ham, and undo the spam learning" because a message
    taken out of Junk was, most often, put there (and learned) by the user.
    """

    def __init__(self, store: MailStore, learner: Learner) -> None:
        self._store = store
        self._learner = learner
        self._slots = asyncio.Semaphore(TRAINING_CONCURRENCY)
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiting = 0

    def submit(self, account_id: int, folder_id: int, uids: Sequence[int], is_spam: bool) -> None:
        if self._waiting + len(uids) > TRAINING_BACKLOG:
            log.warning("imap: junk training backlog full, %d message(s) not learned", len(uids))
            return
        self._waiting += len(uids)
        task = asyncio.create_task(self._train(account_id, folder_id, list(uids), is_spam))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _train(self, account_id: int, folder_id: int, uids: list[int], is_spam: bool) -> None:
        for uid in uids:
            try:
                async with self._slots:
                    data = await self._store.read_message(account_id, folder_id, Uid(uid))
                    await self._learner.learn(data, is_spam)
                    if not is_spam:
                        await self._learner.learn(data, True, undo=True)
            except KeyError:
                pass  # expunged before it could be read
            except Exception:
                log.exception("imap: junk training failed for folder %d uid %d", folder_id, uid)
            finally:
                self._waiting -= 1

    async def drain(self) -> None:
        """Wait for the training started so far (tests; shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)


class ImapService:
    def __init__(
        self,
        config: Config,
        store: MailStore,
        authenticator: Authenticator,
        ssl_context: ssl.SSLContext | None,
        *,
        directory: DirectoryStore | None = None,
        learner: Learner | None = None,
    ) -> None:
        self._config = config
        self._store = store
        self._authenticator = authenticator
        self._ssl_context = ssl_context
        if directory is None:
            try:
                directory = open_directory(store)
            except TypeError:
                directory = None  # a store without a directory: no shared mailboxes
        self.directory = directory
        self.trainer = JunkTrainer(store, learner) if learner is not None else None
        self._servers: list[asyncio.Server] = []
        self._connections: set[asyncio.Task[None]] = set()
        self.in_flight = 0
        """Commands running now; ``stop`` lets them finish (mailserver/ops, SIGTERM)."""

    async def start(self) -> dict[str, tuple[str, int]]:
        settings = self._config.imap
        bound: dict[str, tuple[str, int]] = {}
        listeners: list[tuple[str, str, bool]] = [("imap", settings.listen, False)]
        if self._ssl_context is not None and settings.tls_listen:
            listeners.append(("imaps", settings.tls_listen, True))
        for name, where, implicit_tls in listeners:
            host, port = parse_hostport(where)

            async def accept(
                reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tls: bool = implicit_tls
            ) -> None:
                await self._accept(reader, writer, tls)

            server = await asyncio.start_server(
                accept, host, port, ssl=self._ssl_context if implicit_tls else None, backlog=1024
            )
            self._servers.append(server)
            sockname = server.sockets[0].getsockname()
            bound[name] = (sockname[0], sockname[1])
        return bound

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        # Graceful: commands already running get STOP_GRACE seconds to answer.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOP_GRACE):
                while self.in_flight:
                    await asyncio.sleep(0.01)
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._servers = []
        if self.trainer is not None:
            await self.trainer.stop()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tls: bool) -> None:
        task = asyncio.current_task()
        assert task is not None  # noqa: S101 - always inside a task here
        self._connections.add(task)
        conn = _Connection(self, reader, writer, tls)
        try:
            await conn.run()
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await conn.send(r.bye("Server shutting down"))
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)



WRITE_BATCH: Final = 65536
"""Octets of untagged responses gathered before they are written."""


class _Batch:
    """Response bytes waiting for one write; big literals are written as they are."""

    __slots__ = ("writer", "parts", "size")

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.parts: list[bytes] = []
        self.size = 0

    def add(self, response: Response) -> None:
        for chunk in response.chunks():
            if len(chunk) >= WRITE_BATCH:
                self._write()
                self.writer.write(chunk)
            else:
                self.parts.append(chunk)
                self.size += len(chunk)

    def _write(self) -> None:
        if self.parts:
            self.writer.write(b"".join(self.parts))
            self.parts.clear()
            self.size = 0

    async def flush(self) -> None:
        self._write()
        await self.writer.drain()


class _Connection:
    """One client: read, feed, write (hypercorn's tcp_server loop)."""

    def __init__(
        self, service: ImapService, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tls: bool
    ) -> None:
        settings = service._config.imap
        peer = writer.get_extra_info("peername")
        self.id = f"i{next(_ids)}"
        self.service = service
        self.reader = reader
        self.writer = writer
        self.settings = settings
        self.parser = Parser(max_line=settings.max_line, max_literal=settings.max_literal)
        self.session = Session(
            service._store,
            service._authenticator,
            settings,
            secure=tls,
            remote_ip=peer[0] if isinstance(peer, tuple) else "",
            starttls_available=service._ssl_context is not None and not tls,
            connection_id=self.id,
            directory=service.directory,
            trainer=service.trainer,
        )

    async def send(self, response: Response) -> None:
        for chunk in response.chunks():
            self.writer.write(chunk)
        await self.writer.drain()

    def _timeout(self) -> float:
        session = self.session
        if session.idling:
            return float(self.settings.idle_timeout)
        if session.account is None:
            return float(self.settings.timeout)
        return float(self.settings.autologout)

    async def run(self) -> None:
        try:
            await self.send(self.session.greeting())
            await self._loop()
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, TimeoutError):
            pass
        except Exception:
            log.exception("imap %s: connection failed", self.id)
            with contextlib.suppress(Exception):
                await self.send(r.bye("Internal server error", "SERVERBUG"))

    async def _loop(self) -> None:
        hub = self.service._store.changes
        read: asyncio.Task[bytes] | None = None
        deadline = 0.0
        # While IDLE: a future the hub completes at the folder's next change (one
        # future per idling session, re-armed before each poll so that a change
        # made while the poll runs wakes the next wait).
        wake: tuple[int, asyncio.Future[None]] | None = None
        loop = asyncio.get_running_loop()
        try:
            while self.session.state is not c.State.LOGOUT:
                if read is None:
                    read = asyncio.ensure_future(self.reader.read(READ_SIZE))
                    deadline = loop.time() + self._timeout()
                folder = self.session.watched_folder if self.session.idling else None
                if wake is not None and wake[0] != folder:
                    hub.forget(*wake)
                    wake = None
                if folder is not None and wake is None:
                    wake = (folder, hub.next_change(folder))
                    if self.session.missed_change:
                        wake[1].set_result(None)  # changed since the IDLE command's own poll
                waiters: set[asyncio.Future[object]] = {read}  # type: ignore[arg-type]
                wait = deadline - loop.time()
                if wake is not None:
                    waiters.add(wake[1])  # type: ignore[arg-type]
                    wait = min(wait, IDLE_POLL_INTERVAL)
                done, _ = await asyncio.wait(
                    waiters, timeout=max(wait, 0.0), return_when=asyncio.FIRST_COMPLETED
                )
                if not done and loop.time() >= deadline:
                    await self.send(r.bye("Autologout: idle for too long"))
                    return
                if wake is not None and (wake[1] in done or not done):
                    # Woken by the hub, or the IDLE poll interval passed (changes by
                    # another process): the session asks the store if it may be stale.
                    hub.forget(*wake)
                    wake = (wake[0], hub.next_change(wake[0]))
                    for resp in await self.session.poll():
                        await self.send(resp)
                if read in done:
                    data = read.result()
                    read = None
                    if not data:
                        return
                    await self._received(data)
        finally:
            if read is not None:
                read.cancel()
            if wake is not None:
                hub.forget(*wake)
            self.session.close()

    async def _received(self, data: bytes) -> None:
        events = self.parser.feed(data)
        while events:
            for event in events:
                if isinstance(event, NeedLiteral):
                    if event.sync:
                        await self.send(r.Continuation("Ready for literal"))
                    continue
                self.service.in_flight += 1
                started = time.monotonic()
                try:
                    started_tls = await self._run(event)
                finally:
                    self.service.in_flight -= 1
                    name = type(getattr(event, "command", event)).__name__
                    observe_command(name, time.monotonic() - started)
                if started_tls or self.session.state is c.State.LOGOUT:
                    return
            if not self.session.awaiting_line:
                self.parser.end_raw()
            events = self.parser.feed(b"") if self.parser.buffered else []

    async def _run(self, event: Command | BadCommand | RawLine) -> bool:
        """Run one command; True if it switched the connection to TLS."""
        final_ok = False
        out = _Batch(self.writer)
        try:
            async for resp in self.session.stream(event):
                # Untagged responses are gathered into few large writes (a FETCH of
                # a whole folder is thousands of them); anything the client waits
                # for - a continuation, the tagged completion - leaves at once.
                out.add(resp)
                if out.size >= WRITE_BATCH or not isinstance(resp, r.Untagged | r.Prebuilt):
                    await out.flush()
                final_ok = isinstance(resp, r.Tagged) and resp.status == "OK"
            await out.flush()
        except (ConnectionError, ssl.SSLError):
            raise
        except Exception:
            await out.flush()
            log.exception(
                "imap %s: error running %s", self.id, type(getattr(event, "command", event)).__name__
            )
            tag = event.tag if isinstance(event, Command | BadCommand) else "*"
            if tag == "*":
                await self.send(r.status_line("NO", "Internal server error", "SERVERBUG"))
            else:
                await self.send(r.no(tag, "Internal server error", "SERVERBUG"))
            return False
        if isinstance(event, Command) and isinstance(event.command, c.StartTls) and final_ok:
            context = self.service._ssl_context
            assert context is not None  # noqa: S101 - STARTTLS is refused without one
            await self.writer.start_tls(context)
            self.session.tls_started()
            self.parser.reset()  # RFC 9051 section 11.1: drop plaintext sent before TLS
            return True
        return False
