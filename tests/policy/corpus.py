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
         font: str | None = None, title: str | None = None) -> bytes:
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
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def xlsx(rows: list[list[str]]) -> bytes:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
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


def pdf(lines: list[str], *, title: str | None = None, pad_to: int = 0) -> bytes:
    from fpdf import FPDF

    doc = FPDF()
    doc.add_font("DejaVu", "", FONT)
    doc.set_font("DejaVu", size=12)
    doc.add_page()
    if title:
        doc.set_title(title)
    for line in lines:
        doc.cell(0, 8, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(doc.output())


def odt(paragraphs: list[str]) -> bytes:
    from odf.opendocument import OpenDocumentText
    from odf.text import P

    doc = OpenDocumentText()
    for text in paragraphs:
        doc.text.addElement(P(text=text))
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


def build() -> list[Sample]:
    return classified() + negatives() + spam() + malware()
