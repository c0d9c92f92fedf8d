"""The source side of a migration: another IMAP server, read with imaplib.

Blocking (imaplib is); the migration runs it in a worker thread. Folders are
opened with EXAMINE and bodies fetched with BODY.PEEK[] (RFC 9051 sections
6.3.3 and 6.4.5), so the source mailbox is left exactly as it was: no \\Seen set,
no \\Recent claimed.
"""

from __future__ import annotations

import imaplib
import re
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Final, Literal

from storage.maildir import decode_folder_level

from .destination import message_id_of

Security = Literal["plain", "tls", "starttls"]

_MONTHS: Final = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
# RFC 9051 section 9: date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE
_DATE_TIME: Final = re.compile(
    rb'INTERNALDATE "\s?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)"'
)
_UID: Final = re.compile(rb"\bUID (\d+)")
_SIZE: Final = re.compile(rb"\bRFC822\.SIZE (\d+)")
_FLAGS: Final = re.compile(rb"\bFLAGS \(([^)]*)\)")
_START: Final = re.compile(rb"\d+ \(")
_LIST: Final = re.compile(rb'\((?P<attrs>[^)]*)\) (?P<delim>NIL|"(?:\\.|[^"\\])*") ?(?P<name>.*)$', re.S)
_BODY_BATCH_BYTES: Final = 4 * 1024 * 1024
_BODY_BATCH_COUNT: Final = 200


class SourceError(Exception):
    """The source cannot be reached or refuses the login: the mailbox is skipped.
    The text is bilingual, for the operator."""


@dataclass(frozen=True, slots=True)
class SourceFolder:
    wire: str
    """The name as the server spells it (modified UTF-7, its own delimiter)."""
    name: str
    """Decoded Unicode, '/' as delimiter, personal namespace prefix removed."""
    attributes: frozenset[str]
    selectable: bool


@dataclass(frozen=True, slots=True)
class SourceMessage:
    uid: int
    flags: tuple[str, ...]
    internal_date: datetime
    size: int
    message_id: str | None


def parse_internal_date(text: bytes) -> datetime | None:
    found = _DATE_TIME.search(text)
    if not found:
        return None
    day, mon, year, hh, mm, ss, sign, zh, zm = found.groups()
    month = _MONTHS.get(mon.decode().title())
    if month is None:
        return None
    offset = timedelta(hours=int(zh), minutes=int(zm)) * (-1 if sign == b"-" else 1)
    local = datetime(int(year), month, int(day), int(hh), int(mm), int(ss), tzinfo=timezone(offset))
    return local.astimezone(UTC)


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def uid_set(uids: Iterable[int]) -> str:
    """"1:3,7,9:10" for a UID FETCH (RFC 9051 section 9, sequence-set)."""
    ranges: list[list[int]] = []
    for uid in sorted(set(uids)):
        if ranges and ranges[-1][1] + 1 == uid:
            ranges[-1][1] = uid
        else:
            ranges.append([uid, uid])
    return ",".join(str(a) if a == b else f"{a}:{b}" for a, b in ranges)


def _unquote(token: bytes) -> str:
    text = token.decode("utf-8", "replace")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def _decode_name(wire: str, delimiter: str | None) -> list[str]:
    levels = wire.split(delimiter) if delimiter else [wire]
    out = []
    for level in levels:
        try:
            out.append(decode_folder_level(level))
        except (ValueError, UnicodeDecodeError):
            out.append(level)  # not modified UTF-7 after all (a server sending UTF-8)
    return out


def _fetch_items(data: Sequence[object]) -> list[tuple[bytes, bytes | None]]:
    """imaplib FETCH data as (the response text without literals, the literal)."""
    items: list[tuple[bytes, bytes | None]] = []
    for part in data:
        if isinstance(part, tuple):
            head, literal = part[0], part[1]
            if isinstance(head, bytes) and _START.match(head):
                items.append((head, literal if isinstance(literal, bytes) else None))
            elif items:
                items[-1] = (items[-1][0] + head, literal)
        elif isinstance(part, bytes):
            if _START.match(part):
                items.append((part, None))
            elif items:
                items[-1] = (items[-1][0] + part, items[-1][1])
    return items


class ImapSource:
    def __init__(
        self,
        host: str,
        port: int | None,
        security: Security,
        user: str,
        password: str,
        *,
        ca_file: str | None = None,
        timeout: float = 120.0,
    ) -> None:
        self.host, self.security, self.user = host, security, user
        self.port = port or (993 if security == "tls" else 143)
        self._password = password
        self._ca_file = ca_file
        self._timeout = timeout
        self._conn: imaplib.IMAP4 | None = None
        self._selected: str | None = None

    @property
    def label(self) -> str:
        return f"imap://{self.user}@{self.host}:{self.port}"

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self._ca_file)

    def connect(self) -> None:
        where = f"{self.host}:{self.port}"
        try:
            if self.security == "tls":
                conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                    self.host, self.port, ssl_context=self._context(), timeout=self._timeout
                )
            else:
                conn = imaplib.IMAP4(self.host, self.port, timeout=self._timeout)
                if self.security == "starttls":
                    conn.starttls(ssl_context=self._context())
        except ssl.SSLError as exc:
            raise SourceError(f"lỗi TLS với {where} / TLS error with {where}: {exc}") from exc
        except (OSError, imaplib.IMAP4.error) as exc:
            raise SourceError(
                f"không kết nối được máy chủ nguồn {where} / "
                f"cannot connect to the source server {where}: {exc}"
            ) from exc
        try:
            conn.login(self.user, self._password)
        except imaplib.IMAP4.error as exc:
            conn.shutdown()
            detail = str(exc)
            raise SourceError(
                f"máy chủ nguồn từ chối đăng nhập của {self.user} (sai mật khẩu?) / "
                f"the source server refused the login of {self.user} (wrong password?): {detail}"
            ) from exc
        except OSError as exc:
            raise SourceError(
                f"mất kết nối với {where} khi đăng nhập / connection to {where} lost during login: {exc}"
            ) from exc
        self._conn = conn
        self._selected = None

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.logout()
        except (OSError, imaplib.IMAP4.error):
            pass

    @property
    def conn(self) -> imaplib.IMAP4:
        if self._conn is None:
            raise SourceError("chưa kết nối / not connected")
        return self._conn

    def _check(self, typ: str, data: Sequence[object], what: str) -> None:
        if typ != "OK":
            text = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
            raise imaplib.IMAP4.error(f"{what}: {typ} {text}")

    def _prefix(self) -> str:
        """The personal namespace prefix (RFC 2342), e.g. "INBOX." on Courier."""
        if "NAMESPACE" not in self.conn.capabilities:
            return ""
        typ, data = self.conn.namespace()
        if typ != "OK" or not data or not isinstance(data[0], bytes):
            return ""
        found = re.match(rb'\(\("((?:\\.|[^"\\])*)"', data[0])
        return _unquote(b'"' + found.group(1) + b'"') if found else ""

    def folders(self) -> list[SourceFolder]:
        prefix = self._prefix()
        typ, data = self.conn.list('""', "*")
        self._check(typ, data, "LIST")
        out: list[SourceFolder] = []
        for item in data:
            if isinstance(item, tuple):
                # The name came as a literal: "{n}" ends the line; quote it in its place.
                head = re.sub(rb"\{\d+\+?\}$", b"", item[0])
                line = head + b'"' + item[1].replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
            elif isinstance(item, bytes):
                line = item
            else:
                continue
            found = _LIST.match(line)
            if not found:
                continue
            attrs = frozenset(
                _canonical_attr(a) for a in found.group("attrs").decode("ascii", "replace").split()
            )
            delim_token = found.group("delim")
            delimiter = None if delim_token == b"NIL" else _unquote(delim_token)
            wire = _unquote(found.group("name").strip())
            local = wire
            if prefix and wire.upper() != "INBOX" and wire.startswith(prefix):
                local = wire[len(prefix):]
            name = "/".join(_decode_name(local, delimiter))
            selectable = not ({"\\Noselect", "\\Nonexistent"} & attrs)
            out.append(SourceFolder(wire, name, attrs, selectable))
        return out

    def examine(self, folder: SourceFolder) -> tuple[int, int]:
        """Open read-only; returns (UIDVALIDITY, message count)."""
        typ, data = self.conn.select(_quote(folder.wire), readonly=True)
        self._check(typ, data, f"EXAMINE {folder.wire}")
        self._selected = folder.wire
        exists = int(data[0]) if data and isinstance(data[0], bytes) and data[0].isdigit() else 0
        _, validity = self.conn.response("UIDVALIDITY")
        uidvalidity = int(validity[0]) if validity and isinstance(validity[0], bytes) else 0
        return uidvalidity, exists

    def messages(self) -> list[SourceMessage]:
        """Every message of the open folder, without bodies."""
        typ, data = self.conn.uid(
            "FETCH", "1:*", "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
        )
        self._check(typ, data, "UID FETCH")
        out: dict[int, SourceMessage] = {}
        for text, literal in _fetch_items(data):
            uid = _UID.search(text)
            size = _SIZE.search(text)
            date = parse_internal_date(text)
            if not uid or not size or date is None:
                continue  # an unsolicited FETCH (a flag change), not ours
            flags = _FLAGS.search(text)
            names = tuple(
                f for f in (flags.group(1).decode("utf-8", "replace").split() if flags else [])
                if f.lower() != "\\recent"
            )
            out[int(uid.group(1))] = SourceMessage(
                int(uid.group(1)), names, date, int(size.group(1)),
                message_id_of(literal) if literal else None,
            )
        return [out[uid] for uid in sorted(out)]

    def bodies(self, uids: Sequence[int]) -> dict[int, bytes]:
        """BODY.PEEK[] of the given messages of the open folder."""
        typ, data = self.conn.uid("FETCH", uid_set(uids), "(UID BODY.PEEK[])")
        self._check(typ, data, "UID FETCH BODY")
        out: dict[int, bytes] = {}
        for text, literal in _fetch_items(data):
            uid = _UID.search(text)
            if uid and literal is not None and b"BODY[]" in text:
                out[int(uid.group(1))] = literal
        return out

    def reopen(self, folder: SourceFolder) -> None:
        """Reconnect after a dropped connection and open ``folder`` again."""
        self.close()
        self.connect()
        self.examine(folder)


def _canonical_attr(attr: str) -> str:
    """RFC 6154 / RFC 3501 attributes are case-insensitive: compare in one case."""
    return "\\" + attr.lstrip("\\").capitalize() if attr.startswith("\\") else attr


def body_batches(messages: Sequence[SourceMessage]) -> list[list[SourceMessage]]:
    """Messages grouped so that one UID FETCH brings a few MB at most."""
    batches: list[list[SourceMessage]] = []
    current: list[SourceMessage] = []
    size = 0
    for message in messages:
        if current and (size + message.size > _BODY_BATCH_BYTES or len(current) >= _BODY_BATCH_COUNT):
            batches.append(current)
            current, size = [], 0
        current.append(message)
        size += message.size
    if current:
        batches.append(current)
    return batches
