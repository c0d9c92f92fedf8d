"""Sender alignment for agency addresses (Decision 70/2009 Điều 10 khoản 1-2).

``DirectorySenderPolicy`` implements submission's ``SenderPolicy`` protocol
(``async def may_send_as(account, address) -> bool``): an account may send as
its own address, and as an agency address when it is the agency's head or a
delegate holding the send right. Through the router (``routing.Router``) the
same holds for the address in an alias domain (``x@alias-domain`` is
``x@domain``) and for an address alias whose targets include such an address
(an agency's old address after a rename or merger). Disabled accounts may send
as nothing.
"""

from __future__ import annotations

from mailserver.directory.routing import Router
from storage.api import Account
from storage.directory import DirectoryStore


class DirectorySenderPolicy:
    """The directory-aware ``SenderPolicy`` for submission."""

    def __init__(self, directory: DirectoryStore, router: Router | None = None) -> None:
        self._directory = directory
        self._router = router

    async def may_send_as(self, account: Account, address: str) -> bool:
        wanted = address.strip().lower()
        if account.disabled or not wanted:
            return False
        if wanted == account.address.lower():
            return True
        grants = [g.mailbox_address for g in await self._directory.mailbox_access(account.id) if g.may_send]
        if wanted in grants:
            return True
        if self._router is None:
            return False
        await self._router.refresh()
        owners = await self._router.owners(wanted)
        return account.address.lower() in owners or any(g in owners for g in grants)
