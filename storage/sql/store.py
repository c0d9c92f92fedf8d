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

Deliveries and APPENDs go through one committer task (group commit, the
database's ``Database.group_commit``; this store gives it ``_commit_batch``):
callers write their files in parallel worker threads, submit their rows and
wait; the committer takes everything queued, allocates UIDs (one ``UPDATE ... RETURNING``
per folder, which also row-locks the folder on PostgreSQL) and inserts all rows
in one transaction, then resolves every waiter. An APPEND queues its row as soon
as its file write has started (``Maildir.begin_write``): the message's analysis
and the transaction's statements run while the file is fsynced, and the
transaction waits for the file before it commits - the fsyncs stay in sequence
(file and directory, then the row), the work around them no longer does. The
folder's directory comes from a per-process cache (no read per APPEND); the
commit checks the folder still has that name and owner, else the APPEND is done
again with a fresh read. If a batch fails, its requests
are retried one by one so that one bad request (say, a folder deleted
meanwhile) cannot fail the others.

Every other mutation runs in its own write transaction that first locks the
folder rows it touches (``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite an
in-process lock plus ``BEGIN IMMEDIATE`` serialise writers), which is what keeps
UIDs and modseqs unique under concurrency. A mutation bumps the folder's
HIGHESTMODSEQ once and gives that value to every message it changed (RFC 7162
section 3.1 allows one modseq for all changes of one command).

Running a transaction
---------------------
The database work of every method is one plain function ``fn(conn, *args)`` on
a synchronous ``Connection``, run whole in one thread hop by the shared
``storage.sql.database.Database`` (``run_read`` / ``run_write``; its docstring
explains the worker threads, the engines and the write serialisation, which the
directory, queue, routes, credentials and activity stores share).

Blocking file work inside a transaction (COPY's links, RENAME's directory
moves, placing staged deliveries) goes through ``database.run_io``: a plain call on a
worker thread, a thread hop from ``run_sync``'s greenlet on the event loop. File changes
made inside a write transaction register their undo, which runs (on the same
thread) if the transaction does not commit, whatever happens to the awaiting
task meanwhile.

Flag-only writes (STORE, \\Recent, last login, subscriptions) commit with
``synchronous=NORMAL`` on SQLite (``durable=False``; ``engine.synchronous_normal``
explains why that is safe) and ``synchronous_commit=off`` on PostgreSQL (the same
promise: the last commits may be lost on a crash, nothing is corrupted);
everything that creates, moves or removes messages or folders commits durably.

Hot paths (list, search, details, flags, deliver) use Core statements and
tuples; there is no per-message ORM object anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any, Final, Protocol, TypeAlias, TypeVar, TypeVarTuple, cast

from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
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
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.util import await_only

from storage import mimeinfo
from storage.api import (
    INBOX,
    SPECIAL_FOLDERS,
    Account,
    AccountExists,
    CannotDeleteFolder,
    ChangeHub,
    Changes,
    DeletedMessage,
    DeliveryObserver,
    DeliveryResult,
    FlagMode,
    FlagUpdate,
    Folder,
    FolderExists,
    FolderIndex,
    FolderStatus,
    Hold,
    IndexDoc,
    IndexJob,
    IndexStatus,
    InvalidFolderName,
    MessageDetail,
    MessageInfo,
    ModSeq,
    NoSuchAccount,
    NoSuchFolder,
    OverQuota,
    Quota,
    Restored,
    SearchQuery,
    StoreError,
    TextHits,
    Uid,
)
from storage.imapwire import envelope_wire
from storage.maildir import Maildir, account_path, folder_path
from storage.sql import fulltext, jobs, models
from storage.sql import vault as vaults
from storage.sql.database import Database, DirectStatement, PointQuery, Undo, run_io
from storage.sql.groupcommit import GroupCommit
from storage.sql.notify import PgChangeHub

AnyRow: TypeAlias = "Row[*tuple[Any, ...]]"
T = TypeVar("T")
Ts = TypeVarTuple("Ts")

__all__ = [
    "HEADER_COLUMNS",
    "SqlMailStore",
    "StagedCommitter",
    "StagedDelivery",
    "canonical_flags",
    "normalise_folder_name",
]

A: Final = cast(Table, models.Account.__table__)
F: Final = cast(Table, models.Folder.__table__)
M: Final = cast(Table, models.Message.__table__)
X: Final = cast(Table, models.Expunged.__table__)

_MAX_BATCH: Final = 512
_APPEND_DIRS_MAX: Final = 4096
"""Folders whose directory APPEND remembers (``SqlMailStore._append_dirs``)."""
_INLINE_ANALYSIS: Final = 1 << 20
"""Messages up to this size are analysed (mimeinfo) on the event loop."""
"""Most delivery requests committed in one transaction."""
_OVERLAPPED_STAGING: Final = 1 << 18
"""Largest message ``deliver`` queues while its staging write runs (the commit
waits for the write): a longer write would hold up its whole batch and the
database's write lock, so a larger message is staged first, then queued."""
_CHUNK: Final = 500
"""Ids per IN (...) list, well under SQLite's and asyncpg's bind parameter limits."""
_MAX_UID_RANGES: Final = 100
"""Beyond this many UID ranges the folder is read whole and filtered in Python."""
_MAX_LEVEL: Final = 255
_MAX_NAME: Final = 1024

_SYSTEM_FLAGS: Final = {f.lower(): f for f in ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")}

_INFO_COLUMNS: Final = (M.c.id, M.c.uid, M.c.modseq, M.c.flags, M.c.internal_date, M.c.size)
_COPY_COLUMNS: Final = tuple(c for c in M.c if c.key not in {"id", "folder_id", "uid", "modseq", "blob"})
"""Columns a COPY takes over unchanged."""

HEADER_COLUMNS: Final = {
    "subject": M.c.subject,
    "from": M.c.from_,
    "to": M.c.to_,
    "cc": M.c.cc,
    "bcc": M.c.bcc,
    "message-id": M.c.message_id,
}

# Statements of the hottest point queries, built once (parameters bound per call).
_ACCOUNT_BY_ID: Final = select(A).where(A.c.id == bindparam("account_id"))
_ACCOUNT_BY_ADDRESS: Final = select(A).where(A.c.address == bindparam("address"))
_POINT_ACCOUNT_BY_ID: Final = PointQuery(_ACCOUNT_BY_ID)
_POINT_ACCOUNT_BY_ADDRESS: Final = PointQuery(_ACCOUNT_BY_ADDRESS)
_FOLDER_BY_NAME: Final = select(F).where(
    F.c.account_id == bindparam("account_id"), F.c.name == bindparam("name")
)
_OWNED_FOLDER: Final = (
    select(F, A.c.address)
    .join(A, A.c.id == F.c.account_id)
    .where(F.c.id == bindparam("folder_id"), F.c.account_id == bindparam("account_id"))
)
_OWNED_FOLDER_LOCKED: Final = _OWNED_FOLDER.with_for_update(of=F)


@dataclass(frozen=True, slots=True)
class _UidQuery:
    """A SELECT of some message columns by folder and UIDs, built once (building
    a statement costs more than running a point query). ``one_range`` serves the
    common single UID range; ``base`` is extended per call for several."""

    base: Select[Any]
    one_range: Select[Any]

    @classmethod
    def of(cls, *columns: Any, where: ColumnElement[bool] | None = None) -> _UidQuery:
        """``uid`` must be among ``columns``."""
        base = select(*columns).where(M.c.folder_id == bindparam("folder_id")).order_by(M.c.uid)
        if where is not None:
            base = base.where(where)
        return cls(base, base.where(M.c.uid.between(bindparam("lo"), bindparam("hi"))))


_INFOS: Final = _UidQuery.of(*_INFO_COLUMNS)
_INFOS_BLOB: Final = _UidQuery.of(*_INFO_COLUMNS, M.c.blob)
_DETAILS: Final = _UidQuery.of(*_INFO_COLUMNS, M.c.envelope, M.c.bodystructure, M.c.envelope_imap)
_INDEX: Final = select(M.c.uid, M.c.seen, M.c.flags).where(M.c.folder_id == bindparam("folder_id")).order_by(
    M.c.uid
)
_FLAGS: Final = select(M.c.uid, M.c.flags).where(M.c.folder_id == bindparam("folder_id")).order_by(M.c.uid)
"""(uid, flags) in UID order: answered from ``ix_messages_folder_index`` alone."""
_DELETED: Final = _UidQuery.of(
    M.c.id, M.c.uid, M.c.blob, M.c.size, *vaults.VAULT_COLUMNS, where=M.c.deleted == true()
)
_TO_COPY: Final = _UidQuery.of(M.c.id, M.c.uid, M.c.blob, *_COPY_COLUMNS)
_CHANGED: Final = (
    select(*_INFO_COLUMNS)
    .where(M.c.folder_id == bindparam("folder_id"), M.c.modseq > bindparam("modseq"))
    .order_by(M.c.uid)
)
_VANISHED: Final = (
    select(X.c.uid)
    .where(X.c.folder_id == bindparam("folder_id"), X.c.modseq > bindparam("modseq"))
    .order_by(X.c.uid)
)
_STATUS: Final = select(
    func.count(),
    func.coalesce(func.sum(case((M.c.seen == false(), 1), else_=0)), 0),
    func.coalesce(func.sum(case((M.c.uid >= bindparam("watermark"), 1), else_=0)), 0),
    func.coalesce(func.sum(M.c.size), 0),
    func.coalesce(func.sum(case((M.c.deleted == true(), 1), else_=0)), 0),
).where(M.c.folder_id == bindparam("folder_id"))
_BLOB: Final = select(M.c.blob).where(M.c.folder_id == bindparam("folder_id"), M.c.uid == bindparam("uid"))
_SET_FLAGS: Final = (
    update(M)
    .where(M.c.id == bindparam("b_id"))
    .values(
        flags=bindparam("b_flags"),
        seen=bindparam("b_seen"),
        deleted=bindparam("b_deleted"),
        modseq=bindparam("b_modseq"),
    )
)
# The group commit's statements run on the DBAPI connection on SQLite
# (``DirectStatement``): SQLAlchemy's execution of each cost more than SQLite's.
_ALLOCATE_UIDS: Final = DirectStatement(
    update(F)
    .where(F.c.id == bindparam("b_folder"))
    .values(uidnext=F.c.uidnext + bindparam("b_count"), highestmodseq=F.c.highestmodseq + 1)
    .returning(F.c.uidnext, F.c.highestmodseq, F.c.account_id, F.c.name)
)
"""UIDs for ``b_count`` new messages and one new modseq (the group commit)."""
_INSERT_MESSAGES: Final = insert(M).returning(M.c.id, sort_by_parameter_order=True)
_INSERT_MESSAGE: Final = DirectStatement(insert(M).returning(M.c.id))
_ACCOUNTS_USAGE: Final = DirectStatement(
    select(A.c.id, A.c.storage_used, A.c.quota_bytes).where(
        A.c.id.in_(bindparam("b_accounts", expanding=True))
    )
)
# Hot statements are built once: building one and its cache key cost about as
# much as running it.
_BUMP_MODSEQ: Final = (
    update(F)
    .where(F.c.id == bindparam("folder_id"))
    .values(highestmodseq=F.c.highestmodseq + 1)
    .returning(F.c.highestmodseq)
)


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


def _chunks(items: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


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
        quota_bytes=row.quota_bytes,
        cert_login=bool(row.cert_login),
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


# -- database helpers (synchronous, inside a transaction) ---------------------


def _owned_folder(conn: Connection, account_id: int, folder_id: int, *, lock: bool = False) -> AnyRow:
    """The folder row plus the account address; NoSuchFolder unless owned."""
    stmt = _OWNED_FOLDER_LOCKED if lock else _OWNED_FOLDER
    row = conn.execute(stmt, {"folder_id": folder_id, "account_id": account_id}).one_or_none()
    if row is None:
        raise NoSuchFolder(f"no folder {folder_id} in account {account_id}")
    return row


def _bump_modseq(conn: Connection, folder_id: int) -> ModSeq:
    return ModSeq(conn.execute(_BUMP_MODSEQ, {"folder_id": folder_id}).scalar_one())


def _allocate_uidvalidity(conn: Connection, account_id: int, count: int) -> int:
    """First of ``count`` fresh UIDVALIDITY values: time-based (as Dovecot) but
    strictly increasing per account, so a folder deleted and re-created within
    the same second still gets a new value (RFC 9051 section 2.3.1.1)."""
    stmt = select(A.c.next_uidvalidity).where(A.c.id == account_id).with_for_update()
    current = conn.execute(stmt).scalar_one_or_none()
    if current is None:
        raise NoSuchAccount(f"no account {account_id}")
    first = max(int(current), int(time.time()))
    conn.execute(update(A).where(A.c.id == account_id).values(next_uidvalidity=first + count))
    return first


def _insert_folders(
    conn: Connection,
    account_id: int,
    names: Sequence[tuple[str, str | None]],
    *,
    subscribed: bool = True,
) -> None:
    if not names:
        return
    first = _allocate_uidvalidity(conn, account_id, len(names))
    conn.execute(
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


def _uid_select(
    query: _UidQuery, folder_id: int, uids: Sequence[Uid]
) -> tuple[Select[Any], dict[str, int], set[Uid] | None]:
    """The statement reading ``uids`` (not empty) of a folder, its parameters, and
    the UIDs to keep of its rows when the set is too fragmented for one
    statement (then the whole folder is read and filtered here)."""
    ranges = _uid_ranges(uids)
    if len(ranges) == 1:
        lo, hi = ranges[0]
        return query.one_range, {"folder_id": folder_id, "lo": lo, "hi": hi}, None
    if len(ranges) <= _MAX_UID_RANGES:
        return query.base.where(_ranges_clause(ranges)), {"folder_id": folder_id}, None
    return query.base, {"folder_id": folder_id}, set(uids)


def _message_tuples(
    conn: Connection, query: _UidQuery, folder_id: int, uids: Sequence[Uid]
) -> list[tuple[Any, ...]]:
    """As ``_messages``, but the driver's own tuples (no ``Row`` objects, no result
    processing: a FETCH of a whole folder reads every row). ``uid`` must be the
    query's second column; ``internal_date`` comes raw (see ``_info``)."""
    if not uids:
        return []
    statement, params, wanted = _uid_select(query, folder_id, uids)
    result = conn.execute(statement, params)
    try:
        rows: list[tuple[Any, ...]] = list(result.cursor.fetchall())
    finally:
        result.close()
    return rows if wanted is None else [r for r in rows if r[1] in wanted]


def _info(row: AnyRow | tuple[Any, ...]) -> MessageInfo:
    """From a row that starts with ``_INFO_COLUMNS`` (unpacked by position: cheaper
    than by name, and this runs once per message listed): a ``Row`` or the
    driver's own tuple, whose INTERNALDATE is on SQLite the text SQLAlchemy
    stored (naive UTC) and on PostgreSQL an aware datetime."""
    id_, uid, modseq, flags, internal_date, size, *_ = row
    if type(internal_date) is str:
        internal_date = datetime.fromisoformat(internal_date).replace(tzinfo=UTC)
    elif internal_date.tzinfo is None:
        internal_date = internal_date.replace(tzinfo=UTC)
    elif internal_date.tzinfo is not UTC:
        internal_date = internal_date.astimezone(UTC)
    flag_set = _FLAG_SETS.get(flags)
    if flag_set is None:
        flag_set = frozenset(flags.split())
        if len(_FLAG_SETS) < _FLAG_SETS_MAX:
            _FLAG_SETS[flags] = flag_set
    return MessageInfo(id_, uid, modseq, flag_set, internal_date, size)


_FLAG_SETS: Final[dict[str, frozenset[str]]] = {}
"""Flag sets by their stored text: a folder has few distinct ones (\\Seen, none,
\\Seen \\Answered...), so rows listed share one frozenset each instead of
splitting and building one per row."""
_FLAG_SETS_MAX: Final = 4096


def _messages(conn: Connection, query: _UidQuery, folder_id: int, uids: Sequence[Uid]) -> list[AnyRow]:
    """Rows of the given UIDs in UID order."""
    if not uids:
        return []
    statement, params, wanted = _uid_select(query, folder_id, uids)
    rows = conn.execute(statement, params).all()
    return list(rows) if wanted is None else [r for r in rows if r.uid in wanted]


def _children(conn: Connection, account_id: int, name: str) -> list[AnyRow]:
    # substr() rather than LIKE: SQLite's LIKE ignores ASCII case, folder names must not.
    prefix = name + "/"
    stmt = select(F).where(F.c.account_id == account_id, func.substr(F.c.name, 1, len(prefix)) == prefix)
    return list(conn.execute(stmt).all())


def _remove_rows(conn: Connection, folder_id: int, rows: Sequence[AnyRow]) -> None:
    """Delete message rows and leave tombstones (RFC 7162 section 3.2.10)."""
    modseq = _bump_modseq(conn, folder_id)
    for chunk in _chunks([r.id for r in rows]):
        conn.execute(delete(M).where(M.c.id.in_(chunk)))
    conn.execute(insert(X), [{"folder_id": folder_id, "uid": r.uid, "modseq": modseq} for r in rows])


_USAGE: Final = select(A.c.storage_used, A.c.message_count, A.c.quota_bytes).where(
    A.c.id == bindparam("account_id")
)
_POINT_USAGE: Final = PointQuery(_USAGE)
_CHARGE: Final = DirectStatement(
    update(A)
    .where(A.c.id == bindparam("b_account"))
    .values(
        storage_used=A.c.storage_used + bindparam("b_octets"),
        message_count=A.c.message_count + bindparam("b_messages"),
    )
)


def _limit(own: int | None, default: int | None) -> int | None:
    """The STORAGE limit in force: the account's own, else the default; None when unlimited."""
    value = default if own is None else own
    return value if value else None


def _charge(conn: Connection, usage: dict[int, tuple[int, int]]) -> None:
    """Add (octets, messages), negative to remove, to the accounts' usage counters,
    in ascending account id (after the folder locks: one lock order everywhere)."""
    params = [
        {"b_account": account_id, "b_octets": octets, "b_messages": messages}
        for account_id, (octets, messages) in sorted(usage.items())
        if octets or messages
    ]
    if params:
        _CHARGE.execute(conn, params)


def _check_quota(conn: Connection, account_id: int, size: int, default: int | None) -> None:
    """Raise OverQuota when ``size`` more octets do not fit in the account's quota."""
    row = conn.execute(_USAGE, {"account_id": account_id}).one_or_none()
    if row is None:
        raise NoSuchAccount(f"no account {account_id}")
    limit = _limit(row.quota_bytes, default)
    if limit is not None and row.storage_used + size > limit:
        raise OverQuota(account_id, int(row.storage_used), limit, size)


def _quota_refusals(
    conn: Connection, requests: Sequence[_Request], default: int | None
) -> dict[int, OverQuota]:
    """Which requests of a group-commit batch do not fit in their accounts'
    quotas, taking them in order (each counts against the ones after it). On
    PostgreSQL the usage is read without a lock: a commit of another node at the
    same moment may take an account slightly beyond its quota (as Dovecot's own
    quota can be); within one process the writer thread serialises commits."""
    charges = [_request_usage(request) for request in requests]
    accounts = sorted({a for charge in charges for a in charge})
    if not accounts:
        return {}
    used: dict[int, int] = {}
    limits: dict[int, int | None] = {}
    for chunk in _chunks(accounts):
        for account_id, storage_used, own in _ACCOUNTS_USAGE.rows(conn, {"b_accounts": list(chunk)}):
            used[account_id], limits[account_id] = int(storage_used), _limit(own, default)
    refused: dict[int, OverQuota] = {}
    for index, (request, charge) in enumerate(zip(requests, charges, strict=True)):
        if request[2]:
            for account_id, (octets, _) in charge.items():
                limit = limits.get(account_id)
                if limit is not None and used[account_id] + octets > limit:
                    refused[index] = OverQuota(account_id, used[account_id], limit, octets)
                    break
            if index in refused:
                continue
        for account_id, (octets, _) in charge.items():
            if account_id in used:
                used[account_id] += octets
    return refused


def _request_usage(request: _Request) -> dict[int, tuple[int, int]]:
    """(octets, messages) a group-commit request adds, per account."""
    rows, delivery, _ = request
    usage: dict[int, tuple[int, int]] = {}
    if delivery is not None:
        for account_id in delivery.account_ids:
            usage[account_id] = (delivery.values["size"], 1)
    for row in rows:
        octets, messages = usage.get(row.account_id, (0, 0))
        usage[row.account_id] = (octets + row.values["size"], messages + 1)
    return usage


# -- group commit -------------------------------------------------------------


@dataclass(slots=True)
class _NewRow:
    account_id: int
    folder_id: int
    values: dict[str, Any]
    """Column values except uid and modseq, which the committer assigns."""
    written: Future[None] | None = None
    """APPEND: the write of the row's file, still running when the row is queued;
    the commit transaction waits for it before it commits (``_wait_written``)."""
    folder_name: str | None = None
    """APPEND: the folder name the file's directory was derived from (the store's
    cache may be stale): the commit checks it is still the folder's, in the
    row's account, or fails with ``_StaleFolder``."""


class _StaleFolder(NoSuchFolder):
    """An APPEND's file went to the directory of a folder name the folder no longer
    has (renamed, or deleted and its id reused, by another process or since the
    store cached it): the row is refused and the store tries again."""


def _wait_written(futures: Iterable[Future[Any]]) -> None:
    """Block until the files of the rows about to commit are durable (raising what
    their writes raised): inside a commit transaction, so a row never commits
    before its file. From ``run_sync``'s greenlet on the event loop (an in-memory
    SQLite database) the loop keeps running meanwhile."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        for future in futures:
            future.result()
        return
    for future in futures:
        await_only(asyncio.wrap_future(future))


@dataclass(slots=True)
class _Delivery:
    """A staged message the committer places (``deliver``): in its transaction
    it finds the target folders and renames the staged file into them. Its file
    is written in parallel with the commits of other messages: before it is
    queued (``commit_staged``: staged by another process, or a large message),
    or while it waits in the queue (``written``: the event loop hands the write
    to a worker thread and is not woken when it ends)."""

    account_ids: list[int]
    special_use: str | None
    staged: str
    """Name of the fsynced file in the Maildir's staging directory."""
    values: dict[str, Any]
    """Column values shared by every copy, except blob, uid and modseq."""
    written: Future[str] | None = None
    """The staging write, when it was started with the request (``deliver`` in
    this process): the commit transaction waits for it before it places the
    file (``_place_deliveries``), as for an APPEND's row."""


@dataclass(frozen=True, slots=True)
class StagedDelivery:
    """A message analysed and fsynced into the Maildir's staging directory,
    waiting for ``SqlMailStore.commit_staged`` (plain data: it may cross
    processes)."""

    name: str
    """The staged file's name."""
    values: dict[str, Any]
    """Column values shared by every copy, except blob, uid and modseq."""


@dataclass(slots=True)
class _Pending:
    rows: list[_NewRow]
    """Rows whose files are written (APPEND); empty for a delivery."""
    delivery: _Delivery | None = None
    quota: bool = True
    """Refuse (OverQuota) when the rows do not fit in their accounts' quotas."""


_Request: TypeAlias = "tuple[list[_NewRow], _Delivery | None, bool]"
_Placed: TypeAlias = "list[tuple[_NewRow, MessageInfo]]"
"""What a committed request placed: its rows and their messages."""
"""A group-commit request as the commit transaction sees it: rows, delivery, quota enforced."""


class StagedCommitter(Protocol):
    """Commits a delivery staged by this store in another process (``commit_elsewhere``)."""

    async def commit(
        self, account_ids: list[int], staged: StagedDelivery, special_use: str | None, quota: bool
    ) -> DeliveryResult: ...


class StoreClosedError(StoreError):
    """The store was closed while a delivery was waiting for its commit."""


# Built once (every group-commit batch of deliveries runs them).
_INBOX_TARGETS: Final = DirectStatement(
    select(A.c.id, A.c.address, F.c.id.label("folder_id"), F.c.name.label("folder"))
    .join(F, and_(F.c.account_id == A.c.id, F.c.name == INBOX))
    .where(A.c.id.in_(bindparam("b_accounts", expanding=True)))
)
_SPECIAL_TARGETS: Final = DirectStatement(
    select(F.c.account_id, F.c.id, F.c.name)
    .where(F.c.account_id.in_(bindparam("b_accounts", expanding=True)), F.c.special_use == bindparam("b_use"))
    .order_by(F.c.id.desc())
)


def _delivery_targets_tx(
    conn: Connection, account_ids: list[int], special_use: str | None
) -> dict[int, tuple[str, int, str]]:
    """(address, folder id, folder name) per account: INBOX, or the oldest
    folder with the wanted SPECIAL-USE attribute (RFC 6154)."""
    rows = _INBOX_TARGETS.rows(conn, {"b_accounts": account_ids})
    target = {r.id: (r.address, r.folder_id, r.folder) for r in rows}
    if special_use is not None:
        special = _SPECIAL_TARGETS.rows(conn, {"b_accounts": account_ids, "b_use": special_use})
        for account_id, folder_id, name in special:
            if account_id in target:
                target[account_id] = (target[account_id][0], folder_id, name)
    return target


def _place_deliveries(
    conn: Connection, requests: Sequence[_Request], maildir: Maildir, undo: Undo
) -> list[list[_NewRow]]:
    """The rows of every request: those given, and for each delivery one per
    account, in its INBOX (or SPECIAL-USE folder), its staged file renamed
    there (directories fsynced once per batch) before any row is written."""
    deliveries = [(i, d) for i, (_, d, _) in enumerate(requests) if d is not None]
    out = [rows for rows, _, _ in requests]
    if not deliveries:
        return out
    # One lookup per kind of target folder (INBOX, Junk...) for the whole batch.
    by_use: dict[str | None, dict[int, tuple[str, int, str]]] = {}
    for use in {d.special_use for _, d in deliveries}:
        accounts = list({a for _, d in deliveries if d.special_use == use for a in d.account_ids})
        by_use[use] = _delivery_targets_tx(conn, accounts, use)
    targets = [by_use[d.special_use] for _, d in deliveries]
    for (_, delivery), target in zip(deliveries, targets, strict=True):
        for account_id in delivery.account_ids:
            if account_id not in target:
                raise NoSuchAccount(f"no account {account_id}")
    # One path per folder of the batch, not per message (pathlib and the
    # address encoding cost more than the rename).
    paths: dict[tuple[str, str], PurePosixPath] = {}

    def path_of(address: str, folder: str) -> PurePosixPath:
        found = paths.get((address, folder))
        if found is None:
            found = paths[address, folder] = folder_path(address, folder)
        return found

    items = [
        (delivery.staged, [path_of(target[a][0], target[a][2]) for a in delivery.account_ids])
        for (_, delivery), target in zip(deliveries, targets, strict=True)
    ]
    # A file still being written is neither renamed into a folder nor committed
    # before its fsync (raising what its write raised).
    _wait_written(delivery.written for _, delivery in deliveries if delivery.written is not None)
    blobs = run_io(maildir.place_staged, items)
    # Not committed: the files go back to staging, to be placed alone (_commit).
    placed = [(name, these) for (name, _), these in zip(items, blobs, strict=True)]
    undo.append(partial(maildir.unplace, placed))
    for (i, delivery), target, these in zip(deliveries, targets, blobs, strict=True):
        out[i] = [
            _NewRow(a, target[a][1], {**delivery.values, "blob": blob})
            for a, blob in zip(delivery.account_ids, these, strict=True)
        ]
    return out


def _insert_batch(
    conn: Connection, requests: list[_Request], maildir: Maildir, undo: Undo, default_quota: int | None
) -> list[list[tuple[_NewRow, MessageInfo]] | OverQuota]:
    """One group-commit transaction: the rows of every request in ``requests``
    that fits in its accounts' quotas; OverQuota in place of those that do not."""
    refused = _quota_refusals(conn, requests, default_quota)
    kept = [request for index, request in enumerate(requests) if index not in refused]
    placed = _insert_rows(conn, kept, maildir, undo) if kept else []
    usage: dict[int, tuple[int, int]] = {}
    for rows in placed:
        for row, _ in rows:
            octets, messages = usage.get(row.account_id, (0, 0))
            usage[row.account_id] = (octets + row.values["size"], messages + 1)
    _charge(conn, usage)
    # The APPEND files were written while the rows were prepared; the rows
    # commit only once every one of them is durable.
    _wait_written(row.written for rows, _, _ in kept for row in rows if row.written is not None)
    results: list[list[tuple[_NewRow, MessageInfo]] | OverQuota] = []
    done = iter(placed)
    for index in range(len(requests)):
        results.append(refused[index] if index in refused else next(done))
    return results


def _insert_rows(
    conn: Connection, requests: list[_Request], maildir: Maildir, undo: Undo
) -> list[list[tuple[_NewRow, MessageInfo]]]:
    """The rows of every request: files placed, UIDs allocated, rows inserted."""
    batch = _place_deliveries(conn, requests, maildir, undo)
    per_folder = Counter(row.folder_id for rows in batch for row in rows)
    next_uid: dict[int, int] = {}
    modseqs: dict[int, int] = {}
    owners: dict[int, tuple[int, str]] = {}
    # Ascending folder id: concurrent committers (other processes) on
    # PostgreSQL take the row locks in one order and cannot deadlock.
    for folder_id in sorted(per_folder):
        count = per_folder[folder_id]
        allocated = _ALLOCATE_UIDS.one_or_none(conn, {"b_folder": folder_id, "b_count": count})
        if allocated is None:
            raise NoSuchFolder(f"folder {folder_id} vanished before commit")
        next_uid[folder_id] = allocated.uidnext - count
        modseqs[folder_id] = allocated.highestmodseq
        owners[folder_id] = (allocated.account_id, allocated.name)
    for rows in batch:
        for row in rows:
            if row.folder_name is not None and owners[row.folder_id] != (row.account_id, row.folder_name):
                raise _StaleFolder(f"folder {row.folder_id} is no longer {row.folder_name!r}")
    values: list[dict[str, Any]] = []
    for rows in batch:
        for row in rows:
            uid = next_uid[row.folder_id]
            next_uid[row.folder_id] = uid + 1
            values.append(
                {**row.values, "folder_id": row.folder_id, "uid": uid, "modseq": modseqs[row.folder_id]}
            )
    if len(values) == 1 or _INSERT_MESSAGE.is_direct(conn):
        # One row at a time: one APPEND or delivery, or SQLite's DBAPI connection
        # (a statement there costs less than the executemany machinery's share).
        ids: Sequence[int] = [_INSERT_MESSAGE.insert_one(conn, v) for v in values]
    else:
        ids = conn.execute(_INSERT_MESSAGES, values).scalars().all()
    results: list[list[tuple[_NewRow, MessageInfo]]] = []
    position = 0
    for rows in batch:
        infos: list[tuple[_NewRow, MessageInfo]] = []
        for row in rows:
            v = values[position]
            infos.append(
                (row, MessageInfo(
                    id=ids[position],
                    uid=Uid(v["uid"]),
                    modseq=ModSeq(v["modseq"]),
                    flags=_parse_flags(v["flags"]),
                    internal_date=v["internal_date"],
                    size=v["size"],
                ))
            )
            position += 1
        results.append(infos)
    return results


class SqlMailStore:
    """MailStore on SQLAlchemy (SQLite or PostgreSQL) and a Maildir tree.

    ``commit_count`` counts group-commit transactions (deliver/append), so tests
    can observe batching.
    """

    def __init__(
        self, db: Database | str, maildir_root: Path, *, quota_bytes: int | None = None
    ) -> None:
        # Given a URL the store opens (and closes) a Database of its own; given a
        # Database, whoever built it (``storage.open_storage``) starts and closes it.
        self._owns_db = isinstance(db, str)
        self.db = Database(db) if isinstance(db, str) else db
        self.url = self.db.url
        self.maildir = Maildir(Path(maildir_root))
        self.quota_bytes = quota_bytes
        # On PostgreSQL, changes also reach (and come from) other processes and nodes.
        self.changes = PgChangeHub() if self.db.backend == "postgresql" else ChangeHub()
        self.commit_count = 0
        self._group: GroupCommit[_Pending, _Placed] | None = None
        """Deliveries and APPENDs, committed in batches (``Database.group_commit``)."""
        self._delivery_observers: list[DeliveryObserver] = []
        self._committer_elsewhere: StagedCommitter | None = None
        self._append_dirs: dict[int, tuple[int, str, PurePosixPath]] = {}
        """folder id -> (account id, folder name, directory) for APPEND, so that a
        client appending message after message costs no read of the folder row:
        the commit checks the name is still right (``_NewRow.folder_name``)."""

    # -- lifecycle ----------------------------------------------------------
    async def start(self) -> None:
        await asyncio.to_thread(self.maildir.root.mkdir, parents=True, exist_ok=True)
        await self.maildir.clean_staging()
        if self._owns_db:
            await self.db.start()
        if isinstance(self.changes, PgChangeHub):
            try:
                await self.changes.start(self.db.engine.url)
            except BaseException:
                if self._owns_db:
                    await self.db.close()
                raise
        self._group = self.db.group_commit(
            self._commit_batch, max_batch=_MAX_BATCH, name="mailstore-committer",
            closed_error=lambda: StoreClosedError("store closed"),
        )

    async def close(self) -> None:
        if self._group is not None:
            await self._group.close()
            self._group = None
        if isinstance(self.changes, PgChangeHub):
            await self.changes.close()
        if self._owns_db:
            await self.db.close()

    # -- accounts -----------------------------------------------------------
    async def create_account(
        self, address: str, name: str, password_hash: str, *, must_change_password: bool = True
    ) -> Account:
        address = _canonical_address(address)
        try:
            account = await self.db.run_write(
                self._create_account_tx, address, name, password_hash, must_change_password
            )
        except IntegrityError as exc:
            raise AccountExists(address) from exc
        for folder_name in (INBOX, *(n for n, _ in SPECIAL_FOLDERS)):
            await self.maildir.create_folder(folder_path(address, folder_name))
        return account

    @staticmethod
    def _create_account_tx(
        conn: Connection, address: str, name: str, password_hash: str, must_change_password: bool
    ) -> Account:
        if conn.execute(select(A.c.id).where(A.c.address == address)).first() is not None:
            raise AccountExists(address)
        now = _now()
        account_id = conn.execute(
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
        ).scalar_one()
        _insert_folders(conn, account_id, [(INBOX, None), *SPECIAL_FOLDERS])
        return _account(conn.execute(_ACCOUNT_BY_ID, {"account_id": account_id}).one())

    async def get_account(self, address: str) -> Account | None:
        # A point query (every RCPT and login asks): no thread hop on SQLite.
        row = await self.db.run_point_query(_POINT_ACCOUNT_BY_ADDRESS, {"address": address.strip().lower()})
        return None if row is None else _account(row)

    async def get_account_by_id(self, account_id: int) -> Account | None:
        row = await self.db.run_point_query(_POINT_ACCOUNT_BY_ID, {"account_id": account_id})
        return None if row is None else _account(row)

    async def list_accounts(self) -> list[Account]:
        return await self.db.run_read(self._list_accounts_tx)

    @staticmethod
    def _list_accounts_tx(conn: Connection) -> list[Account]:
        return [_account(r) for r in conn.execute(select(A).order_by(A.c.address))]

    async def delete_account(self, address: str) -> None:
        address = address.strip().lower()
        folder_ids = await self.db.run_write(self._delete_account_tx, address)
        self._append_dirs.clear()
        await self.maildir.remove_tree(account_path(address))
        self.changes.publish(folder_ids)

    @staticmethod
    def _delete_account_tx(conn: Connection, address: str) -> list[int]:
        account_id = conn.execute(select(A.c.id).where(A.c.address == address)).scalar_one_or_none()
        if account_id is None:
            raise NoSuchAccount(address)
        # A legal hold keeps everything (storage.sql.vault): the mailbox stays.
        vaults.check_not_held(conn, account_id, address)
        vaults.forget_account(conn, account_id)
        folder_ids = list(conn.execute(select(F.c.id).where(F.c.account_id == account_id)).scalars())
        # Explicit deletes rather than relying on ON DELETE CASCADE alone, so the
        # outcome does not depend on the foreign_keys pragma of some other client.
        for chunk in _chunks(folder_ids):
            conn.execute(delete(X).where(X.c.folder_id.in_(chunk)))
            conn.execute(delete(M).where(M.c.folder_id.in_(chunk)))
        conn.execute(delete(F).where(F.c.account_id == account_id))
        conn.execute(delete(A).where(A.c.id == account_id))
        return folder_ids

    async def _update_account(self, account_id: int, values: dict[str, Any], *, durable: bool = True) -> None:
        await self.db.run_write(self._update_account_tx, account_id, values, durable=durable)

    @staticmethod
    def _update_account_tx(conn: Connection, account_id: int, values: dict[str, Any]) -> None:
        if conn.execute(update(A).where(A.c.id == account_id).values(**values)).rowcount == 0:
            raise NoSuchAccount(f"no account {account_id}")

    async def set_password(self, account_id: int, password_hash: str, *, must_change_password: bool) -> None:
        values = {
            "password_hash": password_hash,
            "must_change_password": must_change_password,
            "password_changed_at": _now(),
        }
        await self._update_account(account_id, values)

    async def set_disabled(self, account_id: int, disabled: bool) -> None:
        await self._update_account(account_id, {"disabled": disabled})

    async def set_cert_login(self, account_id: int, enabled: bool) -> None:
        await self._update_account(account_id, {"cert_login": enabled})

    async def record_login(self, account_id: int, when: datetime) -> None:
        # A statistic: losing the last one to a power cut is harmless (durable=False).
        await self._update_account(account_id, {"last_login_at": when}, durable=False)

    # -- folders ------------------------------------------------------------
    async def list_folders(self, account_id: int) -> list[Folder]:
        return await self.db.run_read(self._list_folders_tx, account_id)

    @staticmethod
    def _list_folders_tx(conn: Connection, account_id: int) -> list[Folder]:
        folders = [_folder(r) for r in conn.execute(select(F).where(F.c.account_id == account_id))]
        folders.sort(key=lambda f: (f.name != INBOX, f.name))
        return folders

    async def get_folder(self, account_id: int, name: str) -> Folder:
        try:
            name = normalise_folder_name(name)
        except InvalidFolderName as exc:
            raise NoSuchFolder(name) from exc
        return await self.db.run_read(self._get_folder_tx, account_id, name)

    @staticmethod
    def _get_folder_tx(conn: Connection, account_id: int, name: str) -> Folder:
        row = conn.execute(_FOLDER_BY_NAME, {"account_id": account_id, "name": name}).one_or_none()
        if row is None:
            raise NoSuchFolder(name)
        return _folder(row)

    async def create_folder(self, account_id: int, name: str, *, special_use: str | None = None) -> Folder:
        name = normalise_folder_name(name)
        folder, address, created = await self.db.run_write(
            self._create_folder_tx, account_id, name, special_use
        )
        for folder_name in created:
            await self.maildir.create_folder(folder_path(address, folder_name))
        return folder

    @staticmethod
    def _create_folder_tx(
        conn: Connection, account_id: int, name: str, special_use: str | None
    ) -> tuple[Folder, str, list[str]]:
        """The new folder, the account's address and the names created (with parents)."""
        wanted = [*_parents(name), name]
        address = conn.execute(select(A.c.address).where(A.c.id == account_id)).scalar_one_or_none()
        if address is None:
            raise NoSuchAccount(f"no account {account_id}")
        for folder_name in wanted:
            _folder_dir(address, folder_name)  # InvalidFolderName if it cannot be stored
        existing = set(
            conn.execute(select(F.c.name).where(F.c.account_id == account_id, F.c.name.in_(wanted))).scalars()
        )
        if name in existing:
            raise FolderExists(name)
        missing = [(n, special_use if n == name else None) for n in wanted if n not in existing]
        try:
            _insert_folders(conn, account_id, missing)
        except IntegrityError as exc:
            raise FolderExists(name) from exc
        row = conn.execute(_FOLDER_BY_NAME, {"account_id": account_id, "name": name}).one()
        return _folder(row), address, [n for n, _ in missing]

    async def delete_folder(self, account_id: int, folder_id: int) -> None:
        """RFC 3501 section 6.3.4. A folder with children is refused (as Dovecot's
        Maildir++ layout does) instead of being turned into a \\Noselect name."""
        undo: Undo = []
        directory = await self.db.run_write(self._delete_folder_tx, account_id, folder_id, undo, undo=undo)
        self._append_dirs.clear()
        await self.maildir.remove_tree(directory)
        self.changes.publish([folder_id])

    def _delete_folder_tx(
        self, conn: Connection, account_id: int, folder_id: int, undo: Undo
    ) -> PurePosixPath:
        """Its messages go to the vault (storage.sql.vault) before the rows go."""
        folder = _owned_folder(conn, account_id, folder_id, lock=True)
        if folder.name == INBOX:
            raise CannotDeleteFolder("INBOX cannot be deleted")
        if _children(conn, account_id, folder.name):
            raise CannotDeleteFolder("folder has children; delete them first")
        rows = conn.execute(
            select(M.c.id, M.c.uid, M.c.blob, M.c.size, *vaults.VAULT_COLUMNS)
            .where(M.c.folder_id == folder_id)
        ).all()
        vaults.detach_folder(conn, folder_id)
        vaults.put(
            conn, self._vault_files, undo, account_id=account_id, address=folder.address, folder_id=None,
            folder_name=folder.name, rows=rows, now=_now(),
        )
        _charge(conn, {account_id: (-sum(int(r.size) for r in rows), -len(rows))})
        conn.execute(delete(X).where(X.c.folder_id == folder_id))
        conn.execute(delete(M).where(M.c.folder_id == folder_id))
        conn.execute(delete(F).where(F.c.id == folder_id))
        return folder_path(folder.address, folder.name)

    async def rename_folder(self, account_id: int, folder_id: int, new_name: str) -> None:
        new_name = normalise_folder_name(new_name)
        undo: Undo = []
        address, created = await self.db.run_write(
            self._rename_folder_tx, account_id, folder_id, new_name, undo, undo=undo
        )
        self._append_dirs.clear()  # the folder and its children
        for name in created:
            await self.maildir.create_folder(folder_path(address, name))
        self.changes.publish([folder_id])

    def _rename_folder_tx(
        self, conn: Connection, account_id: int, folder_id: int, new_name: str, undo: Undo
    ) -> tuple[str, list[str]]:
        """The account's address and the folder names created (whose directories
        are made after the commit)."""
        folder = _owned_folder(conn, account_id, folder_id, lock=True)
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
                for child in _children(conn, account_id, old_name)
            ]
        targets = [new for _, _, new in renames] or [new_name]
        for target in targets:
            _folder_dir(address, target)
        clash = conn.execute(
            select(F.c.name).where(F.c.account_id == account_id, F.c.name.in_(targets)).limit(1)
        ).first()
        if clash is not None:
            raise FolderExists(clash.name)
        present = set(
            conn.execute(
                select(F.c.name).where(F.c.account_id == account_id, F.c.name.in_(_parents(new_name)))
            ).scalars()
        )
        parents = [p for p in _parents(new_name) if p not in present and p != old_name]
        if old_name == INBOX:
            self._rename_inbox(conn, folder, new_name, parents, undo)
            return address, [*parents, new_name]
        _insert_folders(conn, account_id, [(p, None) for p in parents])
        moved_pairs: list[tuple[PurePosixPath, PurePosixPath]] = []
        for fid, old, new in renames:
            conn.execute(update(F).where(F.c.id == fid).values(name=new))
            old_dir, new_dir = folder_path(address, old), folder_path(address, new)
            old_prefix, new_prefix = f"{old_dir}/", f"{new_dir}/"
            conn.execute(
                update(M)
                .where(M.c.folder_id == fid)
                .values(blob=literal(new_prefix) + func.substr(M.c.blob, len(old_prefix) + 1))
            )
            moved_pairs.append((old_dir, new_dir))
        # Directories move inside the transaction (all or none), back if it fails.
        run_io(self.maildir.rename_blocking, moved_pairs)
        undo.append(partial(self.maildir.rename_blocking, [(new, old) for old, new in moved_pairs]))
        return address, parents

    def _rename_inbox(
        self, conn: Connection, inbox: AnyRow, new_name: str, parents: list[str], undo: Undo
    ) -> None:
        account_id: int = inbox.account_id
        _insert_folders(conn, account_id, [(p, None) for p in parents])
        _insert_folders(conn, account_id, [(new_name, None)], subscribed=inbox.subscribed)
        new_id = conn.execute(
            select(F.c.id).where(F.c.account_id == account_id, F.c.name == new_name)
        ).scalar_one()
        # The new folder has a fresh UIDVALIDITY, so the messages keep their UIDs.
        conn.execute(
            update(F)
            .where(F.c.id == new_id)
            .values(
                uidnext=inbox.uidnext,
                highestmodseq=inbox.highestmodseq,
                recent_watermark=inbox.recent_watermark,
            )
        )
        rows = conn.execute(select(M.c.id, M.c.uid, M.c.blob).where(M.c.folder_id == inbox.id)).all()
        if not rows:
            return
        old_blobs: list[str] = [r.blob for r in rows]
        new_blobs = run_io(self.maildir.move_blocking, old_blobs, folder_path(inbox.address, new_name))
        undo.append(partial(self._unmove_files, list(zip(old_blobs, new_blobs, strict=True))))
        conn.execute(
            update(M).where(M.c.id == bindparam("b_id")).values(folder_id=new_id, blob=bindparam("b_blob")),
            [{"b_id": r.id, "b_blob": b} for r, b in zip(rows, new_blobs, strict=True)],
        )
        modseq = _bump_modseq(conn, inbox.id)
        conn.execute(insert(X), [{"folder_id": inbox.id, "uid": r.uid, "modseq": modseq} for r in rows])

    def _unmove_files(self, moved: list[tuple[str, str]]) -> None:
        for old, new in moved:
            os.rename(self.maildir.absolute(new), self.maildir.absolute(old))

    async def set_subscribed(self, account_id: int, name: str, subscribed: bool) -> None:
        try:
            name = normalise_folder_name(name)
        except InvalidFolderName as exc:
            raise NoSuchFolder(name) from exc
        # Not a message change: a power cut may lose it (durable=False).
        await self.db.run_write(self._set_subscribed_tx, account_id, name, subscribed, durable=False)

    @staticmethod
    def _set_subscribed_tx(conn: Connection, account_id: int, name: str, subscribed: bool) -> None:
        result = conn.execute(
            update(F).where(F.c.account_id == account_id, F.c.name == name).values(subscribed=subscribed)
        )
        if result.rowcount == 0:
            raise NoSuchFolder(name)

    async def folder_status(self, account_id: int, folder_id: int) -> FolderStatus:
        return await self.db.run_read(self._folder_status_tx, account_id, folder_id)

    @staticmethod
    def _folder_status_tx(conn: Connection, account_id: int, folder_id: int) -> FolderStatus:
        folder = _owned_folder(conn, account_id, folder_id)
        params = {"folder_id": folder_id, "watermark": folder.recent_watermark}
        messages, unseen, recent, size, deleted = conn.execute(_STATUS, params).one()
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
        # client re-selecting a folder does not cost a write.
        current = await self.db.run_read(_owned_folder, account_id, folder_id)
        if current.recent_watermark >= current.uidnext:
            return Uid(current.uidnext)
        # \Recent is session bookkeeping: a power cut may lose the claim, and the
        # messages are then \Recent once more (durable=False).
        return await self.db.run_write(self._claim_recent_tx, account_id, folder_id, durable=False)

    @staticmethod
    def _claim_recent_tx(conn: Connection, account_id: int, folder_id: int) -> Uid:
        folder = _owned_folder(conn, account_id, folder_id, lock=True)
        conn.execute(update(F).where(F.c.id == folder_id).values(recent_watermark=folder.uidnext))
        return Uid(folder.recent_watermark)

    # -- delivery (group commit) -------------------------------------------
    async def _commit_batch(self, batch: list[_Pending]) -> list[_Placed | OverQuota]:
        """One transaction for every delivery and APPEND of ``batch``; an OverQuota
        in the results refuses that request alone."""
        undo: Undo = []
        requests: list[_Request] = [(pending.rows, pending.delivery, pending.quota) for pending in batch]
        results = await self.db.run_write(
            _insert_batch, requests, self.maildir, undo, self.quota_bytes, undo=undo
        )
        self.commit_count += 1
        self.changes.publish(
            row.folder_id for placed in results if not isinstance(placed, OverQuota) for row, _ in placed
        )
        return results

    async def _enqueue(self, pending: _Pending) -> _Placed:
        if self._group is None:
            raise RuntimeError("SqlMailStore.start() has not been awaited")
        return await self._group.submit(pending)

    @staticmethod
    async def _analyse(data: bytes) -> dict[str, Any]:
        # The header and MIME structure only: ~30 us for 4 KB, ~80 us for 200 KB
        # of text, far less than a thread hop; very large messages go to a thread.
        if len(data) <= _INLINE_ANALYSIS:
            envelope, body, fields = mimeinfo.analyse(data)
        else:
            envelope, body, fields = await asyncio.to_thread(mimeinfo.analyse, data)
        envelope_json = mimeinfo.envelope_to_json(envelope)
        return {
            "envelope": envelope_json,
            "envelope_imap": envelope_wire(envelope_json, False),
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
        quota: bool = True,
    ) -> DeliveryResult:
        requested, started = len(account_ids), time.monotonic()
        try:
            result = await self._deliver(
                list(dict.fromkeys(account_ids)), data, internal_date, special_use, quota
            )
        except Exception:
            for observer in self._delivery_observers:
                observer.delivery_failed(requested)
            raise
        for observer in self._delivery_observers:
            observer.delivered(requested, time.monotonic() - started)
        return result

    async def _deliver(
        self,
        account_ids: list[int],
        data: bytes,
        internal_date: datetime | None,
        special_use: str | None,
        quota: bool,
    ) -> DeliveryResult:
        if not account_ids:
            raise ValueError("deliver needs at least one account")
        committer = self._committer_elsewhere
        if committer is None and len(data) <= _OVERLAPPED_STAGING:
            return await self._deliver_here(account_ids, data, internal_date, special_use, quota)
        staged = await self.stage_delivery(data, internal_date=internal_date)
        if committer is None:
            return await self.commit_staged(account_ids, staged, special_use=special_use, quota=quota)
        try:
            return await committer.commit(account_ids, staged, special_use, quota)
        except asyncio.CancelledError:
            raise  # the other process may still commit it
        except BaseException:
            # Refused or not done: the other process removed the file, or never saw it.
            with contextlib.suppress(OSError):
                await self.maildir.unstage(staged.name)
            raise

    async def _deliver_here(
        self,
        account_ids: list[int],
        data: bytes,
        internal_date: datetime | None,
        special_use: str | None,
        quota: bool,
    ) -> DeliveryResult:
        """``stage_delivery`` then ``commit_staged``, overlapped: the staging write
        and its fsync run in a worker thread while this task analyses the message
        and queues it, and the commit transaction waits for the write before it
        places the file. One hand-off from the event loop to that thread and
        none back (the event loop is woken once, by the commit)."""
        name, written = self.maildir.begin_stage(data)
        queued = False
        try:
            values = await self._analyse(data)
            values.update(flags="", seen=False, deleted=False, internal_date=_internal_date(internal_date))
            delivery = _Delivery(account_ids, special_use, name, values, written=written)
            queued = True  # _enqueue queues it before its first wait
            placed = await self._enqueue(_Pending([], delivery, quota=quota))
        except asyncio.CancelledError:
            if not queued:
                self.maildir.drop_staged(name, written)  # nothing will place it
            raise  # queued: it may still commit; if not, clean_staging removes the file
        except BaseException:
            # Not committed (refused, or its batch and then it alone failed): once
            # the write is over, its file (back in staging if it was placed) goes.
            await asyncio.wait([asyncio.wrap_future(written)])
            await self.maildir.unstage(name)
            raise
        return DeliveryResult(placed=tuple((row.account_id, row.folder_id, info.uid) for row, info in placed))

    def observe_deliveries(self, observer: DeliveryObserver) -> None:
        self._delivery_observers.append(observer)

    def commit_elsewhere(self, committer: StagedCommitter) -> None:
        """From now on ``deliver`` stages here and has ``committer`` commit (the
        main process's group commit, for SMTP listener processes on SQLite: one
        writer); ``commit_staged`` is that process's side."""
        self._committer_elsewhere = committer

    async def stage_delivery(self, data: bytes, *, internal_date: datetime | None = None) -> StagedDelivery:
        """The first half of ``deliver``: the message analysed and written
        (fsynced) to the Maildir's staging directory. Another process on the
        same data directory may do this and hand the result to ``commit_staged``
        here (SMTP listener processes on SQLite: one writer)."""
        common = await self._analyse(data)
        common.update(flags="", seen=False, deleted=False, internal_date=_internal_date(internal_date))
        return StagedDelivery(await self.maildir.stage(data), common)

    async def commit_staged(
        self,
        account_ids: Sequence[int],
        staged: StagedDelivery,
        *,
        special_use: str | None = None,
        quota: bool = True,
    ) -> DeliveryResult:
        """The second half of ``deliver``: the committer finds the folders and
        moves the staged file there in its transaction (_place_deliveries):
        durable and committed on return; on failure the staged file is removed."""
        account_ids = list(dict.fromkeys(account_ids))
        try:
            if not account_ids:
                raise ValueError("deliver needs at least one account")
            delivery = _Delivery(account_ids, special_use, staged.name, dict(staged.values))
            placed = await self._enqueue(_Pending([], delivery, quota=quota))
        except asyncio.CancelledError:
            raise  # it may still commit; if not, clean_staging removes the file
        except BaseException:
            await self.maildir.unstage(staged.name)
            raise
        return DeliveryResult(placed=tuple((row.account_id, row.folder_id, info.uid) for row, info in placed))

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
        for attempt in range(2):
            target = self._append_dirs.get(folder_id)
            if target is None or target[0] != account_id:
                folder = await self.db.run_read(_owned_folder, account_id, folder_id)
                target = (account_id, folder.name, folder_path(folder.address, folder.name))
                if len(self._append_dirs) >= _APPEND_DIRS_MAX:
                    self._append_dirs.clear()
                self._append_dirs[folder_id] = target
            # The file is written and fsynced in a worker thread while this task
            # analyses the message and the committer prepares its row; the row
            # commits once the file is durable (_insert_batch).
            blob, written = self.maildir.begin_write(target[2], data)
            try:
                values = await self._analyse(data)
                values.update(
                    flags=_flags_text(canonical),
                    seen="\\Seen" in canonical,
                    deleted="\\Deleted" in canonical,
                    internal_date=_internal_date(internal_date),
                    blob=blob,
                )
                row = _NewRow(account_id, folder_id, values, written=written, folder_name=target[1])
                ((_, info),) = await self._enqueue(_Pending([row]))
                return info
            except asyncio.CancelledError:
                raise  # the row may still commit; the file must stay
            except BaseException as exc:
                # Not committed: once the write is over, nothing of it may stay.
                await asyncio.wait([asyncio.wrap_future(written)])
                await self.maildir.remove([blob])
                if isinstance(exc, NoSuchFolder | FileNotFoundError):
                    self._append_dirs.pop(folder_id, None)
                if isinstance(exc, _StaleFolder) and attempt == 0:
                    continue
                if isinstance(exc, FileNotFoundError):
                    # The folder's directory went away under the write (deleted).
                    raise NoSuchFolder(f"folder {folder_id} was deleted") from None
                raise
        raise NoSuchFolder(f"folder {folder_id} was renamed or deleted meanwhile")

    # -- reading ------------------------------------------------------------
    async def list_messages(self, account_id: int, folder_id: int) -> list[MessageInfo]:
        return await self.db.run_read(self._list_messages_tx, account_id, folder_id)

    @staticmethod
    def _list_messages_tx(conn: Connection, account_id: int, folder_id: int) -> list[MessageInfo]:
        _owned_folder(conn, account_id, folder_id)
        result = conn.execute(_INFOS.base, {"folder_id": folder_id})
        # The driver's tuples (see _message_tuples): a FETCH 1:* (FLAGS) - every
        # resync of mbsync or a phone - lists the whole folder.
        try:
            rows = result.cursor.fetchall()
        finally:
            result.close()
        return [_info(r) for r in rows]

    async def folder_index(self, account_id: int, folder_id: int) -> FolderIndex:
        return await self.db.run_read(self._folder_index_tx, account_id, folder_id)

    @staticmethod
    def _folder_index_tx(conn: Connection, account_id: int, folder_id: int) -> FolderIndex:
        _owned_folder(conn, account_id, folder_id)
        result = conn.execute(_INDEX, {"folder_id": folder_id})
        # The driver's own tuples, not Row objects: SELECT of a 100,000-message
        # folder reads every row, and these three columns need no conversion
        # (``seen`` is 0/1 on SQLite, a bool on PostgreSQL; both test alike).
        rows = result.cursor.fetchall()
        result.close()
        uids: array[int] = array("I", [row[0] for row in rows])
        first_unseen = next((Uid(row[0]) for row in rows if not row[1]), None)
        keywords: set[str] = set()
        for flags in {row[2] for row in rows if row[2]}:
            keywords.update(f for f in flags.split() if not f.startswith("\\"))
        return FolderIndex(uids=uids, keywords=frozenset(keywords), first_unseen=first_unseen)

    async def list_flags(self, account_id: int, folder_id: int) -> list[tuple[int, str]]:
        return await self.db.run_read(self._list_flags_tx, account_id, folder_id)

    @staticmethod
    def _list_flags_tx(conn: Connection, account_id: int, folder_id: int) -> list[tuple[int, str]]:
        _owned_folder(conn, account_id, folder_id)
        result = conn.execute(_FLAGS, {"folder_id": folder_id})
        try:
            rows: list[tuple[int, str]] = list(result.cursor.fetchall())
        finally:
            result.close()
        return rows

    async def get_infos(self, account_id: int, folder_id: int, uids: Sequence[Uid]) -> list[MessageInfo]:
        return await self.db.run_read(self._get_infos_tx, account_id, folder_id, uids)

    @staticmethod
    def _get_infos_tx(
        conn: Connection, account_id: int, folder_id: int, uids: Sequence[Uid]
    ) -> list[MessageInfo]:
        _owned_folder(conn, account_id, folder_id)
        return [_info(r) for r in _message_tuples(conn, _INFOS, folder_id, uids)]

    async def get_details(self, account_id: int, folder_id: int, uids: Sequence[Uid]) -> list[MessageDetail]:
        return await self.db.run_read(self._get_details_tx, account_id, folder_id, uids)

    @staticmethod
    def _get_details_tx(
        conn: Connection, account_id: int, folder_id: int, uids: Sequence[Uid]
    ) -> list[MessageDetail]:
        _owned_folder(conn, account_id, folder_id)
        return [
            MessageDetail(
                info=_info(r),
                # Decoded on first use: FETCH ENVELOPE need not decode BODYSTRUCTURE.
                envelope=partial(mimeinfo.envelope_from_json, r[6]),
                body=partial(mimeinfo.body_from_json, r[7]),
                envelope_json=r[6],
                envelope_wire=r[8],
            )
            for r in _message_tuples(conn, _DETAILS, folder_id, uids)
        ]

    async def read_with_info(self, account_id: int, folder_id: int, uid: Uid) -> tuple[MessageInfo, bytes]:
        return await self.db.run_read(self._read_with_info_tx, account_id, folder_id, uid)

    def _read_with_info_tx(
        self, conn: Connection, account_id: int, folder_id: int, uid: Uid
    ) -> tuple[MessageInfo, bytes]:
        _owned_folder(conn, account_id, folder_id)
        rows = _messages(conn, _INFOS_BLOB, folder_id, [uid])
        if not rows:
            raise KeyError(uid)
        # Row and file on the same thread: one hop per message for mbsync's pull.
        return _info(rows[0]), run_io(self.maildir.read_blocking, rows[0][-1])

    async def read_headers(
        self, account_id: int, folder_id: int, uids: Sequence[Uid]
    ) -> list[tuple[Uid, bytes]]:
        return await self.db.run_read(self._read_headers_tx, account_id, folder_id, uids)

    def _read_headers_tx(
        self, conn: Connection, account_id: int, folder_id: int, uids: Sequence[Uid]
    ) -> list[tuple[Uid, bytes]]:
        _owned_folder(conn, account_id, folder_id)
        out: list[tuple[Uid, bytes]] = []
        for row in _message_tuples(conn, _INFOS_BLOB, folder_id, uids):
            try:
                # The files on the same thread as the rows: one hop for all of them.
                out.append((Uid(row[1]), run_io(self.maildir.read_header_blocking, row[-1])))
            except FileNotFoundError:
                continue  # expunged meanwhile; the file went after its row
        return out

    async def read_message(self, account_id: int, folder_id: int, uid: Uid) -> bytes:
        return await self.db.run_read(self._read_message_tx, account_id, folder_id, uid)

    def _read_message_tx(self, conn: Connection, account_id: int, folder_id: int, uid: Uid) -> bytes:
        _owned_folder(conn, account_id, folder_id)
        blob = conn.execute(_BLOB, {"folder_id": folder_id, "uid": uid}).scalar_one_or_none()
        if blob is None:
            raise KeyError(uid)
        # Read on the same thread: one hop for the row and the file.
        return run_io(self.maildir.read_blocking, blob)

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
        # Flags are the one change a client redoes without harm: a power cut may
        # lose the last ones (durable=False; see engine.synchronous_normal).
        result = await self.db.run_write(
            self._store_flags_tx, account_id, folder_id, uids, given, mode, unchanged_since, durable=False
        )
        if result.changed:
            self.changes.publish([folder_id])
        return result

    @staticmethod
    def _store_flags_tx(
        conn: Connection,
        account_id: int,
        folder_id: int,
        uids: Sequence[Uid],
        given: frozenset[str],
        mode: FlagMode,
        unchanged_since: ModSeq | None,
    ) -> FlagUpdate:
        _owned_folder(conn, account_id, folder_id, lock=True)
        conflicts: list[Uid] = []
        updates: list[tuple[AnyRow, frozenset[str]]] = []
        for row in _messages(conn, _INFOS, folder_id, uids):
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
        if not updates:
            return FlagUpdate(changed=(), conflicts=tuple(conflicts))
        modseq = _bump_modseq(conn, folder_id)
        conn.execute(
            _SET_FLAGS,
            [
                {
                    "b_id": row.id,
                    "b_flags": _flags_text(new),
                    "b_seen": "\\Seen" in new,
                    "b_deleted": "\\Deleted" in new,
                    "b_modseq": modseq,
                }
                for row, new in updates
            ],
        )
        changed = tuple(
            MessageInfo(
                id=row.id,
                uid=Uid(row.uid),
                modseq=modseq,
                flags=new,
                internal_date=row.internal_date,
                size=row.size,
            )
            for row, new in updates
        )
        return FlagUpdate(changed=changed, conflicts=tuple(conflicts))

    async def expunge(
        self, account_id: int, folder_id: int, uids: Sequence[Uid] | None = None, *, vault: bool = True
    ) -> list[Uid]:
        undo: Undo = []
        rows = await self.db.run_write(self._expunge_tx, account_id, folder_id, uids, vault, undo, undo=undo)
        if not rows:
            return []
        await self.maildir.remove(blob for _, blob in rows)
        self.changes.publish([folder_id])
        return [uid for uid, _ in rows]

    def _expunge_tx(
        self,
        conn: Connection,
        account_id: int,
        folder_id: int,
        uids: Sequence[Uid] | None,
        vault: bool,
        undo: Undo,
    ) -> list[tuple[Uid, str]]:
        """(UID, blob) of the messages removed; their folder's names for the files
        go after the commit, the vault keeps its own (storage.sql.vault)."""
        folder = _owned_folder(conn, account_id, folder_id, lock=True)
        if uids is None:
            rows = list(conn.execute(_DELETED.base, {"folder_id": folder_id}).all())
        else:
            rows = _messages(conn, _DELETED, folder_id, uids)
        if rows:
            if vault or vaults.is_held(conn, account_id):
                vaults.put(
                    conn, self._vault_files, undo, account_id=account_id, address=folder.address,
                    folder_id=folder_id, folder_name=folder.name, rows=rows, now=_now(),
                )
            _remove_rows(conn, folder_id, rows)
            _charge(conn, {account_id: (-sum(r.size for r in rows), -len(rows))})
        return [(Uid(r.uid), r.blob) for r in rows]

    # -- copy and move -------------------------------------------------------
    async def _copy(
        self, account_id: int, folder_id: int, uids: Sequence[Uid], dest_folder_id: int, *, move: bool
    ) -> list[tuple[Uid, Uid]]:
        undo: Undo = []
        pairs, moved_blobs = await self.db.run_write(
            self._copy_tx, account_id, folder_id, uids, dest_folder_id, move, undo, undo=undo
        )
        if not pairs:
            return []
        if move:
            await self.maildir.remove(moved_blobs)
        self.changes.publish([dest_folder_id, folder_id] if move else [dest_folder_id])
        return pairs

    def _copy_tx(
        self,
        conn: Connection,
        account_id: int,
        folder_id: int,
        uids: Sequence[Uid],
        dest_folder_id: int,
        move: bool,
        undo: Undo,
    ) -> tuple[list[tuple[Uid, Uid]], list[str]]:
        """(source UID, new UID) pairs, and for a move the source files to unlink
        after the commit."""
        # Lock both folders in id order (PostgreSQL deadlock avoidance).
        locked = {
            fid: _owned_folder(conn, account_id, fid, lock=True)
            for fid in sorted({folder_id, dest_folder_id})
        }
        dest = locked[dest_folder_id]
        source_rows = _messages(conn, _TO_COPY, folder_id, uids)
        if not source_rows:
            return [], []
        if not move:
            # A MOVE stays within the account and adds nothing; a COPY adds its copies.
            added = sum(r.size for r in source_rows)
            _check_quota(conn, account_id, added, self.quota_bytes)
            _charge(conn, {account_id: (added, len(source_rows))})
        blobs: list[str] = [r.blob for r in source_rows]
        links = run_io(self.maildir.link_blocking, blobs, folder_path(dest.address, dest.name))
        undo.append(partial(self.maildir.unlink_blocking, links))
        count = len(source_rows)
        allocated = conn.execute(
            update(F)
            .where(F.c.id == dest_folder_id)
            .values(uidnext=F.c.uidnext + count, highestmodseq=F.c.highestmodseq + 1)
            .returning(F.c.uidnext, F.c.highestmodseq)
        ).one()
        first_uid = allocated.uidnext - count
        values = [
            {
                **{c.key: getattr(r, c.key) for c in _COPY_COLUMNS},
                "folder_id": dest_folder_id,
                "uid": first_uid + i,
                "modseq": allocated.highestmodseq,
                "blob": links[i],
            }
            for i, r in enumerate(source_rows)
        ]
        conn.execute(insert(M), values)
        if move:
            _remove_rows(conn, folder_id, source_rows)
        pairs = [(Uid(r.uid), Uid(first_uid + i)) for i, r in enumerate(source_rows)]
        return pairs, blobs if move else []

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
        return await self.db.run_read(self._changes_since_tx, account_id, folder_id, modseq)

    @staticmethod
    def _changes_since_tx(conn: Connection, account_id: int, folder_id: int, modseq: ModSeq) -> Changes:
        folder = _owned_folder(conn, account_id, folder_id)
        params = {"folder_id": folder_id, "modseq": modseq}
        changed = conn.execute(_CHANGED, params).all()
        vanished = conn.execute(_VANISHED, params).scalars()
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
            column = HEADER_COLUMNS.get(header.lower())
            if column is None:
                raise ValueError(f"header {header!r} cannot be searched in SQL")
            clauses.append(column.like(f"%{_escape_like(text.lower())}%", escape="\\"))
        if query.modseq_above is not None:
            clauses.append(M.c.modseq > query.modseq_above)
        return clauses

    async def search(self, account_id: int, folder_id: int, query: SearchQuery) -> list[Uid]:
        clauses = self._search_clause(query)
        return await self.db.run_read(self._search_tx, account_id, folder_id, clauses)

    @staticmethod
    def _search_tx(
        conn: Connection, account_id: int, folder_id: int, clauses: list[ColumnElement[bool]]
    ) -> list[Uid]:
        _owned_folder(conn, account_id, folder_id)
        result = conn.execute(select(M.c.uid).where(M.c.folder_id == folder_id, *clauses).order_by(M.c.uid))
        return [Uid(u) for u in result.scalars()]

    async def folder_blobs(self, account_id: int, folder_id: int) -> list[str]:
        return await self.db.run_read(self._folder_blobs_tx, account_id, folder_id)

    @staticmethod
    def _folder_blobs_tx(conn: Connection, account_id: int, folder_id: int) -> list[str]:
        _owned_folder(conn, account_id, folder_id)
        return list(conn.execute(select(M.c.blob).where(M.c.folder_id == folder_id)).scalars())

    async def quota(self, account_id: int) -> Quota:
        row = await self.db.run_point_query(_POINT_USAGE, {"account_id": account_id})  # every RCPT
        return self._quota_of(row, account_id, self.quota_bytes)

    @staticmethod
    def _quota_of(row: Any, account_id: int, default: int | None) -> Quota:
        if row is None:
            raise NoSuchAccount(f"no account {account_id}")
        return Quota(
            storage_used=int(row.storage_used),
            storage_limit=_limit(row.quota_bytes, default),
            messages_used=int(row.message_count),
        )

    async def set_quota(self, account_id: int, limit: int | None) -> None:
        if limit is not None and limit < 0:
            raise ValueError("a quota is a number of octets, 0 for unlimited")
        await self._update_account(account_id, {"quota_bytes": limit})

    async def recount_usage(self) -> None:
        """Recompute every account's usage counters from its messages (after rows
        were removed behind the store's back, e.g. by a backup restore). Each
        account row is locked first, so a commit of another process that runs
        meanwhile is counted exactly once."""
        ids = await self.db.run_read(
            lambda conn: list(conn.execute(select(A.c.id).order_by(A.c.id)).scalars())
        )
        for chunk in _chunks(ids):
            await self.db.run_write(self._recount_tx, list(chunk))

    @staticmethod
    def _recount_tx(conn: Connection, account_ids: list[int]) -> None:
        conn.execute(select(A.c.id).where(A.c.id.in_(account_ids)).order_by(A.c.id).with_for_update())
        for account_id, octets, messages in conn.execute(
            select(F.c.account_id, func.coalesce(func.sum(M.c.size), 0), func.count(M.c.id))
            .select_from(F.join(M, M.c.folder_id == F.c.id, isouter=True))
            .where(F.c.account_id.in_(account_ids))
            .group_by(F.c.account_id)
        ):
            conn.execute(
                update(A).where(A.c.id == account_id).values(storage_used=octets, message_count=messages)
            )

    # -- deleted-mail vault and holds (storage.sql.vault) ------------------------------
    @property
    def _vault_files(self) -> vaults.VaultFiles:
        return vaults.VaultFiles(
            link=lambda blobs, folder: run_io(self.maildir.link_blocking, blobs, folder),
            unlink=self.maildir.unlink_blocking,
        )

    async def deleted_messages(
        self, account_id: int, *, since: datetime | None = None
    ) -> list[DeletedMessage]:
        return await self.db.run_read(vaults.list_tx, account_id, since)

    async def read_deleted(self, account_id: int, entry_id: int) -> bytes:
        blob = await self.db.run_read(vaults.blob_tx, account_id, entry_id)
        return await self.maildir.read(blob)

    async def deleted_blobs(self, account_id: int) -> list[str]:
        return await self.db.run_read(vaults.blobs_tx, account_id)

    async def undelete(self, entry_ids: Sequence[int], *, account_id: int | None = None) -> list[Restored]:
        if not entry_ids:
            return []
        entries = await self.db.run_read(vaults.entries_tx, entry_ids, account_id)
        # Parsed before the write transaction (as a delivery is): the cached
        # ENVELOPE, BODYSTRUCTURE and search columns of each message.
        analysed: dict[int, dict[str, Any]] = {}
        for entry in entries:
            analysed[entry.id] = await self._analyse(await self.maildir.read(entry.blob))
        undo: Undo = []
        restored, vault_blobs, created = await self.db.run_write(
            self._undelete_tx, entry_ids, account_id, analysed, undo, undo=undo
        )
        for address, name in created:
            await self.maildir.create_folder(folder_path(address, name))
        await self.maildir.remove(vault_blobs)
        self.changes.publish({r.folder_id for r in restored})
        return restored

    def _undelete_tx(
        self,
        conn: Connection,
        entry_ids: Sequence[int],
        account_id: int | None,
        analysed: dict[int, dict[str, Any]],
        undo: Undo,
    ) -> tuple[list[Restored], list[str], list[tuple[str, str]]]:
        """The messages restored, the vault files to unlink after the commit, and
        the (address, folder) directories to make for folders created again."""
        entries = vaults.entries_tx(conn, entry_ids, account_id)
        # The target folder of each entry: the one it came from, else one of its name.
        targets: dict[int, tuple[int, str, bool]] = {}
        created: list[tuple[str, str]] = []
        for entry in entries:
            row = None
            if entry.folder_id is not None:
                row = conn.execute(select(F.c.id, F.c.name).where(F.c.id == entry.folder_id)).one_or_none()
            if row is None:
                name = normalise_folder_name(entry.folder_name)
                row = conn.execute(
                    _FOLDER_BY_NAME, {"account_id": entry.account_id, "name": name}
                ).one_or_none()
                if row is None:
                    wanted = [*_parents(name), name]
                    existing = set(conn.execute(
                        select(F.c.name).where(F.c.account_id == entry.account_id, F.c.name.in_(wanted))
                    ).scalars())
                    missing = [n for n in wanted if n not in existing]
                    _insert_folders(conn, entry.account_id, [(n, None) for n in missing])
                    created += [(entry.address, n) for n in missing]
                    row = conn.execute(
                        _FOLDER_BY_NAME, {"account_id": entry.account_id, "name": name}
                    ).one()
                    targets[entry.id] = (row.id, row.name, True)
                    continue
            targets[entry.id] = (row.id, row.name, any(n == row.name for _, n in created))
        # Locks in folder id order, then UIDs allocated per folder (as COPY does).
        by_folder: dict[int, list[AnyRow]] = {}
        for entry in entries:
            by_folder.setdefault(targets[entry.id][0], []).append(entry)
        restored: list[Restored] = []
        usage: dict[int, tuple[int, int]] = {}
        for folder_id in sorted(by_folder):
            batch = by_folder[folder_id]
            folder = _owned_folder(conn, batch[0].account_id, folder_id, lock=True)
            target = folder_path(folder.address, folder.name)
            links = run_io(self.maildir.link_blocking, [e.blob for e in batch], target)
            undo.append(partial(self.maildir.unlink_blocking, links))
            allocated = conn.execute(
                update(F)
                .where(F.c.id == folder_id)
                .values(uidnext=F.c.uidnext + len(batch), highestmodseq=F.c.highestmodseq + 1)
                .returning(F.c.uidnext, F.c.highestmodseq)
            ).one()
            first_uid = allocated.uidnext - len(batch)
            values = []
            for i, (entry, link) in enumerate(zip(batch, links, strict=True)):
                flags = vaults.restored_flags(entry.flags)
                values.append({
                    **analysed[entry.id],
                    "folder_id": folder_id,
                    "uid": first_uid + i,
                    "modseq": allocated.highestmodseq,
                    "blob": link,
                    "flags": flags,
                    "seen": "\\Seen" in flags.split(),
                    "deleted": False,
                    "internal_date": entry.internal_date,
                    "size": entry.size,
                })
                octets, count = usage.get(entry.account_id, (0, 0))
                usage[entry.account_id] = (octets + entry.size, count + 1)
                restored.append(Restored(
                    id=entry.id, account_id=entry.account_id, folder_id=folder_id, folder=folder.name,
                    uid=Uid(first_uid + i), recreated=targets[entry.id][2],
                ))
            conn.execute(insert(M), values)
        conn.execute(delete(vaults.V).where(vaults.V.c.id.in_([e.id for e in entries])))
        # Not refused for quota (storage.sql.vault): counted again, as when it arrived.
        _charge(conn, usage)
        order = {entry_id: i for i, entry_id in enumerate(dict.fromkeys(entry_ids))}
        restored.sort(key=lambda r: order[r.id])
        return restored, [e.blob for e in entries], created

    # -- scheduled jobs across nodes (storage.jobs) ----------------------------------
    async def claim_job(self, name: str, slot: str, *, node: str, now: datetime, lease: timedelta) -> bool:
        return await self.db.run_write(jobs.claim_tx, name, slot, node, now, lease, durable=False)

    async def finish_job(self, name: str, slot: str, *, node: str, now: datetime) -> None:
        await self.db.run_write(jobs.finish_tx, name, slot, node, now, durable=False)

    async def purge_deleted(self, before: datetime) -> int:
        removed = 0
        while True:
            blobs = await self.db.run_write(vaults.purge_tx, before)
            if not blobs:
                return removed
            await self.maildir.remove(blobs)
            removed += len(blobs)
            if len(blobs) < vaults.PURGE_BATCH:
                return removed

    async def set_hold(self, scope: str, target: str, reason: str, *, by: str) -> Hold:
        return await self.db.run_write(vaults.set_hold_tx, scope, target, reason, by, _now())

    async def clear_hold(self, scope: str, target: str) -> Hold:
        return await self.db.run_write(vaults.clear_hold_tx, scope, target)

    async def list_holds(self) -> list[Hold]:
        return await self.db.run_read(vaults.list_holds_tx)

    async def holds_on(self, account_id: int) -> list[Hold]:
        return await self.db.run_read(vaults.holds_on, account_id)

    # -- full-text index (storage.sql.fulltext) ------------------------------------
    async def index_jobs(self, limit: int) -> list[IndexJob]:
        rows = await self.db.run_read(fulltext.index_jobs_tx, limit)
        return [IndexJob(mid, str(self.maildir.absolute(blob)), size) for mid, blob, size in rows]

    async def save_index(self, docs: Sequence[IndexDoc], done: Sequence[int] = ()) -> None:
        # Not durable: a lost commit loses the entries and keeps their jobs together.
        await self.db.run_write(fulltext.save_index_tx, list(docs), list(done), durable=False)

    async def text_search(
        self, account_id: int, folder_id: int, field: str, text: str, *, exact: bool = False
    ) -> TextHits:
        return await self.db.run_read(self._text_search_tx, account_id, folder_id, field, text, exact)

    @staticmethod
    def _text_search_tx(
        conn: Connection, account_id: int, folder_id: int, field: str, text: str, exact: bool
    ) -> TextHits:
        _owned_folder(conn, account_id, folder_id)
        return fulltext.text_search_tx(conn, folder_id, field, text, exact)

    async def queue_reindex(self, account_id: int | None = None) -> int:
        return await self.db.run_write(fulltext.queue_reindex_tx, account_id)

    async def index_status(self) -> IndexStatus:
        return await self.db.run_read(fulltext.index_status_tx)
