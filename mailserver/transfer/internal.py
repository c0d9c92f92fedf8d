"""Copy one account's mail into another on this server (agency rename and
merger, mailserver/directory/reorg.py): every folder, bytes, flags and
INTERNALDATE kept, idempotent like the other imports (``destination``
fingerprints: a second run after an interruption copies only what is
missing)."""

from __future__ import annotations

from dataclasses import dataclass

from mailserver.transfer.destination import Destination, fingerprint
from storage.api import HIERARCHY_DELIMITER, INBOX, Account, MailStore


@dataclass(frozen=True, slots=True)
class Copied:
    folders: int
    messages: int
    skipped: int
    """Already present (an earlier, interrupted run)."""


async def copy_account(store: MailStore, source: Account, dest: Account, *, under: str | None) -> Copied:
    """Copy every folder of ``source`` into ``dest``: under the folder ``under``
    (INBOX becomes ``under`` itself, others its children), or, without it, to
    the same names, special-use folders to ``dest``'s folder of that use."""
    target_account = Destination(store, dest)
    special = await target_account.special_names()
    folders = copied = skipped = 0
    for folder in await store.list_folders(source.id):
        if under:
            name = under if folder.name == INBOX else f"{under}{HIERARCHY_DELIMITER}{folder.name}"
        else:
            name = special.get(folder.special_use or "", folder.name)
        target = await target_account.target(name)
        folders += 1
        for info in await store.list_messages(source.id, folder.id):
            data = await store.read_message(source.id, folder.id, info.uid)
            if target_account.claim(target, fingerprint(data, info.internal_date)):
                skipped += 1
                continue
            flags = [f for f in info.flags if f != "\\Recent"]
            await target_account.add(target, data, flags, info.internal_date)
            copied += 1
    return Copied(folders, copied, skipped)
