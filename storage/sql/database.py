"""``Database``: the one SQL database every SQL store of a process shares.

It owns what used to sit inside ``SqlMailStore`` and was borrowed by the other
stores through its private members: the async engine (aiosqlite or asyncpg),
the synchronous engine and its worker threads, the write serialisation, the
schema migrations, and closing all of it. The stores (mail, directory,
activity, routes, credentials, outbound queue) receive a ``Database`` and use
only its public methods (maddy: modules receive what they use).

Theory of operation
-------------------
Two ways to run a transaction, both serialised against each other for writers:

* ``read()`` / ``write()``: async context managers yielding an
  ``AsyncConnection`` inside a transaction on the async engine. ``write()``
  marks the connection as a writer (``BEGIN IMMEDIATE`` on SQLite,
  ``engine.WRITE_OPTION``) and, on SQLite, holds the in-process write lock: SQLite
  has one writer anyway, and queueing here avoids busy waits.
* ``run_read(fn, *args)`` / ``run_write(fn, *args)``: ``fn(conn, *args)`` on a
  synchronous ``Connection``, run whole in one thread hop. aiosqlite hops to
  its thread for every cursor operation, and asyncpg statements awaited on a
  busy event loop each wait for the loop's other work; in a worker thread they
  are plain blocking calls. On a SQLite file the threads use a pysqlite
  engine on the same file (``engine.make_sync_sqlite_engine``, same pragmas),
  on PostgreSQL a psycopg engine (``engine.make_sync_engine``). Reads run on a
  few reader threads (WAL readers do not block each other; sqlite3 releases
  the GIL while stepping); writes on one writer thread, entered under the same
  write lock ``write()`` takes. An in-memory SQLite database cannot be shared
  with a second engine: there the functions run through ``run_sync`` on the
  async engine.

Flag-only writes (``durable=False``) commit with ``synchronous=NORMAL`` on SQLite
(``engine.synchronous_normal`` explains why that is safe) and
``synchronous_commit=off`` on PostgreSQL: the last commits may be lost on a
crash, nothing is corrupted.

Group commit (``group_commit``, ``storage.sql.groupcommit``): a store that
commits many small requests at once (deliveries and APPENDs) gets a committer
task that batches whatever is waiting into one write transaction; the
database owns it and closes it before its threads.

Lifecycle: ``Database(url)``, ``await db.start()`` (applies migrations,
``migrate.upgrade_engine``), use, ``await db.close()`` (closes the group
commits, waits for the worker threads, disposes of both engines).
"""

from __future__ import annotations

import asyncio
import collections
import operator
import sqlite3
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from functools import partial
from typing import Any, Final, TypeAlias, TypeVar, TypeVarTuple

from sqlalchemy import URL, Select
from sqlalchemy.engine import Connection, Dialect, Engine, make_url
from sqlalchemy.exc import DBAPIError, MultipleResultsFound, NoResultFound, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.util import await_only

from storage.sql.engine import (
    WRITE_OPTION,
    is_file_sqlite,
    make_engine,
    make_sync_engine,
    synchronous_normal,
)
from storage.sql.groupcommit import GroupCommit, Request, Result
from storage.sql.migrate import upgrade_engine

__all__ = ["Database", "DirectStatement", "PointQuery", "Undo", "probe", "run_io", "run_undo"]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")
Undo: TypeAlias = list[Callable[[], object]]
"""Compensating file actions of a write transaction, run in reverse if it does not commit."""

_READERS: Final = 4
"""Reader threads: enough for parallel WAL readers on a small machine."""


def run_undo(undo: Undo) -> None:
    for action in reversed(undo):
        action()


def run_io(fn: Callable[[*Ts], T], *args: *Ts) -> T:
    """Blocking file work from inside a transaction function: a plain call on a
    worker thread; from ``run_sync``'s greenlet on the event loop (an in-memory
    SQLite database), a thread hop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn(*args)
    return await_only(asyncio.to_thread(fn, *args))


class PointQuery:
    """A SELECT of at most one row by key (an account, a quota, a serial), asked
    on every MAIL or RCPT. ``Database.run_point_query`` runs it on a SQLite file
    through the DBAPI connection with the SQL compiled once per dialect, by the
    group commit's machinery (``DirectStatement``'s ``_CompiledDirect``; store
    alone: ~40 µs -> ~5 µs a call); its rows are those SQLAlchemy would give:
    the columns' own result processors (dates, booleans) applied, the columns
    attributes by their keys, and more than one row raises
    ``MultipleResultsFound`` as ``one_or_none`` does. A statement whose
    parameters SQLAlchemy would convert (a bind processor, an IN list) always
    goes through SQLAlchemy."""

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self._compiled: weakref.WeakKeyDictionary[Dialect, _CompiledDirect] = weakref.WeakKeyDictionary()

    def compiled(self, dialect: Dialect) -> _CompiledDirect:
        found = self._compiled.get(dialect)
        if found is None:
            found = self._compiled[dialect] = _CompiledDirect(self.statement, dialect, None, plain_only=True)
        return found

    def one_or_none(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        """The general path: SQLAlchemy's execution of the same statement."""
        return conn.execute(self.statement, params).one_or_none()


def _one_or_none(rows: Sequence[Any]) -> Any:
    """``Result.one_or_none`` of rows already fetched."""
    if len(rows) > 1:
        raise MultipleResultsFound("Multiple rows were found when one or none was required")
    return rows[0] if rows else None


class DirectStatement:
    """A statement of a write transaction run for every group commit (a quota
    read, a UID allocation, a message INSERT, a usage UPDATE). On a SQLite file
    (the writer thread's pysqlite connection) it runs on the DBAPI connection
    with its SQL compiled once per dialect and parameter shape: SQLAlchemy's
    statement execution (execution context, parameter processing, result
    object) costs ~30-40 µs a statement, the sqlite3 call a few µs. The rows
    are those SQLAlchemy would give (result processors applied, attributes by
    column key), the parameters are converted by the same bind processors
    (booleans, dates), an ``expanding`` (IN) parameter is rendered as SQLAlchemy
    renders it, and a sqlite3 error is raised as SQLAlchemy's wrapper
    (``IntegrityError``...). Anything else (PostgreSQL, the aiosqlite
    connection of an in-memory database, an empty IN list, an INSERT whose
    columns have Python-side defaults to compute, a parameter missing) goes
    through ``Connection.execute``: the general path, which the tests compare
    with this one."""

    def __init__(self, statement: Select[Any] | UpdateBase) -> None:
        self.statement = statement
        # Per dialect (each Database has an engine of its own; several in one
        # process, e.g. tests) and per INSERT key set.
        self._compiled: weakref.WeakKeyDictionary[Dialect, dict[tuple[str, ...] | None, _CompiledDirect]] = (
            weakref.WeakKeyDictionary()
        )

    def _direct(self, conn: Connection, keys: tuple[str, ...] | None) -> tuple[_CompiledDirect, Any] | None:
        """The compiled form and the sqlite3 connection, when the fast path applies."""
        if not self.is_direct(conn):
            return None
        dialect = conn.dialect
        raw = conn.connection.dbapi_connection
        shapes = self._compiled.get(dialect)
        if shapes is None:
            shapes = self._compiled[dialect] = {}
        compiled = shapes.get(keys)
        if compiled is None:
            compiled = shapes[keys] = _CompiledDirect(self.statement, dialect, keys)
        return (compiled, raw) if compiled.direct else None

    def is_direct(self, conn: Connection) -> bool:
        """Whether the fast path can serve ``conn``: pysqlite (not aiosqlite's
        adapter: an in-memory database, ``run_sync``), inside a transaction (the
        driver is in autocommit mode; SQLAlchemy would begin one first)."""
        if conn.dialect.name != "sqlite" or not conn.in_transaction():
            return False
        return isinstance(conn.connection.dbapi_connection, sqlite3.Connection)

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> Sequence[Any]:
        """Every row the statement returns (a SELECT, or DML with RETURNING)."""
        found = self._direct(conn, None)
        if found is not None:
            compiled, raw = found
            done = compiled.run(raw, params)
            if done is not None:
                return [compiled.row(row) for row in done.fetchall()]
        return conn.execute(self.statement, params).all()

    def one_or_none(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        """``Result.one_or_none``: the one row, None, or MultipleResultsFound."""
        return _one_or_none(self.rows(conn, params))

    def insert_one(self, conn: Connection, values: Mapping[str, Any]) -> Any:
        """An ``insert(table).returning(column)`` of the row ``values``: the
        returned value (``scalar_one``). Compiled per set of keys, as
        SQLAlchemy compiles the statement for the columns given."""
        found = self._direct(conn, tuple(values))
        if found is not None:
            compiled, raw = found
            done = compiled.run(raw, values)
            if done is not None:
                rows = done.fetchall()
                if len(rows) != 1:  # as scalar_one would
                    error = NoResultFound if not rows else MultipleResultsFound
                    raise error("not exactly one row returned")
                return compiled.row(rows[0])[0]
        return conn.execute(self.statement, values).scalar_one()

    def execute(self, conn: Connection, params: Sequence[Mapping[str, Any]]) -> None:
        """DML without RETURNING, once per parameter set (executemany)."""
        found = self._direct(conn, None) if params else None
        if found is not None:
            compiled, raw = found
            if compiled.run_many(raw, params):
                return
        conn.execute(self.statement, list(params))


class _CompiledDirect:
    def __init__(
        self,
        statement: Select[Any] | UpdateBase,
        dialect: Dialect,
        keys: tuple[str, ...] | None,
        *,
        plain_only: bool = False,
    ) -> None:
        """``plain_only``: no fast path for parameters SQLAlchemy converts (a bind
        processor, an IN list): ``PointQuery``'s rule."""
        compiled = statement.compile(dialect=dialect, column_keys=list(keys) if keys is not None else None)
        self.sql: str = compiled.string
        binds = compiled.binds
        # Per positional parameter: its name, its default (a literal SQLAlchemy
        # made a parameter of, e.g. the 1 of "highestmodseq + 1"), its bind
        # processor, and whether it is an expanding (IN) list.
        self._slots: tuple[tuple[str, bool, Any, Any, bool], ...] = tuple(
            (
                name,
                not binds[name].required,
                binds[name].effective_value,
                binds[name].type._cached_bind_processor(dialect),  # noqa: SLF001
                binds[name].expanding,
            )
            for name in compiled.positiontup or ()
        )
        self._expanding = any(slot[4] for slot in self._slots)
        # The common case (every parameter given by the caller, none a list):
        # the values taken in one C call, then the few with a processor converted.
        self._getter: Callable[[Mapping[str, Any]], Any] | None = None
        if self._slots and not any(optional or expanding for _, optional, _, _, expanding in self._slots):
            names = [slot[0] for slot in self._slots]
            take = operator.itemgetter(*names)
            self._getter = take if len(names) > 1 else lambda params: (take(params),)
        self._convert = tuple((i, slot[3]) for i, slot in enumerate(self._slots) if slot[3] is not None)
        self._by_count: dict[tuple[int, ...], str] = {}
        columns = list(getattr(statement, "exported_columns", ()))
        self._processors = tuple(
            c.type._cached_result_processor(dialect, None)  # noqa: SLF001
            for c in columns
        )
        self._any_processor = any(p is not None for p in self._processors)
        self._row: Any = None
        if columns:
            try:
                self._row = collections.namedtuple("DirectRow", [c.key for c in columns])  # type: ignore[misc]  # noqa: PYI024
            except ValueError:
                pass  # a key that is no identifier, or twice: SQLAlchemy's rows only
        self.direct = (
            dialect.paramstyle == "qmark"
            and (not columns or self._row is not None)
            # Python-side column defaults SQLAlchemy would compute per execution.
            and not getattr(compiled, "insert_prefetch", None)
            and not getattr(compiled, "update_prefetch", None)
            and not compiled.literal_execute_params
            # Only IN lists are rendered at execution (no literal_execute values).
            and all(bind.expanding for bind in compiled.post_compile_params)
            and not (plain_only and (self._expanding or self._convert))
        )

    def parameters(self, params: Mapping[str, Any]) -> tuple[str, list[Any]] | None:
        """The SQL and its positional parameters, processed as SQLAlchemy would;
        None when SQLAlchemy must do it (a missing parameter, an empty IN list)."""
        if self._getter is not None:
            try:
                taken = list(self._getter(params))
            except KeyError:
                return None  # SQLAlchemy raises its own error for it
            for index, process in self._convert:
                taken[index] = process(taken[index])
            return self.sql, taken
        out: list[Any] = []
        counts: list[int] = []
        for name, optional, default, process, expanding in self._slots:
            if name in params:
                value = params[name]
            elif optional:
                value = default
            else:
                return None  # SQLAlchemy raises its own error for it
            if expanding:
                values = list(value)
                if not values:
                    return None  # SQLAlchemy renders an empty set of its own
                counts.append(len(values))
                out.extend(values if process is None else [process(v) for v in values])
            else:
                out.append(value if process is None else process(value))
        if not self._expanding:
            return self.sql, out
        key = tuple(counts)
        sql = self._by_count.get(key)
        if sql is None:
            sql = self.sql
            lists = iter(counts)
            for name, _, _, _, expanding in self._slots:
                if expanding:
                    # SQLAlchemy renders a qmark IN list as "?, ?, ..." in place of this token.
                    sql = sql.replace(f"__[POSTCOMPILE_{name}]", ", ".join("?" * next(lists)), 1)
            sql = self._by_count[key] = sql
        return sql, out

    def run(self, raw: sqlite3.Connection, params: Mapping[str, Any]) -> sqlite3.Cursor | None:
        prepared = self.parameters(params)
        if prepared is None:
            return None
        sql, values = prepared
        try:
            return raw.execute(sql, values)
        except sqlite3.Error as exc:
            raise DBAPIError.instance(sql, values, exc, sqlite3.Error) from exc

    def run_many(self, raw: sqlite3.Connection, params: Sequence[Mapping[str, Any]]) -> bool:
        prepared = [self.parameters(p) for p in params]
        if any(p is None or p[0] != self.sql for p in prepared):
            return False
        values = [p[1] for p in prepared if p is not None]
        try:
            raw.executemany(self.sql, values)
        except sqlite3.Error as exc:
            raise DBAPIError.instance(self.sql, values, exc, sqlite3.Error) from exc
        return True

    def row(self, row: tuple[Any, ...]) -> Any:
        if not self._any_processor:
            return self._row._make(row)
        return self._row._make(
            value if process is None else process(value)
            for value, process in zip(row, self._processors, strict=True)
        )


class _SyncThreads:
    """The synchronous side: a synchronous engine on the database (pysqlite on a
    SQLite file, psycopg on PostgreSQL), reader threads and the one writer thread.

    Each thread keeps one connection for its life: a pool check-out and return
    per call costs a third of a point query. Reader threads only read and the
    writer thread only writes, so a thread's connection is of one kind.
    """

    def __init__(self, url: URL) -> None:
        self._engine = make_sync_engine(url, pool_size=_READERS + 2)  # + writer, event loop
        self._sqlite = self._engine.dialect.name == "sqlite"
        self.dialect = self._engine.dialect
        self.sqlite = self._sqlite
        # The same engine and pool; on SQLite its transactions open with BEGIN IMMEDIATE.
        self._write_engine = self._engine.execution_options(**{WRITE_OPTION: True})
        self.readers = ThreadPoolExecutor(_READERS, thread_name_prefix="mailstore-read")
        self.writer = ThreadPoolExecutor(1, thread_name_prefix="mailstore-write")
        self._local = threading.local()
        self._connections: list[Connection] = []
        self._connections_lock = threading.Lock()

    def close(self) -> None:
        """Wait for the work in progress, then close the connections (blocking)."""
        self.readers.shutdown(wait=True)
        self.writer.shutdown(wait=True)
        for conn in self._connections:
            conn.close()
        self._engine.dispose()

    def _connection(self, engine: Engine) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = engine.connect()
            with self._connections_lock:
                self._connections.append(conn)
        return conn

    def read(self, fn: Callable[[Connection, *Ts], T], *args: *Ts) -> T:
        """On a reader thread: ``fn`` in one read transaction."""
        conn = self._connection(self._engine)
        with conn.begin():
            return fn(conn, *args)

    def point_read(self, fn: Callable[[Connection, *Ts], T], *args: *Ts) -> T:
        """On the event loop's thread: ``fn`` in one read transaction on that
        thread's connection, which never waits for a lock (busy_timeout 0: the
        whole server would wait with it); a locked database raises
        OperationalError and the caller reads in a thread instead."""
        conn = self._loop_connection()
        with conn.begin():
            return fn(conn, *args)

    def _loop_connection(self) -> Connection:
        """The event loop's thread's connection, busy_timeout 0 (``point_read``)."""
        fresh = getattr(self._local, "conn", None) is None
        conn = self._connection(self._engine)
        if fresh:
            cursor = conn.connection.cursor()
            try:
                cursor.execute("PRAGMA busy_timeout=0")
            finally:
                cursor.close()
        return conn

    def point_query(self, query: PointQuery, params: Mapping[str, Any]) -> Any:
        """``point_read`` of ``query`` straight on the DBAPI connection (SQLite).
        The driver runs in autocommit mode (``engine._configure_sqlite``): the
        one statement is its own read transaction, as ``BEGIN``, it and
        ``COMMIT`` were."""
        raw = self._loop_connection().connection.dbapi_connection
        assert isinstance(raw, sqlite3.Connection)  # noqa: S101 - a checked-out pysqlite connection
        compiled = query.compiled(self.dialect)
        done = compiled.run(raw, params)
        if done is None:  # a parameter missing: SQLAlchemy's own error
            return self.point_read(query.one_or_none, params)
        return _one_or_none([compiled.row(row) for row in done.fetchall()])

    def write(self, fn: Callable[[Connection, *Ts], T], *args: *Ts, durable: bool, undo: Undo | None) -> T:
        """On the writer thread: ``fn`` in one write transaction, committed with
        synchronous=FULL unless not ``durable``; ``undo`` runs here if it fails."""
        conn = self._connection(self._write_engine)
        relaxed: AbstractContextManager[None] = (
            synchronous_normal(conn) if self._sqlite and not durable else nullcontext()
        )
        try:
            with relaxed, conn.begin():
                if not durable and not self._sqlite:
                    # PostgreSQL's equivalent: this commit does not wait for the WAL flush.
                    conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
                return fn(conn, *args)
        except BaseException:
            if undo:
                run_undo(undo)
            raise


class Database:
    """Engines, worker threads, transactions and migrations of one SQL database
    (a SQLAlchemy async URL: ``sqlite+aiosqlite:///…`` or ``postgresql+asyncpg://…``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.backend = make_url(url).get_backend_name()
        """``sqlite`` or ``postgresql``: known before ``start()``."""
        self._engine: AsyncEngine | None = None
        self._threads: _SyncThreads | None = None
        self._write_lock = asyncio.Lock()
        self._serialise_writes = self.backend == "sqlite"
        self._group_commits: list[GroupCommit[Any, Any]] = []

    # -- lifecycle ----------------------------------------------------------
    async def start(self) -> None:
        """Open the engine and bring the schema to the newest revision."""
        if self._engine is not None:
            return
        engine = make_engine(self.url)
        try:
            await upgrade_engine(engine)
        except BaseException:
            await engine.dispose()
            raise
        self._engine = engine
        if is_file_sqlite(engine.url) or engine.dialect.name == "postgresql":
            self._threads = _SyncThreads(engine.url)

    async def close(self) -> None:
        """Commit what the group commits hold, wait for the worker threads' work,
        then dispose of both engines."""
        for committer in self._group_commits:
            await committer.close()
        self._group_commits = []
        if self._threads is not None:
            threads, self._threads = self._threads, None
            await asyncio.to_thread(threads.close)
        if self._engine is not None:
            engine, self._engine = self._engine, None
            await engine.dispose()

    def group_commit(
        self,
        commit_batch: Callable[[list[Request]], Awaitable[Sequence[Result | BaseException]]],
        *,
        max_batch: int,
        name: str,
        closed_error: Callable[[], Exception],
    ) -> GroupCommit[Request, Result]:
        """A started group commit (``storage.sql.groupcommit``) whose batches
        ``commit_batch`` commits (typically through ``run_write``); closed, what
        it holds committed, when this database closes, if its owner has not
        closed it before."""
        committer: GroupCommit[Request, Result] = GroupCommit(
            commit_batch, max_batch=max_batch, name=name, closed_error=closed_error
        )
        committer.start()
        self._group_commits.append(committer)
        return committer

    @property
    def engine(self) -> AsyncEngine:
        """The async engine (for streaming reads and the change notifications)."""
        if self._engine is None:
            raise RuntimeError("Database.start() has not been awaited")
        return self._engine

    @property
    def started(self) -> bool:
        return self._engine is not None

    # -- async transactions -------------------------------------------------
    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read transaction on the async engine."""
        async with self.engine.connect() as conn:
            async with conn.begin():
                yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction on the async engine, serialised with every other
        writer of this process on SQLite."""
        if self._serialise_writes:
            await self._write_lock.acquire()
        try:
            async with self.engine.connect() as conn:
                await conn.execution_options(**{WRITE_OPTION: True})
                async with conn.begin():
                    yield conn
        finally:
            if self._serialise_writes:
                self._write_lock.release()

    # -- whole transactions in a worker thread ---------------------------------
    async def run_read(self, fn: Callable[[Connection, *Ts], T], *args: *Ts) -> T:
        """``fn(conn, *args)`` in one read transaction."""
        threads = self._threads
        if threads is None:
            async with self.read() as aconn:
                return await aconn.run_sync(lambda conn: fn(conn, *args))
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(threads.readers, partial(threads.read, fn, *args))

    async def run_point_read(self, fn: Callable[[Connection, *Ts], T], *args: *Ts) -> T:
        """``run_read`` for a read of a few rows by key (an account, a quota, a
        serial): on a SQLite file, right here on the event loop's own connection
        instead of a reader thread. The hop (a future, two thread wake-ups and
        the GIL handed back and forth) costs more CPU than such a query; a WAL
        reader does not wait for the writer, and where it would have to wait
        (a lock held by another process) it goes to a reader thread instead of
        holding up the event loop. Elsewhere (PostgreSQL: a network
        round trip; in-memory SQLite) it is ``run_read``."""
        threads = self._threads
        if threads is None or not threads.sqlite:
            return await self.run_read(fn, *args)
        try:
            return threads.point_read(fn, *args)
        except OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            return await self.run_read(fn, *args)  # a lock to wait for: wait in a reader thread

    async def run_point_query(self, query: PointQuery, params: Mapping[str, Any]) -> Any:
        """The one row ``query`` selects with ``params`` (None when none), as
        ``run_point_read`` of ``conn.execute(query.statement, params).one_or_none()``
        gives it; on a SQLite file without SQLAlchemy's statement execution and
        result objects, which cost ~8 times the query (``PointQuery``)."""
        threads = self._threads
        if threads is not None and threads.sqlite and query.compiled(threads.dialect).direct:
            try:
                return threads.point_query(query, params)
            except (sqlite3.OperationalError, OperationalError) as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                # A lock to wait for: wait in a reader thread (run_point_read).
                return await self.run_read(query.one_or_none, params)
        return await self.run_point_read(query.one_or_none, params)

    async def run_write(
        self,
        fn: Callable[[Connection, *Ts], T],
        *args: *Ts,
        durable: bool = True,
        undo: Undo | None = None,
    ) -> T:
        """``fn(conn, *args)`` in one write transaction. ``durable=False`` (flag-only
        writes) lets the commit skip the WAL flush. ``undo``, if given, is the list
        ``fn`` appends compensating file actions to (so the caller passes it among
        ``args`` too); they run if the transaction does not commit."""
        threads = self._threads
        if threads is None:
            try:
                async with self.write() as aconn:
                    return await aconn.run_sync(lambda conn: fn(conn, *args))
            except BaseException:
                if undo:
                    await asyncio.to_thread(run_undo, undo)
                raise
        call = partial(threads.write, fn, *args, durable=durable, undo=undo)
        async with self._write_lock:
            future = asyncio.get_running_loop().run_in_executor(threads.writer, call)
            try:
                return await asyncio.shield(future)
            except asyncio.CancelledError:
                # The thread cannot be interrupted: its transaction commits or rolls
                # back (undo included) on its own. Keep the lock until it has, so no
                # writer on the async engine waits for it in SQLite's busy timeout.
                await asyncio.wait([future])
                raise


async def probe(url: str) -> str:
    """One query on the mail index at ``url`` on an engine of its own, without
    migrating (a health check); the URL with its password hidden."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql("SELECT count(*) FROM accounts WHERE 1 = 0")
    finally:
        await engine.dispose()
    return engine.url.render_as_string(hide_password=True)
