"""``SqlMailStore``: the MailStore on SQL (SQLite or PostgreSQL) plus Maildir files.

RFCs whose storage semantics live here: UIDs, UIDVALIDITY and UIDNEXT (RFC 9051
section 2.3.1.1), \\Recent (RFC 3501 section 2.3.2), mailbox naming, CREATE,
DELETE and RENAME (RFC 3501 sections 5.1, 6.3.3-6.3.5), APPEND (section
6.3.11), EXPUNGE (section 6.4.3), COPY/MOVE with COPYUID (RFC 4315 section 3,
RFC 6851), CONDSTORE/QRESYNC modification sequences, UNCHANGEDSINCE and
VANISHED (RFC 7162 sections 3.1 and 3.2), SEARCH keys (RFC 9051 section 6.4.4)
and QUOTA resources (RFC 9208 section 5).

Theory of operation
-------------------
A message file is written and fsynced (``storage.maildir``) before its row is
inserted, so a committed row always points at a durable file; a crash in
between leaves at worst an orphan file, never a dangling row. Files are
unlinked only after the transaction that deleted their rows committed.

Deliveries and APPENDs go through one committer task (group commit): callers
write their files in parallel worker threads, enqueue their rows and wait; the
committer takes everything queued, allocates UIDs (one ``UPDATE ... RETURNING``
per folder, which also row-locks the folder on PostgreSQL) and inserts all rows
in one transaction, then resolves every waiter. If a batch fails, its requests
are retried one by one so that one bad request (say, a folder deleted
meanwhile) cannot fail the others.

Every other mutation runs in its own write transaction that first locks the
folder rows it touches (``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite an
in-process lock plus ``BEGIN IMMEDIATE`` serialise writers), which is what keeps
UIDs and modseqs unique under concurrency. A mutation bumps the folder's
HIGHESTMODSEQ once and gives that value to every message it changed (RFC 7162
section 3.1 allows one modseq for all changes of one command).

Hot paths (list, search, details, flags, deliver) use Core statements and
tuples; there is no per-message ORM object anywhere.
"""

from __future__ import annotations

import asyncio
import os
import time
from array import array
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Final, TypeAlias, cast

from sqlalchemy import (
    ColumnElement,
    Row,
    Table,
    and_,
    bindparam,
    case,
    delete,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storage import mimeinfo
from storage.api import (
    INBOX,
    SPECIAL_FOLDERS,
    Account,
    AccountExists,
    CannotDeleteFolder,
    ChangeHub,
    Changes,
    DeliveryResult,
    FlagMode,
    FlagUpdate,
    Folder,
    FolderExists,
    FolderIndex,
    FolderStatus,
    InvalidFolderName,
    MessageDetail,
    MessageInfo,
    ModSeq,
    NoSuchAccount,
    NoSuchFolder,
    Quota,
    SearchQuery,
    StoreError,
    Uid,
)
from storage.maildir import Maildir, account_path, folder_path
from storage.sql import models
from storage.sql.engine import WRITE_OPTION, make_engine
from storage.sql.migrate import upgrade_engine

AnyRow: TypeAlias = "Row[*tuple[Any, ...]]"

__all__ = ["SqlMailStore", "canonical_flags", "normalise_folder_name"]

A: Final = cast(Table, models.Account.__table__)
F: Final = cast(Table, models.Folder.__table__)
M: Final = cast(Table, models.Message.__table__)
X: Final = cast(Table, models.Expunged.__table__)

_MAX_BATCH: Final = 512
"""Most delivery requests committed in one transaction."""
_CHUNK: Final = 500
"""Ids per IN (...) list, well under SQLite's and asyncpg's bind parameter limits."""
_MAX_UID_RANGES: Final = 100
"""Beyond this many UID ranges the folder is read whole and filtered in Python."""
_MAX_LEVEL: Final = 255
_MAX_NAME: Final = 1024

_SYSTEM_FLAGS: Final = {f.lower(): f for f in ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")}

_INFO_COLUMNS: Final = (M.c.id, M.c.uid, M.c.modseq, M.c.flags, M.c.internal_date, M.c.size)

_HEADER_COLUMNS: Final = {
    "subject": M.c.subject,
    "from": M.c.from_,
    "to": M.c.to_,
    "cc": M.c.cc,
    "bcc": M.c.bcc,
    "message-id": M.c.message_id,
}


# -- pure helpers -------------------------------------------------------------


def normalise_folder_name(name: str) -> str:
    """Validate a folder name and spell INBOX canonically (RFC 3501 section 5.1:
    INBOX is case-insensitive, also as the first level of a hierarchy)."""
    if not name or len(name) > _MAX_NAME:
        raise InvalidFolderName("folder name is empty or too long")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in name):
        raise InvalidFolderName("folder name contains control characters")
    levels = name.split("/")
    for level in levels:
        if level in ("", ".", ".."):
            raise InvalidFolderName("folder name has an empty, '.' or '..' level")
        if len(level) > _MAX_LEVEL:
            raise InvalidFolderName("folder name level longer than 255 characters")
    if levels[0].upper() == INBOX:
        levels[0] = INBOX
    return "/".join(levels)


def canonical_flags(flags: Iterable[str]) -> frozenset[str]:
    """System flags in canonical case, keywords as given; \\Recent is never stored
    (RFC 9051 section 2.3.2: it is session state, not a message flag)."""
    out: set[str] = set()
    for flag in flags:
        if not flag or any(c.isspace() or ord(c) < 0x20 for c in flag):
            raise ValueError(f"invalid flag {flag!r}")
        lower = flag.lower()
        if lower == "\\recent":
            continue
        out.add(_SYSTEM_FLAGS.get(lower, flag))
    return frozenset(out)


def _flags_text(flags: frozenset[str]) -> str:
    return " ".join(sorted(flags))


def _parse_flags(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _canonical_address(address: str) -> str:
    address = address.strip().lower()
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or any(c.isspace() or ord(c) < 0x20 for c in address):
        raise ValueError(f"invalid account address {address!r}")
    return address


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _internal_date(value: datetime | None) -> datetime:
    # INTERNALDATE has one-second precision (RFC 9051 section 9, date-time).
    if value is None:
        return _now()
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).replace(microsecond=0)


def _uid_ranges(uids: Iterable[int]) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    for uid in sorted(set(uids)):
        if ranges and ranges[-1][1] + 1 == uid:
            ranges[-1] = (ranges[-1][0], uid)
        else:
            ranges.append((uid, uid))
    return ranges


def _ranges_clause(ranges: Sequence[tuple[int, int]]) -> ColumnElement[bool]:
    return or_(*(M.c.uid == lo if lo == hi else M.c.uid.between(lo, hi) for lo, hi in ranges))


def _uid_clause(uids: Sequence[int]) -> ColumnElement[bool] | None:
    """A WHERE clause for the UID set, or None if it is too fragmented for SQL
    (the caller then filters in Python)."""
    ranges = _uid_ranges(uids)
    if len(ranges) > _MAX_UID_RANGES:
        return None
    return _ranges_clause(ranges)


def _chunks(items: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _info(row: AnyRow) -> MessageInfo:
    return MessageInfo(
        id=row.id,
        uid=Uid(row.uid),
        modseq=ModSeq(row.modseq),
        flags=_parse_flags(row.flags),
        internal_date=row.internal_date,
        size=row.size,
    )


def _account(row: AnyRow) -> Account:
    return Account(
        id=row.id,
        address=row.address,
        name=row.name,
        password_hash=row.password_hash,
        must_change_password=row.must_change_password,
        password_changed_at=row.password_changed_at,
        disabled=row.disabled,
        created_at=row.created_at,
        last_login_at=row.last_login_at,
    )


def _folder(row: AnyRow) -> Folder:
    return Folder(
        id=row.id,
        account_id=row.account_id,
        name=row.name,
        uidvalidity=row.uidvalidity,
        uidnext=Uid(row.uidnext),
        highestmodseq=ModSeq(row.highestmodseq),
        special_use=row.special_use,
        subscribed=row.subscribed,
    )


def _folder_dir(address: str, name: str) -> PurePosixPath:
    try:
        return folder_path(address, name)
    except ValueError as exc:
        raise InvalidFolderName(str(exc)) from exc


def _parents(name: str) -> list[str]:
    """``a``, ``a/b`` for ``a/b/c`` (RFC 3501 section 6.3.3: CREATE makes superiors)."""
    levels = name.split("/")
    return ["/".join(levels[:i]) for i in range(1, len(levels))]


# -- group commit -------------------------------------------------------------


@dataclass(slots=True)
class _NewRow:
    account_id: int
    folder_id: int
    values: dict[str, Any]
    """Column values except uid and modseq, which the committer assigns."""


@dataclass(slots=True)
class _Pending:
    rows: list[_NewRow]
    future: asyncio.Future[list[MessageInfo]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class StoreClosedError(StoreError):
    """The store was closed while a delivery was waiting for its commit."""


class SqlMailStore:
    """MailStore on SQLAlchemy async (SQLite or PostgreSQL) and a Maildir tree.

    ``commit_count`` counts group-commit transactions (deliver/append), so tests
    can observe batching.
    """

    def __init__(self, url: str, maildir_root: Path, *, quota_bytes: int | None = None) -> None:
        self.url = url
        self.maildir = Maildir(Path(maildir_root))
        self.quota_bytes = quota_bytes
        self.changes = ChangeHub()
        self.commit_count = 0
        self._engine_or_none: AsyncEngine | None = None
        self._queue: asyncio.Queue[_Pending | None] | None = None
        self._committer: asyncio.Task[None] | None = None
        self._write_lock = asyncio.Lock()
        self._serialise_writes = False

    # -- lifecycle ----------------------------------------------------------
    async def start(self) -> None:
        await asyncio.to_thread(self.maildir.root.mkdir, parents=True, exist_ok=True)
        engine = make_engine(self.url)
        try:
            await upgrade_engine(engine)
        except BaseException:
            await engine.dispose()
            raise
        self._engine_or_none = engine
        # SQLite has a single writer anyway; queueing in-process avoids busy waits.
        self._serialise_writes = engine.dialect.name == "sqlite"
        self._queue = asyncio.Queue()
        self._committer = asyncio.create_task(self._commit_loop(self._queue), name="mailstore-committer")

    async def close(self) -> None:
        if self._queue is not None and self._committer is not None:
            await self._queue.put(None)
            await self._committer
            self._queue = self._committer = None
        if self._engine_or_none is not None:
            await self._engine_or_none.dispose()
            self._engine_or_none = None

    @property
    def _engine(self) -> AsyncEngine:
        if self._engine_or_none is None:
            raise RuntimeError("SqlMailStore.start() has not been awaited")
        return self._engine_or_none

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        async with self._engine.connect() as conn:
            async with conn.begin():
                yield conn

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        if self._serialise_writes:
            await self._write_lock.acquire()
        try:
            async with self._engine.connect() as conn:
                await conn.execution_options(**{WRITE_OPTION: True})
                async with conn.begin():
                    yield conn
        finally:
            if self._serialise_writes:
                self._write_lock.release()

    # -- shared queries -----------------------------------------------------
    async def _owned_folder(
        self, conn: AsyncConnection, account_id: int, folder_id: int, *, lock: bool = False
    ) -> AnyRow:
        """The folder row plus the account address; NoSuchFolder unless owned."""
        stmt = (
            select(F, A.c.address)
            .join(A, A.c.id == F.c.account_id)
            .where(F.c.id == folder_id, F.c.account_id == account_id)
        )
        if lock:
            stmt = stmt.with_for_update(of=F)
        row = (await conn.execute(stmt)).one_or_none()
        if row is None:
            raise NoSuchFolder(f"no folder {folder_id} in account {account_id}")
        return row

    async def _bump_modseq(self, conn: AsyncConnection, folder_id: int) -> ModSeq:
        stmt = (
            update(F)
            .where(F.c.id == folder_id)
            .values(highestmodseq=F.c.highestmodseq + 1)
            .returning(F.c.highestmodseq)
        )
        return ModSeq((await conn.execute(stmt)).scalar_one())

    async def _allocate_uidvalidity(self, conn: AsyncConnection, account_id: int, count: int) -> int:
        """First of ``count`` fresh UIDVALIDITY values: time-based (as Dovecot) but
        strictly increasing per account, so a folder deleted and re-created within
        the same second still gets a new value (RFC 9051 section 2.3.1.1)."""
        stmt = select(A.c.next_uidvalidity).where(A.c.id == account_id).with_for_update()
        current = (await conn.execute(stmt)).scalar_one_or_none()
        if current is None:
            raise NoSuchAccount(f"no account {account_id}")
        first = max(int(current), int(time.time()))
        await conn.execute(update(A).where(A.c.id == account_id).values(next_uidvalidity=first + count))
        return first

    async def _insert_folders(
        self,
        conn: AsyncConnection,
        account_id: int,
        names: Sequence[tuple[str, str | None]],
        *,
        subscribed: bool = True,
    ) -> None:
        if not names:
            return
        first = await self._allocate_uidvalidity(conn, account_id, len(names))
        await conn.execute(
            insert(F),
            [
                {
                    "account_id": account_id,
                    "name": name,
                    "uidvalidity": first + i,
                    "uidnext": 1,
                    "highestmodseq": 1,
                    "recent_watermark": 1,
                    "special_use": special_use,
                    "subscribed": subscribed,
                }
                for i, (name, special_use) in enumerate(names)
            ],
        )

    async def _messages(
        self,
        conn: AsyncConnection,
        folder_id: int,
        uids: Sequence[Uid],
        columns: Sequence[Any],
        *extra: ColumnElement[bool],
    ) -> list[AnyRow]:
        """Rows of the given UIDs in UID order (``uid`` must be among ``columns``)."""
        if not uids:
            return []
        clause = _uid_clause(uids)
        stmt = select(*columns).where(M.c.folder_id == folder_id, *extra).order_by(M.c.uid)
        if clause is not None:
            stmt = stmt.where(clause)
        rows = list((await conn.execute(stmt)).all())
        if clause is None:
            wanted = set(uids)
            rows = [r for r in rows if r.uid in wanted]
        return rows

    # -- accounts -----------------------------------------------------------
    async def create_account(
        self, address: str, name: str, password_hash: str, *, must_change_password: bool = True
    ) -> Account:
        address = _canonical_address(address)
        now = _now()
        try:
            async with self._write() as conn:
                exists = (await conn.execute(select(A.c.id).where(A.c.address == address))).first()
                if exists is not None:
                    raise AccountExists(address)
                account_id = (
                    await conn.execute(
                        insert(A)
                        .values(
                            address=address,
                            name=name,
                            password_hash=password_hash,
                            must_change_password=must_change_password,
                            password_changed_at=None,
                            disabled=False,
                            created_at=now,
                            last_login_at=None,
                            next_uidvalidity=int(now.timestamp()),
                        )
                        .returning(A.c.id)
                    )
                ).scalar_one()
                folders: list[tuple[str, str | None]] = [(INBOX, None), *SPECIAL_FOLDERS]
                await self._insert_folders(conn, account_id, folders)
                row = (await conn.execute(select(A).where(A.c.id == account_id))).one()
        except IntegrityError as exc:
            raise AccountExists(address) from exc
        for folder_name, _ in folders:
            await self.maildir.create_folder(folder_path(address, folder_name))
        return _account(row)

    async def get_account(self, address: str) -> Account | None:
        async with self._read() as conn:
            row = (await conn.execute(select(A).where(A.c.address == address.strip().lower()))).one_or_none()
        return None if row is None else _account(row)

    async def get_account_by_id(self, account_id: int) -> Account | None:
        async with self._read() as conn:
            row = (await conn.execute(select(A).where(A.c.id == account_id))).one_or_none()
        return None if row is None else _account(row)

    async def list_accounts(self) -> list[Account]:
        async with self._read() as conn:
            rows = (await conn.execute(select(A).order_by(A.c.address))).all()
        return [_account(r) for r in rows]

    async def delete_account(self, address: str) -> None:
        address = address.strip().lower()
        async with self._write() as conn:
            account_id = (
                await conn.execute(select(A.c.id).where(A.c.address == address))
            ).scalar_one_or_none()
            if account_id is None:
                raise NoSuchAccount(address)
            folder_ids = list(
                (await conn.execute(select(F.c.id).where(F.c.account_id == account_id))).scalars()
            )
            # Explicit deletes rather than relying on ON DELETE CASCADE alone, so the
            # outcome does not depend on the foreign_keys pragma of some other client.
            for chunk in _chunks(folder_ids):
                await conn.execute(delete(X).where(X.c.folder_id.in_(chunk)))
                await conn.execute(delete(M).where(M.c.folder_id.in_(chunk)))
            await conn.execute(delete(F).where(F.c.account_id == account_id))
            await conn.execute(delete(A).where(A.c.id == account_id))
        await self.maildir.remove_tree(account_path(address))
        self.changes.publish(folder_ids)

    async def _update_account(self, account_id: int, **values: Any) -> None:
        async with self._write() as conn:
            result = await conn.execute(update(A).where(A.c.id == account_id).values(**values))
            if result.rowcount == 0:
                raise NoSuchAccount(f"no account {account_id}")

    async def set_password(self, account_id: int, password_hash: str, *, must_change_password: bool) -> None:
        await self._update_account(
            account_id,
            password_hash=password_hash,
            must_change_password=must_change_password,
            password_changed_at=_now(),
        )

    async def set_disabled(self, account_id: int, disabled: bool) -> None:
        await self._update_account(account_id, disabled=disabled)

    async def record_login(self, account_id: int, when: datetime) -> None:
        await self._update_account(account_id, last_login_at=when)

    # -- folders ------------------------------------------------------------
    async def list_folders(self, account_id: int) -> list[Folder]:
        async with self._read() as conn:
            rows = (await conn.execute(select(F).where(F.c.account_id == account_id))).all()
        folders = [_folder(r) for r in rows]
        folders.sort(key=lambda f: (f.name != INBOX, f.name))
        return folders

    async def get_folder(self, account_id: int, name: str) -> Folder:
        try:
            name = normalise_folder_name(name)
        except InvalidFolderName as exc:
            raise NoSuchFolder(name) from exc
        async with self._read() as conn:
            row = (
                await conn.execute(select(F).where(F.c.account_id == account_id, F.c.name == name))
            ).one_or_none()
        if row is None:
            raise NoSuchFolder(name)
        return _folder(row)

    async def create_folder(self, account_id: int, name: str, *, special_use: str | None = None) -> Folder:
        name = normalise_folder_name(name)
        wanted = [*_parents(name), name]
        async with self._write() as conn:
            address = (
                await conn.execute(select(A.c.address).where(A.c.id == account_id))
            ).scalar_one_or_none()
            if address is None:
                raise NoSuchAccount(f"no account {account_id}")
            for folder_name in wanted:
                _folder_dir(address, folder_name)  # InvalidFolderName if it cannot be stored
            existing = set(
                (
                    await conn.execute(
                        select(F.c.name).where(F.c.account_id == account_id, F.c.name.in_(wanted))
                    )
                ).scalars()
            )
            if name in existing:
                raise FolderExists(name)
            missing = [(n, special_use if n == name else None) for n in wanted if n not in existing]
            try:
                await self._insert_folders(conn, account_id, missing)
            except IntegrityError as exc:
                raise FolderExists(name) from exc
            row = (await conn.execute(select(F).where(F.c.account_id == account_id, F.c.name == name))).one()
        for folder_name, _ in missing:
            await self.maildir.create_folder(folder_path(address, folder_name))
        return _folder(row)

    async def _children(self, conn: AsyncConnection, account_id: int, name: str) -> list[AnyRow]:
        # substr() rather than LIKE: SQLite's LIKE ignores ASCII case, folder names must not.
        prefix = name + "/"
        stmt = select(F).where(F.c.account_id == account_id, func.substr(F.c.name, 1, len(prefix)) == prefix)
        return list((await conn.execute(stmt)).all())

    async def delete_folder(self, account_id: int, folder_id: int) -> None:
        """RFC 3501 section 6.3.4. A folder with children is refused (as Dovecot's
        Maildir++ layout does) instead of being turned into a \\Noselect name."""
        async with self._write() as conn:
            folder = await self._owned_folder(conn, account_id, folder_id, lock=True)
            if folder.name == INBOX:
                raise CannotDeleteFolder("INBOX cannot be deleted")
            if await self._children(conn, account_id, folder.name):
                raise CannotDeleteFolder("folder has children; delete them first")
            await conn.execute(delete(X).where(X.c.folder_id == folder_id))
            await conn.execute(delete(M).where(M.c.folder_id == folder_id))
            await conn.execute(delete(F).where(F.c.id == folder_id))
        await self.maildir.remove_tree(folder_path(folder.address, folder.name))
        self.changes.publish([folder_id])

    async def rename_folder(self, account_id: int, folder_id: int, new_name: str) -> None:
        new_name = normalise_folder_name(new_name)
        moved_pairs: list[tuple[PurePosixPath, PurePosixPath]] = []
        moved_files: list[tuple[str, str]] = []
        created: list[str] = []
        try:
            async with self._write() as conn:
                folder = await self._owned_folder(conn, account_id, folder_id, lock=True)
                address: str = folder.address
                old_name: str = folder.name
                if new_name == INBOX or new_name == old_name:
                    raise FolderExists(new_name)
                if new_name.startswith(old_name + "/"):
                    raise InvalidFolderName("cannot move a folder under itself")
                if old_name == INBOX:
                    # RFC 3501 section 6.3.5: renaming INBOX moves its messages to a new
                    # folder and leaves INBOX empty; INBOX's children stay where they are.
                    renames: list[tuple[int, str, str]] = []
                else:
                    renames = [(folder_id, old_name, new_name)] + [
                        (child.id, child.name, new_name + child.name[len(old_name) :])
                        for child in await self._children(conn, account_id, old_name)
                    ]
                targets = [new for _, _, new in renames] or [new_name]
                for target in targets:
                    _folder_dir(address, target)
                clash = (
                    await conn.execute(
                        select(F.c.name).where(F.c.account_id == account_id, F.c.name.in_(targets)).limit(1)
                    )
                ).first()
                if clash is not None:
                    raise FolderExists(clash.name)
                present = set(
                    (
                        await conn.execute(
                            select(F.c.name).where(
                                F.c.account_id == account_id, F.c.name.in_(_parents(new_name))
                            )
                        )
                    ).scalars()
                )
                parents = [p for p in _parents(new_name) if p not in present and p != old_name]
                if old_name == INBOX:
                    await self._rename_inbox(conn, folder, new_name, parents, moved_files)
                    created = [*parents, new_name]
                else:
                    await self._insert_folders(conn, account_id, [(p, None) for p in parents])
                    created = parents
                    for fid, old, new in renames:
                        await conn.execute(update(F).where(F.c.id == fid).values(name=new))
                        old_dir, new_dir = folder_path(address, old), folder_path(address, new)
                        old_prefix, new_prefix = f"{old_dir}/", f"{new_dir}/"
                        await conn.execute(
                            update(M)
                            .where(M.c.folder_id == fid)
                            .values(blob=literal(new_prefix) + func.substr(M.c.blob, len(old_prefix) + 1))
                        )
                        moved_pairs.append((old_dir, new_dir))
                    # Directories move inside the transaction; undone below if it fails.
                    await self.maildir.rename_folders(moved_pairs)
        except BaseException:
            if moved_pairs:
                await self.maildir.rename_folders([(new, old) for old, new in moved_pairs])
            if moved_files:
                await self._unmove_files(moved_files)
            raise
        for name in created:
            await self.maildir.create_folder(folder_path(address, name))
        self.changes.publish([folder_id])

    async def _rename_inbox(
        self,
        conn: AsyncConnection,
        inbox: AnyRow,
        new_name: str,
        parents: list[str],
        moved_files: list[tuple[str, str]],
    ) -> None:
        account_id: int = inbox.account_id
        await self._insert_folders(conn, account_id, [(p, None) for p in parents])
        await self._insert_folders(conn, account_id, [(new_name, None)], subscribed=inbox.subscribed)
        new_id = (
            await conn.execute(select(F.c.id).where(F.c.account_id == account_id, F.c.name == new_name))
        ).scalar_one()
        # The new folder has a fresh UIDVALIDITY, so the messages keep their UIDs.
        await conn.execute(
            update(F)
            .where(F.c.id == new_id)
            .values(
                uidnext=inbox.uidnext,
                highestmodseq=inbox.highestmodseq,
                recent_watermark=inbox.recent_watermark,
            )
        )
        rows = (await conn.execute(select(M.c.id, M.c.uid, M.c.blob).where(M.c.folder_id == inbox.id))).all()
        if not rows:
            return
        new_dir = folder_path(inbox.address, new_name)
        new_blobs = await self.maildir.move([r.blob for r in rows], new_dir)
        moved_files.extend(zip((r.blob for r in rows), new_blobs, strict=True))
        await conn.execute(
            update(M).where(M.c.id == bindparam("b_id")).values(folder_id=new_id, blob=bindparam("b_blob")),
            [{"b_id": r.id, "b_blob": b} for r, b in zip(rows, new_blobs, strict=True)],
        )
        modseq = await self._bump_modseq(conn, inbox.id)
        await conn.execute(insert(X), [{"folder_id": inbox.id, "uid": r.uid, "modseq": modseq} for r in rows])

    async def _unmove_files(self, moved: list[tuple[str, str]]) -> None:
        def undo() -> None:
            for old, new in moved:
                os.rename(self.maildir.absolute(new), self.maildir.absolute(old))

        await asyncio.to_thread(undo)

    async def set_subscribed(self, account_id: int, name: str, subscribed: bool) -> None:
        try:
            name = normalise_folder_name(name)
        except InvalidFolderName as exc:
            raise NoSuchFolder(name) from exc
        async with self._write() as conn:
            result = await conn.execute(
                update(F).where(F.c.account_id == account_id, F.c.name == name).values(subscribed=subscribed)
            )
            if result.rowcount == 0:
                raise NoSuchFolder(name)

    async def folder_status(self, account_id: int, folder_id: int) -> FolderStatus:
        async with self._read() as conn:
            folder = await self._owned_folder(conn, account_id, folder_id)
            stmt = select(
                func.count(),
                func.coalesce(func.sum(case((M.c.seen == false(), 1), else_=0)), 0),
                func.coalesce(func.sum(case((M.c.uid >= folder.recent_watermark, 1), else_=0)), 0),
                func.coalesce(func.sum(M.c.size), 0),
                func.coalesce(func.sum(case((M.c.deleted == true(), 1), else_=0)), 0),
            ).where(M.c.folder_id == folder_id)
            messages, unseen, recent, size, deleted = (await conn.execute(stmt)).one()
        return FolderStatus(
            messages=int(messages),
            unseen=int(unseen),
            recent=int(recent),
            uidnext=Uid(folder.uidnext),
            uidvalidity=folder.uidvalidity,
            highestmodseq=ModSeq(folder.highestmodseq),
            size=int(size),
            deleted=int(deleted),
        )

    async def claim_recent(self, account_id: int, folder_id: int) -> Uid:
        # Most SELECTs find nothing new to claim: answer those from a read, so a
        # client re-selecting a folder does not cost a synchronous write.
        async with self._read() as conn:
            current = await self._owned_folder(conn, account_id, folder_id)
        if current.recent_watermark >= current.uidnext:
            return Uid(current.uidnext)
        async with self._write() as conn:
            folder = await self._owned_folder(conn, account_id, folder_id, lock=True)
            await conn.execute(update(F).where(F.c.id == folder_id).values(recent_watermark=folder.uidnext))
        return Uid(folder.recent_watermark)

    # -- delivery (group commit) -------------------------------------------
    async def _commit_loop(self, queue: asyncio.Queue[_Pending | None]) -> None:
        stopping = False
        while not stopping:
            first = await queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < _MAX_BATCH:
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
            if item is not None and not item.future.done():
                item.future.set_exception(StoreClosedError("store closed"))

    async def _commit(self, batch: list[_Pending]) -> None:
        try:
            results = await self._insert_batch(batch)
        except Exception as exc:  # noqa: BLE001 - handed to the waiters, who raise it
            if len(batch) == 1:
                if not batch[0].future.done():
                    batch[0].future.set_exception(exc)
                return
            for pending in batch:
                await self._commit([pending])
            return
        self.commit_count += 1
        for pending, infos in zip(batch, results, strict=True):
            if not pending.future.done():
                pending.future.set_result(infos)
        self.changes.publish(row.folder_id for pending in batch for row in pending.rows)

    async def _insert_batch(self, batch: list[_Pending]) -> list[list[MessageInfo]]:
        per_folder = Counter(row.folder_id for pending in batch for row in pending.rows)
        async with self._write() as conn:
            next_uid: dict[int, int] = {}
            modseqs: dict[int, int] = {}
            # Ascending folder id: concurrent committers (other processes) on
            # PostgreSQL take the row locks in one order and cannot deadlock.
            for folder_id in sorted(per_folder):
                count = per_folder[folder_id]
                allocated = (
                    await conn.execute(
                        update(F)
                        .where(F.c.id == folder_id)
                        .values(uidnext=F.c.uidnext + count, highestmodseq=F.c.highestmodseq + 1)
                        .returning(F.c.uidnext, F.c.highestmodseq)
                    )
                ).one_or_none()
                if allocated is None:
                    raise NoSuchFolder(f"folder {folder_id} vanished before commit")
                next_uid[folder_id] = allocated.uidnext - count
                modseqs[folder_id] = allocated.highestmodseq
            values: list[dict[str, Any]] = []
            for pending in batch:
                for row in pending.rows:
                    uid = next_uid[row.folder_id]
                    next_uid[row.folder_id] = uid + 1
                    values.append(
                        {
                            **row.values,
                            "folder_id": row.folder_id,
                            "uid": uid,
                            "modseq": modseqs[row.folder_id],
                        }
                    )
            ids = (
                (await conn.execute(insert(M).returning(M.c.id, sort_by_parameter_order=True), values))
                .scalars()
                .all()
            )
        results: list[list[MessageInfo]] = []
        position = 0
        for pending in batch:
            infos: list[MessageInfo] = []
            for _ in pending.rows:
                v = values[position]
                infos.append(
                    MessageInfo(
                        id=ids[position],
                        uid=Uid(v["uid"]),
                        modseq=ModSeq(v["modseq"]),
                        flags=_parse_flags(v["flags"]),
                        internal_date=v["internal_date"],
                        size=v["size"],
                    )
                )
                position += 1
            results.append(infos)
        return results

    async def _submit(self, rows: list[_NewRow]) -> list[MessageInfo]:
        if self._queue is None:
            raise RuntimeError("SqlMailStore.start() has not been awaited")
        pending = _Pending(rows)
        await self._queue.put(pending)
        try:
            return await pending.future
        except asyncio.CancelledError:
            raise  # the rows may still commit; the files must stay
        except BaseException:
            await self.maildir.remove(row.values["blob"] for row in rows)
            raise

    @staticmethod
    async def _analyse(data: bytes) -> dict[str, Any]:
        envelope, body, fields = await asyncio.to_thread(mimeinfo.analyse, data)
        return {
            "envelope": mimeinfo.envelope_to_json(envelope),
            "bodystructure": mimeinfo.body_to_json(body),
            "subject": fields.subject,
            "from_": fields.from_,
            "to_": fields.to,
            "cc": fields.cc,
            "bcc": fields.bcc,
            "message_id": fields.message_id,
            "size": len(data),
        }

    async def deliver(
        self,
        account_ids: Sequence[int],
        data: bytes,
        *,
        internal_date: datetime | None = None,
        special_use: str | None = None,
    ) -> DeliveryResult:
        account_ids = list(dict.fromkeys(account_ids))
        if not account_ids:
            raise ValueError("deliver needs at least one account")
        async with self._read() as conn:
            rows = (
                await conn.execute(
                    select(A.c.id, A.c.address, F.c.id.label("folder_id"), F.c.name.label("folder"))
                    .join(F, and_(F.c.account_id == A.c.id, F.c.name == INBOX))
                    .where(A.c.id.in_(account_ids))
                )
            ).all()
            # (address, folder id, folder name) per account: INBOX, or the
            # oldest folder with the wanted SPECIAL-USE attribute (RFC 6154).
            target = {r.id: (r.address, r.folder_id, r.folder) for r in rows}
            if special_use is not None:
                special = await conn.execute(
                    select(F.c.account_id, F.c.id, F.c.name)
                    .where(F.c.account_id.in_(account_ids), F.c.special_use == special_use)
                    .order_by(F.c.id.desc())
                )
                for account_id, folder_id, name in special:
                    if account_id in target:
                        target[account_id] = (target[account_id][0], folder_id, name)
        for account_id in account_ids:
            if account_id not in target:
                raise NoSuchAccount(f"no account {account_id}")
        common = await self._analyse(data)
        common.update(flags="", seen=False, deleted=False, internal_date=_internal_date(internal_date))
        address, _, folder = target[account_ids[0]]
        blobs = [await self.maildir.write(folder_path(address, folder), data)]
        try:
            for account_id in account_ids[1:]:
                address, _, folder = target[account_id]
                blobs += await self.maildir.link(blobs[:1], folder_path(address, folder))
        except BaseException:
            await self.maildir.remove(blobs)
            raise
        new_rows = [
            _NewRow(aid, target[aid][1], {**common, "blob": blob})
            for aid, blob in zip(account_ids, blobs, strict=True)
        ]
        infos = await self._submit(new_rows)
        return DeliveryResult(
            placed=tuple((r.account_id, r.folder_id, i.uid) for r, i in zip(new_rows, infos, strict=True))
        )

    async def append(
        self,
        account_id: int,
        folder_id: int,
        data: bytes,
        *,
        flags: Iterable[str] = (),
        internal_date: datetime | None = None,
    ) -> MessageInfo:
        canonical = canonical_flags(flags)
        async with self._read() as conn:
            folder = await self._owned_folder(conn, account_id, folder_id)
        values = await self._analyse(data)
        values.update(
            flags=_flags_text(canonical),
            seen="\\Seen" in canonical,
            deleted="\\Deleted" in canonical,
            internal_date=_internal_date(internal_date),
        )
        try:
            values["blob"] = await self.maildir.write(folder_path(folder.address, folder.name), data)
        except FileNotFoundError:
            # The folder was deleted (and its directory removed) after the
            # ownership check above: the same outcome as deleting it before.
            raise NoSuchFolder(f"folder {folder_id} was deleted") from None
        (info,) = await self._submit([_NewRow(account_id, folder_id, values)])
        return info

    # -- reading ------------------------------------------------------------
    async def list_messages(self, account_id: int, folder_id: int) -> list[MessageInfo]:
        async with self._read() as conn:
            await self._owned_folder(conn, account_id, folder_id)
            result = await conn.execute(
                select(*_INFO_COLUMNS).where(M.c.folder_id == folder_id).order_by(M.c.uid)
            )
            return [_info(r) for r in result]

    async def folder_index(self, account_id: int, folder_id: int) -> FolderIndex:
        async with self._read() as conn:
            await self._owned_folder(conn, account_id, folder_id)
            result = await conn.execute(
                select(M.c.uid, M.c.seen, M.c.flags).where(M.c.folder_id == folder_id).order_by(M.c.uid)
            )
            uids: array[int] = array("I")
            keywords: set[str] = set()
            first_unseen: Uid | None = None
            for uid, seen, flags in result:
                uids.append(uid)
                if first_unseen is None and not seen:
                    first_unseen = Uid(uid)
                if flags:
                    keywords.update(f for f in flags.split() if not f.startswith("\\"))
        return FolderIndex(uids=uids, keywords=frozenset(keywords), first_unseen=first_unseen)

    async def get_infos(self, account_id: int, folder_id: int, uids: Sequence[Uid]) -> list[MessageInfo]:
        async with self._read() as conn:
            await self._owned_folder(conn, account_id, folder_id)
            rows = await self._messages(conn, folder_id, uids, _INFO_COLUMNS)
        return [_info(r) for r in rows]

    async def get_details(self, account_id: int, folder_id: int, uids: Sequence[Uid]) -> list[MessageDetail]:
        async with self._read() as conn:
            await self._owned_folder(conn, account_id, folder_id)
            rows = await self._messages(
                conn, folder_id, uids, [*_INFO_COLUMNS, M.c.envelope, M.c.bodystructure]
            )
        return [
            MessageDetail(
                info=_info(r),
                envelope=mimeinfo.envelope_from_json(r.envelope),
                body=mimeinfo.body_from_json(r.bodystructure),
            )
            for r in rows
        ]

    async def read_message(self, account_id: int, folder_id: int, uid: Uid) -> bytes:
        async with self._read() as conn:
            await self._owned_folder(conn, account_id, folder_id)
            blob = (
                await conn.execute(select(M.c.blob).where(M.c.folder_id == folder_id, M.c.uid == uid))
            ).scalar_one_or_none()
        if blob is None:
            raise KeyError(uid)
        return await self.maildir.read(blob)

    # -- flags and expunge --------------------------------------------------
    async def store_flags(
        self,
        account_id: int,
        folder_id: int,
        uids: Sequence[Uid],
        flags: Iterable[str],
        mode: FlagMode,
        *,
        unchanged_since: ModSeq | None = None,
    ) -> FlagUpdate:
        given = canonical_flags(flags)
        changed: list[MessageInfo] = []
        conflicts: list[Uid] = []
        async with self._write() as conn:
            await self._owned_folder(conn, account_id, folder_id, lock=True)
            rows = await self._messages(conn, folder_id, uids, _INFO_COLUMNS)
            updates: list[tuple[AnyRow, frozenset[str]]] = []
            for row in rows:
                # RFC 7162 section 3.1.3: a message modified after UNCHANGEDSINCE fails.
                if unchanged_since is not None and row.modseq > unchanged_since:
                    conflicts.append(Uid(row.uid))
                    continue
                old = _parse_flags(row.flags)
                if mode is FlagMode.REPLACE:
                    new = given
                elif mode is FlagMode.ADD:
                    new = old | given
                else:
                    new = old - given
                if new != old:
                    updates.append((row, new))
            if updates:
                modseq = await self._bump_modseq(conn, folder_id)
                await conn.execute(
                    update(M)
                    .where(M.c.id == bindparam("b_id"))
                    .values(
                        flags=bindparam("b_flags"),
                        seen=bindparam("b_seen"),
                        deleted=bindparam("b_deleted"),
                        modseq=modseq,
                    ),
                    [
                        {
                            "b_id": row.id,
                            "b_flags": _flags_text(new),
                            "b_seen": "\\Seen" in new,
                            "b_deleted": "\\Deleted" in new,
                        }
                        for row, new in updates
                    ],
                )
                changed = [
                    MessageInfo(
                        id=row.id,
                        uid=Uid(row.uid),
                        modseq=modseq,
                        flags=new,
                        internal_date=row.internal_date,
                        size=row.size,
                    )
                    for row, new in updates
                ]
        if changed:
            self.changes.publish([folder_id])
        return FlagUpdate(changed=tuple(changed), conflicts=tuple(conflicts))

    async def _remove_rows(self, conn: AsyncConnection, folder_id: int, rows: Sequence[AnyRow]) -> None:
        """Delete message rows and leave tombstones (RFC 7162 section 3.2.10)."""
        modseq = await self._bump_modseq(conn, folder_id)
        for chunk in _chunks([r.id for r in rows]):
            await conn.execute(delete(M).where(M.c.id.in_(chunk)))
        await conn.execute(
            insert(X), [{"folder_id": folder_id, "uid": r.uid, "modseq": modseq} for r in rows]
        )

    async def expunge(self, account_id: int, folder_id: int, uids: Sequence[Uid] | None = None) -> list[Uid]:
        async with self._write() as conn:
            await self._owned_folder(conn, account_id, folder_id, lock=True)
            columns = (M.c.id, M.c.uid, M.c.blob)
            if uids is None:
                rows = list(
                    (
                        await conn.execute(
                            select(*columns)
                            .where(M.c.folder_id == folder_id, M.c.deleted == true())
                            .order_by(M.c.uid)
                        )
                    ).all()
                )
            else:
                rows = await self._messages(conn, folder_id, uids, columns, M.c.deleted == true())
            if rows:
                await self._remove_rows(conn, folder_id, rows)
        if not rows:
            return []
        await self.maildir.remove(r.blob for r in rows)
        self.changes.publish([folder_id])
        return [Uid(r.uid) for r in rows]

    # -- copy and move -------------------------------------------------------
    async def _copy(
        self, account_id: int, folder_id: int, uids: Sequence[Uid], dest_folder_id: int, *, move: bool
    ) -> list[tuple[Uid, Uid]]:
        links: list[str] = []
        source_rows: list[AnyRow] = []
        try:
            async with self._write() as conn:
                # Lock both folders in id order (PostgreSQL deadlock avoidance).
                locked = {}
                for fid in sorted({folder_id, dest_folder_id}):
                    locked[fid] = await self._owned_folder(conn, account_id, fid, lock=True)
                dest = locked[dest_folder_id]
                skip = {"id", "folder_id", "uid", "modseq", "blob"}
                copy_columns = [c for c in M.c if c.key not in skip]
                source_rows = await self._messages(
                    conn, folder_id, uids, [M.c.id, M.c.uid, M.c.blob, *copy_columns]
                )
                if not source_rows:
                    return []
                links = await self.maildir.link(
                    [r.blob for r in source_rows], folder_path(dest.address, dest.name)
                )
                count = len(source_rows)
                allocated = (
                    await conn.execute(
                        update(F)
                        .where(F.c.id == dest_folder_id)
                        .values(uidnext=F.c.uidnext + count, highestmodseq=F.c.highestmodseq + 1)
                        .returning(F.c.uidnext, F.c.highestmodseq)
                    )
                ).one()
                first_uid = allocated.uidnext - count
                values = [
                    {
                        **{c.key: getattr(r, c.key) for c in copy_columns},
                        "folder_id": dest_folder_id,
                        "uid": first_uid + i,
                        "modseq": allocated.highestmodseq,
                        "blob": links[i],
                    }
                    for i, r in enumerate(source_rows)
                ]
                await conn.execute(insert(M), values)
                if move:
                    await self._remove_rows(conn, folder_id, source_rows)
        except BaseException:
            if links:
                await self.maildir.remove(links)
            raise
        if move:
            await self.maildir.remove(r.blob for r in source_rows)
        self.changes.publish([dest_folder_id, folder_id] if move else [dest_folder_id])
        return [(Uid(r.uid), Uid(first_uid + i)) for i, r in enumerate(source_rows)]

    async def copy(
        self, account_id: int, folder_id: int, uids: Sequence[Uid], dest_folder_id: int
    ) -> list[tuple[Uid, Uid]]:
        return await self._copy(account_id, folder_id, uids, dest_folder_id, move=False)

    async def move(
        self, account_id: int, folder_id: int, uids: Sequence[Uid], dest_folder_id: int
    ) -> list[tuple[Uid, Uid]]:
        return await self._copy(account_id, folder_id, uids, dest_folder_id, move=True)

    # -- CONDSTORE / QRESYNC, SEARCH, QUOTA ------------------------------------
    async def changes_since(self, account_id: int, folder_id: int, modseq: ModSeq) -> Changes:
        async with self._read() as conn:
            folder = await self._owned_folder(conn, account_id, folder_id)
            changed = (
                await conn.execute(
                    select(*_INFO_COLUMNS)
                    .where(M.c.folder_id == folder_id, M.c.modseq > modseq)
                    .order_by(M.c.uid)
                )
            ).all()
            vanished = (
                (
                    await conn.execute(
                        select(X.c.uid)
                        .where(X.c.folder_id == folder_id, X.c.modseq > modseq)
                        .order_by(X.c.uid)
                    )
                )
                .scalars()
                .all()
            )
        return Changes(
            highestmodseq=ModSeq(folder.highestmodseq),
            changed=tuple(_info(r) for r in changed),
            vanished=tuple(Uid(u) for u in vanished),
        )

    @staticmethod
    def _flag_clause(flag: str) -> ColumnElement[bool]:
        if flag == "\\Seen":
            return M.c.seen == true()
        if flag == "\\Deleted":
            return M.c.deleted == true()
        padded = literal(" ") + M.c.flags + literal(" ")
        return padded.like(f"% {_escape_like(flag)} %", escape="\\")

    def _search_clause(self, query: SearchQuery) -> list[ColumnElement[bool]]:
        clauses: list[ColumnElement[bool]] = []
        if query.uids is not None:
            if not query.uids:
                clauses.append(false())
            else:
                clauses.append(_ranges_clause(query.uids))
        for flag in query.flags_set | query.flags_unset:
            if flag.lower() == "\\recent":
                raise ValueError("\\Recent is session state; evaluate it in the session")
        for flag in canonical_flags(query.flags_set):
            clauses.append(self._flag_clause(flag))
        for flag in canonical_flags(query.flags_unset):
            clauses.append(~self._flag_clause(flag))
        if query.before is not None:
            clauses.append(M.c.internal_date < query.before)
        if query.since is not None:
            clauses.append(M.c.internal_date >= query.since)
        if query.larger is not None:
            clauses.append(M.c.size > query.larger)
        if query.smaller is not None:
            clauses.append(M.c.size < query.smaller)
        for header, text in query.header_contains:
            column = _HEADER_COLUMNS.get(header.lower())
            if column is None:
                raise ValueError(f"header {header!r} cannot be searched in SQL")
            clauses.append(column.like(f"%{_escape_like(text.lower())}%", escape="\\"))
        if query.modseq_above is not None:
            clauses.append(M.c.modseq > query.modseq_above)
        return clauses

    async def search(self, account_id: int, folder_id: int, query: SearchQuery) -> list[Uid]:
        clauses = self._search_clause(query)
        async with self._read() as conn:
            await self._owned_folder(conn, account_id, folder_id)
            result = await conn.execute(
                select(M.c.uid).where(M.c.folder_id == folder_id, *clauses).order_by(M.c.uid)
            )
            return [Uid(u) for u in result.scalars()]

    async def quota(self, account_id: int) -> Quota:
        async with self._read() as conn:
            exists = (await conn.execute(select(A.c.id).where(A.c.id == account_id))).first()
            if exists is None:
                raise NoSuchAccount(f"no account {account_id}")
            used, count = (
                await conn.execute(
                    select(func.coalesce(func.sum(M.c.size), 0), func.count(M.c.id))
                    .select_from(M.join(F, F.c.id == M.c.folder_id))
                    .where(F.c.account_id == account_id)
                )
            ).one()
        return Quota(storage_used=int(used), storage_limit=self.quota_bytes, messages_used=int(count))
