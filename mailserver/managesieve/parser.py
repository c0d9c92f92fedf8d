"""ManageSieve input: bytes -> lines of tokens, sans-IO (RFC 5804 section 4).

Theory of operation
-------------------
h11-style: ``receive_data(bytes)`` appends to a buffer, ``next_event()``
returns the next complete ``Line``, a ``BadLine`` (a syntax error, already
consumed up to the end of its line), ``TooBig`` (fatal: the session answers
BYE and the driver closes), or ``NEED_DATA``. A logical line may span several
physical ones through literals; the scanner restarts from the line's start
each time more data arrives, skipping the literal bodies it already has by
their length, so a large literal costs one scan per read of its header only.

The grammar (RFC 5804 section 4)::

    command     = atom *(SP argument) CRLF
    argument    = string / number
    string      = quoted / literal-c2s
    quoted      = DQUOTE *QUOTED-CHAR DQUOTE
    QUOTED-CHAR = SAFE-UTF8-CHAR / "\\" QUOTED-SPECIALS
    QUOTED-SPECIALS = DQUOTE / "\\"
    literal-c2s = "{" number "+}" CRLF *OCTET
    number      = 1*DIGIT        ; 0 .. 4294967295

``literal-c2s`` is the non-synchronising form; ``{n}`` is accepted as well
and treated the same (ManageSieve has no continuation request, so there is
nothing to wait for; Dovecot Pigeonhole does likewise). A lone LF ends a
line as CRLF does (liberal in what we accept from scripts piped by hand).
Literal and quoted contents must be UTF-8 (section 1.6); the SASL exchange
reuses the same scanner, one string per line (section 2.1).

Limits: ``max_line`` octets outside literals (more, with no line end: TooBig),
``max_literal`` octets per literal (announcing more: TooBig at once, without
reading it). The session raises the literal limit after login.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["NEED_DATA", "Atom", "BadLine", "Event", "Line", "NeedData", "Parser", "Token", "TooBig"]

MAX_NUMBER: Final = 4294967295


@dataclass(frozen=True, slots=True)
class Atom:
    """A bare word: command names (compared case-insensitively) and keywords."""

    value: str


Token = Atom | str | int
"""An atom, a string (quoted or literal, decoded) or a number."""


@dataclass(frozen=True, slots=True)
class Line:
    tokens: tuple[Token, ...]


@dataclass(frozen=True, slots=True)
class BadLine:
    text: str


@dataclass(frozen=True, slots=True)
class TooBig:
    text: str


class NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = NeedData()
Event = Line | BadLine | TooBig


class _Syntax(Exception):  # noqa: N818 - internal signal
    def __init__(self, text: str, at: int) -> None:
        super().__init__(text)
        self.text = text
        self.at = at


_ATOM_CHARS: Final = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


class Parser:
    def __init__(self, *, max_line: int = 8192, max_literal: int = 8192) -> None:
        self.max_line = max_line
        self.max_literal = max_literal
        self._buf = bytearray()
        self._skipping = False
        """After a syntax error: the rest of that line is dropped."""
        self._broken = False

    def receive_data(self, data: bytes) -> None:
        self._buf += data

    @property
    def pending(self) -> bool:
        """Part of a command has arrived (the driver times its completion)."""
        return bool(self._buf) and not self._skipping

    def drop_buffered(self) -> int:
        """Forget unread input (plaintext after STARTTLS, RFC 5804 section 2.2); its size."""
        count = len(self._buf)
        self._buf.clear()
        return count

    def next_event(self) -> Event | NeedData:
        if self._broken:
            return NEED_DATA
        if self._skipping:
            end = self._buf.find(b"\n")
            if end < 0:
                self._buf.clear()
                return NEED_DATA
            del self._buf[: end + 1]
            self._skipping = False
        if not self._buf:
            return NEED_DATA
        try:
            found = self._scan()
        except _Syntax as exc:
            del self._buf[: exc.at]
            self._skipping = True
            return BadLine(exc.text)
        if isinstance(found, TooBig):
            self._broken = True
        return found

    def _scan(self) -> Event | NeedData:
        buf = self._buf
        i = 0
        plain = 0  # octets outside literal bodies
        tokens: list[Token] = []
        while True:
            if i >= len(buf):
                return self._incomplete(plain)
            ch = buf[i]
            if ch == 0x0A or (ch == 0x0D and i + 1 < len(buf) and buf[i + 1] == 0x0A):
                end = i + (1 if ch == 0x0A else 2)
                del buf[:end]
                if not tokens:
                    return BadLine("Empty command")
                return Line(tuple(tokens))
            if ch == 0x0D:
                if i + 1 >= len(buf):
                    return self._incomplete(plain)
                raise _Syntax("Bare CR in command", i)
            if tokens:
                if ch != 0x20:
                    raise _Syntax("Expected a space between arguments", i)
                i += 1
                plain += 1
                if i >= len(buf):
                    return self._incomplete(plain)
                ch = buf[i]
            start = i
            if ch == 0x22:  # DQUOTE
                token, i = self._quoted(i)
                if token is None:
                    return self._incomplete(plain + (len(buf) - start))
                plain += i - start
                tokens.append(token)
            elif ch == 0x7B:  # {
                close = buf.find(b"}", i, i + 16)
                if close < 0:
                    if len(buf) - i < 16 and b"\n" not in buf[i:]:
                        return self._incomplete(plain + len(buf) - i)
                    raise _Syntax("Bad literal header", i)
                spec = bytes(buf[i + 1 : close])
                digits = spec[:-1] if spec.endswith(b"+") else spec
                if not digits.isdigit() or int(digits) > MAX_NUMBER:
                    raise _Syntax("Bad literal length", i)
                size = int(digits)
                after = close + 1
                if after + 2 > len(buf):
                    return self._incomplete(plain + after - i)
                if buf[after : after + 2] != b"\r\n" and buf[after : after + 1] != b"\n":
                    raise _Syntax("A literal's header must end its line", after)
                body = after + (2 if buf[after] == 0x0D else 1)
                if size > self.max_literal:
                    return TooBig(f"Literal of {size} octets exceeds the limit of {self.max_literal}")
                plain += body - i
                if len(buf) < body + size:
                    return self._incomplete(plain)
                try:
                    tokens.append(bytes(buf[body : body + size]).decode("utf-8"))
                except UnicodeDecodeError:
                    raise _Syntax("String is not UTF-8", body + size) from None
                i = body + size
            elif 0x30 <= ch <= 0x39:
                while i < len(buf) and 0x30 <= buf[i] <= 0x39:
                    i += 1
                if i >= len(buf):
                    return self._incomplete(plain + i - start)
                value = int(buf[start:i])
                if value > MAX_NUMBER:
                    raise _Syntax("Number too large", i)
                plain += i - start
                tokens.append(value)
            elif ch in _ATOM_CHARS:
                while i < len(buf) and buf[i] in _ATOM_CHARS:
                    i += 1
                if i >= len(buf):
                    return self._incomplete(plain + i - start)
                plain += i - start
                tokens.append(Atom(buf[start:i].decode("ascii")))
            else:
                raise _Syntax("Unexpected character in command", i)

    def _quoted(self, start: int) -> tuple[str | None, int]:
        """The quoted string at ``start`` and the index after it; (None, _) when incomplete."""
        buf = self._buf
        out = bytearray()
        i = start + 1
        while i < len(buf):
            ch = buf[i]
            if ch == 0x22:
                try:
                    return out.decode("utf-8"), i + 1
                except UnicodeDecodeError:
                    raise _Syntax("String is not UTF-8", i + 1) from None
            if ch == 0x5C:
                if i + 1 >= len(buf):
                    return None, i
                if buf[i + 1] not in (0x22, 0x5C):
                    raise _Syntax('Only \\" and \\\\ may be escaped in a quoted string', i)
                out.append(buf[i + 1])
                i += 2
                continue
            if ch in (0x0D, 0x0A, 0x00):
                raise _Syntax("Unterminated quoted string", i)
            out.append(ch)
            i += 1
        return None, i

    def _incomplete(self, plain: int) -> Event | NeedData:
        if plain > self.max_line:
            return TooBig(f"Line longer than {self.max_line} octets")
        return NEED_DATA
