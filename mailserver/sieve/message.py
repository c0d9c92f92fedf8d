"""The message as Sieve tests see it (RFC 5228 sections 5.4, 5.7; RFC 5173).

One ``MessageView`` per delivered message, shared by every recipient's
script: the header section is split once, and each field is RFC 2047-decoded
(section 2.7.2: "comparisons are performed on decoded header values") and
NFC-normalised only when a test asks for it, then kept. The body is parsed
only for the ``body`` test. NFC on both sides is what makes ``:contains
"Báo cáo"`` match a subject written with combining accents (the way many
Vietnamese keyboards and older mail programs send it) or encoded in any
charset.
"""

from __future__ import annotations

import email
import email.policy
import re
import unicodedata
from email.message import Message
from email.utils import getaddresses
from typing import Final

from storage import headers
from storage.mimeinfo import decode_words

__all__ = ["MessageView", "nfc"]

_TAGS: Final = re.compile(r"<[^>]*>")


def nfc(text: str) -> str:
    return text if text.isascii() else unicodedata.normalize("NFC", text)


class MessageView:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self._split: dict[str, list[str]] | None = None
        self._decoded: dict[str, list[str]] = {}
        self._parsed: Message | None = None
        self._addresses: dict[str, list[list[str]]] = {}
        self.size = len(data)

    @property
    def _fields(self) -> dict[str, list[str]]:
        # Split when a test first asks: a view is made for every delivery,
        # and most recipients have no script that reads a header.
        if self._split is None:
            head, _body = headers.split(self.data)
            fields: dict[str, list[str]] = {}
            for name, value in headers.fields(head):
                fields.setdefault(name, []).append(value)
            self._split = fields
        return self._split

    def raw(self, name: str) -> list[str]:
        """Unfolded, undecoded values of every ``name`` field (addresses are parsed from these)."""
        return self._fields.get(name.lower(), [])

    def header(self, name: str) -> list[str]:
        """Decoded (RFC 2047), NFC values of every ``name`` field, in order."""
        key = name.lower()
        found = self._decoded.get(key)
        if found is None:
            found = [nfc(_decode(v)) for v in self._fields.get(key, [])]
            self._decoded[key] = found
        return found

    def addresses(self, name: str) -> list[list[str]]:
        """The NFC addr-specs of every ``name`` field, one list per field (the
        ``address`` test with ``:index`` picks a field first, RFC 5260 section 6);
        parsed once per message."""
        key = name.lower()
        found = self._addresses.get(key)
        if found is None:
            found = [[nfc(addr) for _n, addr in getaddresses([v])] for v in self._fields.get(key, [])]
            self._addresses[key] = found
        return found

    def exists(self, name: str) -> bool:
        return name.lower() in self._fields

    def parsed(self) -> Message:
        if self._parsed is None:
            self._parsed = email.message_from_bytes(self.data, policy=email.policy.compat32)
        return self._parsed

    def body(self, transform: str, types: tuple[str, ...]) -> list[str]:
        """RFC 5173 section 5: ``raw`` the undecoded body; ``text`` the text
        parts decoded (HTML without its tags); ``content`` the parts whose
        type matches one of ``types`` ("text", "text/plain", "" for all)."""
        if transform == "raw":
            return [nfc(headers.split(self.data)[1].decode("utf-8", "replace"))]
        out: list[str] = []
        for part in self.parsed().walk():
            if part.is_multipart():
                continue
            ctype = part.get_content_type().lower()
            if transform == "text":
                if not ctype.startswith("text/") or part.get_filename():
                    continue
            elif not any(_type_matches(ctype, t) for t in types):
                continue
            out.append(nfc(_part_text(part, strip_html=transform == "text")))
        return out


def _type_matches(ctype: str, wanted: str) -> bool:
    wanted = wanted.lower().strip()
    if not wanted:
        return True
    return ctype == wanted if "/" in wanted else ctype.split("/")[0] == wanted


def _part_text(part: Message, *, strip_html: bool) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        text = payload.decode(charset, "replace")
    except LookupError:
        text = payload.decode("utf-8", "replace")
    if strip_html and part.get_content_type().lower() == "text/html":
        text = _TAGS.sub(" ", text)
    return text


def _decode(value: str) -> str:
    try:
        return decode_words(value) if "=?" in value else value
    except Exception:  # noqa: BLE001 - a malformed encoded word is compared as written
        return value
