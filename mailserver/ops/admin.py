"""Administrative actions that both the CLI (``mailserver queue``, ``mailserver
quarantine``) and the portal (``/admin/queue``, ``/admin/quarantine``) offer,
written once; each writes its audit entry here, only when it changed something.

Audit subjects: ``queue:<id>`` (``queue:all`` for a retry of everything) with
actions ``queue.retry``, ``queue.bounce``, ``queue.delete``; the entry id with
``quarantine.release`` and ``quarantine.delete``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from storage.api import MailStore
from storage.directory import By
from storage.quarantine import Quarantine
from storage.queue import OutboundQueue

__all__ = [
    "Auditor",
    "Release",
    "bounce_queued",
    "delete_held",
    "delete_queued",
    "release_held",
    "retry_queued",
]


class Auditor(Protocol):
    """Where the actions are recorded (``DirectoryStore.audit``)."""

    async def audit(
        self, action: str, subject: str, *, by: By, detail: Mapping[str, object] | None = None
    ) -> None: ...


# -- the outbound queue ---------------------------------------------------------


async def retry_queued(
    queue: OutboundQueue, auditor: Auditor, message_id: int | None, *, by: By
) -> int | None:
    """Make one queued message (or all, for None) due now: how many recipients
    will be tried again, None when there is no message ``message_id``."""
    if message_id is not None and await queue.get(message_id) is None:
        return None
    count = await queue.retry(message_id, datetime.now(UTC))
    subject = "queue:all" if message_id is None else f"queue:{message_id}"
    await auditor.audit("queue.retry", subject, by=by)
    return count


async def bounce_queued(queue: OutboundQueue, auditor: Auditor, message_id: int, *, by: By) -> bool:
    """Ask the delivery worker to return the message to its sender; False: no such message."""
    if not await queue.request_bounce(message_id, datetime.now(UTC)):
        return False
    await auditor.audit("queue.bounce", f"queue:{message_id}", by=by)
    return True


async def delete_queued(queue: OutboundQueue, auditor: Auditor, message_id: int, *, by: By) -> bool:
    """Drop the message without any notice; False: no such message."""
    if not await queue.delete(message_id):
        return False
    await auditor.audit("queue.delete", f"queue:{message_id}", by=by)
    return True


# -- the quarantine -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Release:
    delivered: int
    """Mailboxes the message went to; 0: none left, the entry is kept."""
    missing: tuple[str, ...]
    """Recipients with no (enabled) local account, not delivered."""


async def release_held(
    store: MailStore, quarantine: Quarantine, auditor: Auditor, entry_id: str, *, by: By
) -> Release:
    """Deliver a held message to its local recipients, all at once (durable for
    all or none, as on the SMTP path), then remove the entry. Raises
    ``storage.quarantine.NoSuchEntry``."""
    entry, data = await asyncio.to_thread(quarantine.get, entry_id)
    account_ids: list[int] = []
    missing: list[str] = []
    for rcpt in entry.recipients:
        account = await store.get_account(rcpt.lower())
        if account is None or account.disabled:
            missing.append(rcpt)
        elif account.id not in account_ids:
            account_ids.append(account.id)
    if not account_ids:
        return Release(0, tuple(missing))
    # Past the quotas: the message was accepted (250) before it was held.
    await store.deliver(account_ids, data, quota=False)
    await asyncio.to_thread(quarantine.delete, entry_id)
    await auditor.audit("quarantine.release", entry_id, by=by)
    return Release(len(account_ids), tuple(missing))


async def delete_held(quarantine: Quarantine, auditor: Auditor, entry_id: str, *, by: By) -> None:
    """Remove a held message without delivering it. Raises ``NoSuchEntry``."""
    await asyncio.to_thread(quarantine.delete, entry_id)
    await auditor.audit("quarantine.delete", entry_id, by=by)
