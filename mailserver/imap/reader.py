"""Recursive-descent reader over the bytes of one complete IMAP command.

RFC 9051 section 9 (formal syntax: tag, atom, astring, string, literal, quoted,
number, number64, sequence-set, flag, date, date-time, mailbox, list-mailbox),
RFC 7888 (LITERAL+), RFC 3516 (literal8). The ABNF character classes live in
``grammar.py``; the command grammars built on this reader in ``arguments.py``.

Numbers are bounded as RFC 9051 section 9 says: ``number`` and ``nz-number``
are 32-bit (sequence numbers, UIDs, dates), ``number64`` 63-bit (sizes in
LARGER/SMALLER, partial ranges, mod-sequences of RFC 7162); a longer one is a
syntax error (BAD), never an integer the store cannot hold. Like Dovecot, the
reader accepts spaces just inside the parentheses of a list
(``( OR SEEN FLAGGED )``) and more than one space between its items.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from typing import Final

from mailserver.imap import commands as c
from mailserver.imap.grammar import (
    ASTRING_CHARS,
    ATOM_CHARS,
    DIGITS,
    FETCH_NAME_CHARS,
    LIST_CHARS,
    MONTHS,
    TAG_CHARS,
    canonical_flag,
)


class GrammarError(Exception):
    """A grammar error inside one command (never escapes the parser: it becomes
    a ``BadCommand``)."""


MAX_NUMBER: Final = 2**32 - 1
"""number = 1*DIGIT ; Unsigned 32-bit integer (RFC 9051 section 9)."""
MAX_NUMBER64: Final = 2**63 - 1
"""number64 = 1*DIGIT ; Unsigned 63-bit integer (RFC 9051 section 9)."""


class Reader:
    """Recursive-descent reader over one command's bytes."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    # -- primitives ----------------------------------------------------------
    def peek(self, n: int = 1) -> bytes:
        return self.data[self.pos : self.pos + n]

    def accept(self, token: bytes) -> bool:
        if self.data[self.pos : self.pos + len(token)].upper() == token:
            self.pos += len(token)
            return True
        return False

    def expect(self, token: bytes) -> None:
        if not self.accept(token):
            raise GrammarError(f"Expected {token.decode()!r}")

    def sp(self) -> None:
        self.expect(b" ")

    def at_end(self) -> bool:
        return self.data[self.pos :] in (b"\r\n", b"\n", b"")

    def end(self) -> None:
        if not self.at_end():
            raise GrammarError("Unexpected characters at end of command")

    def run(self, chars: frozenset[int]) -> bytes:
        start = self.pos
        data = self.data
        while self.pos < len(data) and data[self.pos] in chars:
            self.pos += 1
        return data[start : self.pos]

    def tag(self) -> str:
        # tag = 1*<any ASTRING-CHAR except "+">
        tag = self.run(TAG_CHARS)
        if not tag:
            raise GrammarError("Missing tag")
        return tag.decode("ascii")

    def atom(self) -> str:
        # atom = 1*ATOM-CHAR
        value = self.run(ATOM_CHARS)
        if not value:
            raise GrammarError("Expected atom")
        return value.decode("ascii")

    def number(self, limit: int = MAX_NUMBER) -> int:
        # number = 1*DIGIT ; Unsigned 32-bit integer (RFC 9051 section 9)
        digits = self.run(DIGITS)
        if not digits:
            raise GrammarError("Expected number")
        significant = digits.lstrip(b"0")  # leading zeros are allowed (1*DIGIT)
        if len(significant) > 19 or int(digits) > limit:
            raise GrammarError("Number out of range")
        return int(digits)

    def number64(self) -> int:
        # number64 = 1*DIGIT ; Unsigned 63-bit integer (RFC 9051 section 9); also
        # mod-sequence-value / mod-sequence-valzer (RFC 7162 section 7)
        return self.number(MAX_NUMBER64)

    def nz_number(self, limit: int = MAX_NUMBER) -> int:
        # nz-number = digit-nz *DIGIT ; Non-zero unsigned 32-bit integer
        n = self.number(limit)
        if n == 0:
            raise GrammarError("Expected non-zero number")
        return n

    def open_list(self) -> None:
        """'(' and, liberally (Dovecot), any spaces after it."""
        self.expect(b"(")
        self.spaces()

    def spaces(self) -> int:
        start = self.pos
        while self.data[self.pos : self.pos + 1] == b" ":
            self.pos += 1
        return self.pos - start

    def list_next(self, first: bool) -> bool:
        """Inside a parenthesised list: True if another item follows, False at ')'
        (consumed). Items are separated by SP; spaces before ')' are accepted."""
        gap = self.spaces()
        if self.accept(b")"):
            return False
        if not first and not gap:
            raise GrammarError("Expected ' ' or ')'")
        return True

    def quoted(self) -> bytes:
        # quoted = DQUOTE *QUOTED-CHAR DQUOTE
        self.expect(b'"')
        out = bytearray()
        data = self.data
        while True:
            if self.pos >= len(data):
                raise GrammarError("Unterminated quoted string")
            ch = data[self.pos]
            self.pos += 1
            if ch == 0x22:
                return bytes(out)
            if ch == 0x5C:
                if self.pos >= len(data) or data[self.pos] not in (0x22, 0x5C):
                    raise GrammarError("Bad escape in quoted string")
                ch = data[self.pos]
                self.pos += 1
            elif ch in (0x0A, 0x0D, 0x00):
                raise GrammarError("Bad character in quoted string")
            out.append(ch)

    def literal(self) -> bytes:
        # literal = "{" number64 ["+"] "}" CRLF *CHAR8 ; literal8 = "~{" ... (RFC 3516)
        self.accept(b"~")
        self.expect(b"{")
        size = self.number64()
        self.accept(b"+")
        self.expect(b"}")
        if not self.accept(b"\r\n"):
            self.expect(b"\n")
        if self.pos + size > len(self.data):
            raise GrammarError("Literal shorter than announced")
        value = self.data[self.pos : self.pos + size]
        self.pos += size
        return value

    def string(self) -> bytes:
        first = self.peek()
        if first == b'"':
            return self.quoted()
        if first in (b"{", b"~"):
            return self.literal()
        raise GrammarError("Expected string")

    def astring(self) -> bytes:
        # astring = 1*ASTRING-CHAR / string
        if self.peek() in (b'"', b"{"):
            return self.string()
        value = self.run(ASTRING_CHARS)
        if not value:
            raise GrammarError("Expected astring")
        return value

    def nstring(self) -> bytes | None:
        if self.accept(b"NIL"):
            return None
        return self.string()

    def text(self, data: bytes) -> str:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise GrammarError("String is not valid UTF-8") from None

    def astr(self) -> str:
        return self.text(self.astring())

    def mailbox(self) -> str:
        # mailbox = "INBOX" / astring ; INBOX is case-insensitive (RFC 9051 section 5.1)
        name = self.astr()
        return "INBOX" if name.upper() == "INBOX" else name

    def list_mailbox(self) -> str:
        # list-mailbox = 1*list-char / string
        if self.peek() in (b'"', b"{"):
            return self.text(self.string())
        value = self.run(LIST_CHARS)
        if not value:
            raise GrammarError("Expected mailbox pattern")
        return value.decode("ascii")

    def paren_list(self) -> list[str]:
        """'(' atom *(SP atom) ')' with the atoms upper-cased; empty list allowed."""
        self.open_list()
        out: list[str] = []
        while self.list_next(not out):
            out.append(self.atom().upper())
        return out

    # -- composite values ------------------------------------------------------
    def seq_number(self) -> int | None:
        # seq-number = nz-number / "*"
        if self.accept(b"*"):
            return None
        return self.nz_number()

    def seqset(self) -> c.SeqSet:
        # sequence-set = (seq-number / seq-range) ["," sequence-set]
        # sequence-set =/ seq-last-command  ; "$", RFC 5182 section 3
        if self.accept(b"$"):
            return c.SeqSet((), saved=True)
        ranges = []
        while True:
            a = self.seq_number()
            b = self.seq_number() if self.accept(b":") else a
            ranges.append((a, b))
            if not self.accept(b","):
                return c.SeqSet(tuple(ranges))

    def flag(self) -> str:
        # flag = "\" atom / atom  (system flags, flag-extension, flag-keyword)
        if self.accept(b"\\"):
            if self.accept(b"*"):
                raise GrammarError("\\* is not a flag")
            return canonical_flag("\\" + self.atom())
        return self.atom()

    def flag_list(self) -> tuple[str, ...]:
        # flag-list = "(" [flag *(SP flag)] ")"
        self.open_list()
        flags: list[str] = []
        while self.list_next(not flags):
            flags.append(self.flag())
        return tuple(flags)

    def date(self) -> date:
        # date = date-text / DQUOTE date-text DQUOTE ; date-text = date-day "-" date-month "-" date-year
        quoted = self.accept(b'"')
        day = self.number()
        self.expect(b"-")
        month = self.data[self.pos : self.pos + 3].decode("ascii", "replace").capitalize()
        if month not in MONTHS:
            raise GrammarError("Bad month in date")
        self.pos += 3
        self.expect(b"-")
        year = self.number()
        if quoted:
            self.expect(b'"')
        try:
            return date(year, MONTHS.index(month) + 1, day)
        except ValueError:
            raise GrammarError("Invalid date") from None

    def date_time(self) -> datetime:
        # date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE
        raw = self.quoted().decode("ascii", "replace")
        m = re.fullmatch(r" ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)", raw)
        if m is None or m.group(2).capitalize() not in MONTHS:
            raise GrammarError("Bad date-time")
        offset = timedelta(hours=int(m.group(8)), minutes=int(m.group(9)))
        tz = timezone(-offset if m.group(7) == "-" else offset)
        try:
            return datetime(
                int(m.group(3)),
                MONTHS.index(m.group(2).capitalize()) + 1,
                int(m.group(1)),
                int(m.group(4)),
                int(m.group(5)),
                int(m.group(6)),
                tzinfo=tz,
            )
        except ValueError:
            raise GrammarError("Invalid date-time") from None

    def fetch_name(self) -> str:
        value = self.run(FETCH_NAME_CHARS)
        if not value:
            raise GrammarError("Expected fetch attribute")
        return value.decode("ascii").upper()
