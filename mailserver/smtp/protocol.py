"""The SMTP protocol every port runs: aiosmtpd's ``SMTP`` with what hooks cannot reach.

Theory of operation
-------------------
aiosmtpd's ``SMTP`` protocol parses commands and DATA (RFC 5321 sections 4.1
and 4.5.2: dot-unstuffing, end of data only at CRLF.CRLF) and calls the
``handle_*`` hooks of its handler (``handler.SmtpHandler``, one per service).
The MX port runs ``MxSMTP`` itself; submission runs ``sasl.SubmissionSMTP``,
which adds AUTH and implicit TLS to it. Replies are ``policy.codes.Reply``
values turned into aiosmtpd's status strings by ``status`` only.

``MxSMTP`` subclasses aiosmtpd's protocol only where hooks cannot reach:

* ``push`` adds enhanced status codes (RFC 2034 section 3: every reply but the
  greeting and the EHLO/HELO reply) to aiosmtpd's built-in replies, which
  lack them, and maps its size and sequence errors to the named replies;
* ``handle_exception`` answers ``451 4.3.0`` and logs with the session id,
  never the exception text, for anything a hook did not expect;
* ``smtp_STARTTLS`` refuses a second STARTTLS (RFC 3207 section 4.2);
* ``smtp_AUTH`` is not offered on the MX port (submission does AUTH);
* ``smtp_EXPN`` answers like VRFY, never revealing accounts (RFC 5321 7.3);
* ``smtp_DATA`` reads the message in large chunks up to the end-of-data
  sequence CRLF.CRLF (``read_data_into``) instead of aiosmtpd's one
  ``readuntil`` and list append per line, checks the line length limit (RFC
  5321 section 4.5.3.1.6) and the size limit (section 4.5.3.1.7), removes the
  transparency dots (section 4.5.2) block by block and writes the result to a
  ``limits.Spool`` as it arrives: a session mid-DATA holds at most the spool
  threshold in memory whatever the size. A spooled message is read back for
  the checks and the store within the service's ``limits.MemoryBudget``.
  Replies and their order are aiosmtpd's;
* ``smtp_MAIL`` / ``smtp_RCPT`` answer ``501 5.1.7`` / ``501 5.1.3`` for a
  path with a control character or without its closing ``>``
  (``path_error``), before aiosmtpd parses it;
* ``connection_made`` counts the session against ``smtp.max_connections`` /
  ``max_connections_per_ip`` and answers ``421 4.7.0`` and closes when over;
* ``push`` also counts refused recipients (harvesting: delay every reply past
  ``smtp.soft_error_limit``, ``421 4.7.0`` and close at ``hard_error_limit``),
  keeps reply text ASCII outside SMTPUTF8 transactions (RFC 5321 section
  4.2) and never echoes a control character a client sent.

STARTTLS (RFC 3207 section 4.2): aiosmtpd discards the plain-text octets
buffered after the STARTTLS command once the handshake completes, so nothing
pipelined before TLS is executed inside it (CVE-2011-0411);
tests/clients/test_smtp_hardening.py checks it on every STARTTLS listener.

Session state lives in ``MxSession`` (adds the session id, which survives
STARTTLS, and the account after AUTH) and ``MxEnvelope`` (adds the
``Transaction``).
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import itertools
import logging
import re
import secrets
import socket
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, AnyStr, Final

from aiosmtpd.smtp import (
    MISSING,
    SMTP,
    Envelope,
    Session,
    TLSSetupException,
    _AuthMechAttr,
    login_always_fail,
    syntax,
)

from mailserver import netopt, proxyproto
from mailserver.smtp.delivery import Client, Transaction
from mailserver.smtp.limits import SessionLimits, Spool, tarpit_delay
from mailserver.texts import ascii_text
from policy import codes
from policy.codes import Reply
from storage.api import Account

if TYPE_CHECKING:
    from mailserver.smtp.handler import SmtpHandler

log = logging.getLogger(__name__)

# aiosmtpd replies without enhanced codes, mapped to the named ones.
_BUILTIN_REPLIES: Final[dict[str, Reply]] = {
    "503 Error: send HELO first": codes.S503_HELO_FIRST,
    "503 Error: send EHLO first": codes.S503_HELO_FIRST,
    "503 Error: nested MAIL command": codes.S503_NESTED_MAIL,
    "503 Error: need MAIL command": codes.S503_NEED_MAIL,
    "503 Error: need RCPT command": codes.S503_NEED_RCPT,
    "552 Error: message size exceeds fixed maximum message size": codes.S552_MESSAGE_TOO_BIG,
    "552 Error: Too much mail data": codes.S552_MESSAGE_TOO_BIG,
    "500 Line too long (see RFC5321 4.5.3.1.6)": codes.S500_LINE_TOO_LONG,
    "500 Command line too long": codes.S500_LINE_TOO_LONG,
    "500 Error: bad syntax": codes.S500_UNRECOGNIZED,
    "220 Ready to start TLS": codes.S220_READY_TLS,
    "221 Bye": codes.S221_BYE,
    "250 OK": codes.S250_OK,
    "454 TLS not available": codes.S454_TLS_UNAVAILABLE,
}
# Enhanced code by basic code for the rest of aiosmtpd's replies (syntax
# errors mostly), per RFC 3463 section 3.6 (X.5.x protocol status).
_DEFAULT_ENHANCED: Final[dict[int, str]] = {
    500: "5.5.2", 501: "5.5.4", 502: "5.5.1", 503: "5.5.1", 504: "5.5.4", 530: "5.7.0",
    538: "5.7.11", 552: "5.3.4", 553: "5.1.3", 554: "5.0.0", 555: "5.5.4",
}
_HAS_ENHANCED: Final = re.compile(r"\d{3}[ -][245]\.\d{1,3}\.\d{1,3}(?: |$)")
_SINGLE_LINE: Final = re.compile(r"(\d{3}) (.*)", re.DOTALL)


_ATOM: Final = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_SIMPLE_PATH: Final = re.compile(
    rf"<({_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>(?:[ \t]+(?=[^\s(])|$)"
)
"""A path that is an ASCII dot-atom address in angle brackets (RFC 5321
section 4.1.2), then nothing or blanks and parameters (no comment)."""

_END_OF_DATA: Final = b"\r\n.\r\n"
"""RFC 5321 section 4.1.1.4: the mail data ends with a line holding a single
period; the CRLF before it is part of the data (it ends the last line)."""
_DATA_PREFIXES: Final = tuple(_END_OF_DATA[:k] for k in range(4, 0, -1))


class DataTooLong(Exception):  # noqa: N818 - a reply, not a bug
    """The mail data broke a limit: ``reply`` is aiosmtpd's wording of it."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


def _open_prefix(tail: bytes) -> int:
    """Length of the longest suffix of ``tail`` that begins ``_END_OF_DATA``."""
    for prefix in _DATA_PREFIXES:
        if tail.endswith(prefix):
            return len(prefix)
    return 0


def line_too_long(data: bytes, limit: int) -> bool:
    """A line of ``data`` has more than ``limit`` octets, its CRLF included
    (a bare CR or LF does not end a line: RFC 5321 section 2.3.8)."""
    if len(data) <= limit:
        return False
    return max(map(len, data.split(b"\r\n"))) + 2 > limit


def check_lines(data: bytes, limit: int) -> tuple[bool, bool]:
    """For ``data`` that ends with CRLF (or is empty): whether a line is longer
    than ``limit`` (``line_too_long``) and whether every CR and every LF in it
    is part of a CRLF (no bare line ending, which ``delivery.find_bare_line_ending``
    would otherwise look for over the whole message again). One cut into lines
    serves both: the lines joined again without their CRLFs hold a CR or LF
    only if one is bare (a copy and two memchr scans cost less than counting
    CRs and LFs octet by octet)."""
    lines = data.split(b"\r\n")
    too_long = len(data) > limit and max(map(len, lines)) + 2 > limit
    rest = b"".join(lines)
    return too_long, b"\r" not in rest and b"\n" not in rest


def unstuff(data: bytes) -> bytes:
    """RFC 5321 section 4.5.2: drop the first period of every line that starts
    with one (the sender doubled it). ``data`` starts a line and ends with CRLF
    or is empty."""
    if data.startswith(b"."):
        data = data[1:]
    return data.replace(b"\r\n.", b"\r\n")


_BLOCK: Final = 64 * 1024
"""Octets of mail data gathered before they are checked, unstuffed and spooled."""
_TOO_LONG: Final = "500 Line too long (see RFC5321 4.5.3.1.6)"
_TOO_MUCH: Final = "552 Error: Too much mail data"


async def read_data_into(
    reader: asyncio.StreamReader, sink: Spool, *, size_limit: int | None, line_limit: int
) -> bool:
    """Read the mail data after ``354`` up to the final ``.CRLF`` and write it,
    dot-unstuffed, to ``sink`` as it arrives (so a session holds little of it
    in memory whatever the size). Raises ``DataTooLong`` (after reading to the
    end, as aiosmtpd does: RFC 5321 section 4.2.5) when a line is longer than
    ``line_limit`` octets (CRLF included) or the data, still dot-stuffed, is
    longer than ``size_limit``; the first limit broken is the one reported.

    The CRLF of the DATA command line ends a line before the data, so an
    empty message is ``.CRLF`` at once. ``readuntil`` cannot see octets it
    returned before, so while those end like the start of CRLF.CRLF the search
    is for ``.CRLF`` and the octets before it are looked at here. Once they do
    not, CRLF.CRLF itself is searched: from then on neither a ``readuntil``
    result nor the part a ``LimitOverrunError`` lets us take (all but the
    last four octets of the buffer) can end inside a sequence completed by
    what is left unread. Octets after the end stay in the reader (PIPELINING).

    Octets are looked at in blocks of ``_BLOCK`` (a message that small in one
    go): the complete lines of a block are unstuffed and written; the start of
    a line not yet ended (``carry``, never longer than the line limit) waits
    for the next block, so a transparency dot is recognised across reads.

    Returns whether every CR and LF of the data is in a CRLF (no bare line
    ending). Blocks of complete lines end with CRLF, so no CRLF straddles two
    of them and their counts add up; unstuffing removes only a dot after a
    CRLF, which neither makes nor breaks a CRLF.
    """
    clean = True
    size = 0
    failure: str | None = None
    tail = b"\r\n"
    separator = b".\r\n"
    carry = b""
    pending: list[bytes] = []
    pending_size = 0
    while True:
        try:
            chunk = await reader.readuntil(separator)
            found = True
        except asyncio.LimitOverrunError as exc:
            chunk = await reader.readexactly(exc.consumed)
            found = False
        tail = (tail + chunk[-5:])[-5:]
        end = found and tail == _END_OF_DATA
        if end:
            chunk = chunk[:-3]
        if failure is None:
            pending.append(chunk)
            pending_size += len(chunk)
        if failure is None and (end or pending_size >= _BLOCK):
            block = b"".join(pending) if len(pending) > 1 else pending[0]
            pending.clear()
            pending_size = 0
            before = size
            size += len(block)
            data = carry + block if carry else block
            if size_limit and size > size_limit:
                kept = data[: len(carry) + size_limit - before]
                failure = _TOO_LONG if line_too_long(kept, line_limit) else _TOO_MUCH
                carry = b""
            else:
                cut = data.rfind(b"\r\n") + 2
                complete, carry = (data, b"") if cut == len(data) else (data[:cut], data[cut:])
                too_long, clean_block = check_lines(complete, line_limit)
                if too_long or len(carry) + 2 > line_limit:
                    failure, carry = _TOO_LONG, b""
                else:
                    clean = clean and clean_block
                    await sink.write(unstuff(complete))
        if end:
            break
        if separator != _END_OF_DATA and not _open_prefix(tail):
            separator = _END_OF_DATA
    if failure is not None:
        raise DataTooLong(failure)
    return clean


async def read_data(reader: asyncio.StreamReader, *, size_limit: int | None, line_limit: int) -> bytes:
    """``read_data_into`` kept in memory: the unstuffed mail data."""
    spool = Spool(None)
    await read_data_into(reader, spool, size_limit=size_limit, line_limit=line_limit)
    return await spool.read()


_TOO_MANY_BOGUS: Final = "502 5.5.1 Too many unrecognized commands"
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")
"""C0 and C1 controls and DEL: never in a path (RFC 5321 section 4.1.2 allows
printable ASCII and, with SMTPUTF8, UTF-8 text, RFC 6531 section 3.3)."""


_UNPRINTABLE: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
"""``_CONTROL`` and lone surrogates: aiosmtpd decodes arguments with
surrogateescape, and a log line holding one cannot be written as UTF-8."""


def _escaped(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"  # the octet surrogateescape stood for
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` for a log line: control characters escaped (``\\r`` -> ``\\x0d``)
    so a client cannot forge or split log lines, and octets that were not UTF-8
    (surrogateescape) shown as ``\\xff`` so the line can be written as UTF-8."""
    return _UNPRINTABLE.sub(lambda m: _escaped(m.group(0)), text)


def path_error(arg: str, keyword: str) -> bool:
    """The MAIL/RCPT argument ``arg`` names a path that is not one: a control
    character in it (CR, LF, NUL...: they would forge header fields in
    Return-Path and lines in the log; HTAB only between parameters, as
    aiosmtpd allows), or ``<`` without its closing ``>``. Arguments without
    ``keyword`` are left to aiosmtpd's syntax error."""
    if arg[: len(keyword)].upper() != keyword:
        return False
    text = arg[len(keyword):].strip()
    if _CONTROL.search(text.replace("\t", " ")):
        return True
    angle = text.startswith("<")
    quoted = escaped = False
    for char in text[1:] if angle else text:
        if char == "\t" and (angle or quoted):
            return True
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == ">" and angle and not quoted:
            return False
        elif char in " \t" and not angle and not quoted:
            return False  # a bare path ends at the first blank (aiosmtpd allows it)
    return angle



def status(reply: Reply) -> str:
    """The one place a Reply becomes aiosmtpd's status string."""
    return str(reply)


def add_enhanced_code(line: str) -> str:
    """Give one of aiosmtpd's final reply lines an enhanced status code."""
    if _HAS_ENHANCED.match(line):
        return line
    known = _BUILTIN_REPLIES.get(line)
    if known is not None:
        return status(known)
    match = _SINGLE_LINE.fullmatch(line)
    if match is None:
        return line
    code = int(match.group(1))
    text = match.group(2).removeprefix("Error: ")
    if code >= 400:
        enhanced = _DEFAULT_ENHANCED.get(code, f"{code // 100}.0.0")
    elif code < 300:
        enhanced = "2.0.0"
    else:
        return line  # 354 carries no enhanced code (RFC 2034 section 3)
    return f"{code} {enhanced} {text}"


def local_error(sid: str) -> Reply:
    """451 4.3.0 naming the session, so an operator can find the log entry."""
    return codes.S451_LOCAL_ERROR.with_text(f"{codes.S451_LOCAL_ERROR.text} (session {sid})")


_sid_prefix = secrets.token_hex(3)
_sid_counter = itertools.count()


def new_session_id() -> str:
    """12 hex digits, unique within the process and, through a random prefix
    drawn per process (and again every 16M sessions), between processes and
    restarts; no system call per session (``secrets`` reads the kernel's
    random source each time)."""
    global _sid_prefix
    n = next(_sid_counter) & 0xFFFFFF
    if n == 0xFFFFFF:
        _sid_prefix = secrets.token_hex(3)
    return f"{_sid_prefix}{n:06x}"


class _Reflection:
    """What aiosmtpd's ``SMTP.__init__`` finds by introspection (``inspect.getmembers``,
    ``dir``, ``inspect.signature``) for every session, found once per protocol
    class and handler: the AUTH mechanisms, the handler's hooks and the
    ``smtp_*`` commands."""

    __slots__ = ("auth", "commands", "ehlo_version", "hooks")

    def __init__(self, cls: type, handler: Any) -> None:
        auth: list[tuple[str, str, bool]] = []
        for on_protocol, names in ((True, dir(cls)), (False, dir(handler))):
            for name in names:
                if name.startswith("auth_"):
                    member = getattr(cls if on_protocol else handler, name)
                    if not callable(member):
                        continue
                    mechanism = getattr(member, "__auth_mechanism_name__",
                                        name.replace("auth_", "").replace("__", "-"))
                    auth.append((mechanism, name, on_protocol))
        self.auth = tuple(auth)
        self.hooks = {m.replace("handle_", ""): getattr(handler, m)
                      for m in dir(handler) if m.startswith("handle_")}
        ehlo = self.hooks.get("EHLO")
        self.ehlo_version = (None if ehlo is None
                             else {4: "old", 5: "new"}[len(inspect.signature(ehlo).parameters)])
        self.commands = frozenset(m.replace("smtp_", "") for m in dir(cls) if m.startswith("smtp_"))

    @classmethod
    def of(cls, protocol: type, handler: Any) -> _Reflection:
        cache: dict[type, _Reflection] = handler.__dict__.setdefault("_smtp_reflection", {})
        found = cache.get(protocol)
        if found is None:
            found = cache[protocol] = cls(protocol, handler)
        return found


class _Commands:
    """``SMTP._smtp_methods`` for one session: the ``smtp_*`` methods, bound when asked for."""

    __slots__ = ("_names", "_protocol")

    def __init__(self, protocol: SMTP, names: frozenset[str]) -> None:
        self._protocol = protocol
        self._names = names

    def get(self, name: str, default: Any = None) -> Any:
        return getattr(self._protocol, "smtp_" + name) if name in self._names else default

    def items(self) -> list[tuple[str, Any]]:
        return [(name, getattr(self._protocol, "smtp_" + name)) for name in self._names]


def _command_size_limit() -> int:
    return SMTP.command_size_limit


_FAST_INIT: Final = frozenset({
    "data_size_limit", "enable_SMTPUTF8", "decode_data", "hostname", "ident", "tls_context",
    "require_starttls", "timeout", "auth_required", "auth_require_tls", "loop",
})
"""``SMTP.__init__`` parameters ``MxSMTP`` sets itself; any other sends it the slow way."""


class MxSession(Session):
    sid: str
    client: Client | None = None
    account: Account | None = None
    """The account the session authenticated as (submission), else None."""


class MxEnvelope(Envelope):
    def __init__(self) -> None:
        super().__init__()
        self.txn: Transaction | None = None
        self.line_endings_clean = False
        """Set by the DATA reader: no bare CR or LF in the content (none looked for again)."""


class MxSMTP(SMTP):
    """aiosmtpd's protocol with the few changes hooks cannot make (see module doc)."""

    def __init__(
        self,
        handler: SmtpHandler,
        *,
        on_close: Callable[[MxSMTP], None],
        limits: SessionLimits = SessionLimits(),  # noqa: B008 - immutable
        **kwargs: Any,
    ) -> None:
        self.sid = new_session_id()
        self.busy = False
        """True while a delivery is being made durable; stop() waits for it."""
        self._on_close = on_close
        self._greeted = False
        self._raw_replies = False
        self._limits = limits
        self._admitted: str | None = None
        """Client address counted by ``limits.connections`` (released at close)."""
        self._refused = False
        """Over a connection limit: told 421 at connect, aiosmtpd never started."""
        self._in_rcpt = False
        self._in_data = False
        """Between DATA and the end of its mail data (more of it may be on its way)."""
        self.rcpt_errors = 0
        """Recipients refused (5xx) in this session: the harvesting counter."""
        self._tcp: netopt.TcpSocket | None = None
        self._batch: list[bytes] | None = None
        """Reply lines gathered to go out in one write (a multi-line EHLO reply)."""
        if kwargs.keys() <= _FAST_INIT:
            self._fast_init(handler, **kwargs)
        else:
            super().__init__(handler, **kwargs)
        # aiosmtpd keeps the per-command line limits in a class attribute and
        # grows MAIL's on every EHLO; a per-session dict keeps sessions apart.
        self.command_size_limits = collections.defaultdict(_command_size_limit)

    def _fast_init(
        self,
        handler: Any,
        *,
        data_size_limit: int | None = 33554432,
        enable_SMTPUTF8: bool = False,  # noqa: N803 - aiosmtpd's name
        decode_data: bool = False,
        hostname: str | None = None,
        ident: str | None = None,
        tls_context: ssl.SSLContext | None = None,
        require_starttls: bool = False,
        timeout: float = 300,
        auth_required: bool = False,
        auth_require_tls: bool = True,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        """aiosmtpd's ``SMTP.__init__`` (1.4) for the parameters we use, without
        its per-session introspection (``_Reflection``) and log records: a
        connection per message made it ~7% of the server's time."""
        self.__ident__ = ident or "ESMTP"
        self.loop = loop if loop is not None else asyncio.get_running_loop()
        asyncio.StreamReaderProtocol.__init__(
            self, asyncio.StreamReader(loop=self.loop, limit=self.line_length_limit),
            client_connected_cb=self._cb_client_connected, loop=self.loop,
        )
        self.event_handler = handler
        self.data_size_limit = data_size_limit
        self.enable_SMTPUTF8 = enable_SMTPUTF8
        self._decode_data = decode_data
        self.hostname = hostname or socket.getfqdn()
        self.tls_context = tls_context
        self.require_starttls = bool(tls_context) and require_starttls
        self._timeout_duration = timeout
        self._timeout_handle = None
        self._tls_handshake_okay = True
        self._tls_protocol = None
        self._original_transport = None
        self.session = None
        self.envelope = None
        self.transport = None
        self._handler_coroutine = None
        self._auth_require_tls = auth_require_tls
        self._proxy_timeout = None
        self._authenticator = None
        self._auth_callback = login_always_fail
        self._auth_required = auth_required
        reflection = _Reflection.of(type(self), handler)
        self._reflection = reflection
        self._handle_hooks = reflection.hooks
        self._ehlo_hook_ver = reflection.ehlo_version
        self._smtp_methods = _Commands(self, reflection.commands)  # type: ignore[assignment]
        self._enforce_call_limit = False

    @property
    def _auth_methods(self) -> dict[str, _AuthMechAttr]:
        # Built when EHLO or AUTH asks (aiosmtpd builds it for every session).
        if "_auth_methods_slow" in self.__dict__:
            methods: dict[str, _AuthMechAttr] = self.__dict__["_auth_methods_slow"]
            return methods
        return {
            mechanism: _AuthMechAttr(getattr(self if on_protocol else self.event_handler, name), on_protocol)
            for mechanism, name, on_protocol in self._reflection.auth
        }

    @_auth_methods.setter
    def _auth_methods(self, value: dict[str, _AuthMechAttr]) -> None:
        self.__dict__["_auth_methods_slow"] = value  # aiosmtpd's own __init__ (the slow way)

    def _create_session(self) -> MxSession:
        session = MxSession(self.loop)
        session.sid = self.sid
        return session

    def _create_envelope(self) -> MxEnvelope:
        return MxEnvelope()

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        # The common "<dot-atom@domain>" is read here; what the stdlib header
        # parser aiosmtpd uses would give for it is the same, at ~20x the cost.
        simple = _SIMPLE_PATH.match(arg)
        if simple is not None:
            address = simple.group(1)
            if self.local_part_limit and len(address.rpartition("@")[0]) > self.local_part_limit:
                return None, None
            return address, arg[simple.end():]
        # That parser raises IndexError on input such as "x@" and AttributeError
        # on "1@[" instead of HeaderParseError; that is a malformed address
        # (553 5.1.3), not a server fault.
        try:
            result: tuple[str | None, str | None] = super()._getaddr(arg)
        except (IndexError, ValueError, AttributeError):
            return None, None
        return result

    @property
    def tls_active(self) -> bool:
        return self._tls_protocol is not None

    async def auth_keyword(self) -> str | None:
        """The EHLO keyword offering AUTH (RFC 4954 section 3), None where it
        is not offered: never on the MX port."""
        return None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        limiter = self._limits.connections
        if limiter is not None and self.transport is None:  # not the STARTTLS upgrade
            ip = proxyproto.client_ip(transport)
            if not limiter.admit(ip):
                # RFC 5321 section 3.8: 421 at connect, then close; aiosmtpd's
                # session (greeting, reader, timers) is never started.
                self._refused = True
                log.info("smtp %s: %s over the connection limits, refused", self.sid, printable(ip))
                # Duck-typed: uvloop's transports (serve's loop) are no asyncio.WriteTransport.
                write = getattr(transport, "write", None)
                if write is not None:
                    write((status(codes.S421_TOO_MANY_CONNECTIONS) + "\r\n").encode())
                transport.close()
                return
            self._admitted = ip
        upgrade = self.transport is not None
        if not upgrade:  # not the STARTTLS upgrade: the same socket
            self._tcp = netopt.tune(transport)  # mailserver/netopt.py
        super().connection_made(transport)
        client = proxyproto.client_address(transport)
        if not upgrade and client is not None and self.session is not None:
            # Behind a load balancer (PROXY protocol): the client it named, for
            # Received, relay decisions, throttling and logs.
            # aiosmtpd annotates peer as str but stores the peername tuple there.
            self.session.peer = client  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not data.endswith(b"\n") or (self._in_data and not data.endswith(_END_OF_DATA)):
            # The client may hold its next write for our ACK (Nagle): the rest of
            # a command line, or more of the message. After a complete command
            # line or the end of the mail data it waits for our reply instead,
            # which carries the ACK: a separate one would be one more packet
            # through both TCP stacks per command (and a system call here).
            netopt.quickack(self._tcp)

    def connection_lost(self, error: Exception | None) -> None:
        try:
            if not self._refused:
                super().connection_lost(error)
        finally:
            admitted, self._admitted = self._admitted, None
            if admitted is not None and self._limits.connections is not None:
                self._limits.connections.release(admitted)
            self._on_close(self)

    def eof_received(self) -> bool | None:
        if self._refused:
            return False
        result: bool | None = super().eof_received()
        return result

    async def push(self, status: AnyStr) -> None:
        rewrite = self._greeted and not self._raw_replies
        self._greeted = True
        reply: str | bytes = status
        close = False
        if self._in_rcpt and isinstance(reply, str) and reply.startswith("5"):
            self.rcpt_errors += 1
            if self.rcpt_errors == self._limits.soft_error_limit + 1:
                log.info("smtp %s: %d recipients refused, slowing down replies", self.sid, self.rcpt_errors)
            hard = self._limits.hard_error_limit
            if hard and self.rcpt_errors >= hard:
                # Postfix's smtpd_hard_error_limit: a harvester is disconnected.
                log.info("smtp %s: %d recipients refused, closing", self.sid, self.rcpt_errors)
                reply, close = str(codes.S421_TOO_MANY_ERRORS), True
        delay = tarpit_delay(self.rcpt_errors, self._limits.soft_error_limit)
        if delay:
            # Postfix's smtpd_soft_error_limit: every reply slows down, the
            # positive ones too (else their speed would tell what exists).
            await asyncio.sleep(delay)
        if isinstance(reply, str) and reply.startswith(_TOO_MANY_BOGUS):
            # aiosmtpd closes after too many unknown commands with a 502; RFC
            # 5321 section 3.8 wants 421 before a server closes the channel.
            reply = str(codes.S421_TOO_MANY_ERRORS)
        if isinstance(reply, str):
            line = add_enhanced_code(reply) if rewrite else reply
            # aiosmtpd echoes unknown commands: a CR, NUL or other control
            # character from the client must not reach the reply text.
            line = _CONTROL.sub("?", line)
            if not line.isascii() and not (self.envelope is not None and self.envelope.smtp_utf8):
                # RFC 5321 section 4.2: reply text is ASCII; RFC 6531 section
                # 3.7.4 allows UTF-8 only within an SMTPUTF8 transaction.
                line = ascii_text(line)
            # Replies may echo a client's argument, which aiosmtpd decoded with
            # surrogateescape; never let invalid UTF-8 turn into an exception.
            await self._send(line.encode("utf-8", errors="replace"))
        else:
            await self._send(reply)
        if close:
            self._close_session()

    async def _send(self, data: bytes) -> None:
        if self._batch is not None:
            self._batch.append(data + b"\r\n")
            return
        await super().push(data)

    def _close_session(self) -> None:
        """End the session from inside its handler (as aiosmtpd's QUIT does)."""
        if self.transport is not None:
            self.transport.close()
        if self._handler_coroutine is not None:
            self._handler_coroutine.cancel()

    def path_refused(self, arg: str, keyword: str) -> bool:
        """``path_error``, or an address that the parser reads (quoted strings,
        escapes and all) with a control character in it, a tab included."""
        if path_error(arg, keyword):
            return True
        if arg[: len(keyword)].upper() != keyword:
            return False
        address, _ = self._getaddr(arg[len(keyword):].strip())
        return address is not None and _CONTROL.search(address.replace("\t", "\x00")) is not None

    async def _bad_path(self, arg: str | None, keyword: str, command: str) -> bool:
        """Answer 501 for a path with control characters or without its ``>``
        (``path_refused``), after aiosmtpd's own checks that come before syntax."""
        if arg is None or not self.path_refused(arg, keyword):
            return False
        if await self.check_helo_needed():
            return True
        if await self.check_auth_needed(command):
            return True
        assert self.envelope is not None  # noqa: S101 - aiosmtpd's invariant after HELO
        if command == "RCPT" and not self.envelope.mail_from:
            await self.push("503 Error: need MAIL command")
            return True
        reply = codes.S501_BAD_SENDER_PATH if command == "MAIL" else codes.S501_BAD_RECIPIENT_PATH
        log.info("smtp %s: %s refused, bad path: %s", self.sid, command, printable(arg))
        await self.push(status(reply))
        return True

    @syntax("MAIL FROM: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_MAIL(self, arg: str | None) -> None:  # noqa: N802
        if await self._bad_path(arg, "FROM:", "MAIL"):
            return
        await super().smtp_MAIL(arg)

    @syntax("RCPT TO: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_RCPT(self, arg: str | None) -> None:  # noqa: N802
        self._in_rcpt = True
        try:
            if await self._bad_path(arg, "TO:", "RCPT"):
                return
            await super().smtp_RCPT(arg)
        finally:
            self._in_rcpt = False

    async def smtp_EHLO(self, hostname: str) -> None:  # noqa: N802
        # The reply's lines go out in one write (aiosmtpd writes and drains
        # each: seven system calls and as many wake-ups of the client).
        self._raw_replies = True
        self._batch = []
        try:
            await super().smtp_EHLO(hostname)
        finally:
            self._raw_replies = False
            batch, self._batch = self._batch, None
        if batch:
            self._writer.write(b"".join(batch))
            await self._writer.drain()

    async def smtp_HELO(self, hostname: str) -> None:  # noqa: N802
        self._raw_replies = True
        try:
            await super().smtp_HELO(hostname)
        finally:
            self._raw_replies = False

    async def smtp_STARTTLS(self, arg: str) -> None:  # noqa: N802
        if self._tls_protocol is not None:
            await self.push(status(codes.S503_ALREADY_TLS))
            return
        await super().smtp_STARTTLS(arg)

    async def smtp_AUTH(self, arg: str) -> None:  # noqa: N802
        await self.push(status(codes.S503_NO_AUTH))

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:  # noqa: N802
        # aiosmtpd's preconditions and replies, then ``read_data_into`` (module doc).
        self._in_data = True
        try:
            await self._receive_mail_data(arg)
        finally:
            self._in_data = False

    async def _receive_mail_data(self, arg: str) -> None:
        if self._decode_data or "DATA" not in self._handle_hooks:
            await super().smtp_DATA(arg)
            return
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None  # noqa: S101 - aiosmtpd's invariant after HELO
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        spool = Spool(self._limits.spool_dir, self._limits.spool_threshold)
        held = 0
        try:
            try:
                clean = await read_data_into(
                    self._reader, spool, size_limit=self.data_size_limit, line_limit=self.line_length_limit
                )
            except DataTooLong as exc:
                await self.push(exc.reply)
                self._set_post_data_state()  # type: ignore[no-untyped-call]
                return
            except asyncio.IncompleteReadError:
                log.debug("smtp %s: connection closed during DATA", self.sid)
                self._writer.close()
                return
            except asyncio.CancelledError:
                log.debug("smtp %s: connection lost during DATA", self.sid)
                self._writer.close()
                raise
            budget = self._limits.budget
            if spool.on_disk and budget is not None:
                # A large message waits on disk until its turn to be checked
                # and stored in memory (limits.MemoryBudget).
                await budget.acquire(spool.size)
                held = spool.size
            content = await spool.read()
            spool.close()
            self.envelope.content = content
            self.envelope.original_content = content
            if isinstance(self.envelope, MxEnvelope):
                self.envelope.line_endings_clean = clean
            del content
            reply = await self._call_handler_hook("DATA")
            self._set_post_data_state()  # type: ignore[no-untyped-call]
        finally:
            spool.close()
            if held and self._limits.budget is not None:
                self._limits.budget.release(held)
        await self.push("250 OK" if reply is MISSING else reply)

    async def smtp_EXPN(self, arg: str) -> None:  # noqa: N802
        await self.push(status(codes.S252_CANNOT_EXPN))

    async def handle_exception(self, error: Exception) -> str:
        if isinstance(error, TLSSetupException):
            log.debug("smtp %s: TLS handshake failed: %r", self.sid, error.__cause__)
        else:
            log.error("smtp %s: internal error", self.sid, exc_info=error)
        return status(local_error(self.sid))
