"""Folder commands: CREATE, DELETE, RENAME, (UN)SUBSCRIBE, NAMESPACE, LIST/LSUB,
STATUS and GETQUOTA/GETQUOTAROOT.

RFC 9051 sections 6.3.3-6.3.11, RFC 5258 (LIST-EXTENDED), RFC 5819
(LIST-STATUS), RFC 6154 (SPECIAL-USE, CREATE-SPECIAL-USE), RFC 2342
(NAMESPACE), RFC 8438 (STATUS=SIZE), RFC 9208 (QUOTA), RFC 4314 section 4
(rights each command needs). Agency mailboxes appear under ``Shared/<code>/``
(see "Shared mailboxes" in ``session.py``).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence

from mailserver.imap import commands as c
from mailserver.imap import responses as r
from mailserver.imap.core import SHARED, SessionCore, Transition
from mailserver.imap.errors import UserError
from mailserver.imap.responses import IString, Response, Value
from mailserver.imap.selected import Target
from storage.api import INBOX, SPECIAL_FOLDERS, Folder
from storage.directory import ALL_RIGHTS


class FolderCommands(SessionCore):
    """The folder command handlers of ``Session``."""

    async def _create(self, tag: str, wire: str, uses: tuple[str, ...] = ()) -> AsyncIterator[Response]:
        # RFC 6154 section 5.3 (CREATE-SPECIAL-USE): one attribute of those the store
        # keeps per folder; \All and \Flagged would be virtual folders, not offered.
        special_use = None
        if uses:
            known = {attr.lower(): attr for _, attr in SPECIAL_FOLDERS}
            wanted = {known.get(use.lower(), use) for use in uses}
            if len(wanted) > 1 or not wanted <= set(known.values()):
                raise UserError("Only one of " + " ".join(known.values()) + " may be given", "USEATTR")
            (special_use,) = wanted
        name = self._decode_name(wire).rstrip("/")
        if name.upper() == INBOX:
            raise UserError("INBOX already exists", "ALREADYEXISTS")
        if name == SHARED or (name.startswith(SHARED + "/") and name.count("/") < 2):
            raise UserError("The shared namespace has no room for new top-level mailboxes", "CANNOT")
        target = self._target_of(name)
        self._require(target, "k")
        await self.store.create_folder(target.account_id, target.name, special_use=special_use)
        yield r.ok(tag, "CREATE completed")

    async def _delete(self, tag: str, wire: str) -> AsyncIterator[Response]:
        target = await self._target(wire)
        self._require(target, "x")
        folder = await self._folder(target)
        await self.store.delete_folder(target.account_id, folder.id)
        if self.mailbox is not None and self.mailbox.folder.id == folder.id:
            self._transition(Transition.CLOSE)
        yield r.ok(tag, "DELETE completed")

    async def _rename(self, tag: str, old: str, new: str) -> AsyncIterator[Response]:
        source = await self._target(old)
        self._require(source, "x")
        folder = await self._folder(source)
        new_name = self._decode_name(new)
        if new_name.upper() == INBOX:
            raise UserError("INBOX already exists", "ALREADYEXISTS")
        dest = self._target_of(new_name)
        if dest.account_id != source.account_id:
            raise UserError("Cannot move a mailbox between namespaces", "CANNOT")
        self._require(dest, "k")
        await self.store.rename_folder(source.account_id, folder.id, dest.name)
        yield r.ok(tag, "RENAME completed")

    async def _subscribe(self, tag: str, wire: str, flag: bool) -> AsyncIterator[Response]:
        target = await self._target(wire)
        if target.grant is None:
            await self.store.set_subscribed(target.account_id, target.name, flag)
        # A shared folder's subscription belongs to the agency mailbox, which every
        # delegate shares: one delegate's UNSUBSCRIBE must not hide it from the others.
        yield r.ok(tag, "SUBSCRIBE completed" if flag else "UNSUBSCRIBE completed")

    async def _namespace(self, tag: str) -> AsyncIterator[Response]:
        # RFC 2342 section 5: personal, other users' (none), shared.
        personal = ((IString(""), IString("/")),)
        shared = ((IString(SHARED + "/"), IString("/")),)
        yield r.Untagged(("NAMESPACE", personal, None, shared))
        yield r.ok(tag, "NAMESPACE completed")

    async def _visible(self, patterns: Sequence[str]) -> dict[str, tuple[Folder, Target]]:
        """Every mailbox the user may list, by the name they see it under."""
        out: dict[str, tuple[Folder, Target]] = {}
        for folder in await self.store.list_folders(self._account_id):
            # A personal folder named like the shared namespace would be shadowed by it.
            if folder.name != SHARED and not folder.name.startswith(SHARED + "/"):
                out[folder.name] = (folder, Target(self._account_id, folder.name, folder.name, ALL_RIGHTS))
        prefixes = [re.split(r"[*%]", p, maxsplit=1)[0] for p in patterns]
        if not any(SHARED.startswith(p) or p.startswith(SHARED) for p in prefixes):
            return out  # no pattern can reach Shared/: skip the agency mailboxes' folders
        for grant in self._grants:
            if "l" not in grant.rights:
                continue
            for folder in await self.store.list_folders(grant.mailbox_account_id):
                display = f"{SHARED}/{grant.agency_code}/{folder.name}"
                out[display] = (
                    folder,
                    Target(grant.mailbox_account_id, folder.name, display, grant.rights, grant),
                )
        return out

    async def _list(self, tag: str, cmd: c.List) -> AsyncIterator[Response]:
        verb = "LSUB" if cmd.lsub else "LIST"
        if cmd.patterns == ("",) and not cmd.select_options:
            # RFC 9051 section 6.3.9: an empty pattern asks for the delimiter.
            yield r.Untagged((verb, ("\\Noselect",), IString("/"), IString("")))
            yield r.ok(tag, f"{verb} completed")
            return
        reference = self._decode_name(cmd.reference) if cmd.reference else ""
        full_patterns = [reference + self._decode_name(p) for p in cmd.patterns]
        by_name = await self._visible(full_patterns)
        names = set(by_name)
        for name in list(names):
            parts = name.split("/")
            names.update("/".join(parts[:i]) for i in range(1, len(parts)))
        matchers = [_pattern(p) for p in full_patterns]
        subscribed_only = cmd.lsub or "SUBSCRIBED" in cmd.select_options
        special_only = "SPECIAL-USE" in cmd.select_options
        want_subscribed = "SUBSCRIBED" in cmd.return_options or "SUBSCRIBED" in cmd.select_options
        recursive = "RECURSIVEMATCH" in cmd.select_options
        for name in sorted(names, key=lambda n: (n != INBOX, n)):
            if not any(m.fullmatch(name) for m in matchers):
                continue
            found = by_name.get(name)
            folder = found[0] if found is not None else None
            # Special-use attributes of a shared folder are the agency's, not the
            # user's: a client must not take Shared/x/Sent for its own Sent folder.
            special = found[0].special_use if found is not None and found[1].grant is None else None
            children = [n for n in names if n.startswith(name + "/")]
            attrs: list[str] = []
            if folder is None:
                attrs.append("\\NonExistent" if cmd.select_options else "\\Noselect")
            if subscribed_only:
                subscribed_kids = recursive and any(
                    by_name[n][0].subscribed for n in children if n in by_name
                )
                if not (folder is not None and folder.subscribed) and not subscribed_kids:
                    continue
            if special_only and special is None:
                continue
            if not cmd.lsub:
                attrs.append("\\HasChildren" if children else "\\HasNoChildren")
                if want_subscribed and folder is not None and folder.subscribed:
                    attrs.append("\\Subscribed")
                if special:
                    attrs.append(special)
            yield r.Untagged((verb, tuple(attrs), IString("/"), self._encode_name(name)))
            if found is not None and "STATUS" in cmd.return_options and "r" in found[1].rights:
                yield await self._status_response(found[0], found[1], cmd.status_items)
        yield r.ok(tag, f"{verb} completed")

    async def _status_response(self, folder: Folder, target: Target, items: Sequence[str]) -> Response:
        st = await self.store.folder_status(target.account_id, folder.id)
        values = {
            "MESSAGES": st.messages,
            "UIDNEXT": st.uidnext,
            "UIDVALIDITY": st.uidvalidity,
            "UNSEEN": st.unseen,
            "RECENT": st.recent,
            "SIZE": st.size,
            "HIGHESTMODSEQ": st.highestmodseq,
            "DELETED": st.deleted,
        }
        out: list[Value] = []
        for item in items:
            out += [item, values[item]]
        return r.Untagged(("STATUS", self._encode_name(target.display), tuple(out)))

    async def _status(self, tag: str, wire: str, items: tuple[str, ...]) -> AsyncIterator[Response]:
        target = await self._target(wire)
        self._require(target, "r")
        folder = await self._folder(target)
        if "HIGHESTMODSEQ" in items:
            self.enabled |= {"CONDSTORE"}
        yield await self._status_response(folder, target, items)
        yield r.ok(tag, "STATUS completed")

    async def _quota(self, tag: str, cmd: c.GetQuota) -> AsyncIterator[Response]:
        account_id = self._account_id
        if cmd.by_mailbox:
            target = await self._target(cmd.name)
            self._require(target, "r")
            await self._folder(target)  # NONEXISTENT for an unknown folder
            account_id = target.account_id
            yield r.Untagged(("QUOTAROOT", self._encode_name(target.display), IString("")))
        elif cmd.name != "":
            raise UserError("No such quota root", "NONEXISTENT")
        quota = await self.store.quota(account_id)
        resources: list[Value] = []
        if quota.storage_limit is not None:
            resources += ["STORAGE", quota.storage_used // 1024, quota.storage_limit // 1024]
        if quota.messages_limit is not None:
            resources += ["MESSAGE", quota.messages_used, quota.messages_limit]
        yield r.Untagged(("QUOTA", IString(""), tuple(resources)))
        yield r.ok(tag, "GETQUOTAROOT completed" if cmd.by_mailbox else "GETQUOTA completed")


def _pattern(pattern: str) -> re.Pattern[str]:
    """LIST pattern (RFC 9051 section 6.3.9): ``*`` matches anything, ``%`` no delimiter;
    INBOX is matched case-insensitively."""
    if pattern.upper().startswith(INBOX) and (len(pattern) == 5 or pattern[5] in "/%*"):
        pattern = INBOX + pattern[5:]
    regex = "".join(".*" if ch == "*" else "[^/]*" if ch == "%" else re.escape(ch) for ch in pattern)
    return re.compile(regex, re.DOTALL)
