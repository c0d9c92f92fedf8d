"""The selected folder: a session's view of it and how changes reach it.

RFC 9051 sections 6.3.2 (SELECT), 7.5.1 (EXISTS, EXPUNGE), 7.5.2 (FETCH FLAGS
as unsolicited updates), RFC 7162 (MODSEQ, VANISHED) and RFC 5182 (``$``).

Theory of operation
-------------------
A session sees its selected folder through ``Mailbox``: the UIDs in sequence
order (a compact ``array``, the seq -> uid map), the highest modseq reported, and
the UIDs that are \\Recent in this session. What changed is asked from the store
with ``changes_since(highestmodseq)``, so the session keeps no copy of flags.

Asking costs database round trips, so a session asks only when it may have
missed something (``Mailbox.stale``): when the store's ``ChangeHub`` has
published a change of the folder since the session last asked (every change made
in this process: deliveries, other sessions' STORE/EXPUNGE/COPY/MOVE, its own;
see ``FolderWatch``; on PostgreSQL also those of other processes and nodes,
relayed by LISTEN/NOTIFY in the store), or when ``change_poll_interval`` seconds
have passed (changes by another process on SQLite, such as the CLI, publish
nothing here; on PostgreSQL the poll covers a lost notification link). A
session's own STORE that was the folder's only change moves its highest modseq
forward without asking (``Mailbox.own_change``: the FETCH responses of the STORE
already told the client).

What the sessions of one ``ImapService`` share lives in its ``FolderCache`` (one
per service, so per store; a session built without one gets its own):

* sessions that select the same folder in the same state share one read-only
  UID array (``Snapshot``, kept weakly by folder and highest modseq): 300
  sessions on a 100,000-message INBOX hold one 400 kB array, not 300. A session
  copies the array before changing it (new messages, expunges) and, once it has
  caught up with the store again, swaps its copy for an equal shared one when
  there is one;
* SELECTs of one folder state that arrive together wait for a single read of
  the index (a shielded task: the one piece of asyncio here, so a client that
  disconnects does not fail the others);
* the fields SORT and THREAD compare, per folder (``sort.py``: a message's
  envelope never changes under its UID, so a client sorting again reads only
  new messages), least recently sorted folders dropped beyond a bound: kept
  after the last session goes, as webmail connects anew for every page;
* the last ``changes_since`` answer per folder: after a change, the sessions
  watching a folder ask once between them instead of once each (a shared agency
  mailbox open by many delegates).
"""

from __future__ import annotations

import asyncio
import weakref
from array import array
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from mailserver.imap import commands as c
from mailserver.imap import responses as r
from mailserver.imap.responses import FetchItem, Response
from storage.api import Changes, FlagUpdate, Folder, FolderWatch, MailStore, MessageInfo, ModSeq, Uid
from storage.directory import MailboxGrant


@dataclass(frozen=True, slots=True)
class Target:
    """A mailbox name resolved: whose folder it is and what the user may do there."""

    account_id: int
    name: str
    """The folder's name in ``account_id``."""
    display: str
    """The name as this user sees it (``Shared/<code>/...`` for an agency mailbox)."""
    rights: str
    """RFC 4314 letters the user holds."""
    grant: MailboxGrant | None = None
    """The directory grant for a shared mailbox; None for the user's own."""


class Snapshot:
    """A folder's UIDs at one highest modseq, shared read-only by the sessions
    that have it selected in that state. ``keywords`` and ``first_unseen`` are
    known when the snapshot came from ``folder_index`` (what SELECT also needs)."""

    __slots__ = ("__weakref__", "first_unseen", "keywords", "uids")

    def __init__(
        self, uids: array[int], keywords: frozenset[str] | None = None, first_unseen: Uid | None = None
    ) -> None:
        self.uids = uids
        self.keywords = keywords
        self.first_unseen = first_unseen


SnapshotKey = tuple[int, int, int]
"""(folder id, UIDVALIDITY, highest modseq)."""


@dataclass(frozen=True, slots=True)
class Index:
    """``FolderIndex`` with the UIDs as a 32-bit array."""

    uids: array[int]
    keywords: frozenset[str]
    first_unseen: Uid | None


@dataclass(frozen=True, slots=True)
class Answer:
    """The last ``changes_since`` answer for a folder, with what it was asked at."""

    watch: FolderWatch
    """The folder's watch in the store's hub (tells folder states apart)."""
    version: int
    """``watch.version`` read before asking."""
    asked_at: float
    since: int
    changes: Changes


@dataclass(slots=True)
class Mailbox:
    """This session's view of the selected folder."""

    folder: Folder
    readonly: bool
    uids: array[int]
    """UIDs in sequence-number order: ``uids[seq - 1]``. Read-only while
    ``snapshot`` is set (other sessions hold the same array): change it only
    through ``remove``/``extend``, which copy it first."""
    target: Target
    highestmodseq: int
    recent: set[int] = field(default_factory=set)
    reported: dict[int, int] = field(default_factory=dict)
    """uid -> modseq already sent by this session's own STORE (not repeated as updates)."""
    snapshot: Snapshot | None = None
    watch: FolderWatch | None = None
    """The folder's ChangeHub counter while selected."""
    seen_version: int = 0
    """``watch.version`` when the session last asked the store (or caught up otherwise)."""
    synced_at: float = float("-inf")
    """Clock reading when the session last asked the store for changes."""
    saved: frozenset[int] = frozenset()
    """UIDs of the last ``SEARCH RETURN (SAVE)`` (RFC 5182), what ``$`` names;
    expunged ones drop out when ``$`` is resolved against ``uids``."""
    closed: bool = False
    """The session let go of the folder (set while a query may still be running)."""

    def seq(self, uid: int) -> int | None:
        i = bisect_left(self.uids, uid)
        return i + 1 if i < len(self.uids) and self.uids[i] == uid else None

    def _own(self) -> array[int]:
        if self.snapshot is not None:
            self.uids = self.uids[:]  # copy-on-write: the shared array stays as it was
            self.snapshot = None
        return self.uids

    def remove(self, uid: int) -> int | None:
        seq = self.seq(uid)
        if seq is not None:
            del self._own()[seq - 1]
            self.recent.discard(uid)
        return seq

    def extend(self, uids: Iterable[int]) -> None:
        self._own().extend(uids)

    def resolve(self, seqset: c.SeqSet, uid: bool) -> list[tuple[int, int]]:
        """(seq, uid) pairs named by a sequence set, in sequence order."""
        uids = self.uids
        if not uids:
            return []
        if seqset.saved:  # "$" names the same messages in UID and sequence commands
            return [(seq, u) for u in sorted(self.saved) if (seq := self.seq(u)) is not None]
        picked: set[int] = set()
        if uid:
            for lo, hi in seqset.resolve(uids[-1]):
                picked.update(range(bisect_left(uids, lo), bisect_right(uids, hi)))
        else:
            for lo, hi in seqset.resolve(len(uids)):
                picked.update(range(max(lo, 1) - 1, min(hi, len(uids))))
        return [(i + 1, uids[i]) for i in sorted(picked)]

    def flag_names(self, info: MessageInfo) -> list[str]:
        """The message's flags as this session reports them (\\Recent is per session)."""
        flags: list[str] = sorted(info.flags)
        if info.uid in self.recent:
            flags.append("\\Recent")
        return flags

    def flag_items(self, info: MessageInfo, *, uid: bool, modseq: bool) -> list[FetchItem]:
        """``UID n FLAGS (...) MODSEQ (m)``: what a flag change is reported with."""
        items: list[FetchItem] = []
        if uid:
            items.append(r.uid_item(info))
        items.append(r.flags_item(self.flag_names(info)))
        if modseq:
            items.append(r.modseq_item(info))
        return items

    def expunged(self, uids: Iterable[int], *, qresync: bool) -> list[Response]:
        """Forget expunged messages; VANISHED (RFC 7162) or EXPUNGE responses for them."""
        if qresync:
            gone = [u for u in uids if self.remove(u) is not None]
            return [r.vanished(gone)] if gone else []
        out: list[Response] = []
        for uid in sorted(uids):
            seq = self.remove(uid)
            if seq is not None:
                out.append(r.expunge(seq))
        return out

    def stale(self, now: float, poll_interval: float) -> bool:
        """May the store hold changes this session has not reported? Yes when this
        process published a change of the folder since the session last looked, or
        when the last look is ``poll_interval`` old (other processes)."""
        if self.watch is None or self.watch.version != self.seen_version:
            return True
        return now - self.synced_at >= poll_interval

    def own_change(self, before: int, update: FlagUpdate) -> None:
        """After this session's own flag change: if it was the folder's only change
        since the session last caught up (the hub counted exactly one publish, and
        the change's modseq is the next one), the session is caught up again and
        need not ask the store (RFC 7162 section 3.1: its STORE or FETCH responses
        already carried the new flags and MODSEQ)."""
        watch = self.watch
        if not update.changed or watch is None or self.seen_version != before or watch.version != before + 1:
            return
        modseq = update.changed[0].modseq
        if modseq != self.highestmodseq + 1 or any(i.modseq != modseq for i in update.changed):
            return
        self.highestmodseq = modseq
        self.seen_version = watch.version
        for info in update.changed:
            self.reported.pop(info.uid, None)

    async def report(
        self, changes: Changes, store: MailStore, *, qresync: bool, condstore: bool
    ) -> list[Response]:
        """Take in what changed since ``highestmodseq``; the untagged responses that
        tell the client (RFC 9051 section 7.5.1 order: expunges, then EXISTS)."""
        since = self.highestmodseq
        changed = [i for i in changes.changed if i.modseq > since]
        gone = [u for u in changes.vanished if self.seq(u) is not None]
        out: list[Response] = []
        if qresync:
            out = self.expunged(gone, qresync=True)
        else:
            for uid in gone:  # in the store's order
                seq = self.remove(uid)
                if seq is not None:
                    out.append(r.expunge(seq))
        last = self.uids[-1] if self.uids else 0
        new = [i.uid for i in changed if i.uid > last]
        if new:
            self.extend(new)
            if not self.readonly:
                watermark = await store.claim_recent(self.target.account_id, self.folder.id)
                self.recent.update(u for u in new if u >= watermark)
            out.append(r.exists(len(self.uids)))
            out.append(r.recent(len(self.recent)))
        for info in changed:
            if info.uid > last or self.reported.get(info.uid) == info.modseq:
                continue
            seq = self.seq(info.uid)
            if seq is not None:
                out.append(r.fetch(seq, self.flag_items(info, uid=True, modseq=condstore)))
        self.highestmodseq = max(self.highestmodseq, changes.highestmodseq)
        self.reported.clear()
        return out


class FolderCache:
    """What the sessions of one ``ImapService`` share about the folders they have
    selected (see the module docstring). Entries go away with the last session
    holding them: snapshots are weak, answers are dropped with the folder's watch."""

    def __init__(self) -> None:
        self.snapshots: Final[weakref.WeakValueDictionary[SnapshotKey, Snapshot]] = (
            weakref.WeakValueDictionary()
        )
        self.loading: Final[dict[SnapshotKey, asyncio.Future[Index]]] = {}
        """Index reads in flight, so concurrent SELECTs of one folder state read it once."""
        self.answers: Final[dict[int, Answer]] = {}
        """Folder id -> the folder's last answer, while sessions have it selected."""
        self.sort_fields: Final[OrderedDict[int, tuple[int, dict[int, Any]]]] = OrderedDict()
        """Folder id -> (UIDVALIDITY, UID -> what SORT and THREAD compare, ``sort.Fields``),
        least recently sorted first, bounded by ``sort.CACHE_LIMIT`` (``sort.py``)."""

    def share(self, mb: Mailbox, index: Index | None = None) -> None:
        """Swap the session's own UID array for an equal shared one, or offer it to
        sessions that reach the same state later."""
        key = (mb.folder.id, mb.folder.uidvalidity, mb.highestmodseq)
        found = self.snapshots.get(key)
        if found is not None and (found.uids is mb.uids or found.uids == mb.uids):
            mb.uids, mb.snapshot = found.uids, found
            if found.keywords is None and index is not None:
                found.keywords, found.first_unseen = index.keywords, index.first_unseen
            return
        if found is not None:
            return  # same key, other UIDs (reads straddling a commit): keep our own
        snapshot = Snapshot(mb.uids)
        if index is not None:
            snapshot.keywords, snapshot.first_unseen = index.keywords, index.first_unseen
        self.snapshots[key] = mb.snapshot = snapshot

    async def open(
        self, store: MailStore, target: Target, folder: Folder, readonly: bool
    ) -> tuple[Mailbox, frozenset[str], Uid | None]:
        """A Mailbox of ``folder`` as it is now, its keywords and first unseen UID:
        shared with the sessions that hold this folder state, else read once for
        every SELECT of that state arriving meanwhile."""
        key = (folder.id, folder.uidvalidity, folder.highestmodseq)
        snapshot = self.snapshots.get(key)
        if snapshot is not None and snapshot.keywords is not None:
            # Another session holds this folder in this very state: share its UIDs
            # instead of reading (and keeping) every row again.
            mb = Mailbox(folder, readonly, snapshot.uids, target, folder.highestmodseq, snapshot=snapshot)
            return mb, snapshot.keywords, snapshot.first_unseen
        # Sessions selecting the folder at the same moment (a client opening many
        # connections, a reconnect storm) wait for one read of the index.
        loading = self.loading.get(key)
        owner = loading is None
        if loading is None:
            read = _load_index(store, target.account_id, folder.id)
            loading = self.loading[key] = asyncio.ensure_future(read)
        try:
            index = await asyncio.shield(loading)
            mb = Mailbox(folder, readonly, index.uids, target, folder.highestmodseq)
            self.share(mb, index)
        finally:
            # The read leaves ``loading`` only once its snapshot is in ``snapshots``:
            # a SELECT arriving between the read's end and this session's
            # resumption finds one or the other, never neither (a second read).
            if owner and loading.done():
                self.loading.pop(key, None)
            elif owner:
                loading.add_done_callback(lambda _: self.loading.pop(key, None))
        return mb, index.keywords, index.first_unseen

    async def changes(
        self, store: MailStore, mb: Mailbox, *, now: float, poll_interval: float
    ) -> Changes | None:
        """What changed in the folder since ``mb.highestmodseq`` (possibly more, from
        an older modseq: the caller filters); None if the session let go of the
        folder meanwhile."""
        # Read the counter before asking: a change published while the query runs
        # leaves the session stale, so it is asked for again next time.
        version = mb.watch.version if mb.watch is not None else 0
        since = mb.highestmodseq
        memo = self.answers.get(mb.folder.id)
        if (
            memo is not None
            and memo.watch is mb.watch
            and memo.version == version
            and memo.since <= since
            and now - memo.asked_at < poll_interval
        ):
            # Another session asked from an older modseq after the last change
            # published here, and recently: its answer holds ours.
            changes, asked_at = memo.changes, memo.asked_at
        else:
            changes = await store.changes_since(mb.target.account_id, mb.folder.id, ModSeq(since))
            if mb.closed:  # pragma: no cover - closed while the query ran
                return None
            asked_at = now
            watch = mb.watch
            if watch is not None and (memo is None or memo.watch is not watch or memo.version <= version):
                self.answers[mb.folder.id] = Answer(watch, version, now, since, changes)
        mb.seen_version, mb.synced_at = version, asked_at
        return changes

    def released(self, folder_id: int, watch: FolderWatch) -> None:
        """A session stopped watching the folder: its answer goes with the last one."""
        if watch.holders <= 0:
            self.answers.pop(folder_id, None)


async def _load_index(store: MailStore, account_id: int, folder_id: int) -> Index:
    index = await store.folder_index(account_id, folder_id)
    uids = index.uids
    if not (isinstance(uids, array) and uids.typecode == "I"):
        uids = array("I", uids)  # RFC 9051: UIDs are 32-bit
    return Index(uids, index.keywords, index.first_unseen)
