"""Secrecy markings of Vietnamese administrative documents.

A classified document carries its level (độ mật) -- MẬT, TỐI MẬT or TUYỆT MẬT
-- as a stamp: a line or table cell of its own, usually under the number and
the subject line, in capitals; document systems also show it as a field
"Độ mật: Mật"; mail subjects carry it as a tag "[MẬT]", "(TỐI MẬT)"; file
names and titles in capitals ("QUYẾT ĐỊNH TỐI MẬT.docx", or accent-stripped
"QUYET DINH TOI MAT.docx"). Decision 70/2009/QĐ-UBND, Điều 6 khoản 2 and 8,
excludes such documents ("trừ những văn bản mật") from e-mail.

The word "mật" is also ordinary Vietnamese (bảo mật, mật khẩu, bí mật, mật
độ, mật ong, mật mã, thân mật, giải mật...), and "tài liệu mật" appears in
prose about classified documents, so only the *forms* of a marking count,
never the word in running text:

* a line (paragraph, table cell, text line) that is nothing but the level,
  possibly with an urgency stamp (KHẨN, HỎA TỐC) and decoration; upper case,
  or capitalised ("Mật") when the unit is a real paragraph or cell;
* the same as a segment of a line set apart by a tab or 3+ spaces, upper case;
* a field "Độ mật: <level>";
* in subjects, file names and titles: a bracketed tag, a leading upper-case
  level, or an upper-case level word outside the compounds above;
* accent-stripped "TOI MAT" / "TUYET MAT" / "[MAT]" only in upper-case ASCII
  file names and titles ("MAT" alone is also mặt, mắt, mát, mất).

Text is normalised to NFC, invisible format characters are dropped and
matching is on the case-folded form.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final

LEVELS: Final = ("TUYỆT MẬT", "TỐI MẬT", "MẬT")

_LEVEL: Final = r"(?:tuyệt\s*mật|tối\s*mật|mật)"
_URGENCY: Final = r"(?:thượng\s+khẩn|khẩn|(?:hỏa|hoả)\s+tốc(?:\s+hẹn\s+giờ)?)"
_JOIN: Final = r"\s*[-–—,/;|+&]?\s*"
_STAMP: Final = re.compile(rf"(?:{_URGENCY}{_JOIN})*(?P<level>{_LEVEL})(?:{_JOIN}{_URGENCY})*")
_DECORATION: Final = " \t*_~-–—=#•·.,:;!?\"'“”‘’«»()[]{}<>|/\\"
_SPACED_LETTERS: Final = re.compile(r"(?:\w ){2,}\w")
_FIELD: Final = re.compile(
    rf"(?:mức\s+)?độ\s+mật\s*(?:[:：]\s*|\t+\s*)(?P<level>{_LEVEL})"
    r"(?=\s*$|\s*[,;.|)\]]|\t|\s{2,}|\s+(?:độ|số|ngày|nơi|người|-))"
)
_SEGMENTS: Final = re.compile(r"\t+| {3,}|\s\|\s")
_BRACKETED: Final = re.compile(rf"[\[(<{{«]\s*(?P<level>{_LEVEL})\s*[\])>}}»]")
_LEADING: Final = re.compile(
    rf"^(?:(?:re|fw|fwd|tr|aw|sv|trả\s+lời|chuyển\s+tiếp)\s*:\s*)*(?P<level>{_LEVEL})\s*[:\-–—|/]"
)
_STRONG: Final = re.compile(r"(?<!\w)(?P<level>tuyệt\s+mật|tối\s+mật)(?!\w)")
_WORD_MAT: Final = re.compile(r"(?<!\w)mật(?!\w)")
_WORDS: Final = re.compile(r"\w+")
_INVISIBLE: Final = re.compile("[\u00ad\u200b-\u200f\u2060-\u2064\ufeff]")
_SPACES: Final = re.compile("[\u00a0\u2000-\u200a\u202f\u205f\u3000]")

# Words that make "mật" part of an ordinary compound, before or after it.
_COMPOUND_BEFORE: Final = frozenset(
    "bảo bí giải thân cơ ong đường lấy như độ mức khóa khoá tiết kín chứa lộ tin thư "
    "sơ liệu bản ngọt mía gan túi".split()
)
_COMPOUND_AFTER: Final = frozenset(
    "khẩu mã độ ong thiết vụ thám ước danh ngữ lệnh báo hiệu mía gấu rỉ nghị đàm phái "
    "sứ tín thư ngọt đắng kế chỉ".split()
)
_NEGATION: Final = frozenset("không chẳng chưa phi hết đã giải bỏ".split())


@dataclass(frozen=True, slots=True)
class Marking:
    level: str
    """``MẬT``, ``TỐI MẬT`` or ``TUYỆT MẬT``."""
    form: str
    """How it was written: ``stamp line``, ``Độ mật field``, ``subject tag``..."""
    snippet: str
    """The text that matched (one line, shortened)."""


def normalise(text: str) -> str:
    """NFC, invisible format characters removed, exotic spaces made plain."""
    text = unicodedata.normalize("NFC", text)
    text = _INVISIBLE.sub("", text)
    return _SPACES.sub(" ", text)


def fold(text: str) -> str:
    return unicodedata.normalize("NFC", text.casefold())


def _level(folded: str) -> str:
    squashed = re.sub(r"\s+", " ", folded.strip())
    if squashed.startswith("tuyệt"):
        return "TUYỆT MẬT"
    if squashed.startswith("tối"):
        return "TỐI MẬT"
    return "MẬT"


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 80 else text[:77] + "..."


def _is_upper(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return bool(letters) and all(not c.islower() for c in letters)


def _is_capitalised(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return bool(letters) and letters[0].isupper() and all(not c.isupper() for c in letters[1:])


def _stamp(segment: str) -> tuple[str, str] | None:
    """(level, decoration-free original) if ``segment`` is only a stamp."""
    core = segment.strip(_DECORATION)
    if not core or len(core) > 60:
        return None
    if _SPACED_LETTERS.fullmatch(core):
        core = core.replace(" ", "")
    match = _STAMP.fullmatch(fold(core))
    if match is None:
        return None
    return _level(match.group("level")), core


def _last_word(line: str) -> str:
    words = _WORDS.findall(fold(line))
    return words[-1] if words else ""


def scan_text(text: str, *, structural: bool) -> list[Marking]:
    """Markings in document or body text. ``structural``: each line is a real
    paragraph or table cell (docx, odt, html blocks, spreadsheet cells), not a
    line wrapped by a mailer or a PDF layout."""
    found: list[Marking] = []
    if text.isascii():
        return found  # every level has "ậ", and normalising ASCII cannot make one
    text = normalise(text)
    if "ậ" not in text and "Ậ" not in text:
        return found
    previous = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if "ậ" not in line and "Ậ" not in line:  # every level has it (NFC)
            previous = line
            continue
        folded = fold(line)
        stamp = _stamp(line)
        if stamp is not None:
            level, core = stamp
            # A title wrapped before its last word ("...BẢO VỆ BÍ" / "MẬT") is no stamp.
            wrapped = _last_word(previous) in _COMPOUND_BEFORE and not structural
            if not wrapped and (_is_upper(core) or (structural and _is_capitalised(core))):
                found.append(Marking(level, "stamp line", _snippet(line)))
                previous = line
                continue
        for match in _FIELD.finditer(folded):
            found.append(Marking(_level(match.group("level")), "Độ mật field", _snippet(line)))
        if not found or found[-1].snippet != _snippet(line):
            segments = [s for s in _SEGMENTS.split(line) if s.strip()]
            if len(segments) > 1:
                for segment in segments:
                    seg_stamp = _stamp(segment)
                    if seg_stamp is not None and _is_upper(seg_stamp[1]):
                        found.append(Marking(seg_stamp[0], "stamp in header line", _snippet(line)))
                        break
        previous = line
    return found


def _compound(folded: str, start: int, end: int) -> bool:
    before = _WORDS.findall(folded[:start])
    after = _WORDS.findall(folded[end:])
    if before and before[-1] in _COMPOUND_BEFORE:
        return True
    if after and after[0] in _COMPOUND_AFTER:
        return True
    return any(word in _NEGATION for word in before[-3:])


def _scan_label(text: str, form: str, *, subject: bool) -> list[Marking]:
    text = " ".join(normalise(text).split())
    folded = fold(text)
    found: list[Marking] = []
    if len(folded) != len(text):  # case folding changed lengths: compare on folded only
        text = folded
    for match in _BRACKETED.finditer(folded):
        found.append(Marking(_level(match.group("level")), f"{form} tag", _snippet(text)))
    if found:
        return found
    leading = _LEADING.match(folded)
    if leading is not None and _is_upper(text[leading.start("level") : leading.end("level")]):
        return [Marking(_level(leading.group("level")), f"{form} prefix", _snippet(text))]
    for match in _STRONG.finditer(folded):
        if _is_upper(text[match.start() : match.end()]):
            return [Marking(_level(match.group("level")), f"{form} level", _snippet(text))]
    # A lone upper-case MẬT: only where it stands out from a text that is not
    # itself all capitals (an all-caps title is too easily a compound).
    if subject and _is_upper(text):
        return found
    for match in _WORD_MAT.finditer(folded):
        if _is_upper(text[match.start() : match.end()]) and not _compound(folded, match.start(), match.end()):
            return [Marking("MẬT", f"{form} level", _snippet(text))]
    return found


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


_ASCII_TOKENS: Final = re.compile(r"[A-Z0-9]+")
_ASCII_BRACKETED: Final = re.compile(r"[\[(<{]\s*(?:(TOI|TUYET)[\s_.-]*)?MAT\s*[\])>}]")


def _scan_ascii_upper(text: str, form: str) -> list[Marking]:
    """Accent-stripped upper-case names: TOI MAT, TUYET MAT, [MAT]."""
    if not text.isascii() or not _is_upper(text):
        return []
    bracketed = _ASCII_BRACKETED.search(text)
    if bracketed is not None:
        level = {"TOI": "TỐI MẬT", "TUYET": "TUYỆT MẬT"}.get(bracketed.group(1) or "", "MẬT")
        return [Marking(level, f"{form} (accent-stripped)", _snippet(text))]
    tokens = _ASCII_TOKENS.findall(text)
    for first, second in zip(tokens, tokens[1:], strict=False):
        if second == "MAT" and first in ("TOI", "TUYET"):
            level = "TỐI MẬT" if first == "TOI" else "TUYỆT MẬT"
            return [Marking(level, f"{form} (accent-stripped)", _snippet(text))]
    return []


def scan_subject(subject: str) -> list[Marking]:
    return _scan_label(subject, "subject", subject=True) or _scan_ascii_upper(subject, "subject")


def scan_name(name: str, form: str = "file name") -> list[Marking]:
    """A file name (extension ignored) or a document title."""
    stem = name
    if form == "file name":
        stem = re.sub(r"\.[A-Za-z0-9]{1,5}$", "", name.rsplit("/", 1)[-1])
    stem = re.sub(r"[_]+", " ", stem)
    return _scan_label(stem, form, subject=False) or _scan_ascii_upper(_strip_accents(stem), form)
