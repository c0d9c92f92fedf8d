"""Sender alignment for agency addresses (Decision 70/2009 Điều 10 khoản 1-2).

``DirectorySenderPolicy`` implements submission's ``SenderPolicy`` protocol
(``async def may_send_as(account, address) -> bool``): an account may send as
its own address, and as an agency address when it is the agency's head or a
delegate holding the send right. Disabled accounts may send as nothing.
"""

from __future__ import annotations

from storage.api import Account
from storage.directory import DirectoryStore


class DirectorySenderPolicy:
    """The directory-aware ``SenderPolicy`` for submission."""

    def __init__(self, directory: DirectoryStore) -> None:
        self._directory = directory

    async def may_send_as(self, account: Account, address: str) -> bool:
        wanted = address.strip().lower()
        if account.disabled or not wanted:
            return False
        if wanted == account.address.lower():
            return True
        for grant in await self._directory.mailbox_access(account.id):
            if grant.may_send and grant.mailbox_address == wanted:
                return True
        return False
