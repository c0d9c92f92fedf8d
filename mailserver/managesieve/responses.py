"""ManageSieve responses (RFC 5804 section 1.3, 4) -> wire bytes.

The session returns these objects; only ``to_bytes`` formats the wire::

    response-oknobye = ("OK" / "NO" / "BYE") [SP "(" resp-code ")"] [SP string] CRLF
    string           = quoted / literal-s2c
    literal-s2c      = "{" number "}" CRLF *OCTET

A string goes out quoted when it is short and holds no CR, LF, NUL, ``"``
nor ``\\`` (which would need escapes some clients mishandle), as a literal
otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["Bye", "Data", "No", "Ok", "Response", "Sasl", "ScriptData", "string"]

QUOTED_MAX: Final = 1024


def string(value: str) -> bytes:
    data = value.encode("utf-8")
    if len(data) <= QUOTED_MAX and not any(c in data for c in b'\r\n\x00"\\'):
        return b'"' + data + b'"'
    return b"{%d}\r\n" % len(data) + data


@dataclass(frozen=True, slots=True)
class _Status:
    text: str = ""
    code: str = ""
    """A response code (section 1.3), e.g. ``NONEXISTENT``, ``QUOTA/MAXSIZE``, ``TAG "x"``."""

    WORD = ""

    def to_bytes(self) -> bytes:
        out = self.WORD.encode()
        if self.code:
            out += b" (" + self.code.encode("utf-8") + b")"
        if self.text:
            out += b" " + string(self.text)
        return out + b"\r\n"


@dataclass(frozen=True, slots=True)
class Ok(_Status):
    WORD = "OK"


@dataclass(frozen=True, slots=True)
class No(_Status):
    WORD = "NO"


@dataclass(frozen=True, slots=True)
class Bye(_Status):
    WORD = "BYE"


@dataclass(frozen=True, slots=True)
class Data:
    """A line of strings and atoms before the final status (CAPABILITY, LISTSCRIPTS)."""

    strings: tuple[str, ...]
    atom: str = ""
    """A bare word after the strings (``ACTIVE`` in LISTSCRIPTS)."""

    def to_bytes(self) -> bytes:
        out = b" ".join(string(s) for s in self.strings)
        if self.atom:
            out += b" " + self.atom.encode("ascii")
        return out + b"\r\n"


@dataclass(frozen=True, slots=True)
class ScriptData:
    """GETSCRIPT's answer: the script as a literal (section 2.9)."""

    text: str

    def to_bytes(self) -> bytes:
        data = self.text.encode("utf-8")
        return b"{%d}\r\n" % len(data) + data + b"\r\n"


@dataclass(frozen=True, slots=True)
class Sasl:
    """A SASL challenge (section 2.1): one string, base64."""

    challenge: str

    def to_bytes(self) -> bytes:
        return string(self.challenge) + b"\r\n"


Response = Ok | No | Bye | Data | ScriptData | Sasl
