"""Walk a message (RFC 5322, MIME RFC 2045-2049) into an ``Analysis``.

Theory of operation
-------------------
``analyse`` parses the message with the stdlib ``email`` package (transfer
encodings, RFC 2047/2231 names), then visits every leaf part. Text parts
become ``TextUnit``s; files are sniffed by magic number first and name
second, and containers are opened: attached messages (message/rfc822),
ZIP archives and the ZIP-based office formats. Nesting depth, the number of
archive members, the octets unpacked and each member's compression ratio
are budgeted for the whole message; a member whose declared size lies is
caught by reading one octet more than declared. Exceeding a limit stops the
walk and sets ``Analysis.refused``: the content was not inspected, so the
pipeline refuses the message rather than pass it (a zip bomb is never
unpacked).

``analyse`` is pure and synchronous; the pipeline runs it in a worker process
for messages with attachments. ``parse_message`` and ``text_only`` let it
scan a message made only of text bodies (most mail) in the server process
instead: the same ``Walker``, without the IPC.
"""

from __future__ import annotations

import email
import email.header
import email.message
import email.policy
import email.utils
import hashlib
import io
import re
import zipfile
from dataclasses import dataclass, field
from email.errors import MessageError
from typing import Final

from policy.extract import formats, legacy
from policy.markings import Marking, scan_name, scan_subject, scan_text

EICAR: Final = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
# The host of a URL in text: up to the path, port, query or fragment, and not
# the brackets or parentheses a text alternative wraps links in ("[https://...]").
_URL: Final = re.compile(r"(?i)\b(?:https?|ftp)://([^\s/\"'<>:?#\[\]()\\]+)")
_OLE_MAGIC: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_OLE_VBA: Final = ("_VBA_PROJECT".encode("utf-16-le"), "Macros".encode("utf-16-le"))
_OLE_ENCRYPTED: Final = "EncryptedPackage".encode("utf-16-le")
_UTF16_RUN: Final = re.compile(rb"(?:[\x09\x0a\x0d\x20-\x7e\xa0-\xff]\x00|[\x00-\xff][\x01\x1e]){4,}")
MAX_TEXT: Final = 20_000_000
RETURNED_TEXT: Final = 1_000_000
"""Characters of each text unit sent back from the worker (spam scoring needs
no more); markings are found on the whole text first."""


@dataclass(frozen=True, slots=True)
class Limits:
    max_depth: int = 5
    max_unpacked: int = 200 * 1024 * 1024
    max_ratio: float = 150.0
    max_members: int = 2000
    pdf_budget: float = 5.0


@dataclass(slots=True)
class TextUnit:
    where: str
    """Human label: ``subject``, ``body``, ``attachment "a.zip" > "QD.docx"``."""
    role: str
    """``subject``, ``body``, ``document``, ``filename`` or ``title``."""
    text: str
    structural: bool = False
    """Each line is a real paragraph or cell (see ``policy.markings.scan_text``)."""
    legacy: str | None = None
    """``tcvn3`` or ``vni`` when decoded from a legacy encoding."""
    cells: bool = False
    """Lines are spreadsheet cells: a lone title-case "Mật" there is a given
    name in a "Tên" column more often than a stamp (``policy.markings``)."""


@dataclass(slots=True)
class Leaf:
    where: str
    filename: str
    content_type: str
    size: int
    kind: str
    """Detected format: docx, xlsx, pptx, odt, pdf, rtf, html, text, zip, ole, exe, message, other."""
    sha256: str


@dataclass(slots=True)
class Finding:
    kind: str
    """``eicar``, ``executable``, ``macro``, ``encrypted``, ``unreadable``."""
    where: str
    detail: str = ""


@dataclass(slots=True)
class Analysis:
    units: list[TextUnit] = field(default_factory=list)
    leaves: list[Leaf] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    """Host names of links in text and HTML (with repetitions)."""
    html_links: list[tuple[str, str]] = field(default_factory=list)
    html_hidden_chars: int = 0
    html_forms: list[tuple[str, bool]] = field(default_factory=list)
    """(action host, asks for a password) of the forms of HTML bodies and attachments."""
    html_images: int = 0
    markings: list[tuple[str, Marking]] = field(default_factory=list)
    """Secrecy markings found (``policy.markings``), with the unit's ``where``;
    computed in the worker so large texts never cross back to the event loop."""
    refused: str | None = None
    """Why the content could not be inspected within the limits, or None."""
    truncated: bool = False

    def legacy_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for unit in self.units:
            if unit.legacy:
                counts[unit.legacy] = counts.get(unit.legacy, 0) + 1
        return counts

    def body_text(self) -> str:
        return "\n".join(u.text for u in self.units if u.role == "body")


class LimitExceeded(Exception):  # noqa: N818 - a refusal, not a bug
    pass


_OOXML_TEXT_PARTS: Final = re.compile(
    r"^(word/(document|header\d*|footer\d*|footnotes|endnotes|comments)\.xml"
    r"|ppt/(slides/slide|notesSlides/notesSlide|slideMasters/slideMaster|comments/comment)\d+\.xml"
    r"|xl/sharedStrings\.xml|xl/(worksheets|chartsheets)/sheet\d+\.xml|xl/workbook\.xml"
    r"|xl/comments\d*\.xml|xl/comments/comment\d+\.xml|xl/threadedComments/threadedComment\d+\.xml"
    r"|xl/(drawings/drawing|charts/chart)\d+\.xml"
    r"|docProps/(core|app|custom)\.xml)$"
)
_FONT_PARTS: Final = re.compile(r"^(word/(styles|fontTable)\.xml|xl/styles\.xml|ppt/theme/theme\d+\.xml)$")
_ZIP_EXTENSIONS: Final = (
    "zip",
    "jar",
    "apk",
    "docx",
    "docm",
    "dotx",
    "dotm",
    "xlsx",
    "xlsm",
    "xltm",
    "pptx",
    "pptm",
    "potm",
    "ppsm",
    "odt",
    "ods",
    "odp",
    "epub",
)


def _ext(name: str) -> str:
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def _label(parent: str, name: str) -> str:
    shown = name.replace('"', "'") or "(unnamed)"
    return f'{parent} > "{shown}"' if parent else f'attachment "{shown}"'


class Walker:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.analysis = Analysis()
        self.unpacked = 0
        self.members = 0

    # -- text ------------------------------------------------------------------
    def add_text(
        self,
        where: str,
        role: str,
        text: str,
        *,
        structural: bool = False,
        encoding: str | None = None,
        cells: bool = False,
    ) -> None:
        if not text or text.isspace():  # (``strip`` would copy the text)
            return
        if len(text) > MAX_TEXT:
            text = text[:MAX_TEXT]
            self.analysis.truncated = True
        self.analysis.units.append(TextUnit(where, role, text, structural, encoding, cells))
        # ":" first: found by memchr, it spares most text without links the 3-character search.
        if role in ("body", "document") and ":" in text and "://" in text:
            self.analysis.urls.extend(url_host(m) for m in _URL.findall(text[:2_000_000]))

    def add_lines(
        self,
        where: str,
        lines: list[str],
        fonts: set[str],
        *,
        structural: bool,
        role: str = "document",
        cells: bool = False,
    ) -> None:
        decoded, encoding = formats.decode_lines(lines, fonts)
        self.add_text(where, role, "\n".join(decoded), structural=structural, encoding=encoding, cells=cells)

    def text_bytes(self, where: str, data: bytes, charset: str | None, role: str) -> None:
        text, encoding = decode_text(data, charset)
        self.add_text(where, role, text, encoding=encoding)

    # -- messages --------------------------------------------------------------
    def message(self, msg: email.message.Message, where: str, depth: int) -> None:
        if depth > self.limits.max_depth:
            raise LimitExceeded(f"nesting deeper than {self.limits.max_depth} levels at {where or 'message'}")
        subject = _header(msg, "subject")
        if subject:
            self.add_text(f"{where} > subject" if where else "subject", "subject", subject)
        self.part(msg, where, depth)

    def part(self, part: email.message.Message, where: str, depth: int, level: int = 0) -> None:
        if level > 50:
            raise LimitExceeded(f"MIME multiparts nested more than 50 levels at {where or 'message'}")
        ctype = part.get_content_type()
        if ctype == "message/rfc822" or (ctype.startswith("message/") and part.is_multipart()):
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, email.message.Message):
                name = _filename(part) or "attached message"
                self.message(inner, _label(where, name), depth + 1)
            return
        if part.is_multipart():
            payload = part.get_payload()
            if isinstance(payload, list):
                for sub in payload:
                    if isinstance(sub, email.message.Message):
                        self.part(sub, where, depth, level + 1)
            return
        try:
            data = part.get_payload(decode=True)
        except (MessageError, ValueError, LookupError):
            data = None
        if not isinstance(data, bytes):
            raw = part.get_payload()
            data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""
        name = _filename(part)
        disposition = (part.get_content_disposition() or "").lower()
        if not name and disposition != "attachment" and ctype in ("text/plain", "text/html", "text/enriched"):
            label = f"{where} > body" if where else "body"
            if ctype == "text/html":
                self.html(label, data, part.get_content_charset(), role="body")
            else:
                self.text_bytes(label, data, part.get_content_charset(), "body")
            return
        self.file(name or f"(unnamed {ctype})", ctype, data, where, depth, part.get_content_charset())

    # -- files -----------------------------------------------------------------
    def file(
        self, name: str, ctype: str, data: bytes, parent: str, depth: int, charset: str | None = None
    ) -> None:
        where = _label(parent, name)
        kind = sniff(name, ctype, data)
        self.analysis.leaves.append(
            Leaf(where, name, ctype, len(data), kind, hashlib.sha256(data).hexdigest())
        )
        if not name.startswith("(unnamed"):
            self.add_text(where, "filename", name)
        if EICAR in data:
            self.analysis.findings.append(Finding("eicar", where, "EICAR-Test-File"))
        try:
            self._open(kind, name, ctype, data, where, depth, charset)
        except LimitExceeded:
            raise
        except (
            zipfile.BadZipFile,
            zipfile.LargeZipFile,
            EOFError,
            UnicodeError,
            ValueError,
            KeyError,
            IndexError,
            TypeError,
            AttributeError,
            RecursionError,
            NotImplementedError,
            OSError,
        ) as exc:
            # A document no reader understands: noted, judged by name and signatures only.
            self.analysis.findings.append(Finding("unreadable", where, f"{kind}: {type(exc).__name__}"))
        except Exception as exc:  # noqa: BLE001 - third-party readers raise their own types
            self.analysis.findings.append(Finding("unreadable", where, f"{kind}: {type(exc).__name__}"))

    def _open(
        self, kind: str, name: str, ctype: str, data: bytes, where: str, depth: int, charset: str | None
    ) -> None:
        if kind == "message":
            self.message(email.message_from_bytes(data, policy=email.policy.compat32), where, depth + 1)
        elif kind in ("zip", "docx", "xlsx", "pptx", "odt"):
            self.zip(kind, data, where, depth)
        elif kind == "pdf":
            pdf = formats.pdf_text(data, budget=self.limits.pdf_budget)
            if pdf.encrypted:
                self.analysis.findings.append(Finding("encrypted", where, "encrypted PDF"))
            self.analysis.truncated = self.analysis.truncated or pdf.truncated
            fonts = formats.legacy_fonts(data[:4_000_000]) if b"/BaseFont" in data[:4_000_000] else set()
            self.add_lines(where, pdf.lines, fonts, structural=False)
            for value in pdf.properties:
                self.add_text(f"{where} (properties)", "title", value)
        elif kind == "rtf":
            fonts = formats.legacy_fonts(data[:200_000])
            self.add_lines(where, formats.rtf_text(data), fonts, structural=True)
        elif kind == "html":
            self.html(where, data, charset, role="document")
        elif kind == "text":
            self.text_bytes(where, data, charset, "document")
        elif kind == "ole":
            self.ole(data, where)
        elif kind == "exe":
            self.analysis.findings.append(Finding("executable", where, "executable file format"))

    def html(self, where: str, data: bytes, charset: str | None, *, role: str) -> None:
        markup, encoding = decode_text(data, charset)
        result = formats.html_text(markup)
        self.add_text(where, role, "\n".join(result.lines), structural=True, encoding=encoding)
        if result.title.strip():
            self.add_text(f"{where} (title)", "title", result.title.strip())
        self.analysis.html_links.extend(result.links)
        self.analysis.urls.extend(host.lower() for host, _ in result.links if host)
        self.analysis.html_hidden_chars += result.hidden_chars
        self.analysis.html_forms.extend(result.forms)
        self.analysis.html_images += result.images

    def ole(self, data: bytes, where: str) -> None:
        """Legacy binary Office (MS-CFB): VBA storages, encryption, UTF-16 text runs."""
        if any(marker in data for marker in _OLE_VBA):
            self.analysis.findings.append(Finding("macro", where, "VBA project in OLE document"))
        if _OLE_ENCRYPTED in data:
            self.analysis.findings.append(Finding("encrypted", where, "encrypted Office document"))
        runs = [m.decode("utf-16-le", errors="ignore") for m in _UTF16_RUN.findall(data[:20_000_000])]
        lines = [line for run in runs for line in run.replace("\r", "\n").split("\n")]
        self.add_lines(where, lines, formats.legacy_fonts(data[:4_000_000]), structural=False)

    def _budget(self, info: zipfile.ZipInfo, where: str) -> None:
        self.members += 1
        if self.members > self.limits.max_members:
            raise LimitExceeded(f"more than {self.limits.max_members} archive members ({where})")
        self.unpacked += info.file_size
        if self.unpacked > self.limits.max_unpacked:
            raise LimitExceeded(
                f"archives unpack to more than {self.limits.max_unpacked} octets (zip bomb?) at {where}"
            )
        if info.file_size > 1_000_000 and info.file_size > self.limits.max_ratio * max(info.compress_size, 1):
            ratio = info.file_size / max(info.compress_size, 1)
            raise LimitExceeded(
                f"compression ratio {ratio:.0f}:1 above {self.limits.max_ratio:.0f}:1 (zip bomb) at "
                f"{_label(where, info.filename)}"
            )

    def _read(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> bytes:
        with zf.open(info) as fh:
            content = fh.read(info.file_size + 1)
        if len(content) > info.file_size:
            raise LimitExceeded(f"member larger than declared (zip bomb) at {_label(where, info.filename)}")
        return content

    def zip(self, kind: str, data: bytes, where: str, depth: int) -> None:
        if depth + 1 > self.limits.max_depth:
            raise LimitExceeded(f"nesting deeper than {self.limits.max_depth} levels at {where}")
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            names = {i.filename for i in infos}
            if kind == "zip" and "[Content_Types].xml" in names:
                kind = "ooxml"
            if kind == "zip" and "mimetype" in names and "content.xml" in names:
                kind = "odt"
            if any(n.lower().endswith("vbaproject.bin") for n in names):
                self.analysis.findings.append(Finding("macro", where, "vbaProject.bin (VBA macros)"))
            if kind in ("docx", "xlsx", "pptx", "ooxml"):
                self._ooxml(zf, infos, where)
            elif kind == "odt":
                self._odf(zf, infos, where)
            else:
                self._archive(zf, infos, where, depth)

    def _archive(self, zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], where: str, depth: int) -> None:
        for info in infos:
            if info.is_dir():
                continue
            member = _label(where, info.filename)
            if info.flag_bits & 0x1:
                self.analysis.findings.append(Finding("encrypted", member, "encrypted archive member"))
                self.analysis.leaves.append(
                    Leaf(member, info.filename, "application/octet-stream", info.file_size, "encrypted", "")
                )
                self.add_text(member, "filename", info.filename.rsplit("/", 1)[-1])
                continue
            self._budget(info, where)
            content = self._read(zf, info, where)
            self.file(
                info.filename.rsplit("/", 1)[-1] or info.filename,
                "application/octet-stream",
                content,
                where,
                depth + 1,
            )

    def _ooxml(self, zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], where: str) -> None:
        wanted = [i for i in infos if _OOXML_TEXT_PARTS.match(i.filename)]
        font_parts = [i for i in infos if _FONT_PARTS.match(i.filename)]
        blobs: dict[str, bytes] = {}
        for info in wanted + font_parts:
            if info.flag_bits & 0x1:
                self.analysis.findings.append(Finding("encrypted", where, "encrypted document part"))
                continue
            self._budget(info, where)
            blobs[info.filename] = self._read(zf, info, where)
        fonts = formats.legacy_fonts(*blobs.values())
        lines: list[str] = []
        cells: list[str] = []
        margins: list[str] = []
        names: list[str] = []
        for name in sorted(blobs, key=_part_order):
            xml = blobs[name]
            if name.startswith("word/"):
                lines.extend(formats.word_text(xml))
            elif name.startswith("ppt/comments/"):
                lines.extend(formats.comment_text(xml))
            elif name.startswith(("ppt/", "xl/drawings/", "xl/charts/")):
                lines.extend(formats.drawing_text(xml))
            elif name == "xl/sharedStrings.xml":
                cells.extend(formats.sheet_strings(xml))
            elif name.startswith(("xl/worksheets/", "xl/chartsheets/")):
                cells.extend(formats.sheet_strings(xml))
                cells.extend(formats.formula_strings(xml))
                margins.extend(formats.sheet_headers_footers(xml))
            elif name == "xl/workbook.xml":
                names.extend(formats.workbook_names(xml))
            elif "omments" in name:
                lines.extend(formats.comment_text(xml))
        self.add_lines(where, lines, fonts, structural=True)
        self.add_lines(where, cells, fonts, structural=True, cells=True)
        self.add_lines(f"{where} (header/footer)", margins, fonts, structural=True)
        for name in names:
            self.add_text(f"{where} (sheet name)", "title", name)
        props = formats.document_properties(
            *(blobs.get(f"docProps/{part}.xml", b"") for part in ("core", "app", "custom"))
        )
        self._properties(where, props)

    def _properties(self, where: str, props: formats.Properties) -> None:
        for value in props.values:
            self.add_text(f"{where} (properties)", "title", value)
        self.add_text(f"{where} (properties)", "document", "\n".join(props.fields), structural=True)

    def _odf(self, zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], where: str) -> None:
        blobs: dict[str, bytes] = {}
        for info in infos:
            if info.filename in ("content.xml", "styles.xml", "meta.xml"):
                if info.flag_bits & 0x1:
                    self.analysis.findings.append(Finding("encrypted", where, "encrypted document"))
                    continue
                self._budget(info, where)
                blobs[info.filename] = self._read(zf, info, where)
        manifest = next((i for i in infos if i.filename == "META-INF/manifest.xml"), None)
        if (
            manifest is not None
            and manifest.file_size < 1_000_000
            and b"encryption-data" in zf.read(manifest)
        ):
            self.analysis.findings.append(Finding("encrypted", where, "encrypted ODF document"))
        fonts = formats.legacy_fonts(*blobs.values())
        content = blobs.get("content.xml", b"")
        spreadsheet = b"<office:spreadsheet" in content
        # styles.xml holds the page headers and footers (style:master-page, ODF 1.2 part 1 section 16.9).
        self.add_lines(f"{where} (header/footer)", formats.odf_text(blobs.get("styles.xml", b"")), fonts,
                       structural=True)
        self.add_lines(where, formats.odf_text(content), fonts, structural=True, cells=spreadsheet)
        for name in formats.odf_names(content):
            self.add_text(f"{where} (sheet name)", "title", name)
        self._properties(where, formats.document_properties(blobs.get("meta.xml", b"")))


def url_host(authority: str) -> str:
    """The host of a URL's authority as written in text: without the user
    information ("https://vietcombank.com.vn@evil.example/" goes to
    evil.example, RFC 3986 section 3.2.1) and trailing punctuation."""
    return authority.rpartition("@")[2].rstrip(".,;!").lower()


def _part_order(name: str) -> tuple[int, str]:
    # Headers first: the stamp sits at the top of a document.
    return (0 if "header" in name else 1, name)


def sniff(name: str, ctype: str, data: bytes) -> str:
    head = data[:8]
    ext = _ext(name)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        if ext in ("docx", "docm", "dotx", "dotm"):
            return "docx"
        if ext in ("xlsx", "xlsm", "xltx", "xltm"):
            return "xlsx"
        if ext in ("pptx", "pptm", "ppsx", "ppsm", "potx", "potm"):
            return "pptx"
        if ext in ("odt", "ods", "odp", "ott"):
            return "odt"
        return "zip"
    if head.startswith(b"%PDF") or b"%PDF-" in data[:1024]:
        return "pdf"
    if head.startswith(b"{\\rtf"):
        return "rtf"
    if head.startswith(_OLE_MAGIC):
        return "ole"
    if (
        head.startswith(b"MZ")
        or head.startswith(b"\x7fELF")
        or head[:4] in (b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe")
    ):
        return "exe"
    if ctype == "message/rfc822" or ext == "eml":
        return "message"
    if ctype == "text/html" or ext in ("html", "htm", "xhtml"):
        return "html"
    if ctype.startswith("text/") or ext in ("txt", "csv", "md", "log", "xml", "json", "ini", "cfg"):
        return "text"
    if ext in _ZIP_EXTENSIONS:
        return "zip"
    if not _looks_binary(data[:4096]):
        return "text"
    return "other"


def _looks_binary(sample: bytes) -> bool:
    return b"\x00" in sample


def decode_text(data: bytes, charset: str | None) -> tuple[str, str | None]:
    """Bytes of a text part -> (Unicode, legacy encoding). UTF-8 and declared
    Unicode charsets are trusted; 8-bit text is checked for TCVN3/VNI."""
    declared = (charset or "").lower()
    if declared in ("utf-8", "utf8", "us-ascii", "ascii", ""):
        try:
            return data.decode("utf-8"), None
        except UnicodeDecodeError:
            pass
    elif declared not in ("iso-8859-1", "latin-1", "latin1", "windows-1252", "cp1252", "x-user-defined"):
        try:
            return data.decode(declared), None
        except (LookupError, UnicodeDecodeError):
            pass
    return legacy.decode_bytes_legacy(data)


def _header(msg: email.message.Message, name: str) -> str:
    value = msg.get(name)
    if value is None:
        return ""
    try:
        return str(email.header.make_header(email.header.decode_header(str(value))))
    except (MessageError, UnicodeError, LookupError, ValueError):
        return str(value)


def _filename(part: email.message.Message) -> str:
    try:
        name = part.get_filename() or part.get_param("name") or ""
    except (MessageError, UnicodeError, LookupError, ValueError):
        return ""
    if isinstance(name, tuple):
        name = email.utils.collapse_rfc2231_value(name)
    if name == "":
        return ""  # what decoding it gives (most parts have no name: twice a part, ~2.5 us each)
    try:
        return str(email.header.make_header(email.header.decode_header(str(name))))
    except (MessageError, UnicodeError, LookupError, ValueError):
        return str(name)


_BODY_TYPES: Final = frozenset({"text/plain", "text/html", "text/enriched"})


def parse_message(data: bytes) -> email.message.Message:
    """``email.message_from_bytes(data, policy=compat32)``, without feeding the
    body of a single-part message through the parser line by line: for any
    type but multipart/* and message/* the payload is the body as it is."""
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        msg = email.message_from_bytes(data[: end + 4], policy=email.policy.compat32)
        if (
            not msg.defects
            and msg.get_payload() == ""
            and msg.get_content_maintype() not in ("multipart", "message")
        ):
            msg.set_payload(data[end + 4 :].decode("ascii", "surrogateescape"))
            return msg
    return email.message_from_bytes(data, policy=email.policy.compat32)


def text_only(msg: email.message.Message) -> bool:
    """Every leaf is a text body the ``Walker`` reads as such (no attachment,
    no file name, no attached message, no container to open)."""
    try:
        for part in msg.walk():
            ctype = part.get_content_type()
            if ctype.startswith("message/"):
                return False
            if part.is_multipart():
                continue
            if ctype not in _BODY_TYPES or _filename(part):
                return False
            if (part.get_content_disposition() or "").lower() == "attachment":
                return False
    except RecursionError:
        return False  # analyse() says why
    return True


def analyse(data: bytes, limits: Limits) -> Analysis:
    """The whole message; never raises for bad input (the refusal is data)."""
    try:
        msg = parse_message(data)
    except RecursionError:
        return Analysis(refused="MIME structure nested too deeply")
    return analyse_message(msg, limits)


def analyse_message(msg: email.message.Message, limits: Limits) -> Analysis:
    """``analyse`` of a message already parsed (``parse_message``)."""
    walker = Walker(limits)
    try:
        walker.message(msg, "", 0)
    except LimitExceeded as exc:
        walker.analysis.refused = str(exc)
    except RecursionError:
        walker.analysis.refused = "MIME structure nested too deeply"
    analysis = walker.analysis
    for unit in analysis.units:
        hits = unit_markings(unit)
        if hits:
            analysis.markings.append((unit.where, hits[0]))
        if len(unit.text) > RETURNED_TEXT:
            unit.text = unit.text[:RETURNED_TEXT]
    return analysis


def unit_markings(unit: TextUnit) -> list[Marking]:
    if unit.role == "subject":
        return scan_subject(unit.text)
    if unit.role == "filename":
        return scan_name(unit.text, "file name")
    if unit.role == "title":
        return scan_name(unit.text, "title")
    return scan_text(unit.text, structural=unit.structural, cells=unit.cells)
