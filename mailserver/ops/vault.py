"""Deleted mail that can be brought back, and legal holds: the actions the CLI
(``mailserver mail deleted|undelete``, ``mailserver hold``) and the portal's
"Thư đã xóa / Deleted mail" page share, and the server's periodic purge.

The vault itself (what counts as deleting, crash safety, quota) is described
in ``storage/sql/vault.py``. Holds and undeletes are recorded in the audit log
(Decision 70/2009 Điều 5 khoản 4 and Điều 9 khoản 2: official mail is the
agency's record).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

from mailserver.cluster import Cluster, interval_slot
from storage.api import Account, DeletedMessage, Hold, MailStore, Restored
from storage.directory import By, DirectoryStore

log = logging.getLogger(__name__)


def hold_scope(target: str) -> str:
    """``ADDRESS|AGENCY``: an address has an '@', an agency code has none."""
    return "address" if "@" in target else "agency"


def cutoff(days: int, now: datetime | None = None) -> datetime:
    """Vault entries deleted before this are past ``retention.deleted_days``."""
    return (now or datetime.now(UTC)) - timedelta(days=days)


async def purge_expired(store: MailStore, days: int, now: datetime | None = None) -> int:
    """One purge: every vault entry older than ``days`` outside held mailboxes."""
    removed = await store.purge_deleted(cutoff(days, now))
    if removed:
        log.info("vault: %d deleted message(s) older than %d day(s) removed", removed, days)
    return removed


async def purge_loop(
    store: MailStore,
    days: int,
    interval: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    cluster: Cluster | None = None,
) -> None:
    """At start and every ``interval`` seconds, ``purge_expired`` (on one node per
    interval, ``cluster``). Errors are logged and the loop carries on; cancel to stop."""
    cluster = cluster or Cluster(None)
    while True:
        try:
            await cluster.run_once(
                "vault-purge", interval_slot(datetime.now(UTC), interval), lambda: purge_expired(store, days)
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("vault: purge of deleted mail failed")
        await sleep(interval)


async def restore(
    store: MailStore,
    directory: DirectoryStore,
    entry_ids: Sequence[int],
    *,
    by: By,
    account: Account | None = None,
) -> list[Restored]:
    """Undelete (only ``account``'s entries when given) and audit each message
    restored as ``mail.undelete`` on its mailbox. Raises NoSuchDeleted."""
    restored = await store.undelete(entry_ids, account_id=account.id if account else None)
    addresses: dict[int, str] = {}
    for r in restored:
        if r.account_id not in addresses:
            found = account if account is not None else await store.get_account_by_id(r.account_id)
            addresses[r.account_id] = found.address if found is not None else str(r.account_id)
        await directory.audit(
            "mail.undelete", addresses[r.account_id], by=by,
            detail={"vault_id": r.id, "folder": r.folder, "uid": int(r.uid), "recreated": r.recreated},
        )
    return restored


async def set_hold(store: MailStore, directory: DirectoryStore, target: str, reason: str, *, by: By) -> Hold:
    hold = await store.set_hold(hold_scope(target), target, reason, by=by.actor)
    await directory.audit("hold.set", hold.target, by=by, detail={"scope": hold.scope, "reason": reason})
    return hold


async def clear_hold(store: MailStore, directory: DirectoryStore, target: str, *, by: By) -> Hold:
    hold = await store.clear_hold(hold_scope(target), target)
    detail = {"scope": hold.scope, "reason": hold.reason}
    await directory.audit("hold.clear", hold.target, by=by, detail=detail)
    return hold


def as_json(entry: DeletedMessage) -> dict[str, object]:
    return {
        "id": entry.id,
        "folder": entry.folder,
        "date": entry.internal_date.isoformat(),
        "from": entry.from_,
        "subject": entry.subject,
        "size": entry.size,
        "deleted_at": entry.deleted_at.isoformat(),
        "uid": int(entry.uid),
        "flags": sorted(entry.flags),
    }
