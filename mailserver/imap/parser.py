"""Incremental, sans-IO IMAP command parser (RFC 9051 sections 2.2, 4.3 and 9).

Theory of operation
-------------------
``Parser.feed(data)`` takes whatever bytes arrived and returns the events they
complete, in the style of h11's ``receive_data``/``next_event``:

* ``Command(tag, command)`` - a whole command, literals included, parsed into
  one of the dataclasses of ``commands``;
* ``NeedLiteral(size, sync)`` - a line ended in a literal announcement. For a
  synchronising literal (``{n}``) the driver must send a ``+`` continuation
  before the client sends the octets; for LITERAL+/LITERAL- (``{n+}``, RFC 7888)
  it need not;
* ``BadCommand(tag, text)`` - a syntax error or refused size; the session
  answers ``tag BAD text`` and the parser has already resynchronised;
* ``RawLine(data)`` - a line that is not a command: the client's answer after
  AUTHENTICATE (RFC 9051 section 6.2.2) or the ``DONE`` ending IDLE (RFC 2177).

Framing runs in three modes. In LINE mode bytes are gathered until CRLF; a line
ending in ``{n}`` switches to LITERAL mode for exactly n octets, after which the
same command continues in LINE mode. A literal above ``max_literal`` is refused
before any of it is read (``[TOOBIG]``): after a synchronising one the client
sends nothing more (it waits for a ``+`` that never comes), after a
non-synchronising one the parser must skip the n octets and the rest of the
command, which it does in SKIP mode. A line above ``max_line`` is refused the
same way. Only then is the complete command handed to the grammar (``_Reader``,
recursive descent over the command's bytes).

Before login the driver lowers ``max_literal`` (``imap.max_preauth_literal``)
and sets ``close_on_oversized``: an unauthenticated client announcing a LITERAL+
above the limit gets a ``BadCommand`` marked ``fatal`` (the driver answers BAD
and ``* BYE`` and closes) instead of having its octets read and discarded. RFC
7888 section 4 leaves the server that choice; a client that may not log in has
no business sending megabytes. ``pending``, ``completed`` and ``announced`` let
the driver put an absolute deadline on each command (see ``server.py``).

Numbers are bounded as RFC 9051 section 9 says: ``number`` and ``nz-number``
are 32-bit (sequence numbers, UIDs, dates), ``number64`` 63-bit (sizes in
LARGER/SMALLER, partial ranges, mod-sequences of RFC 7162); a longer one is a
syntax error (BAD), never an integer the store cannot hold. Like Dovecot, the
reader accepts spaces just inside the parentheses of a list
(``( OR SEEN FLAGGED )``) and more than one space between its items.

After an IDLE or AUTHENTICATE command the parser stops and hands out further
lines as ``RawLine`` until the driver calls ``end_raw()``, so a pipelined
command is never taken for a continuation answer or the other way round. After
LOGIN and STARTTLS it stops too (the bytes stay buffered, ``feed(b"")`` goes on):
what follows a LOGIN is read with the limits of a logged-in client, and what
follows a STARTTLS is thrown away (``reset``) when TLS starts.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Final

from mailserver.imap import commands as c
from mailserver.imap.grammar import (
    ASTRING_CHARS,
    ATOM_CHARS,
    DIGITS,
    FETCH_NAME_CHARS,
    LIST_CHARS,
    LITERAL_AT_END,
    MONTHS,
    TAG_CHARS,
    canonical_flag,
)


@dataclass(frozen=True, slots=True)
class Command:
    tag: str
    command: c.Command


@dataclass(frozen=True, slots=True)
class NeedLiteral:
    size: int
    sync: bool


@dataclass(frozen=True, slots=True)
class BadCommand:
    tag: str
    """The command's tag, or ``*`` when none could be read."""
    text: str
    fatal: bool = False
    """The connection must end after the BAD (an oversized LITERAL+ before login)."""


@dataclass(frozen=True, slots=True)
class RawLine:
    data: bytes
    """The line without its CRLF."""


Event = Command | NeedLiteral | BadCommand | RawLine


class _Mode(enum.Enum):
    LINE = "line"
    LITERAL = "literal"
    SKIP = "skip"
    RAW = "raw"


class _SyntaxError(Exception):
    """A grammar error inside one command (never escapes the parser)."""


_TAG_RE: Final = re.compile(rb"[^ \r\n]{1,64}")

MAX_NUMBER: Final = 2**32 - 1
"""number = 1*DIGIT ; Unsigned 32-bit integer (RFC 9051 section 9)."""
MAX_NUMBER64: Final = 2**63 - 1
"""number64 = 1*DIGIT ; Unsigned 63-bit integer (RFC 9051 section 9)."""


class Parser:
    def __init__(
        self, *, max_line: int = 65536, max_literal: int = 64 * 1024 * 1024, close_on_oversized: bool = False
    ) -> None:
        self.max_line = max_line
        self.max_literal = max_literal
        """Largest literal accepted; the driver raises it at login."""
        self.close_on_oversized = close_on_oversized
        """An oversized LITERAL+ is fatal instead of skipped (before login)."""
        self.completed = 0
        """Events produced so far: the driver restarts a command's clock when it moves."""
        self.announced = 0
        """Literal octets announced by the command being received (its deadline grows with them)."""
        self._buf = bytearray()
        self._parts: list[bytes] = []
        self._size = 0
        self._mode = _Mode.LINE
        self._remaining = 0
        self._skip_tag = "*"

    @property
    def buffered(self) -> int:
        return len(self._buf)

    @property
    def pending(self) -> bool:
        """A command (or a continuation line) has begun and is not complete yet."""
        return bool(self._buf or self._parts) or self._mode in (_Mode.LITERAL, _Mode.SKIP)

    def end_raw(self) -> None:
        """The IDLE or AUTHENTICATE exchange is over: read commands again."""
        if self._mode is _Mode.RAW:
            self._mode = _Mode.LINE

    def reset(self) -> None:
        """Forget everything buffered: after STARTTLS, plaintext sent before the
        handshake must not be read as if it came over TLS (RFC 9051 section 11.1)."""
        self._buf.clear()
        self._parts.clear()
        self._size = 0
        self._mode = _Mode.LINE
        self.announced = 0

    def feed(self, data: bytes) -> list[Event]:
        events = self._feed(data)
        self.completed += len(events)
        return events

    def _feed(self, data: bytes) -> list[Event]:
        self._buf += data
        events: list[Event] = []
        while True:
            if self._mode is _Mode.LITERAL or (self._mode is _Mode.SKIP and self._remaining):
                if not self._buf:
                    break
                take = min(self._remaining, len(self._buf))
                if self._mode is _Mode.LITERAL:
                    self._parts.append(bytes(self._buf[:take]))
                del self._buf[:take]
                self._remaining -= take
                if self._remaining == 0 and self._mode is _Mode.LITERAL:
                    self._mode = _Mode.LINE
                continue
            end = self._buf.find(b"\n")
            if end < 0:
                if len(self._buf) > self.max_line and self._mode is not _Mode.SKIP:
                    events.append(BadCommand(self._guess_tag(), "[TOOBIG] Command line too long"))
                    self._parts.clear()
                    self._size = 0
                    self.announced = 0
                    self._mode = _Mode.SKIP
                    self._remaining = 0
                    self._buf.clear()
                elif self._mode is _Mode.SKIP:
                    self._buf.clear()
                break
            line = bytes(self._buf[: end + 1])
            del self._buf[: end + 1]
            if self._mode is _Mode.RAW:
                events.append(RawLine(line.rstrip(b"\r\n")))
                continue
            if self._mode is _Mode.SKIP:
                self._skip_line(line)
                continue
            if len(line) > self.max_line + 2:
                events.append(BadCommand(self._guess_tag(line), "[TOOBIG] Command line too long"))
                self._parts.clear()
                self._size = 0
                self.announced = 0
                continue
            event = self._line(line)
            if event is not None:
                events.append(event)
                if isinstance(event, Command) and isinstance(event.command, c.Idle | c.Authenticate):
                    self._mode = _Mode.RAW
                    break
                if isinstance(event, Command) and isinstance(event.command, c.Login | c.StartTls):
                    # What follows is read under other rules once the command has run:
                    # the limits of a logged-in client, or TLS (plaintext dropped).
                    break
                if isinstance(event, BadCommand) and event.fatal:
                    break
        return events

    def _guess_tag(self, line: bytes = b"") -> str:
        first = self._parts[0] if self._parts else line or bytes(self._buf[:64])
        m = _TAG_RE.match(first)
        if m is None or not all(ch in TAG_CHARS for ch in m.group()):
            return "*"
        return m.group().decode("ascii")

    def _line(self, line: bytes) -> Event | None:
        m = LITERAL_AT_END.search(line)
        if m is not None:
            size, sync = int(m.group(1)), not m.group(2)
            if size > self.max_literal or self._size + size > self.max_literal + self.max_line:
                tag = self._guess_tag(line)
                self._parts.clear()
                self._size = 0
                self.announced = 0
                if not sync:
                    # RFC 7888 section 4: the client sends the octets anyway; read and
                    # drop them, or (before login) end the connection.
                    self._mode, self._remaining = _Mode.SKIP, size
                    self.announced = size
                    if self.close_on_oversized:
                        return BadCommand(tag, "[TOOBIG] Literal too large", fatal=True)
                return BadCommand(tag, "[TOOBIG] Literal too large")
            self._parts.append(line)
            self.announced += size
            self._size += len(line) + size
            self._mode, self._remaining = _Mode.LITERAL, size
            if size == 0:
                self._mode = _Mode.LINE
            return NeedLiteral(size, sync)
        self._parts.append(line)
        data = b"".join(self._parts)
        self._parts.clear()
        self._size = 0
        self.announced = 0
        if data.strip() == b"":
            return None
        return parse_command(data)

    def _skip_line(self, line: bytes) -> None:
        """In SKIP mode: a line that ends in a non-synchronising literal keeps skipping."""
        m = LITERAL_AT_END.search(line)
        if m is not None and m.group(2):
            self._remaining = int(m.group(1))
            self.announced += self._remaining
            return
        self._mode = _Mode.LINE
        self.announced = 0


def parse_command(data: bytes) -> Command | BadCommand:
    """Parse one complete command (its literals inline, as on the wire)."""
    reader = _Reader(data)
    try:
        tag = reader.tag()
    except _SyntaxError as exc:
        return BadCommand("*", str(exc))
    try:
        reader.sp()
        name = reader.atom().upper()
        if name == "UID":
            reader.sp()
            sub = reader.atom().upper()
            handler = _UID_COMMANDS.get(sub)
            if handler is None:
                raise _SyntaxError(f"Unknown UID command {sub}")
            command = handler(reader, True)
        else:
            simple = _SIMPLE.get(name)
            if simple is not None:
                command = simple
            else:
                parse = _COMMANDS.get(name)
                if parse is None:
                    raise _SyntaxError(f"Unknown command {name[:32]}")
                command = parse(reader)
        reader.end()
    except _SyntaxError as exc:
        return BadCommand(tag, str(exc))
    return Command(tag, command)


class _Reader:
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
            raise _SyntaxError(f"Expected {token.decode()!r}")

    def sp(self) -> None:
        self.expect(b" ")

    def at_end(self) -> bool:
        return self.data[self.pos :] in (b"\r\n", b"\n", b"")

    def end(self) -> None:
        if not self.at_end():
            raise _SyntaxError("Unexpected characters at end of command")

    def _run(self, chars: frozenset[int]) -> bytes:
        start = self.pos
        data = self.data
        while self.pos < len(data) and data[self.pos] in chars:
            self.pos += 1
        return data[start : self.pos]

    def tag(self) -> str:
        # tag = 1*<any ASTRING-CHAR except "+">
        tag = self._run(TAG_CHARS)
        if not tag:
            raise _SyntaxError("Missing tag")
        return tag.decode("ascii")

    def atom(self) -> str:
        # atom = 1*ATOM-CHAR
        value = self._run(ATOM_CHARS)
        if not value:
            raise _SyntaxError("Expected atom")
        return value.decode("ascii")

    def number(self, limit: int = MAX_NUMBER) -> int:
        # number = 1*DIGIT ; Unsigned 32-bit integer (RFC 9051 section 9)
        digits = self._run(DIGITS)
        if not digits:
            raise _SyntaxError("Expected number")
        significant = digits.lstrip(b"0")  # leading zeros are allowed (1*DIGIT)
        if len(significant) > 19 or int(digits) > limit:
            raise _SyntaxError("Number out of range")
        return int(digits)

    def number64(self) -> int:
        # number64 = 1*DIGIT ; Unsigned 63-bit integer (RFC 9051 section 9); also
        # mod-sequence-value / mod-sequence-valzer (RFC 7162 section 7)
        return self.number(MAX_NUMBER64)

    def nz_number(self, limit: int = MAX_NUMBER) -> int:
        # nz-number = digit-nz *DIGIT ; Non-zero unsigned 32-bit integer
        n = self.number(limit)
        if n == 0:
            raise _SyntaxError("Expected non-zero number")
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
            raise _SyntaxError("Expected ' ' or ')'")
        return True

    def quoted(self) -> bytes:
        # quoted = DQUOTE *QUOTED-CHAR DQUOTE
        self.expect(b'"')
        out = bytearray()
        data = self.data
        while True:
            if self.pos >= len(data):
                raise _SyntaxError("Unterminated quoted string")
            ch = data[self.pos]
            self.pos += 1
            if ch == 0x22:
                return bytes(out)
            if ch == 0x5C:
                if self.pos >= len(data) or data[self.pos] not in (0x22, 0x5C):
                    raise _SyntaxError("Bad escape in quoted string")
                ch = data[self.pos]
                self.pos += 1
            elif ch in (0x0A, 0x0D, 0x00):
                raise _SyntaxError("Bad character in quoted string")
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
            raise _SyntaxError("Literal shorter than announced")
        value = self.data[self.pos : self.pos + size]
        self.pos += size
        return value

    def string(self) -> bytes:
        first = self.peek()
        if first == b'"':
            return self.quoted()
        if first in (b"{", b"~"):
            return self.literal()
        raise _SyntaxError("Expected string")

    def astring(self) -> bytes:
        # astring = 1*ASTRING-CHAR / string
        if self.peek() in (b'"', b"{"):
            return self.string()
        value = self._run(ASTRING_CHARS)
        if not value:
            raise _SyntaxError("Expected astring")
        return value

    def nstring(self) -> bytes | None:
        if self.accept(b"NIL"):
            return None
        return self.string()

    def text(self, data: bytes) -> str:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise _SyntaxError("String is not valid UTF-8") from None

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
        value = self._run(LIST_CHARS)
        if not value:
            raise _SyntaxError("Expected mailbox pattern")
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
                raise _SyntaxError("\\* is not a flag")
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
            raise _SyntaxError("Bad month in date")
        self.pos += 3
        self.expect(b"-")
        year = self.number()
        if quoted:
            self.expect(b'"')
        try:
            return date(year, MONTHS.index(month) + 1, day)
        except ValueError:
            raise _SyntaxError("Invalid date") from None

    def date_time(self) -> datetime:
        # date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE
        raw = self.quoted().decode("ascii", "replace")
        m = re.fullmatch(r" ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)", raw)
        if m is None or m.group(2).capitalize() not in MONTHS:
            raise _SyntaxError("Bad date-time")
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
            raise _SyntaxError("Invalid date-time") from None

    def fetch_name(self) -> str:
        value = self._run(FETCH_NAME_CHARS)
        if not value:
            raise _SyntaxError("Expected fetch attribute")
        return value.decode("ascii").upper()


# -- command grammars -----------------------------------------------------------------

_SIMPLE: Final[dict[str, c.Command]] = {
    "CAPABILITY": c.Capability(),
    "NOOP": c.Noop(),
    "LOGOUT": c.Logout(),
    "STARTTLS": c.StartTls(),
    "NAMESPACE": c.Namespace(),
    "CHECK": c.Check(),
    "CLOSE": c.Close(True),
    "UNSELECT": c.Close(False),
    "EXPUNGE": c.Expunge(),
    "IDLE": c.Idle(),
}


def _login(r: _Reader) -> c.Command:
    # login = "LOGIN" SP userid SP password
    r.sp()
    user = r.astr()
    r.sp()
    return c.Login(user, r.astr())


def _authenticate(r: _Reader) -> c.Command:
    # authenticate = "AUTHENTICATE" SP auth-type [SP (base64 / "=")] (RFC 4959)
    r.sp()
    mechanism = r.atom().upper()
    initial = None
    if r.accept(b" "):
        initial = b"" if r.accept(b"=") else decode_base64(r._run(ATOM_CHARS))
    return c.Authenticate(mechanism, initial)


def decode_base64(data: bytes) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise _SyntaxError("Invalid base64") from None


def _enable(r: _Reader) -> c.Command:
    # enable = "ENABLE" 1*(SP capability)
    caps = []
    while r.accept(b" "):
        caps.append(r.atom().upper())
    if not caps:
        raise _SyntaxError("ENABLE needs a capability")
    return c.Enable(tuple(caps))


def _select(readonly: bool) -> Callable[[_Reader], c.Command]:
    def parse(r: _Reader) -> c.Command:
        # select = "SELECT" SP mailbox [select-params] (RFC 4466, RFC 7162)
        r.sp()
        mailbox = r.mailbox()
        condstore, qresync = False, None
        if r.accept(b" ("):
            r.spaces()
            first = True
            while r.list_next(first):
                first = False
                param = r.atom().upper()
                if param == "CONDSTORE":
                    condstore = True
                elif param == "QRESYNC":
                    qresync = _qresync(r)
                else:
                    raise _SyntaxError(f"Unknown SELECT parameter {param}")
        return c.Select(mailbox, readonly, condstore, qresync)

    return parse


def _qresync(r: _Reader) -> c.QResync:
    r.expect(b" (")
    uidvalidity = r.nz_number()
    r.sp()
    modseq = r.nz_number(MAX_NUMBER64)
    known = seq_match = None
    if r.accept(b" "):
        if r.peek() != b"(":
            known = r.seqset()
            r.accept(b" ")
        if r.accept(b"("):
            a = r.seqset()
            r.sp()
            b = r.seqset()
            r.expect(b")")
            seq_match = (a, b)
    r.expect(b")")
    return c.QResync(uidvalidity, modseq, known, seq_match)


def _create(r: _Reader) -> c.Command:
    # create = "CREATE" SP mailbox [create-params] (RFC 6154 USE)
    r.sp()
    mailbox = r.mailbox()
    uses: list[str] = []
    if r.accept(b" (USE ("):
        r.spaces()
        while r.list_next(not uses):
            uses.append(r.flag())
        r.spaces()
        r.expect(b")")
    return c.Create(mailbox, tuple(uses))


def _one_mailbox(cls: type[c.Delete]) -> Callable[[_Reader], c.Command]:
    def parse(r: _Reader) -> c.Command:
        r.sp()
        return cls(r.mailbox())

    return parse


def _rename(r: _Reader) -> c.Command:
    r.sp()
    old = r.mailbox()
    r.sp()
    return c.Rename(old, r.mailbox())


def _subscribe(flag: bool) -> Callable[[_Reader], c.Command]:
    def parse(r: _Reader) -> c.Command:
        r.sp()
        return c.Subscribe(r.mailbox(), flag)

    return parse


_STATUS_ITEMS: Final = frozenset(
    {"MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "RECENT", "SIZE", "HIGHESTMODSEQ", "DELETED"}
)


def _status_items(r: _Reader) -> tuple[str, ...]:
    items = r.paren_list()
    if not items or any(i not in _STATUS_ITEMS for i in items):
        raise _SyntaxError("Bad STATUS item")
    return tuple(items)


def _list(lsub: bool) -> Callable[[_Reader], c.Command]:
    def parse(r: _Reader) -> c.Command:
        # list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts]
        r.sp()
        select: tuple[str, ...] = ()
        if not lsub and r.peek() == b"(":
            select = tuple(r.paren_list())
            r.sp()
        reference = r.text(r.astring()) if r.peek() != b"(" else ""
        r.sp()
        patterns: list[str] = []
        parenthesised = False
        if not lsub and r.peek() == b"(":
            parenthesised = True
            r.open_list()
            while r.list_next(not patterns):
                patterns.append(r.list_mailbox())
            if not patterns:
                raise _SyntaxError("Empty pattern list")
        else:
            patterns.append(r.list_mailbox())
        returns: list[str] = []
        status: tuple[str, ...] = ()
        if not lsub and r.accept(b" RETURN ("):
            r.spaces()
            while r.list_next(not returns):
                opt = r.atom().upper()
                if opt == "STATUS":
                    r.sp()
                    status = _status_items(r)
                returns.append(opt)
        return c.List(reference, tuple(patterns), select, tuple(returns), status, lsub, parenthesised)

    return parse


def _status(r: _Reader) -> c.Command:
    r.sp()
    mailbox = r.mailbox()
    r.sp()
    return c.Status(mailbox, _status_items(r))


def _append(r: _Reader) -> c.Command:
    # append = "APPEND" SP mailbox 1*append-message (RFC 3502)
    # append-message = [SP flag-list] [SP date-time] SP literal
    r.sp()
    mailbox = r.mailbox()
    messages = []
    while r.accept(b" "):
        flags: tuple[str, ...] = ()
        when = None
        if r.peek() == b"(":
            flags = r.flag_list()
            r.sp()
        if r.peek() == b'"':
            when = r.date_time()
            r.sp()
        if r.peek() not in (b"{", b"~"):
            raise _SyntaxError("APPEND needs a literal")
        messages.append(c.AppendMessage(flags, when, r.literal()))
    if not messages:
        raise _SyntaxError("APPEND needs a message")
    return c.Append(mailbox, tuple(messages))


def _expunge(r: _Reader, uid: bool) -> c.Command:
    # uid-expunge = "UID" SP "EXPUNGE" SP sequence-set (RFC 4315)
    r.sp()
    return c.Expunge(True, r.seqset())


_NO_ARG_KEYS: Final = frozenset(
    "ALL ANSWERED DELETED DRAFT FLAGGED NEW OLD RECENT SEEN "
    "UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNSEEN".split()
)
_DATE_KEYS: Final = frozenset("BEFORE ON SINCE SENTBEFORE SENTON SENTSINCE".split())
_ARG_KEYS: Final = _DATE_KEYS | frozenset(
    "LARGER SMALLER BCC CC FROM SUBJECT TO HEADER BODY TEXT KEYWORD UNKEYWORD UID NOT OR MODSEQ".split()
)


def _search_key(r: _Reader, depth: int = 0) -> c.SearchKey:
    # search-key (RFC 9051 section 6.4.4 / 9)
    if depth > 50:
        raise _SyntaxError("Search keys nested too deeply")
    first = r.peek()
    if first == b"(":
        # "(" search-key *(SP search-key) ")"; spaces inside the parentheses are
        # accepted as Dovecot does: ( OR SEEN FLAGGED )
        r.open_list()
        keys = [_search_key(r, depth + 1)]
        while r.list_next(False):
            keys.append(_search_key(r, depth + 1))
        return c.And(tuple(keys))
    if first in (b"*", b"$") or first in (b"0", b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"8", b"9"):
        return c.SeqKey(r.seqset())
    name = r.atom().upper()
    if name in _NO_ARG_KEYS:
        return c.Simple(name)
    if name not in _ARG_KEYS:
        raise _SyntaxError(f"Unknown search key {name[:32]}")
    r.sp()
    if name in _DATE_KEYS:
        return c.DateKey(name, r.date())
    if name in ("LARGER", "SMALLER"):
        return c.SizeKey(name, r.number64())  # "LARGER" SP number64 (RFC 9051)
    if name in ("BCC", "CC", "FROM", "SUBJECT", "TO"):
        return c.HeaderKey(name.lower(), r.astr())
    if name == "HEADER":
        field = r.astr().lower()
        r.sp()
        return c.HeaderKey(field, r.astr())
    if name in ("BODY", "TEXT"):
        return c.TextKey(name, r.astr())
    if name in ("KEYWORD", "UNKEYWORD"):
        return c.Keyword(r.flag(), name == "KEYWORD")
    if name == "UID":
        return c.SeqKey(r.seqset(), uid=True)
    if name == "NOT":
        return c.Not(_search_key(r, depth + 1))
    if name == "OR":
        left = _search_key(r, depth + 1)
        r.sp()
        return c.Or(left, _search_key(r, depth + 1))
    if name == "MODSEQ":
        # MODSEQ [SP entry-name SP entry-type-req] SP mod-sequence-valzer (RFC 7162)
        if r.peek() == b'"':
            r.quoted()
            r.sp()
            r.atom()
            r.sp()
        return c.ModSeqKey(r.number64())
    raise _SyntaxError(f"Unknown search key {name[:32]}")


def _search(r: _Reader, uid: bool = False) -> c.Command:
    # search = "SEARCH" [search-return-opts] [SP "CHARSET" SP charset] 1*(SP search-key)
    returns: tuple[str, ...] | None = None
    charset = None
    if r.accept(b" RETURN ("):
        r.spaces()
        opts: list[str] = []
        while r.list_next(not opts):
            opt = r.atom().upper()
            if opt not in c.SEARCH_RETURN:
                raise _SyntaxError(f"Unknown search return option {opt[:32]}")
            opts.append(opt)
        returns = tuple(opts)
    if r.accept(b" CHARSET "):
        charset = r.astr().upper()
    keys = []
    while r.accept(b" "):
        keys.append(_search_key(r))
    if not keys:
        raise _SyntaxError("SEARCH needs a search key")
    return c.Search(uid, c.And(tuple(keys)), charset, returns)


_FETCH_MACROS: Final = {
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}
_FETCH_SIMPLE: Final = frozenset(
    "FLAGS INTERNALDATE RFC822 RFC822.HEADER RFC822.TEXT RFC822.SIZE "
    "ENVELOPE BODY BODYSTRUCTURE UID MODSEQ".split()
)
_SECTION_TEXT: Final = ("HEADER.FIELDS.NOT", "HEADER.FIELDS", "HEADER", "TEXT", "MIME")


def _section(r: _Reader, binary: bool) -> c.Section:
    # section = "[" [section-spec] "]" ; section-binary = "[" [section-part] "]"
    r.expect(b"[")
    part: list[int] = []
    specifier = None
    fields: tuple[str, ...] = ()
    if not r.accept(b"]"):
        spec = r.fetch_name()
        pieces = spec.split(".")
        while pieces and pieces[0].isdigit():
            digits = pieces.pop(0)
            n = int(digits) if len(digits.lstrip("0")) <= 10 else 0
            if not 0 < n <= MAX_NUMBER:  # section-part = nz-number *("." nz-number)
                raise _SyntaxError("Section part numbers are 1 to 4294967295")
            part.append(n)
        if pieces:
            specifier = ".".join(pieces)
            if binary or specifier not in _SECTION_TEXT or (specifier == "MIME" and not part):
                raise _SyntaxError(f"Bad section {spec[:32]}")
        if specifier in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
            r.sp()
            r.open_list()
            names: list[str] = []
            while r.list_next(not names):
                names.append(r.astr())
            if not names:
                raise _SyntaxError("Empty header list")
            fields = tuple(names)
        r.expect(b"]")
    return c.Section(tuple(part), specifier, fields)


def _fetch_att(r: _Reader) -> list[c.FetchAtt]:
    name = r.fetch_name()
    if name in _FETCH_MACROS:
        return [c.FetchAtt(n) for n in _FETCH_MACROS[name]]
    if name in ("BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK", "BINARY.SIZE") and r.peek() == b"[":
        section = _section(r, binary=name.startswith("BINARY"))
        partial = None
        if name != "BINARY.SIZE" and r.accept(b"<"):
            # partial = "<" number64 "." nz-number64 ">" (RFC 9051)
            origin = r.number64()
            r.expect(b".")
            partial = (origin, r.nz_number(MAX_NUMBER64))
            r.expect(b">")
        return [c.FetchAtt(name, section, partial)]
    if name in _FETCH_SIMPLE:
        return [c.FetchAtt(name)]
    raise _SyntaxError(f"Unknown fetch attribute {name[:32]}")


def _fetch(r: _Reader, uid: bool = False) -> c.Command:
    # fetch = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" / fetch-att /
    #         "(" fetch-att *(SP fetch-att) ")") [fetch-modifiers]
    r.sp()
    seqset = r.seqset()
    r.sp()
    atts: list[c.FetchAtt] = []
    if r.peek() == b"(":
        r.open_list()
        while r.list_next(not atts):
            atts.extend(_fetch_att(r))
        if not atts:
            raise _SyntaxError("Empty fetch attribute list")
    else:
        atts.extend(_fetch_att(r))
    changed_since = None
    vanished = False
    if r.accept(b" ("):
        r.spaces()
        first = True
        while r.list_next(first):
            first = False
            mod = r.atom().upper()
            if mod == "CHANGEDSINCE":
                r.sp()
                changed_since = r.number64()  # mod-sequence-value (RFC 7162 section 7)
            elif mod == "VANISHED" and uid:
                vanished = True
            else:
                raise _SyntaxError(f"Unknown FETCH modifier {mod[:32]}")
    if vanished and changed_since is None:
        raise _SyntaxError("VANISHED needs CHANGEDSINCE")
    return c.Fetch(uid, seqset, tuple(atts), changed_since, vanished)


def _store(r: _Reader, uid: bool = False) -> c.Command:
    # store = "STORE" SP sequence-set [store-modifiers] SP store-att-flags
    r.sp()
    seqset = r.seqset()
    r.sp()
    unchanged = None
    if r.peek() == b"(":
        # store-modifiers = "(" store-modifier *(SP store-modifier) ")" (RFC 4466);
        # the one we know: "UNCHANGEDSINCE" SP mod-sequence-valzer (RFC 7162 section 7)
        r.open_list()
        first = True
        while r.list_next(first):
            first = False
            modifier = r.atom().upper()
            if modifier != "UNCHANGEDSINCE":
                raise _SyntaxError(f"Unknown STORE modifier {modifier[:32]}")
            r.sp()
            unchanged = r.number64()
        if first:
            raise _SyntaxError("Empty STORE modifier list")
        r.sp()
    mode = c.StoreMode.REPLACE
    if r.accept(b"+"):
        mode = c.StoreMode.ADD
    elif r.accept(b"-"):
        mode = c.StoreMode.REMOVE
    r.expect(b"FLAGS")
    silent = r.accept(b".SILENT")
    r.sp()
    if r.peek() == b"(":
        flags = r.flag_list()
    else:
        items = [r.flag()]
        while r.accept(b" "):
            items.append(r.flag())
        flags = tuple(items)
    return c.Store(uid, seqset, mode, flags, silent, unchanged)


def _copy(move: bool) -> Callable[[_Reader, bool], c.Command]:
    def parse(r: _Reader, uid: bool = False) -> c.Command:
        r.sp()
        seqset = r.seqset()
        r.sp()
        return c.Copy(uid, seqset, r.mailbox(), move)

    return parse


def _id(r: _Reader) -> c.Command:
    # id = "ID" SP id-params-list ; id-params-list = "(" *(string SP nstring) ")" / nil
    r.sp()
    if r.accept(b"NIL"):
        return c.Id(None)
    r.open_list()
    params: list[tuple[str, str | None]] = []
    while r.list_next(not params):
        key = r.text(r.string())
        r.sp()
        value = r.nstring()
        params.append((key, None if value is None else r.text(value)))
        if len(params) > 30:
            raise _SyntaxError("Too many ID fields")
    return c.Id(tuple(params))


def _getquota(by_mailbox: bool) -> Callable[[_Reader], c.Command]:
    def parse(r: _Reader) -> c.Command:
        r.sp()
        return c.GetQuota(r.mailbox() if by_mailbox else r.astr(), by_mailbox)

    return parse


def _setacl(r: _Reader) -> c.Command:
    # setacl = "SETACL" SP mailbox SP identifier SP mod-rights (RFC 4314 section 3.1)
    # identifier = astring; mod-rights = astring ; +rights / -rights / rights
    r.sp()
    mailbox = r.mailbox()
    r.sp()
    identifier = r.astr()
    r.sp()
    return c.SetAcl(mailbox, identifier, r.astr())


def _mailbox_identifier(cls: type[c.DeleteAcl] | type[c.ListRights]) -> Callable[[_Reader], c.Command]:
    # deleteacl = "DELETEACL" SP mailbox SP identifier (RFC 4314 section 3.2)
    # listrights = "LISTRIGHTS" SP mailbox SP identifier (RFC 4314 section 3.4)
    def parse(r: _Reader) -> c.Command:
        r.sp()
        mailbox = r.mailbox()
        r.sp()
        return cls(mailbox, r.astr())

    return parse


def _acl_mailbox(cls: type[c.GetAcl] | type[c.MyRights]) -> Callable[[_Reader], c.Command]:
    # getacl = "GETACL" SP mailbox; myrights = "MYRIGHTS" SP mailbox (RFC 4314 3.3, 3.5)
    def parse(r: _Reader) -> c.Command:
        r.sp()
        return cls(r.mailbox())

    return parse


_COMMANDS: Final[dict[str, Callable[[_Reader], c.Command]]] = {
    "LOGIN": _login,
    "AUTHENTICATE": _authenticate,
    "ENABLE": _enable,
    "SELECT": _select(False),
    "EXAMINE": _select(True),
    "CREATE": _create,
    "DELETE": _one_mailbox(c.Delete),
    "RENAME": _rename,
    "SUBSCRIBE": _subscribe(True),
    "UNSUBSCRIBE": _subscribe(False),
    "LIST": _list(False),
    "LSUB": _list(True),
    "STATUS": _status,
    "APPEND": _append,
    "SEARCH": lambda r: _search(r, False),
    "FETCH": lambda r: _fetch(r, False),
    "STORE": lambda r: _store(r, False),
    "COPY": lambda r: _copy(False)(r, False),
    "MOVE": lambda r: _copy(True)(r, False),
    "ID": _id,
    "GETQUOTA": _getquota(False),
    "GETQUOTAROOT": _getquota(True),
    "SETACL": _setacl,
    "DELETEACL": _mailbox_identifier(c.DeleteAcl),
    "GETACL": _acl_mailbox(c.GetAcl),
    "LISTRIGHTS": _mailbox_identifier(c.ListRights),
    "MYRIGHTS": _acl_mailbox(c.MyRights),
}

_UID_COMMANDS: Final[dict[str, Callable[[_Reader, bool], c.Command]]] = {
    "FETCH": _fetch,
    "STORE": _store,
    "SEARCH": _search,
    "COPY": _copy(False),
    "MOVE": _copy(True),
    "EXPUNGE": _expunge,
}
