"""FETCH body sections on raw message bytes.

Implements the section addressing of RFC 9051 section 6.4.5 (and RFC 3501
section 6.4.5), ``BODY[<section>]``, and the content-transfer decoding of RFC 3516
section 4.2 (``BINARY[<section>]``).

Theory of operation: the message is split into MIME entities by scanning the raw
bytes for header/body separators and RFC 2046 section 5.1.1 boundary delimiter
lines.  Every entity is kept as byte offsets into the original message, so every
section returned is an exact slice of what the client APPENDed or SMTP
delivered; re-serialising with ``email.generator`` would re-fold headers and
rewrite line endings, and the octet counts in BODYSTRUCTURE would stop matching.
The ``email`` package is used only to interpret header fields (Content-Type
parameters), never to produce output.

Broken MIME never raises: a multipart without a boundary parameter or without
any delimiter line is treated as a single leaf part (as ``email`` does, defect
``NoBoundaryInMultipartDefect``/``StartBoundaryNotFoundDefect``), a missing close
delimiter ends the last part at the end of its parent, and a nonexistent part
yields ``b""``.
"""

from __future__ import annotations

import base64
import binascii
import quopri
import re
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Final

__all__ = ["decode_binary", "extract"]

# Deeper nesting is treated as a leaf: a hostile message must not exhaust the
# stack, and no real mailer nests this deep.
_MAX_DEPTH: Final = 64

# RFC 5322 section 3.6.8: field-name is printable ASCII except ":"; obsolete
# syntax (RFC 5322 section 4.5) allows whitespace before the colon.
_FIELD_LINE: Final = re.compile(rb"[\x21-\x39\x3b-\x7e]+[ \t]*:")

# RFC 9051 section 6.4.5 / RFC 6532 section 3.7: HEADER and TEXT may follow a
# numeric part only when that part is an encapsulated message.
_MESSAGE_TYPES: Final = frozenset({"message/rfc822", "message/global"})

# RFC 2045 section 6.4: an encapsulated message must be in an identity
# encoding; an encoded one cannot be parsed from the raw bytes.
_IDENTITY_CTES: Final = frozenset({"", "7bit", "8bit", "binary"})

_HEADER_PARSER: Final = BytesHeaderParser(policy=compat32)


@dataclass(slots=True)
class _Entity:
    """One MIME entity as offsets into the message.

    ``data[start:body_start]`` is the header including its terminating blank
    line (when there is one); ``data[body_start:end]`` is the body.
    """

    start: int
    body_start: int
    end: int
    headers: Message
    children: list[_Entity] = field(default_factory=list)
    # The encapsulated message of a message/rfc822 entity.
    inner: _Entity | None = None

    @property
    def content_type(self) -> str:
        return self.headers.get_content_type()


def _line_end(data: bytes, pos: int, limit: int) -> int:
    """Offset just past the line starting at ``pos`` (its LF included)."""
    nl = data.find(b"\n", pos, limit)
    return limit if nl < 0 else nl + 1


def _split_header(data: bytes, start: int, end: int) -> tuple[int, int]:
    """Return (header_end, body_start) of the entity at ``data[start:end]``.

    ``header_end`` is where the last header line ends; ``body_start`` is past the
    blank line.  A line that is neither a field nor a continuation also ends the
    header (without a blank line), as ``email``'s feedparser does
    (``MissingHeaderBodySeparatorDefect``).
    """
    pos = start
    while pos < end:
        eol = _line_end(data, pos, end)
        line = data[pos:eol]
        if line in (b"\r\n", b"\n"):
            return pos, eol
        if not (line[:1] in (b" ", b"\t") or _FIELD_LINE.match(line)):
            return pos, pos
        pos = eol
    return end, end


def _header_fields(data: bytes, start: int, header_end: int) -> list[tuple[str, bytes]]:
    """The header fields as (lower-case name, raw bytes with continuations)."""
    fields: list[tuple[str, bytes]] = []
    pos = start
    while pos < header_end:
        eol = _line_end(data, pos, header_end)
        line = data[pos:eol]
        if line[:1] in (b" ", b"\t"):
            # RFC 5322 section 2.2.3: a folded continuation belongs to the field
            # above it; one with no field above it is dropped.
            if fields:
                name, raw = fields[-1]
                fields[-1] = (name, raw + line)
        else:
            colon = line.find(b":")
            name = line[:colon].rstrip(b" \t").decode("ascii", "replace").lower()
            fields.append((name, line))
        pos = eol
    return fields


def _cte(headers: Message) -> str:
    return str(headers.get("content-transfer-encoding", "")).strip().lower()


def _parse(data: bytes, start: int, end: int, default_type: str, depth: int) -> _Entity:
    header_end, body_start = _split_header(data, start, end)
    headers = _HEADER_PARSER.parsebytes(data[start:header_end])
    # RFC 2046 section 5.1.5: parts of multipart/digest default to
    # message/rfc822 instead of text/plain.
    headers.set_default_type(default_type)
    entity = _Entity(start, body_start, end, headers)
    if depth >= _MAX_DEPTH:
        return entity
    ctype = entity.content_type
    if headers.get_content_maintype() == "multipart":
        boundary = headers.get_boundary()
        if boundary:
            child_type = "message/rfc822" if ctype == "multipart/digest" else "text/plain"
            bounds = _split_multipart(data, body_start, end, boundary)
            entity.children = [_parse(data, s, e, child_type, depth + 1) for s, e in bounds]
    elif ctype in _MESSAGE_TYPES and _cte(headers) in _IDENTITY_CTES:
        entity.inner = _parse(data, body_start, end, "text/plain", depth + 1)
    return entity


def _split_multipart(data: bytes, start: int, end: int, boundary: str) -> list[tuple[int, int]]:
    """Offsets of the body parts of a multipart body (RFC 2046 section 5.1.1).

    The CRLF before a delimiter line belongs to the delimiter, not to the part
    before it.  Transport padding (spaces, tabs) after a delimiter is allowed.
    No delimiter at all gives no parts, which makes the caller treat the
    multipart as a leaf.
    """
    dash = b"--" + boundary.encode("ascii", "surrogateescape")
    delimiter = re.compile(re.escape(dash) + rb"(--)?[ \t]*(\r\n|\r|\n)?\Z")
    parts: list[tuple[int, int]] = []
    part_start: int | None = None
    pos = start
    while pos < end:
        eol = _line_end(data, pos, end)
        if data.startswith(dash, pos, eol):
            m = delimiter.match(data, pos, eol)
            if m is not None:
                if part_start is not None:
                    # Give the line break before the delimiter back to it.
                    part_end = pos
                    if pos - 2 >= part_start and data.startswith(b"\r\n", pos - 2, pos):
                        part_end = pos - 2
                    elif pos - 1 >= part_start and data.startswith(b"\n", pos - 1, pos):
                        part_end = pos - 1
                    parts.append((part_start, part_end))
                if m.group(1):
                    return parts  # close delimiter: the rest is epilogue
                part_start = eol
        pos = eol
    if part_start is not None:
        # No close delimiter: the last part runs to the end of the parent.
        parts.append((part_start, end))
    return parts


def _numbered(entity: _Entity, *, is_message: bool) -> list[_Entity]:
    """The entities that part numbers one level below ``entity`` address.

    RFC 9051 section 6.4.5: a multipart's parts are numbered 1..n; a non-multipart
    message has only part 1, its body; a message/rfc822 part's sub-numbers
    address the parts of the encapsulated message.
    """
    if entity.children:
        return entity.children
    if is_message:
        # Also for a message whose own type is message/rfc822: part 1 is its
        # body (the encapsulated message) and 1.n its parts.
        return [entity]
    if entity.inner is not None:
        return _numbered(entity.inner, is_message=True)
    return []


def _resolve(root: _Entity, part: tuple[int, ...]) -> _Entity | None:
    entity = root
    is_message = True
    for number in part:
        candidates = _numbered(entity, is_message=is_message)
        if not 1 <= number <= len(candidates):
            return None
        entity = candidates[number - 1]
        is_message = False
    return entity


def _header_section(data: bytes, entity: _Entity, specifier: str, fields: tuple[str, ...]) -> bytes:
    if specifier == "HEADER":
        return data[entity.start:entity.body_start]
    if specifier == "TEXT":
        return data[entity.body_start:entity.end]
    wanted = {name.lower() for name in fields}
    keep = specifier == "HEADER.FIELDS"
    header_end, _ = _split_header(data, entity.start, entity.end)
    out: list[bytes] = []
    for name, raw in _header_fields(data, entity.start, header_end):
        if (name in wanted) == keep:
            # A header at end of data may lack its line break; the section
            # must still be well-formed lines before the blank line.
            out.append(raw if raw.endswith(b"\n") else raw + b"\r\n")
    # RFC 9051 section 6.4.5: the subset is followed by the blank line.
    out.append(b"\r\n")
    return b"".join(out)


def extract(data: bytes, part: tuple[int, ...], specifier: str | None, fields: tuple[str, ...] = ()) -> bytes:
    """Return the bytes of ``BODY[<part>.<specifier>]`` (RFC 9051 section 6.4.5).

    ``part`` holds the 1-based part numbers, ``()`` for the message itself.
    ``specifier`` is None, "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT"
    or "MIME" (case-insensitive); ``fields`` are the field names of the
    HEADER.FIELDS variants.  The result is a byte-exact slice of ``data`` except
    for HEADER.FIELDS(.NOT), which joins the selected fields.  A nonexistent
    part, or a specifier the part cannot have, gives ``b""``.
    """
    spec = specifier.upper() if specifier is not None else None
    if not part:
        # The message itself (mbsync's and most clients' BODY.PEEK[], and
        # HEADER/TEXT for lists) needs no look at the parts below it.
        if spec is None:
            return data
        if spec not in ("HEADER", "TEXT", "HEADER.FIELDS", "HEADER.FIELDS.NOT"):
            return b""
        return _header_section(data, _parse(data, 0, len(data), "text/plain", _MAX_DEPTH), spec, fields)
    root = _parse(data, 0, len(data), "text/plain", 0)
    entity = _resolve(root, part)
    if entity is None:
        return b""
    if spec is None:
        # BODY[] is the whole message; BODY[n] is the part's body as encoded.
        return data if not part else data[entity.body_start:entity.end]
    if spec == "MIME":
        # RFC 9051 section 6.4.5: MIME "MUST be prefixed by one or more numeric
        # part specifiers".
        return data[entity.start:entity.body_start] if part else b""
    if spec not in ("HEADER", "TEXT", "HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        return b""
    if part:
        # After a part number these refer to the encapsulated message, so the
        # part must be message/rfc822 (RFC 9051 section 6.4.5).
        if entity.inner is None:
            return b""
        entity = entity.inner
    return _header_section(data, entity, spec, fields)


def _decode_base64(body: bytes) -> bytes:
    """Lenient base64, matching what ``email``'s get_payload(decode=True) gives."""
    encoded = b"".join(body.splitlines())
    missing = b"==="[: 4 - len(encoded) % 4] if len(encoded) % 4 else b""
    try:
        return base64.b64decode(encoded + missing, validate=True)
    except binascii.Error:
        pass
    # Non-alphabet characters (which do not count towards padding) or a
    # truncated final quantum: retry ignoring them, then with extra padding.
    for suffix in (b"", b"=="):
        try:
            return base64.b64decode(encoded + suffix, validate=False)
        except binascii.Error:
            continue
    # A dangling single character carries fewer than 8 bits: drop it.
    alphabet = re.sub(rb"[^A-Za-z0-9+/]", b"", encoded)
    usable = alphabet[: len(alphabet) - len(alphabet) % 4]
    tail = alphabet[len(usable):]
    if len(tail) >= 2:
        usable += tail + b"=" * (4 - len(tail))
    try:
        return base64.b64decode(usable)
    except binascii.Error:
        return b""


def decode_binary(data: bytes, part: tuple[int, ...]) -> bytes | None:
    """Return ``BINARY[<part>]``: the part's body with its CTE removed (RFC 3516).

    base64 and quoted-printable are decoded; 7bit, 8bit and binary (or no
    Content-Transfer-Encoding) pass through.  Returns None for any other
    encoding, for which the caller answers ``NO [UNKNOWN-CTE]`` (RFC 3516
    section 4.3).  ``part=()`` is the whole message unchanged; a nonexistent part
    gives ``b""``.
    """
    if not part:
        return data
    root = _parse(data, 0, len(data), "text/plain", 0)
    entity = _resolve(root, part)
    if entity is None:
        return b""
    body = data[entity.body_start:entity.end]
    cte = _cte(entity.headers)
    if cte in _IDENTITY_CTES:
        return body
    if cte == "base64":
        return _decode_base64(body)
    if cte == "quoted-printable":
        return quopri.decodestring(body)
    return None
