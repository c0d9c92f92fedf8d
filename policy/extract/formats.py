"""Text out of document formats, without rendering them.

OOXML (ECMA-376 part 1: ``w:p``/``w:t`` in WordprocessingML, ``a:p``/``a:t``
in DrawingML, ``si``/``t`` in SpreadsheetML) and ODF (OASIS ODF 1.2 part 1,
``text:p``/``text:h``) are read from their XML with regular expressions, one
line per paragraph or cell: this streams tens of megabytes in well under a
second and covers headers, footers, footnotes and text boxes uniformly (the
object models of python-docx & co. skip text boxes and are several times
slower). No XML parser is run, so DTD and entity tricks have no effect.
PDF text comes from pypdf, RTF from striprtf, HTML from the stdlib parser.
"""

from __future__ import annotations

import html
import io
import logging
import re
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Final
from urllib.parse import urlsplit

from policy.extract import legacy

log = logging.getLogger(__name__)

# -- XML helpers ----------------------------------------------------------------
_LEGACY_FONT: Final = re.compile(rb"(?:\.Vn[A-Za-z]+|VNI[- ][A-Za-z]+)")


def legacy_fonts(*blobs: bytes) -> set[str]:
    """Legacy encodings whose fonts a document declares (tcvn3, vni)."""
    found: set[str] = set()
    for blob in blobs:
        for match in _LEGACY_FONT.finditer(blob):
            encoding = legacy.font_encoding(match.group(0).decode("latin-1"))
            if encoding is not None:
                found.add(encoding)
    return found


def decode_lines(lines: list[str], fonts: set[str]) -> tuple[list[str], str | None]:
    """Decode lines typed in a legacy font. With one legacy font family
    declared, every line without Unicode Vietnamese is decoded; otherwise the
    text must look legacy by itself (``legacy.detect``)."""
    if not fonts:
        text = "\n".join(lines)
        encoding = legacy.detect(text)
        if encoding is None:
            return lines, None
        return legacy.decode(text, encoding).split("\n"), encoding
    if len(fonts) == 1:
        (encoding,) = fonts
    else:
        encoding = legacy.detect("\n".join(lines), min_hits=1) or "tcvn3"
    out: list[str] = []
    used = False
    for line in lines:
        if legacy.detect(line, min_hits=0) is not None or _latin_only(line):
            decoded = legacy.decode(line, encoding)
            used = used or decoded != line
            out.append(decoded)
        else:
            out.append(line)
    return out, encoding if used else None


def _latin_only(line: str) -> bool:
    return all(ord(c) < 0x100 for c in line)


def _unescape(text: bytes) -> str:
    return html.unescape(text.decode("utf-8", errors="replace"))


_W_TEXT: Final = re.compile(
    rb"<w:t(?:\s[^>]*)?>([^<]*)</w:t>|<w:(tab|br|cr)\b[^>]*/>|<w:delText(?:\s[^>]*)?>([^<]*)<"
)
_A_TEXT: Final = re.compile(rb"<a:t(?:\s[^>]*)?>([^<]*)</a:t>|<a:(br)\b[^>]*/>")
_TAG: Final = re.compile(rb"<[^>]*>")
_ODF_SPECIAL: Final = re.compile(rb"<text:(tab|line-break|s)\b[^>]*/>")


def _paragraphs(xml: bytes, end_tag: bytes, token: re.Pattern[bytes]) -> list[str]:
    lines: list[str] = []
    for chunk in xml.split(end_tag):
        parts: list[str] = []
        for match in token.finditer(chunk):
            text = match.group(1)
            if text is None and match.lastindex and match.lastindex >= 3:
                text = match.group(3)
            if text is not None:
                parts.append(_unescape(text))
            elif match.group(2) == b"tab":
                parts.append("\t")
            else:
                parts.append("\n")
        if parts:
            lines.append("".join(parts))
    return lines


def word_text(xml: bytes) -> list[str]:
    """Paragraphs (body, table cells, text boxes) of a WordprocessingML part."""
    return _paragraphs(xml, b"</w:p>", _W_TEXT)


def drawing_text(xml: bytes) -> list[str]:
    """Paragraphs of a PresentationML slide or DrawingML part."""
    return _paragraphs(xml, b"</a:p>", _A_TEXT)


_SI: Final = re.compile(rb"<(?:si|is)>(.*?)</(?:si|is)>", re.DOTALL)
_X_T: Final = re.compile(rb"<t(?:\s[^>]*)?>([^<]*)</t>")


def sheet_strings(xml: bytes) -> list[str]:
    """Cell strings of sharedStrings.xml or inline strings of a sheet."""
    return ["".join(_unescape(t) for t in _X_T.findall(si)) for si in _SI.findall(xml)]


def odf_text(xml: bytes) -> list[str]:
    """Paragraphs and headings of an ODF content.xml / styles.xml."""
    lines: list[str] = []
    body = xml.split(b"<office:body", 1)[-1] if b"<office:body" in xml else xml
    for chunk in re.split(rb"</text:p>|</text:h>", body):
        chunk = _ODF_SPECIAL.sub(
            lambda m: b"\t" if m.group(1) == b"tab" else (b"\n" if m.group(1) == b"line-break" else b" "),
            chunk,
        )
        text = _unescape(_TAG.sub(b"", chunk)).strip("\r\n")
        if text.strip():
            lines.append(text)
    return lines


_PROPERTY: Final = re.compile(
    rb"<(dc:title|dc:subject|dc:description|cp:keywords|cp:category|cp:contentStatus|meta:keyword"
    rb"|Company|Manager)(?:\s[^>]*)?>([^<]*)<"
)
_CUSTOM: Final = re.compile(
    rb"<(?:property|meta:user-defined)\b[^>]*?\b(?:meta:)?name=\"([^\"]*)\"[^>]*>(.*?)</(?:property|meta:user-defined)>",
    re.DOTALL,
)


@dataclass(slots=True)
class Properties:
    """Document properties: ``values`` are titles, subjects, keywords...;
    ``fields`` are custom properties as ``name: value`` lines (a property
    "Độ mật" of value "Tối mật" reads as the field it is)."""

    values: list[str] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)


def document_properties(*blobs: bytes) -> Properties:
    """Properties of OOXML ``docProps/core.xml``, ``app.xml`` and ``custom.xml``
    (ECMA-376 part 2 section 11, part 1 section 22) or ODF ``meta.xml`` (ODF 1.2
    part 1 section 4: ``dc:*``, ``meta:keyword``, ``meta:user-defined``)."""
    found = Properties()
    for xml in blobs:
        found.values.extend(_unescape(m.group(2)) for m in _PROPERTY.finditer(xml) if m.group(2).strip())
        for name, value in _CUSTOM.findall(xml):
            text = _unescape(_TAG.sub(b"", value)).strip()
            if text:
                found.values.append(text)
                found.fields.append(f"{_unescape(name)}: {text}")
    return found


# SpreadsheetML (ECMA-376 part 1): page headers and footers (section 18.3.1.46,
# the &L/&C/&R sections and &-codes of 18.3.1.39), sheet and defined names of
# the workbook, comments (18.7), formula results cached as strings (t="str").
_HEADER_FOOTER: Final = re.compile(rb"<((?:odd|even|first)(?:Header|Footer))(?:\s[^>]*)?>([^<]*)</\1>")
_HF_SECTION: Final = re.compile(r"&[LCR]")
_HF_CODE: Final = re.compile(r'&"[^"]*"|&K(?:[0-9A-Fa-f]{6}|\d\d[+-]\d{3})|&\d+|&[A-Za-z]')
_SHEET_NAME: Final = re.compile(rb"<sheet\b[^>]*?\bname=\"([^\"]*)\"")
_DEFINED_NAME: Final = re.compile(rb"<definedName\b[^>]*?\bname=\"([^\"]*)\"[^>]*>([^<]*)<")
_FORMULA_STRING: Final = re.compile(rb"<c\b[^>]*\bt=\"str\"[^>]*>.*?<v>([^<]*)</v>", re.DOTALL)
_COMMENT_END: Final = re.compile(rb"</(?:comment|threadedComment)>")
_COMMENT_TEXT: Final = re.compile(rb"<(?:t|text)(?:\s[^>]*)?>([^<]*)</(?:t|text)>")


def header_footer_text(value: str) -> list[str]:
    """The left, centre and right sections of a SpreadsheetML header or footer,
    without formatting codes (``&"Arial,Bold"``, ``&14``, ``&B``, ``&P``...)."""
    value = value.replace("&&", "\x00")
    lines = []
    for section in _HF_SECTION.split(value):
        text = _HF_CODE.sub("", section).replace("\x00", "&").strip()
        if text:
            lines.append(text)
    return lines


def sheet_headers_footers(xml: bytes) -> list[str]:
    """Header and footer sections of a worksheet or chart sheet, one line each."""
    lines: list[str] = []
    for _, value in _HEADER_FOOTER.findall(xml):
        lines.extend(header_footer_text(_unescape(value)))
    return lines


def formula_strings(xml: bytes) -> list[str]:
    """String results of formulas cached in a worksheet (``<c t="str"><v>``)."""
    return [_unescape(v) for v in _FORMULA_STRING.findall(xml) if v.strip()]


def workbook_names(xml: bytes) -> list[str]:
    """Sheet names and defined names (with their text) of ``xl/workbook.xml``."""
    names = [_unescape(n) for n in _SHEET_NAME.findall(xml)]
    for name, value in _DEFINED_NAME.findall(xml):
        names.append(_unescape(name))
        text = _unescape(value)
        if text.startswith('"') and text.endswith('"') and len(text) > 2:
            names.append(text[1:-1])  # a text constant
    return [n for n in names if n.strip()]


def comment_text(xml: bytes) -> list[str]:
    """One line per comment of a SpreadsheetML comments or threaded-comments part."""
    lines = []
    for chunk in _COMMENT_END.split(xml):
        text = "".join(_unescape(t) for t in _COMMENT_TEXT.findall(chunk))
        if text.strip():
            lines.extend(text.splitlines())
    return lines


_ODF_TABLE_NAME: Final = re.compile(
    rb"<table:(?:table|named-range|named-expression)\b[^>]*?\btable:name=\"([^\"]*)\""
)


def odf_names(xml: bytes) -> list[str]:
    """Sheet names and named ranges of an ODF spreadsheet's content.xml."""
    return [_unescape(n) for n in _ODF_TABLE_NAME.findall(xml) if n.strip()]


# -- PDF and RTF ----------------------------------------------------------------
@dataclass(slots=True)
class PdfText:
    lines: list[str]
    properties: list[str]
    """Title, subject and keywords of the document information dictionary (ISO
    32000-1 section 14.3.3) and of the XMP metadata (dc:title, dc:subject,
    dc:description, pdf:Keywords; section 14.3.2)."""
    encrypted: bool
    truncated: bool


def _pdf_properties(reader: object) -> list[str]:
    found: list[str] = []
    try:
        meta = reader.metadata  # type: ignore[attr-defined]
        if meta is not None:
            for key in ("/Title", "/Subject", "/Keywords"):
                value = meta.get(key)
                if value:
                    found.append(str(value))
    except Exception as exc:  # noqa: BLE001 - broken metadata is no reason to stop
        log.debug("pdf: document information unreadable: %s", exc)
    try:
        xmp = reader.xmp_metadata  # type: ignore[attr-defined]
        if xmp is not None:
            for values in (xmp.dc_title or {}, xmp.dc_description or {}):
                found.extend(str(v) for v in values.values() if v)
            found.extend(str(v) for v in (xmp.dc_subject or []) if v)
            if xmp.pdf_keywords:
                found.append(str(xmp.pdf_keywords))
    except Exception as exc:  # noqa: BLE001 - XMP is XML a hostile sender writes: skip it when broken
        log.debug("pdf: XMP metadata unreadable: %s", exc)
    return [v for v in dict.fromkeys(v.strip() for v in found) if v]


_PDF_TRUNCATED_EOF: Final = (b"%%EO", b"%%E", b"%")


def pdf_has_trailer(data: bytes) -> bool:
    """Whether ``data`` may hold a PDF that pypdf can open: it has an end-of-file
    marker ``%%EOF`` (ISO 32000-1 section 7.5.5: "the last line of the file shall
    contain only the end-of-file marker") or ends with a truncated one.

    pypdf's reader looks for that marker first, backwards line by line from the
    end (``PdfReader._find_eof_marker``), and gives up with an error when it
    reaches the start of the file without one. On a large file that is not a PDF
    (random bytes behind a ``%PDF-`` header, a corrupt download) that walk costs
    ~70 ms per megabyte before the same error; one ``in`` over the bytes answers it
    in microseconds. The test of this function checks that pypdf still fails on
    every file this refuses, so a pypdf that learns to recover them is noticed.
    """
    if b"%%EOF" in data:
        return True
    return data.rstrip().endswith(_PDF_TRUNCATED_EOF)


def pdf_text(data: bytes, *, max_pages: int = 300, budget: float = 5.0) -> PdfText:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    if not pdf_has_trailer(data):
        raise PdfReadError("EOF marker not found")
    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted:
        try:
            if not reader.decrypt(""):
                return PdfText([], [], True, False)
        except Exception:  # noqa: BLE001 - unsupported crypto: treat as encrypted
            return PdfText([], [], True, False)
    properties = _pdf_properties(reader)
    lines: list[str] = []
    started = time.monotonic()
    truncated = False
    for index, page in enumerate(reader.pages):
        if index >= max_pages or time.monotonic() - started > budget:
            truncated = True
            break
        lines.extend(page.extract_text().splitlines())
    return PdfText(lines, properties, False, truncated)


def rtf_text(data: bytes) -> list[str]:
    from striprtf.striprtf import rtf_to_text

    text: str = rtf_to_text(  # type: ignore[no-untyped-call]
        data.decode("latin-1"), encoding="cp1252", errors="ignore"
    )
    return text.splitlines()


# -- HTML -----------------------------------------------------------------------
_BLOCK: Final = frozenset(
    "p div br tr td th li ul ol h1 h2 h3 h4 h5 h6 table section article header footer blockquote pre "
    "title hr center dd dt".split()
)
_HIDDEN_STYLE: Final = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0|opacity\s*:\s*0(?:\.0*)?\s*(?:;|$)"
    r"|color\s*:\s*(?:#fff(?:fff)?|white)\b",
    re.IGNORECASE,
)


@dataclass(slots=True)
class HtmlText:
    lines: list[str]
    links: list[tuple[str, str]] = field(default_factory=list)
    """(href host, anchor text) of every link."""
    hidden_chars: int = 0
    title: str = ""
    forms: list[tuple[str, bool]] = field(default_factory=list)
    """(action host, asks for a password) of every form; a password field
    outside any form counts as a form without action."""
    images: int = 0
    """``img`` elements (remote, inline or embedded)."""


def _host(url: str) -> str:
    if "//" not in url:
        return ""
    try:
        return urlsplit(url.strip()).hostname or ""
    except ValueError:
        return "invalid"


class _HtmlExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[tuple[str, str]] = []
        self.hidden_chars = 0
        self.title = ""
        self.forms: list[tuple[str, bool]] = []
        self.images = 0
        self._skip = 0
        self._hidden_depth: list[str] = []
        self._href: str | None = None
        self._anchor: list[str] = []
        self._in_title = False
        self._form: list[str | bool] | None = None
        self._loose_password = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag in ("script", "style"):
            self._skip += 1
        if tag == "title":
            self._in_title = True
        if tag in _BLOCK:
            self.parts.append("\n")
        if _HIDDEN_STYLE.search(values.get("style", "")) or "hidden" in values:
            self._hidden_depth.append(tag)
        if tag == "a":
            self._href = values.get("href", "")
            self._anchor = []
        elif tag == "img":
            self.images += 1
        elif tag == "form":
            self._finish_form()
            self._form = [_host(values.get("action", "")), False]
        elif tag == "input" and values.get("type", "").lower() == "password":
            if self._form is not None:
                self._form[1] = True
            else:
                self._loose_password = True

    def _finish_form(self) -> None:
        if self._form is not None:
            self.forms.append((str(self._form[0]), bool(self._form[1])))
            self._form = None

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1
        if tag == "title":
            self._in_title = False
        if tag in _BLOCK:
            self.parts.append("\n")
        if self._hidden_depth and self._hidden_depth[-1] == tag:
            self._hidden_depth.pop()
        if tag == "a" and self._href is not None:
            self.links.append((_host(self._href), "".join(self._anchor).strip()))
            self._href = None
        elif tag == "form":
            self._finish_form()

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._in_title:
            self.title += data
        if self._hidden_depth:
            self.hidden_chars += len(data.strip())
        if self._href is not None:
            self._anchor.append(data)
        self.parts.append(data)

    def finish(self) -> None:
        self._finish_form()
        if self._loose_password:
            self.forms.append(("", True))


def html_text(markup: str) -> HtmlText:
    parser = _HtmlExtractor()
    try:
        parser.feed(markup)
        parser.close()
    except (AssertionError, ValueError):  # malformed markup: keep what was read
        pass
    parser.finish()
    text = "".join(parser.parts)
    lines = [" ".join(line.split()) for line in text.split("\n")]
    kept = [line for line in lines if line]
    return HtmlText(kept, parser.links, parser.hidden_chars, parser.title, parser.forms, parser.images)
