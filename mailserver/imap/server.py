"""The IMAP driver: sockets, TLS, timeouts and IDLE around the sans-IO core.

RFC 9051 section 2.2 (client/server exchange), 6.2.1 (STARTTLS), RFC 8314
(implicit TLS), RFC 2177 (IDLE). This is the only asyncio code of the IMAP
server: it reads bytes, hands them to the sans-IO ``Connection`` (parser,
literal continuations, the parser/session hand-off; the tests use the same
object), runs each event it gives through ``Session`` and writes the responses
as they are produced. The sessions of one service share a ``FolderCache``
(``selected.py``), owned here. It is also the only
place that catches broad exceptions: a fault while running a command is
logged with the connection id and answered ``NO [SERVERBUG]``; a fault outside
a command ends the connection with ``* BYE``. No traceback reaches a client.

Junk learning (the user as the spam filter's teacher): the session reports
messages put into (or rescued from) the \\Junk folder to ``JunkTrainer``, which
reads them and calls ``learner.learn`` in background tasks, a few at a time,
after the command has been answered; a failure is logged and nothing more.

Resource limits (what an unauthenticated or hostile client can take)
--------------------------------------------------------------------
* Connections: at most ``imap.max_connections`` at once and
  ``imap.max_connections_per_ip`` from one address; one more is answered
  ``* BYE`` and closed at once. Logged-in connections of one account are
  counted too (``imap.max_connections_per_user``; the session answers the
  LOGIN beyond it ``NO [LIMIT]``).
* Input: before login a literal may hold ``imap.max_preauth_literal`` octets
  (the parser refuses more without reading them); the connection ends
  ``imap.login_timeout`` seconds after connect unless a login succeeded, and
  a command must be complete ``imap.command_timeout`` seconds (plus its
  literals' size at ``imap.min_literal_rate``) after its first octet, however
  slowly the bytes drip in. Silence ends it after ``imap.timeout`` /
  ``imap.autologout`` / ``imap.idle_timeout`` as before.
* Output: ``_Output`` writes responses as the session produces them and awaits
  the transport's drain whenever octets wait unsent, so a FETCH is produced only
  as fast as the client reads (a client that stops reading costs one message
  in memory, not the whole response); one that reads nothing for the inactivity
  timeout is disconnected.

STARTTLS (RFC 9051 section 6.2.1, CVE-2011-0411): every plaintext octet received
before the TLS handshake - in the parser's buffer or still in the stream
reader's - is discarded, so nothing injected in clear is run as if protected.

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
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, Protocol

from mailserver import netopt, proxyproto
from mailserver.auth import Authenticator
from mailserver.certlogin import CertLogin
from mailserver.config import Config, parse_hostport
from mailserver.imap import commands as c
from mailserver.imap import responses as r
from mailserver.imap.connection import NEED_DATA, Connection
from mailserver.imap.parser import BadCommand, Command, RawLine
from mailserver.imap.responses import Response
from mailserver.imap.selected import FolderCache
from mailserver.imap.session import Session
from mailserver.ops.metrics import observe_command
from mailserver.web.settings import portal_url
from storage.api import ChangeHub, MailStore, Uid
from storage.directory import DirectoryStore, open_directory

log = logging.getLogger(__name__)

READ_SIZE: Final = 65536
LINGER: Final = 2.0
"""Seconds input is still read (and dropped) after a BYE to a client that may be
sending: closing with unread input makes the kernel send a TCP reset, and a
reset makes the client's kernel drop the BYE before the client has read it."""
REFUSAL_LOG_INTERVAL: Final = 60.0
"""Seconds between two log lines about connections refused over the caps."""
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


class _UserSlots:
    """Logged-in connections per account (the session's ``UserSlots``)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count: dict[int, int] = {}

    def acquire(self, account_id: int) -> bool:
        held = self.count.get(account_id, 0)
        if held >= self.limit:
            return False
        self.count[account_id] = held + 1
        return True

    def release(self, account_id: int) -> None:
        held = self.count.get(account_id, 0) - 1
        if held > 0:
            self.count[account_id] = held
        else:
            self.count.pop(account_id, None)


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
        cert_login: CertLogin | None = None,
    ) -> None:
        self._config = config
        self.cert_login = cert_login
        """SASL EXTERNAL with TLS client certificates (mailserver/certlogin.py), or None."""
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
        self._servers: list[asyncio.Server | proxyproto.ProxiedServer] = []
        self._connections: set[asyncio.Task[None]] = set()
        self.connections: dict[str, _Connection] = {}
        """The connections being served, by id (tests; what the ops pages may show)."""
        self._per_ip: dict[str, int] = {}
        self._refused = 0
        self._refusal_logged_at = float("-inf")
        self.user_slots = _UserSlots(config.imap.max_connections_per_user)
        self.folders = FolderCache()
        """What the sessions share about selected folders (UID snapshots, index reads, change answers)."""
        self.password_url = portal_url(config.web, config.server.hostname) + "/password"
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

            server = await self._listen(accept, host, port, self._ssl_context if implicit_tls else None)
            self._servers.append(server)
            sockname = server.sockets[0].getsockname()
            bound[name] = (sockname[0], sockname[1])
        return bound

    def connection_count(self) -> int:
        """Sessions open now (metrics, the portal's dashboard)."""
        return len(self._connections)

    async def _listen(
        self,
        accept: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
    ) -> asyncio.Server | proxyproto.ProxiedServer:
        if not self._config.imap.proxy_protocol:
            return await asyncio.start_server(accept, host, port, ssl=ssl_context, backlog=1024)
        loop = asyncio.get_running_loop()

        def stream_protocol() -> asyncio.BaseProtocol:
            # What asyncio.start_server builds for each connection.
            return asyncio.StreamReaderProtocol(asyncio.StreamReader(loop=loop), accept, loop=loop)

        return await proxyproto.serve(
            stream_protocol, host, port, ssl_context=ssl_context, name="imap",
            refusal=proxyproto.IMAP_REFUSAL if ssl_context is None else b"",
            trusted_proxies=proxyproto.parse_networks(self._config.server.trusted_proxies),
        )

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

    def _over_limit(self, ip: str) -> str | None:
        """Why one more connection from ``ip`` is refused, or None."""
        settings = self._config.imap
        if len(self._connections) >= settings.max_connections:
            return "Máy chủ đang quá tải / Too many connections, try again later"
        if self._per_ip.get(ip, 0) >= settings.max_connections_per_ip:
            return "Quá nhiều kết nối từ địa chỉ này / Too many connections from your address"
        return None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tls: bool) -> None:
        task = asyncio.current_task()
        assert task is not None  # noqa: S101 - always inside a task here
        ip = proxyproto.client_ip(writer.transport)
        refused = self._over_limit(ip)
        if refused is not None:
            self._refused += 1
            now = time.monotonic()
            if now >= self._refusal_logged_at + REFUSAL_LOG_INTERVAL:
                # Once a minute at most: a flood of connections must not flood the log.
                log.warning(
                    "imap: %d connection(s) refused since the last report, the latest from %s: %s",
                    self._refused,
                    ip,
                    refused.rsplit(" / ", 1)[-1],
                )
                self._refused, self._refusal_logged_at = 0, now
            with contextlib.suppress(Exception):
                writer.write(r.for_client(r.bye(refused), False).to_bytes())
                async with asyncio.timeout(5.0):
                    await writer.drain()
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
            return
        self._connections.add(task)
        self._per_ip[ip] = self._per_ip.get(ip, 0) + 1
        conn = _Connection(self, reader, writer, tls)
        self.connections[conn.id] = conn
        try:
            await conn.run()
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await conn.send(r.bye("Server shutting down"))
        finally:
            self._connections.discard(task)
            self.connections.pop(conn.id, None)
            left = self._per_ip.get(ip, 1) - 1
            if left > 0:
                self._per_ip[ip] = left
            else:
                self._per_ip.pop(ip, None)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)


WRITE_BATCH: Final = 65536
"""Octets of untagged responses gathered before they are written, and the size of
the slices a large literal is written in."""


class _ClientGoneError(Exception):
    """The client went away or stopped reading: end the connection quietly."""


class _Output:
    """Response bytes on their way to the client, with flow control.

    Small responses are gathered into writes of about ``WRITE_BATCH`` octets (a
    FETCH of a whole folder is thousands of lines); a large literal is written in
    ``WRITE_BATCH`` slices without copying. Whenever octets wait unsent in the
    transport, the transport's drain is awaited: past its high-water mark that
    waits until the client has read, so the session produces the next response
    only then. A client that reads nothing for ``timeout()`` seconds is gone.
    """

    __slots__ = ("writer", "timeout", "parts", "size")

    def __init__(self, writer: asyncio.StreamWriter, timeout: Callable[[], float]) -> None:
        self.writer = writer
        self.timeout = timeout
        self.parts: list[bytes] = []
        self.size = 0

    async def add(self, response: Response) -> None:
        for chunk in response.chunks():
            if len(chunk) >= WRITE_BATCH:
                await self.flush()
                view = memoryview(chunk)
                for start in range(0, len(view), WRITE_BATCH):
                    self.writer.write(view[start : start + WRITE_BATCH])
                    await self._drain()
            else:
                self.parts.append(chunk)
                self.size += len(chunk)

    async def flush(self) -> None:
        if self.parts:
            self.writer.write(b"".join(self.parts))
            self.parts.clear()
            self.size = 0
        await self._drain()

    async def _drain(self) -> None:
        transport = self.writer.transport
        if transport.is_closing():
            raise _ClientGoneError("connection closed")
        if not transport.get_write_buffer_size():
            return  # all sent already: the common case costs no await
        try:
            async with asyncio.timeout(self.timeout()):
                await self.writer.drain()
        except TimeoutError:
            raise _ClientGoneError("client stopped reading") from None


def _discard_unread(reader: asyncio.StreamReader) -> int:
    """Drop the octets the stream reader holds but nobody has read yet; their count.

    asyncio has no public call for this; ``_buffer`` is the bytearray every
    CPython since 3.4 keeps them in. At STARTTLS they are plaintext the client (or
    a man in the middle) sent before the handshake: RFC 9051 section 6.2.1 (and
    CVE-2011-0411) say they must not be read as if they came over TLS."""
    buffered = getattr(reader, "_buffer", None)
    if not isinstance(buffered, bytearray):  # pragma: no cover - another asyncio
        raise RuntimeError("cannot discard plaintext before TLS on this asyncio")
    count = len(buffered)
    buffered.clear()
    return count


class _Connection:
    """One client: read, feed, write (hypercorn's tcp_server loop)."""

    def __init__(
        self, service: ImapService, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tls: bool
    ) -> None:
        settings = service._config.imap
        self.id = f"i{next(_ids)}"
        self.service = service
        self.reader = reader
        self.writer = writer
        self.settings = settings
        self.session = Session(
            service._store,
            service._authenticator,
            settings,
            secure=tls,
            remote_ip=proxyproto.client_ip(writer.transport),
            starttls_available=service._ssl_context is not None and not tls,
            connection_id=self.id,
            directory=service.directory,
            trainer=service.trainer,
            user_slots=service.user_slots,
            password_url=service.password_url,
            folders=service.folders,
            search=service._config.search,
        )
        self.session.cert_login = service.cert_login
        self.conn = Connection(self.session, settings)
        """The sans-IO side: parser, literals and the parser/session hand-off."""
        self.received = 0
        """Octets read from the client (decrypted under TLS)."""
        self.sock = netopt.tune(writer.transport)
        """The TCP socket, for ``netopt.quickack`` (see ``_received``)."""

    async def send(self, response: Response) -> None:
        out = _Output(self.writer, self._timeout)
        await out.add(r.for_client(response, self.session.utf8_text))
        await out.flush()

    def _timeout(self) -> float:
        session = self.session
        if session.idling:
            return float(self.settings.idle_timeout)
        if session.account is None:
            return float(self.settings.timeout)
        return float(self.settings.autologout)

    async def _identify_certificate(self) -> None:
        """Check the client's TLS certificate, if any, for AUTHENTICATE EXTERNAL."""
        if self.service.cert_login is not None:
            self.session.certificate = await self.service.cert_login.identify(
                self.writer.get_extra_info("ssl_object")
            )

    async def run(self) -> None:
        try:
            if self.session.secure:
                await self._identify_certificate()
            await self.send(self.session.greeting())
            await self._loop()
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, TimeoutError, _ClientGoneError):
            pass
        except Exception:
            log.exception("imap %s: connection failed", self.id)
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await self.send(r.bye("Internal server error", "SERVERBUG"))

    def _deadline(
        self, silence_until: float, connected: float, command: tuple[int, float] | None
    ) -> tuple[float, str]:
        """The earliest of the deadlines that apply now, and the BYE text for it."""
        settings = self.settings
        deadline, why = silence_until, "Autologout: idle for too long"
        if self.session.account is None:
            login_by = connected + settings.login_timeout
            if login_by < deadline:
                deadline, why = login_by, "Login timeout: log in sooner"
        if command is not None:
            literals = self.conn.parser.announced / settings.min_literal_rate
            command_by = command[1] + settings.command_timeout + literals
            if command_by < deadline:
                deadline, why = command_by, "Command timeout: the command was not sent in time"
        return deadline, why

    async def _loop(self) -> None:
        hub = self.service._store.changes
        read: asyncio.Task[bytes] | None = None
        silence_until = 0.0
        loop = asyncio.get_running_loop()
        connected = loop.time()
        command: tuple[int, float] | None = None
        """While a command is partly received: (parser.completed, when it was first seen)."""
        # While IDLE: a future the hub completes at the folder's next change (one
        # future per idling session, re-armed before each poll so that a change
        # made while the poll runs wakes the next wait).
        wake: tuple[int, asyncio.Future[None]] | None = None
        try:
            while self.session.state is not c.State.LOGOUT:
                if read is None:
                    read = asyncio.ensure_future(self.reader.read(READ_SIZE))
                    silence_until = loop.time() + self._timeout()
                if not self.conn.pending:
                    command = None
                elif command is None or command[0] != self.conn.parser.completed:
                    command = (self.conn.parser.completed, loop.time())
                deadline, why = self._deadline(silence_until, connected, command)
                wake = self._arm(hub, wake)
                waiters: set[asyncio.Future[object]] = {read}  # type: ignore[arg-type]
                wait = deadline - loop.time()
                if wake is not None:
                    waiters.add(wake[1])  # type: ignore[arg-type]
                    wait = min(wait, IDLE_POLL_INTERVAL)
                done, _ = await asyncio.wait(
                    waiters, timeout=max(wait, 0.0), return_when=asyncio.FIRST_COMPLETED
                )
                if not done and loop.time() >= deadline:
                    await self._time_out(why, read)
                    read = None
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
                    if not await self._received(data):
                        return
        finally:
            if read is not None:
                read.cancel()
            if wake is not None:
                hub.forget(*wake)
            self.session.close()

    def _arm(
        self, hub: ChangeHub, wake: tuple[int, asyncio.Future[None]] | None
    ) -> tuple[int, asyncio.Future[None]] | None:
        """The hub future to wait on with the next read: the selected folder's next
        change while the session is in IDLE, None otherwise."""
        folder = self.session.watched_folder if self.session.idling else None
        if wake is not None and wake[0] != folder:
            hub.forget(*wake)
            wake = None
        if folder is not None and wake is None:
            wake = (folder, hub.next_change(folder))
            if self.session.missed_change:
                wake[1].set_result(None)  # changed since the IDLE command's own poll
        return wake

    async def _time_out(self, why: str, read: asyncio.Future[bytes]) -> None:
        """A deadline passed: ``* BYE`` with the reason, then linger."""
        log.info("imap %s: %s", self.id, why)
        await self.send(r.bye(why))
        read.cancel()
        await asyncio.wait([read])  # the reader serves one waiter at a time
        await self._linger()

    async def _linger(self) -> None:
        """Half-close and drop what the client still sends, for ``LINGER`` seconds at
        most, so that the BYE just written reaches it (see ``LINGER``)."""
        with contextlib.suppress(Exception):
            if self.writer.can_write_eof():
                self.writer.write_eof()
            async with asyncio.timeout(LINGER):
                while await self.reader.read(READ_SIZE):
                    pass

    async def _received(self, data: bytes) -> bool:
        """Run what ``data`` completes; False when the connection must end."""
        self.received += len(data)
        self.conn.receive_data(data)
        if self.conn.pending:
            # The client may be holding the rest of this command (Nagle) until we
            # acknowledge what came: acknowledge now, not after Linux's delayed-ACK
            # timeout (mailserver/netopt.py).
            netopt.quickack(self.sock)
        while (event := self.conn.next_event()) is not NEED_DATA:
            if isinstance(event, r.Continuation):
                await self.send(event)
                # Sending just re-entered delayed-ACK mode: the literal's ACK must
                # not wait (imaplib sends its CRLF only after it).
                netopt.quickack(self.sock)
                continue
            self.service.in_flight += 1
            started = time.monotonic()
            try:
                started_tls = await self._run(event)
            finally:
                self.service.in_flight -= 1
                name = type(getattr(event, "command", event)).__name__
                observe_command(name, time.monotonic() - started)
            if isinstance(event, BadCommand) and event.fatal:
                await self.send(r.bye("Literal too large before login"))
                await self._linger()
                return False
            if self.session.state is c.State.LOGOUT:
                return False
            if started_tls:
                return True
        return True

    async def _run(self, event: Command | BadCommand | RawLine) -> bool:
        """Run one command; True if it switched the connection to TLS."""
        final_ok = False
        out = _Output(self.writer, self._timeout)
        try:
            async with contextlib.aclosing(self.session.stream(event)) as responses:
                async for resp in responses:
                    # Untagged responses are gathered into few large writes (a FETCH of
                    # a whole folder is thousands of them); anything the client waits
                    # for - a continuation, the tagged completion - leaves at once.
                    await out.add(resp)
                    if out.size >= WRITE_BATCH or not isinstance(resp, r.Untagged | r.Fetch | r.FetchLines):
                        await out.flush()
                    final_ok = isinstance(resp, r.Tagged) and resp.status == "OK"
            await out.flush()
        except (ConnectionError, ssl.SSLError, _ClientGoneError):
            raise
        except Exception:
            log.exception(
                "imap %s: error running %s", self.id, type(getattr(event, "command", event)).__name__
            )
            tag = event.tag if isinstance(event, Command | BadCommand) else "*"
            await out.flush()
            if tag == "*":
                await self.send(r.status_line("NO", "Internal server error", "SERVERBUG"))
            else:
                await self.send(r.no(tag, "Internal server error", "SERVERBUG"))
            return False
        if isinstance(event, Command) and isinstance(event.command, c.StartTls) and final_ok:
            context = self.service._ssl_context
            assert context is not None  # noqa: S101 - STARTTLS is refused without one
            # RFC 9051 section 6.2.1: nothing sent in clear before the handshake is
            # read after it (CVE-2011-0411): drop what the parser and the reader hold.
            dropped = _discard_unread(self.reader) + self.conn.drop_buffered()
            if dropped:
                log.warning("imap %s: %d plaintext octets after STARTTLS discarded", self.id, dropped)
            await self.writer.start_tls(context)
            self.sock = netopt.tune(self.writer.transport)
            self.session.tls_started()
            await self._identify_certificate()
            return True
        return False
