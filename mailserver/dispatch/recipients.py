"""The "Nơi nhận:" (recipients) block of an administrative document and its
resolution against the directory.

A Vietnamese administrative document (Nghị định 30/2020/NĐ-CP, Phụ lục I)
ends with a "Nơi nhận:" block, one recipient per line: "- Như Điều 3;",
"- Sở TT&TT;", "- UBND các huyện;", "- Lưu: VT, KT.". Decision
70/2009/QĐ-UBND asks that the electronic copy go to each of them by e-mail.

Lines are matched after folding (lower case, no diacritics, đ -> d, no
punctuation) against agency codes, full names and their usual abbreviations
("Ủy ban nhân dân" -> "UBND", "Sở Thông tin và Truyền thông" -> "Sở TT&TT"),
and against group codes and names. "Lưu …" lines (the issuer's own archive)
are skipped by themselves; anything else that does not match is reported and
blocks the dispatch until the operator resolves or skips it.
"""

from __future__ import annotations

import re
import unicodedata
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from io import BytesIO
from typing import Final

from mailserver.dispatch.groups import Group
from policy.extract.formats import pdf_text, word_text
from storage.directory import Agency

_HEADING: Final = re.compile(r"^\s*n[oơ]i\s+nh[aậ]n\s*:?\s*(.*)$", re.IGNORECASE)
_ITEM: Final = re.compile(r"^\s*[-–+•*]\s*(.+?)\s*[;.,]?\s*$")
_PREFIXES: Final = (
    ("uy ban nhan dan", "ubnd"),
    ("hoi dong nhan dan", "hdnd"),
    ("mat tran to quoc", "mttq"),
)


class DocumentError(Exception):
    """The document cannot be read or has no "Nơi nhận" block."""


def fold(text: str) -> str:
    """Lower case, no diacritics, ``đ`` as ``d``, ``&``/``và`` unified, single spaces."""
    text = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = re.sub(r"\s*&\s*", " & ", text)
    text = re.sub(r"[^a-z0-9& ]+", " ", text)
    return " ".join(text.split())


def abbreviations(name: str) -> set[str]:
    """Usual short forms of an agency name, folded (see module docstring)."""
    words = fold(name)
    forms = {words}
    for long, short in _PREFIXES:
        if words.startswith(long + " "):
            words = short + words[len(long):]
            forms.add(words)
    head, _, rest = words.partition(" ")
    if rest:
        # "so thong tin va truyen thong" -> "so tt&tt"; "so tai chinh" -> "so tc"
        halves = [h.split() for h in re.split(r"\s+(?:va|&)\s+", rest)]
        initials = "&".join("".join(w[0] for w in half) for half in halves if half)
        forms.add(f"{head} {initials}")
        forms.add(f"{head} {initials.replace('&', ' & ')}")
    return {" ".join(f.split()) for f in forms}


def read_recipient_block(filename: str, data: bytes) -> list[str]:
    """The lines of the "Nơi nhận:" block of a .docx or .pdf, without dashes."""
    lower = filename.lower()
    try:
        if lower.endswith(".docx"):
            with zipfile.ZipFile(BytesIO(data)) as archive:
                lines = word_text(archive.read("word/document.xml"))
        elif lower.endswith(".pdf"):
            lines = pdf_text(data).lines
        else:
            raise DocumentError("chỉ đọc được .docx hoặc .pdf / only .docx and .pdf can be read")
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise DocumentError(f"không đọc được tài liệu / cannot read {filename}: {exc}") from None
    return recipient_lines(lines)


def recipient_lines(lines: Sequence[str]) -> list[str]:
    found: list[str] = []
    inside = False
    for raw in lines:
        for line in raw.splitlines() or [raw]:
            if not inside:
                match = _HEADING.match(line)
                if match:
                    inside = True
                    rest = match.group(1)
                    item = _ITEM.match(rest) if rest else None
                    if item:
                        found.append(item.group(1))
                continue
            if not line.strip():
                continue
            item = _ITEM.match(line)
            if item is None:
                if found:
                    return found
                continue
            found.append(item.group(1))
    if not inside:
        raise DocumentError('không thấy mục "Nơi nhận:" / no "Nơi nhận:" block in the document')
    return found


@dataclass(slots=True)
class Resolution:
    addresses: list[str] = field(default_factory=list)
    """Resolved mailboxes, in document order, without duplicates."""
    matched: list[tuple[str, str]] = field(default_factory=list)
    """(line, what it matched: agency code or group code)."""
    skipped: list[str] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)


def is_archive_line(line: str) -> bool:
    """"Lưu: VT, KT." -- the issuer's own file copy, not a recipient."""
    return fold(line).startswith("luu")


class Resolver:
    def __init__(self, agencies: Sequence[Agency], groups: Sequence[Group]) -> None:
        self._agencies = {a.code: a for a in agencies}
        self._groups = {g.code: g for g in groups}
        self._names: dict[str, tuple[str, str]] = {}
        for agency in agencies:
            self._names[fold(agency.code)] = ("agency", agency.code)
            for form in abbreviations(agency.name):
                self._names.setdefault(form, ("agency", agency.code))
        for group in groups:
            self._names[fold(group.code)] = ("group", group.code)
            self._names[fold(group.name)] = ("group", group.code)

    def group_addresses(self, code: str, seen: frozenset[str] = frozenset()) -> list[str]:
        group = self._groups[code]
        out: list[str] = []
        for member in group.members:
            if "@" in member:
                out.append(member)
            elif member in self._agencies and self._agencies[member].address:
                out.append(str(self._agencies[member].address))
            elif member in self._groups and member not in seen:
                out += self.group_addresses(member, seen | {code})
        return out

    def agency_address(self, code: str) -> str | None:
        agency = self._agencies.get(code.strip().lower())
        return agency.address if agency is not None else None

    def match(self, line: str) -> tuple[str, str] | None:
        return self._names.get(fold(line))

    def resolve(self, lines: Sequence[str], skip: Sequence[str] = ()) -> Resolution:
        result = Resolution()
        skipped = {fold(s) for s in skip}
        for line in lines:
            if fold(line) in skipped or is_archive_line(line):
                result.skipped.append(line)
                continue
            hit = self.match(line)
            if hit is None:
                result.unresolved.append(line)
                continue
            kind, code = hit
            result.matched.append((line, code))
            if kind == "agency":
                address = self.agency_address(code)
                found = [address] if address else []
            else:
                found = self.group_addresses(code)
            for address in found:
                if address not in result.addresses:
                    result.addresses.append(address)
        return result
