"""SORT (RFC 5256 sections 2 and 3) with DISPLAYFROM/DISPLAYTO (RFC 5957) and
ESORT (RFC 5267 section 3).

Theory of operation
-------------------
The search criteria after the charset select the messages with the SEARCH
machinery (``search.py``: SQL push-down, then the scan). What the sort keys
compare comes from the store's cached envelope (``MailStore.get_details``, the
rows FETCH ENVELOPE reads): the Date: and Subject: fields, the first From, To and
Cc addresses, with INTERNALDATE and RFC822.SIZE from the index row. No message
file is opened. ``Fields`` holds one message's; ``load_fields`` reads them in
batches, taking the cached JSON apart without building ``Envelope`` objects.
A message's envelope never changes under its UID, so the service keeps the
``Fields`` (and the sort keys computed from them) per folder in its
``FolderCache``, least recently sorted folders dropped beyond ``CACHE_LIMIT``
messages: sorting again, as a client does at every folder open (webmail over a
new connection each time), reads and decodes only new messages.

Ordering is a sequence of stable sorts, the last criterion first and the
message's position (sequence order) before them all, which is the final tie
break of RFC 5256 section 3. ``REVERSE`` reverses its own criterion only;
Python's reversed sort keeps equal elements in their order, so ties stay in
sequence order under REVERSE as well (ARRIVAL's own key ends with the UID, so
REVERSE ARRIVAL is newest first even within one second). Strings compare with ``collate.sort_key``
(Vietnamese alphabetical order, then i;unicode-casemap).

ESORT: ``SORT RETURN (...)`` answers with ``* ESEARCH`` (RFC 5267 section 3.2):
MIN and MAX are the first and last message in sort order, ALL lists every
match in sort order (ascending runs compressed to ``a:b``), COUNT their number.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from mailserver.imap import commands as c
from mailserver.imap import responses as r
from mailserver.imap.basesubject import base_subject, sent_date
from mailserver.imap.collate import sort_key
from mailserver.imap.responses import Response, Value
from mailserver.imap.search import SearchCommand
from mailserver.imap.selected import FolderCache, Mailbox
from storage.api import MailStore, Uid

BATCH: Final = 2000
"""Messages whose detail rows are read per store call."""

Address = tuple[str | None, str | None, str | None]
"""(display name, mailbox, host) of an envelope address."""


@dataclass(slots=True)
class Fields:
    """What SORT and THREAD compare of one message."""

    uid: int
    internal_date: datetime
    size: int
    date: str | None
    subject: str | None
    from_: Address | None
    to: Address | None
    cc: Address | None
    in_reply_to: str | None
    message_id: str | None
    keys: dict[str, Any] = field(default_factory=dict)
    """Sort keys computed so far, by sort-key name (kept with the fields in the cache)."""
    references: str | None = None
    """The References: field, once THREAD=REFERENCES has read it (``references_read``)."""
    references_read: bool = False


def _first(addresses: Any) -> Address | None:
    """The first mailbox of an envelope address list, group markers skipped
    (RFC 9051 section 7.5.2: a group's markers have a NIL host)."""
    for name, _route, mailbox, host in addresses or ():
        if host is not None:
            return name, mailbox, host
    return None


def _from_json(uid: int, internal_date: datetime, size: int, cached: str) -> Fields:
    env = json.loads(cached)
    return Fields(
        uid,
        internal_date,
        size,
        env[0],
        env[1],
        _first(env[2]),
        _first(env[5]),
        _first(env[6]),
        env[8],
        env[9],
    )


CACHE_LIMIT: Final = 20_000
"""Messages whose ``Fields`` one service keeps, over all folders (measured: about
2.5 kB each with their keys, so some 50 MB); the folder being sorted keeps its
own whatever its size, until another folder is sorted."""


def _cached(folders: FolderCache, mb: Mailbox) -> dict[int, Fields]:
    """The folder's entry of the service's SORT cache (made or refreshed), least
    recently used folders dropped while the cache holds over ``CACHE_LIMIT``."""
    cache = folders.sort_fields
    entry = cache.get(mb.folder.id)
    if entry is None or entry[0] != mb.folder.uidvalidity:
        entry = cache[mb.folder.id] = (mb.folder.uidvalidity, {})
    cache.move_to_end(mb.folder.id)
    while len(cache) > 1 and sum(len(e[1]) for e in cache.values()) > CACHE_LIMIT:
        cache.popitem(last=False)
    return entry[1]


async def load_fields(
    store: MailStore, mb: Mailbox, uids: list[int], folders: FolderCache | None = None
) -> list[Fields]:
    """``Fields`` of the existing ``uids``, in UID order: from ``folders``' cache, the
    rest from the store's cached envelopes (then kept in ``folders``)."""
    known = _cached(folders, mb) if folders is not None else {}
    missing = [u for u in uids if u not in known]
    for read in await _read_fields(store, mb, missing):
        known[read.uid] = read
    if folders is not None:
        _cached(folders, mb)  # trimmed with the new entries counted
    return [known[u] for u in uids if u in known]


async def _read_fields(store: MailStore, mb: Mailbox, uids: list[int]) -> list[Fields]:
    out: list[Fields] = []
    for start in range(0, len(uids), BATCH):
        batch = [Uid(u) for u in uids[start : start + BATCH]]
        for d in await store.get_details(mb.target.account_id, mb.folder.id, batch):
            info = d.info
            if d.envelope_json is not None:
                out.append(_from_json(info.uid, info.internal_date, info.size, d.envelope_json))
                continue
            env = d.envelope

            def first(addrs: Iterable[Any]) -> Address | None:
                return next(((a.name, a.mailbox, a.host) for a in addrs if a.host is not None), None)

            out.append(
                Fields(
                    info.uid,
                    info.internal_date,
                    info.size,
                    env.date,
                    env.subject,
                    first(env.from_),
                    first(env.to),
                    first(env.cc),
                    env.in_reply_to,
                    env.message_id,
                )
            )
    return out


def _mailbox(addr: Address | None) -> tuple[str, bytes]:
    # RFC 5256 section 3: FROM, TO, CC sort on addr-mailbox of the first address.
    return sort_key(addr[1] or "" if addr is not None else "")


def _display(addr: Address | None) -> tuple[str, bytes]:
    # RFC 5957 section 3: the display name when present and not empty, else the addr-spec.
    if addr is None:
        return sort_key("")
    name, mailbox, host = addr
    if name and name.strip():
        return sort_key(name.strip())
    return sort_key(f"{mailbox or ''}@{host or ''}")


KEYS: Final[dict[str, Callable[[Fields], Any]]] = {
    # Messages with one INTERNALDATE (a second's resolution) arrived in UID order:
    # REVERSE ARRIVAL then lists the newest first, as clients showing it expect.
    "ARRIVAL": lambda f: (f.internal_date, f.uid),
    "DATE": lambda f: sent_date(f.date, f.internal_date),
    "SIZE": lambda f: f.size,
    "SUBJECT": lambda f: sort_key(base_subject(f.subject)),
    "FROM": lambda f: _mailbox(f.from_),
    "TO": lambda f: _mailbox(f.to),
    "CC": lambda f: _mailbox(f.cc),
    "DISPLAYFROM": lambda f: _display(f.from_),
    "DISPLAYTO": lambda f: _display(f.to),
}
"""What each sort-key compares (RFC 5256 section 3, RFC 5957 section 3)."""


def sort_messages(fields: list[Fields], criteria: Iterable[c.SortCriterion]) -> list[int]:
    """UIDs of ``fields`` (given in UID order) in the order ``criteria`` ask."""
    ordered = list(fields)
    for criterion in reversed(list(criteria)):
        ordered.sort(key=_memo(criterion.key), reverse=criterion.reverse)
    return [f.uid for f in ordered]


def _memo(name: str) -> Callable[[Fields], Any]:
    """``KEYS[name]``, each message's key computed once and kept in its ``Fields``."""
    compute = KEYS[name]

    def key(f: Fields) -> Any:
        value = f.keys.get(name)
        if value is None:
            value = f.keys[name] = compute(f)
        return value

    return key


def ordered_set(numbers: list[int]) -> str:
    """A sequence-set listing ``numbers`` in the order given (RFC 5267 section 3.2:
    ESORT's ALL keeps the sort order); only ascending runs become ``a:b``."""
    out: list[str] = []
    i = 0
    while i < len(numbers):
        j = i
        while j + 1 < len(numbers) and numbers[j + 1] == numbers[j] + 1:
            j += 1
        out.append(str(numbers[i]) if i == j else f"{numbers[i]}:{numbers[j]}")
        i = j + 1
    return ",".join(out)


class SortCommand(SearchCommand):
    """The SORT handler of ``Session``."""

    async def _sort(self, tag: str, cmd: c.Sort) -> AsyncIterator[Response]:
        mb = self._selected()
        matched = await self._matching(mb, cmd.key, cmd.charset)
        fields = await load_fields(self.store, mb, matched, self.folders)
        uids = sort_messages(fields, cmd.criteria)
        modseq = await self._modseq(mb, cmd.key, uids)
        numbers = uids if cmd.uid else [s for s in (mb.seq(u) for u in uids) if s is not None]
        if cmd.return_options is not None:
            opts = cmd.return_options or ("ALL",)
            results: list[tuple[str, Value]] = []
            if numbers:
                if "MIN" in opts:
                    results.append(("MIN", numbers[0]))
                if "MAX" in opts:
                    results.append(("MAX", numbers[-1]))
                if "ALL" in opts:
                    results.append(("ALL", ordered_set(numbers)))
            if "COUNT" in opts:
                results.append(("COUNT", len(numbers)))
            if modseq is not None:
                results.append(("MODSEQ", modseq))
            yield r.esearch(tag, cmd.uid, results)
        else:
            tail: tuple[Value, ...] = (("MODSEQ", modseq),) if modseq is not None else ()
            yield r.Untagged(("SORT", *numbers, *tail))
        yield r.ok(tag, "SORT completed")
