"""The deleted-mail vault and legal holds: the SQL side of ``SqlMailStore``'s
``expunge``, ``delete_folder``, ``undelete``, ``purge_deleted`` and holds.

Theory of operation
-------------------
What counts as deleting: an EXPUNGE (IMAP EXPUNGE, UID EXPUNGE, CLOSE, the
store's ``expunge`` from any caller) and the deletion of a folder with its
messages. What does not: the source side of a MOVE (the message lives on in
the target), renaming a folder, the server's own removals of a whole account
(offboarding purge, which a hold refuses). Like Dovecot's lazy_expunge, a
COPY followed by EXPUNGE (how clients without MOVE move) vaults the source too;
its file is a hard link of the copy's, so it costs a row, not the bytes again.

Files: a vaulted message's file is hard-linked (copied where links are not
possible) into the account's vault directory ``<account>/..vault/cur/``
(``storage.maildir.vault_path``), and that directory fsynced, inside the
transaction that deletes the message row and inserts the vault row; the
folder's name for the file is unlinked after the commit, as every expunge does.
So a committed vault row always points at a durable file, and a crash at any
point loses nothing:

* before the commit: the message row still stands; the vault link has no row
  and is a redundant name of an indexed file, which the start-up check
  (``storage.reconcile``) removes;
* after the commit, before the unlink: the folder's file has no row but shares
  its inode with a vault file, which the check counts as indexed, so it is
  removed as a redundant link, never moved to lost+found.

Undelete runs the other way (link into the folder, insert the message row and
delete the vault row in one transaction, unlink the vault name after), and the
purge deletes rows first, files after the commit. A vault file without a row is
therefore always either a second name of an indexed message or the leftover of
a purge that was meant to remove it; the check removes it once it is older
than ``storage.orphan_min_age``.

Quota: vaulted mail does not count (Dovecot's lazy_expunge default): the
expunge subtracts its size as before; an undelete adds it back and is never
refused for quota (the message was within quota when it arrived; refusing to
bring back mail deleted by mistake would be worse than a mailbox briefly over).

Restored messages keep their bytes, INTERNALDATE and flags except \\Deleted
(which would make the next EXPUNGE take them again) and get new UIDs in their
folder (RFC 9051 section 2.3.1.1: a UID is never reused). A folder deleted
meanwhile is created again under the name it had.

Holds: a row of ``holds`` names a mailbox or an agency; an agency's hold covers
its own mailbox and every mailbox of its persons, resolved through the
directory tables at the time of use (a person transferred out leaves the
agency's hold). A held mailbox's vault is never purged, an operator's removal
(``vault=False``) is vaulted anyway, and the mailbox cannot be deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import PurePosixPath
from typing import Any, Final, TypeAlias, cast

from sqlalchemy import Row, Select, Table, delete, func, insert, select, union, update
from sqlalchemy.engine import Connection

from storage import mimeinfo
from storage.api import (
    DeletedMessage,
    Hold,
    HoldError,
    NoSuchDeleted,
    OnHold,
    Uid,
)
from storage.maildir import vault_path
from storage.sql import directory_models, models, vault_models

AnyRow: TypeAlias = "Row[*tuple[Any, ...]]"
Undo: TypeAlias = list[Callable[[], object]]

A: Final = cast(Table, models.Account.__table__)
F: Final = cast(Table, models.Folder.__table__)
M: Final = cast(Table, models.Message.__table__)
V: Final = cast(Table, vault_models.VaultEntry.__table__)
H: Final = cast(Table, vault_models.MailHold.__table__)
AG: Final = cast(Table, directory_models.DirAgency.__table__)
P: Final = cast(Table, directory_models.DirPerson.__table__)
DA: Final = cast(Table, directory_models.DirAddress.__table__)

SCOPES: Final = ("address", "agency")
PURGE_BATCH: Final = 1000
"""Vault entries removed per purge transaction."""
VAULT_COLUMNS: Final = (M.c.flags, M.c.internal_date, M.c.envelope)
"""Message columns a vault row is made of, besides id, uid, blob and size."""


@dataclass(frozen=True, slots=True)
class VaultFiles:
    """The blocking file operations the transactions need, run on the
    transaction's thread (the store binds them to its Maildir)."""

    link: Callable[[list[str], PurePosixPath], list[str]]
    """New durable names (hard links, or fsynced copies) of files in a folder directory."""
    unlink: Callable[[list[str]], None]


# -- display ------------------------------------------------------------------------


def _sender(envelope_json: str) -> tuple[str, str]:
    """(subject, first sender as ``Name <addr>``) decoded, from the cached envelope."""
    try:
        envelope = mimeinfo.envelope_from_json(envelope_json)
    except (ValueError, KeyError, TypeError, IndexError):
        return "", ""
    sender = ""
    if envelope.from_:
        first = envelope.from_[0]
        address = f"{first.mailbox or ''}@{first.host or ''}" if first.host else (first.mailbox or "")
        sender = f"{first.name} <{address}>" if first.name else address
    return envelope.subject or "", sender


# -- holds -----------------------------------------------------------------------------


def _held_accounts() -> Select[Any]:
    """Account ids under a hold: held directly, an held agency's own mailbox, or
    the mailbox of a person of a held agency."""
    direct = select(H.c.account_id.label("account_id")).where(H.c.account_id.is_not(None))
    agency_box = (
        select(DA.c.account_id.label("account_id"))
        .join(H, H.c.agency_id == DA.c.agency_id)
        .where(DA.c.account_id.is_not(None))
    )
    persons = (
        select(DA.c.account_id.label("account_id"))
        .join(P, P.c.id == DA.c.person_id)
        .join(H, H.c.agency_id == P.c.agency_id)
        .where(DA.c.account_id.is_not(None))
    )
    return cast(Select[Any], union(direct, agency_box, persons))


def _hold_select() -> Select[Any]:
    target = func.coalesce(A.c.address, AG.c.code)
    return (
        select(H.c.id, H.c.account_id, H.c.reason, H.c.set_by, H.c.set_at, target.label("target"))
        .select_from(H.outerjoin(A, A.c.id == H.c.account_id).outerjoin(AG, AG.c.id == H.c.agency_id))
        .order_by(H.c.id)
    )


def _hold(row: AnyRow) -> Hold:
    return Hold(
        id=row.id,
        scope="address" if row.account_id is not None else "agency",
        target=row.target,
        reason=row.reason,
        set_by=row.set_by,
        set_at=row.set_at,
    )


def holds_on(conn: Connection, account_id: int) -> list[Hold]:
    """The holds covering an account: its own, and its agency's (as the agency's
    mailbox or as one of its persons)."""
    agencies = union(
        select(DA.c.agency_id.label("agency_id")).where(
            DA.c.account_id == account_id, DA.c.agency_id.is_not(None)
        ),
        select(P.c.agency_id.label("agency_id"))
        .join(DA, DA.c.person_id == P.c.id)
        .where(DA.c.account_id == account_id),
    ).subquery()
    stmt = _hold_select().where(
        (H.c.account_id == account_id) | H.c.agency_id.in_(select(agencies.c.agency_id))
    )
    return [_hold(r) for r in conn.execute(stmt)]


def is_held(conn: Connection, account_id: int) -> bool:
    return bool(holds_on(conn, account_id))


def check_not_held(conn: Connection, account_id: int, address: str) -> None:
    """Raise OnHold when a hold covers the account (before deleting it)."""
    holds = holds_on(conn, account_id)
    if holds:
        raise OnHold(address, [h.reason for h in holds])


def _target(conn: Connection, scope: str, target: str) -> tuple[str, int]:
    """(column, id) a hold of ``scope`` on ``target`` is keyed by."""
    if scope == "address":
        address = target.strip().lower()
        found = conn.execute(select(A.c.id).where(A.c.address == address)).scalar_one_or_none()
        if found is None:
            raise HoldError(f"không có hộp thư {address} / no mailbox {address}")
        return "account_id", int(found)
    if scope == "agency":
        code = target.strip()
        found = conn.execute(select(AG.c.id).where(AG.c.code == code)).scalar_one_or_none()
        if found is None:
            found = conn.execute(
                select(AG.c.id).where(func.upper(AG.c.code) == code.upper())
            ).scalar_one_or_none()
        if found is None:
            raise HoldError(f"không có cơ quan {code} / no agency {code}")
        return "agency_id", int(found)
    raise HoldError(f"phạm vi không hợp lệ {scope!r} / invalid hold scope {scope!r}")


def set_hold_tx(conn: Connection, scope: str, target: str, reason: str, by: str, now: datetime) -> Hold:
    column, key = _target(conn, scope, target)
    values = {"reason": reason, "set_by": by, "set_at": now}
    if conn.execute(update(H).where(H.c[column] == key).values(**values)).rowcount == 0:
        conn.execute(insert(H).values(**{column: key}, **values))
    return _hold(conn.execute(_hold_select().where(H.c[column] == key)).one())


def clear_hold_tx(conn: Connection, scope: str, target: str) -> Hold:
    column, key = _target(conn, scope, target)
    row = conn.execute(_hold_select().where(H.c[column] == key)).one_or_none()
    if row is None:
        raise HoldError(f"{target} không bị giữ nguyên trạng / {target} is not on hold")
    conn.execute(delete(H).where(H.c.id == row.id))
    return _hold(row)


def list_holds_tx(conn: Connection) -> list[Hold]:
    return [_hold(r) for r in conn.execute(_hold_select())]


# -- into the vault ------------------------------------------------------------------------


def put(
    conn: Connection,
    files: VaultFiles,
    undo: Undo,
    *,
    account_id: int,
    address: str,
    folder_id: int | None,
    folder_name: str,
    rows: Sequence[AnyRow],
    now: datetime,
) -> None:
    """Vault ``rows`` (message rows with ``uid``, ``blob``, ``size`` and
    ``VAULT_COLUMNS``) of one folder: their files linked into the vault, then
    their vault rows inserted. The caller deletes the message rows in the same
    transaction and unlinks the folder's names after the commit."""
    if not rows:
        return
    links = files.link([r.blob for r in rows], vault_path(address))
    undo.append(partial(files.unlink, links))
    values = []
    for row, link in zip(rows, links, strict=True):
        subject, sender = _sender(row.envelope)
        values.append({
            "account_id": account_id,
            "folder_id": folder_id,
            "folder_name": folder_name,
            "uid": row.uid,
            "blob": link,
            "flags": row.flags,
            "internal_date": row.internal_date,
            "size": row.size,
            "subject": subject,
            "from_": sender,
            "deleted_at": now,
        })
    conn.execute(insert(V), values)


def detach_folder(conn: Connection, folder_id: int) -> None:
    """A folder is being deleted: its vault entries keep only its name."""
    conn.execute(update(V).where(V.c.folder_id == folder_id).values(folder_id=None))


def forget_account(conn: Connection, account_id: int) -> None:
    """The account is being deleted (its directory, vault included, goes after)."""
    conn.execute(delete(V).where(V.c.account_id == account_id))


# -- reading -----------------------------------------------------------------------------------


_LIST: Final = (
    select(
        V.c.id, V.c.account_id, func.coalesce(F.c.name, V.c.folder_name).label("folder"), V.c.uid,
        V.c.flags, V.c.internal_date, V.c.size, V.c.subject, V.c.from_, V.c.deleted_at,
    )
    .select_from(V.outerjoin(F, F.c.id == V.c.folder_id))
    .order_by(V.c.deleted_at.desc(), V.c.id.desc())
)


def list_tx(conn: Connection, account_id: int, since: datetime | None) -> list[DeletedMessage]:
    stmt = _LIST.where(V.c.account_id == account_id)
    if since is not None:
        stmt = stmt.where(V.c.deleted_at >= since)
    return [
        DeletedMessage(
            id=r.id,
            account_id=r.account_id,
            folder=r.folder,
            uid=Uid(r.uid),
            flags=frozenset(r.flags.split()),
            internal_date=r.internal_date,
            size=r.size,
            subject=r.subject,
            from_=r.from_,
            deleted_at=r.deleted_at,
        )
        for r in conn.execute(stmt)
    ]


def blob_tx(conn: Connection, account_id: int, entry_id: int) -> str:
    blob = conn.execute(
        select(V.c.blob).where(V.c.id == entry_id, V.c.account_id == account_id)
    ).scalar_one_or_none()
    if blob is None:
        raise NoSuchDeleted([entry_id])
    return str(blob)


def blobs_tx(conn: Connection, account_id: int) -> list[str]:
    return list(conn.execute(select(V.c.blob).where(V.c.account_id == account_id)).scalars())


def entries_tx(conn: Connection, entry_ids: Sequence[int], account_id: int | None) -> list[AnyRow]:
    """The vault rows of ``entry_ids`` (of ``account_id`` when given), in the order
    asked; NoSuchDeleted naming any not found."""
    wanted = list(dict.fromkeys(entry_ids))
    stmt = select(V, A.c.address).join(A, A.c.id == V.c.account_id).where(V.c.id.in_(wanted))
    if account_id is not None:
        stmt = stmt.where(V.c.account_id == account_id)
    found = {r.id: r for r in conn.execute(stmt)}
    missing = [i for i in wanted if i not in found]
    if missing:
        raise NoSuchDeleted(missing)
    return [found[i] for i in wanted]


# -- purge -------------------------------------------------------------------------------------


def purge_tx(conn: Connection, before: datetime) -> list[str]:
    """Delete up to PURGE_BATCH vault rows deleted before ``before`` outside held
    mailboxes; their files, to unlink after the commit."""
    rows = conn.execute(
        select(V.c.id, V.c.blob)
        .where(V.c.deleted_at < before, V.c.account_id.not_in(_held_accounts()))
        .order_by(V.c.id)
        .limit(PURGE_BATCH)
    ).all()
    if rows:
        conn.execute(delete(V).where(V.c.id.in_([r.id for r in rows])))
    return [r.blob for r in rows]


def restored_flags(text: str) -> str:
    """Flags a restored message gets: as they were, but \\Deleted."""
    return " ".join(sorted(f for f in text.split() if f != "\\Deleted"))
