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


# A sign-off line ends a letter: a lone "Mật" after it is the writer's name.
_CLOSING: Final = re.compile(
    r"^(?:trân\s+trọng|thân\s+ái|thân\s+chào|thân|kính\s+thư|kính\s+chào|chào\s+\w+|xin\s+cảm\s+ơn|cảm\s+ơn"
    r"|(?:best|kind|warm)\s+regards|regards|thanks|thank\s+you|cheers|tks|thx)\b[\s\w,.!]*$"
)
# Common Vietnamese family names: a cell or line "Nguyễn Văn" before "Mật" is a
# name split over two columns (Họ và tên đệm | Tên), not a stamp (the spam rules
# also use them to tell a person's display name from an organisation's).
SURNAMES: Final = frozenset(
    "nguyễn trần lê phạm hoàng huỳnh phan vũ võ đặng bùi đỗ hồ ngô dương lý đào đinh lương trương mai "
    "tô hà lâm tạ cao châu chu quách thái trịnh lưu văn triệu kiều doãn khổng mạc tăng thân la".split()
)
_DOCUMENT_NUMBER: Final = re.compile(r"^số\s*[:：.]?\s*\d+\s*/", re.IGNORECASE)


def _name_part(line: str) -> bool:
    words = line.split()
    return 1 <= len(words) <= 4 and fold(words[0]) in SURNAMES and all(w[:1].isupper() for w in words)


def _document_context(lines: list[str], index: int) -> bool:
    """Lines near ``index`` look like the header of an administrative document:
    a number "Số: 12/BC-UBND" or an upper-case heading of two words or more."""
    for line in lines[max(0, index - 8) : index + 4]:
        if _DOCUMENT_NUMBER.match(line):
            return True
        letters = sum(1 for c in line if c.isalpha())
        if letters >= 8 and len(line.split()) >= 2 and _is_upper(line) and _stamp(line) is None:
            return True
    return False


_ENUMERATION_SPAN: Final = 4


def _enumeration(lines: list[str], index: int, level: str) -> bool:
    """The levels listed one per line or per table row ("Mật", "Tối mật",
    "Tuyệt mật", perhaps with a column beside them), as in a guide about
    classification: a document carries one level, not several a few lines apart."""
    start, stop = max(0, index - _ENUMERATION_SPAN), min(len(lines), index + _ENUMERATION_SPAN + 1)
    for neighbour in range(start, stop):
        if neighbour != index and ("ậ" in lines[neighbour] or "Ậ" in lines[neighbour]):
            other = _stamp(lines[neighbour])
            if other is not None and other[0] != level:
                return True
    return False


def _capitalised_stamp(
    lines: list[str], index: int, level: str, core: str, *, structural: bool, cells: bool
) -> bool:
    """Whether a title-case stamp ("Mật", "Tối mật") at ``lines[index]`` is one.

    "Mật" is also a given name: never in spreadsheet cells, never as the last
    line or after a sign-off or the first part of a name. In text whose lines
    are not real paragraphs (plain-text mail, PDF), a title-case stamp counts
    only in the header of a document (``_document_context``)."""
    previous = lines[index - 1] if index else ""
    if previous and (_CLOSING.match(fold(previous)) or _name_part(previous)):
        return False
    if re.search(r"độ\s+mật\s*[:：]?$", fold(previous)):
        return True  # the field "Độ mật:" written over two lines
    single = fold(core) == "mật"
    if single and (cells or index == len(lines) - 1):
        return False
    if not structural and not _document_context(lines, index):
        return False
    return True


def scan_text(text: str, *, structural: bool, cells: bool = False) -> list[Marking]:
    """Markings in document or body text. ``structural``: each line is a real
    paragraph or table cell (docx, odt, html blocks, spreadsheet cells), not a
    line wrapped by a mailer or a PDF layout; ``cells``: the lines are
    spreadsheet cells (see ``_capitalised_stamp``)."""
    found: list[Marking] = []
    if text.isascii():
        return found  # every level has "ậ", and normalising ASCII cannot make one
    text = normalise(text)
    if "ậ" not in text and "Ậ" not in text:
        return found
    lines = [stripped for raw in text.splitlines() if (stripped := raw.strip())]
    for index, line in enumerate(lines):
        if "ậ" not in line and "Ậ" not in line:  # every level has it (NFC)
            continue
        folded = fold(line)
        stamp = _stamp(line)
        if stamp is not None:
            level, core = stamp
            previous = lines[index - 1] if index else ""
            # A title wrapped before its last word ("...BẢO VỆ BÍ" / "MẬT") is no stamp.
            wrapped = _last_word(previous) in _COMPOUND_BEFORE and not structural
            if wrapped or _enumeration(lines, index, level):
                continue
            if _is_upper(core) or (
                _is_capitalised(core)
                and _capitalised_stamp(lines, index, level, core, structural=structural, cells=cells)
            ):
                found.append(Marking(level, "stamp line", _snippet(line)))
                continue
        if "mật" in folded:  # (in every field: most lines need no search)
            for match in _FIELD.finditer(folded):
                found.append(Marking(_level(match.group("level")), "Độ mật field", _snippet(line)))
        # A line has segments only where it has a tab, three spaces or a bar.
        splits = "\t" in line or "   " in line or "|" in line
        if splits and (not found or found[-1].snippet != _snippet(line)):
            segments = [s for s in _SEGMENTS.split(line) if s.strip()]
            if len(segments) > 1:
                for segment in segments:
                    seg_stamp = _stamp(segment)
                    if seg_stamp is not None and _is_upper(seg_stamp[1]):
                        found.append(Marking(seg_stamp[0], "stamp in header line", _snippet(line)))
                        break
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


# Accent-stripped names and titles: upper-case ASCII tokens (Vietnamese
# without its marks, as file systems and old tools leave it). "MAT" alone is
# also mặt, mắt, mát, mất: it counts only as a token set apart, not next to a
# word it forms a compound with (MAT TRAN, TIEN MAT, MAT BANG, MAT HANG...),
# not inside an upper-case phrase, not in English ("MAT file").
_ASCII_TOKEN: Final = re.compile(r"[^\W_]+")
_ASCII_LEVELS: Final = {"TOI": "TỐI MẬT", "TUYET": "TUYỆT MẬT"}
_ASCII_JOINED: Final = {"TOIMAT": "TỐI MẬT", "TUYETMAT": "TUYỆT MẬT"}
_ASCII_BEFORE: Final = frozenset(
    "bao bi giai than tien be doi co vang gap hop truoc lam mua ban mot hai mat nhin ra ngoai thay guong "
    "rua dap de lo ve".split()
)
_ASCII_AFTER: Final = frozenset(
    "khau ma do ong tran bang hang tien nuoc dat troi na duong kinh tich ngu dien mua viec cat lanh me "
    "trai phai sau truoc ngoai trong mui moi la thu goc day tran phang cuoi".split()
)
_ENGLISH: Final = frozenset(
    "the of and for with from file files format data lab code script toolbox results simulation matlab "
    "yoga floor door bath mouse".split()
)
_STRONG_SEPARATOR: Final = re.compile(r"[-_\[\](){}|:/+.#]")


def _scan_ascii_tokens(text: str, form: str) -> list[Marking]:
    """TOI MAT, TOI_MAT, TUYET-MAT, [MAT], MAT_BaoCao... (tokens exactly in
    upper-case ASCII; the rest of the name may be in any case)."""
    text = normalise(text)
    matches = list(_ASCII_TOKEN.finditer(text))
    tokens = [m.group(0) for m in matches]
    if "MAT" not in tokens and not any(t in _ASCII_JOINED for t in tokens):
        return []
    english = any(t.lower() in _ENGLISH for t in tokens)
    for i, token in enumerate(tokens):
        if token in _ASCII_JOINED:
            return [Marking(_ASCII_JOINED[token], f"{form} (accent-stripped)", _snippet(text))]
        if token != "MAT":  # noqa: S105 - the accent-stripped level word, not a password
            continue
        if i and tokens[i - 1] in _ASCII_LEVELS:
            return [Marking(_ASCII_LEVELS[tokens[i - 1]], f"{form} (accent-stripped)", _snippet(text))]
        if english or (i + 1 < len(tokens) and tokens[i + 1] in _ASCII_LEVELS):
            continue
        apart = True
        for j in (i - 1, i + 1):
            if not 0 <= j < len(tokens):
                continue
            neighbour = tokens[j]
            low = neighbour.lower()
            if (j < i and low in _ASCII_BEFORE) or (j > i and low in _ASCII_AFTER) or low in _ENGLISH:
                apart = False
            left, right = (matches[j], matches[i]) if j < i else (matches[i], matches[j])
            separator = text[left.end() : right.start()]
            if neighbour.isalpha() and neighbour.isupper() and not _STRONG_SEPARATOR.search(separator):
                apart = False  # inside an upper-case phrase: "KE HOACH MAT BANG", "GIAI PHONG MAT..."
        if apart:
            return [Marking("MẬT", f"{form} (accent-stripped)", _snippet(text))]
    return []


def scan_subject(subject: str) -> list[Marking]:
    return _scan_label(subject, "subject", subject=True) or _scan_ascii_upper(subject, "subject")


def scan_name(name: str, form: str = "file name") -> list[Marking]:
    """A file name (extension ignored) or a document title, subject, keyword,
    sheet name."""
    stem = name
    if form == "file name":
        stem = re.sub(r"\.[A-Za-z0-9]{1,5}$", "", name.rsplit("/", 1)[-1])
    else:
        stamp = _stamp(" ".join(normalise(stem).split()))
        if stamp is not None and (_is_upper(stamp[1]) or _is_capitalised(stamp[1])):
            return [Marking(stamp[0], form, _snippet(stem))]
    spaced = re.sub(r"[_]+", " ", stem)
    return _scan_label(spaced, form, subject=False) or _scan_ascii_tokens(stem, form)


def _scan_ascii_upper(text: str, form: str) -> list[Marking]:
    """Accent-stripped upper-case subjects: TOI MAT, TUYET MAT, [MAT]."""
    if not text.isascii() or not _is_upper(text):
        return []
    return _scan_ascii_tokens(text, form)
