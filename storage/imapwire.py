"""The IMAP wire form of a message's ENVELOPE (RFC 9051 section 7.5.2), made once.

The store keeps each message's envelope as JSON (``mimeinfo.envelope_to_json``)
and, since migration ``0005_envelope_wire``, also the bytes IMAP sends for it to
a client that has not enabled UTF8=ACCEPT: a FETCH of ENVELOPE over a whole
folder then copies bytes instead of decoding JSON and quoting every field of
every message (Dovecot keeps the same thing in its cache file).

This module is the one place that turns the cached JSON into wire bytes; the
IMAP layer (``mailserver.imap.responses``) uses it for the UTF8=ACCEPT form and
for rows written before the column existed. It knows only the string rules of
RFC 9051 section 4.3 (quoted or literal) and RFC 2047 encoded-words.
"""

from __future__ import annotations

import json
import re
from binascii import b2a_base64
from typing import Final

__all__ = ["encoded_word", "envelope_wire"]


def encoded_word(value: str) -> str:
    """``=?utf-8?b?...?=``: what email.charset's header_encode gives for UTF-8 with
    BASE64 (one word, no folding), without its per-call machinery."""
    return "=?utf-8?b?" + b2a_base64(value.encode("utf-8"), newline=False).decode("ascii") + "?="


_QUOTE_SPECIAL: Final = re.compile(rb'[\x00\r\n"\\]')
_CTL: Final = re.compile(rb"[\x00\r\n]")
"""Bytes no quoted string may hold, even with UTF8=ACCEPT."""


def _string(data: bytes, utf8: bool) -> bytes:
    """string = quoted / literal (RFC 9051 section 4.3); 8-bit text may be quoted
    only once UTF8=ACCEPT is enabled (RFC 6855 section 3)."""
    if (data.isascii() or utf8) and not _CTL.search(data):
        return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return b"{%d}\r\n%b" % (len(data), data)


def _nstring(value: object, utf8: bool) -> bytes:
    """A header-derived string: NIL, ASCII as is, else UTF-8 or an RFC 2047 word."""
    if value is None:
        return b"NIL"
    if not isinstance(value, str):
        raise ValueError("corrupt cached envelope")
    if value.isascii():
        data = value.encode("ascii")
        if not _QUOTE_SPECIAL.search(data):
            return b'"%s"' % data  # the common case: nothing to escape
        return _string(data, utf8)
    if not utf8:
        value = encoded_word(value)
    return _string(value.encode("utf-8"), utf8)


def _address_list(addrs: object, utf8: bool) -> bytes:
    if not addrs:
        return b"NIL"
    if not isinstance(addrs, list):
        raise ValueError("corrupt cached envelope")
    # env-to = "(" 1*address ")": the addresses follow each other with no space.
    out = [b"("]
    for addr in addrs:
        if not isinstance(addr, list) or len(addr) != 4:
            raise ValueError("corrupt cached envelope")
        out += [b"(", b" ".join([_nstring(part, utf8) for part in addr]), b")"]
    out.append(b")")
    return b"".join(out)


def envelope_wire(cached: str, utf8: bool) -> bytes:
    """The ENVELOPE of the cached JSON as IMAP sends it, parentheses included."""
    obj = json.loads(cached)
    if not isinstance(obj, list) or len(obj) != 10:
        raise ValueError("corrupt cached envelope")
    from_ = obj[2]
    fields = [
        _nstring(obj[0], utf8),
        _nstring(obj[1], utf8),
        _address_list(from_, utf8),
        # RFC 9051 section 7.5.2: sender and reply-to default to from.
        _address_list(obj[3] or from_, utf8),
        _address_list(obj[4] or from_, utf8),
        *(_address_list(obj[i], utf8) for i in (5, 6, 7)),
        _nstring(obj[8], utf8),
        _nstring(obj[9], utf8),
    ]
    return b"(" + b" ".join(fields) + b")"
