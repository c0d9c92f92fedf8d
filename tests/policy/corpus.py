# ruff: noqa: E501 - a table of sample data reads best one sample per line
"""A labelled corpus, generated: classified documents in many forms, hard
negatives (ordinary uses of "mật", passages of Decision 70/2009), spam and
malware. ``build()`` returns ``Sample``s of raw RFC 5322 bytes."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.mime.text import MIMEText
from email.utils import format_datetime, make_msgid
from pathlib import Path

from policy.extract.legacy import encode_tcvn3, encode_vni
from policy.extract.walk import EICAR

# A copy of the provincial decision (shared/seed/decision-70-2009.txt), kept in the repo so the
# corpus does not depend on files outside the checkout.
SEED = Path(__file__).with_name("data") / "decision-70-2009.txt"
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
ODS = "application/vnd.oasis.opendocument.spreadsheet"
ODT = "application/vnd.oasis.opendocument.text"
HEAD = ["ỦY BAN NHÂN DÂN", "TỈNH ĐỒNG NAI", "Số: 125/QĐ-UBND"]
BODY = ["QUYẾT ĐỊNH", "Về việc phê duyệt kế hoạch bảo đảm an ninh năm 2024",
        "Căn cứ Luật Tổ chức chính quyền địa phương ngày 19 tháng 6 năm 2015;"]


@dataclass(frozen=True)
class Sample:
    name: str
    category: str  # classified | negative | spam | malware
    data: bytes
    sender: str = "nguoigui@example.org"


# -- document builders ----------------------------------------------------------
def docx(paragraphs: list[str] = (), *, table: list[list[str]] | None = None, header: str | None = None,
         font: str | None = None, title: str | None = None, subject: str | None = None,
         keywords: str | None = None, custom: dict[str, str] | None = None) -> bytes:
    import docx as _docx

    doc = _docx.Document()
    if header is not None:
        doc.sections[0].header.paragraphs[0].text = header
    for text in paragraphs:
        run = doc.add_paragraph().add_run(text)
        if font:
            run.font.name = font
    if table:
        t = doc.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, text in enumerate(row):
                t.cell(r, c).text = text
    if title is not None:
        doc.core_properties.title = title
    if subject is not None:
        doc.core_properties.subject = subject
    if keywords is not None:
        doc.core_properties.keywords = keywords
    out = io.BytesIO()
    doc.save(out)
    if custom:
        return repack(out.getvalue(), {"docProps/custom.xml": custom_properties(custom)}, {})
    return out.getvalue()


def xlsx(rows: list[list[str]], *, header: str | None = None, footer: str | None = None,
         even_footer: str | None = None, first_header: str | None = None, sheet: str | None = None,
         comment: str | None = None, defined_name: str | None = None, title: str | None = None,
         subject: str | None = None, keywords: str | None = None, extra_parts: dict[str, bytes] | None = None,
         edit: dict[str, tuple[bytes, bytes]] | None = None) -> bytes:
    """A workbook by openpyxl; ``header``/``footer`` are SpreadsheetML header
    strings with their &-codes (``"&CTỐI MẬT"``); ``extra_parts`` adds package
    parts openpyxl cannot write, ``edit`` replaces bytes in a part (name: (old, new))."""
    import openpyxl
    from openpyxl.comments import Comment
    from openpyxl.workbook.defined_name import DefinedName

    wb = openpyxl.Workbook()
    ws = wb.active
    if sheet is not None:
        ws.title = sheet
    for row in rows:
        ws.append(row)
    for value, target in ((header, ws.oddHeader), (footer, ws.oddFooter), (even_footer, ws.evenFooter),
                          (first_header, ws.firstHeader)):
        if value is not None:
            for code, part in (("&L", target.left), ("&C", target.center), ("&R", target.right)):
                if value.startswith(code):
                    part.text = value[2:]
    if comment is not None:
        ws["A1"].comment = Comment(comment, "Văn thư")
    if defined_name is not None:
        wb.defined_names[defined_name] = DefinedName(defined_name, attr_text=f"'{ws.title}'!$A$1")
    wb.properties.title, wb.properties.subject, wb.properties.keywords = title, subject, keywords
    out = io.BytesIO()
    wb.save(out)
    data = out.getvalue()
    if extra_parts or edit:
        data = repack(data, extra_parts or {}, edit or {})
    return data


def repack(package: bytes, extra: dict[str, bytes], edit: dict[str, tuple[bytes, bytes]]) -> bytes:
    """A ZIP package with parts added and bytes replaced in others."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(package)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            content = src.read(info)
            if info.filename in edit:
                old, new = edit[info.filename]
                assert old in content, (info.filename, old)
                content = content.replace(old, new)
            dst.writestr(info, content)
        for name, content in extra.items():
            dst.writestr(name, content)
    return out.getvalue()


def custom_properties(props: dict[str, str]) -> bytes:
    """docProps/custom.xml (ECMA-376 part 1 section 22.3)."""
    items = "".join(
        f'<property fmtid="{{D5CDD505-2E9C-101B-9397-08002B2CF9AE}}" pid="{i + 2}" name="{name}">'
        f"<vt:lpwstr>{value}</vt:lpwstr></property>" for i, (name, value) in enumerate(props.items()))
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/custom-properties" '
            'xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes">'
            f"{items}</Properties>").encode()


def ods(rows: list[list[str]], *, header: str | None = None, footer: str | None = None, sheet: str = "Sheet1",
        annotation: str | None = None, named_range: str | None = None, title: str | None = None,
        keywords: str | None = None, user_defined: tuple[str, str] | None = None) -> bytes:
    """An ODF spreadsheet by odfpy: page header/footer in styles.xml (a master
    page), the sheet name, an annotation, a named range, meta.xml properties."""
    from odf import dc, meta
    from odf.office import Annotation
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.style import Footer, Header, MasterPage, PageLayout, RegionCenter
    from odf.table import NamedExpressions, NamedRange, Table, TableCell, TableRow
    from odf.text import P

    doc = OpenDocumentSpreadsheet()
    layout = PageLayout(name="pm1")
    doc.automaticstyles.addElement(layout)
    master = MasterPage(name="Default", pagelayoutname=layout)
    if header is not None:
        region = RegionCenter()
        region.addElement(P(text=header))
        element = Header()
        element.addElement(region)
        master.addElement(element)
    if footer is not None:
        element = Footer()
        element.addElement(P(text=footer))
        master.addElement(element)
    doc.masterstyles.addElement(master)
    table = Table(name=sheet)
    for r, values in enumerate(rows):
        table_row = TableRow()
        for c, value in enumerate(values):
            cell = TableCell(valuetype="string")
            cell.addElement(P(text=value))
            if annotation is not None and r == 0 and c == 0:
                note = Annotation()
                note.addElement(P(text=annotation))
                cell.addElement(note)
            table_row.addElement(cell)
        table.addElement(table_row)
    doc.spreadsheet.addElement(table)
    if named_range is not None:
        names = NamedExpressions()
        names.addElement(NamedRange(name=named_range, cellrangeaddress=f"$'{sheet}'.$A$1"))
        doc.spreadsheet.addElement(names)
    if title is not None:
        doc.meta.addElement(dc.Title(text=title))
    if keywords is not None:
        doc.meta.addElement(meta.Keyword(text=keywords))
    if user_defined is not None:
        doc.meta.addElement(meta.UserDefined(name=user_defined[0], text=user_defined[1]))
    out = io.BytesIO()
    doc.write(out)
    return out.getvalue()


def pptx(texts: list[str]) -> bytes:
    from pptx import Presentation

    prs = Presentation()
    slide = prs.slides.add_slide(prs.slide_layouts[1])
    slide.shapes.title.text = texts[0]
    body = slide.placeholders[1].text_frame
    body.text = texts[1] if len(texts) > 1 else ""
    for extra in texts[2:]:
        body.add_paragraph().text = extra
    out = io.BytesIO()
    prs.save(out)
    return out.getvalue()


def pdf(lines: list[str], *, title: str | None = None, subject: str | None = None, keywords: str | None = None,
        xmp_title: str | None = None, xmp_subject: str | None = None, pad_to: int = 0) -> bytes:
    from fpdf import FPDF

    doc = FPDF()
    doc.add_font("DejaVu", "", FONT)
    doc.set_font("DejaVu", size=12)
    doc.add_page()
    if title:
        doc.set_title(title)
    if subject:
        doc.set_subject(subject)
    if keywords:
        doc.set_keywords(keywords)
    if xmp_title or xmp_subject:
        described = ""
        if xmp_title:
            described += f'<dc:title><rdf:Alt><rdf:li xml:lang="x-default">{xmp_title}</rdf:li></rdf:Alt></dc:title>'
        if xmp_subject:
            described += f"<dc:subject><rdf:Bag><rdf:li>{xmp_subject}</rdf:li></rdf:Bag></dc:subject>"
        doc.set_xmp_metadata(
            '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">'
            f"{described}</rdf:Description></rdf:RDF></x:xmpmeta>")
    for line in lines:
        doc.cell(0, 8, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(doc.output())


def odt(paragraphs: list[str], *, title: str | None = None, keywords: str | None = None) -> bytes:
    from odf import dc, meta
    from odf.opendocument import OpenDocumentText
    from odf.text import P

    doc = OpenDocumentText()
    for text in paragraphs:
        doc.text.addElement(P(text=text))
    if title is not None:
        doc.meta.addElement(dc.Title(text=title))
    if keywords is not None:
        doc.meta.addElement(meta.Keyword(text=keywords))
    out = io.BytesIO()
    doc.write(out)
    return out.getvalue()


def rtf_unicode(lines: list[str]) -> bytes:
    def esc(text: str) -> str:
        return "".join(c if ord(c) < 128 else f"\\u{ord(c) if ord(c) < 32768 else ord(c) - 65536}?" for c in text)

    body = "\\par\n".join(esc(line) for line in lines)
    return ("{\\rtf1\\ansi\\ansicpg1252\\deff0{\\fonttbl{\\f0 Times New Roman;}}\n\\f0 " + body + "\\par\n}").encode()


def rtf_tcvn3(lines: list[str]) -> bytes:
    def esc(text: str) -> str:
        return "".join(chr(b) if b < 128 else f"\\'{b:02x}" for b in encode_tcvn3(text))

    body = "\\par\n".join(esc(line) for line in lines)
    return ("{\\rtf1\\ansi\\deff0{\\fonttbl{\\f0 .VnTime;}}\n\\f0 " + body + "\\par\n}").encode()


def zipped(members: dict[str, bytes], *, encrypted: bool = False) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    raw = bytearray(out.getvalue())
    if encrypted:
        # zipfile cannot write encrypted members: set the "encrypted" flag bit
        # (APPNOTE 4.4.4 bit 0) in the local and central headers by hand.
        for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
            at = raw.find(signature)
            while at != -1:
                raw[at + offset] |= 0x1
                at = raw.find(signature, at + 4)
    return bytes(raw)


# -- messages ---------------------------------------------------------------------
def message(subject: str, body: str = "Kính gửi anh/chị, xin gửi tài liệu đính kèm.", *,
            attachments: list[tuple[str, bytes, str]] = (), html: str | None = None,
            sender: str = "nguoigui@example.org", cte: str | None = None,
            attach_message: EmailMessage | None = None, extra: dict[str, str] | None = None,
            message_id: bool = True, date: bool = True) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "nhan@dongnai.gov.vn"
    msg["Subject"] = subject
    if date:
        msg["Date"] = format_datetime(datetime(2024, 5, 6, 8, 30, tzinfo=UTC))
    if message_id:
        msg["Message-ID"] = make_msgid(domain="example.org")
    for key, value in (extra or {}).items():
        msg[key] = value
    if cte:
        msg.set_content(body, cte=cte)
    else:
        msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for name, data, ctype in attachments:
        maintype, _, subtype = ctype.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    if attach_message is not None:
        msg.add_attachment(attach_message)
    return msg.as_bytes()


def legacy_body_message(subject: str, raw: bytes) -> bytes:
    part = MIMEText("", "plain", "windows-1252")
    part.set_payload(raw, "windows-1252")
    part.replace_header("Content-Transfer-Encoding", "8bit") if "Content-Transfer-Encoding" in part else None
    msg = EmailMessage()
    msg["From"] = "vanthu@example.org"
    msg["To"] = "nhan@dongnai.gov.vn"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime(2024, 5, 6, 8, 30, tzinfo=UTC))
    msg["Message-ID"] = make_msgid(domain="example.org")
    msg.set_content(raw, maintype="text", subtype="plain", cte="base64")
    msg.replace_header("Content-Type", "text/plain; charset=windows-1252")
    return msg.as_bytes()


def inner(subject: str, body: str = "Nội dung", attachments: list[tuple[str, bytes, str]] = ()) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "a@example.org"
    msg["Subject"] = subject
    msg.set_content(body)
    for name, data, ctype in attachments:
        maintype, _, subtype = ctype.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg


def stamped(level: str) -> list[str]:
    return HEAD + [level] + BODY


TCVN3_DOC = ["Céng hoµ x· héi chñ nghÜa ViÖt Nam", "§éc lËp - Tù do - H¹nh phóc"]


def classified() -> list[Sample]:
    s: list[Sample] = []

    def add(name: str, data: bytes) -> None:
        s.append(Sample(name, "classified", data))

    add("subject-tag", message("[MẬT] Báo cáo tình hình an ninh quý II"))
    add("subject-paren", message("(TỐI MẬT) Kế hoạch diễn tập"))
    add("subject-prefix", message("TUYỆT MẬT - Phương án bảo vệ mục tiêu"))
    add("subject-strong", message("Gửi báo cáo TỐI MẬT về công tác nội chính"))
    add("subject-ascii", message("[TOI MAT] BAO CAO SO 12"))
    add("body-stamp", message("Báo cáo số 12", "\n".join(stamped("MẬT"))))
    add("body-field", message("Văn bản đến", "Số ký hiệu: 45/CV-CA\nĐộ mật: Mật\nĐộ khẩn: Thường\n"))
    add("body-field-inline", message("Văn bản đến", "Độ khẩn: Hỏa tốc    Độ mật: Tối mật\nTrích yếu: ..."))
    add("body-headerline", message("Báo cáo", "CÔNG AN TỈNH ĐỒNG NAI\nSố: 12/BC-CA\t\tTỐI MẬT\nBÁO CÁO\n"))
    add("body-urgent", message("Công văn", "\n".join(HEAD + ["MẬT - KHẨN"] + BODY)))
    add("body-base64", message("Tài liệu", "\n".join(stamped("TỐI MẬT")), cte="base64"))
    add("body-qp", message("Tài liệu", "\n".join(stamped("TUYỆT MẬT")), cte="quoted-printable"))
    add("body-nfd", message("Tài liệu", "\n".join(stamped("MẬT")).replace("MẬT", "MA\u0323\u0302T")))
    add("body-zero-width", message("Tài liệu", "\n".join(stamped("M\u200bẬT"))))
    add("body-html", message("Thông báo", "Xem bản HTML", html="<p>ỦY BAN NHÂN DÂN</p><p><b>MẬT</b></p><p>Nội dung</p>"))
    add("docx-paragraph", message("Quyết định", attachments=[("qd125.docx", docx(stamped("MẬT")), DOCX)]))
    add("docx-table", message("Báo cáo", attachments=[("bc.docx", docx(BODY, table=[["Số: 12/BC", "TỐI MẬT"]]), DOCX)]))
    add("docx-header", message("Kế hoạch", attachments=[("kh.docx", docx(BODY, header="TUYỆT MẬT"), DOCX)]))
    add("docx-spaced", message("Kế hoạch", attachments=[("kh2.docx", docx(HEAD + ["M Ậ T"] + BODY), DOCX)]))
    add("docx-title", message("Tờ trình", attachments=[("tt.docx", docx(BODY, title="TỐI MẬT - Tờ trình"), DOCX)]))
    add("docx-tcvn3", message("Quyết định cũ", attachments=[
        ("qd-cu.docx", docx(TCVN3_DOC + ["MËT", "QuyÕt ®Þnh"], font=".VnTime"), DOCX)]))
    add("docx-vni", message("Quyết định cũ", attachments=[
        ("qd-vni.docx", docx(["Coäng hoøa xaõ hoäi chuû nghóa Vieät Nam", "MAÄT", "Quyeát ñònh"], font="VNI-Times"), DOCX)]))
    add("xlsx-cell", message("Số liệu", attachments=[("sl.xlsx", xlsx([["Bảng tổng hợp", "MẬT"], ["1", "2"]]), XLSX)]))
    add("xlsx-field", message("Danh mục", attachments=[("dm.xlsx", xlsx([["Độ mật: Tối mật"], ["Số liệu"]]), XLSX)]))
    add("pptx", message("Trình chiếu", attachments=[("tc.pptx", pptx(["TỐI MẬT", "Phương án", "Nội dung"]), PPTX)]))
    add("pdf-stamp", message("Văn bản", attachments=[("vb.pdf", pdf(stamped("MẬT")), "application/pdf")]))
    add("pdf-top", message("Văn bản", attachments=[("vb2.pdf", pdf(["TUYỆT MẬT"] + BODY), "application/pdf")]))
    add("pdf-tcvn3", message("Văn bản cũ", attachments=[("cu.pdf", pdf(TCVN3_DOC + ["MËT", "QuyÕt ®Þnh sè 5"]), "application/pdf")]))
    add("odt", message("Văn bản ODT", attachments=[("vb.odt", odt(stamped("MẬT")), "application/vnd.oasis.opendocument.text")]))
    add("rtf-unicode", message("RTF", attachments=[("vb.rtf", rtf_unicode(stamped("TỐI MẬT")), "application/rtf")]))
    add("rtf-tcvn3", message("RTF cũ", attachments=[("cu.rtf", rtf_tcvn3(["Cộng hoà xã hội chủ nghĩa Việt Nam", "MẬT", "Độc lập"]), "application/rtf")]))
    add("html-attachment", message("HTML", attachments=[("vb.html", "<table><tr><td>Số 5</td><td>TỐI MẬT</td></tr></table>".encode(), "text/html")]))
    add("txt-tcvn3", message("Văn bản TCVN3", attachments=[("vb.txt", encode_tcvn3("\n".join(["Cộng hoà xã hội chủ nghĩa Việt Nam", "Độc lập - Tự do - Hạnh phúc", "TỐI MẬT", "Quyết định số 5"])), "text/plain")]))
    add("txt-vni", message("Văn bản VNI", attachments=[("vb.txt", encode_vni("\n".join(["Cộng hòa xã hội chủ nghĩa Việt Nam", "Độc lập - Tự do - Hạnh phúc", "MẬT", "Quyết định số 5"])), "text/plain")]))
    add("body-tcvn3", legacy_body_message("Van ban", encode_tcvn3("\n".join(["Cộng hoà xã hội chủ nghĩa Việt Nam", "Độc lập - Tự do - Hạnh phúc", "MẬT", "Báo cáo"]))))
    add("zip-docx", message("Hồ sơ", attachments=[("hoso.zip", zipped({"QD.docx": docx(stamped("MẬT"))}), "application/zip")]))
    add("zip-nested", message("Hồ sơ", attachments=[("a.zip", zipped({"b.zip": zipped({"c/bc.txt": "\n".join(stamped("TỐI MẬT")).encode()})}), "application/zip")]))
    add("rfc822-subject", message("Fwd: tài liệu", attach_message=inner("[MẬT] Kế hoạch")))
    add("rfc822-docx", message("Fwd: tài liệu", attach_message=inner("Kế hoạch", attachments=[("k.docx", docx(stamped("TUYỆT MẬT")), DOCX)])))
    add("filename-ascii", message("Quyết định", attachments=[("QUYET DINH TOI MAT.docx", docx(BODY), DOCX)]))
    add("filename-accented", message("Báo cáo", attachments=[("BÁO CÁO TUYỆT MẬT.pdf", pdf(BODY), "application/pdf")]))
    add("filename-in-zip", message("Hồ sơ", attachments=[("hs.zip", zipped({"BAO_CAO_[MAT].pdf": pdf(BODY)}), "application/zip")]))
    # Issue 18: spreadsheet headers and footers, every other place a workbook carries text,
    # document properties, accent-stripped file names, title-case stamp lines.
    rows = [["STT", "Nội dung", "Số lượng"], ["1", "Phương án bảo vệ", "12"]]
    add("xlsx-header", message("Số liệu", attachments=[("sl2.xlsx", xlsx(rows, header="&CTỐI MẬT"), XLSX)]))
    add("xlsx-footer-titlecase", message("Số liệu", attachments=[("sl3.xlsx", xlsx(rows, footer="&LMật&RTrang &P"), XLSX)]))
    add("xlsx-sheet-name", message("Số liệu", attachments=[("sl4.xlsx", xlsx(rows, sheet="TUYỆT MẬT"), XLSX)]))
    add("xlsx-comment", message("Số liệu", attachments=[("sl5.xlsx", xlsx(rows, comment="MẬT"), XLSX)]))
    add("xlsx-defined-name", message("Số liệu", attachments=[("sl6.xlsx", xlsx(rows, defined_name="TOI_MAT"), XLSX)]))
    add("xlsx-title-ascii", message("Số liệu", attachments=[("sl7.xlsx", xlsx(rows, title="TOI MAT - So lieu quy II"), XLSX)]))
    add("xlsx-keywords-ascii", message("Số liệu", attachments=[("sl8.xlsx", xlsx(rows, keywords="TUYET MAT"), XLSX)]))
    add("ods-header", message("Bảng tính", attachments=[("bt.ods", ods(rows, header="TỐI MẬT"), ODS)]))
    add("ods-sheet-name", message("Bảng tính", attachments=[("bt2.ods", ods(rows, sheet="MẬT"), ODS)]))
    add("ods-annotation", message("Bảng tính", attachments=[("bt3.ods", ods(rows, annotation="TUYỆT MẬT"), ODS)]))
    add("ods-title-ascii", message("Bảng tính", attachments=[("bt4.ods", ods(rows, title="TUYET MAT"), ODS)]))
    add("ods-user-defined", message("Bảng tính", attachments=[("bt5.ods", ods(rows, user_defined=("Độ mật", "Tối mật")), ODS)]))
    add("docx-subject-ascii", message("Tờ trình", attachments=[("tt2.docx", docx(BODY, subject="TUYET MAT"), DOCX)]))
    add("docx-keywords-mat", message("Tờ trình", attachments=[("tt3.docx", docx(BODY, keywords="MAT"), DOCX)]))
    add("docx-custom-property", message("Tờ trình", attachments=[("tt4.docx", docx(BODY, custom={"Độ mật": "Mật"}), DOCX)]))
    add("odt-title-ascii", message("Văn bản", attachments=[("vb2.odt", odt(BODY, title="Bao cao TOI MAT"), ODT)]))
    add("pdf-subject", message("Văn bản", attachments=[("vb3.pdf", pdf(BODY, subject="Tuyệt mật"), "application/pdf")]))
    add("pdf-keywords-ascii", message("Văn bản", attachments=[("vb4.pdf", pdf(BODY, keywords="TOI MAT, quoc phong"), "application/pdf")]))
    add("pdf-xmp-title", message("Văn bản", attachments=[("vb5.pdf", pdf(BODY, xmp_title="TỐI MẬT - Kế hoạch"), "application/pdf")]))
    add("filename-underscore", message("Báo cáo", attachments=[("TOI_MAT_Bao_cao_quy_II.docx", docx(BODY), DOCX)]))
    add("filename-hyphen", message("Kế hoạch", attachments=[("Ke hoach TUYET-MAT.pdf", pdf(BODY), "application/pdf")]))
    add("filename-mat-prefix", message("Số liệu", attachments=[("MAT_KeHoach2025.xlsx", xlsx(rows), XLSX)]))
    add("filename-mat-paren", message("Báo cáo", attachments=[("Bao cao (MAT).docx", docx(BODY), DOCX)]))
    add("body-titlecase-stamp", message("Báo cáo số 12", "\n".join(HEAD + ["Mật"] + BODY)))
    add("pdf-titlecase-stamp", message("Văn bản", attachments=[("vb6.pdf", pdf(HEAD + ["Tối mật"] + BODY), "application/pdf")]))
    add("rtf-titlecase-stamp", message("RTF", attachments=[("vb2.rtf", rtf_unicode(HEAD + ["Tuyệt mật"] + BODY), "application/rtf")]))
    return s


def passages() -> list[str]:
    text = SEED.read_text(encoding="utf-8")
    paras = [p.strip() for p in text.split("\n") if len(p.strip()) > 60]
    chunks = []
    for i in range(0, len(paras), 3):
        chunks.append("\n".join(paras[i:i + 3]))
    return chunks


ORDINARY = [
    "Đề nghị các đồng chí thay đổi mật khẩu hộp thư định kỳ để bảo mật thông tin.",
    "Sở Thông tin và Truyền thông bảo đảm an toàn, bảo mật thông tin của hệ thống.",
    "Mật độ dân số của huyện Trảng Bom tăng nhanh trong năm qua.",
    "Hội nông dân hỗ trợ bà con tiêu thụ mật ong rừng Mã Đà.",
    "Hướng dẫn sử dụng chữ ký số và mật mã dân sự trong cơ quan nhà nước.",
    "Buổi gặp mặt thân mật nhân dịp kỷ niệm ngày thành lập ngành.",
    "Danh mục tài liệu đã được giải mật theo quy định.",
    "Văn bản này không phải văn bản mật, được phép gửi qua thư điện tử.",
    "Được phép gửi, nhận thông tin qua hệ thống thư điện tử các loại văn bản (trừ những văn bản mật).",
    "Theo quy định, tài liệu mật phải được quản lý, lưu giữ tại bộ phận văn thư và không gửi qua mạng.",
    "Ủy ban MẶT TRẬN Tổ quốc Việt Nam tỉnh Đồng Nai tổ chức hội nghị.",
    "Thanh toán bằng tiền mặt tối đa 20 triệu đồng mỗi lần.",
    "Công tác bảo vệ bí mật nhà nước năm 2024 được triển khai đồng bộ.",
]


def negatives() -> list[Sample]:
    s: list[Sample] = []

    def add(name: str, data: bytes) -> None:
        s.append(Sample(name, "negative", data))

    for i, chunk in enumerate(passages()):
        form = i % 6
        if form == 0:
            add(f"seed-body-{i}", message("Quyết định 70/2009/QĐ-UBND", chunk))
        elif form == 1:
            add(f"seed-docx-{i}", message("Quy định thư điện tử", attachments=[(f"qd70-{i}.docx", docx(chunk.split("\n")), DOCX)]))
        elif form == 2:
            add(f"seed-pdf-{i}", message("Quy định", attachments=[(f"qd70-{i}.pdf", pdf([ln[:90] for ln in chunk.split("\n")]), "application/pdf")]))
        elif form == 3:
            add(f"seed-odt-{i}", message("Quy định", attachments=[(f"qd70-{i}.odt", odt(chunk.split("\n")), "application/vnd.oasis.opendocument.text")]))
        elif form == 4:
            add(f"seed-html-{i}", message("Quy định", "Xem HTML", html="".join(f"<p>{p}</p>" for p in chunk.split("\n"))))
        else:
            add(f"seed-xlsx-{i}", message("Quy định", attachments=[(f"qd70-{i}.xlsx", xlsx([[p] for p in chunk.split("\n")]), XLSX)]))
    for i, sentence in enumerate(ORDINARY):
        add(f"ordinary-body-{i}", message("Thông báo", sentence))
        add(f"ordinary-docx-{i}", message("Văn bản", attachments=[(f"vb{i}.docx", docx(HEAD + [sentence]), DOCX)]))
    add("subject-password", message("Hướng dẫn đổi mật khẩu hộp thư", ORDINARY[0]))
    add("subject-caps-baomat", message("BẢO MẬT THÔNG TIN", ORDINARY[1]))
    add("subject-bimat", message("V/v bảo vệ BÍ MẬT nhà nước", ORDINARY[12]))
    add("subject-mattran", message("MẶT TRẬN TỔ QUỐC TỈNH ĐỒNG NAI", ORDINARY[10]))
    add("subject-not-classified", message("Không phải văn bản mật", ORDINARY[7]))
    add("lines-caps", message("Thông báo", "MẶT TRẬN TỔ QUỐC\nTIỀN MẶT\nTỐI ĐA\nBẢO MẬT\nGIẢI MẬT\nĐÃ GIẢI MẬT\nMẬT KHẨU"))
    add("field-thuong", message("Văn bản đến", "Số ký hiệu: 45/CV-UBND\nĐộ mật: Thường\nĐộ khẩn: Khẩn"))
    add("honey-table", message("Báo giá", "Mật ong rừng\t\t200.000 đ\nMật ong nuôi\t\t120.000 đ"))
    add("wrapped-lower", message("Quy định", "Được phép gửi, nhận thông tin qua hệ thống các loại văn bản, trừ văn bản\nmật.\nXin cảm ơn."))
    add("wrapped-caps", message("Quy định", "QUY ĐỊNH VỀ CÔNG TÁC BẢO VỆ BÍ\nMẬT\nNHÀ NƯỚC"))
    add("names-ascii", message("Tài liệu", attachments=[("MAT TRAN TO QUOC.docx", docx(BODY), DOCX),
                                                      ("TIEN MAT.xlsx", xlsx([["1"]]), XLSX),
                                                      ("HUONG DAN BAO MAT.pdf", pdf(BODY), "application/pdf")]))
    add("names-accented", message("Tài liệu", attachments=[("Quy chế bảo mật.docx", docx(BODY), DOCX),
                                                         ("MẶT TRẬN.docx", docx(BODY), DOCX)]))
    add("tcvn3-plain", message("Văn bản cũ", attachments=[("cu.txt", encode_tcvn3("\n".join(["Cộng hoà xã hội chủ nghĩa Việt Nam", "Độc lập - Tự do - Hạnh phúc", "Thay đổi mật khẩu hộp thư", "Quyết định số 5"])), "text/plain")]))
    add("vni-docx", message("Văn bản cũ", attachments=[("vni.docx", docx(["Coäng hoøa xaõ hoäi chuû nghóa Vieät Nam", "Baûo maät thoâng tin"], font="VNI-Times"), DOCX)]))
    add("tcvn3-docx", message("Văn bản cũ", attachments=[("tcvn.docx", docx(TCVN3_DOC + ["B¶o mËt th«ng tin"], font=".VnTime"), DOCX)]))
    add("pptx-plain", message("Trình chiếu", attachments=[("tc.pptx", pptx(["BẢO MẬT THÔNG TIN", "Mật khẩu mạnh", "Mật mã"]), PPTX)]))
    add("zip-plain", message("Hồ sơ", attachments=[("hs.zip", zipped({"a.docx": docx(ORDINARY[:3]), "b.txt": ORDINARY[3].encode()}), "application/zip")]))
    add("rfc822-plain", message("Fwd: thông báo", attach_message=inner("Thông báo đổi mật khẩu", ORDINARY[0])))
    add("rtf-plain", message("RTF", attachments=[("vb.rtf", rtf_unicode(ORDINARY[:5]), "application/rtf")]))
    # Issue 18 hard negatives: "Mật" as a given name, the levels listed in a guide,
    # file names and properties with mặt/mắt/mát, ordinary spreadsheet headers.
    staff = [["STT", "Họ và tên đệm", "Tên", "Chức vụ"], ["1", "Nguyễn Văn", "An", "Trưởng phòng"],
             ["2", "Trần Thị", "Mật", "Chuyên viên"], ["3", "Lê Văn", "Bình", "Kế toán"]]
    add("staff-list-xlsx", message("Danh sách cán bộ", attachments=[("danhsach.xlsx", xlsx(staff), XLSX)]))
    add("staff-list-docx", message("Danh sách cán bộ", attachments=[("danhsach.docx", docx(["DANH SÁCH CÁN BỘ"], table=staff), DOCX)]))
    add("signed-mat", message("Số liệu tháng 3", "Chào anh Hùng,\nEm gửi anh file số liệu tháng 3.\nTrân trọng,\nMật"))
    add("signed-mat-docx", message("Báo cáo", attachments=[("bc-mat.docx", docx(["BÁO CÁO", "Kết quả thực hiện nhiệm vụ quý I", "Người lập", "Mật"]), DOCX)]))
    levels = ["Các độ mật của văn bản gồm:", "Mật", "Tối mật", "Tuyệt mật", "Văn bản mật không gửi qua thư điện tử."]
    add("levels-guide-body", message("Hướng dẫn xác định độ mật", "\n".join(HEAD + levels)))
    add("levels-guide-docx", message("Hướng dẫn", attachments=[("huongdan.docx", docx(["HƯỚNG DẪN"] + levels), DOCX)]))
    add("names-ascii-more", message("Tài liệu", attachments=[
        ("DS_MAT_HANG.xlsx", xlsx([["1"]]), XLSX), ("GIAI_PHONG_MAT_BANG.pdf", pdf(BODY), "application/pdf"),
        ("Phieu chi tien MAT.xlsx", xlsx([["1"]]), XLSX), ("Export MAT file.txt", b"matlab data", "text/plain"),
        ("Hop MAT cuoi nam.docx", docx(BODY), DOCX), ("KE HOACH MAT BANG.docx", docx(BODY), DOCX)]))
    add("properties-plain", message("Tài liệu", attachments=[
        ("hd.docx", docx(BODY, title="Huong dan bao mat thong tin", keywords="mat khau, bao mat"), DOCX),
        ("mat.pdf", pdf(BODY, subject="MAT file format of the simulation data"), "application/pdf"),
        ("so.xlsx", xlsx(rows_plain := [["Tiền mặt", "Số tiền"], ["Quỹ", "1.000.000"]], header="&CBảng kê tiền mặt", footer="&CTrang &P/&N",
                         sheet="Tiền mặt", title="MẶT TRẬN"), XLSX)]))
    add("ods-plain", message("Bảng tính", attachments=[("mt.ods", ods(rows_plain, header="MẶT TRẬN TỔ QUỐC", sheet="Mật ong", keywords="bảo mật"), ODS)]))
    add("decision-xlsx-comments", message("Quy định", attachments=[("qd70-c.xlsx", xlsx([["Điều 6"]], comment=passages()[3]), XLSX)]))
    return s


def spam() -> list[Sample]:
    s: list[Sample] = []
    links = "".join(f'<a href="http://{h}/login">Bấm vào đây</a><br>' for h in ("dongnai-gov.vn.xyz", "vietcombank-secure.top", "bit.example.top"))
    vn = [
        ("CHÚC MỪNG BẠN ĐÃ TRÚNG THƯỞNG", "Chúc mừng! Bạn đã trúng thưởng iPhone. Nhận thưởng ngay, nhấp vào đường link."),
        ("Vay tiền nhanh không cần thế chấp", "Vay tiền nhanh 50 triệu, giải ngân trong 5 phút, không cần thế chấp, lãi suất 0%."),
        ("Xác minh tài khoản ngay", "Tài khoản của bạn sẽ bị khóa. Xác minh tài khoản và nhập mã OTP tại đường link."),
        ("Kiếm tiền online", "Kiếm tiền online, thu nhập thụ động, đầu tư sinh lời, lợi nhuận cao, cơ hội duy nhất."),
        ("KHUYẾN MÃI SỐC CHỈ HÔM NAY", "Khuyến mãi sốc, giảm giá 90% chỉ hôm nay, quà tặng miễn phí."),
        ("Trung thuong lon", "Ban da trung thuong 500 trieu. Nhan thuong ngay, xac minh tai khoan."),
        ("Cập nhật thông tin tài khoản Vietcombank", "Cập nhật thông tin tài khoản, đăng nhập để xác nhận, tài khoản của bạn bị khóa."),
    ]
    en = [
        ("YOU HAVE WON A PRIZE", "Congratulations, you have won the lottery! Claim your prize now, click here."),
        ("Verify your account", "Your account will be suspended. Verify your account and confirm your password, click here."),
        ("Urgent business proposal", "Dear friend, urgent business proposal, inheritance of million dollars, wire transfer."),
        ("Crypto investment", "Bitcoin crypto investment, 100% free, risk-free, act now, limited time."),
        ("Winner", "You've won! Winner of our lottery. Claim your prize. Unsubscribe."),
    ]
    for i, (subject, body) in enumerate(vn + en):
        html = f"<html><body><p>{body}</p>{links}<div style=\"display:none\">{'tin tức thời tiết bóng đá ' * 5}</div></body></html>"
        s.append(Sample(f"spam-{i}", "spam", message(subject, body, html=html, sender="promo@khuyenmai.example",
                                                    message_id=i % 2 == 0, extra={"Return-Path": "<x@other.example>"})))
    for i, (subject, body) in enumerate(vn[:4] + en[:4]):
        s.append(Sample(f"spam-plain-{i}", "spam", message(subject, body + " http://dongnai.gov.vn.login-verify.top/a",
                                                          sender="support@dongnai.gov.vn", message_id=False, date=False)))
    return s


def malware() -> list[Sample]:
    s: list[Sample] = []

    def add(name: str, attachments: list[tuple[str, bytes, str]] | None = None, **kw: object) -> None:
        s.append(Sample(name, "malware", message("Hồ sơ gửi anh", attachments=attachments or [], **kw)))  # type: ignore[arg-type]

    oct_ = "application/octet-stream"
    add("eicar", [("test.com", EICAR, oct_)])
    add("eicar-txt", [("readme.txt", EICAR, "text/plain")])
    add("eicar-zip", [("a.zip", zipped({"eicar.txt": EICAR}), "application/zip")])
    add("eicar-nested-zip", [("a.zip", zipped({"b.zip": zipped({"x.bin": EICAR})}), "application/zip")])
    add("exe", [("setup.exe", b"MZ\x90\x00" + b"\x00" * 200, oct_)])
    add("scr", [("anh.scr", b"\x00\x01binary", oct_)])
    add("double-ext", [("hoso.pdf.exe", b"MZ\x90\x00", oct_)])
    add("js-in-zip", [("hoadon.zip", zipped({"hoadon.js": b"WScript.Echo(1)"}), "application/zip")])
    add("vbs", [("thu.vbs", b"MsgBox 1", "text/plain")])
    add("docm", [("baocao.docm", zipped({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:document/>"}), oct_)])
    add("docx-vba", [("baocao.docx", zipped({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:document/>",
                                             "word/vbaProject.bin": b"\xd0\xcf\x11\xe0"}), DOCX)])
    add("ole-vba", [("cu.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64 + "_VBA_PROJECT".encode("utf-16-le"), "application/msword")])
    add("encrypted-zip", [("matkhau.zip", zipped({"hoso.docx": b"secret"}, encrypted=True), "application/zip")])
    add("lnk-in-message", attach_message=inner("Fwd", attachments=[("tailieu.lnk", b"L\x00\x00\x00", oct_)]))
    add("mz-disguised", [("hoadon.pdf", b"MZ\x90\x00\x03\x00", oct_)])
    add("hta", [("x.hta", b"<script>1</script>", oct_)])
    add("ps1-nested-zip", [("a.zip", zipped({"b.zip": zipped({"run.ps1": b"Write-Host 1"})}), "application/zip")])
    return s


# -- held-out: the same kinds, other documents and other combinations -------------------
HEAD2 = ["BỘ CHỈ HUY QUÂN SỰ", "TỈNH ĐỒNG NAI", "Số: 37/KH-BCH"]
BODY2 = ["KẾ HOẠCH", "Tổ chức diễn tập khu vực phòng thủ năm 2025", "Thực hiện Chỉ thị của Bộ Tư lệnh Quân khu 7;"]
THREADED = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?><ThreadedComments '
            'xmlns="http://schemas.microsoft.com/office/spreadsheetml/2018/threadedcomments">'
            '<threadedComment ref="B2" id="{00000000-0001-0000-0000-000000000000}"><text>TỐI MẬT</text></threadedComment>'
            "</ThreadedComments>").encode()


def classified_heldout() -> list[Sample]:
    s: list[Sample] = []

    def add(name: str, data: bytes) -> None:
        s.append(Sample(f"held-{name}", "classified", data, sender="vanthu@example.net"))

    rows = [["Đơn vị", "Quân số", "Trang bị"], ["Tiểu đoàn 1", "420", "..."]]
    add("xlsx-first-header-codes", message("Quân số", attachments=[("qs.xlsx", xlsx(rows, first_header='&L&"Times New Roman,Bold"&14TUYỆT MẬT'), XLSX)]))
    add("xlsx-even-footer-urgent", message("Quân số", attachments=[("qs2.xlsx", xlsx(rows, even_footer="&CMẬT - KHẨN"), XLSX)]))
    add("xlsx-sheet-mat", message("Quân số", attachments=[("qs3.xlsx", xlsx(rows, sheet="MẬT"), XLSX)]))
    add("xlsx-threaded-comment", message("Quân số", attachments=[("qs4.xlsx", xlsx(rows, extra_parts={"xl/threadedComments/threadedComment1.xml": THREADED}), XLSX)]))
    add("xlsx-formula-string", message("Quân số", attachments=[("qs5.xlsx", xlsx(rows, edit={"xl/worksheets/sheet1.xml": (
        b'<c r="C2" t="inlineStr"><is><t>...</t></is></c>', '<c r="C2" t="str"><f>UPPER("tối mật")</f><v>TỐI MẬT</v></c>'.encode())}), XLSX)]))
    add("xlsx-custom-property", message("Quân số", attachments=[("qs6.xlsx", xlsx(rows, extra_parts={"docProps/custom.xml": custom_properties({"Độ mật": "Tuyệt mật"})}), XLSX)]))
    add("xlsx-subject-ascii", message("Quân số", attachments=[("qs7.xlsx", xlsx(rows, subject="Ke hoach dien tap - TOI MAT"), XLSX)]))
    add("ods-footer-titlecase", message("Bảng tính", attachments=[("qs.ods", ods(rows, footer="Tối mật"), ODS)]))
    add("ods-named-range", message("Bảng tính", attachments=[("qs2.ods", ods(rows, named_range="TUYET_MAT"), ODS)]))
    add("ods-keywords", message("Bảng tính", attachments=[("qs3.ods", ods(rows, keywords="TỐI MẬT"), ODS)]))
    add("odt-keywords-ascii", message("Văn bản", attachments=[("kh.odt", odt(BODY2, keywords="MAT"), ODT)]))
    add("pdf-xmp-subject-ascii", message("Kế hoạch", attachments=[("kh.pdf", pdf(BODY2, xmp_subject="TOI MAT"), "application/pdf")]))
    add("pdf-title-mat", message("Kế hoạch", attachments=[("kh2.pdf", pdf(BODY2, title="Mật"), "application/pdf")]))
    add("pdf-titlecase-line", message("Kế hoạch", attachments=[("kh3.pdf", pdf(HEAD2 + ["Mật"] + BODY2), "application/pdf")]))
    add("docx-comment-free-header", message("Kế hoạch", attachments=[("kh.docx", docx(BODY2, header="Tối mật"), DOCX)]))
    add("docx-keywords-accented", message("Kế hoạch", attachments=[("kh2.docx", docx(BODY2, keywords="Tuyệt mật"), DOCX)]))
    add("pptx-title-property", message("Trình chiếu", attachments=[("tc.pptx", repack(pptx(["Phương án", "Nội dung"]), {}, {
        "docProps/core.xml": (b"<dc:title/>", b"<dc:title>TUYET MAT - Phuong an</dc:title>")}), PPTX)]))
    add("filename-tuyet-mat-underscore", message("Kế hoạch", attachments=[("TUYET_MAT-KeHoach.docx", docx(BODY2), DOCX)]))
    add("filename-lower-rest", message("Báo cáo", attachments=[("bao-cao-MAT.pdf", pdf(BODY2), "application/pdf")]))
    add("filename-bracket-toi-mat", message("Số liệu", attachments=[("[TOI MAT] ds.xlsx", xlsx(rows), XLSX)]))
    add("filename-joined-in-zip", message("Hồ sơ", attachments=[("hs.zip", zipped({"TOIMAT_2025.docx": docx(BODY2)}), "application/zip")]))
    add("filename-number-mat", message("Quyết định", attachments=[("QD 12-MAT.docx", docx(BODY2), DOCX)]))
    add("body-titlecase-tuyet", message("Kế hoạch", "\n".join(HEAD2 + ["Tuyệt mật"] + BODY2)))
    add("html-titlecase", message("Kế hoạch", "Xem bản HTML", html="<p>BỘ CHỈ HUY QUÂN SỰ</p><p>Số: 37/KH-BCH</p><p>Tối mật</p><p>KẾ HOẠCH</p>"))
    add("subject-bracket-lower", message("[Mật] Kế hoạch diễn tập"))
    add("body-field-two-lines", message("Văn bản đến", "Số ký hiệu: 37/KH-BCH\nĐộ mật:\nMật\nĐộ khẩn: Khẩn"))
    add("docx-table-stamp", message("Kế hoạch", attachments=[("kh3.docx", docx(BODY2, table=[["Số: 37/KH-BCH", "MẬT"]]), DOCX)]))
    add("rfc822-xlsx-header", message("Fwd: số liệu", attach_message=inner("Số liệu", attachments=[("a.xlsx", xlsx(rows, header="&RTỐI MẬT"), XLSX)])))
    return s


def negatives_heldout() -> list[Sample]:
    s: list[Sample] = []

    def add(name: str, data: bytes) -> None:
        s.append(Sample(f"held-{name}", "negative", data, sender="vanthu@example.net"))

    chunks = passages()
    for i, chunk in enumerate(chunks):
        form = i % 4
        if form == 0:
            add(f"seed-rtf-{i}", message("Quy định thư điện tử", attachments=[(f"qd70-{i}.rtf", rtf_unicode(chunk.split("\n")), "application/rtf")]))
        elif form == 1:
            add(f"seed-pptx-{i}", message("Quy định", attachments=[(f"qd70-{i}.pptx", pptx(["Quy định"] + chunk.split("\n")), PPTX)]))
        elif form == 2:
            add(f"seed-ods-{i}", message("Quy định", attachments=[(f"qd70-{i}.ods", ods([[p] for p in chunk.split("\n")]), ODS)]))
        else:
            add(f"seed-b64-{i}", message("Quy định", chunk, cte="base64"))
    staff = [["TT", "Họ", "Đệm", "Tên", "Đơn vị"], ["1", "Phạm", "Thị", "Mật", "Văn phòng"], ["2", "Vũ", "Văn", "Mật", "Phòng Tổ chức"]]
    add("staff-three-columns", message("Danh sách", attachments=[("ds.xlsx", xlsx(staff, header="&CDANH SÁCH CÁN BỘ", footer="&RTIỀN MẶT: không"), XLSX)]))
    add("staff-ods", message("Danh sách", attachments=[("ds.ods", ods(staff), ODS)]))
    add("thanks-mat", message("Re: lịch họp", "Dạ em nhận được rồi ạ.\nThanks,\nMật\n0912 345 678"))
    add("levels-upper-guide", message("Tập huấn", attachments=[("taphuan.pdf", pdf(["Độ mật gồm ba mức:", "MẬT", "TỐI MẬT", "TUYỆT MẬT", "Không gửi qua thư điện tử."]), "application/pdf")]))
    add("names-mat-compounds", message("Tài liệu", attachments=[
        ("MAT_TRAN_TO_QUOC_2025.docx", docx(BODY), DOCX), ("BE MAT DUONG.pdf", pdf(BODY), "application/pdf"),
        ("tien_MAT_thang3.xlsx", xlsx([["1"]]), XLSX), ("Vang MAT.xlsx", xlsx([["1"]]), XLSX),
        ("MAT-file-export.txt", b"data", "text/plain"), ("So MAT HANG.xlsx", xlsx([["1"]]), XLSX)]))
    add("properties-compounds", message("Tài liệu", attachments=[
        ("p.docx", docx(BODY, keywords="bảo mật; mật khẩu", subject="Mat ong rung Ma Da"), DOCX),
        ("p.pdf", pdf(BODY, title="MẶT TRẬN", xmp_subject="bảo mật thông tin"), "application/pdf"),
        ("p.odt", odt(BODY, title="Giai phong MAT BANG", keywords="mật độ dân số"), ODT)]))
    add("xlsx-secret-prose", message("Quy chế", attachments=[("qc.xlsx", xlsx([["Quy chế bảo vệ bí mật nhà nước"], ["Tài liệu mật phải được quản lý tại văn thư."]],
                                                                               sheet="Bảo mật", comment="Không gửi văn bản mật qua thư điện tử."), XLSX)]))
    add("name-in-greeting", message("Chào chị Mật", "Chào chị Mật,\nEm gửi chị lịch trực tuần sau.\nEm Hoa"))
    add("heading-mat-tran", message("Thông báo", "ỦY BAN MẶT TRẬN TỔ QUỐC\nSố: 12/TB-MTTQ\nMặt trận\nTHÔNG BÁO"))
    return s


def malware_heldout() -> list[Sample]:
    s: list[Sample] = []

    def add(name: str, attachments: list[tuple[str, bytes, str]] | None = None, **kw: object) -> None:
        s.append(Sample(f"held-{name}", "malware", message("Tài liệu họp", attachments=attachments or [], **kw),  # type: ignore[arg-type]
                        sender="vanthu@example.net"))

    oct_ = "application/octet-stream"
    add("eicar-in-rfc822", attach_message=inner("Fwd", attachments=[("x.txt", EICAR, "text/plain")]))
    add("exe-in-zip-in-message", attach_message=inner("Fwd", attachments=[("a.zip", zipped({"setup.exe": b"MZ\x90\x00" + b"\x00" * 64}), "application/zip")]))
    add("bat", [("chay.bat", b"@echo off\r\ndel /q *", oct_)])
    add("iso", [("HoSo.iso", b"\x00" * 64, oct_)])
    add("xlsm", [("bang.xlsm", zipped({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<workbook/>"}), oct_)])
    add("pptx-vba", [("tc.pptx", zipped({"[Content_Types].xml": b"<Types/>", "ppt/vbaProject.bin": b"\xd0\xcf\x11\xe0"}), PPTX)])
    add("ole-xls-vba", [("cu.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 32 + "Macros".encode("utf-16-le"), "application/vnd.ms-excel")])
    add("ole-encrypted-docx", [("matkhau.docx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 32 + "EncryptedPackage".encode("utf-16-le"), DOCX)])
    add("pdf-js", [("hoadon.pdf.js", b"var x = 1;", oct_)])
    add("cmd-in-zip", [("a.zip", zipped({"thu-muc/run.cmd": b"start calc"}), "application/zip")])
    add("mz-as-jpg", [("anh.jpg", b"MZ\x90\x00\x03\x00\x00\x00", "image/jpeg")])
    add("elf", [("tool", b"\x7fELF\x02\x01\x01" + b"\x00" * 40, oct_)])
    add("msi", [("update.msi", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 32, oct_)])
    add("chm", [("help.chm", b"ITSF\x03\x00", oct_)])
    add("scr-nested", [("a.zip", zipped({"b.zip": zipped({"anh-dep.scr": b"\x00\x01"})}), "application/zip")])
    add("encrypted-zip-member", [("hs.zip", zipped({"bang-luong.xlsx": b"secret"}, encrypted=True), "application/zip")])
    return s


# -- fresh: written after the rules were final, measured once ---------------------------
BODY3 = ["BÁO CÁO", "Kết quả công tác bảo vệ an ninh nội bộ quý I năm 2025", "Thực hiện Kế hoạch số 15/KH-CA;"]


def classified_fresh() -> list[Sample]:
    s: list[Sample] = []

    def add(name: str, data: bytes) -> None:
        s.append(Sample(f"fresh-{name}", "classified", data, sender="vanthu@example.com"))

    rows = [["Nội dung", "Kết quả"], ["Rà soát cán bộ", "Hoàn thành"]]
    add("xlsx-right-header-font", message("Số liệu", attachments=[("kq.xlsx", xlsx(rows, header='&R&"Arial,Regular"&10MẬT'), XLSX)]))
    add("ods-footer-upper", message("Số liệu", attachments=[("kq.ods", ods(rows, footer="TUYỆT MẬT"), ODS)]))
    add("filename-tuyet-mat-camel", message("Báo cáo", attachments=[("BaoCao_TUYET_MAT.pdf", pdf(BODY3), "application/pdf")]))
    add("pdf-keywords-titlecase", message("Báo cáo", attachments=[("bc.pdf", pdf(BODY3, keywords="Tối mật"), "application/pdf")]))
    add("html-field-table", message("Văn bản đến", "Xem HTML", html="<table><tr><td>Độ mật:</td><td>Tối mật</td></tr><tr><td>Số:</td><td>15/BC-CA</td></tr></table>"))
    add("body-titlecase-after-number", message("Báo cáo", "\n".join(["CÔNG AN TỈNH", "Số: 15/BC-CA", "Mật", *BODY3])))
    add("xlsx-sheet-toi-mat-ascii", message("Số liệu", attachments=[("kq2.xlsx", xlsx(rows, sheet="TOI MAT"), XLSX)]))
    add("zip-odt-keywords", message("Hồ sơ", attachments=[("hs.zip", zipped({"bc.odt": odt(BODY3, keywords="TUYỆT MẬT")}), "application/zip")]))
    return s


def negatives_fresh() -> list[Sample]:
    s: list[Sample] = []

    def add(name: str, data: bytes) -> None:
        s.append(Sample(f"fresh-{name}", "negative", data, sender="vanthu@example.com"))

    add("names-mat-bang", message("Hồ sơ", attachments=[("MAT_BANG_TONG_THE.pdf", pdf(BODY), "application/pdf"),
                                                        ("Giai phong MAT bang.pdf", pdf(BODY), "application/pdf"),
                                                        ("KE_HOACH_HOP_MAT_2025.docx", docx(BODY), DOCX)]))
    add("sheet-tien-mat-header", message("Thu chi", attachments=[("tc.xlsx", xlsx([["Thu", "Chi"]], header="&CSỔ QUỸ TIỀN MẶT", sheet="TIEN MAT"), XLSX)]))
    add("keywords-bao-mat", message("Tài liệu", attachments=[("bm.pdf", pdf(BODY, keywords="Bảo mật, Mật khẩu", title="Hướng dẫn đặt mật khẩu"), "application/pdf")]))
    add("levels-in-table", message("Hướng dẫn", "Xem HTML", html="<table><tr><td>Độ mật</td><td>Ký hiệu</td></tr><tr><td>Mật</td><td>C</td></tr><tr><td>Tối mật</td><td>B</td></tr><tr><td>Tuyệt mật</td><td>A</td></tr></table>"))
    add("signature-mat-en", message("Re: report", "Thank you, I will send the report tomorrow.\nBest regards,\nMật\nOffice of the People's Committee"))
    add("decision-odt-meta", message("Quy định", attachments=[("qd70.odt", odt(passages()[5].split("\n"), title="Quy định sử dụng thư điện tử", keywords="bảo mật, mật khẩu"), ODT)]))
    return s


def malware_fresh() -> list[Sample]:
    oct_ = "application/octet-stream"
    items = [
        ("wsf", [("invoice.wsf", b"<job><script>1</script></job>", oct_)]),
        ("xlsm-in-zip", [("bc.zip", zipped({"bc.xlsm": zipped({"[Content_Types].xml": b"<Types/>"})}), "application/zip")]),
        ("exe-as-docx", [("baocao.docx", b"MZ\x90\x00" + b"\x00" * 60, DOCX)]),
        ("eicar-base64-nested", None),
    ]
    s: list[Sample] = []
    for name, attachments in items:
        if attachments is None:
            data = message("Fwd", attach_message=inner("Fwd", attachments=[("a.zip", zipped({"eicar.com": EICAR}), "application/zip")]))
        else:
            data = message("Tài liệu", attachments=attachments)
        s.append(Sample(f"fresh-{name}", "malware", data, sender="vanthu@example.com"))
    return s


SPLITS = ("tune", "heldout", "fresh")
_SEEDS = {"tune": 1818, "heldout": 7070, "fresh": 2025}


def realmail(split: str) -> list[Sample]:
    """Realistic spam and ordinary mail of one split (``tests/policy/realmail_*.py``)."""
    import random

    from tests.policy import realmail_fresh, realmail_heldout, realmail_tune

    module = {"tune": realmail_tune, "heldout": realmail_heldout, "fresh": realmail_fresh}[split]
    rng = random.Random(_SEEDS[split])
    out: list[Sample] = []
    for category, templates in (("spam", module.spam_templates()), ("negative", module.ham_templates())):
        for template in templates:
            for variant in (0, 1):
                mail = template(rng, variant)
                out.append(Sample(f"{split}-{category}-{template.__name__}-{variant}", category, mail.to_bytes(rng),
                                  sender=mail.envelope or mail.from_addr))
    return out


def build(split: str = "tune") -> list[Sample]:
    """The labelled corpus of ``split``: ``tune`` (what the rules were tuned
    on), ``heldout`` (other templates, other documents, another seed; written
    before the tuning, three rules changed after its first measurement) or
    ``fresh`` (written after the rules were final, measured once)."""
    if split == "tune":
        return classified() + negatives() + spam() + malware() + realmail("tune")
    if split == "heldout":
        return classified_heldout() + negatives_heldout() + malware_heldout() + realmail("heldout")
    if split == "fresh":
        return classified_fresh() + negatives_fresh() + malware_fresh() + realmail("fresh")
    raise ValueError(f"unknown split {split!r}")
