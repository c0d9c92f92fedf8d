"""What dispatch reads from an administrative document (.docx or .pdf): its
number, its summary (trích yếu), the "Kính gửi:" addressees, an article's text
and the "Nơi nhận:" block.

The layout is that of Nghị định 30/2020/NĐ-CP, Phụ lục I: a header table with
"Số: 123/UBND-VP" and, for a công văn, the summary "V/v …" under it; for other
types the type in capitals ("QUYẾT ĐỊNH", "KẾ HOẠCH", …) with the summary on
the next line(s) ("Về việc …", "Ban hành …"); "Kính gửi:" with the main
addressees; the articles ("Điều 3. …"); and, in the signature table, "Nơi
nhận:" with one recipient per line.

A .docx is read with python-docx, paragraph by paragraph in document order
(table cells included). Recipients are often a Word bulleted or numbered list:
such a paragraph has no typed "-", its bullet comes from numbering properties
(``w:numPr``, ECMA-376 part 1 section 17.9) set on the paragraph or inherited
from its style ("List Bullet"). Those paragraphs are written here as "- …",
exactly like typed items, so one reader handles both. A .pdf gives its text
lines (pypdf), where a bullet is a character like "•".
"""

from __future__ import annotations

import re
import unicodedata
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from io import BytesIO
from typing import Any, Final

from mailserver.directory.names import fold, strip_notes
from policy.extract.formats import pdf_text

__all__ = [
    "Document",
    "DocumentError",
    "ITEM",
    "number_label",
    "read_document",
]

ITEM: Final = re.compile(r"^\s*(?:[-–—+•*·▪◦●○■□➢➤✓]|\d{1,2}[.)]|[a-zđ][)])\s*(.+?)\s*$")
"""A list entry: typed dash or bullet, "1." or "a)"; group 1 is its text."""
_HEADING: Final = re.compile(r"^\s*n[oơ]i\s+nh[aậ]n\s*:?\s*(.*)$", re.IGNORECASE)
_KINH_GUI: Final = re.compile(r"^\s*k[ií]nh\s+g[uử]i\s*:?\s*(.*)$", re.IGNORECASE)
_NUMBER: Final = re.compile(r"^\s*s[oố]\s*:?\s*(\d[\w.\-]*(?:\s*/\s*[\w.\-&]+)+)", re.IGNORECASE)
_VV: Final = re.compile(r"^\s*(?:v\s*/\s*v|v[eề]\s+vi[eệ]c)\b", re.IGNORECASE)
DOC_TYPES: Final = (
    "QUYẾT ĐỊNH", "NGHỊ QUYẾT", "CHỈ THỊ", "QUY CHẾ", "QUY ĐỊNH", "THÔNG BÁO", "HƯỚNG DẪN",
    "CHƯƠNG TRÌNH", "KẾ HOẠCH", "PHƯƠNG ÁN", "ĐỀ ÁN", "DỰ ÁN", "BÁO CÁO", "BIÊN BẢN", "TỜ TRÌNH",
    "CÔNG ĐIỆN", "GIẤY MỜI", "GIẤY GIỚI THIỆU", "CÔNG VĂN", "THÔNG CÁO", "BẢN GHI NHỚ",
)
"""Types of administrative documents (Nghị định 30/2020/NĐ-CP Điều 7), as their title line."""


class DocumentError(Exception):
    """The document cannot be read, or lacks what dispatch needs; the text says why."""


@dataclass(frozen=True, slots=True)
class Document:
    name: str
    lines: list[str]
    """Paragraphs (and their line breaks) in order; list paragraphs as "- text"."""

    # -- number and summary ---------------------------------------------------
    def number(self) -> str:
        """"123/UBND-VP" from "Số: 123/UBND-VP" (the first such line), or ""."""
        for line in self.lines[:60]:
            match = _NUMBER.match(line)
            if match:
                return re.sub(r"\s*/\s*", "/", match.group(1)).strip(" .;,")
        return ""

    def summary(self) -> str:
        """Trích yếu: the "V/v …" line of a công văn, or the type and the title
        under it ("QUYẾT ĐỊNH" + "Về việc …" -> "Quyết định về việc …"), whichever
        comes first; ""."""
        head = self.lines[:80]
        for i, line in enumerate(head):
            text = line.strip()
            if _VV.match(text):
                return _join([text, *_continuation(head[i + 1 :])])
            kind = _doc_type(text)
            if kind is None:
                continue
            rest = text[len(kind) :].strip(" :")
            title = [rest] if rest else []
            follow = head[i + 1 :]
            if not title:
                first = next((j for j, x in enumerate(follow) if x.strip()), None)
                if first is None or _ends_header(follow[first]):
                    continue
                title = [follow[first].strip()]
                follow = follow[first + 1 :]
            words = _join(title + _continuation(follow))
            return f"{kind.capitalize()} {words[:1].lower()}{words[1:]}"
        return ""

    # -- addressees -----------------------------------------------------------
    def addressees(self) -> list[str] | None:
        """The main addressees under "Kính gửi:" (one on its line, or a list
        after it), notes removed; None when the document has no such line."""
        for i, line in enumerate(self.lines):
            match = _KINH_GUI.match(line)
            if not match:
                continue
            found: list[str] = []
            rest = match.group(1).strip()
            if rest:
                item = ITEM.match(rest)
                found.append(item.group(1) if item else rest)
            for following in self.lines[i + 1 :]:
                if not following.strip():
                    if found:
                        break
                    continue
                item = ITEM.match(following)
                if item is None:
                    break
                found.append(item.group(1))
            return [x for x in (strip_notes(f) for f in found) if x]
        return None

    def article(self, number: int) -> str | None:
        """The text of "Điều N." (the first one: a decision's own articles come
        before those of the rules it issues), up to the next article; None."""
        start = re.compile(rf"^\s*đi[eề]u\s+{number}\s*[.:]", re.IGNORECASE)
        following = re.compile(r"^\s*đi[eề]u\s+\d+\s*[.:]|^\s*n[oơ]i\s+nh[aậ]n\b", re.IGNORECASE)
        for i, line in enumerate(self.lines):
            if start.match(line):
                parts = [line]
                for more in self.lines[i + 1 : i + 8]:
                    if following.match(more):
                        break
                    parts.append(more)
                return " ".join(p.strip() for p in parts if p.strip())
        return None

    # -- "Nơi nhận" -----------------------------------------------------------
    def recipient_lines(self) -> list[str]:
        """The entries of the "Nơi nhận:" block, without bullets; DocumentError
        when there is no such block or it lists nothing."""
        found: list[str] = []
        inside = False
        for line in self.lines:
            if not inside:
                match = _HEADING.match(line)
                if match:
                    inside = True
                    rest = match.group(1).strip()
                    if rest:
                        item = ITEM.match(rest)
                        found.append(item.group(1) if item else rest)
                continue
            if not line.strip():
                continue
            item = ITEM.match(line)
            if item is not None:
                found.append(item.group(1))
            elif line.rstrip().endswith((";", ".")) and len(line) < 160:
                # Typed without any bullet, one entry a line: "Như trên;"
                found.append(line.strip())
            else:
                break
        if not inside:
            raise DocumentError('không thấy mục "Nơi nhận:" / no "Nơi nhận:" block in the document')
        entries = [e for e in (x.strip() for x in found) if e]
        if not entries:
            raise DocumentError(
                'mục "Nơi nhận:" không có nơi nhận nào đọc được: mỗi nơi nhận một dòng, bắt đầu bằng "-" '
                "hoặc là danh sách gạch đầu dòng / đánh số của Word / the \"Nơi nhận:\" block lists no "
                "recipient that can be read: one recipient a line, starting with \"-\" or as a Word "
                "bulleted or numbered list"
            )
        return entries


def _doc_type(text: str) -> str | None:
    """The document type a title line starts with, in capitals as written there
    ("QUYẾT ĐỊNH", "QUYẾT ĐỊNH về việc …"), or None."""
    for kind in DOC_TYPES:
        head = text[: len(kind)]
        rest = text[len(kind) :]
        if head == head.upper() and fold(head) == fold(kind) and (not rest or rest[0] in " :\t"):
            return head
    return None


def _ends_header(line: str) -> bool:
    key = fold(line)
    return key.startswith(("can cu", "kinh gui", "dieu ", "noi nhan")) or line.strip() == line.strip().upper()


def _continuation(lines: Sequence[str]) -> list[str]:
    """Lines that go on a title: non-empty, starting with a lower-case letter."""
    out: list[str] = []
    for line in lines[:3]:
        text = line.strip()
        if not text or not text[0].islower() or _ends_header(text):
            break
        out.append(text)
    return out


def _join(parts: Sequence[str]) -> str:
    return " ".join(" ".join(parts).split()).rstrip(" ;,")


def number_label(number: str) -> str:
    """"Số 123/UBND-VP" for "123/UBND-VP"; a number already written "Số …" stays."""
    text = " ".join(number.split())
    if not text or fold(text).startswith("so "):
        return text
    return f"Số {text}"


# -- reading --------------------------------------------------------------------


def read_document(filename: str, data: bytes) -> Document:
    lower = filename.lower()
    try:
        if lower.endswith(".docx"):
            lines = list(_docx_lines(data))
        elif lower.endswith(".pdf"):
            lines = pdf_text(data).lines
        else:
            raise DocumentError("chỉ đọc được .docx hoặc .pdf / only .docx and .pdf can be read")
    except DocumentError:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise DocumentError(f"không đọc được tài liệu / cannot read {filename}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - python-docx/lxml raise many kinds on a broken file
        why = type(exc).__name__
        raise DocumentError(f"không đọc được tài liệu / cannot read {filename}: {why}") from None
    split: list[str] = []
    for line in lines:
        split += unicodedata.normalize("NFC", line).splitlines() or [""]
    return Document(filename, split)


def _docx_lines(data: bytes) -> Iterator[str]:
    import docx
    from docx.oxml.ns import qn
    from docx.text.paragraph import Paragraph

    document = docx.Document(BytesIO(data))
    for element in document.element.body.iter(qn("w:p")):
        paragraph = Paragraph(element, document)
        text = paragraph.text
        if _is_list(paragraph, element) and text.strip() and not ITEM.match(text):
            text = "- " + text.strip()
        yield text


def _is_list(paragraph: Any, element: Any) -> bool:
    """Numbering on the paragraph (w:numPr with a numId other than 0, which
    switches numbering off) or on its style or a style it is based on."""
    ppr = element.pPr
    if ppr is not None and ppr.numPr is not None:
        num_id = ppr.numPr.numId
        return num_id is not None and num_id.val != 0
    try:
        style = paragraph.style
    except (KeyError, ValueError):
        return False
    seen = 0
    while style is not None and seen < 10:
        spr = style.element.pPr
        if spr is not None and spr.numPr is not None:
            num_id = spr.numPr.numId
            return num_id is not None and num_id.val != 0
        style = style.base_style
        seen += 1
    return False
