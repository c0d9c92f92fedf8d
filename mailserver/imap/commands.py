"""Typed IMAP commands: one frozen dataclass per command (RFC 9051 section 6).

Every command knows the session states it is valid in (``states``) and how to
write itself back onto the wire (``to_bytes(tag)``), which the property tests
use to check that parsing a serialized command gives back the same command.
UID variants are the same class with ``uid=True`` (RFC 9051 section 6.4.9).
Mailbox names are kept as sent (modified UTF-7 or UTF-8): the session decodes
them because the choice depends on whether UTF8=ACCEPT was enabled.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import ClassVar, Final

from mailserver.imap.grammar import MONTHS, astring, string


class State(enum.StrEnum):
    """Connection states of RFC 9051 section 3."""

    NOT_AUTHENTICATED = "not authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    LOGOUT = "logout"


ANY: Final = frozenset({State.NOT_AUTHENTICATED, State.AUTHENTICATED, State.SELECTED})
NOT_AUTH: Final = frozenset({State.NOT_AUTHENTICATED})
AUTH: Final = frozenset({State.AUTHENTICATED, State.SELECTED})
SELECTED: Final = frozenset({State.SELECTED})


# -- values ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SeqSet:
    """sequence-set (RFC 9051 section 9): ranges of numbers, ``None`` standing for ``*``.

    A single number ``n`` is the range ``(n, n)``; ranges keep the order they were
    written in (``4:2`` means the same as ``2:4``).
    """

    ranges: tuple[tuple[int | None, int | None], ...]
    saved: bool = False
    """``$``: the result the last ``SEARCH RETURN (SAVE)`` kept (RFC 5182); the
    session resolves it, ``ranges`` is then empty."""

    def to_bytes(self) -> bytes:
        if self.saved:
            return b"$"

        def num(n: int | None) -> str:
            return "*" if n is None else str(n)

        return ",".join(num(a) if a == b else f"{num(a)}:{num(b)}" for a, b in self.ranges).encode()

    def resolve(self, largest: int) -> list[tuple[int, int]]:
        """Concrete inclusive (low, high) ranges, ``*`` read as ``largest``."""
        out = []
        for a, b in self.ranges:
            lo = largest if a is None else a
            hi = largest if b is None else b
            out.append((min(lo, hi), max(lo, hi)))
        return out

    def contains(self, n: int, largest: int) -> bool:
        return any(lo <= n <= hi for lo, hi in self.resolve(largest))


def _date_text(d: date) -> str:
    return f"{d.day}-{MONTHS[d.month - 1]}-{d.year:04d}"


def _strings(items: tuple[str, ...]) -> bytes:
    return b" ".join(astring(i) for i in items)


def _flags(flags: tuple[str, ...]) -> bytes:
    return b"(" + " ".join(flags).encode() + b")"


@dataclass(frozen=True, slots=True)
class Section:
    """section-spec (RFC 9051 section 6.4.5): a part path and what of it."""

    part: tuple[int, ...] = ()
    specifier: str | None = None
    """None, HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT or MIME."""
    fields: tuple[str, ...] = ()

    def to_bytes(self) -> bytes:
        text = ".".join(str(p) for p in self.part)
        if self.specifier is not None:
            text = f"{text}.{self.specifier}" if text else self.specifier
        out = text.encode()
        if self.specifier in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
            out += b" (" + _strings(self.fields) + b")"
        return b"[" + out + b"]"


@dataclass(frozen=True, slots=True)
class FetchAtt:
    """fetch-att (RFC 9051 section 6.4.5), macros already expanded."""

    name: str
    """FLAGS, INTERNALDATE, RFC822, RFC822.HEADER, RFC822.TEXT, RFC822.SIZE, ENVELOPE,
    BODY, BODYSTRUCTURE, BODY.PEEK, BINARY, BINARY.PEEK, BINARY.SIZE, UID or MODSEQ."""
    section: Section | None = None
    partial: tuple[int, int] | None = None

    def to_bytes(self) -> bytes:
        out = self.name.encode()
        if self.section is not None:
            out += self.section.to_bytes()
        if self.partial is not None:
            out += b"<%d.%d>" % self.partial
        return out


@dataclass(frozen=True, slots=True)
class QResync:
    """SELECT (QRESYNC (uidvalidity modseq [known-uids [seq-match]])) of RFC 7162 section 3.2.5."""

    uidvalidity: int
    modseq: int
    known_uids: SeqSet | None = None
    seq_match: tuple[SeqSet, SeqSet] | None = None

    def to_bytes(self) -> bytes:
        out = b"%d %d" % (self.uidvalidity, self.modseq)
        if self.known_uids is not None:
            out += b" " + self.known_uids.to_bytes()
        if self.seq_match is not None:
            out += b" (" + self.seq_match[0].to_bytes() + b" " + self.seq_match[1].to_bytes() + b")"
        return b"(QRESYNC (" + out + b"))"


# -- search keys (RFC 9051 section 6.4.4) -----------------------------------------


@dataclass(frozen=True, slots=True)
class Simple:
    """A key without argument: ALL, ANSWERED, DELETED, DRAFT, FLAGGED, NEW, OLD, RECENT,
    SEEN and their UN- forms."""

    name: str

    def to_bytes(self) -> bytes:
        return self.name.encode()


@dataclass(frozen=True, slots=True)
class Keyword:
    flag: str
    present: bool = True

    def to_bytes(self) -> bytes:
        return (b"KEYWORD " if self.present else b"UNKEYWORD ") + self.flag.encode()


@dataclass(frozen=True, slots=True)
class DateKey:
    """BEFORE/ON/SINCE (internal date) and SENTBEFORE/SENTON/SENTSINCE (Date: header)."""

    name: str
    when: date

    def to_bytes(self) -> bytes:
        return f"{self.name} {_date_text(self.when)}".encode()


@dataclass(frozen=True, slots=True)
class SizeKey:
    name: str
    """LARGER or SMALLER."""
    size: int

    def to_bytes(self) -> bytes:
        return f"{self.name} {self.size}".encode()


HEADER_KEYS: Final = ("bcc", "cc", "from", "subject", "to")


@dataclass(frozen=True, slots=True)
class HeaderKey:
    """BCC/CC/FROM/SUBJECT/TO and HEADER field-name string; ``field`` is lower-case."""

    field: str
    value: str

    def to_bytes(self) -> bytes:
        if self.field in HEADER_KEYS:
            return self.field.upper().encode() + b" " + astring(self.value, utf8=True)
        return b"HEADER " + astring(self.field) + b" " + astring(self.value, utf8=True)


@dataclass(frozen=True, slots=True)
class TextKey:
    name: str
    """BODY or TEXT."""
    value: str

    def to_bytes(self) -> bytes:
        return self.name.encode() + b" " + astring(self.value, utf8=True)


@dataclass(frozen=True, slots=True)
class SeqKey:
    seqset: SeqSet
    uid: bool = False

    def to_bytes(self) -> bytes:
        return (b"UID " if self.uid else b"") + self.seqset.to_bytes()


@dataclass(frozen=True, slots=True)
class ModSeqKey:
    """MODSEQ [entry-name entry-type] mod-sequence-valzer (RFC 7162 section 3.1.5)."""

    modseq: int

    def to_bytes(self) -> bytes:
        return b"MODSEQ %d" % self.modseq


@dataclass(frozen=True, slots=True)
class Not:
    key: SearchKey

    def to_bytes(self) -> bytes:
        return b"NOT " + self.key.to_bytes()


@dataclass(frozen=True, slots=True)
class Or:
    left: SearchKey
    right: SearchKey

    def to_bytes(self) -> bytes:
        return b"OR " + self.left.to_bytes() + b" " + self.right.to_bytes()


@dataclass(frozen=True, slots=True)
class And:
    """A parenthesised list of keys, all of which must match."""

    keys: tuple[SearchKey, ...]

    def to_bytes(self) -> bytes:
        return b"(" + b" ".join(k.to_bytes() for k in self.keys) + b")"


SearchKey = Simple | Keyword | DateKey | SizeKey | HeaderKey | TextKey | SeqKey | ModSeqKey | Not | Or | And


# -- commands ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Capability:
    states: ClassVar[frozenset[State]] = ANY

    def to_bytes(self, tag: str) -> bytes:
        return f"{tag} CAPABILITY\r\n".encode()


@dataclass(frozen=True, slots=True)
class Noop:
    states: ClassVar[frozenset[State]] = ANY

    def to_bytes(self, tag: str) -> bytes:
        return f"{tag} NOOP\r\n".encode()


@dataclass(frozen=True, slots=True)
class Logout:
    states: ClassVar[frozenset[State]] = ANY

    def to_bytes(self, tag: str) -> bytes:
        return f"{tag} LOGOUT\r\n".encode()


@dataclass(frozen=True, slots=True)
class StartTls:
    states: ClassVar[frozenset[State]] = NOT_AUTH

    def to_bytes(self, tag: str) -> bytes:
        return f"{tag} STARTTLS\r\n".encode()


@dataclass(frozen=True, slots=True)
class Login:
    user: str
    password: str = field(repr=False)
    states: ClassVar[frozenset[State]] = NOT_AUTH

    def to_bytes(self, tag: str) -> bytes:
        return f"{tag} LOGIN ".encode() + _strings((self.user, self.password)) + b"\r\n"


@dataclass(frozen=True, slots=True)
class Authenticate:
    mechanism: str
    """Upper-case SASL mechanism name."""
    initial: bytes | None = field(default=None, repr=False)
    """Decoded SASL-IR initial response (RFC 4959); b"" for "="."""
    states: ClassVar[frozenset[State]] = NOT_AUTH

    def to_bytes(self, tag: str) -> bytes:
        import base64

        out = f"{tag} AUTHENTICATE {self.mechanism}".encode()
        if self.initial is not None:
            out += b" " + (base64.b64encode(self.initial) if self.initial else b"=")
        return out + b"\r\n"


@dataclass(frozen=True, slots=True)
class Enable:
    capabilities: tuple[str, ...]
    """Upper-case capability names."""
    states: ClassVar[frozenset[State]] = AUTH

    def to_bytes(self, tag: str) -> bytes:
        return f"{tag} ENABLE {' '.join(self.capabilities)}\r\n".encode()


@dataclass(frozen=True, slots=True)
class Select:
    """SELECT, or EXAMINE when ``readonly`` (RFC 9051 sections 6.3.2, 6.3.3)."""

    mailbox: str
    readonly: bool = False
    condstore: bool = False
    qresync: QResync | None = None
    states: ClassVar[frozenset[State]] = AUTH

    def to_bytes(self, tag: str) -> bytes:
        out = f"{tag} {'EXAMINE' if self.readonly else 'SELECT'} ".encode() + astring(self.mailbox, utf8=True)
        if self.condstore:
            out += b" (CONDSTORE)"
        if self.qresync is not None:
            out += b" " + self.qresync.to_bytes()
        return out + b"\r\n"


@dataclass(frozen=True, slots=True)
class Create:
    mailbox: str
    special_use: tuple[str, ...] = ()
    states: ClassVar[frozenset[State]] = AUTH

    def to_bytes(self, tag: str) -> bytes:
        out = f"{tag} CREATE ".encode() + astring(self.mailbox, utf8=True)
        if self.special_use:
            out += b" (USE (" + " ".join(self.special_use).encode() + b"))"
        return out + b"\r\n"


@dataclass(frozen=True, slots=True)
class Delete:
    mailbox: str
    states: ClassVar[frozenset[State]] = AUTH

    def to_bytes(self, tag: str) -> bytes:
        return f"{tag} DELETE ".encode() + astring(self.mailbox, utf8=True) + b"\r\n"


@dataclass(frozen=True, slots=True)
class Rename:
    mailbox: str
    new_name: str
    states: ClassVar[frozenset[State]] = AUTH

    def to_bytes(self, tag: str) -> bytes:
        return (
            f"{tag} RENAME ".encode()
            + astring(self.mailbox, utf8=True)
            + b" "
            + astring(self.new_name, utf8=True)
            + b"\r\n"
        )


@dataclass(frozen=True, slots=True)
class Subscribe:
    mailbox: str
    subscribe: bool = True
    states: ClassVar[frozenset[State]] = AUTH

    def to_bytes(self, tag: str) -> bytes:
        verb = "SUBSCRIBE" if self.subscribe else "UNSUBSCRIBE"
        return f"{tag} {verb} ".encode() + astring(self.mailbox, utf8=True) + b"\r\n"


@dataclass(frozen=True, slots=True)
class List:
    """LIST with the RFC 5258 LIST-EXTENDED options and RFC 5819 RETURN (STATUS); LSUB
    when ``lsub``."""

    reference: str
    patterns: tuple[str, ...]
    select_options: tuple[str, ...] = ()
    """Upper-case: SUBSCRIBED, REMOTE, RECURSIVEMATCH, SPECIAL-USE."""
    return_options: tuple[str, ...] = ()
    """Upper-case: SUBSCRIBED, CHILDREN, SPECIAL-USE, STATUS."""
    status_items: tuple[str, ...] = ()
    lsub: bool = False
    parenthesised: bool = False
    """Patterns were sent as a parenthesised list (changes nothing but round trips)."""
    states: ClassVar[frozenset[State]] = AUTH

    def to_bytes(self, tag: str) -> bytes:
        out = f"{tag} {'LSUB' if self.lsub else 'LIST'} ".encode()
        if self.select_options:
            out += b"(" + " ".join(self.select_options).encode() + b") "
        out += string(self.reference.encode(), utf8=True) + b" "
        if self.parenthesised or len(self.patterns) != 1:
            out += b"(" + b" ".join(string(p.encode(), utf8=True) for p in self.patterns) + b")"
        else:
            out += string(self.patterns[0].encode(), utf8=True)
        if self.return_options:
            opts = []
            for opt in self.return_options:
                if opt == "STATUS":
                    opts.append("STATUS (" + " ".join(self.status_items) + ")")
                else:
                    opts.append(opt)
            out += b" RETURN (" + " ".join(opts).encode() + b")"
        return out + b"\r\n"


@dataclass(frozen=True, slots=True)
class Namespace:
    states: ClassVar[frozenset[State]] = AUTH

    def to_bytes(self, tag: str) -> bytes:
        return f"{tag} NAMESPACE\r\n".encode()


@dataclass(frozen=True, slots=True)
class Status:
    mailbox: str
    items: tuple[str, ...]
    """Upper-case: MESSAGES UIDNEXT UIDVALIDITY UNSEEN RECENT SIZE HIGHESTMODSEQ DELETED."""
    states: ClassVar[frozenset[State]] = AUTH

    def to_bytes(self, tag: str) -> bytes:
        items = " ".join(self.items).encode()
        return f"{tag} STATUS ".encode() + astring(self.mailbox, utf8=True) + b" (" + items + b")\r\n"


@dataclass(frozen=True, slots=True)
class AppendMessage:
    flags: tuple[str, ...]
    date: datetime | None
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Append:
    """APPEND with RFC 3502 MULTIAPPEND: one or more messages."""

    mailbox: str
    messages: tuple[AppendMessage, ...]
    states: ClassVar[frozenset[State]] = AUTH

    def to_bytes(self, tag: str) -> bytes:
        out = f"{tag} APPEND ".encode() + astring(self.mailbox, utf8=True)
        for msg in self.messages:
            if msg.flags:
                out += b" " + _flags(msg.flags)
            if msg.date is not None:
                out += b' "' + format_datetime(msg.date).encode() + b'"'
            out += b" {%d}\r\n" % len(msg.data) + msg.data
        return out + b"\r\n"


@dataclass(frozen=True, slots=True)
class Check:
    states: ClassVar[frozenset[State]] = SELECTED

    def to_bytes(self, tag: str) -> bytes:
        return f"{tag} CHECK\r\n".encode()


@dataclass(frozen=True, slots=True)
class Close:
    """CLOSE, or UNSELECT (RFC 3691) when ``expunge`` is false."""

    expunge: bool = True
    states: ClassVar[frozenset[State]] = SELECTED

    def to_bytes(self, tag: str) -> bytes:
        return f"{tag} {'CLOSE' if self.expunge else 'UNSELECT'}\r\n".encode()


@dataclass(frozen=True, slots=True)
class Expunge:
    uid: bool = False
    uids: SeqSet | None = None
    """UID EXPUNGE's set (RFC 4315 section 2.1)."""
    states: ClassVar[frozenset[State]] = SELECTED

    def to_bytes(self, tag: str) -> bytes:
        if self.uid and self.uids is not None:
            return f"{tag} UID EXPUNGE ".encode() + self.uids.to_bytes() + b"\r\n"
        return f"{tag} EXPUNGE\r\n".encode()


SEARCH_RETURN: Final = frozenset({"MIN", "MAX", "ALL", "COUNT", "SAVE"})


@dataclass(frozen=True, slots=True)
class Search:
    uid: bool
    key: SearchKey
    """The top-level keys as one ``And``."""
    charset: str | None = None
    return_options: tuple[str, ...] | None = None
    """RFC 4731 ESEARCH RETURN options; None when the client did not ask for ESEARCH."""
    states: ClassVar[frozenset[State]] = SELECTED

    def to_bytes(self, tag: str) -> bytes:
        out = f"{tag} {'UID ' if self.uid else ''}SEARCH".encode()
        if self.return_options is not None:
            out += b" RETURN (" + " ".join(self.return_options).encode() + b")"
        if self.charset is not None:
            out += b" CHARSET " + astring(self.charset)
        keys = self.key.keys if isinstance(self.key, And) else (self.key,)
        return out + b" " + b" ".join(k.to_bytes() for k in keys) + b"\r\n"


SORT_KEYS: Final = frozenset(
    {"ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO"}
)
"""sort-key of RFC 5256 section 5, with DISPLAYFROM/DISPLAYTO of RFC 5957."""
SORT_RETURN: Final = frozenset({"MIN", "MAX", "ALL", "COUNT"})
"""ESORT return options (RFC 5267 section 3.2)."""
THREAD_ALGORITHMS: Final = frozenset({"ORDEREDSUBJECT", "REFERENCES"})


@dataclass(frozen=True, slots=True)
class SortCriterion:
    """sort-criterion = ["REVERSE" SP] sort-key (RFC 5256 section 5)."""

    key: str
    reverse: bool = False

    def to_bytes(self) -> bytes:
        return (b"REVERSE " if self.reverse else b"") + self.key.encode()


def _criteria(charset: str, key: SearchKey) -> bytes:
    """search-criteria = charset 1*(SP search-key) (RFC 5256 section 5)."""
    keys = key.keys if isinstance(key, And) else (key,)
    return astring(charset) + b" " + b" ".join(k.to_bytes() for k in keys)


@dataclass(frozen=True, slots=True)
class Sort:
    """SORT (RFC 5256 section 3), with ESORT's RETURN options (RFC 5267 section 3)."""

    uid: bool
    criteria: tuple[SortCriterion, ...]
    charset: str
    """Upper-case; the session refuses any but UTF-8 and US-ASCII."""
    key: SearchKey
    """The search keys as one ``And``."""
    return_options: tuple[str, ...] | None = None
    """None for a plain SORT (``* SORT`` response); else ESORT (``* ESEARCH``)."""
    states: ClassVar[frozenset[State]] = SELECTED

    def to_bytes(self, tag: str) -> bytes:
        out = f"{tag} {'UID ' if self.uid else ''}SORT".encode()
        if self.return_options is not None:
            out += b" RETURN (" + " ".join(self.return_options).encode() + b")"
        out += b" (" + b" ".join(c.to_bytes() for c in self.criteria) + b") "
        return out + _criteria(self.charset, self.key) + b"\r\n"


@dataclass(frozen=True, slots=True)
class Thread:
    """THREAD (RFC 5256 section 3): ORDEREDSUBJECT or REFERENCES."""

    uid: bool
    algorithm: str
    charset: str
    key: SearchKey
    states: ClassVar[frozenset[State]] = SELECTED

    def to_bytes(self, tag: str) -> bytes:
        out = f"{tag} {'UID ' if self.uid else ''}THREAD {self.algorithm} ".encode()
        return out + _criteria(self.charset, self.key) + b"\r\n"


@dataclass(frozen=True, slots=True)
class Fetch:
    uid: bool
    seqset: SeqSet
    attributes: tuple[FetchAtt, ...]
    changed_since: int | None = None
    vanished: bool = False
    states: ClassVar[frozenset[State]] = SELECTED

    def to_bytes(self, tag: str) -> bytes:
        out = f"{tag} {'UID ' if self.uid else ''}FETCH ".encode() + self.seqset.to_bytes()
        out += b" (" + b" ".join(a.to_bytes() for a in self.attributes) + b")"
        mods = []
        if self.changed_since is not None:
            mods.append(b"CHANGEDSINCE %d" % self.changed_since)
        if self.vanished:
            mods.append(b"VANISHED")
        if mods:
            out += b" (" + b" ".join(mods) + b")"
        return out + b"\r\n"


class StoreMode(enum.StrEnum):
    REPLACE = ""
    ADD = "+"
    REMOVE = "-"


@dataclass(frozen=True, slots=True)
class Store:
    uid: bool
    seqset: SeqSet
    mode: StoreMode
    flags: tuple[str, ...]
    silent: bool = False
    unchanged_since: int | None = None
    states: ClassVar[frozenset[State]] = SELECTED

    def to_bytes(self, tag: str) -> bytes:
        out = f"{tag} {'UID ' if self.uid else ''}STORE ".encode() + self.seqset.to_bytes()
        if self.unchanged_since is not None:
            out += b" (UNCHANGEDSINCE %d)" % self.unchanged_since
        out += f" {self.mode}FLAGS{'.SILENT' if self.silent else ''} ".encode() + _flags(self.flags)
        return out + b"\r\n"


@dataclass(frozen=True, slots=True)
class Copy:
    """COPY, or MOVE (RFC 6851) when ``move``."""

    uid: bool
    seqset: SeqSet
    mailbox: str
    move: bool = False
    states: ClassVar[frozenset[State]] = SELECTED

    def to_bytes(self, tag: str) -> bytes:
        verb = "MOVE" if self.move else "COPY"
        return (
            f"{tag} {'UID ' if self.uid else ''}{verb} ".encode()
            + self.seqset.to_bytes()
            + b" "
            + astring(self.mailbox, utf8=True)
            + b"\r\n"
        )


@dataclass(frozen=True, slots=True)
class Idle:
    states: ClassVar[frozenset[State]] = AUTH

    def to_bytes(self, tag: str) -> bytes:
        return f"{tag} IDLE\r\n".encode()


@dataclass(frozen=True, slots=True)
class Id:
    """ID (RFC 2971): the client's field/value pairs, or None for NIL."""

    params: tuple[tuple[str, str | None], ...] | None
    states: ClassVar[frozenset[State]] = ANY

    def to_bytes(self, tag: str) -> bytes:
        if self.params is None:
            return f"{tag} ID NIL\r\n".encode()
        parts = []
        for key, value in self.params:
            parts.append(string(key.encode(), utf8=True))
            parts.append(b"NIL" if value is None else string(value.encode(), utf8=True))
        return f"{tag} ID (".encode() + b" ".join(parts) + b")\r\n"


@dataclass(frozen=True, slots=True)
class GetQuota:
    """GETQUOTA root, or GETQUOTAROOT mailbox when ``by_mailbox`` (RFC 9208)."""

    name: str
    by_mailbox: bool = False
    states: ClassVar[frozenset[State]] = AUTH

    def to_bytes(self, tag: str) -> bytes:
        verb = "GETQUOTAROOT" if self.by_mailbox else "GETQUOTA"
        return f"{tag} {verb} ".encode() + astring(self.name, utf8=True) + b"\r\n"


# -- ACL (RFC 4314 section 3) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SetAcl:
    """SETACL mailbox identifier mod-rights (RFC 4314 section 3.1); ``rights`` keeps
    its leading ``+``/``-`` as sent."""

    mailbox: str
    identifier: str
    rights: str
    states: ClassVar[frozenset[State]] = AUTH

    def to_bytes(self, tag: str) -> bytes:
        return (
            f"{tag} SETACL ".encode()
            + astring(self.mailbox, utf8=True)
            + b" "
            + _strings((self.identifier, self.rights))
            + b"\r\n"
        )


@dataclass(frozen=True, slots=True)
class DeleteAcl:
    """DELETEACL mailbox identifier (RFC 4314 section 3.2)."""

    mailbox: str
    identifier: str
    states: ClassVar[frozenset[State]] = AUTH

    def to_bytes(self, tag: str) -> bytes:
        out = f"{tag} DELETEACL ".encode() + astring(self.mailbox, utf8=True)
        return out + b" " + astring(self.identifier) + b"\r\n"


@dataclass(frozen=True, slots=True)
class GetAcl:
    """GETACL mailbox (RFC 4314 section 3.3)."""

    mailbox: str
    states: ClassVar[frozenset[State]] = AUTH

    def to_bytes(self, tag: str) -> bytes:
        return f"{tag} GETACL ".encode() + astring(self.mailbox, utf8=True) + b"\r\n"


@dataclass(frozen=True, slots=True)
class ListRights:
    """LISTRIGHTS mailbox identifier (RFC 4314 section 3.4)."""

    mailbox: str
    identifier: str
    states: ClassVar[frozenset[State]] = AUTH

    def to_bytes(self, tag: str) -> bytes:
        out = f"{tag} LISTRIGHTS ".encode() + astring(self.mailbox, utf8=True)
        return out + b" " + astring(self.identifier) + b"\r\n"


@dataclass(frozen=True, slots=True)
class MyRights:
    """MYRIGHTS mailbox (RFC 4314 section 3.5)."""

    mailbox: str
    states: ClassVar[frozenset[State]] = AUTH

    def to_bytes(self, tag: str) -> bytes:
        return f"{tag} MYRIGHTS ".encode() + astring(self.mailbox, utf8=True) + b"\r\n"


Command = (
    Capability
    | Noop
    | Logout
    | StartTls
    | Login
    | Authenticate
    | Enable
    | Select
    | Create
    | Delete
    | Rename
    | Subscribe
    | List
    | Namespace
    | Status
    | Append
    | Check
    | Close
    | Expunge
    | Search
    | Sort
    | Thread
    | Fetch
    | Store
    | Copy
    | Idle
    | Id
    | GetQuota
    | SetAcl
    | DeleteAcl
    | GetAcl
    | ListRights
    | MyRights
)


def format_datetime(when: datetime) -> str:
    """date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE."""
    offset = when.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return (
        f"{when.day:2d}-{MONTHS[when.month - 1]}-{when.year:04d} "
        f"{when.hour:02d}:{when.minute:02d}:{when.second:02d} {sign}{minutes // 60:02d}{minutes % 60:02d}"
    )
