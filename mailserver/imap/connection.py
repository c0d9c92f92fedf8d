"""The sans-IO IMAP connection: bytes in, events out (h11's ``Connection``).

RFC 9051 section 2.2 (client commands and server continuation requests), RFC
7888 (LITERAL+), section 6.2.2 (AUTHENTICATE) and RFC 2177 (IDLE).

Theory of operation
-------------------
Whoever moves the bytes - the asyncio driver (``server.py``) or a test without
sockets - does the same three things::

    conn.receive_data(data)                  # what the socket gave
    while (event := conn.next_event()) is not NEED_DATA:
        if isinstance(event, Continuation):  # "+ Ready for literal"
            send(event)
        else:                                # Command, BadCommand or RawLine
            send each response of session.stream(event)

``next_event`` owns the hand-off between ``Parser`` and ``Session`` that used to
be written out by each caller:

* a synchronising literal (``{n}``) becomes a ``Continuation`` to send before
  the client sends its octets; a LITERAL+ one (``{n+}``) produces nothing;
* after IDLE or AUTHENTICATE the parser hands out raw lines until the session
  says the exchange is over (``Session.awaiting_line``), then reads commands
  again (``Parser.end_raw``);
* the parser stops after LOGIN and STARTTLS with the rest buffered; the next
  call goes on with it (``feed(b"")``), by then under the limits of a logged-in
  client (``imap.max_literal`` instead of ``imap.max_preauth_literal``) if the
  login succeeded.

Events are handed out one at a time and the caller runs each before asking for
the next: the parser is only fed again once the commands parsed so far have
run, because what they did decides how the bytes after them are read.
"""

from __future__ import annotations

import enum
from collections import deque
from typing import Final

from mailserver.config import ImapSettings
from mailserver.imap.parser import BadCommand, Command, Event, NeedLiteral, Parser, RawLine
from mailserver.imap.responses import Continuation
from mailserver.imap.session import Session


class _NeedData(enum.Enum):
    NEED_DATA = "need data"


NEED_DATA: Final = _NeedData.NEED_DATA
"""``next_event``: nothing more to do until ``receive_data`` brings more bytes."""

LITERAL_CONTINUATION: Final = Continuation("Ready for literal")
"""What the server sends before the octets of a synchronising literal."""

ConnectionEvent = Command | BadCommand | RawLine | Continuation | _NeedData


class Connection:
    """One client's byte stream, parsed with the limits its session state allows."""

    def __init__(self, session: Session, settings: ImapSettings) -> None:
        self.session = session
        self.settings = settings
        # Before login: Dovecot's login-process limits (see ``server.py``).
        self.parser = Parser(
            max_line=settings.max_line,
            max_literal=min(settings.max_preauth_literal, settings.max_literal),
            close_on_oversized=True,
        )
        """Public for the driver's deadlines (``pending``, ``completed``, ``announced``)."""
        self.logged_in = False
        self._events: deque[Event] = deque()
        self._unfed = bytearray()
        self._more = False
        """The last feed produced events: the parser may have stopped with more buffered."""

    @property
    def pending(self) -> bool:
        """A command (or a continuation line) has begun and is not complete yet."""
        return self.parser.pending

    def receive_data(self, data: bytes) -> None:
        """Bytes from the client; ``next_event`` hands out what they complete."""
        if self._events or self._unfed:
            self._unfed += data  # fed once the events before them have run
        else:
            self._feed(data)

    def next_event(self) -> ConnectionEvent:
        """The next thing to do: a parser event to run through the session, a
        continuation request to send, or ``NEED_DATA``."""
        while True:
            while not self._events:
                if self._unfed:
                    data = bytes(self._unfed)
                    self._unfed.clear()
                    self._feed(data)
                elif self._more and self.parser.buffered:
                    self._feed(b"")
                else:
                    self._sync()
                    return NEED_DATA
            event = self._events.popleft()
            if isinstance(event, NeedLiteral):
                if event.sync:
                    return LITERAL_CONTINUATION
                continue
            return event

    def drop_buffered(self) -> int:
        """Forget every octet received and not yet run (STARTTLS, RFC 9051 section
        6.2.1: plaintext sent before the handshake is not read after it); their count."""
        dropped = self.parser.buffered + len(self._unfed)
        self._unfed.clear()
        self._events.clear()
        self._more = False
        self.parser.reset()
        return dropped

    def _feed(self, data: bytes) -> None:
        self._sync()
        events = self.parser.feed(data)
        self._more = bool(events)
        self._events.extend(events)

    def _sync(self) -> None:
        """Bring the parser in line with what the commands run so far did."""
        if not self.logged_in and self.session.account is not None:
            # Logged in: the limits of an authenticated client from here on.
            self.logged_in = True
            self.parser.max_literal = self.settings.max_literal
            self.parser.close_on_oversized = False
        if not self.session.awaiting_line:
            self.parser.end_raw()
