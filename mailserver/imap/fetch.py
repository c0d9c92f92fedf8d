"""FETCH (RFC 9051 sections 6.4.5 and 7.5.2) with CONDSTORE/QRESYNC (RFC 7162
sections 3.1.4 and 3.2.6: MODSEQ, CHANGEDSINCE, VANISHED) and BINARY (RFC 3516).

Theory of operation
-------------------
A FETCH is planned once (``FetchPlan.of``): the attributes (UID added to a UID
FETCH, MODSEQ when CHANGEDSINCE or MODSEQ turns CONDSTORE on), what the store
must load for them - the index row always, the detail row for ENVELOPE,
BODYSTRUCTURE and BODY, the message file for sections, RFC822 and BINARY - and
whether it sets \\Seen (a body section without PEEK, where the user holds the
``s`` right). Each attribute gets an ``ItemWriter`` that gives its wire form for
one message, and ``responses.fetch_line`` puts a message's items together: every
FETCH response is encoded by that one function.

``FetchRun`` carries the plan out batch by batch (``BATCH`` messages): it loads
the batch's rows, sets \\Seen, then writes either one ``FetchLines`` holding
the lines of the whole batch (a plan of index data only: what clients ask on
opening a folder, thousands of lines made without a response object each) or
one ``Fetch`` per message (message data: literals pass through uncopied).

Rows without ENVELOPE/BODYSTRUCTURE come from one scan of the folder when most
of it is asked for (FETCH 1:*), else by UID per batch, so that a client fetching
one message at a time (mbsync) costs O(1) per command; a single message's row
and bytes come in one store call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Final, cast

from mailserver.imap import commands as c
from mailserver.imap import responses as r
from mailserver.imap import sections
from mailserver.imap.core import SessionCore
from mailserver.imap.errors import UserError
from mailserver.imap.responses import FetchItem, Literal, Response
from mailserver.imap.selected import Mailbox
from storage.api import FlagMode, MailStore, MessageDetail, MessageInfo, ModSeq, Uid
from storage.imapwire import envelope_wire

BATCH: Final = 256
"""Messages whose rows are loaded (and, index data only, whose lines are written) at once."""

ItemWriter = Callable[[MessageInfo, MessageDetail | None, bytes], FetchItem]
"""One attribute's wire form for one message: (index row, detail row, message bytes)."""
IndexWriter = Callable[[MessageInfo, MessageDetail | None, bytes], bytes]
"""An ``ItemWriter`` of index data (no literal)."""

_INDEX_ATTS: Final = frozenset(
    {"UID", "FLAGS", "MODSEQ", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE"}
)
"""Attributes the store's rows answer (no message file read)."""
_STRUCTURE_ATTS: Final = frozenset({"BODYSTRUCTURE", "BODY"})
_BODY_READS: Final = frozenset({"BODY", "RFC822", "RFC822.TEXT", "BINARY"})


@dataclass(frozen=True, slots=True)
class FetchPlan:
    """What one FETCH command needs (see the module docstring)."""

    atts: tuple[c.FetchAtt, ...]
    details: bool
    """Detail rows are needed (ENVELOPE, BODYSTRUCTURE, BODY)."""
    data: bool
    """Message files are needed (sections, RFC822, BINARY)."""
    reads_body: bool
    """A person reading: a body section without PEEK (RFC 9051 section 6.4.5, the
    fetch that sets \\Seen), whether or not it may set it here."""
    sets_seen: bool
    index_only: bool
    """Index data only: the batch's lines are written at once (``FetchLines``)."""
    flags_asked: bool
    changed_since: int | None
    condstore: bool
    """The command turns CONDSTORE on (RFC 7162 section 3.1)."""

    @classmethod
    def of(cls, cmd: c.Fetch, mb: Mailbox) -> FetchPlan:
        atts = list(cmd.attributes)
        names = {a.name for a in atts}
        condstore = cmd.changed_since is not None or "MODSEQ" in names
        if condstore and "MODSEQ" not in names:
            atts.append(c.FetchAtt("MODSEQ"))
        if cmd.uid and "UID" not in names:
            atts.insert(0, c.FetchAtt("UID"))
        details = bool(names & {"ENVELOPE", "BODYSTRUCTURE"}) or any(
            a.name == "BODY" and a.section is None for a in atts
        )
        data = any(a.name not in _INDEX_ATTS and not (a.name == "BODY" and a.section is None) for a in atts)
        reads_body = any(a.name in _BODY_READS and (a.section is not None or a.name != "BODY") for a in atts)
        return cls(
            atts=tuple(atts),
            details=details,
            data=data,
            reads_body=reads_body,
            sets_seen=reads_body and not mb.readonly and "s" in mb.target.rights,
            index_only=not data and names.isdisjoint(_STRUCTURE_ATTS),
            flags_asked="FLAGS" in names,
            changed_since=cmd.changed_since,
            condstore=condstore,
        )


def writers(atts: Sequence[c.FetchAtt], mb: Mailbox, *, utf8: bool) -> list[ItemWriter]:
    """One ``ItemWriter`` per attribute, in the order asked."""
    return [_writer(att, mb, utf8) for att in atts]


def _writer(att: c.FetchAtt, mb: Mailbox, utf8: bool) -> ItemWriter:
    match att.name:
        case "UID":
            return r.uid_item
        case "FLAGS":
            flags_item, flag_names = r.flags_item, mb.flag_names
            return lambda info, _d, _b: flags_item(flag_names(info))
        case "MODSEQ":
            return r.modseq_item
        case "INTERNALDATE":
            return r.internaldate_item
        case "RFC822.SIZE":
            return r.size_item
        case "ENVELOPE":
            return lambda _i, detail, _b: b"ENVELOPE " + envelope_bytes(detail, utf8)
        case "BODYSTRUCTURE" | "BODY" if att.section is None:
            extended = att.name == "BODYSTRUCTURE"
            return lambda _i, detail, _b: r.value_item(
                att.name, r.body_structure(_detail(detail).body, extended=extended, utf8=utf8)
            )
        case "RFC822":
            return lambda _i, _d, data: (b"RFC822", Literal(data))
        case "RFC822.HEADER" | "RFC822.TEXT":
            label, part = att.name.encode(), att.name.split(".")[1]
            return lambda _i, _d, data: (label, Literal(sections.extract(data, (), part)))
    return _section_writer(att)


def _section_writer(att: c.FetchAtt) -> ItemWriter:
    """BODY[section]<partial>, BINARY[part]<partial> and BINARY.SIZE[part]."""
    section = att.section or c.Section()
    label = section.to_bytes().decode("utf-8")
    if att.name in ("BINARY", "BINARY.PEEK", "BINARY.SIZE"):

        def binary(_i: MessageInfo, _d: MessageDetail | None, data: bytes) -> FetchItem:
            decoded = sections.decode_binary(data, section.part)
            if decoded is None:
                raise UserError("Unknown Content-Transfer-Encoding", "UNKNOWN-CTE")
            if att.name == "BINARY.SIZE":
                return r.value_item("BINARY.SIZE" + label, len(decoded))
            return _partial("BINARY" + label, decoded, att.partial, binary=True)

        return binary
    return lambda _i, _d, data: _partial(
        "BODY" + label,
        sections.extract(data, section.part, section.specifier, section.fields),
        att.partial,
        binary=False,
    )


def _partial(label: str, content: bytes, partial: tuple[int, int] | None, *, binary: bool) -> FetchItem:
    if partial is not None:
        origin, length = partial
        content = content[origin : origin + length]
        label += f"<{origin}>"
    return (label.encode(), Literal(content, binary))


def _detail(detail: MessageDetail | None) -> MessageDetail:
    assert detail is not None  # noqa: S101 - loaded when the plan needs details
    return detail


def envelope_bytes(detail: MessageDetail | None, utf8: bool) -> bytes:
    """ENVELOPE's value: the wire form made at delivery (``storage.imapwire``) when
    the client takes RFC 2047 words, else made from the stored JSON."""
    assert detail is not None  # noqa: S101 - loaded when the plan needs details
    if detail.envelope_wire is not None and not utf8:
        return detail.envelope_wire
    if detail.envelope_json is not None:
        return envelope_wire(detail.envelope_json, utf8)
    return r.value_bytes(r.envelope(detail.envelope, utf8))


class FetchRun:
    """One FETCH carried out over the selected folder (see the module docstring)."""

    def __init__(self, store: MailStore, mb: Mailbox, plan: FetchPlan, items: list[ItemWriter]) -> None:
        self.store = store
        self.mb = mb
        self.plan = plan
        self.items = items
        self.account_id, self.folder_id = mb.target.account_id, mb.folder.id
        self.read_one = False
        """A message's response was sent (with ``plan.reads_body``: a check of the mailbox)."""
        self.whole_folder = False
        self.infos: dict[int, MessageInfo] = {}

    async def responses(self, pairs: list[tuple[int, int]]) -> AsyncIterator[Response]:
        """The FETCH responses of the (seq, uid) pairs, batch by batch."""
        plan = self.plan
        self.whole_folder = not plan.details and 2 * len(pairs) > len(self.mb.uids)
        if self.whole_folder:
            wanted = {u for _, u in pairs}
            rows = await self.store.list_messages(self.account_id, self.folder_id)
            self.infos = {i.uid: i for i in rows if i.uid in wanted}
        for start in range(0, len(pairs), BATCH):
            batch = pairs[start : start + BATCH]
            details, prefetched = await self._load(batch)
            newly_seen = await self._set_seen(batch) if plan.sets_seen else set()
            if plan.index_only:
                lines = self._lines(batch, details)
                if lines:
                    yield r.FetchLines(lines)
                continue
            async for resp in self._messages(batch, details, prefetched, newly_seen):
                yield resp

    async def _load(self, batch: list[tuple[int, int]]) -> tuple[dict[int, MessageDetail], dict[int, bytes]]:
        """The batch's rows into ``infos``; its detail rows and any bytes read with them."""
        plan, infos = self.plan, self.infos
        details: dict[int, MessageDetail] = {}
        prefetched: dict[int, bytes] = {}
        uids = [Uid(u) for _, u in batch]
        if plan.data and len(batch) == 1 and not plan.details and not self.whole_folder:
            # One message (mbsync fetches them one per command): its row and its
            # bytes in one store call.
            try:
                info, prefetched[uids[0]] = await self.store.read_with_info(
                    self.account_id, self.folder_id, uids[0]
                )
                infos[info.uid] = info
            except KeyError:
                pass  # expunged by another session meanwhile
        elif not plan.details and not self.whole_folder:
            for i in await self.store.get_infos(self.account_id, self.folder_id, uids):
                infos[i.uid] = i
        if plan.details:
            for d in await self.store.get_details(self.account_id, self.folder_id, uids):
                details[d.info.uid] = d
                infos[d.info.uid] = d.info
        return details, prefetched

    async def _set_seen(self, batch: list[tuple[int, int]]) -> set[int]:
        """Set \\Seen on the batch's unseen messages; the UIDs it was set on."""
        mb, infos = self.mb, self.infos
        unseen = [Uid(u) for _, u in batch if u in infos and "\\Seen" not in infos[u].flags]
        if not unseen:
            return set()
        before = mb.watch.version if mb.watch is not None else 0
        update = await self.store.store_flags(
            self.account_id, self.folder_id, unseen, ["\\Seen"], FlagMode.ADD
        )
        for info in update.changed:
            infos[info.uid] = info
            mb.reported[info.uid] = info.modseq
        mb.own_change(before, update)
        return {info.uid for info in update.changed}

    def _wanted(self, uid: int) -> MessageInfo | None:
        """The message's row, unless it was expunged meanwhile or CHANGEDSINCE leaves it out."""
        info = self.infos.get(uid)
        since = self.plan.changed_since
        if info is None or (since is not None and info.modseq <= since):
            return None
        return info

    def _lines(self, batch: list[tuple[int, int]], details: dict[int, MessageDetail]) -> bytes:
        # An index-only plan has no literal: each of its writers gives bytes. The
        # loop is _wanted inlined, with locals: it runs once per message of a folder.
        items = cast(list[IndexWriter], self.items)
        infos, since, fetch_line = self.infos, self.plan.changed_since, r.fetch_line
        lines: list[bytes] = []
        for seq, uid in batch:
            info = infos.get(uid)
            if info is None or (since is not None and info.modseq <= since):
                continue
            detail = details.get(uid)
            lines.append(fetch_line(seq, [write(info, detail, b"") for write in items]))
        return b"".join(lines)

    async def _messages(
        self,
        batch: list[tuple[int, int]],
        details: dict[int, MessageDetail],
        prefetched: dict[int, bytes],
        newly_seen: set[int],
    ) -> AsyncIterator[Response]:
        for seq, uid in batch:
            info = self._wanted(uid)
            if info is None:
                continue
            data = prefetched.get(uid, b"")
            if self.plan.data and uid not in prefetched:
                try:
                    data = await self.store.read_message(self.account_id, self.folder_id, Uid(uid))
                except KeyError:
                    continue
            detail = details.get(uid)
            items = [write(info, detail, data) for write in self.items]
            if uid in newly_seen and not self.plan.flags_asked:
                # RFC 9051 section 6.4.5: report the \Seen the fetch just set.
                items.append(r.flags_item(self.mb.flag_names(info)))
            self.read_one = True
            yield r.fetch(seq, items)


class FetchCommand(SessionCore):
    """The FETCH handler of ``Session``."""

    async def _fetch(self, tag: str, cmd: c.Fetch) -> AsyncIterator[Response]:
        mb = self._selected()
        plan = FetchPlan.of(cmd, mb)
        if plan.condstore:
            self.enabled |= {"CONDSTORE"}
        pairs = mb.resolve(cmd.seqset, cmd.uid)
        if cmd.vanished and cmd.changed_since is not None and "QRESYNC" in self.enabled:
            # RFC 7162 section 3.2.6: VANISHED (EARLIER) for the set's expunged UIDs.
            changes = await self.store.changes_since(
                mb.target.account_id, mb.folder.id, ModSeq(cmd.changed_since)
            )
            largest = max(mb.uids[-1] if mb.uids else 0, max(changes.vanished, default=0))
            gone = [u for u in changes.vanished if cmd.seqset.contains(u, largest)]
            if gone:
                yield r.vanished(gone, earlier=True)
        run = FetchRun(self.store, mb, plan, writers(plan.atts, mb, utf8=self._utf8))
        async for resp in run.responses(pairs):
            yield resp
        if plan.reads_body and run.read_one:
            await self._attention(mb.target)
        yield r.ok(tag, "FETCH completed")
