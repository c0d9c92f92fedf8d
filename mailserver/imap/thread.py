"""THREAD (RFC 5256 section 3): ORDEREDSUBJECT and REFERENCES.

Theory of operation
-------------------
The search criteria select the messages (``search.py``); their fields come from
the cached envelopes (``sort.load_fields``). REFERENCES also needs the
References: field, which the store does not cache: it is read from the header
sections of the matching messages only (``MailStore.read_headers``, one
worker-thread hop, no bodies), then kept with the message's cached ``Fields``.

A thread is a tree of ``Node``s: a message (its UID) or a dummy (``uid`` is
None) standing for a message that is referred to but not in the set. Both
algorithms give a list of root nodes, which ``thread_list`` writes as RFC 5256
section 4's ``thread-list``s. Hostile References chains can make trees
thousands deep, so every walk here uses an explicit stack, never recursion.

REFERENCES follows the six steps of section 3 (the JWZ algorithm):

1. link the messages by References (else the first In-Reply-To id): each id the
   parent of the next, no link that would make a loop, no relink of a message
   that has a parent; then the message under its last reference (relinking it);
2-3. the parentless containers are the roots;
4. dummies without children go, dummies with children give them to their parent
   (at the root only when there is exactly one child);
5. roots with the same base subject are gathered (a dummy above them, or the
   reply under the original);
6. siblings are ordered by sent date (a dummy by its first child's), ties by
   sequence number.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import Final

from mailserver.imap import commands as c
from mailserver.imap import responses as r
from mailserver.imap.basesubject import sent_date, subject_info
from mailserver.imap.collate import casemap
from mailserver.imap.responses import Response
from mailserver.imap.search import SearchCommand
from mailserver.imap.sort import Fields, load_fields
from storage.api import Uid

__all__ = ["Node", "ThreadCommand", "ordered_subject", "references", "thread_list"]

_MSG_ID: Final = re.compile(r"<[^<>\s]+>")
_REFERENCES: Final = re.compile(rb"^references:[ \t]*((?:.*(?:\r?\n[ \t].*)*))", re.IGNORECASE | re.MULTILINE)


class Node:
    """A container of the threading algorithms: a message or a dummy."""

    __slots__ = ("children", "date", "order", "parent", "uid")

    def __init__(self, uid: int | None = None, date: datetime | None = None, order: int = 0) -> None:
        self.uid = uid
        self.date = date
        """Sent date (RFC 5256 section 2.2); for a dummy, set from its first child in step 6."""
        self.order = order
        """Position in the mailbox: the tie break of equal dates."""
        self.parent: Node | None = None
        self.children: list[Node] = []

    def add(self, child: Node) -> None:
        if child.parent is not None:
            child.parent.children.remove(child)
        child.parent = self
        self.children.append(child)

    def reaches(self, other: Node) -> bool:
        """``other`` is this node or one of its ancestors (a link would loop)."""
        node: Node | None = self
        while node is not None:
            if node is other:
                return True
            node = node.parent
        return False


def _ids(text: str | None) -> list[str]:
    return _MSG_ID.findall(text or "")


def references_of(header: bytes) -> str | None:
    """The References: field of a header section, unfolded (RFC 5322 section 3.2.2)."""
    m = _REFERENCES.search(header)
    if m is None:
        return None
    return re.sub(r"\r?\n[ \t]", " ", m.group(1).decode("latin-1"))


def ordered_subject(fields: list[Fields]) -> list[Node]:
    """ORDEREDSUBJECT: messages grouped by base subject, each group's first by
    sent date the parent of the others; groups ordered by their first's date."""
    messages = sorted(
        (_node(f, i) for i, f in enumerate(fields)),
        key=lambda n: n.date or datetime.min,
    )
    subjects = {f.uid: casemap(subject_info(f.subject)[0]) for f in fields}
    groups: dict[bytes, Node] = {}
    roots: list[Node] = []
    for node in messages:  # in date order: the first of a subject is its parent
        assert node.uid is not None  # noqa: S101 - message nodes only
        subject = subjects[node.uid]
        parent = groups.get(subject)
        if parent is None:
            groups[subject] = node
            roots.append(node)
        else:
            parent.add(node)
    return roots


def _node(f: Fields, order: int) -> Node:
    return Node(f.uid, sent_date(f.date, f.internal_date), order)


def references(fields: list[Fields], refs: dict[int, str | None]) -> list[Node]:
    """REFERENCES over ``fields`` (in mailbox order); ``refs`` holds each UID's
    References: field (missing: none)."""
    table: dict[str, Node] = {}
    for i, f in enumerate(fields):
        date = sent_date(f.date, f.internal_date)
        own = _ids(f.message_id)
        # Step 1.A: a missing, invalid or duplicate Message-ID gets a unique one
        # (only the first message of the mailbox keeps a shared id).
        key = own[0] if own else f"\0{f.uid}"
        node = table.get(key)
        if node is not None and node.uid is None:
            node.uid, node.date, node.order = f.uid, date, i  # the dummy of an earlier reference
        else:
            if node is not None:
                key = f"\0{f.uid}"
            node = table[key] = Node(f.uid, date, i)
        _link(table, _ids(refs.get(f.uid)) or _ids(f.in_reply_to)[:1], node)
    roots = _prune([n for n in table.values() if n.parent is None])
    roots = _gather(roots, {f.uid: subject_info(f.subject) for f in fields})
    return _order(roots)


def _link(table: dict[str, Node], chain: list[str], node: Node) -> None:
    """Step 1.A (references linked in order) and 1.B (the message under the last)."""
    previous: Node | None = None
    for ref in chain:
        container = table.get(ref)
        if container is None:
            container = table[ref] = Node()
        # A container keeps the parent it has; no link may close a loop.
        if previous is not None and container.parent is None and not previous.reaches(container):
            previous.add(container)
        previous = container
    if previous is None:
        if node.parent is not None:  # 1.B: no references, no parent
            node.parent.children.remove(node)
            node.parent = None
    elif not previous.reaches(node):
        previous.add(node)  # 1.B: relinked under its last reference


def _prune(roots: list[Node]) -> list[Node]:
    """Step 4: dummies without children go; a dummy's children move up to its
    place, except to the root level unless it has one child."""
    result: list[Node] = []
    stack: list[tuple[Node | None, list[Node]]] = [(None, roots)]
    while stack:
        parent, level = stack.pop()
        kept: list[Node] = []
        queue = deque(level)
        while queue:
            node = queue.popleft()
            if node.uid is None and not node.children:
                continue
            if node.uid is None and (parent is not None or len(node.children) == 1):
                queue.extendleft(reversed(node.children))
                node.children = []
                continue
            node.parent = parent
            kept.append(node)
            stack.append((node, node.children))
        if parent is None:
            result = kept
        else:
            parent.children = kept
    return result


def _subject(node: Node, subjects: dict[int, tuple[str, bool]]) -> tuple[bytes, bool]:
    """The thread subject of a root (its first child's for a dummy) and whether it is a reply."""
    source = node if node.uid is not None or not node.children else node.children[0]
    if source.uid is None:
        return b"", False
    base, reply = subjects[source.uid]
    return casemap(base), reply


def _gather(roots: list[Node], subjects: dict[int, tuple[str, bool]]) -> list[Node]:
    """Step 5: roots with the same (non-empty) base subject become one thread."""
    table: dict[bytes, Node] = {}
    for node in roots:  # 5.B: prefer a dummy, then a message that is not a reply
        subject, reply = _subject(node, subjects)
        if not subject:
            continue
        old = table.get(subject)
        if (
            old is None
            or (node.uid is None and old.uid is not None)
            or (old.uid is not None and node.uid is not None and _subject(old, subjects)[1] and not reply)
        ):
            table[subject] = node
    out: list[Node] = []
    place: dict[int, int] = {}
    """id(root) -> its index in ``out``."""
    for node in roots:  # 5.C
        subject, reply = _subject(node, subjects)
        other = table.get(subject) if subject else None
        if other is None or other is node:
            if id(node) not in place:
                place[id(node)] = len(out)
                out.append(node)
            continue
        if other.uid is None and node.uid is None:
            for child in list(node.children):
                other.add(child)
        elif other.uid is None:
            other.add(node)
        elif not _subject(other, subjects)[1] and reply:
            other.add(node)
        else:  # both replies or neither: siblings under a new dummy
            dummy = Node()
            dummy.add(other)
            dummy.add(node)
            table[subject] = dummy
            if id(other) in place:
                out[place[id(other)]] = dummy
            else:
                place[id(other)] = len(out)
                out.append(dummy)
            place[id(dummy)] = place[id(other)]
    return out


def _order(roots: list[Node]) -> list[Node]:
    """Step 6: siblings by sent date (a dummy by its first child's), then mailbox order."""
    post: list[Node] = []
    stack = list(roots)
    while stack:  # children before their parents
        node = stack.pop()
        post.append(node)
        stack.extend(node.children)
    for node in reversed(post):
        node.children.sort(key=_date_key)
        if node.uid is None and node.children:
            first = node.children[0]
            node.date, node.order = first.date, first.order
    return sorted(roots, key=_date_key)


def _date_key(node: Node) -> tuple[datetime, int]:
    return node.date or datetime.min, node.order


def thread_list(roots: Iterable[Node], number: dict[int, int] | None = None) -> str:
    """RFC 5256 section 4: ``(2)(3 6 (4 23)(44 7 96))``; ``number`` maps UIDs to
    sequence numbers (None: UIDs)."""
    out: list[str] = []
    # Items: a node to open as "(", or a string to write.
    stack: list[Node | str] = []
    for root in reversed(list(roots)):
        stack += [")", root, "("]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        node: Node = item
        # thread-members: a chain of single children written in a row.
        parts: list[str] = []
        while True:
            if node.uid is not None:
                parts.append(str(node.uid if number is None else number.get(node.uid, 0)))
            if len(node.children) == 1 and node.uid is not None:
                node = node.children[0]
                continue
            break
        out.append(" ".join(parts))
        if node.children:
            # thread-nested: each child its own parenthesised thread-list.
            if parts:
                out.append(" ")
            for child in reversed(node.children):
                stack += [")", child, "("]
    return "".join(out)


class ThreadCommand(SearchCommand):
    """The THREAD handler of ``Session``."""

    async def _thread(self, tag: str, cmd: c.Thread) -> AsyncIterator[Response]:
        mb = self._selected()
        matched = await self._matching(mb, cmd.key, cmd.charset)
        fields = await load_fields(self.store, mb, matched, self.folders)
        if cmd.algorithm == "ORDEREDSUBJECT":
            roots = ordered_subject(fields)
        else:
            by_uid = {f.uid: f for f in fields if not f.references_read}
            if by_uid:  # kept with the cached fields: read once per message
                uids = [Uid(u) for u in by_uid]
                for uid, head in await self.store.read_headers(mb.target.account_id, mb.folder.id, uids):
                    by_uid[uid].references, by_uid[uid].references_read = references_of(head), True
            roots = references(fields, {f.uid: f.references for f in fields})
        number = None if cmd.uid else {u: s for u in matched if (s := mb.seq(u)) is not None}
        text = thread_list(roots, number).encode("ascii")
        # thread-data = "THREAD" [SP 1*thread-list] (RFC 5256 section 5)
        yield r.Untagged(("THREAD", r.Raw(text)) if text else ("THREAD",))
        yield r.ok(tag, "THREAD completed")
