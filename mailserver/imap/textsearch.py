"""SEARCH keys evaluated on raw message bytes (RFC 9051 section 6.4.4).

Covers BODY, TEXT, HEADER <field-name> <string> and the SENTBEFORE / SENTON /
SENTSINCE date (RFC 9051 section 6.4.4; RFC 3501 section 6.4.4).

Matching: RFC 9051 section 6.4.4 asks for a substring match that is
case-insensitive at least for ASCII.  For Vietnamese that is not enough: the
same word arrives precomposed (NFC) from most clients and decomposed (NFD) from
macOS, "Đ"/"đ" are outside ASCII, and staff type without diacritics.  Both
sides are therefore folded as the full-text index folds them
(``storage.textfold.fold``: NFC, casefold, tone and vowel marks dropped, đ ->
d), or, with ``exact=True`` (``search.exact_diacritics`` and a query that has
diacritics), only NFC-normalised and casefolded (the canonical caseless match
of Unicode section 3.13).  Runs of whitespace are collapsed to one space so
that a phrase still matches across a folded header or a wrapped body line.
This scan answers what the index cannot: strings too short for it, and
messages not indexed yet (``mailserver.imap.search``).

Text is decoded before matching: RFC 2047 encoded-words in headers, the
Content-Transfer-Encoding and charset of body parts (RFC 2045 section 6, RFC
2046 section 4.1.2).  Only text/* parts are searched (with HTML tags stripped);
attachments of other types are not.  No input makes these functions raise:
unknown charsets and broken encodings fall back to UTF-8 with replacement.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import datetime
import quopri
import re
from collections.abc import Iterator
from email.message import Message
from email.parser import BytesHeaderParser, BytesParser
from email.policy import compat32
from email.utils import parsedate_tz
from html.parser import HTMLParser
from typing import Final

from storage import textfold

__all__ = ["body_contains", "header_contains", "sent_date", "text_contains"]

# Nesting below this depth is not searched: a hostile message must not exhaust
# the stack, and no real mailer nests this deep.
_MAX_DEPTH: Final = 64

_WHITESPACE: Final = re.compile(r"\s+")

# RFC 2047 section 2: encoded-word = "=?" charset "?" encoding "?" encoded-text "?="
_ENCODED_WORD: Final = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
# RFC 2047 section 6.2: whitespace between adjacent encoded-words is dropped.
_BETWEEN_WORDS: Final = re.compile(r"(=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=)\s+(?==\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=)")


def _fold(text: str, exact: bool = False) -> str:
    """Folded (or exact caseless) form with collapsed whitespace (see module docstring)."""
    return _WHITESPACE.sub(" ", textfold.exact(text) if exact else textfold.fold(text))


def _codec(charset: str | None) -> str | None:
    """The Python codec for a MIME charset name, or None if unknown.

    Bytes-to-bytes codecs ("base64", "zlib" ...) are rejected: a charset
    parameter must never select them.
    """
    if not charset:
        return None
    # RFC 2231 section 5 lets a charset carry a language ("utf-8*vi").
    name = charset.split("*", 1)[0].strip().strip('"').lower()
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


def _decode_bytes(raw: bytes, charset: str | None) -> str:
    """Decode text in the declared charset, guessing when it is absent or wrong."""
    codec = _codec(charset)
    # An "us-ascii" (or missing) label on 8-bit text is common; UTF-8 is then
    # the best guess, as RFC 6532 makes it the default for 8-bit headers.
    if codec is not None and codec != "ascii":
        try:
            return raw.decode(codec, "replace")
        except (LookupError, UnicodeError, ValueError, TypeError):
            pass
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        # Not UTF-8: Latin-1 keeps every byte (ISO-8859-1 senders read right).
        return raw.decode("latin-1")


def _b_decode(text: str) -> bytes:
    # Lenient: drop stray characters and padding, re-pad, and drop a dangling
    # single character (it carries no whole octet).
    data = re.sub(r"[^A-Za-z0-9+/]", "", text)
    cut = len(data) - len(data) % 4
    tail = data[cut:]
    data = data[:cut] + (tail + "=" * (4 - len(tail)) if len(tail) >= 2 else "")
    try:
        return base64.b64decode(data)
    except (binascii.Error, ValueError):
        return b""


def _q_decode(text: str) -> bytes:
    # RFC 2047 section 4.2: "_" is a space in the Q encoding.
    raw = text.replace("_", " ").encode("ascii", "replace")
    return quopri.decodestring(raw, header=True)


def _decode_header_value(value: str) -> str:
    """Unfold and RFC 2047-decode a header value from the compat32 parser.

    8-bit bytes arrive as surrogate escapes (RFC 6532 raw UTF-8 headers) and are
    decoded here like a body without a charset label.
    """
    raw = value.encode("ascii", "surrogateescape")
    text = _decode_bytes(raw, None)
    # RFC 5322 section 2.2.3: unfolding removes the CRLF before the WSP.
    text = re.sub(r"\r?\n(?=[ \t])", "", text)
    text = _BETWEEN_WORDS.sub(r"\1", text)

    def word(m: re.Match[str]) -> str:
        charset, encoding, payload = m.group(1), m.group(2).upper(), m.group(3)
        data = _b_decode(payload) if encoding == "B" else _q_decode(payload)
        return _decode_bytes(data, charset)

    return _ENCODED_WORD.sub(word, text)


class _TextExtractor(HTMLParser):
    """Collect the character data of an HTML document, skipping script/style."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in ("br", "p", "div", "td", "tr", "li"):
            # Block boundaries separate words even without whitespace.
            self.chunks.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.chunks.append(data)


def _html_text(html: str) -> str:
    parser = _TextExtractor()
    try:
        parser.feed(html)
        parser.close()
    except (AssertionError, ValueError, IndexError):
        # HTMLParser has raised on malformed marked sections; a crude strip of
        # the tags is still better than not searching the part.
        return re.sub(r"<[^>]*>", " ", html)
    return "".join(parser.chunks)


def _part_text(part: Message) -> str:
    """The decoded text of a non-multipart text/* part."""
    # compat32 decodes leniently: bad base64 or quoted-printable gives the best
    # effort, not an exception.
    raw = part.get_payload(decode=True)
    if not isinstance(raw, bytes):
        return ""
    text = _decode_bytes(raw, part.get_content_charset())
    if part.get_content_subtype() == "html":
        text = _html_text(text)
    return text


def _header_text(msg: Message) -> str:
    lines: list[str] = []
    for name, value in msg.raw_items():
        lines.append(f"{name}: {_decode_header_value(value)}")
    return "\n".join(lines)


def _body_texts(msg: Message) -> Iterator[str]:
    """Decoded texts of the body: text/* parts and encapsulated headers.

    Iterative with a depth limit instead of ``Message.walk`` (which recurses) so
    that deep nesting cannot raise RecursionError.
    """
    stack: list[tuple[Message, int]] = [(msg, 0)]
    while stack:
        part, depth = stack.pop()
        payload = part.get_payload()
        if isinstance(payload, list):
            if depth >= _MAX_DEPTH:
                continue
            subs = [sub for sub in payload if isinstance(sub, Message)]
            if part.get_content_type() in ("message/rfc822", "message/global"):
                # An encapsulated message's header is text of this body.
                for sub in subs:
                    yield _header_text(sub)
            stack.extend((sub, depth + 1) for sub in reversed(subs))
        elif part.get_content_maintype() == "text":
            yield _part_text(part)


def _raw_headers(data: bytes) -> Iterator[tuple[str, str]]:
    # raw_items, not items: compat32 turns a value with 8-bit bytes into an
    # "unknown-8bit" Header whose str() loses them (RFC 6532 UTF-8 headers).
    return BytesHeaderParser(policy=compat32).parsebytes(data).raw_items()


def _parse(data: bytes) -> Message:
    return BytesParser(policy=compat32).parsebytes(data)


def _contains(haystacks: Iterator[str], needle: str, exact: bool) -> bool:
    folded = _fold(needle, exact)
    if not folded:
        return True
    # Each text is matched on its own so a match never spans two parts.
    return any(folded in _fold(text, exact) for text in haystacks)


def body_contains(data: bytes, needle: str, *, exact: bool = False) -> bool:
    """SEARCH BODY: ``needle`` occurs in the decoded body text (RFC 9051 section 6.4.4)."""
    if not _fold(needle):
        return True
    try:
        return _contains(_body_texts(_parse(data)), needle, exact)
    except Exception:
        # The one deliberate broad catch: one broken message must make its
        # SEARCH key false, never fail the whole SEARCH command.
        return False


def text_contains(data: bytes, needle: str, *, exact: bool = False) -> bool:
    """SEARCH TEXT: ``needle`` occurs in the decoded header or body (RFC 9051 section 6.4.4)."""
    if not _fold(needle):
        return True
    try:
        msg = _parse(data)

        def texts() -> Iterator[str]:
            yield _header_text(msg)
            yield from _body_texts(msg)

        return _contains(texts(), needle, exact)
    except Exception:
        # The one deliberate broad catch: one broken message must make its
        # SEARCH key false, never fail the whole SEARCH command.
        return False


def header_contains(data: bytes, name: str, needle: str, *, exact: bool = False) -> bool:
    """SEARCH HEADER: some ``name`` field's decoded value contains ``needle``.

    RFC 9051 section 6.4.4: an empty ``needle`` matches every message that has
    the field.  Every occurrence of a repeated field is tried.
    """
    try:
        wanted = name.strip().lower()
        values = [v for k, v in _raw_headers(data) if k.lower() == wanted]
        if not values:
            return False
        return _contains((_decode_header_value(v) for v in values), needle, exact)
    except Exception:
        # The one deliberate broad catch: one broken message must make its
        # SEARCH key false, never fail the whole SEARCH command.
        return False


def sent_date(data: bytes) -> datetime.date | None:
    """The calendar date of the Date: field, or None if missing or unparseable.

    RFC 9051 section 6.4.4: SENTBEFORE/SENTON/SENTSINCE disregard time and
    timezone, so the date is the one written in the field, in the sender's own
    timezone, not converted to UTC.
    """
    try:
        value = next((v for k, v in _raw_headers(data) if k.lower() == "date"), None)
        if value is None:
            return None
        parsed = parsedate_tz(_decode_header_value(value))
        if parsed is None:
            return None
        return datetime.date(parsed[0], parsed[1], parsed[2])
    except Exception:
        # Any malformed date is simply "no date" (the key does not match).
        return None
