"""Mailbox files: mbox (mboxrd) and Maildir++, written by ``mailbox export`` and
read by ``mailbox import`` together with directories of ``.eml`` files.

mbox: each message starts with a ``From `` line carrying INTERNALDATE (asctime,
UTC); lines of the message that start with ``>*From `` get one more ``>``
(mboxrd, so the quoting is undone exactly); flags travel in ``Status``,
``X-Status`` and ``X-Keywords`` headers placed first in the header (the headers
mutt and Dovecot read), which the reader removes again. Line ends are LF in the
file and CRLF in the store.

Maildir++: INBOX is the root, folder "A/B" the directory ``.A.B`` (each level
modified UTF-7, '.' encoded, as the store names its own directories); flags are
the ``:2,`` letters, keywords the lower-case letters that the folder's
``dovecot-keywords`` file names (Dovecot's convention, so Dovecot reads our
export and we read Dovecot's mail); INTERNALDATE is the file's mtime. Files are
written byte for byte as stored.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import BinaryIO, Final

from storage.api import INBOX
from storage.maildir import decode_folder_level, encode_folder_level

_MONTHS: Final = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_ASCTIME: Final = re.compile(
    rb"([A-Z][a-z]{2}) +(\d{1,2}) (\d{1,2}):(\d\d)(?::(\d\d))?(?: [+-]?\w+)? (\d{4})"
)
_QUOTED_FROM: Final = re.compile(rb"^(>*From )", re.M)
_UNQUOTE_FROM: Final = re.compile(rb"^>(>*From )", re.M)
_FLAG_HEADERS: Final = (b"status:", b"x-status:", b"x-keywords:")
# Maildir info letters (https://cr.yp.to/proto/maildir.html), ASCII order in names.
MAILDIR_LETTERS: Final = {
    "\\Draft": "D", "\\Flagged": "F", "\\Answered": "R", "\\Seen": "S", "\\Deleted": "T",
}
_LETTER_FLAGS: Final = {v: k for k, v in MAILDIR_LETTERS.items()}
_X_STATUS: Final = {"\\Answered": "A", "\\Flagged": "F", "\\Draft": "T", "\\Deleted": "D"}
_MOZILLA: Final = ((0x0001, "\\Seen"), (0x0002, "\\Answered"), (0x0004, "\\Flagged"), (0x0008, "\\Deleted"))


@dataclass(frozen=True, slots=True)
class FileMessage:
    data: bytes
    """As the store will keep it (CRLF line ends)."""
    flags: frozenset[str]
    internal_date: datetime
    origin: str
    """Where it came from, for error lines: "file:message number" or a path."""


def to_crlf(data: bytes) -> bytes:
    """LF line ends (files written on Unix) become CRLF (RFC 5322 section 2.1);
    a message that already has CRs is left as it is."""
    return data if b"\r" in data else data.replace(b"\n", b"\r\n")


def _from_crlf(data: bytes) -> bytes:
    """CRLF to LF when it round-trips exactly (no bare CR or LF), else as is."""
    lf = data.replace(b"\r\n", b"\n")
    return lf if b"\r" not in lf and lf.count(b"\n") == data.count(b"\r\n") else data


def _utc(date: datetime) -> datetime:
    return date.replace(tzinfo=UTC) if date.tzinfo is None else date.astimezone(UTC)


def date_header(data: bytes) -> datetime | None:
    """The Date: field of a message, for files that carry no INTERNALDATE."""
    head = data.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
    found = re.search(rb"(?im)^Date:[ \t]*(.+(?:\r?\n[ \t].+)*)", head)
    if not found:
        return None
    try:
        return _utc(parsedate_to_datetime(found.group(1).decode("ascii", "replace").strip()))
    except (TypeError, ValueError, IndexError):
        return None


# -- mbox ---------------------------------------------------------------------
def mbox_entry(data: bytes, flags: Iterable[str], internal_date: datetime) -> bytes:
    """One message as an mboxrd entry, ending with the blank separator line."""
    flags = set(flags)
    stamp = time.asctime(time.gmtime(internal_date.timestamp())).encode()
    status = b"RO" if "\\Seen" in flags else b"O"
    x_status = "".join(letter for flag, letter in _X_STATUS.items() if flag in flags).encode()
    keywords = " ".join(sorted(f for f in flags if not f.startswith("\\"))).encode("utf-8")
    body = _QUOTED_FROM.sub(rb">\1", _from_crlf(data))
    head = b"From MAILER-DAEMON " + stamp + b"\nStatus: " + status + b"\n"
    head += b"X-Status: " + x_status + b"\n" + b"X-Keywords: " + keywords + b"\n"
    return head + body + (b"" if body.endswith(b"\n") else b"\n") + b"\n"


def write_mbox(handle: BinaryIO, data: bytes, flags: Iterable[str], internal_date: datetime) -> None:
    handle.write(mbox_entry(data, flags, internal_date))


def _is_blank(line: bytes) -> bool:
    return line in (b"\n", b"\r\n")


def count_mbox(path: Path) -> int:
    total, previous_blank = 0, True
    with path.open("rb") as handle:
        for line in handle:
            if line.startswith(b"From ") and previous_blank:
                total += 1
            previous_blank = _is_blank(line)
    return total


def read_mbox(path: Path) -> Iterator[FileMessage]:
    """The messages of an mbox file (mboxrd or mboxo), streamed."""
    from_line: bytes | None = None
    lines: list[bytes] = []
    number = 0
    previous_blank = True
    with path.open("rb") as handle:
        for line in handle:
            if line.startswith(b"From ") and previous_blank:
                if from_line is not None:
                    number += 1
                    yield _mbox_message(from_line, lines, f"{path}:{number}")
                from_line, lines = line, []
            elif from_line is not None:
                lines.append(line)
            previous_blank = _is_blank(line)
    if from_line is not None:
        number += 1
        yield _mbox_message(from_line, lines, f"{path}:{number}")


def _mbox_message(from_line: bytes, lines: list[bytes], origin: str) -> FileMessage:
    if lines and _is_blank(lines[-1]):
        lines = lines[:-1]  # the separator before the next From_ line
    flags: set[str] = set()
    # Our own flag headers come first; a foreign writer's may be anywhere in the
    # header: those are read but left in place (they may be the sender's).
    while lines and lines[0].lower().startswith(_FLAG_HEADERS):
        header = lines.pop(0)
        while lines and lines[0][:1] in (b" ", b"\t"):
            header += lines.pop(0)
        _read_flag_header(header, flags)
    data = _UNQUOTE_FROM.sub(rb"\1", b"".join(lines))
    if not flags:
        for header in _header_lines(data):
            lower = header.lower()
            if lower.startswith(_FLAG_HEADERS):
                _read_flag_header(header, flags)
            elif lower.startswith(b"x-mozilla-status:"):
                value = header.split(b":", 1)[1].strip()
                bits = int(value, 16) if re.fullmatch(rb"[0-9a-fA-F]{1,4}", value) else 0
                flags.update(flag for bit, flag in _MOZILLA if bits & bit)
    date = _from_line_date(from_line) or date_header(data) or datetime.now(UTC)
    return FileMessage(to_crlf(data), frozenset(flags), date.replace(microsecond=0), origin)


def _header_lines(data: bytes) -> Iterator[bytes]:
    for line in data.split(b"\n"):
        if not line.strip():
            return
        yield line


def _read_flag_header(header: bytes, flags: set[str]) -> None:
    name, _, value = header.partition(b":")
    text = value.decode("utf-8", "replace").strip()
    match name.strip().lower():
        case b"status":
            if "R" in text:
                flags.add("\\Seen")
        case b"x-status":
            flags.update(flag for flag, letter in _X_STATUS.items() if letter in text)
        case _:
            flags.update(k for k in text.replace(",", " ").split() if k)


def _from_line_date(line: bytes) -> datetime | None:
    found = _ASCTIME.search(line)
    if not found:
        return None
    mon, day, hh, mm, ss, year = found.groups()
    month = _MONTHS.get(mon.decode())
    if month is None:
        return None
    try:
        return datetime(int(year), month, int(day), int(hh), int(mm), int(ss or 0), tzinfo=UTC)
    except ValueError:
        return None


# -- Maildir++ ------------------------------------------------------------------
def maildir_folder_dir(root: Path, folder: str) -> Path:
    if folder == INBOX:
        return root
    return root / ("." + ".".join(encode_folder_level(level) for level in folder.split("/")))


class MaildirWriter:
    """One Maildir++ folder being written; keywords beyond Dovecot's 26 letters
    are counted in ``dropped_keywords`` (they cannot be written)."""

    def __init__(self, root: Path, folder: str) -> None:
        self.path = maildir_folder_dir(root, folder)
        for sub in ("cur", "new", "tmp"):
            (self.path / sub).mkdir(parents=True, exist_ok=True)
        if folder != INBOX:
            (self.path / "maildirfolder").touch()
        self.keywords: list[str] = []
        self.dropped_keywords = 0
        self._seq = 0

    def write(self, data: bytes, flags: Iterable[str], internal_date: datetime) -> Path:
        flags = set(flags)
        letters = "".join(sorted(MAILDIR_LETTERS[f] for f in flags if f in MAILDIR_LETTERS))
        keyword_letters = []
        for keyword in sorted(f for f in flags if not f.startswith("\\")):
            if keyword not in self.keywords:
                if len(self.keywords) >= 26:
                    self.dropped_keywords += 1
                    continue
                self.keywords.append(keyword)
                (self.path / "dovecot-keywords").write_text(
                    "".join(f"{i} {k}\n" for i, k in enumerate(self.keywords)), encoding="utf-8"
                )
            keyword_letters.append(chr(ord("a") + self.keywords.index(keyword)))
        self._seq += 1
        stamp = int(internal_date.timestamp())
        info = letters + "".join(sorted(keyword_letters))
        name = f"{stamp}.M{self._seq}P{os.getpid()}.mailserver,S={len(data)}:2,{info}"
        path = self.path / "cur" / name
        path.write_bytes(data)
        os.utime(path, (stamp, stamp))
        return path


def is_maildir(path: Path) -> bool:
    return (path / "cur").is_dir() and (path / "new").is_dir()


def maildir_folders(root: Path) -> list[tuple[str, Path]]:
    """(folder name, directory) of a Maildir++ tree: the root is INBOX."""
    out = [(INBOX, root)] if is_maildir(root) else []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") and entry.name not in (".", "..") and is_maildir(entry):
            levels = entry.name[1:].split(".")
            try:
                name = "/".join(decode_folder_level(level) for level in levels)
            except (ValueError, UnicodeDecodeError):
                name = "/".join(levels)
            out.append((name, entry))
    return out


def maildir_files(folder: Path) -> list[Path]:
    return sorted(p for sub in ("cur", "new") for p in (folder / sub).iterdir() if p.is_file())


def read_maildir_message(path: Path, keywords: dict[str, str]) -> FileMessage:
    _, sep, info = path.name.rpartition(":2,")
    flags: set[str] = set()
    if sep:
        for letter in info:
            if letter in _LETTER_FLAGS:
                flags.add(_LETTER_FLAGS[letter])
            elif letter in keywords:
                flags.add(keywords[letter])
    stat = path.stat()
    date = datetime.fromtimestamp(int(stat.st_mtime), UTC)
    return FileMessage(to_crlf(path.read_bytes()), frozenset(flags), date, str(path))


def maildir_keywords(folder: Path) -> dict[str, str]:
    """Letter -> keyword from Dovecot's ``dovecot-keywords`` ("0 $Label1" is "a")."""
    path = folder / "dovecot-keywords"
    out: dict[str, str] = {}
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        index, _, keyword = line.partition(" ")
        if index.isdigit() and int(index) < 26 and keyword.strip():
            out[chr(ord("a") + int(index))] = keyword.strip()
    return out


# -- .eml ----------------------------------------------------------------------
def read_eml(path: Path) -> FileMessage:
    data = to_crlf(path.read_bytes())
    date = date_header(data) or datetime.fromtimestamp(int(path.stat().st_mtime), UTC)
    return FileMessage(data, frozenset(), date.replace(microsecond=0), str(path))
