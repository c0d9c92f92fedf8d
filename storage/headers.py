"""The one reader of a message's header section (RFC 5322 sections 2.2, 3.6 and
the obsolete syntax of section 4.5.1).

Everything in the server that asks "who is this message from?" reads the header
section here, so that one From drives every decision: sender authentication
(DMARC's RFC5322.From and the local-sender rule, ``policy.checks.authentication``),
submission's From/Sender alignment (``mailserver.smtp.submit``), the DKIM signing
domain of the outbound queue, and the IMAP ENVELOPE and search columns computed
at delivery (``storage.mimeinfo``), which the portal and every IMAP client show.

Theory of operation
-------------------
``fields`` is deliberately lenient, because it also reads whatever a user
APPENDs: a line is a field when it has a colon after a name without inner
whitespace; blanks between the name and the colon are the obsolete syntax of
section 4.5.1 (``From :`` is a From field); a line starting with a blank
continues the field before it (section 2.2.3, unfolding removes the line
break only); any other line ends the field before it and is skipped.

Mail readers do not all read such headers the same way: Python's own parser
ends the header section at the first line that is not a well-formed field,
others skip it, others treat ``From :`` as no From at all. A message whose
header section could be read two ways can show one sender to the user while
another passed the checks. ``ambiguity`` names the first such construct, and
SMTP refuses the message with ``550 5.6.0`` on every path (MX, relay,
submission) before any check reads it:

* a first line that starts with a blank (a continuation of nothing);
* a line that is neither a field nor a continuation (no colon, or a field
  name with characters outside ``ftext``, section 3.6.8), which includes the
  obsolete blanks before the colon and an mbox ``From `` line;
* more than one From or Sender field (section 3.6: each occurs at most once;
  RFC 7489 section 6.6.1 lets a receiver refuse several From fields);
* a From or Sender field whose address list names other addresses when read
  by the strict RFC 5322 parser (``email.headerregistry``'s) than when read
  leniently (``email.utils.getaddresses``, what the server uses): in
  ``a@example.org <b@dongnai.gov.vn>`` one reader sees only the first, the
  other both (CVE-2023-27043 class).
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Iterable
from email import _header_value_parser
from typing import Final

__all__ = ["addresses", "ambiguity", "field_values", "fields", "from_addresses", "split"]

_BLANK_LINE: Final = re.compile(rb"\r?\n\r?\n")
_FIELD_NAME: Final = re.compile(rb"[!-9;-~]+")
"""RFC 5322 section 3.6.8: field-name = 1*ftext; ftext = %d33-57 / %d59-126."""
_OBS_NAME: Final = re.compile(rb"([!-9;-~]+)[ \t]*")
"""Section 4.5.1: the obsolete syntax allows blanks between name and colon."""
_ATEXT: Final = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~\-"
_ADDR_SPEC: Final = rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*"
_SIMPLE_MAILBOX: Final = re.compile(
    rf'(?:"[^"\\\r\n]*"[ \t]*|[{_ATEXT}. \t\u0080-\U0010ffff]*)<{_ADDR_SPEC}>|{_ADDR_SPEC}'
)
"""One mailbox every reader reads alike: an addr-spec of atext and dots, bare or
in angle brackets after a display name without specials (no comment, comma,
"@" or backslash). The address-list comparison of ``ambiguity`` is skipped
for it (the strict parser costs ~0.1 ms per field)."""
_PLAIN_MAILBOX: Final = re.compile(
    rf"(?:([{_ATEXT}]+(?: [{_ATEXT}]+)*) ?<({_ADDR_SPEC})>|<({_ADDR_SPEC})>|({_ADDR_SPEC}))"
)
"""The mailboxes most fields hold - ``a@b``, ``<a@b>``, ``Name Words <a@b>``,
words of atext only - whose (display name, addr-spec) ``addresses`` reads
without ``email.utils.getaddresses`` (its pure-Python parser: ~10 us each)."""
_SINGLE: Final = ("from", "sender")
"""Fields that name the author; a second one makes the sender ambiguous."""


def split(raw: bytes) -> tuple[bytes, bytes]:
    """Header section (with its last line break) and body; the empty line that
    separates them is in neither. LF alone is accepted as a line break here
    (messages a client APPENDs); SMTP has refused bare LF before this."""
    if raw.startswith(b"\r\n"):
        return b"", raw[2:]
    if raw.startswith(b"\n"):
        return b"", raw[1:]
    match = _BLANK_LINE.search(raw)
    if match is None:
        return raw, b""
    # The first line break ends the last header line; the second is the blank line.
    first_break_end = raw.index(b"\n", match.start()) + 1
    return raw[:first_break_end], raw[match.end() :]


def _text(value: bytes) -> str:
    """Header bytes as text: UTF-8 (RFC 6532) when valid, otherwise Latin-1 so no octet is lost."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def _lines(header: bytes) -> list[bytes]:
    return [line.rstrip(b"\r") for line in header.split(b"\n") if line.rstrip(b"\r")]


_last_fields: tuple[bytes, tuple[tuple[str, str], ...]] = (b"", ())
"""The header section ``fields`` read last and its reading: SMTP reads one
message's header section several times at DATA (``ambiguity``, the DMARC From,
the checks), and the reading is a pure function of the bytes. One tuple,
replaced whole, so threads reading it at once see a consistent pair."""


def fields(header: bytes) -> list[tuple[str, str]]:
    """The fields of a header section as (lower-case name, unfolded value), in
    order; the lenient reading of the module docstring."""
    global _last_fields  # noqa: PLW0603 - a one-entry cache, see above
    last = _last_fields
    if header == last[0] and header:
        return list(last[1])
    result = _fields(header)
    _last_fields = (bytes(header), tuple(result))
    return result


def _fields(header: bytes) -> list[tuple[str, str]]:
    """``fields`` without the cache."""
    entries: list[tuple[str, list[bytes]]] = []
    current: list[bytes] | None = None
    for line in _lines(header):
        if line[:1] in (b" ", b"\t"):
            if current is not None:
                current.append(line)
            continue
        name, sep, value = line.partition(b":")
        match = _OBS_NAME.fullmatch(name)
        if not sep or match is None:
            current = None  # not a field, and it ends any folding
            continue
        current = [value]
        entries.append((_text(match.group(1)).lower(), current))
    return [(name, _text(b"".join(chunks)).strip()) for name, chunks in entries]


def field_values(message: bytes, name: str) -> list[str]:
    """Unfolded values of every ``name`` field in the header section of ``message``."""
    wanted = name.lower()
    return [value for key, value in fields(split(message)[0]) if key == wanted]


def addresses(values: list[str]) -> list[tuple[str, str]]:
    """(display name, addr-spec) of every mailbox in address-list values
    (RFC 5322 section 3.4), as ``email.utils.getaddresses`` reads them; ``[]``
    when the list is beyond parsing."""
    if not values:
        return []
    plain: list[tuple[str, str]] = []
    for value in values:
        match = _PLAIN_MAILBOX.fullmatch(value)
        if match is None:
            break
        display, named, bracketed, bare = match.groups()
        plain.append((display or "", named or bracketed or bare))
    else:
        return plain  # what getaddresses reads (tests/unit/test_store_fast_paths.py)
    try:
        return email.utils.getaddresses(values)
    except Exception:  # noqa: BLE001 - malformed lists must not stop delivery
        return []


def from_addresses(message: bytes, name: str = "From") -> list[str]:
    """addr-specs (possibly empty strings) of every mailbox in every ``name``
    field of ``message`` (default From)."""
    return [addr for _display, addr in addresses(field_values(message, name))]


def ambiguity(message: bytes) -> str | None:
    """Why the header section of ``message`` could be read two ways (module
    docstring), or None when it cannot."""
    seen: dict[bytes, int] = {}
    header = split(message)[0]
    for index, line in enumerate(_lines(header)):
        if line[:1] in (b" ", b"\t"):
            if index == 0:
                return "the first header line starts with white space"
            continue
        name, sep, _value = line.partition(b":")
        if not sep:
            return f"header line {index + 1} has no colon"
        if _FIELD_NAME.fullmatch(name) is None:
            if _OBS_NAME.fullmatch(name) is not None:
                return f"white space before the colon of header field {_text(name.strip())!r}"
            return f"header line {index + 1} has no valid field name"
        key = name.lower()
        if key.decode("ascii") in _SINGLE:
            seen[key] = seen.get(key, 0) + 1
            if seen[key] > 1:
                return f"more than one {name.decode('ascii')} field"
    for field_name, value in fields(header):
        if field_name not in _SINGLE or _simple(value):
            continue
        if _strict(value) != _normal(a for _, a in addresses([value])):
            return f"the {field_name} field reads as different addresses to different parsers"
    return None


def _simple(value: str) -> bool:
    return _SIMPLE_MAILBOX.fullmatch(value) is not None


def _normal(addrs: Iterable[str]) -> set[str]:
    """Addresses compared case-insensitively, quoting aside (``"a..b"@x`` is ``a..b@x``)."""
    return {addr.replace('"', "").replace("\\", "").lower() for addr in addrs if addr}


def _strict(value: str) -> set[str] | None:
    """The address list as RFC 5322 reads it; None if it cannot."""
    try:
        parsed, rest = _header_value_parser.get_address_list(value)
        mailboxes = [m.addr_spec for a in parsed.addresses for m in a.all_mailboxes]
    except Exception:  # noqa: BLE001 - the parser raises IndexError & co. on garbage
        return None
    return _normal(mailboxes) if not rest.strip() else None
