"""ACL commands: GETACL, MYRIGHTS, LISTRIGHTS, SETACL, DELETEACL (RFC 4314 section 3).

Rights live per agency mailbox in the directory, not per folder: a SETACL on any
folder of ``Shared/<code>/`` sets them for the whole mailbox (Decision 70/2009
Điều 10 khoản 1, ủy quyền), and is audited with the acting user. Personal
mailboxes are not shared: their owner holds every right and nobody else holds
any. Which rights a command needs is checked where the command runs
(``SessionCore._require``, RFC 4314 section 4).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Final

from mailserver.imap import commands as c
from mailserver.imap import responses as r
from mailserver.imap.core import SessionCore
from mailserver.imap.errors import UserError
from mailserver.imap.grammar import is_astring
from mailserver.imap.responses import IString, Response, Value
from mailserver.imap.selected import Target
from storage.directory import ALL_RIGHTS, By, DirectoryError, canonical_rights

log = logging.getLogger("mailserver.imap.session")


class AclCommands(SessionCore):
    """The ACL command handlers of ``Session``."""

    async def _owner(self, target: Target) -> str:
        if target.grant is not None:
            return target.grant.mailbox_address
        assert self.account is not None  # noqa: S101 - guarded by Command.states
        return self.account.address

    async def _agency_of(self, target: Target) -> str | None:
        """The agency code whose mailbox ``target`` belongs to; None if personal."""
        if target.grant is not None:
            return target.grant.agency_code
        if self.directory is None:
            return None
        if self._own_agency is None:  # once per session: is the login an agency mailbox?
            agencies = await self.directory.list_agencies()
            self._own_agency = next((a.code for a in agencies if a.account_id == self._account_id), "")
        return self._own_agency or None

    async def _head_address(self, code: str) -> str | None:
        assert self.directory is not None  # noqa: S101 - only asked for agency mailboxes
        agency = await self.directory.get_agency(code)
        if agency is None or agency.head_person_id is None:
            return None
        head = await self.directory.get_person(agency.head_person_id)
        return head.address if head is not None else None

    async def _getacl(self, tag: str, wire: str) -> AsyncIterator[Response]:
        target = await self._target(wire)
        self._require(target, "a")
        await self._folder(target)
        owner = await self._owner(target)
        entries: list[Value] = [_ident(owner), ALL_RIGHTS]
        if await self._agency_of(target) is not None and self.directory is not None:
            for address, rights in await self.directory.mailbox_acl(target.account_id):
                if address != owner:
                    entries += [_ident(address), rights or IString("")]
        yield r.Untagged(("ACL", self._encode_name(target.display), *entries))
        yield r.ok(tag, "GETACL completed")

    async def _myrights(self, tag: str, wire: str) -> AsyncIterator[Response]:
        target = await self._target(wire)
        self._require(target, "")
        if not target.rights:
            raise UserError("No such mailbox", "NONEXISTENT")
        await self._folder(target)
        yield r.Untagged(("MYRIGHTS", self._encode_name(target.display), target.rights))
        yield r.ok(tag, "MYRIGHTS completed")

    async def _listrights(self, tag: str, wire: str, identifier: str) -> AsyncIterator[Response]:
        target = await self._target(wire)
        self._require(target, "a")
        await self._folder(target)
        who = identifier.strip().lower()
        code = await self._agency_of(target)
        fixed = {await self._owner(target)}
        if code is not None:
            fixed.add(await self._head_address(code) or "")
        values: list[Value]
        if who in fixed:
            values = [ALL_RIGHTS]  # owner and head: every right, none negotiable
        elif code is None:
            values = [IString("")]  # a personal mailbox is never shared
        else:
            values = [IString(""), *ALL_RIGHTS]  # each right may be granted on its own
        yield r.Untagged(("LISTRIGHTS", self._encode_name(target.display), _ident(identifier), *values))
        yield r.ok(tag, "LISTRIGHTS completed")

    async def _setacl(self, tag: str, cmd: c.SetAcl | c.DeleteAcl) -> AsyncIterator[Response]:
        target = await self._target(cmd.mailbox)
        self._require(target, "a")
        await self._folder(target)
        code = await self._agency_of(target)
        if code is None or self.directory is None:
            raise UserError(
                "Hộp thư cá nhân không chia sẻ được / Personal mailboxes cannot be shared", "CANNOT"
            )
        who = cmd.identifier.strip().lower()
        if who in (await self._owner(target), await self._head_address(code)):
            raise UserError(
                "Quyền của thủ trưởng chỉ đổi bằng bàn giao / The head's rights change only by handover",
                "CANNOT",
            )
        account = await self.store.get_account(who)
        if account is None or account.disabled:
            raise UserError("Không có hộp thư này / No such mailbox user", "CANNOT")
        delegations = await self.directory.delegations(code)
        existing = next((d for d in delegations if d.account_id == account.id), None)
        current = existing.rights if existing is not None else ""
        if isinstance(cmd, c.DeleteAcl):
            rights = ""
        else:
            rights = _mod_rights(current, cmd.rights)
        assert self.account is not None  # noqa: S101 - guarded by Command.states
        by = By(self.account.address)
        try:
            if rights:
                await self.directory.delegate(
                    code, account.id, rights, existing.may_send if existing is not None else False, by=by
                )
            elif existing is not None:
                await self.directory.revoke(code, account.id, by=by)
        except DirectoryError as exc:
            raise UserError(str(exc)[:200] or "Refused", "CANNOT") from None
        log.info(
            "imap %s: %s set rights of %s on %s to %r",
            self.connection_id,
            self.account.address,
            who,
            code,
            rights,
        )
        self._fresh_until = float("-inf")
        yield r.ok(tag, "SETACL completed" if isinstance(cmd, c.SetAcl) else "DELETEACL completed")


def _ident(identifier: str) -> Value:
    """An RFC 4314 identifier (astring): bare when it can be, quoted otherwise."""
    return identifier if is_astring(identifier) and identifier.upper() != "NIL" else IString(identifier)


_OBSOLETE_RIGHTS: Final = {"c": "k", "d": "xte"}
"""RFC 4314 section 2.1.1: RFC 2086's c and d stand for their successors."""


def _mod_rights(current: str, spec: str) -> str:
    """SETACL mod-rights (RFC 4314 section 3.1): ``+`` adds, ``-`` removes, bare
    replaces. Unknown letters answer BAD."""
    mode = spec[:1] if spec[:1] in ("+", "-") else ""
    letters = "".join(_OBSOLETE_RIGHTS.get(ch, ch) for ch in spec[len(mode) :])
    try:
        given = canonical_rights(letters)
    except ValueError:
        raise UserError("Unknown right in rights string", status="BAD") from None
    if mode == "+":
        return canonical_rights(current + given)
    if mode == "-":
        return "".join(ch for ch in current if ch not in given)
    return given
