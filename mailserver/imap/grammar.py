"""IMAP lexical grammar: character classes and wire forms of strings.

Each constant names the ABNF rule of RFC 9051 section 9 (same rules as RFC 3501
section 9) it implements. The parser reads with these classes and the response
writer uses ``quoted``/``astring`` to choose between an atom, a quoted string
and a literal.
"""

from __future__ import annotations

import re
from typing import Final

# CTL = %x00-1F / %x7F (RFC 5234 B.1)
CTL: Final = frozenset(range(0x20)) | {0x7F}
# list-wildcards = "%" / "*"
LIST_WILDCARDS: Final = frozenset(b"%*")
# quoted-specials = DQUOTE / "\"
QUOTED_SPECIALS: Final = frozenset(b'"\\')
# resp-specials = "]"
RESP_SPECIALS: Final = frozenset(b"]")
# atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards / quoted-specials / resp-specials
ATOM_SPECIALS: Final = frozenset(b"(){ ") | CTL | LIST_WILDCARDS | QUOTED_SPECIALS | RESP_SPECIALS
# ATOM-CHAR = <any CHAR except atom-specials>; CHAR = %x01-7F
ATOM_CHARS: Final = frozenset(range(0x01, 0x80)) - ATOM_SPECIALS
# ASTRING-CHAR = ATOM-CHAR / resp-specials
ASTRING_CHARS: Final = ATOM_CHARS | RESP_SPECIALS
# tag = 1*<any ASTRING-CHAR except "+">
TAG_CHARS: Final = ASTRING_CHARS - {ord("+")}
# list-char = ATOM-CHAR / list-wildcards / resp-specials
LIST_CHARS: Final = ATOM_CHARS | LIST_WILDCARDS | RESP_SPECIALS
# QUOTED-CHAR = <any TEXT-CHAR except quoted-specials> / "\" quoted-specials / UTF8-2..4 (RFC 9051)
TEXT_CHARS: Final = frozenset(range(0x01, 0x100)) - {0x0A, 0x0D}
# Characters of fetch-att names and section specifiers ("BODY.PEEK", "HEADER.FIELDS.NOT").
FETCH_NAME_CHARS: Final = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.")
DIGITS: Final = frozenset(b"0123456789")

# literal = "{" number64 ["+"] "}" CRLF *CHAR8 (RFC 9051; "+" is LITERAL+, RFC 7888);
# literal8 = "~{" number64 "}" CRLF *OCTET (RFC 3516). Matched at the end of a line.
LITERAL_AT_END: Final = re.compile(rb"~?\{(\d{1,20})(\+?)\}\r?\n\Z")

MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# flag = "\Answered" / "\Flagged" / "\Deleted" / "\Seen" / "\Draft" / flag-keyword / flag-extension
SYSTEM_FLAGS: Final = {f.lower(): f for f in ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")}


def is_atom(text: str) -> bool:
    """True if ``text`` may go on the wire as a bare atom (and is not NIL)."""
    data = text.encode("utf-8", "surrogateescape")
    return bool(data) and all(c in ATOM_CHARS for c in data) and text.upper() != "NIL"


def is_astring(text: str) -> bool:
    """True if ``text`` may go on the wire as 1*ASTRING-CHAR (and is not NIL)."""
    data = text.encode("utf-8", "surrogateescape")
    return bool(data) and all(c in ASTRING_CHARS for c in data) and text.upper() != "NIL"


def canonical_flag(flag: str) -> str:
    """System flags compare case-insensitively (RFC 9051 section 2.3.2); give them one spelling."""
    return SYSTEM_FLAGS.get(flag.lower(), flag) if flag.startswith("\\") else flag


_QUOTED_BAD: Final = re.compile(rb"[\x00\r\n]")


def quoted(data: bytes) -> bytes | None:
    """``data`` as a quoted string, or None when it needs a literal (CR, LF, NUL, 8-bit)."""
    if not data.isascii() or _QUOTED_BAD.search(data):
        return None
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def string(data: bytes, *, utf8: bool = False) -> bytes:
    """string = quoted / literal; quoted UTF-8 is allowed once UTF8=ACCEPT is enabled."""
    q = quoted(data)
    if q is not None:
        return q
    if utf8 and not any(c in (0, 0x0A, 0x0D) for c in data):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return b"{%d}\r\n" % len(data) + data


def astring(text: str, *, utf8: bool = False) -> bytes:
    """astring = 1*ASTRING-CHAR / string."""
    data = text.encode("utf-8")
    if data and all(c in ASTRING_CHARS for c in data) and text.upper() != "NIL":
        return data
    return string(data, utf8=utf8)
