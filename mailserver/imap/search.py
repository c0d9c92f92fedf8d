"""SEARCH (RFC 9051 section 6.4.4) with ESEARCH (RFC 4731), SEARCHRES (RFC 5182)
and MODSEQ (RFC 7162 section 3.1.5); the search criteria of SORT and THREAD
(RFC 5256) are evaluated here too (``_matching``).

A search key is evaluated by ``Searcher`` over the UIDs of the selected folder:
what SQL can decide (flags, dates, sizes, UID sets, a few headers) is pushed
down into one ``store.search`` query per AND; the rest is evaluated here, cheap
in-memory keys first, reading message files last and only for the messages
still in the running. ``imap.max_search_keys`` bounds the keys of one command
and ``imap.search_time_budget`` the time spent reading files (``NO [LIMIT]``).

TEXT, BODY, SUBJECT, FROM, TO, CC and BCC are answered from the full-text index
(``MailStore.text_search``; words and prefixes, folded as ``storage.textfold``
folds, like Dovecot's FTS) when ``search.index`` is on; messages not indexed
yet and strings the index cannot answer (under three letters, no word at all)
are scanned (``textsearch``, folded the same way), so no result is ever missing.
With ``search.exact_diacritics`` a string typed with diacritics matches only
those: exact index words, the SQL header columns, an exact scan.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

from mailserver.imap import commands as c
from mailserver.imap import responses as r
from mailserver.imap import textsearch
from mailserver.imap.core import SessionCore
from mailserver.imap.errors import UserError
from mailserver.imap.responses import Response, Value
from mailserver.imap.selected import Mailbox
from storage.api import MailStore, ModSeq, SearchQuery, Uid
from storage.fulltext import indexable
from storage.textfold import has_marks

log = logging.getLogger("mailserver.imap.session")


class SearchBudgetError(Exception):
    """A SEARCH read messages for longer than ``imap.search_time_budget``."""


class SearchCommand(SessionCore):
    """The SEARCH handler of ``Session``."""

    async def _search(self, tag: str, cmd: c.Search) -> AsyncIterator[Response]:
        mb = self._selected()
        opts = cmd.return_options or ()
        if "SAVE" in opts:
            mb.saved = frozenset()  # RFC 5182 section 2.1: a failed SEARCH leaves "$" empty
        matched = await self._matching(mb, cmd.key, cmd.charset)
        modseq = await self._modseq(mb, cmd.key, matched)
        numbers = matched if cmd.uid else [s for s in (mb.seq(u) for u in matched) if s is not None]
        if "SAVE" in opts:
            # With MIN and/or MAX only those are kept (RFC 5182 section 2.4).
            kept = matched
            if "MIN" in opts or "MAX" in opts:
                kept = (matched[:1] if "MIN" in opts else []) + (matched[-1:] if "MAX" in opts else [])
            mb.saved = frozenset(kept)
            if set(opts) == {"SAVE"}:
                yield r.ok(tag, "SEARCH completed, result saved")  # no ESEARCH (section 2.1)
                return
        if cmd.return_options is not None or "IMAP4REV2" in self.enabled:
            opts = cmd.return_options or ("ALL",)
            results: list[tuple[str, Value]] = []
            if numbers:
                if "MIN" in opts:
                    results.append(("MIN", numbers[0]))
                if "MAX" in opts:
                    results.append(("MAX", numbers[-1]))
                if "ALL" in opts:
                    results.append(("ALL", r.seqset(numbers)))
            if "COUNT" in opts:
                results.append(("COUNT", len(numbers)))
            if modseq is not None:
                results.append(("MODSEQ", modseq))
            yield r.esearch(tag, cmd.uid, results)
        else:
            yield r.search(numbers, modseq)
        yield r.ok(tag, "SEARCH completed")


    async def _matching(self, mb: Mailbox, key: c.SearchKey, charset: str | None) -> list[int]:
        """UIDs matching ``key``, ascending (SEARCH, and SORT and THREAD's criteria)."""
        if charset is not None and charset not in ("UTF-8", "US-ASCII"):
            raise UserError("Unsupported charset", "BADCHARSET (UTF-8 US-ASCII)")
        if _key_count(key) - 1 > self.settings.max_search_keys:  # less the implicit AND
            raise UserError(f"Too many search keys (at most {self.settings.max_search_keys})", "LIMIT")
        searcher = Searcher(
            self.store,
            mb,
            self._clock,
            self._clock() + self.settings.search_time_budget,
            index=self.search_settings.index,
            exact_diacritics=self.search_settings.exact_diacritics,
        )
        try:
            return sorted(await searcher.eval(key, set(mb.uids)))
        except SearchBudgetError:
            log.info("imap %s: search over its time budget", self.connection_id)
            raise UserError(
                f"Search took too long (over {self.settings.search_time_budget:g} s): narrow it down", "LIMIT"
            ) from None

    async def _modseq(self, mb: Mailbox, key: c.SearchKey, matched: list[int]) -> int | None:
        """The highest MODSEQ of the matches when ``key`` uses MODSEQ (RFC 7162
        section 3.1.5, which also turns CONDSTORE on); else None."""
        if not _uses_modseq(key):
            return None
        self.enabled |= {"CONDSTORE"}
        if not matched:
            return None
        infos = await self.store.get_infos(mb.target.account_id, mb.folder.id, [Uid(u) for u in matched])
        return max((i.modseq for i in infos), default=None)


class Searcher:
    """One SEARCH's evaluation over the selected folder ``mb``."""

    def __init__(
        self,
        store: MailStore,
        mb: Mailbox,
        clock: Callable[[], float],
        deadline: float,
        *,
        index: bool = False,
        exact_diacritics: bool = False,
    ) -> None:
        self.store = store
        self.mb = mb
        self._clock = clock
        self._deadline = deadline
        self._index = index
        self._exact = exact_diacritics

    def _exact_for(self, value: str) -> bool:
        """Whether ``value`` must match with its diacritics (``search.exact_diacritics``)."""
        return self._exact and has_marks(value)

    def _index_field(self, key: c.SearchKey) -> tuple[str, str] | None:
        """(field, string) when the full-text index answers ``key``, else None."""
        if not self._index:
            return None
        match key:
            case c.TextKey(name, value) if indexable(value):
                return ("body" if name == "BODY" else "text"), value
            case c.HeaderKey(name, value) if name in _INDEX_HEADERS and value and not self._exact_for(value):
                return name, value
        return None

    async def _from_index(self, key: c.SearchKey, field: str, value: str, candidates: set[int]) -> set[int]:
        """Index hits among ``candidates``, plus a scan of those not indexed yet."""
        mb = self.mb
        hits = await self.store.text_search(
            mb.target.account_id, mb.folder.id, field, value, exact=self._exact_for(value)
        )
        found = candidates & hits.uids
        waiting = candidates & hits.unindexed
        return found | await self._scan(key, waiting) if waiting else found

    async def eval(self, key: c.SearchKey, candidates: set[int]) -> set[int]:
        """UIDs among ``candidates`` matching ``key``: what SQL can decide is asked of
        ``store.search``; the rest is evaluated here, reading files last and only
        for messages still in the running."""
        if not candidates:
            return candidates
        mb = self.mb
        match key:
            case c.And(keys):
                query: SearchQuery | None = None
                rest: list[c.SearchKey] = []
                for sub in keys:
                    q = self._pushdown(sub)
                    merged = _merge(query, q) if q is not None else None
                    if merged is not None:
                        query = merged
                    else:
                        rest.append(sub)
                if query is not None and query != SearchQuery():
                    candidates = candidates & set(
                        await self.store.search(mb.target.account_id, mb.folder.id, query)
                    )
                for sub in sorted(rest, key=_cost):
                    candidates = await self.eval(sub, candidates)
                return candidates
            case c.Or(left, right):
                a = await self.eval(left, candidates)
                return a | await self.eval(right, candidates - a)
            case c.Not(inner):
                return candidates - await self.eval(inner, candidates)
            case c.Simple("ALL"):
                return candidates
            case c.Simple("RECENT"):
                return candidates & mb.recent
            case c.Simple("OLD"):
                return candidates - mb.recent
            case c.Simple("NEW"):
                return await self.eval(c.And((c.Simple("RECENT"), c.Simple("UNSEEN"))), candidates)
            case c.SeqKey(seqset, uid) if seqset.saved or not uid:
                return candidates & {u for _, u in mb.resolve(seqset, uid)}
        indexed = self._index_field(key)
        if indexed is not None:
            return await self._from_index(key, *indexed, candidates)
        query = self._pushdown(key)
        if query is not None:
            return candidates & set(await self.store.search(mb.target.account_id, mb.folder.id, query))
        return await self._scan(key, candidates)

    def _pushdown(self, key: c.SearchKey) -> SearchQuery | None:
        """The SearchQuery equivalent to ``key``, or None if SQL cannot evaluate it."""
        match key:
            case c.Simple(name) if name in _FLAG_KEYS:
                flag, present = _FLAG_KEYS[name]
                return (
                    SearchQuery(flags_set=frozenset({flag}))
                    if present
                    else SearchQuery(flags_unset=frozenset({flag}))
                )
            case c.Keyword(flag, present) if flag.lower() != "\\recent":
                return (
                    SearchQuery(flags_set=frozenset({flag}))
                    if present
                    else SearchQuery(flags_unset=frozenset({flag}))
                )
            case c.DateKey("BEFORE", when):
                return SearchQuery(before=_midnight(when))
            case c.DateKey("SINCE", when):
                return SearchQuery(since=_midnight(when))
            case c.DateKey("ON", when):
                return SearchQuery(since=_midnight(when), before=_midnight(when + timedelta(days=1)))
            case c.SizeKey("LARGER", size):
                return SearchQuery(larger=min(size, _MAX_SIZE))
            case c.SizeKey("SMALLER", size):
                return SearchQuery(smaller=min(size, _MAX_SIZE))
            case c.HeaderKey(name, value) if value and name in _SQL_HEADERS:
                if self._index_field(key) is not None:
                    return None  # folded: the index answers it (``eval``)
                return SearchQuery(header_contains=((name, value),))
            case c.SeqKey(seqset, True) if not seqset.saved:
                mb = self.mb
                largest = mb.uids[-1] if mb.uids else 0
                return SearchQuery(uids=tuple(seqset.resolve(largest)))
            case c.ModSeqKey(modseq):
                return SearchQuery(modseq_above=ModSeq(max(modseq - 1, 0)))
        return None

    async def _scan(self, key: c.SearchKey, candidates: set[int]) -> set[int]:
        mb = self.mb
        out: set[int] = set()
        for uid in sorted(candidates):
            if self._clock() >= self._deadline:
                raise SearchBudgetError
            try:
                data = await self.store.read_message(mb.target.account_id, mb.folder.id, Uid(uid))
            except KeyError:
                continue
            match key:
                case c.TextKey("BODY", value):
                    hit = textsearch.body_contains(data, value, exact=self._exact_for(value))
                case c.TextKey(_, value):
                    hit = textsearch.text_contains(data, value, exact=self._exact_for(value))
                case c.HeaderKey(name, value):
                    hit = textsearch.header_contains(data, name, value, exact=self._exact_for(value))
                case c.DateKey(name, when):
                    sent = textsearch.sent_date(data)
                    hit = sent is not None and (
                        sent < when
                        if name == "SENTBEFORE"
                        else sent == when
                        if name == "SENTON"
                        else sent >= when
                    )
                case _:
                    hit = False
            if hit:
                out.add(uid)
        return out


_FLAG_KEYS: Final = {
    "ANSWERED": ("\\Answered", True),
    "DELETED": ("\\Deleted", True),
    "DRAFT": ("\\Draft", True),
    "FLAGGED": ("\\Flagged", True),
    "SEEN": ("\\Seen", True),
    "UNANSWERED": ("\\Answered", False),
    "UNDELETED": ("\\Deleted", False),
    "UNDRAFT": ("\\Draft", False),
    "UNFLAGGED": ("\\Flagged", False),
    "UNSEEN": ("\\Seen", False),
}

_SQL_HEADERS: Final = frozenset({"subject", "from", "to", "cc", "bcc", "message-id"})
_INDEX_HEADERS: Final = frozenset({"subject", "from", "to", "cc", "bcc"})
"""Header keys the full-text index answers (folded substrings of the decoded fields)."""


def _midnight(day: date) -> datetime:
    # RFC 9051 section 6.4.4: dates compare "disregarding time and timezone"; the
    # store keeps UTC, so day boundaries are UTC midnights.
    return datetime.combine(day, time(), UTC)


def _merge(a: SearchQuery | None, b: SearchQuery) -> SearchQuery | None:
    """AND two pushed-down queries into one, or None if they cannot share one query."""
    if a is None:
        return b
    if a.uids is not None and b.uids is not None:
        return None
    return replace(
        a,
        uids=a.uids if a.uids is not None else b.uids,
        flags_set=a.flags_set | b.flags_set,
        flags_unset=a.flags_unset | b.flags_unset,
        before=min((d for d in (a.before, b.before) if d is not None), default=None),
        since=max((d for d in (a.since, b.since) if d is not None), default=None),
        larger=max((n for n in (a.larger, b.larger) if n is not None), default=None),
        smaller=min((n for n in (a.smaller, b.smaller) if n is not None), default=None),
        header_contains=a.header_contains + b.header_contains,
        modseq_above=max((m for m in (a.modseq_above, b.modseq_above) if m is not None), default=None),
    )


_MAX_SIZE: Final = 2**53
"""Sizes in LARGER/SMALLER are number64 (RFC 9051); no message comes near 2**53
octets, and every store and database compares integers that large exactly."""


def _key_count(key: c.SearchKey) -> int:
    """Search keys in ``key``, each OR, NOT and parenthesised list counted too."""
    match key:
        case c.And(keys):
            return 1 + sum(_key_count(k) for k in keys)
        case c.Or(a, b):
            return 1 + _key_count(a) + _key_count(b)
        case c.Not(inner):
            return 1 + _key_count(inner)
    return 1


def _cost(key: c.SearchKey) -> int:
    """Order of evaluation inside an AND: cheap in-memory keys before file scans."""
    match key:
        case c.TextKey() | c.HeaderKey() | c.DateKey():
            return 2
        case c.Or() | c.Not() | c.And():
            return 1
    return 0


def _uses_modseq(key: c.SearchKey) -> bool:
    match key:
        case c.ModSeqKey():
            return True
        case c.And(keys):
            return any(_uses_modseq(k) for k in keys)
        case c.Or(a, b):
            return _uses_modseq(a) or _uses_modseq(b)
        case c.Not(inner):
            return _uses_modseq(inner)
    return False
