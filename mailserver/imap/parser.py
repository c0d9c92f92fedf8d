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
same way. Only then is the complete command handed to the grammar (``parse_command``:
recursive descent over the command's bytes).

Before login the driver lowers ``max_literal`` (``imap.max_preauth_literal``)
and sets ``close_on_oversized``: an unauthenticated client announcing a LITERAL+
above the limit gets a ``BadCommand`` marked ``fatal`` (the driver answers BAD
and ``* BYE`` and closes) instead of having its octets read and discarded. RFC
7888 section 4 leaves the server that choice; a client that may not log in has
no business sending megabytes. ``pending``, ``completed`` and ``announced`` let
the driver put an absolute deadline on each command (see ``server.py``).

The grammar of each command is in ``arguments.py``, built on the lexical reader
of ``reader.py`` (which also bounds numbers as RFC 9051 section 9 says).
``connection.py`` is what drives the parser for the server and the tests.

After an IDLE or AUTHENTICATE command the parser stops and hands out further
lines as ``RawLine`` until the driver calls ``end_raw()``, so a pipelined
command is never taken for a continuation answer or the other way round. After
LOGIN and STARTTLS it stops too (the bytes stay buffered, ``feed(b"")`` goes on):
what follows a LOGIN is read with the limits of a logged-in client, and what
follows a STARTTLS is thrown away (``reset``) when TLS starts.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Final

from mailserver.imap import commands as c
from mailserver.imap.arguments import COMMANDS, SIMPLE, UID_COMMANDS
from mailserver.imap.grammar import LITERAL_AT_END, TAG_CHARS
from mailserver.imap.reader import MAX_NUMBER, MAX_NUMBER64, GrammarError, Reader

__all__ = [
    "MAX_NUMBER",
    "MAX_NUMBER64",
    "BadCommand",
    "Command",
    "Event",
    "NeedLiteral",
    "Parser",
    "RawLine",
    "parse_command",
]


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


_TAG_RE: Final = re.compile(rb"[^ \r\n]{1,64}")


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
    reader = Reader(data)
    try:
        tag = reader.tag()
    except GrammarError as exc:
        return BadCommand("*", str(exc))
    try:
        reader.sp()
        name = reader.atom().upper()
        if name == "UID":
            reader.sp()
            sub = reader.atom().upper()
            handler = UID_COMMANDS.get(sub)
            if handler is None:
                raise GrammarError(f"Unknown UID command {sub}")
            command = handler(reader, True)
        else:
            simple = SIMPLE.get(name)
            if simple is not None:
                command = simple
            else:
                parse = COMMANDS.get(name)
                if parse is None:
                    raise GrammarError(f"Unknown command {name[:32]}")
                command = parse(reader)
        reader.end()
    except GrammarError as exc:
        return BadCommand(tag, str(exc))
    return Command(tag, command)
