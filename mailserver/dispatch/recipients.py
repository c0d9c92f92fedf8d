"""The "Nơi nhận:" (recipients) block of an administrative document, resolved
against the directory.

A Vietnamese administrative document (Nghị định 30/2020/NĐ-CP, Phụ lục I)
ends with a "Nơi nhận:" block, one recipient per line: "- Như Điều 3;",
"- Sở TT&TT (b/c);", "- UBND các huyện;", "- Lưu: VT, KT.". Decision
70/2009/QĐ-UBND Điều 6 khoản 8 asks that the electronic copy go to the mailbox
of every agency named there.

Each line, its notes removed ("(để thực hiện)", "(b/c)", "(thay b/c)",
mailserver.directory.names.strip_notes), is looked up by its key
(names.canon) among agency codes, names, their short forms and the aliases
operators add (``mailserver agency alias add``), and among group codes and
names; a line that names several agencies separated by commas resolves when
every part does. "Lưu …" is the issuer's own file copy (dispatch files it in
the agency's Sent folder). "Như trên" (as above) stands for the main
addressees, the "Kính gửi:" block; "Như Điều 3" for the agencies named in
that article of the decision: both are expanded from the document itself,
and what they expanded to is shown. Anything else that does not resolve is
reported with the reason and blocks the dispatch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from mailserver.directory.names import Ambiguous, NameIndex, Target, fold, strip_notes
from mailserver.dispatch.document import Document
from mailserver.dispatch.groups import Group
from storage.directory import Agency

__all__ = ["Line", "Resolution", "Resolver", "is_archive_line"]

_AS_ABOVE: Final = re.compile(
    r"^nhu\s+(?:(tren)|(?:cac\s+|tai\s+)?(?:dieu|d)\s+(\d+(?:\s+(?:va\s+|dieu\s+)*\d+)*))$"
)
"""Folded "Như trên", "Như Điều 3", "Như các Điều 3, 4", "Như Điều 2 và Điều 3"."""


def is_archive_line(line: str) -> bool:
    """"Lưu: VT, KT." -- the issuer's own file copy, not a recipient."""
    return fold(line).startswith("luu")


@dataclass(slots=True)
class Line:
    """One "Nơi nhận" line and what became of it."""

    text: str
    status: str
    """``matched``, ``expanded`` (Như trên / Như Điều N), ``archive`` (Lưu),
    ``skipped`` (--skip) or ``unresolved``."""
    targets: list[Target] = field(default_factory=list)
    via: str = ""
    """For ``expanded``: "Kính gửi" or "Điều 3"."""
    reason: str = ""
    """For ``unresolved``: why, Vietnamese first."""
    as_above: bool = False
    """"Như trên" / "Như Điều N": never to be skipped, always expanded."""


@dataclass(slots=True)
class Resolution:
    lines: list[Line] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)
    """Resolved mailboxes, in document order, without duplicates."""

    @property
    def unresolved(self) -> list[Line]:
        return [x for x in self.lines if x.status == "unresolved"]

    @property
    def matched(self) -> list[tuple[str, str]]:
        """(line, code) of every target found, expanded lines included."""
        return [(x.text, t.code) for x in self.lines for t in x.targets]

    @property
    def skipped(self) -> list[str]:
        return [x.text for x in self.lines if x.status in ("skipped", "archive")]


class Resolver:
    """Names -> agency and group codes -> addresses (module docstring)."""

    def __init__(
        self,
        agencies: Sequence[Agency],
        groups: Sequence[Group],
        aliases: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self._agencies = {a.code: a for a in agencies}
        self._groups = {g.code: g for g in groups}
        self.index = NameIndex()
        for agency in agencies:
            names = [agency.name, *(aliases or {}).get(agency.code, ())]
            self.index.add(Target("agency", agency.code, agency.name), names)
        for group in groups:
            self.index.add(Target("group", group.code, group.name), [group.name])

    # -- addresses --------------------------------------------------------------
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

    def addresses(self, target: Target) -> list[str]:
        if target.kind == "group":
            return self.group_addresses(target.code)
        address = self.agency_address(target.code)
        return [address] if address else []

    # -- names ------------------------------------------------------------------
    def match(self, text: str) -> list[Target] | str:
        """The targets one entry names, or why it names none (Vietnamese / English)."""
        entry = strip_notes(text)
        found = self.index.lookup(entry)
        if isinstance(found, Target):
            return [found]
        if isinstance(found, Ambiguous):
            return _ambiguous(found)
        parts = [p for p in (strip_notes(x) for x in re.split(r"[,;]", entry)) if p]
        if len(parts) > 1:
            targets: list[Target] = []
            for part in parts:
                hit = self.index.lookup(part)
                if isinstance(hit, Ambiguous):
                    return _ambiguous(hit)
                if hit is None:
                    return _unknown(part)
                targets.append(hit)
            return targets
        return _unknown(entry)

    def resolve(self, lines: Sequence[str], document: Document | None = None,
                skip: Sequence[str] = ()) -> Resolution:
        result = Resolution()
        skipped = {fold(strip_notes(s)) for s in skip}
        for text in lines:
            entry = strip_notes(text)
            line = self._line(text, entry, document, skipped)
            result.lines.append(line)
            for target in line.targets:
                for address in self.addresses(target):
                    if address not in result.addresses:
                        result.addresses.append(address)
        return result

    def _line(self, text: str, entry: str, document: Document | None, skipped: set[str]) -> Line:
        if fold(entry) in skipped or fold(text) in skipped:
            return Line(text, "skipped")
        above = _AS_ABOVE.match(fold(entry))
        if above is not None:
            return self._expand(text, above, document)
        if is_archive_line(entry):
            return Line(text, "archive")
        found = self.match(entry)
        if isinstance(found, str):
            return Line(text, "unresolved", reason=found)
        return Line(text, "matched", found)

    def _expand(self, text: str, above: re.Match[str], document: Document | None) -> Line:
        if document is None:
            return Line(text, "unresolved", as_above=True,
                        reason="cần chính văn bản để mở rộng / needs the document to expand it")
        if above.group(1):
            entries = document.addressees()
            if not entries:
                return Line(text, "unresolved", as_above=True, reason=(
                    'văn bản không có dòng "Kính gửi:" nêu nơi nhận chính / the document has no '
                    '"Kính gửi:" line naming the main addressees'
                ))
            targets: list[Target] = []
            problems: list[str] = []
            for entry in entries:
                found = self.match(entry)
                if isinstance(found, str):
                    problems.append(found)
                else:
                    targets += [t for t in found if t not in targets]
            if problems:
                return Line(text, "unresolved", targets, via="Kính gửi", as_above=True,
                            reason="Kính gửi: " + "; ".join(problems))
            return Line(text, "expanded", targets, via="Kính gửi", as_above=True)
        numbers = [int(n) for n in re.findall(r"\d+", above.group(2))]
        targets = []
        missing: list[str] = []
        for number in numbers:
            article = document.article(number)
            if article is None:
                missing.append(f"Điều {number}")
                continue
            for _, target in self.index.scan(article):
                if target not in targets:
                    targets.append(target)
        via = ", ".join(f"Điều {n}" for n in numbers)
        if missing:
            return Line(text, "unresolved", targets, via=via, as_above=True, reason=(
                f"văn bản không có {', '.join(missing)} / the document has no {', '.join(missing)}"
            ).replace("no Điều", "no article Điều"))
        if not targets:
            return Line(text, "unresolved", via=via, as_above=True, reason=(
                f"{via} không nêu cơ quan nào có trong danh bạ / {via} names no agency or group of the "
                "directory (add the names it uses: mailserver agency alias add CODE \"NAME\")"
            ))
        return Line(text, "expanded", targets, via=via, as_above=True)


def _unknown(entry: str) -> str:
    return f'"{entry}": không có trong danh bạ / not in the directory'


def _ambiguous(found: Ambiguous) -> str:
    codes = ", ".join(t.code for t in found.targets)
    return f'"{found.key}": trùng tên nhiều nơi / names several: {codes}'
