"""Commands on the messages of the selected folder (and APPEND): APPEND, CLOSE,
UNSELECT, EXPUNGE, UID EXPUNGE, COPY, MOVE and STORE.

RFC 9051 sections 6.3.12 (APPEND), 6.4.1-6.4.3, 6.4.6-6.4.8; RFC 3502
(MULTIAPPEND), RFC 4315 (UIDPLUS: APPENDUID, COPYUID, UID EXPUNGE), RFC 6851
(MOVE), RFC 3691 (UNSELECT), RFC 7162 section 3.1.3 (STORE UNCHANGEDSINCE,
MODIFIED), RFC 4314 section 4 (rights per flag). Messages put into or taken out
of \\Junk are reported to the junk trainer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence

from mailserver.imap import commands as c
from mailserver.imap import responses as r
from mailserver.imap.core import SYSTEM_FLAGS, SessionCore, Transition, flag_right
from mailserver.imap.errors import UserError
from mailserver.imap.grammar import canonical_flag, is_atom
from mailserver.imap.responses import FetchItem, Response
from mailserver.imap.selected import Mailbox, Target
from storage.api import FlagMode, Folder, MessageInfo, ModSeq, NoSuchFolder, Uid


class MessageCommands(SessionCore):
    """The message command handlers of ``Session`` (FETCH and SEARCH have their own)."""

    async def _append(self, tag: str, cmd: c.Append) -> AsyncIterator[Response]:
        target = await self._target(cmd.mailbox)
        self._require(target, "i")
        try:
            folder = await self._folder(target)
        except NoSuchFolder:
            raise UserError("No such mailbox", "TRYCREATE") from None
        uids: list[int] = []
        if len(cmd.messages) > 1:
            # MULTIAPPEND is all or none (RFC 3502 section 6.3.11): the quota is
            # checked for the whole set first (the store checks each one too).
            await self._check_quota(target.account_id, sum(len(m.data) for m in cmd.messages))
        for msg in cmd.messages:
            if not msg.data:
                raise UserError("Empty message", "CANNOT")
            # RFC 4314 section 4: flags the user may not set are dropped, not refused.
            flags = [f for f in _valid_flags(msg.flags) if flag_right(f) in target.rights]
            info = await self.store.append(
                target.account_id, folder.id, msg.data, flags=flags, internal_date=msg.date
            )
            uids.append(info.uid)
        if folder.special_use == "\\Junk":
            self._learn(target.account_id, folder.id, uids, is_spam=True)
        yield r.ok(tag, "APPEND completed", f"APPENDUID {folder.uidvalidity} {r.seqset(uids)}")

    # -- selected --------------------------------------------------------------------
    async def _close(self, tag: str, expunge: bool) -> AsyncIterator[Response]:
        mb = self._selected()
        # RFC 4314 section 4: CLOSE without the e right closes without expunging.
        if expunge and not mb.readonly and "e" in mb.target.rights:
            await self.store.expunge(mb.target.account_id, mb.folder.id)
        self._transition(Transition.CLOSE)
        yield r.ok(tag, "CLOSE completed" if expunge else "UNSELECT completed")

    def _expunged(self, uids: Iterable[int]) -> list[Response]:
        return self._selected().expunged(uids, qresync="QRESYNC" in self.enabled)

    async def _expunge(self, tag: str, cmd: c.Expunge) -> AsyncIterator[Response]:
        mb = self._writable()
        self._require(mb.target, "e")
        which: list[Uid] | None = None
        if cmd.uids is not None:
            which = [Uid(u) for _, u in mb.resolve(cmd.uids, True)]
        gone = await self.store.expunge(mb.target.account_id, mb.folder.id, which)
        for resp in self._expunged(gone):
            yield resp
        yield r.ok(tag, "EXPUNGE completed")

    async def _copy(self, tag: str, cmd: c.Copy) -> AsyncIterator[Response]:
        mb = self._writable() if cmd.move else self._selected()
        if cmd.move:
            self._require(mb.target, "te")  # RFC 6851 section 4.3 with RFC 4314
        target = await self._target(cmd.mailbox)
        self._require(target, "i")
        try:
            dest = await self._folder(target)
        except NoSuchFolder:
            raise UserError("No such mailbox", "TRYCREATE") from None
        uids = [Uid(u) for _, u in mb.resolve(cmd.seqset, cmd.uid)]
        verb = "MOVE" if cmd.move else "COPY"
        if not uids:
            yield r.ok(tag, f"{verb} completed (no messages)")
            return
        source_id = mb.target.account_id
        if target.account_id != source_id:
            pairs = await self._copy_across(mb, uids, target, dest, move=cmd.move)
        elif cmd.move:
            pairs = await self.store.move(source_id, mb.folder.id, uids, dest.id)
        else:
            pairs = await self.store.copy(source_id, mb.folder.id, uids, dest.id)
        sources, targets = _uid_list([p[0] for p in pairs]), _uid_list([p[1] for p in pairs])
        code = f"COPYUID {dest.uidvalidity} {sources} {targets}"
        new_uids = [p[1] for p in pairs]
        if dest.special_use == "\\Junk" and mb.folder.special_use != "\\Junk":
            self._learn(target.account_id, dest.id, new_uids, is_spam=True)
        elif cmd.move and mb.folder.special_use == "\\Junk" and dest.special_use not in ("\\Junk", "\\Trash"):
            # Taken out of Junk (not thrown away): a false positive, learn it as ham.
            self._learn(target.account_id, dest.id, new_uids, is_spam=False)
        if cmd.move:
            yield r.status_line("OK", "Moved", code)
            for resp in self._expunged(p[0] for p in pairs):
                yield resp
            yield r.ok(tag, "MOVE completed")
        else:
            yield r.ok(tag, "COPY completed", code)

    async def _copy_across(
        self, mb: Mailbox, uids: Sequence[Uid], target: Target, dest: Folder, *, move: bool
    ) -> list[tuple[Uid, Uid]]:
        """COPY/MOVE between the user's own and a shared mailbox (two accounts): the
        store copies only within one account, so each message is read and appended
        (durable before the source is touched), then a MOVE expunges the sources."""
        source_id = mb.target.account_id
        infos = await self.store.get_infos(source_id, mb.folder.id, sorted(set(uids)))
        # Into another account (a shared mailbox): its quota must take them all.
        await self._check_quota(target.account_id, sum(info.size for info in infos))
        pairs: list[tuple[Uid, Uid]] = []
        for info in infos:
            try:
                data = await self.store.read_message(source_id, mb.folder.id, info.uid)
            except KeyError:
                continue  # expunged meanwhile
            flags = [f for f in info.flags if flag_right(f) in target.rights]
            new = await self.store.append(
                target.account_id, dest.id, data, flags=flags, internal_date=info.internal_date
            )
            pairs.append((info.uid, new.uid))
        if move and pairs:
            moved = [p[0] for p in pairs]
            await self.store.store_flags(source_id, mb.folder.id, moved, ["\\Deleted"], FlagMode.ADD)
            # A MOVE, not a deletion: the sources skip the deleted-mail vault.
            await self.store.expunge(source_id, mb.folder.id, moved, vault=False)
        return pairs

    async def _store(self, tag: str, cmd: c.Store) -> AsyncIterator[Response]:
        mb = self._writable()
        pairs = mb.resolve(cmd.seqset, cmd.uid)
        flags = _valid_flags(cmd.flags)
        # RFC 4314 section 4: s for \Seen, t for \Deleted, w for the rest; replacing
        # the whole set may change any flag, so it needs all three.
        needed = "swt" if cmd.mode is c.StoreMode.REPLACE else ""
        self._require(mb.target, needed + "".join(flag_right(f) for f in flags))
        if cmd.unchanged_since is not None:
            self.enabled |= {"CONDSTORE"}
        mode = {
            c.StoreMode.REPLACE: FlagMode.REPLACE,
            c.StoreMode.ADD: FlagMode.ADD,
            c.StoreMode.REMOVE: FlagMode.REMOVE,
        }[cmd.mode]
        seq_of = {u: s for s, u in pairs}
        before = mb.watch.version if mb.watch is not None else 0
        update = await self.store.store_flags(
            mb.target.account_id,
            mb.folder.id,
            [Uid(u) for u in seq_of],
            flags,
            mode,
            unchanged_since=None if cmd.unchanged_since is None else ModSeq(cmd.unchanged_since),
        )
        if update.changed:
            await self._attention(mb.target)
        condstore = self._condstore()
        changed: dict[int, MessageInfo] = {i.uid: i for i in update.changed}
        for info in update.changed:
            mb.reported[info.uid] = info.modseq
        mb.own_change(before, update)
        conflicts = set(update.conflicts)
        if not cmd.silent:
            rest = [u for u in seq_of if u not in changed and u not in conflicts]
            if rest:
                rest_uids = [Uid(u) for u in sorted(rest)]
                for info in await self.store.get_infos(mb.target.account_id, mb.folder.id, rest_uids):
                    changed[info.uid] = info
        for uid, seq in seq_of.items():
            found = changed.get(uid)
            if found is None:
                continue
            info = found
            if cmd.silent:
                if condstore:  # RFC 7162 section 3.1.3: MODSEQ even with .SILENT
                    items: list[FetchItem] = [r.uid_item(info)] if cmd.uid else []
                    yield r.fetch(seq, [*items, r.modseq_item(info)])
                continue
            yield r.fetch(seq, mb.flag_items(info, uid=cmd.uid, modseq=condstore))
        if conflicts:
            numbers = sorted(conflicts) if cmd.uid else sorted(seq_of[u] for u in conflicts)
            yield r.ok(tag, "Conditional STORE failed for some messages", f"MODIFIED {r.seqset(numbers)}")
        else:
            yield r.ok(tag, "STORE completed")


def _valid_flags(flags: Iterable[str]) -> list[str]:
    out = []
    for flag in flags:
        flag = canonical_flag(flag)
        if flag == "\\Recent":
            continue  # RFC 9051 section 2.3.2: \Recent cannot be stored
        if flag.startswith("\\") and flag not in SYSTEM_FLAGS:
            raise UserError(f"Flag {flag[:32]} cannot be set", "CANNOT", "BAD")
        if not is_atom(flag.lstrip("\\")):
            raise UserError("Invalid flag", status="BAD")
        out.append(flag)
    return out


def _uid_list(uids: Sequence[int]) -> str:
    # COPYUID pairs source and destination UIDs by position: compress only if order is kept.
    if list(uids) == sorted(uids):
        return r.seqset(uids)
    return ",".join(str(u) for u in uids)
