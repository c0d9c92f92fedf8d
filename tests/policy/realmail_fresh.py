# ruff: noqa: E501, RUF001 - sample mail reads best one sentence per line; homoglyphs are the point
"""The FRESH set of realistic mail: written after the spam rules were final
(after the tuning on ``realmail_tune`` and the changes the held-out misses
prompted), measured once and not tuned on. Same kinds, new templates, new
wording, new brands, another seed.

Each template is ``f(rng, variant) -> Mail``; ``variant`` 1 applies the
evasions a spammer would (no diacritics, homoglyphs, zero-width characters).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from tests.policy.mailgen import (
    Mail,
    amount,
    button,
    esc,
    footer,
    foreign,
    homoglyphs,
    logo,
    lookalike,
    no_marks,
    page,
    paras,
    person,
    phone,
    pixel,
    row,
    shortener,
    token,
    zero_width,
)

Template = Callable[[random.Random, int], Mail]


def _vi(text: str, variant: int) -> str:
    return no_marks(text) if variant == 1 else text


def _slug(text: str) -> str:
    return "".join(c for c in no_marks(text).lower() if c.isalnum())


# == spam ===================================================================================
def bhyt_refund(rng: random.Random, v: int) -> Mail:
    text = "\n".join(_vi(x, v) for x in [
        "[BHXH VN] Thông báo: Quý khách có khoản hoàn trả chi phí khám chữa bệnh BHYT " + amount(rng, 600_000, 2_500_000) + "đ chưa nhận.",
        f"Vui lòng cập nhật tài khoản nhận tiền trước 23h59 hôm nay tại {shortener(rng)}",
        "Quá hạn, khoản hoàn trả sẽ bị hủy.",
    ])
    return Mail("BHXH Viet Nam", f"bhxhvn.hoantra{rng.randrange(10, 99)}@gmail.com", _vi("Hoàn trả chi phí BHYT - cập nhật tài khoản nhận tiền", v), text=text)


def chip_id(rng: random.Random, v: int) -> Mail:
    lines = [_vi(x, v) for x in [
        "Công an phường thông báo: thông tin căn cước gắn chip của công dân chưa được đồng bộ lên VNeID.",
        "Để tránh bị khóa tài khoản định danh, công dân liên hệ cán bộ hỗ trợ qua Zalo OA bên dưới để được hướng dẫn cài đặt bản cập nhật.",
        f"Cán bộ hỗ trợ: Trung úy {person(rng)} - Zalo {phone(rng)}",
    ]]
    body = paras(lines) + button(f"https://zalo.me/{rng.randrange(10**15, 10**16)}", "Zalo OA", "#0068ff")
    return Mail(_vi("Công an phường Tân Mai", v), f"congan.tanmai.{rng.randrange(1, 99)}@{rng.choice(['gmail.com', 'yahoo.com'])}",
                _vi("Thông báo đồng bộ căn cước gắn chip lên VNeID", v), html=page(body))


def tax_zip(rng: random.Random, v: int) -> Mail:
    host = foreign(rng)
    text = "\n".join(_vi(x, v) for x in [
        "Kính gửi người nộp thuế,",
        "Theo kết quả đối soát dữ liệu, Ông/Bà còn phải nộp bổ sung thuế thu nhập cá nhân năm 2024.",
        f"Tải tờ khai và thông báo nộp thuế tại: http://{host}/ToKhai_TNCN_2024.zip (mật khẩu giải nén: 2024)",
        "Chậm nộp sẽ bị tính tiền chậm nộp 0,03%/ngày và cưỡng chế theo quy định.",
    ])
    return Mail(_vi("Chi cục Thuế khu vực", v), f"thongbao@{rng.choice(['gdtvn.org', host])}", _vi("Thông báo nộp bổ sung thuế TNCN năm 2024", v), text=text)


def new_device(rng: random.Random, v: int) -> Mail:
    host = f"agribank.com.vn-{rng.choice(['dangnhap', 'baomat'])}.{rng.choice(['xyz', 'site', 'online'])}"
    lines = [_vi(x, v) for x in [
        "Tài khoản Agribank E-Mobile Banking của Quý khách vừa được đăng nhập trên thiết bị mới (iPhone 15, TP.HCM).",
        "Nếu không phải Quý khách, vui lòng bấm vào đường dẫn bên dưới để khóa thiết bị và xác minh danh tính.",
    ]]
    body = logo(f"https://{host}/img/agribank.png", "Agribank") + paras(lines) + row(f'<a href="https://{host}/khoa-thiet-bi">https://www.agribank.com.vn/khoa-thiet-bi</a>')
    return Mail(homoglyphs("Agribank", rng, 0.5) if v else "Agribank", f"canhbao@{host}", _vi("Agribank: Đăng nhập trên thiết bị mới", v), html=page(body))


def wallet_fee_refund(rng: random.Random, v: int) -> Mail:
    host = lookalike(rng, "viettelmoney")
    markup = (f'<html><body><a href="https://{host}/hoan-phi?u={token(rng)}"><img src="https://{host}/banner-hoan-phi.png" width="600" alt="Hoan phi"></a>'
              f'<p style="font-size:11px">{esc(_vi("Viettel Money hoàn phí giao dịch tháng 3", v))}</p></body></html>')
    return Mail("Viettel Money", f"uudai@{host}", _vi("Viettel Money hoàn 100% phí giao dịch tháng 3 cho bạn", v), html=markup, text_alternative=False)


def upgrade_form(rng: random.Random, v: int) -> Mail:
    host = foreign(rng)
    form = (f'<form method="post" action="http://{host}/upgrade.php"><p>{esc(_vi("Địa chỉ thư", v))}: <input name="email" value="nhan@dongnai.gov.vn"></p>'
            f'<p>{esc(_vi("Mật khẩu", v))}: <input type="password" name="pw"></p><input type="submit" value="{esc(_vi("Nâng cấp", v))}"></form>')
    body = paras([_vi(x, v) for x in [
        "Hệ thống thư điện tử đang được nâng cấp lên phiên bản mới.",
        "Hộp thư chưa nâng cấp sẽ ngừng nhận thư từ ngày mai. Vui lòng xác nhận thông tin để nâng cấp miễn phí:",
    ]]) + row(form)
    return Mail(_vi("Ban quản trị thư điện tử", v), f"noreply@{host}", _vi("Nâng cấp hộp thư - hạn chót ngày mai", v), html=page(body), text_alternative=False)


def zimbra(rng: random.Random, v: int) -> Mail:
    host = f"{token(rng, 6)}.{rng.choice(['netlify.app', 'pages.dev', 'web.app'])}"
    body = row("<b>Zimbra Collaboration Suite</b>") + paras([
        "Dear nhan@dongnai.gov.vn,",
        "Your account is scheduled for migration to the new Zimbra server. Accounts not migrated will lose all emails and contacts.",
        "Please log in to complete the migration.",
    ]) + button(f"https://{host}/zimbra/?u=nhan@dongnai.gov.vn", "Migrate my account", "#2a6ebb")
    return Mail("Zimbra Admin", f"admin@{rng.choice(['zimbra-support.com', foreign(rng)])}", "Action required: mailbox migration for nhan@dongnai.gov.vn", html=page(body))


def clearance_sale(rng: random.Random, v: int) -> Mail:
    site = foreign(rng)
    inner = row(f'<img src="https://{site}/banner-thanh-ly.jpg" width="600">', "padding:0") + paras([_vi(x, v) for x in [
        "THANH LÝ HÀNG TỒN KHO GIÁ SỐC - GIẢM ĐẾN 70%",
        "Tủ lạnh, máy giặt, điều hòa chính hãng, bảo hành 24 tháng. Số lượng có hạn, chỉ trong 3 ngày!",
        "Miễn phí giao hàng toàn quốc. Đặt hàng ngay để nhận quà tặng kèm.",
    ]]) + button(f"https://{site}/thanh-ly?utm_source=email", _vi("XEM NGAY", v), "#e53935") + footer([_vi("Bạn nhận được email này vì...", v)], [(f"https://{site}/unsub", "Unsubscribe")])
    return Mail(_vi("Siêu thị điện máy", v), f"khuyenmai@{site}", _vi("THANH LÝ KHO GIẢM ĐẾN 70% - CHỈ 3 NGÀY!!!", v), html=page(inner))


def civil_loan(rng: random.Random, v: int) -> Mail:
    text = "\n".join(zero_width(_vi(x, v), rng) if v else x for x in [
        "Gói vay ưu đãi dành riêng cho cán bộ, công chức, viên chức:",
        f"- Hạn mức đến {rng.choice(['300', '500'])} triệu, không cần tài sản đảm bảo, chỉ cần CCCD và bảng lương.",
        "- Lãi suất từ 0,8%/tháng, giải ngân trong 24h, hồ sơ bảo mật.",
        f"Liên hệ chuyên viên tư vấn qua Zalo: {phone(rng)}",
    ])
    return Mail(_vi("Tư vấn tài chính", v), f"{token(rng, 6)}.taichinh@{rng.choice(['gmail.com', foreign(rng)])}", _vi("Gói vay ưu đãi cho cán bộ công chức - giải ngân 24h", v), text=text)


def card_game(rng: random.Random, v: int) -> Mail:
    site = f"{rng.choice(['gamebai', 'doithuong', 'nohu', 'rikvip'])}{rng.randrange(10, 99)}.{rng.choice(['club', 'vip', 'fun'])}"
    text = "\n".join(homoglyphs(_vi(x, v), rng, 0.2) if v else x for x in [
        "GAME BÀI ĐỔI THƯỞNG UY TÍN - TẶNG CODE 50K",
        "Nổ hũ, tài xỉu, bắn cá đổi thưởng, rút tiền về ngân hàng trong 2 phút.",
        f"Nhập code tân thủ: {token(rng, 6).upper()} tại https://{site}",
    ])
    return Mail(_vi("Cổng game đổi thưởng", v), f"{token(rng, 6)}@{foreign(rng)}", _vi("Tặng code 50K - game bài đổi thưởng uy tín", v), text=text)


def pr_service(rng: random.Random, v: int) -> Mail:
    text = "\n".join(_vi(x, v) for x in [
        "Chào anh/chị,",
        "Bên em nhận viết bài PR, đăng báo điện tử (Dân trí, VietnamNet, Kenh14), tăng like/follow fanpage, đẩy top Google cho website của đơn vị.",
        "Báo giá đăng báo chỉ từ 3 triệu/bài, cam kết index Google trong 24h, hỗ trợ backlink miễn phí.",
        f"Zalo: {phone(rng)} - Ms {rng.choice(['Ngọc', 'Hà', 'My'])}",
    ])
    return Mail(_vi("Dịch vụ truyền thông", v), f"pr.baochi{rng.randrange(10, 99)}@gmail.com", _vi("Báo giá đăng bài PR báo điện tử và SEO top Google", v), text=text)


def license_no_exam(rng: random.Random, v: int) -> Mail:
    text = "\n".join(_vi(x, v) for x in [
        "Nhận làm bằng lái xe A1, A2, B2, C không cần thi, có hồ sơ gốc, tra cứu được trên hệ thống.",
        "Nhận làm bằng đại học, bằng cấp 3, chứng chỉ hành nghề. Giao tận nơi, kiểm tra rồi thanh toán.",
        f"Hotline/Zalo: {phone(rng)}",
    ])
    return Mail(_vi("Dịch vụ giấy tờ", v), f"{token(rng, 7)}@{rng.choice(['gmail.com', 'hotmail.com'])}", _vi("Bằng lái xe không cần thi - có hồ sơ gốc", v), text=text)


def packing_job(rng: random.Random, v: int) -> Mail:
    body = paras([_vi(x, v) for x in [
        "Công ty cần tuyển 30 người đóng gói hàng tại nhà (kẹp tóc, vòng tay), làm việc tại nhà, không cần kinh nghiệm.",
        "Thu nhập 6-9 triệu/tháng, ứng trước lương 50%. Chỉ cần đặt cọc nguyên liệu 500.000đ, hoàn lại khi giao hàng.",
        f"Nhắn tin Telegram @tuyendung_{token(rng, 5)} để nhận việc ngay.",
    ]]) + button(f"https://t.me/tuyendung_{token(rng, 5)}", _vi("Nhận việc", v))
    return Mail(_vi("Tuyển dụng việc làm tại nhà", v), f"{token(rng, 6)}@{foreign(rng)}", _vi("Việc làm đóng gói tại nhà - ứng trước lương", v), html=page(body))


def email_list(rng: random.Random, v: int) -> Mail:
    text = "\n".join(_vi(x, v) for x in [
        "Bán danh sách 150.000 email doanh nghiệp, cơ quan nhà nước, trường học năm 2025 (file Excel, lọc theo tỉnh).",
        "Tặng kèm phần mềm gửi email hàng loạt không vào spam. Data khách hàng cập nhật hàng tháng.",
        f"Giá trọn gói 1.500.000đ. Liên hệ: {phone(rng)} (Zalo/Telegram)",
    ])
    return Mail(_vi("Data Marketing", v), f"data.marketing{rng.randrange(10, 99)}@gmail.com", _vi("Bán data email doanh nghiệp 2025 + phần mềm gửi mail", v), text=text)


def business_proposal(rng: random.Random, v: int) -> Mail:
    text = "\n".join([
        "Greetings,",
        f"I am Mr. Chen Wei, a senior manager with a bank in Hong Kong. I have a confidential business proposal involving the transfer of US$ {rng.choice(['18.5', '22.3'])} million belonging to a deceased client.",
        "As a foreigner, you can stand as the beneficiary and we share the funds 50/50. The transaction is legal and risk free.",
        "Reply to my private email for details.",
        "Regards, Chen Wei",
    ])
    return Mail("Chen Wei", f"chenwei.hk{rng.randrange(10, 99)}@{rng.choice(['outlook.com', 'yahoo.com'])}", "Confidential business proposal", text=text,
                reply_to=f"c.wei{rng.randrange(100, 999)}@protonmail.com")


def redelivery_idn(rng: random.Random, v: int) -> Mail:
    idn = "vnpоst".encode("idna").decode() + ".com"  # Cyrillic о
    body = paras([
        "Vietnam Post: your international parcel could not be delivered due to an incomplete address.",
        "A redelivery fee of 1.50 USD applies. Please update your address and pay within 24 hours.",
    ]) + button(f"https://{idn}/redelivery", "Update address", "#f0a500")
    return Mail("Vietnam Post", f"info@{rng.choice([idn, foreign(rng)])}", "Parcel redelivery - address incomplete", html=page(body))


def storage_full(rng: random.Random, v: int) -> Mail:
    host = f"{token(rng, 6)}.{rng.choice(['wixsite.com', 'weebly.com', 'github.io'])}"
    body = row('<span style="color:#0078d4;font-size:18px">Office 365</span>') + paras([
        "Your mailbox storage is 99% full. You will stop receiving new emails.",
        "Upgrade your storage for free by verifying your account below.",
    ]) + button(f"https://{host}/", "Upgrade Storage", "#0078d4") + pixel(f"https://{host}/t.gif")
    return Mail("Office 365 Storage", f"storage-alert@{foreign(rng)}", "Mailbox storage full - nhan@dongnai.gov.vn", html=page(body))


def forex(rng: random.Random, v: int) -> Mail:
    text = "\n".join(_vi(x, v) for x in [
        "Đầu tư vàng, Forex cùng chuyên gia: lợi nhuận 15-25%/tháng, vốn từ 5 triệu.",
        "Cam kết hoàn vốn nếu thua lỗ. Tham gia nhóm Zalo kín để nhận tín hiệu giao dịch mỗi ngày.",
        f"Đăng ký: {shortener(rng)}",
    ])
    return Mail(_vi("Học viện đầu tư", v), f"{token(rng, 6)}@{foreign(rng)}", _vi("Lợi nhuận 25%/tháng với vàng và Forex", v), text=text)


def folk_medicine(rng: random.Random, v: int) -> Mail:
    text = "\n".join(_vi(x, v) for x in [
        "THUỐC GIA TRUYỀN TRỊ DỨT ĐIỂM TIỂU ĐƯỜNG, HUYẾT ÁP SAU 1 LIỆU TRÌNH",
        "Không cần dùng thuốc tây, cam kết khỏi bệnh, hoàn tiền 100% nếu không hiệu quả.",
        "Giảm 50% cho khách đặt hàng hôm nay, giao hàng kín đáo toàn quốc.",
        f"Gọi ngay: {phone(rng)}",
    ])
    return Mail(_vi("Nhà thuốc gia truyền", v), f"{token(rng, 6)}@{foreign(rng)}", _vi("Thuốc gia truyền trị dứt điểm tiểu đường - giảm 50% hôm nay", v), text=text)


def sextortion_vi(rng: random.Random, v: int) -> Mail:
    text = "\n".join(_vi(x, v) for x in [
        "Chào bạn,",
        "Tôi đã hack được thiết bị của bạn và ghi lại video qua webcam khi bạn truy cập các trang web người lớn.",
        "Tôi cũng có danh bạ email và Zalo của đồng nghiệp, người thân của bạn.",
        f"Chuyển 1.000 USD bằng Bitcoin vào ví: bc1q{token(rng, 36)} trong 48 giờ, nếu không video sẽ được gửi cho tất cả mọi người.",
    ])
    return Mail("", f"{token(rng, 9)}@{rng.choice(['gmail.com', foreign(rng)])}", _vi("Bạn cần đọc thư này ngay", v), text=text)


def lucky_money(rng: random.Random, v: int) -> Mail:
    body = paras([_vi(x, v) for x in [
        "🧧 LÌ XÌ MAY MẮN ĐẦU NĂM 🧧",
        f"Chúc mừng! Bạn nhận được lì xì {rng.choice(['888.000', '666.000'])}đ từ chương trình tri ân khách hàng.",
        "Bấm nhận lì xì và đăng nhập ngân hàng để tiền được chuyển về tài khoản ngay.",
    ]]) + button(shortener(rng), _vi("NHẬN LÌ XÌ", v), "#d32f2f")
    return Mail(_vi("Lì xì may mắn", v), f"lixi@{foreign(rng)}", _vi("🧧 Bạn nhận được lì xì 888K - nhận ngay!", v), html=page(body))


def spam_templates() -> list[Template]:
    return [bhyt_refund, chip_id, tax_zip, new_device, wallet_fee_refund, upgrade_form, zimbra, clearance_sale,
            civil_loan, card_game, pr_service, license_no_exam, packing_job, email_list, business_proposal,
            redelivery_idn, storage_full, forex, folk_medicine, sextortion_vi, lucky_money]


# == ordinary administrative mail (ham) =======================================================
def reminder_letter(rng: random.Random, v: int) -> Mail:
    from tests.policy import corpus

    text = "\n".join([
        "Kính gửi: Các sở, ban, ngành tỉnh",
        "Văn phòng UBND tỉnh Long An đôn đốc các đơn vị gửi báo cáo kết quả thực hiện Chỉ thị 02 về tăng cường bảo đảm an toàn thông tin mạng trước ngày 20/4/2025.",
        "Đề nghị các đơn vị khẩn trương thực hiện./.",
    ])
    return Mail("Văn phòng UBND tỉnh Long An", "vpubnd@longan.gov.vn", "Đôn đốc báo cáo thực hiện Chỉ thị 02 về an toàn thông tin", text=text,
                attachments=[("CV_DonDoc.docx", corpus.docx(["ỦY BAN NHÂN DÂN TỈNH LONG AN", "Số: 1234/VP-KSTT", "V/v đôn đốc báo cáo"]), corpus.DOCX)])


def duty_roster(rng: random.Random, v: int) -> Mail:
    name = person(rng)
    text = no_marks(f"Chao ca phong,\nEm gui lich truc Tet At Ty: anh Nhan truc mung 2, chi Lan mung 3, em truc mung 4. Ai doi lich thi bao em truoc ngay 25 nhe.\nEm {name.split()[-1]}")
    return Mail(name, f"{_slug(name)}{rng.randrange(80, 99)}@gmail.com", "Lich truc Tet", text=text)


def tax_bulletin(rng: random.Random, v: int) -> Mail:
    body = paras([
        "BẢN TIN THUẾ ĐIỆN TỬ - THÁNG 4/2025",
        "1. Hướng dẫn quyết toán thuế TNCN và đề nghị hoàn thuế trực tuyến trên ứng dụng eTax Mobile.",
        "2. Cảnh báo: cơ quan thuế không gửi đường link yêu cầu cung cấp mật khẩu, mã OTP; không yêu cầu cài ứng dụng từ nguồn ngoài App Store, Google Play.",
        "3. Lịch hỗ trợ người nộp thuế tại bộ phận một cửa.",
    ]) + row('<a href="https://www.gdt.gov.vn/wps/portal/home/tintuc">www.gdt.gov.vn</a>') + footer(["Cục Thuế tỉnh Bình Dương"])
    return Mail("Cục Thuế tỉnh Bình Dương", "bantin@binhduong.gdt.gov.vn", "Bản tin thuế điện tử tháng 4/2025", html=page(body))


def agribank_registered(rng: random.Random, v: int) -> Mail:
    text = "\n".join([
        "Kính gửi Quý khách,",
        "Agribank xác nhận Quý khách đã đăng ký thành công dịch vụ Agribank E-Mobile Banking ngày 08/04/2025 tại Chi nhánh Biên Hòa.",
        "Agribank không bao giờ yêu cầu Quý khách cung cấp mật khẩu, mã OTP qua điện thoại, email hay tin nhắn.",
        "Mọi thắc mắc xin liên hệ 1900 558 818 hoặc https://www.agribank.com.vn",
    ])
    return Mail("Agribank", "thongbao@agribank.com.vn", "Xác nhận đăng ký dịch vụ Agribank E-Mobile Banking", text=text)


def vneid_update(rng: random.Random, v: int) -> Mail:
    text = "\n".join(_vi(x, v) for x in [
        "Trung tâm dữ liệu quốc gia về dân cư thông báo phát hành ứng dụng VNeID phiên bản 2.1.5 với tính năng tích hợp thẻ BHYT và giấy phép lái xe.",
        "Người dân cập nhật ứng dụng qua App Store, Google Play. Không cập nhật qua đường link gửi bằng tin nhắn, email.",
        "Thông tin: https://vneid.gov.vn",
    ])
    return Mail("Trung tâm RAR - Bộ Công an", "thongbao@vneid.gov.vn", _vi("Phát hành VNeID phiên bản 2.1.5", v), text=text)


def training_invite(rng: random.Random, v: int) -> Mail:
    body = paras([
        "Kính mời Quý cơ quan cử cán bộ tham dự Hội nghị tập huấn kỹ năng nhận diện thư điện tử giả mạo, lừa đảo trực tuyến.",
        "Thời gian: 8h00 ngày 25/4/2025. Địa điểm: Hội trường Sở Thông tin và Truyền thông tỉnh Đồng Tháp.",
        "Đăng ký danh sách đại biểu:",
    ]) + row(f'<a href="https://forms.gle/{token(rng, 12)}">https://forms.gle/{token(rng, 12)}</a>')
    return Mail("Sở TT&TT Đồng Tháp", "vanthu@stttt.dongthap.gov.vn", "Thư mời tập huấn nhận diện thư điện tử giả mạo", html=page(body))


def shopee_receipt(rng: random.Random, v: int) -> Mail:
    code = token(rng, 12).upper()
    links = "".join(f'<a href="https://shopee.vn/{p}">{t}</a> | ' for p, t in [("user/purchase", "Đơn mua"), ("help", "Trợ giúp"), ("m/khuyen-mai", "Khuyến mãi"), ("app", "Tải ứng dụng")])
    body = paras([f"Đơn hàng #{code} đã được giao thành công.", f"Tổng thanh toán: {amount(rng, 150_000, 900_000)}đ.", "Cảm ơn bạn đã mua sắm tại Shopee!"]) + row(links)
    return Mail("Shopee", "info@mail.shopee.vn", f"Đơn hàng #{code} đã giao thành công", html=page(body))


def grab_receipt(rng: random.Random, v: int) -> Mail:
    body = paras(["Cảm ơn bạn đã đi GrabCar.", f"Tổng cộng: {amount(rng, 60_000, 250_000)}₫. Thanh toán: Tiền mặt.", "Từ: Sở TT&TT, 2 Nguyễn Văn Trị. Đến: Sân bay Tân Sơn Nhất."]) + footer(["Grab Vietnam"], [("https://www.grab.com/vn/", "grab.com")])
    return Mail("Grab", "no-reply@grab.com", "Biên nhận chuyến đi GrabCar của bạn", html=page(body))


def google_alert(rng: random.Random, v: int) -> Mail:
    body = paras([
        "Phát hiện lần đăng nhập mới vào Tài khoản Google của bạn",
        f"{no_marks(person(rng)).lower().replace(' ', '.')}@gmail.com",
        "Tài khoản Google của bạn vừa được đăng nhập trên một thiết bị Windows mới. Nếu đó là bạn, bạn không cần làm gì cả. Nếu không, chúng tôi sẽ giúp bạn bảo mật tài khoản.",
    ]) + button("https://accounts.google.com/AccountChooser?Email=x&continue=https://myaccount.google.com/alert/nt/1", "Kiểm tra hoạt động", "#1a73e8") + footer(
        ["Bạn nhận được email này để biết các thay đổi quan trọng đối với Tài khoản Google của bạn.", "© 2025 Google LLC"])
    return Mail("Google", "no-reply@accounts.google.com", "Cảnh báo bảo mật", html=page(body))


def teams_invite(rng: random.Random, v: int) -> Mail:
    text = "\n".join([
        "Microsoft Teams meeting",
        "Join on your computer, mobile app or room device",
        f"https://teams.microsoft.com/l/meetup-join/19%3ameeting_{token(rng, 24)}%40thread.v2/0",
        f"Meeting ID: {rng.randrange(100, 999)} {rng.randrange(100, 999)} {rng.randrange(100, 999)}",
        "Họp trực tuyến với Dự án hỗ trợ chuyển đổi số của KOICA, 10h00 thứ Năm.",
    ])
    return Mail(person(rng), f"pm.{token(rng, 4)}@koica.go.kr", "Họp trực tuyến Dự án KOICA - thứ Năm 10h", text=text)


def uni_newsletter(rng: random.Random, v: int) -> Mail:
    track = f"https://mailchi.mp/{token(rng, 8)}/"
    inner = paras(["BẢN TIN ĐẠI HỌC ĐỒNG NAI - SỐ 4/2025"])
    for title in ["Tuyển sinh đại học chính quy năm 2025", "Hội thảo khoa học về giáo dục số", "Sinh viên đạt giải Olympic Tin học"]:
        inner += row(f'<a href="https://dnpu.list-manage.com/track/click?u={token(rng, 12)}">{esc(title)}</a>')
    inner += footer(["Trường Đại học Đồng Nai"], [(f"{track}unsub", "Hủy đăng ký"), ("https://dnpu.edu.vn", "dnpu.edu.vn")])
    return Mail("Trường Đại học Đồng Nai", "bantin@dnpu.edu.vn", "Bản tin Đại học Đồng Nai số 4/2025", html=page(inner),
                envelope=f"bounce-mc.us21_{token(rng, 8)}@mail{rng.randrange(100, 200)}.sea61.mcsv.net")


def forwarded(rng: random.Random, v: int) -> Mail:
    text = "\n".join([
        "Chuyển anh Nhân để biết và phối hợp.",
        "",
        "---------- Forwarded message ---------",
        "From: Văn thư Sở Nội vụ <vanthu@snv.tayninh.gov.vn>",
        "Date: Thu, 10 Apr 2025 at 09:15",
        "Subject: Công văn về việc cử cán bộ tham gia đoàn kiểm tra",
        "Kính gửi các cơ quan, Sở Nội vụ đề nghị cử 01 cán bộ tham gia Đoàn kiểm tra công tác văn thư, lưu trữ năm 2025.",
    ])
    name = person(rng)
    return Mail(name, f"{_slug(name)}@snv.tayninh.gov.vn", "Fwd: Công văn về việc cử cán bộ tham gia đoàn kiểm tra", text=text)


def manuscript(rng: random.Random, v: int) -> Mail:
    text = "\n".join([
        "Dear Dr. Nhan,",
        "We are pleased to inform you that your manuscript \"E-government adoption in Vietnamese provinces\" has been accepted for publication in Digital Government: Research and Practice.",
        "You will receive the proofs within two weeks. There is no charge for publication in this journal.",
        "Best regards, Editorial Office",
    ])
    return Mail("Digital Government Editorial Office", "dgov-editorial@acm.org", "Decision on your manuscript DGOV-2025-0142", text=text)


def appointment(rng: random.Random, v: int) -> Mail:
    text = _vi(f"Bệnh viện Đa khoa Thống Nhất nhắc lịch hẹn tái khám của Ông/Bà vào 7h30 ngày {rng.randrange(10, 28)}/4/2025, phòng khám số 12. Vui lòng mang theo thẻ BHYT và kết quả xét nghiệm cũ.", v)
    return Mail("BV Đa khoa Thống Nhất", "lichhen@bvthongnhatdn.vn", _vi("Nhắc lịch hẹn tái khám", v), text=text)


def insurance_renewal(rng: random.Random, v: int) -> Mail:
    text = "\n".join(_vi(x, v) for x in [
        "Kính gửi Quý khách,",
        "Hợp đồng bảo hiểm vật chất xe ô tô biển số 60A-123.45 của Văn phòng sẽ hết hạn vào ngày 30/4/2025.",
        f"Phí tái tục dự kiến {amount(rng, 5_000_000, 12_000_000)} đồng. Quý khách vui lòng liên hệ cán bộ phụ trách hoặc thanh toán qua tài khoản của Bảo Việt Đồng Nai ghi trên thông báo đính kèm.",
        "Trân trọng, Bảo Việt Đồng Nai",
    ])
    return Mail("Bảo Việt Đồng Nai", "dongnai@baoviet.com.vn", _vi("Thông báo tái tục hợp đồng bảo hiểm xe ô tô", v), text=text)


def power_bill(rng: random.Random, v: int) -> Mail:
    body = paras([
        "Tổng công ty Điện lực TP.HCM thông báo tiền điện kỳ 1 tháng 4/2025.",
        f"Mã khách hàng: PE{rng.randrange(10**10, 10**11)}. Số tiền: {amount(rng, 1_000_000, 9_000_000)} đồng. Hạn thanh toán: 25/4/2025.",
        "Quý khách thanh toán qua ứng dụng EVNHCMC CSKH hoặc các ngân hàng, ví điện tử đã liên kết.",
    ]) + row('<a href="https://www.evnhcmc.vn">www.evnhcmc.vn</a>')
    return Mail("EVNHCMC", "cskh@evnhcmc.vn", "Thông báo tiền điện kỳ 1 tháng 4/2025", html=page(body))


def union_fee(rng: random.Random, v: int) -> Mail:
    text = "\n".join(_vi(x, v) for x in [
        "Công đoàn cơ sở thông báo thu đoàn phí quý II/2025.",
        "Đoàn viên chuyển khoản vào tài khoản Công đoàn cơ sở Văn phòng UBND tỉnh, số tài khoản 5901.0.1122334 tại Kho bạc Nhà nước, ghi rõ họ tên.",
        "Hạn nộp: 30/4/2025. Trân trọng.",
    ])
    return Mail("Công đoàn cơ sở Văn phòng", "congdoan.vpubnd@tayninh.gov.vn", _vi("Thông báo thu đoàn phí quý II/2025", v), text=text)


def recruitment_result(rng: random.Random, v: int) -> Mail:
    text = "\n".join([
        "Hội đồng xét tuyển viên chức Sở Y tế thông báo kết quả xét tuyển năm 2025 (danh sách đính kèm).",
        "Thí sinh trúng tuyển hoàn thiện hồ sơ và nộp trực tiếp tại Phòng Tổ chức cán bộ trước ngày 15/5/2025.",
    ])
    return Mail("Sở Y tế Bình Phước", "tccb@syt.binhphuoc.gov.vn", "Thông báo kết quả xét tuyển viên chức năm 2025", text=text)


def wedding(rng: random.Random, v: int) -> Mail:
    name = person(rng)
    markup = ('<html><body><img src="https://lh3.googleusercontent.com/thiep-cuoi.jpg" width="480" alt="Thiệp cưới">'
              f'<p>Trân trọng kính mời anh chị đến dự tiệc cưới của chúng em. {esc(name)}</p></body></html>')
    return Mail(name, f"{_slug(name)}.{rng.randrange(80, 99)}@gmail.com", "Thiệp mời đám cưới", html=markup, text_alternative=False)


def ham_templates() -> list[Template]:
    return [reminder_letter, duty_roster, tax_bulletin, agribank_registered, vneid_update, training_invite,
            shopee_receipt, grab_receipt, google_alert, teams_invite, uni_newsletter, forwarded, manuscript,
            appointment, insurance_renewal, power_bill, union_fee, recruitment_result, wedding]
