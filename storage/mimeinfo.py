"""Message analysis at delivery: IMAP ENVELOPE, BODYSTRUCTURE and search columns.

Implements the data of RFC 9051 section 7.5.2 (ENVELOPE, BODYSTRUCTURE; same as
RFC 3501 section 7.4.2) over MIME as defined by RFC 2045 section 5 (Content-Type),
RFC 2046 section 5.1.1 (multipart boundaries), RFC 2047 (encoded words), RFC 2183
(Content-Disposition), RFC 2231 (parameter continuations), RFC 3282
(Content-Language), RFC 2557 (Content-Location) and RFC 6532 (raw UTF-8 headers,
message/global).

Theory of operation
-------------------
``email`` parses a message into objects and loses byte offsets, yet BODYSTRUCTURE
sizes are octets of each part's encoded body *as in the raw message*. So the part
tree is found here, on the raw bytes: a part is split into header and body at the
first empty line, and a multipart body is cut at its delimiter lines. As in
Dovecot's ``message-parser.c``, the line break before a delimiter belongs to the
delimiter (RFC 2046 section 5.1.1), a missing close delimiter ends the last part at
the end of the body, and a multipart without parts reports one empty text/plain
part (a multipart needs at least one child in the IMAP grammar). Line counts are
the number of LF octets in the part body, which is what Dovecot reports.

``email`` is still used where it is good: parameter lists (RFC 2231) and address
lists. Broken MIME never raises: anything unparsable degrades to defaults, and as a
last resort the whole message is reported as one text/plain part.
"""

from __future__ import annotations

import base64
import binascii
import email.message
import email.utils
import json
import re
from dataclasses import dataclass
from typing import Final, TypeAlias

from storage import headers
from storage.api import Address, BodyPart, Envelope

__all__ = [
    "SearchFields",
    "analyse",
    "body_from_json",
    "body_to_json",
    "decode_words",
    "envelope_from_json",
    "envelope_to_json",
]

_MAX_DEPTH: Final = 40
"""Nesting deeper than this is reported as an opaque leaf (protects the stack)."""

_MISSING_DOMAIN: Final = "MISSING_DOMAIN"
_MISSING_MAILBOX: Final = "MISSING_MAILBOX"
"""What Dovecot puts in ENVELOPE for an address without domain or mailbox, so
that a NIL host is never mistaken for RFC 9051 group syntax."""


@dataclass(frozen=True, slots=True)
class SearchFields:
    """Decoded (RFC 2047), unfolded, lower-cased header text for SQL substring search."""

    subject: str
    from_: str
    to: str
    cc: str
    bcc: str
    message_id: str


# -- headers ------------------------------------------------------------------

def _split(raw: bytes) -> tuple[bytes, bytes]:
    """Header block (with its last line break) and body; the empty line is in neither."""
    return headers.split(raw)


def _fields(header: bytes) -> dict[str, list[str]]:
    """Unfolded header fields by lower-case name, in order (RFC 5322 section 2.2.3),
    read by ``storage.headers``: the same reading sender authentication uses."""
    fields: dict[str, list[str]] = {}
    for field_name, value in headers.fields(header):
        fields.setdefault(field_name, []).append(value)
    return fields


def _first(fields: dict[str, list[str]], name: str) -> str | None:
    values = fields.get(name)
    return values[0] if values else None


_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")


def _decode_word_bytes(kind: str, text: str) -> bytes | None:
    try:
        if kind in "bB":
            return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        return binascii.a2b_qp(text.encode("ascii", "replace"), header=True)
    except (binascii.Error, ValueError):
        return None


def _charset_decode(data: bytes, charset: str) -> str:
    # RFC 2231 section 5 allows "charset*language" inside encoded words.
    charset = charset.split("*", 1)[0]
    try:
        return data.decode(charset, "replace")
    except LookupError:
        return data.decode("utf-8", "replace")


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded words; whitespace between adjacent words is dropped
    (section 6.2) and adjacent words in one charset are joined before decoding, so a
    multi-byte character split across two words survives."""
    if "=?" not in value:
        return value
    out: list[str] = []
    pending: bytearray = bytearray()
    pending_charset: str | None = None
    pos = 0
    last_was_word = False

    def flush() -> None:
        nonlocal pending_charset
        if pending_charset is not None:
            out.append(_charset_decode(bytes(pending), pending_charset))
            pending.clear()
            pending_charset = None

    for match in _ENCODED_WORD.finditer(value):
        between = value[pos : match.start()]
        decoded = _decode_word_bytes(match.group(2), match.group(3))
        if decoded is None:
            continue  # left as literal text, picked up with the next "between"
        if not (last_was_word and between.strip(" \t\r\n") == ""):
            flush()
            out.append(between)
        charset = match.group(1).lower()
        if pending_charset is not None and pending_charset != charset:
            flush()
        pending_charset = charset
        pending.extend(decoded)
        last_was_word = True
        pos = match.end()
    flush()
    out.append(value[pos:])
    return "".join(out)


def _params_of(value: str | None) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    """The value before the first ';' (lower-case) and its parameters (RFC 2045
    section 5.1, RFC 2231 continuations and charsets collapsed)."""
    if value is None:
        return None, ()
    msg = email.message.Message()
    msg["X-Params"] = value
    try:
        raw_params = msg.get_params(header="x-params") or []
    except Exception:  # noqa: BLE001 - email's parameter parser has many failure modes
        return value.split(";", 1)[0].strip().lower() or None, ()
    head = value.split(";", 1)[0].strip().lower() or None
    params: list[tuple[str, str]] = []
    for key, raw in raw_params[1:]:
        if not key:
            continue
        if isinstance(raw, tuple):
            text = email.utils.collapse_rfc2231_value(raw)
        else:
            text = email.utils.unquote(raw)
        params.append((key.lower(), text))
    return head, tuple(params)


# -- envelope -----------------------------------------------------------------


def _addresses(fields: dict[str, list[str]], name: str) -> tuple[Address, ...]:
    values = fields.get(name)
    if not values:
        return ()
    result: list[Address] = []
    for display, addr in headers.addresses(values):
        display = decode_words(display).strip()
        addr = addr.strip()
        if not display and not addr:
            continue
        if addr.endswith(":;") or addr.endswith(":"):
            continue  # RFC 5322 group syntax; simplified to its members
        if "@" in addr:
            mailbox, _, host = addr.rpartition("@")
        else:
            mailbox, host = addr, _MISSING_DOMAIN
        result.append(
            Address(
                name=display or None,
                route=None,
                mailbox=mailbox or _MISSING_MAILBOX,
                host=host or _MISSING_DOMAIN,
            )
        )
    return tuple(result)


def _envelope(fields: dict[str, list[str]]) -> Envelope:
    """RFC 9051 section 7.5.2 ENVELOPE. Sender and Reply-To default to From."""
    subject = _first(fields, "subject")
    from_ = _addresses(fields, "from")
    sender = _addresses(fields, "sender") or from_
    reply_to = _addresses(fields, "reply-to") or from_
    return Envelope(
        date=_first(fields, "date"),
        subject=None if subject is None else decode_words(subject),
        from_=from_,
        sender=sender,
        reply_to=reply_to,
        to=_addresses(fields, "to"),
        cc=_addresses(fields, "cc"),
        bcc=_addresses(fields, "bcc"),
        in_reply_to=_first(fields, "in-reply-to"),
        message_id=_first(fields, "message-id"),
    )


def _search_fields(fields: dict[str, list[str]]) -> SearchFields:
    def text(name: str) -> str:
        return ", ".join(decode_words(v) for v in fields.get(name, ())).lower()

    return SearchFields(
        subject=text("subject"),
        from_=text("from"),
        to=text("to"),
        cc=text("cc"),
        bcc=text("bcc"),
        message_id=text("message-id"),
    )


# -- body structure -----------------------------------------------------------

_EMPTY_TEXT: Final = BodyPart(
    maintype="text", subtype="plain", params=(("charset", "us-ascii"),), size=0, lines=0
)


def _split_multipart(body: bytes, boundary: str) -> list[bytes]:
    """Parts of a multipart body by RFC 2046 section 5.1.1 delimiter lines.

    The line break before a delimiter belongs to the delimiter; transport padding
    after it is allowed; a body without close delimiter ends at the end.
    """
    delimiter = b"--" + boundary.encode("utf-8", "surrogateescape")
    parts: list[bytes] = []
    start: int | None = None
    # bytes.find, not a (?m)^ regex: the regex engine tries every position of a
    # 30 KB body one by one (~3 ms), find skips to candidates in C (~20 us).
    at = body.find(delimiter)
    while at >= 0:
        after = at + len(delimiter)
        if at > 0 and body[at - 1] != 0x0A:
            at = body.find(delimiter, at + 1)
            continue  # not at the start of a line
        eol = body.find(b"\n", after)
        line_end = len(body) if eol < 0 else eol + 1
        rest = body[after:line_end].rstrip(b"\r\n")
        closing = rest.startswith(b"--")
        if (rest[2:] if closing else rest).strip(b" \t"):
            at = body.find(delimiter, after)
            continue  # a longer boundary that merely starts like ours
        if start is not None:
            end = at
            if end > start and body[end - 1 : end] == b"\n":
                end -= 1
                if end > start and body[end - 1 : end] == b"\r":
                    end -= 1
            parts.append(body[start:end])
        if closing:
            return parts
        start = line_end
        at = body.find(delimiter, after)
    if start is not None:
        parts.append(body[start:])
    return parts


def _part(
    raw: bytes,
    default_type: tuple[str, str],
    depth: int,
    split: tuple[dict[str, list[str]], bytes] | None = None,
) -> BodyPart:
    """One part; ``split`` is its header fields and body when already known."""
    if split is None:
        header, body = _split(raw)
        fields = _fields(header)
    else:
        fields, body = split
    ctype_value = _first(fields, "content-type")
    ctype, params = _params_of(ctype_value)
    if ctype is not None and "/" in ctype:
        maintype, _, subtype = ctype.partition("/")
        maintype, subtype = maintype.strip(), subtype.strip()
    else:
        maintype, subtype = default_type
        ctype = None
    if not maintype or not subtype:
        maintype, subtype, ctype = "text", "plain", None
    if ctype is None and maintype == "text":
        # RFC 2045 section 5.2: no (valid) Content-Type means text/plain; charset=us-ascii.
        params = (("charset", "us-ascii"),)
    elif maintype == "text" and not any(key == "charset" for key, _ in params):
        # RFC 2046 section 4.1.2: the default charset is US-ASCII; Dovecot reports it.
        params = (("charset", "us-ascii"), *params)
    encoding = (_first(fields, "content-transfer-encoding") or "7bit").strip().upper() or "7BIT"
    disposition_value, disposition_params = _params_of(_first(fields, "content-disposition"))
    disposition = None if disposition_value is None else (disposition_value, disposition_params)
    language_value = _first(fields, "content-language")
    language = (
        tuple(t.strip() for t in language_value.split(",") if t.strip()) or None
        if language_value is not None
        else None
    )
    location_value = _first(fields, "content-location")
    location = None if location_value is None else "".join(location_value.split())
    boundary = dict(params).get("boundary")
    if maintype == "multipart" and boundary and depth < _MAX_DEPTH:
        child_default = ("message", "rfc822") if subtype == "digest" else ("text", "plain")
        children = tuple(_part(p, child_default, depth + 1) for p in _split_multipart(body, boundary))
        return BodyPart(
            maintype=maintype,
            subtype=subtype,
            params=params,
            disposition=disposition,
            language=language,
            location=location,
            children=children or (_EMPTY_TEXT,),
        )
    if maintype == "multipart":
        # No boundary: the parts cannot be found, so report the body as plain text.
        maintype, subtype, params = "text", "plain", (("charset", "us-ascii"),)
    is_message = (
        maintype == "message"
        and subtype in ("rfc822", "global")
        and encoding in ("7BIT", "8BIT", "BINARY")
        and depth < _MAX_DEPTH
    )
    lines: int | None = None
    if maintype == "text" or is_message:
        lines = body.count(b"\n")
    return BodyPart(
        maintype=maintype,
        subtype=subtype,
        params=params,
        content_id=_first(fields, "content-id"),
        description=_first(fields, "content-description"),
        encoding=encoding,
        size=len(body),
        lines=lines,
        md5=_first(fields, "content-md5"),
        disposition=disposition,
        language=language,
        location=location,
        envelope=_envelope(_fields(_split(body)[0])) if is_message else None,
        children=(_part(body, ("text", "plain"), depth + 1),) if is_message else (),
    )


def analyse(data: bytes) -> tuple[Envelope, BodyPart, SearchFields]:
    """ENVELOPE, BODYSTRUCTURE and search columns of a raw message. Never raises."""
    try:
        header, body = _split(data)
        fields = _fields(header)
        return _envelope(fields), _part(data, ("text", "plain"), 0, (fields, body)), _search_fields(fields)
    except Exception:  # noqa: BLE001 - a delivered message must always be storable
        _, body = _split(data)
        empty = Envelope(None, None, (), (), (), (), (), (), None, None)
        fallback = BodyPart(
            maintype="text",
            subtype="plain",
            params=(("charset", "us-ascii"),),
            size=len(body),
            lines=body.count(b"\n"),
        )
        return empty, fallback, SearchFields("", "", "", "", "", "")


# -- JSON form stored in SQL ----------------------------------------------------

_Json: TypeAlias = None | str | int | list["_Json"]


def _addr_json(addrs: tuple[Address, ...]) -> list[_Json]:
    return [[a.name, a.route, a.mailbox, a.host] for a in addrs]


def _envelope_obj(env: Envelope) -> list[_Json]:
    return [
        env.date,
        env.subject,
        _addr_json(env.from_),
        _addr_json(env.sender),
        _addr_json(env.reply_to),
        _addr_json(env.to),
        _addr_json(env.cc),
        _addr_json(env.bcc),
        env.in_reply_to,
        env.message_id,
    ]


def envelope_to_json(env: Envelope) -> str:
    return json.dumps(_envelope_obj(env), ensure_ascii=False, separators=(",", ":"))


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def _list(obj: object) -> list[object]:
    if not isinstance(obj, list):
        raise ValueError("corrupt cached structure")
    return obj


def _addrs_from(obj: object) -> tuple[Address, ...]:
    obj = [_list(a) for a in _list(obj)]
    return tuple(Address(_opt_str(a[0]), _opt_str(a[1]), _opt_str(a[2]), _opt_str(a[3])) for a in obj)


def _envelope_from_obj(obj: object) -> Envelope:
    obj = _list(obj)
    if len(obj) != 10:
        raise ValueError("corrupt cached envelope")
    return Envelope(
        date=_opt_str(obj[0]),
        subject=_opt_str(obj[1]),
        from_=_addrs_from(obj[2]),
        sender=_addrs_from(obj[3]),
        reply_to=_addrs_from(obj[4]),
        to=_addrs_from(obj[5]),
        cc=_addrs_from(obj[6]),
        bcc=_addrs_from(obj[7]),
        in_reply_to=_opt_str(obj[8]),
        message_id=_opt_str(obj[9]),
    )


def envelope_from_json(text: str) -> Envelope:
    return _envelope_from_obj(json.loads(text))


def _pairs(pairs: tuple[tuple[str, str], ...]) -> list[_Json]:
    return [[k, v] for k, v in pairs]


def _body_obj(part: BodyPart) -> dict[str, object]:
    return {
        "t": part.maintype,
        "s": part.subtype,
        "p": _pairs(part.params),
        "id": part.content_id,
        "d": part.description,
        "e": part.encoding,
        "z": part.size,
        "l": part.lines,
        "m": part.md5,
        "di": None if part.disposition is None else [part.disposition[0], _pairs(part.disposition[1])],
        "la": None if part.language is None else list(part.language),
        "lo": part.location,
        "c": [_body_obj(c) for c in part.children],
        "en": None if part.envelope is None else _envelope_obj(part.envelope),
    }


def body_to_json(part: BodyPart) -> str:
    return json.dumps(_body_obj(part), ensure_ascii=False, separators=(",", ":"))


def _pairs_from(obj: object) -> tuple[tuple[str, str], ...]:
    return tuple((str(k), str(v)) for k, v in (_list(p) for p in _list(obj)))


def _body_from_obj(obj: object) -> BodyPart:
    if not isinstance(obj, dict):
        raise ValueError("corrupt cached body structure")
    di = obj["di"]
    la = obj["la"]
    lines = obj["l"]
    size = obj["z"]
    children = obj["c"]
    if not isinstance(size, int):
        raise ValueError("corrupt cached body structure")
    return BodyPart(
        maintype=str(obj["t"]),
        subtype=str(obj["s"]),
        params=_pairs_from(obj["p"]),
        content_id=_opt_str(obj["id"]),
        description=_opt_str(obj["d"]),
        encoding=str(obj["e"]),
        size=size,
        lines=lines if isinstance(lines, int) else None,
        md5=_opt_str(obj["m"]),
        disposition=None if not isinstance(di, list) else (str(di[0]), _pairs_from(di[1])),
        language=None if not isinstance(la, list) else tuple(str(x) for x in la),
        location=_opt_str(obj["lo"]),
        children=tuple(_body_from_obj(c) for c in _list(children)),
        envelope=None if obj["en"] is None else _envelope_from_obj(obj["en"]),
    )


def body_from_json(text: str) -> BodyPart:
    return _body_from_obj(json.loads(text))
