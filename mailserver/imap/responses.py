"""IMAP responses and their wire form (RFC 9051 sections 2.2.2, 7 and 9).

The session builds ``Tagged``, ``Untagged`` and ``Continuation`` values and
never formats wire text itself. An ``Untagged`` carries a tuple of values:

* ``str`` - written as is (atoms, flags, ``[CODE ...]`` text);
* ``int`` - a number; ``None`` - NIL; ``tuple`` - a parenthesised list;
* ``IString`` - a string: quoted when it can be, else a literal;
* ``Literal`` - always a literal (message data); ``Concat`` - values written with
  no space between them (the parts of a multipart body, RFC 9051 ``body-type-mpart``).

``chunks()`` yields the wire form piece by piece so a large FETCH body goes to
the socket without being copied into one buffer first.

Non-ASCII text in ENVELOPE and BODYSTRUCTURE: the store keeps it decoded. With
UTF8=ACCEPT enabled (RFC 6855) it goes out as UTF-8 quoted strings; otherwise it
is sent as an RFC 2047 encoded-word, which is what the header held and what
every client decodes for display (RFC 9051 section 7.5.2 says the fields are
the raw header values, so clients expect encoded-words there).

Human-readable text (``resp-text`` of tagged and status responses, continuation
text) is ASCII: ``text = 1*TEXT-CHAR`` with ``CHAR = %x01-7F`` in RFC 3501
section 9. UTF-8 is allowed there only once the client enabled UTF8=ACCEPT (RFC
6855 section 3) or IMAP4rev2 (RFC 9051 section 9); until then ``plain_text``
writes Vietnamese without its diacritics ("Mật khẩu" -> "Mat khau"), which
every client shows legibly, instead of raw UTF-8 that imaplib and older clients
garble. ``for_client`` applies it to one response.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Final, Union

from mailserver.imap.commands import format_datetime as _format_datetime
from mailserver.imap.grammar import MONTHS, quoted
from storage.api import Address, BodyPart, Envelope, MessageInfo
from storage.imapwire import encoded_word


@dataclass(frozen=True, slots=True)
class IString:
    """A string value: quoted if possible, else a literal."""

    text: str
    utf8: bool = False
    """UTF8=ACCEPT is enabled: UTF-8 may go inside a quoted string."""


@dataclass(frozen=True, slots=True)
class Literal:
    data: bytes
    binary: bool = False
    """Use literal8 (``~{n}``, RFC 3516) - only needed when the data holds NUL."""


@dataclass(frozen=True, slots=True)
class Raw:
    """Bytes already in wire form (an ENVELOPE built straight from the cached JSON)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Concat:
    items: tuple[Value, ...]


_DIRECT: Final = 65536
"""Pieces at least this large are written directly instead of being copied."""

Value = Union[str, int, None, "IString", "Literal", "Concat", "Raw", tuple["Value", ...]]


def _emit(value: Value, out: list[bytes]) -> None:
    """Append the wire pieces of ``value`` to ``out``.

    A FETCH of a whole folder encodes hundreds of thousands of values, so this
    appends to one list (no generator per nesting level) and dispatches on the
    exact type first; subclasses (e.g. a ``StrEnum``) take the slower path below.
    """
    kind = type(value)
    if kind is str:
        out.append(value.encode("utf-8"))  # type: ignore[union-attr]
    elif kind is tuple:
        out.append(b"(")
        first = True
        for item in value:  # type: ignore[union-attr]
            if not first:
                out.append(b" ")
            first = False
            _emit(item, out)
        out.append(b")")
    elif kind is IString:
        out.append(_istring(value))  # type: ignore[arg-type]
    elif value is None:
        out.append(b"NIL")
    elif kind is int:
        out.append(b"%d" % value)  # type: ignore[str-format]
    elif kind is Literal:
        lit: Literal = value  # type: ignore[assignment]
        out.append(_literal_header(lit))
        out.append(lit.data)
    elif kind is Raw:
        out.append(value.data)  # type: ignore[union-attr]
    elif kind is Concat:
        for item in value.items:  # type: ignore[union-attr]
            _emit(item, out)
    elif isinstance(value, bool):
        raise TypeError("bool is not an IMAP value")
    elif isinstance(value, str):
        out.append(value.encode("utf-8"))
    elif isinstance(value, int):
        out.append(b"%d" % value)
    else:
        raise TypeError(f"not an IMAP value: {value!r}")


def _literal_header(lit: Literal) -> bytes:
    """``{n}`` CRLF, or literal8's ``~{n}`` (RFC 3516) when binary data holds NUL."""
    return (b"~{%d}\r\n" if lit.binary and b"\x00" in lit.data else b"{%d}\r\n") % len(lit.data)


def _istring(value: IString) -> bytes:
    data = value.text.encode("utf-8")
    q = quoted(data)
    if q is None and value.utf8 and not _CTL.search(data):
        q = b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    if q is not None:
        return q
    return b"{%d}\r\n%b" % (len(data), data)


_CTL: Final = re.compile(rb"[\x00\r\n]")
"""Bytes no quoted string may hold, even with UTF8=ACCEPT."""


@dataclass(frozen=True, slots=True)
class Tagged:
    """tag SP resp-cond-state CRLF: the completion of one command."""

    tag: str
    status: str
    """OK, NO or BAD."""
    text: str
    code: str | None = None
    """The response code without brackets, e.g. ``TRYCREATE`` or ``APPENDUID 3 9``."""

    def chunks(self) -> Iterator[bytes]:
        yield self.to_bytes()

    def to_bytes(self) -> bytes:
        code = f"[{self.code}] " if self.code else ""
        return f"{self.tag} {self.status} {code}{_line(self.text)}\r\n".encode()


@dataclass(frozen=True, slots=True)
class Untagged:
    items: tuple[Value, ...]

    def chunks(self) -> Iterator[bytes]:
        # Small pieces are gathered so a response line leaves in one write (a client
        # reading with a timeout must not see half a line); big literals pass through.
        pieces: list[bytes] = [b"*"]
        for item in self.items:
            pieces.append(b" ")
            _emit(item, pieces)
        pieces.append(b"\r\n")
        start = 0
        for i, piece in enumerate(pieces):
            if len(piece) >= _DIRECT:
                if i > start:
                    yield b"".join(pieces[start:i])
                yield piece
                start = i + 1
        if start < len(pieces):
            yield b"".join(pieces[start:])

    def to_bytes(self) -> bytes:
        return b"".join(self.chunks())


@dataclass(frozen=True, slots=True)
class Continuation:
    """continue-req = "+" SP (resp-text / base64) CRLF."""

    text: str = ""

    def chunks(self) -> Iterator[bytes]:
        yield self.to_bytes()

    def to_bytes(self) -> bytes:
        return f"+ {_line(self.text)}\r\n".encode()


# -- FETCH (RFC 9051 section 7.4.2 message-data, section 7.5.2 msg-att) ---------------

FetchItem = bytes | tuple[bytes, Literal]
"""One msg-att in wire form (``b"UID 5"``, ``b"FLAGS (\\Seen)"``), or a label and the
literal that follows it (``(b"BODY[TEXT]", Literal(data))``)."""


def fetch_line(seq: int, items: Sequence[bytes]) -> bytes:
    """The FETCH encoder: ``* seq FETCH (item item ...)`` CRLF from items in wire
    form. Every FETCH response is made here: ``Fetch`` (one message, any items)
    and the index-only lines of ``FetchLines`` alike, so the two cannot differ."""
    return b"* %d FETCH (%b)\r\n" % (seq, b" ".join(items))


@dataclass(frozen=True, slots=True)
class Fetch:
    """One FETCH response (RFC 9051 section 7.5.2)."""

    seq: int
    items: tuple[FetchItem, ...]

    def chunks(self) -> Iterator[bytes]:
        # A literal's data of _DIRECT octets or more is not copied into the line:
        # the line is encoded without it and cut where it goes (after the header
        # that ends its item: where fetch_line of the items up to it would close).
        wire: list[bytes] = []
        big: list[tuple[int, bytes]] = []
        for item in self.items:
            if isinstance(item, bytes):
                wire.append(item)
                continue
            label, lit = item
            if len(lit.data) >= _DIRECT:
                wire.append(label + b" " + _literal_header(lit))
                big.append((len(wire), lit.data))
            else:
                wire.append(label + b" " + _literal_header(lit) + lit.data)
        line = fetch_line(self.seq, wire)
        start = 0
        for count, data in big:
            cut = len(fetch_line(self.seq, wire[:count])) - len(b")\r\n")
            yield line[start:cut]
            yield data
            start = cut
        yield line[start:]

    def to_bytes(self) -> bytes:
        return b"".join(self.chunks())


@dataclass(frozen=True, slots=True)
class FetchLines:
    """FETCH responses of a batch of messages already in wire form (``fetch_line``,
    CRLFs included): index data of many messages made without a response object
    each; written like any untagged response."""

    data: bytes

    def chunks(self) -> Iterator[bytes]:
        yield self.data

    def to_bytes(self) -> bytes:
        return self.data


# The items of the index row take what a FETCH item writer takes (the row, its
# detail row, the message bytes) so that FETCH uses them as they are: they run
# once per message of a whole-folder FETCH.


def uid_item(info: MessageInfo, _detail: object = None, _data: bytes = b"") -> bytes:
    return b"UID %d" % info.uid


def modseq_item(info: MessageInfo, _detail: object = None, _data: bytes = b"") -> bytes:
    """RFC 7162 section 3.1.4: ``MODSEQ (n)``."""
    return b"MODSEQ (%d)" % info.modseq


def internaldate_item(info: MessageInfo, _detail: object = None, _data: bytes = b"") -> bytes:
    return b"INTERNALDATE " + internal_date_bytes(info.internal_date)


def size_item(info: MessageInfo, _detail: object = None, _data: bytes = b"") -> bytes:
    return b"RFC822.SIZE %d" % info.size


def flags_item(names: Iterable[str]) -> bytes:
    """``FLAGS (...)`` of the flags as the session reports them (``Mailbox.flag_names``)."""
    return b"FLAGS (%b)" % " ".join(names).encode()


def value_item(name: str, value: Value) -> bytes:
    """A msg-att whose value is a response value (BODYSTRUCTURE, BINARY.SIZE)."""
    return name.encode() + b" " + value_bytes(value)


Response = Tagged | Untagged | Continuation | Fetch | FetchLines


def _line(text: str) -> str:
    # resp-text must not hold CR or LF; a client-supplied string may end up here.
    return text.replace("\r", " ").replace("\n", " ")


_NO_DECOMPOSITION: Final = str.maketrans({"đ": "d", "Đ": "D"})
"""Letters NFD does not split into a base letter and a combining mark."""


def plain_text(text: str) -> str:
    """``text`` in ASCII: diacritics dropped (NFD, combining marks removed), đ/Đ as
    d/D, typographic punctuation as its ASCII look-alike, anything else as ``?``."""
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text.translate(_NO_DECOMPOSITION))
    out = []
    for ch in decomposed:
        if ch.isascii():
            out.append(ch)
        elif unicodedata.combining(ch):
            continue
        else:
            out.append(_PUNCTUATION.get(ch, "?"))
    return "".join(out)


_PUNCTUATION: Final = {
    "\u2013": "-", "\u2014": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
    "\u2026": "...", "\u00a0": " ", "\u00ab": '"', "\u00bb": '"',
}
_STATUS_WORDS: Final = frozenset({"OK", "NO", "BAD", "BYE", "PREAUTH"})


def for_client(response: Response, utf8: bool) -> Response:
    """``response`` with its human-readable text made ASCII unless ``utf8`` (the
    client enabled UTF8=ACCEPT or IMAP4rev2). Only status texts change: data
    (mailbox names, envelopes, bodies) has its own encoding rules."""
    if utf8:
        return response
    if isinstance(response, Tagged | Continuation):
        if not response.text.isascii():
            return replace(response, text=plain_text(response.text))
    elif isinstance(response, Untagged):
        items = response.items
        if len(items) == 2 and items[0] in _STATUS_WORDS and isinstance(items[1], str):
            if not items[1].isascii():
                return Untagged((items[0], plain_text(items[1])))
    return response


# -- common responses -------------------------------------------------------------


def ok(tag: str, text: str, code: str | None = None) -> Tagged:
    return Tagged(tag, "OK", text, code)


def no(tag: str, text: str, code: str | None = None) -> Tagged:
    return Tagged(tag, "NO", text, code)


def bad(tag: str, text: str, code: str | None = None) -> Tagged:
    return Tagged(tag, "BAD", text, code)


def status_line(status: str, text: str, code: str | None = None) -> Untagged:
    """Untagged OK/NO/BAD/BYE/PREAUTH with an optional response code."""
    return Untagged((status, f"[{code}] {_line(text)}" if code else _line(text)))


def bye(text: str, code: str | None = None) -> Untagged:
    return status_line("BYE", text, code)


def capability(caps: Iterable[str]) -> Untagged:
    return Untagged(("CAPABILITY", *caps))


def exists(count: int) -> Untagged:
    return Untagged((count, "EXISTS"))


def recent(count: int) -> Untagged:
    return Untagged((count, "RECENT"))


def expunge(seq: int) -> Untagged:
    return Untagged((seq, "EXPUNGE"))


def vanished(uids: Iterable[int], *, earlier: bool = False) -> Untagged:
    """RFC 7162 section 3.2.10."""
    head: tuple[Value, ...] = ("VANISHED", "(EARLIER)") if earlier else ("VANISHED",)
    return Untagged((*head, seqset(uids)))


def flags(names: Iterable[str]) -> Untagged:
    return Untagged(("FLAGS", tuple(names)))


def fetch(seq: int, items: Iterable[FetchItem]) -> Fetch:
    return Fetch(seq, tuple(items))


def search(numbers: Iterable[int], modseq: int | None = None) -> Untagged:
    tail: tuple[Value, ...] = (("MODSEQ", modseq),) if modseq is not None else ()
    return Untagged(("SEARCH", *numbers, *tail))


def esearch(tag: str, uid: bool, results: Iterable[tuple[str, Value]]) -> Untagged:
    """RFC 4731 section 3.1: ``* ESEARCH (TAG "a1") UID MIN 2 COUNT 3``."""
    items: list[Value] = [("TAG", IString(tag))]
    if uid:
        items.append("UID")
    for name, value in results:
        items += [name, value]
    return Untagged(("ESEARCH", *items))


def enabled(caps: Iterable[str]) -> Untagged:
    return Untagged(("ENABLED", *caps))


def seqset(numbers: Iterable[int]) -> str:
    """Compress ascending numbers into sequence-set syntax: 1,3:5,9."""
    out: list[str] = []
    start = prev = -2
    for n in sorted(numbers):
        if n == prev + 1:
            prev = n
            continue
        if prev >= 0:
            out.append(str(start) if start == prev else f"{start}:{prev}")
        start = prev = n
    if prev >= 0:
        out.append(str(start) if start == prev else f"{start}:{prev}")
    return ",".join(out)


def internal_date(when: datetime) -> Raw:
    return Raw(internal_date_bytes(when))


def internal_date_bytes(when: datetime) -> bytes:
    """INTERNALDATE's quoted date-time; the store keeps it in UTC, the common case
    formatted without asking the datetime for its offset (a FETCH of a whole
    folder formats one per message)."""
    if when.tzinfo is None or when.tzinfo is UTC:
        return b'"%2d-%s-%04d %02d:%02d:%02d +0000"' % (
            when.day,
            _MONTHS[when.month - 1],
            when.year,
            when.hour,
            when.minute,
            when.second,
        )
    # date-time is all ASCII with no quote or backslash: quote it directly.
    return b'"%s"' % _format_datetime(when).encode("ascii")


_MONTHS: Final = tuple(m.encode("ascii") for m in MONTHS)


def value_bytes(value: Value) -> bytes:
    """One value in wire form."""
    out: list[bytes] = []
    _emit(value, out)
    return b"".join(out)


# -- ENVELOPE and BODYSTRUCTURE (RFC 9051 section 7.5.2) ----------------------------


def text(value: str | None, utf8: bool) -> Value:
    """A header-derived string: NIL, ASCII as is, else UTF-8 or an RFC 2047 word."""
    if value is None:
        return None
    if utf8 or value.isascii():
        return IString(value, utf8)
    return IString(encoded_word(value))


def _addresses(addrs: tuple[Address, ...], utf8: bool) -> Value:
    if not addrs:
        return None
    # env-to = "(" 1*address ")": the addresses follow each other with no space.
    return (
        Concat(
            tuple(
                (text(a.name, utf8), text(a.route, utf8), text(a.mailbox, utf8), text(a.host, utf8))
                for a in addrs
            )
        ),
    )


def envelope(env: Envelope, utf8: bool) -> Value:
    # RFC 9051 section 7.5.2: sender and reply-to default to from.
    sender = env.sender or env.from_
    reply_to = env.reply_to or env.from_
    return (
        text(env.date, utf8),
        text(env.subject, utf8),
        _addresses(env.from_, utf8),
        _addresses(sender, utf8),
        _addresses(reply_to, utf8),
        _addresses(env.to, utf8),
        _addresses(env.cc, utf8),
        _addresses(env.bcc, utf8),
        text(env.in_reply_to, utf8),
        text(env.message_id, utf8),
    )


def _params(params: tuple[tuple[str, str], ...], utf8: bool) -> Value:
    if not params:
        return None
    out: list[Value] = []
    for key, val in params:
        out += [IString(key), text(val, utf8)]
    return tuple(out)


def _extension(part: BodyPart, utf8: bool) -> tuple[Value, ...]:
    disposition: Value = None
    if part.disposition is not None:
        disposition = (IString(part.disposition[0]), _params(part.disposition[1], utf8))
    language: Value = None
    if part.language:
        language = tuple(IString(lang) for lang in part.language)
    return (disposition, language, text(part.location, utf8))


def body_structure(part: BodyPart, *, extended: bool, utf8: bool) -> Value:
    """BODYSTRUCTURE when ``extended``, else BODY (no extension data)."""
    if part.children and part.maintype.lower() == "multipart":
        items: tuple[Value, ...] = (
            Concat(tuple(body_structure(child, extended=extended, utf8=utf8) for child in part.children)),
            IString(part.subtype.upper()),
        )
        if extended:
            items += (_params(part.params, utf8), *_extension(part, utf8))
        return items
    fields: tuple[Value, ...] = (
        IString(part.maintype.upper()),
        IString(part.subtype.upper()),
        _params(part.params, utf8),
        text(part.content_id, utf8),
        text(part.description, utf8),
        IString(part.encoding.upper()),
        part.size,
    )
    if part.maintype.lower() == "message" and part.subtype.lower() in ("rfc822", "global"):
        inner = part.children[0] if part.children else BodyPart("text", "plain")
        env = part.envelope or Envelope(None, None, (), (), (), (), (), (), None, None)
        fields += (
            envelope(env, utf8),
            body_structure(inner, extended=extended, utf8=utf8),
            part.lines or 0,
        )
    elif part.maintype.lower() == "text":
        fields += (part.lines or 0,)
    if extended:
        fields += (text(part.md5, utf8), *_extension(part, utf8))
    return fields
