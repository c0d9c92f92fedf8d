# ruff: noqa: E501, RUF001 - sample mail reads best one sentence per line; homoglyphs are the point
"""The HELD-OUT set of realistic mail: the same kinds as ``realmail_tune``
(spam as Vietnamese state staff receive it, ordinary administrative mail
with hard negatives) written with other templates, other wording, other
brands and other tricks, rendered from another seed. It was written before
the spam rules were tuned and the rules were not tuned on it: its figures
are the honest ones (README, "Content policy").

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
def vneid_locked(rng: random.Random, v: int) -> Mail:
    host = f"vneid.gov.vn.{rng.choice(['dangnhap', 'baomat', 'khoiphuc'])}-{token(rng, 3)}.{rng.choice(['com', 'cc', 'top'])}"
    text = "\n".join(_vi(x, v) for x in [
        "Ung dung VNeID thong bao:",
        "Tai khoan dinh danh cua ban vua bi dang nhap tu thiet bi la (Samsung SM-A536, Ha Noi) luc 02:14.",
        "Neu khong phai ban, tai khoan se bi tam khoa sau 12 gio. Vui long khoi phuc tai khoan va xac thuc lai khuon mat tai:",
        f"https://{host}/khoi-phuc",
        "Bo Cong an - Cuc C06",
    ])
    if not v:
        text = text.replace("Ung dung VNeID thong bao", "Ứng dụng VNeID thông báo")
    return Mail("VNeID", f"canhbao@{rng.choice(['vneid-canhbao.com', host])}", "Canh bao dang nhap bat thuong tai khoan VNeID", text=text,
                envelope=f"{token(rng, 6)}@{foreign(rng)}")


def traffic_fine(rng: random.Random, v: int) -> Mail:
    plate = f"60A-{rng.randrange(100, 999)}.{rng.randrange(10, 99)}"
    host = lookalike(rng, rng.choice(["csgt", "phatnguoi", "vphc"]))
    lines = [_vi(x, v) for x in [
        "CỤC CẢNH SÁT GIAO THÔNG - BỘ CÔNG AN",
        f"Phương tiện biển kiểm soát {plate} có vi phạm hành chính được ghi nhận qua hệ thống camera giám sát (phạt nguội).",
        f"Mức phạt: {amount(rng, 800_000, 6_000_000)} đồng. Quá 10 ngày không nộp phạt sẽ bị tạm giữ phương tiện và không được đăng kiểm.",
        "Tra cứu hình ảnh vi phạm và nộp phạt trực tuyến bằng tài khoản ngân hàng:",
    ]]
    body = logo(f"https://{host}/img/csgt.png", "CSGT") + paras(lines) + button(f"https://{host}/tra-cuu?bks={plate}", _vi("Tra cứu vi phạm", v), "#b71c1c")
    return Mail(_vi("Cục CSGT - Bộ Công an", v), f"phatnguoi@{host}", _vi(f"Thông báo vi phạm giao thông (phạt nguội) - BKS {plate}", v), html=page(body))


def tax_enforce(rng: random.Random, v: int) -> Mail:
    host = foreign(rng)
    lines = [_vi(x, v) for x in [
        "Kính gửi người nộp thuế,",
        f"Cơ quan thuế đã ban hành Quyết định cưỡng chế nợ thuế số {rng.randrange(1000, 9999)}/QĐ-CCT đối với mã số thuế cá nhân của Ông/Bà do còn nợ tiền thuế và tiền chậm nộp.",
        "Ông/Bà có thể bị tạm hoãn xuất cảnh. Để tra cứu số tiền nợ và nộp ngay, vui lòng tải về ứng dụng eTax Mobile bản cập nhật dưới đây (chỉ dành cho Android).",
    ]]
    body = paras(lines) + button(f"https://{host}/etax-mobile.apk", _vi("Tải eTax Mobile", v), "#004b8d") + footer([_vi("Tổng cục Thuế - Bộ Tài chính", v)])
    return Mail(_vi("Tổng cục Thuế", v), f"cuongche.nothue@{rng.choice(['gmail.com', host])}", _vi("Quyết định cưỡng chế nợ thuế - tạm hoãn xuất cảnh", v), html=page(body))


def court_notice(rng: random.Random, v: int) -> Mail:
    site = shortener(rng) if v else f"https://{foreign(rng)}/toaan/{token(rng)}"
    text = "\n".join(_vi(x, v) for x in [
        "TÒA ÁN NHÂN DÂN TỐI CAO",
        f"Thông báo thụ lý vụ án dân sự số {rng.randrange(100, 999)}/2025/TLST-DS: ông/bà là bị đơn trong vụ kiện đòi nợ hợp đồng tín dụng.",
        "Ông/Bà được triệu tập đến phiên hòa giải. Vắng mặt không lý do sẽ bị xét xử vắng mặt và cưỡng chế thi hành án.",
        f"Xem giấy triệu tập điện tử: {site}",
        f"Thư ký Tòa án: {person(rng)} - {phone(rng)}",
    ])
    return Mail(_vi("Tòa án nhân dân", v), f"toaan.thongbao{rng.randrange(1, 99)}@{rng.choice(['yahoo.com', 'gmail.com'])}",
                _vi("Thông báo thụ lý vụ án và giấy triệu tập hòa giải", v), text=text)


def unemployment(rng: random.Random, v: int) -> Mail:
    host = lookalike(rng, rng.choice(["vssid", "baohiemxahoi"]))
    lines = [_vi(x, v) for x in [
        "Thông báo từ Bảo hiểm xã hội Việt Nam",
        f"Hồ sơ hưởng BHXH một lần / trợ cấp thất nghiệp của bạn đã được duyệt, số tiền {amount(rng, 15_000_000, 60_000_000)} đồng.",
        "Do hệ thống chi trả mới, bạn cần liên kết tài khoản ngân hàng nhận tiền và xác thực bằng mã OTP trước khi tiền được chuyển.",
    ]]
    if v:
        lines = [zero_width(x, rng) for x in lines]
    body = paras(lines) + button(f"https://{host}/lien-ket?ma={token(rng)}", _vi("Liên kết tài khoản", v), "#0d47a1") + pixel(f"https://{host}/p.png")
    return Mail("VssID - BHXH số", f"chitra@{host}", _vi("Hồ sơ hưởng trợ cấp của bạn đã được duyệt - xác nhận tài khoản nhận tiền", v), html=page(body))


def token_plugin(rng: random.Random, v: int) -> Mail:
    host = foreign(rng)
    text = "\n".join(_vi(x, v) for x in [
        "Kính gửi Quý đơn vị sử dụng chữ ký số chuyên dùng,",
        "Ban Cơ yếu Chính phủ nâng cấp hệ thống chứng thực. Các USB Token chưa cài plugin ký số phiên bản 3.0 sẽ bị vô hiệu hóa từ ngày 01/5.",
        f"Đề nghị tải và cài đặt plugin tại: http://{host}/vgca/plugin-kyso-3.0.zip",
        "Sau khi cài đặt, đăng nhập bằng mã PIN của USB Token để kích hoạt.",
        "Trung tâm Chứng thực điện tử chuyên dùng Chính phủ",
    ])
    return Mail(_vi("Ban Cơ yếu Chính phủ - VGCA", v), f"vgca.hotro@{rng.choice(['outlook.com', host])}",
                _vi("Nâng cấp plugin ký số bắt buộc cho USB Token", v), text=text)


def bank_transfer(rng: random.Random, v: int) -> Mail:
    brand, shown = rng.choice([("sacombank", "Sacombank"), ("tpbank", "TPBank"), ("vpbank", "VPBank"), ("acb", "ACB")])
    host = lookalike(rng, brand)
    money = amount(rng, 20_000_000, 90_000_000)
    lines = [
        f"Giao dịch chuyển tiền {money} VND từ tài khoản của Quý khách đang chờ xác nhận.",
        "Người nhận: NGUYEN VAN HUNG - ngân hàng MB. Thời gian: hôm nay 21:47.",
        "Nếu Quý khách KHÔNG thực hiện giao dịch này, vui lòng hủy giao dịch ngay để bảo vệ tài khoản:",
    ]
    lines = [_vi(x, v) for x in lines]
    shown_name = homoglyphs(shown, rng, 0.8) if v else shown
    body = logo(f"https://{host}/logo.png", shown) + paras(lines) + row(f'<a href="https://{host}/huy-gd?id={token(rng)}">https://ebank.{brand}.com.vn/huy-giao-dich</a>') + footer([f"{shown} - Tổng đài 24/7"])
    return Mail(shown_name, f"canhbao@{rng.choice([host, brand + '.com.vn.' + token(rng, 4) + '.top'])}", _vi(f"{shown}: Cảnh báo giao dịch {money} VND chờ xác nhận", v), html=page(body))


def wallet_locked(rng: random.Random, v: int) -> Mail:
    brand, shown = rng.choice([("vnpay", "VNPAY"), ("viettelpay", "ViettelPay"), ("momo", "MoMo")])
    host = lookalike(rng, brand)
    lines = [_vi(x, v) for x in [
        f"Ví {shown} của bạn đã bị tạm khóa do phát hiện giao dịch nghi ngờ gian lận.",
        "Để mở khóa, vui lòng xác minh danh tính (ảnh CCCD, ảnh chân dung) và nhập mã OTP trong vòng 24 giờ.",
        "Sau thời hạn trên, số dư trong ví sẽ bị phong tỏa theo quy định.",
    ]]
    body = paras(lines) + button(f"https://{host}/mo-khoa", _vi("Mở khóa ví", v), "#d81b60")
    return Mail(f"{shown} Support", f"support@{host}", _vi(f"[{shown}] Ví của bạn đã bị tạm khóa", v), html=page(body), reply_to=f"hotro.{brand}{rng.randrange(10, 99)}@gmail.com")


def mailbox_deactivation(rng: random.Random, v: int) -> Mail:
    host = foreign(rng)
    form = (f'<form action="https://{host}/verify.php" method="POST">'
            '<p>Email: <input type="text" name="u" value="nhan@dongnai.gov.vn"></p>'
            '<p>Password: <input type="password" name="p"></p><input type="submit" value="Cancel Request"></form>')
    body = paras([
        "Dear nhan@dongnai.gov.vn,",
        "We received a request to deactivate your email account. This request will be processed within 24 hours.",
        "If you did not make this request, cancel it below by confirming your current login details.",
    ]) + row(form) + footer(["IT Help Desk - dongnai.gov.vn"])
    return Mail("IT Help Desk", f"helpdesk@{rng.choice(['dongnaigov.vn', host])}", "Deactivation request received for nhan@dongnai.gov.vn", html=page(body))


def pending_messages(rng: random.Random, v: int) -> Mail:
    host = f"{token(rng, 5)}.{rng.choice(['weebly.com', 'wixsite.com', 'godaddysites.com', 'pages.dev'])}"
    rows_html = "".join(f"<tr><td>{esc(s)}</td><td>{d}</td></tr>" for s, d in [
        (_vi("Công văn hỏa tốc về việc báo cáo số liệu", v), "07/04/2025"),
        (_vi("Thông báo lương tháng 3", v), "07/04/2025"),
        (_vi("Kế hoạch kiểm tra năm 2025", v), "06/04/2025"),
    ])
    body = row("<b>Mail Delivery System</b>") + paras([_vi("Bạn có 3 thư đến đang bị giữ lại do lỗi đồng bộ máy chủ. Vui lòng đăng nhập lại để nhận các thư sau:", v)]) + row(
        f'<table border="0" cellpadding="6">{rows_html}</table>') + button(f"https://{host}/?e=nhan@dongnai.gov.vn", _vi("Nhận thư đang chờ", v), "#2e7d32")
    return Mail("Mail Delivery System", f"postmaster@{rng.choice(['dongnai-gov.vn', host])}", _vi("Bạn có 3 thư đang chờ nhận (pending)", v), html=page(body))


def lucky_customer(rng: random.Random, v: int) -> Mail:
    site = foreign(rng)
    lines = [_vi(x, v) for x in [
        "🎉🎉 XIN CHÚC MỪNG! 🎉🎉",
        "Bạn là khách hàng may mắn thứ 1.000.000 truy cập hệ thống của chúng tôi.",
        f"Phần quà dành cho bạn: 01 Samsung Galaxy S25 Ultra hoặc {amount(rng, 10_000_000, 30_000_000)}đ tiền mặt.",
        "Chỉ cần thanh toán phí giao hàng 99.000đ. Quà tặng chỉ được giữ trong 15 phút!",
    ]]
    body = paras(lines) + button(f"https://{site}/qua-tang?u={token(rng, 6)}", _vi("NHẬN QUÀ NGAY", v), "#e91e63")
    return Mail(_vi("Quà tặng tri ân", v), f"quatang@{site}", _vi("🎁 Bạn là khách hàng may mắn - nhận ngay Galaxy S25!", v), html=page(body))


def online_loan(rng: random.Random, v: int) -> Mail:
    body = paras([_vi(x, v) for x in [
        "VAY TÍN CHẤP ONLINE - DUYỆT HỒ SƠ 5 PHÚT",
        f"Hạn mức {rng.choice(['10', '20', '30'])} - 300 triệu, không cần chứng minh thu nhập, không gọi người thân.",
        "Ưu tiên giáo viên, cán bộ nhà nước, nhân viên văn phòng. Lãi suất 0% tháng đầu tiên.",
        f"Tải app hoặc nhắn Telegram @vaynhanh{token(rng, 3)} để được duyệt ngay.",
    ]]) + button(shortener(rng), _vi("ĐĂNG KÝ VAY", v), "#43a047")
    return Mail(_vi("Tín dụng online", v), f"{token(rng, 7)}@{foreign(rng)}", _vi("Vay tín chấp online 300 triệu - duyệt 5 phút, giải ngân ngay", v), html=page(body))


def betting_tips(rng: random.Random, v: int) -> Mail:
    site = f"{rng.choice(['keonhacai', 'soikeo', 'tylekeo', 'lode'])}{rng.randrange(1, 99)}.{rng.choice(['com', 'net', 'top'])}"
    text = "\n".join(_vi(x, v) for x in [
        "⚽ SOI KÈO MIỄN PHÍ - TỶ LỆ KÈO NHÀ CÁI HÔM NAY",
        "Ngoại hạng Anh, La Liga, Cúp C1: kèo chuẩn xác 90%, chuyên gia phân tích hàng đầu.",
        "Chơi lô đề online, xổ số siêu tốc, trả thưởng 1 ăn 99. Nạp rút qua ngân hàng, MoMo trong 1 phút.",
        f"Vào ngay: https://{site}/?aff={token(rng, 4)}",
    ])
    return Mail(_vi("Soi kèo 24h", v), f"tips@{site}", _vi("Kèo thơm đêm nay - tỷ lệ kèo nhà cái chuẩn 90%", v), text=text)


def guest_post(rng: random.Random, v: int) -> Mail:
    text = "\n".join([
        "Hello Team,",
        "I was checking your website dongnai.gov.vn and found 37 SEO errors that stop it from ranking on Google (broken links, slow pages, missing meta tags).",
        "We can fix them and also offer high authority guest post and backlink packages (DA 60+, dofollow) at very affordable prices.",
        "Would you like a free website audit report? Just reply with \"Yes\".",
        "Regards,",
        f"{rng.choice(['Rahul', 'Amit', 'Priya'])} | Digital Marketing Consultant",
    ])
    return Mail(rng.choice(["Rahul Sharma", "Amit Kumar", "Priya Singh"]), f"{rng.choice(['rahul', 'amit', 'priya'])}.seo{rng.randrange(10, 99)}@{rng.choice(['gmail.com', 'outlook.com'])}",
                "Re: website dongnai.gov.vn SEO errors", text=text)


def fake_certificate(rng: random.Random, v: int) -> Mail:
    text = "\n".join(_vi(x, v) for x in [
        "Kính gửi anh/chị cán bộ, công chức,",
        "Trung tâm nhận cấp chứng chỉ bồi dưỡng ngạch chuyên viên, chuyên viên chính, chứng chỉ quản lý nhà nước, lý luận chính trị trung cấp.",
        "Học online 100%, không cần lên lớp, cam kết đầu ra, có tên trong danh sách tra cứu. Phôi chuẩn do Bộ phát hành.",
        "Chi phí trọn gói từ 3,5 triệu. Hoàn tất hồ sơ trong 7 ngày, kịp nâng ngạch, bổ nhiệm.",
        f"Hotline/Zalo: {phone(rng)}",
    ])
    return Mail(_vi("Trung tâm bồi dưỡng cán bộ", v), f"daotao.cccb{rng.randrange(10, 99)}@gmail.com", _vi("Cấp nhanh chứng chỉ ngạch chuyên viên chính - không cần học", v), text=text)


def data_entry_job(rng: random.Random, v: int) -> Mail:
    lines = [_vi(x, v) for x in [
        "Tuyển 50 nhân viên nhập liệu, xem video TikTok, đánh giá khách sạn tại nhà.",
        "Thu nhập 300.000 - 700.000đ/ngày, trả lương ngay trong ngày, phù hợp sinh viên, nội trợ, người làm văn phòng muốn kiếm thêm.",
        "Chỉ cần điện thoại có kết nối mạng. Nhận việc qua Telegram, không thu phí.",
    ]]
    if v:
        lines = [homoglyphs(x, rng, 0.15) for x in lines]
    body = paras(lines) + button(f"https://t.me/+{token(rng, 16)}", "Telegram", "#229ed9")
    return Mail(_vi("Phòng nhân sự", v), f"hr.{token(rng, 5)}@{rng.choice(['gmail.com', 'hotmail.com'])}", _vi("Việc làm thêm online - 500K/ngày - trả lương trong ngày", v), html=page(body))


def scraper_tool(rng: random.Random, v: int) -> Mail:
    text = "\n".join(_vi(x, v) for x in [
        "Phần mềm quét data khách hàng từ Facebook, Zalo, Google Maps tự động.",
        "Lấy số điện thoại, email theo từ khóa, theo khu vực; tặng kèm kho data 2 triệu khách hàng có nhu cầu vay vốn, mua bảo hiểm, mua nhà.",
        "Dùng thử miễn phí 3 ngày. Bản quyền vĩnh viễn chỉ 1.990.000đ.",
        f"Liên hệ Zalo: {phone(rng)}",
    ])
    return Mail(_vi("Phần mềm Marketing", v), f"sales.{token(rng, 5)}@{foreign(rng)}", _vi("Công cụ quét data khách hàng Facebook, Zalo - tặng 2 triệu data", v), text=text)


def un_compensation(rng: random.Random, v: int) -> Mail:
    text = "\n".join([
        "ATTENTION: BENEFICIARY",
        "The United Nations Compensation Commission has approved the payment of USD $2,500,000.00 to you as a victim of internet scam.",
        "Your payment will be released through a certified ATM Master Card. Contact our delivery agent with your full name, address and a copy of your ID.",
        "Note: you are required to pay only the delivery and insurance fee of $185.",
        "Yours faithfully,",
        "Dr. Mrs. Elizabeth Morgan, Director, UN Payment Office",
    ])
    return Mail("UN Payment Office", f"un.compensation{rng.randrange(10, 99)}@{rng.choice(['gmail.com', 'aol.com', 'mail.com'])}",
                "Compensation Payment Notification", text=text, reply_to=f"atmcard.delivery{rng.randrange(10, 99)}@outlook.com")


def storage_fee(rng: random.Random, v: int) -> Mail:
    carrier, brand = rng.choice([("Giao Hàng Nhanh", "ghn"), ("J&T Express", "jtexpress"), ("Shopee Express", "spx")])
    host = lookalike(rng, brand)
    text = "\n".join(_vi(x, v) for x in [
        f"{carrier} thông báo:",
        f"Đơn hàng {token(rng, 4).upper()}{rng.randrange(100000, 999999)} giao không thành công 2 lần do không liên lạc được người nhận.",
        "Đơn hàng đang được lưu kho, phí lưu kho 15.000đ/ngày. Vui lòng xác nhận lịch giao lại và thanh toán phí tại:",
        f"https://{host}/giao-lai",
    ])
    return Mail(carrier, f"cskh@{host}", _vi(f"{carrier}: Đơn hàng giao không thành công - xác nhận giao lại", v), text=text)


def voicemail(rng: random.Random, v: int) -> Mail:
    host = f"{token(rng, 8)}.{rng.choice(['r2.dev', 'netlify.app', 'vercel.app', 'blob.core.windows.net'])}"
    body = row('<span style="font-size:18px;color:#464775">Microsoft Teams</span>') + paras([
        "You have a new voicemail message (00:47) from +84 28 3822 xxxx.",
        "Received: Monday, 7 April 2025 09:31",
        "Listen to the message in your Microsoft 365 mailbox.",
    ]) + button(f"https://{host}/voicemail/?id={token(rng, 10)}", "Play Voice Message", "#464775")
    return Mail("Microsoft Teams", f"voicemail@{rng.choice(['teams-notify.net', foreign(rng)])}", "New voicemail message from +84 28 3822 xxxx", html=page(body))


def docusign(rng: random.Random, v: int) -> Mail:
    host = lookalike(rng, "docusign")
    body = row('<b style="font-size:20px">DocuSign</b>') + paras([
        f"{person(rng)} sent you a document to review and sign.",
        "Document: Hop dong thue van phong 2025.pdf",
        "Please review and sign the document at your earliest convenience.",
    ]) + button(f"https://{host}/signing/{token(rng, 12)}", "REVIEW DOCUMENT", "#ffc820") + footer(["Do not share this email. DocuSign Inc."])
    return Mail("DocuSign via eSignature", f"dse@{host}", "Please DocuSign: Hop dong thue van phong 2025.pdf", html=page(body))


def crypto_giveaway(rng: random.Random, v: int) -> Mail:
    site = f"{rng.choice(['tesla', 'x', 'spacex'])}-{rng.choice(['giveaway', 'bonus', 'event'])}.{rng.choice(['org', 'live', 'io'])}"
    text = "\n".join([
        "ELON MUSK CRYPTO GIVEAWAY - 5,000 BTC",
        "To celebrate the launch, we are giving back to the community: send any amount of BTC or ETH to the address below and receive DOUBLE back instantly.",
        f"Participate now: https://{site}",
        "Only the first 1,000 participants. Your wallet: pending withdrawal of 0.35 BTC, confirm within 24h.",
    ])
    return Mail("Crypto Events", f"event@{site}", "Your withdrawal of 0.35 BTC is pending - confirm now", text=text)


def supplements(rng: random.Random, v: int) -> Mail:
    text = "\n".join(_vi(x, v) for x in [
        "THUỐC TĂNG CƯỜNG SINH LÝ NAM NHẬP KHẨU MỸ - HIỆU QUẢ SAU 15 PHÚT",
        "Viên uống giảm cân cấp tốc, giảm 5-7kg trong 2 tuần, không cần ăn kiêng.",
        "Giao hàng kín đáo, kiểm tra hàng trước khi thanh toán. Giảm 50% cho 100 khách hàng đầu tiên.",
        f"Đặt hàng: {shortener(rng)} hoặc gọi {phone(rng)}",
    ])
    return Mail(_vi("Nhà thuốc online", v), f"{token(rng, 6)}@{foreign(rng)}", _vi("Giảm 50% thuốc tăng cường sinh lý, giảm cân cấp tốc", v), text=text)


def sextortion_password(rng: random.Random, v: int) -> Mail:
    text = "\n".join([
        f"I know that {token(rng, 8)} is your password.",
        "I placed a spyware on your computer and recorded you while you were watching adult videos. I also have your contact list.",
        "Pay 1200 USD in Bitcoin to my wallet and I will delete everything. BTC address: 1" + token(rng, 33),
        "You have 2 days. If you go to the police, I will immediately send the recording to everyone you know.",
    ])
    return Mail("", f"{token(rng, 10)}@{rng.choice(['gmail.com', 'outlook.com', foreign(rng)])}", "Security Alert: your password was compromised", text=text)


def qr_quishing(rng: random.Random, v: int) -> Mail:
    host = foreign(rng)
    markup = (f'<html><body><p>{esc(_vi("Để tiếp tục sử dụng hộp thư công vụ, vui lòng quét mã QR bằng điện thoại để xác thực hai lớp (2FA) trước 17h hôm nay.", v))}</p>'
              f'<img src="https://{host}/qr/{token(rng, 10)}.png" width="220" height="220" alt="QR"><p>IT Support</p></body></html>')
    return Mail("IT Support", f"support@{rng.choice(['dongnai-gov.com', host])}", _vi("Bắt buộc: Xác thực 2 lớp hộp thư công vụ", v), html=markup, text_alternative=False)


def telecom_lock(rng: random.Random, v: int) -> Mail:
    brand, shown = rng.choice([("viettel", "Viettel"), ("vnpt", "VNPT"), ("mobifone", "MobiFone")])
    host = lookalike(rng, brand)
    text = "\n".join(_vi(x, v) for x in [
        f"{shown} thông báo: thuê bao của Quý khách chưa chuẩn hóa thông tin theo Nghị định 163/2024/NĐ-CP.",
        "Thuê bao sẽ bị khóa 1 chiều sau 24 giờ và khóa 2 chiều sau 48 giờ nếu không cập nhật.",
        f"Cập nhật thông tin thuê bao tại: https://{host}/chuan-hoa",
    ])
    return Mail(f"{shown} CSKH", f"cskh@{host}", _vi(f"{shown}: Thuê bao sẽ bị khóa 2 chiều - chuẩn hóa thông tin ngay", v), text=text)


def power_cut(rng: random.Random, v: int) -> Mail:
    host = lookalike(rng, rng.choice(["evn", "evnspc"]))
    body = paras([_vi(x, v) for x in [
        "TỔNG CÔNG TY ĐIỆN LỰC MIỀN NAM",
        f"Khách hàng mã PB{rng.randrange(10000000, 99999999)} còn nợ tiền điện {amount(rng, 800_000, 4_000_000)} đồng kỳ 2 và 3/2025.",
        "Theo quy định, Điện lực sẽ tạm ngừng cấp điện vào 14h00 ngày mai nếu Quý khách không thanh toán.",
        "Thanh toán ngay qua cổng thanh toán trực tuyến để tránh bị cắt điện:",
    ]]) + button(f"https://{host}/thanh-toan", _vi("Thanh toán tiền điện", v), "#f57c00")
    return Mail(_vi("Điện lực miền Nam", v), f"thongbao@{rng.choice([host, 'evn-' + foreign(rng)])}", _vi("Thông báo tạm ngừng cấp điện do nợ tiền điện", v), html=page(body))


def predatory_journal(rng: random.Random, v: int) -> Mail:
    text = "\n".join([
        "Dear Esteemed Researcher,",
        "Greetings from the International Journal of Advanced Research in Management and Social Sciences (IJARMSS), indexed in Scopus and Web of Science.",
        "We invite you to publish your paper in our upcoming issue. Fast review within 48 hours, publication within 7 days.",
        "Article processing charge: only $120 (50% discount this month). Certificate of publication provided.",
        "Submit your manuscript: editor.ijarmss@gmail.com",
    ])
    return Mail("IJARMSS Editor", f"editor.ijarmss{rng.randrange(1, 9)}@gmail.com", "Call for Papers - Scopus indexed journal - fast publication", text=text)


def charity_scam(rng: random.Random, v: int) -> Mail:
    text = "\n".join(_vi(x, v) for x in [
        "Kính gửi các nhà hảo tâm,",
        "Quỹ Thiện Nguyện Vì Miền Trung đang kêu gọi hỗ trợ khẩn cấp cho 500 hộ dân bị lũ cuốn trôi nhà cửa.",
        f"Mọi đóng góp xin chuyển khoản về tài khoản cá nhân của trưởng quỹ: {person(rng).upper()} - số tài khoản {rng.randrange(10**9, 10**10)} - ngân hàng {rng.choice(['ACB', 'MB', 'Techcombank'])}.",
        "Mỗi 100.000đ là một bữa ăn cho bà con. Xin cảm ơn tấm lòng vàng của quý vị!",
        f"Liên hệ: {phone(rng)}",
    ])
    return Mail(_vi("Quỹ Thiện Nguyện", v), f"quythiennguyen{rng.randrange(10, 99)}@gmail.com", _vi("Kêu gọi ủng hộ khẩn cấp đồng bào lũ lụt miền Trung", v), text=text)


def spam_templates() -> list[Template]:
    return [vneid_locked, traffic_fine, tax_enforce, court_notice, unemployment, token_plugin, bank_transfer,
            wallet_locked, mailbox_deactivation, pending_messages, lucky_customer, online_loan, betting_tips,
            guest_post, fake_certificate, data_entry_job, scraper_tool, un_compensation, storage_fee, voicemail,
            docusign, crypto_giveaway, supplements, sextortion_password, qr_quishing, telecom_lock, power_cut,
            predatory_journal, charity_scam]


# == ordinary administrative mail (ham) =======================================================
def award_decision(rng: random.Random, v: int) -> Mail:
    from tests.policy import corpus

    text = "\n".join([
        "Kính gửi: Các cơ quan, đơn vị có tên trong Quyết định",
        f"Văn phòng UBND tỉnh Tây Ninh gửi Quyết định số {rng.randrange(100, 999)}/QĐ-UBND về việc khen thưởng tập thể, cá nhân có thành tích xuất sắc trong công tác chuyển đổi số năm 2024.",
        "Bản giấy sẽ được gửi qua đường bưu chính công ích.",
        "Trân trọng./.",
    ])
    doc = corpus.pdf(["ỦY BAN NHÂN DÂN TỈNH TÂY NINH", "QUYẾT ĐỊNH", "Về việc khen thưởng tập thể, cá nhân", "Điều 1. Tặng Bằng khen của Chủ tịch UBND tỉnh"])
    return Mail("Văn phòng UBND tỉnh Tây Ninh", "vpubnd@tayninh.gov.vn", "Quyết định khen thưởng công tác chuyển đổi số năm 2024", text=text,
                attachments=[("QD_khenthuong.pdf", doc, "application/pdf")])


def meeting_postponed(rng: random.Random, v: int) -> Mail:
    text = "\n".join(_vi(x, v) for x in [
        "THÔNG BÁO",
        "Về việc hoãn cuộc họp giao ban công tác quý II",
        "Do Lãnh đạo Sở bận công tác đột xuất, cuộc họp giao ban dự kiến tổ chức vào 14h00 ngày 10/4/2025 được hoãn lại.",
        "Thời gian tổ chức lại sẽ được thông báo sau. Văn phòng Sở kính báo để các đơn vị biết./.",
    ])
    return Mail("Văn phòng Sở Công Thương Long An", "vanphong.sct@longan.gov.vn", _vi("Thông báo hoãn cuộc họp giao ban quý II", v), text=text)


def portal_news(rng: random.Random, v: int) -> Mail:
    esp = rng.choice(["mailjet.com", "sparkpostmail.com", "mandrillapp.com"])
    track = f"https://r.{esp}/c/{token(rng, 20)}/"
    inner = row('<h2 style="color:#b71c1c">CỔNG THÔNG TIN ĐIỆN TỬ TỈNH BÌNH DƯƠNG</h2>')
    for title in ["UBND tỉnh họp phiên thường kỳ tháng 4", "Công bố thủ tục hành chính mới lĩnh vực đất đai",
                  "Hướng dẫn người dân nộp hồ sơ trực tuyến toàn trình", "Tuyên truyền phòng, chống lừa đảo trực tuyến"]:
        inner += row(f'<a href="{track}{token(rng, 5)}">{esc(title)}</a><br><span style="color:#666">{esc(title)}. Xem chi tiết tại www.binhduong.gov.vn</span>')
    inner += footer(["Cổng Thông tin điện tử tỉnh Bình Dương"], [(f"{track}unsub", "Hủy nhận tin"), ("https://www.binhduong.gov.vn", "www.binhduong.gov.vn")])
    return Mail("Cổng TTĐT Bình Dương", "tintuc@binhduong.gov.vn", f"Bản tin Cổng TTĐT tỉnh Bình Dương số {rng.randrange(10, 99)}/2025", html=page(inner),
                envelope=f"bnc-{token(rng, 6)}@{esp}", headers={"List-Unsubscribe": f"<{track}unsub>"})


def bank_fee_notice(rng: random.Random, v: int) -> Mail:
    body = logo("https://techcombank.com/content/dam/logo.png", "Techcombank") + paras([
        "Kính gửi Quý khách,",
        "Techcombank trân trọng thông báo điều chỉnh biểu phí dịch vụ thẻ áp dụng từ ngày 01/5/2025. Chi tiết biểu phí xem tại website chính thức.",
        "Lưu ý: Techcombank không yêu cầu Quý khách cung cấp mật khẩu, mã OTP hay bấm vào đường link để cập nhật thông tin. Mọi yêu cầu như vậy đều là lừa đảo.",
    ]) + row('<a href="https://techcombank.com/bieu-phi">techcombank.com/bieu-phi</a>') + footer(["Techcombank - Hotline 1800 588 822"])
    return Mail("Techcombank", "thongbao@techcombank.com.vn", "Thông báo điều chỉnh biểu phí dịch vụ thẻ từ 01/5/2025", html=page(body))


def momo_receipt(rng: random.Random, v: int) -> Mail:
    money = amount(rng, 500_000, 3_000_000)
    body = paras([
        "Giao dịch thành công",
        f"Thanh toán học phí - Trường THCS Trần Hưng Đạo. Số tiền: {money}đ.",
        f"Mã giao dịch: {rng.randrange(10**10, 10**11)}. Thời gian: 08/04/2025 19:22.",
        "Cảm ơn bạn đã sử dụng Ví MoMo.",
    ]) + footer(["Công ty Cổ phần Dịch vụ Di Động Trực Tuyến (M_Service)"], [("https://momo.vn", "momo.vn")])
    return Mail("Ví MoMo", "no-reply@momo.vn", f"Biên lai giao dịch thanh toán {money}đ", html=page(body))


def fine_warning(rng: random.Random, v: int) -> Mail:
    text = "\n".join(_vi(x, v) for x in [
        "Công an xã Hố Nai 3 thông báo đến cán bộ, nhân dân:",
        "Xuất hiện tin nhắn, email giả mạo Cục CSGT thông báo \"phạt nguội\", kèm đường link tra cứu vi phạm và nộp phạt. Khi truy cập, người dân bị yêu cầu nhập thông tin tài khoản ngân hàng, mã OTP và bị chiếm đoạt tiền.",
        "Người dân chỉ tra cứu phạt nguội trên trang chính thức csgt.vn hoặc ứng dụng VNeID; không bấm vào link lạ, không cung cấp mã OTP.",
    ])
    return Mail("Công an xã Hố Nai 3", "conganhonai3@congan.gov.vn", _vi("Cảnh giác với thủ đoạn giả mạo thông báo phạt nguội", v), text=text)


def license_fee(rng: random.Random, v: int) -> Mail:
    text = "\n".join([
        "Chi cục Thuế khu vực Biên Hòa - Vĩnh Cửu thông báo:",
        "Các đơn vị sự nghiệp có hoạt động sản xuất kinh doanh nộp lệ phí môn bài năm 2025 chậm nhất ngày 30/01/2025.",
        "Người nộp thuế thực hiện nộp qua Cổng thông tin thuế điện tử https://thuedientu.gdt.gov.vn hoặc tại ngân hàng ủy nhiệm thu.",
    ])
    return Mail("Chi cục Thuế khu vực Biên Hòa", "ccthuebienhoa@gdt.gov.vn", "Thông báo nộp lệ phí môn bài năm 2025", text=text)


def bhxh_result(rng: random.Random, v: int) -> Mail:
    from tests.policy import corpus

    text = "\n".join([
        "BHXH thành phố Biên Hòa gửi đơn vị Thông báo kết quả đóng BHXH, BHYT, BHTN (mẫu C12-TS) tháng 3/2025.",
        "Đề nghị đơn vị kiểm tra, đối chiếu; nếu có sai lệch liên hệ cán bộ chuyên quản trước ngày 20/4.",
    ])
    return Mail("BHXH TP Biên Hòa", "bienhoa@dongnai.baohiemxahoi.gov.vn", "Thông báo kết quả đóng BHXH tháng 3/2025 (C12-TS)", text=text,
                attachments=[("C12-TS_032025.pdf", corpus.pdf(["THÔNG BÁO KẾT QUẢ ĐÓNG BHXH, BHYT, BHTN", "Tháng 3/2025"]), "application/pdf")])


def cert_training(rng: random.Random, v: int) -> Mail:
    text = "\n".join([
        "Kính gửi: Văn phòng UBND tỉnh Đồng Nai",
        "Ban Cơ yếu Chính phủ tổ chức tập huấn sử dụng chữ ký số chuyên dùng, dịch vụ chứng thực chữ ký số cho văn thư các cơ quan vào ngày 25/4/2025.",
        "Đề nghị Quý cơ quan cử 02 cán bộ tham dự, đăng ký qua hệ thống quản lý văn bản điều hành.",
        "Phần mềm ký số chính thức tải tại https://ca.gov.vn/pages/cong-cu-ho-tro.aspx.",
    ])
    return Mail("Ban Cơ yếu Chính phủ", "vanthu@bcy.gov.vn", "Tập huấn sử dụng chữ ký số chuyên dùng năm 2025", text=text)


def vneid_license(rng: random.Random, v: int) -> Mail:
    text = "\n".join(_vi(x, v) for x in [
        "Phòng Cảnh sát quản lý hành chính về trật tự xã hội hướng dẫn tích hợp giấy phép lái xe, thẻ BHYT vào tài khoản VNeID.",
        "Người dân đăng nhập ứng dụng VNeID chính thức, chọn Ví giấy tờ > Tích hợp thông tin, nhập thông tin và gửi yêu cầu.",
        "Ứng dụng VNeID không yêu cầu người dân cung cấp mật khẩu qua thư điện tử hoặc truy cập đường link.",
    ])
    return Mail("Phòng PC06 Công an tỉnh Bình Phước", "pc06@binhphuoc.congan.gov.vn", _vi("Hướng dẫn tích hợp giấy phép lái xe vào VNeID", v), text=text)


def mail_maintenance(rng: random.Random, v: int) -> Mail:
    text = "\n".join(_vi(x, v) for x in [
        "Trung tâm Dữ liệu tỉnh thông báo bảo trì hệ thống thư điện tử công vụ từ 20h00 đến 23h00 ngày 12/4/2025.",
        "Trong thời gian bảo trì, người dùng có thể không gửi, nhận được thư. Sau bảo trì, không cần đổi mật khẩu, không cần xác nhận lại tài khoản.",
        "Mọi thư yêu cầu đăng nhập lại hoặc xác nhận hộp thư trong thời gian này đều là giả mạo.",
    ])
    return Mail("Trung tâm Dữ liệu tỉnh Tây Ninh", "ttdl@tayninh.gov.vn", _vi("Thông báo bảo trì hệ thống thư điện tử công vụ ngày 12/4", v), text=text)


def ms_invoice(rng: random.Random, v: int) -> Mail:
    body = row('<span style="font-size:20px">Microsoft</span>') + paras([
        "Your invoice for Microsoft 365 Business Standard is available.",
        f"Billing period: 1 March 2025 - 31 March 2025. Amount: {amount(rng, 2_000_000, 9_000_000)} VND.",
        "You can view and download your invoice in the Microsoft 365 admin center.",
    ]) + button("https://admin.microsoft.com/Adminportal/Home#/billoverview", "View invoice", "#0078d4") + footer(
        ["Microsoft Corporation, One Microsoft Way, Redmond, WA 98052 USA"], [("https://go.microsoft.com/fwlink/?LinkId=521839", "Privacy Statement")])
    return Mail("Microsoft", "microsoft-noreply@microsoft.com", "Your Microsoft invoice is ready", html=page(body))


def dhl_delivered(rng: random.Random, v: int) -> Mail:
    awb = rng.randrange(10**9, 10**10)
    body = logo("https://www.dhl.com/content/dam/dhl/global/core/images/logos/dhl-logo.svg", "DHL") + paras([
        f"Your DHL Express shipment {awb} has been delivered.",
        "Delivered to: Van phong UBND tinh Dong Nai, Bien Hoa. Signed by: LE THI HOA.",
    ]) + button(f"https://www.dhl.com/vn-en/home/tracking.html?tracking-id={awb}", "Track shipment", "#d40511")
    return Mail("DHL Express", "noreply@dhl.com", f"DHL On Demand Delivery: shipment {awb} delivered", html=page(body))


def telecom_bill(rng: random.Random, v: int) -> Mail:
    text = "\n".join(_vi(x, v) for x in [
        "Kính gửi Quý khách hàng,",
        f"Viettel Đồng Nai thông báo cước dịch vụ Internet cáp quang tháng 3/2025 của Quý khách: {amount(rng, 300_000, 2_000_000)} đồng.",
        "Quý khách thanh toán qua ứng dụng My Viettel, Viettel Money hoặc tại cửa hàng Viettel trước ngày 20/4/2025.",
        "Tra cứu hóa đơn: https://vietteltelecom.vn/tra-cuu-hoa-don",
    ])
    return Mail("Viettel Đồng Nai", "cskh.dni@viettel.com.vn", _vi("Thông báo cước dịch vụ Internet tháng 3/2025", v), text=text)


def power_schedule(rng: random.Random, v: int) -> Mail:
    text = "\n".join([
        "Công ty Điện lực Đồng Nai thông báo lịch tạm ngừng cung cấp điện để bảo trì lưới điện:",
        "- Thứ Bảy 12/4/2025, từ 07h00 đến 16h00: một phần phường Tân Phong, Trảng Dài.",
        "- Chủ Nhật 13/4/2025, từ 07h30 đến 11h30: xã Hóa An.",
        "Xem chi tiết tại https://www.cskh.evnspc.vn/TraCuu/LichNgungGiamCungCapDien",
    ])
    return Mail("Điện lực Đồng Nai", "pcdongnai@evnspc.vn", "Lịch tạm ngừng cung cấp điện tuần 15/2025", text=text)


def lottery_regulation(rng: random.Random, v: int) -> Mail:
    text = "\n".join([
        "Kính gửi: UBND các tỉnh, thành phố trực thuộc Trung ương",
        "Bộ Tài chính đề nghị tăng cường quản lý hoạt động kinh doanh xổ số, xử lý nghiêm hoạt động xổ số, lô đề, cá cược trái phép qua mạng Internet.",
        "Các công ty xổ số kiến thiết chỉ trả thưởng cho vé trúng thưởng hợp lệ, không bán vé xổ số qua mạng khi chưa được cấp phép.",
    ])
    return Mail("Vụ Tài chính ngân hàng - Bộ Tài chính", "vutcnh@mof.gov.vn", "Tăng cường quản lý hoạt động kinh doanh xổ số", text=text)


def front_relief(rng: random.Random, v: int) -> Mail:
    text = "\n".join([
        "ỦY BAN MẶT TRẬN TỔ QUỐC VIỆT NAM TỈNH ĐỒNG NAI",
        "Thư kêu gọi ủng hộ đồng bào các tỉnh miền Trung bị thiệt hại do thiên tai",
        "Ban Vận động cứu trợ tỉnh kêu gọi cán bộ, công chức, viên chức ủng hộ ít nhất một ngày lương.",
        "Tiền ủng hộ chuyển về tài khoản của Ủy ban MTTQ Việt Nam tỉnh Đồng Nai số 3761.0.1058899 tại Kho bạc Nhà nước Đồng Nai.",
        "Mọi khoản ủng hộ được công khai trên Cổng thông tin điện tử của Ủy ban MTTQ tỉnh.",
    ])
    return Mail("Ủy ban MTTQ tỉnh Đồng Nai", "mttq@mattran.dongnai.org.vn", "Thư kêu gọi ủng hộ đồng bào miền Trung bị thiệt hại do thiên tai", text=text)


def master_admission(rng: random.Random, v: int) -> Mail:
    text = "\n".join([
        "Học viện Hành chính Quốc gia thông báo tuyển sinh trình độ thạc sĩ Quản lý công năm 2025 (đợt 1).",
        "Đối tượng: cán bộ, công chức, viên chức có bằng đại học; thi tuyển các môn Cơ sở ngành, Tiếng Anh.",
        "Hồ sơ dự tuyển nộp trực tiếp tại Phân viện khu vực Tây Nguyên và TP Hồ Chí Minh đến hết ngày 15/5/2025.",
        "Chi tiết: https://www.napa.vn/tuyen-sinh",
    ])
    return Mail("Học viện Hành chính Quốc gia", "tuyensinh@napa.vn", "Thông báo tuyển sinh thạc sĩ Quản lý công năm 2025", text=text)


def internship(rng: random.Random, v: int) -> Mail:
    text = "\n".join(_vi(x, v) for x in [
        "Kính gửi Sở Nội vụ,",
        "Công ty Cổ phần Sonadezi thông báo chương trình tuyển dụng thực tập sinh kỹ thuật năm 2025 dành cho sinh viên năm cuối, mức hỗ trợ 5 triệu đồng/tháng.",
        "Đề nghị Sở hỗ trợ thông tin đến các trường đào tạo trên địa bàn. Hồ sơ gửi về phòng Nhân sự trước 30/5/2025.",
    ])
    return Mail("Sonadezi - Phòng Nhân sự", "nhansu@sonadezi.com.vn", _vi("Chương trình thực tập sinh kỹ thuật năm 2025", v), text=text)


def website_quote(rng: random.Random, v: int) -> Mail:
    text = "\n".join([
        "Chào anh Nhân,",
        "Theo trao đổi qua điện thoại sáng nay, bên em gửi anh báo giá nâng cấp cổng thông tin điện tử của Văn phòng theo Nghị định 42/2022/NĐ-CP.",
        "Tổng chi phí dự kiến 185.000.000 đồng, bao gồm chuyển đổi dữ liệu, tối ưu tốc độ và chuẩn hóa SEO cho các trang tin bài.",
        "Anh xem và góp ý giúp em, nếu cần em qua trình bày trực tiếp.",
        f"{person(rng)} - Công ty CP Giải pháp phần mềm Biên Hòa",
    ])
    return Mail(person(rng), "kinhdoanh@bienhoasoft.vn", "Báo giá nâng cấp cổng thông tin điện tử", text=text)


def itu_news(rng: random.Random, v: int) -> Mail:
    track = f"https://itu.us12.list-manage.com/track/click?u={token(rng, 16)}&id="
    inner = paras(["ITU News - April 2025", "World Telecommunication and Information Society Day 2025: digital innovation for gender equality.",
                   "New report: Measuring digital development - Facts and Figures 2025."])
    inner += button(track + token(rng, 6), "Read more", "#009cd6") + footer(["International Telecommunication Union, Place des Nations, 1211 Geneva 20"], [(track + "unsub", "unsubscribe from this list")])
    return Mail("ITU News", "itunews@itu.int", "ITU News: digital development Facts and Figures 2025", html=page(inner),
                envelope=f"bounce-mc.us12_{token(rng, 8)}@mail{rng.randrange(100, 200)}.atl121.mcdlv.net")


def journal_invite(rng: random.Random, v: int) -> Mail:
    text = "\n".join([
        "Kính gửi Quý cơ quan,",
        "Tạp chí Quản lý nhà nước trân trọng mời các nhà khoa học, cán bộ quản lý viết bài cho số chuyên đề \"Chuyển đổi số trong cơ quan hành chính nhà nước\".",
        "Bài viết dài 5.000 - 7.000 từ, gửi về tòa soạn trước ngày 30/6/2025. Tạp chí không thu phí đăng bài; tác giả được hưởng nhuận bút theo quy định.",
    ])
    return Mail("Tạp chí Quản lý nhà nước", "toasoan@qlnn.gov.vn", "Thư mời viết bài số chuyên đề Chuyển đổi số", text=text)


def progress_report(rng: random.Random, v: int) -> Mail:
    from tests.policy import corpus

    name = person(rng)
    text = "Chao anh,\nEm gui anh bang tien do du an nang cap ha tang CNTT den het thang 3. Phan mua sam thiet bi da xong 80%, con phan dao tao chua trien khai.\nAnh xem giup em nhe.\nEm " + no_marks(name.split()[-1])
    sheet = corpus.xlsx([["Hạng mục", "Tiến độ"], ["Mua sắm thiết bị", "80%"], ["Đào tạo", "0%"]])
    return Mail(name, f"{_slug(name)}.{rng.randrange(70, 99)}@gmail.com", "Gui anh tien do du an", text=text,
                attachments=[("TienDo_DuAn.xlsx", sheet, corpus.XLSX)])


def short_en(rng: random.Random, v: int) -> Mail:
    return Mail("Kenji Tanaka", "k-tanaka@jica.go.jp", "Re: schedule of the field visit",
                text="Dear Mr. Nhan,\nThank you. Tuesday 15 April at 9:00 works for us. We will arrive at the Provincial People's Committee by car.\nBest regards,\nKenji Tanaka\nJICA Vietnam Office")


def company_card(rng: random.Random, v: int) -> Mail:
    markup = ('<html><body style="margin:0"><table width="100%"><tr><td align="center">'
              '<img src="https://www.amata.com/images/ecard/happy-new-year-2025.jpg" width="600" alt="Happy New Year 2025 - AMATA Vietnam">'
              '</td></tr></table></body></html>')
    return Mail("AMATA Vietnam", "ecard@amata.com", "Chúc mừng năm mới 2025 - Happy New Year", html=markup, text_alternative=False)


def eticket(rng: random.Random, v: int) -> Mail:
    code = token(rng, 6).upper()
    body = logo("https://www.vietnamairlines.com/images/logo.png", "Vietnam Airlines") + paras([
        f"Mã đặt chỗ: {code}",
        "Hành trình: SGN - HAN, VN 210, 15/04/2025 08:00 - 10:10.",
        f"Hành khách: {no_marks(person(rng)).upper()}. Tổng tiền: {amount(rng, 2_500_000, 6_000_000)} VND.",
        "Vui lòng có mặt tại sân bay trước giờ khởi hành 90 phút.",
    ]) + button(f"https://www.vietnamairlines.com/vn/vi/manage-booking?pnr={code}", "Quản lý đặt chỗ", "#006885") + footer(
        ["Tổng công ty Hàng không Việt Nam"], [("https://www.vietnamairlines.com/vn/vi/check-in", "Làm thủ tục trực tuyến"), ("https://www.vietnamairlines.com/vn/vi/baggage", "Hành lý")])
    return Mail("Vietnam Airlines", "noreply@vietnamairlines.com", f"Xác nhận đặt chỗ - Mã đặt chỗ {code}", html=page(body))


def hotel_booking(rng: random.Random, v: int) -> Mail:
    links = "".join(f'<a href="https://secure.booking.com/{p}.html?aid={token(rng, 6)}">{t}</a><br>' for p, t in [
        ("myreservations", "Quản lý đặt phòng"), ("confirmation", "Xem xác nhận"), ("help", "Trợ giúp"), ("app", "Tải ứng dụng")])
    body = paras([
        "Đặt phòng của bạn tại Khách sạn Mường Thanh Grand Hà Nội đã được xác nhận.",
        f"Nhận phòng: 14/04/2025. Trả phòng: 16/04/2025. Tổng giá: {amount(rng, 2_000_000, 5_000_000)} VND.",
    ]) + row(links)
    return Mail("Booking.com", "noreply@booking.com", "Đặt phòng của bạn đã được xác nhận", html=page(body))


def registration_confirm(rng: random.Random, v: int) -> Mail:
    text = "\n".join([
        "Cảm ơn anh/chị đã đăng ký tham dự Hội thảo Ngày An toàn thông tin Việt Nam 2025.",
        "Mã đăng ký: ATTT2025-" + str(rng.randrange(1000, 9999)),
        "Phí tham dự: miễn phí đối với cán bộ cơ quan nhà nước.",
        "Vui lòng mang theo email này khi check-in. Chương trình chi tiết: https://vnisa.org.vn/ngay-attt-2025",
    ])
    return Mail("VNISA Events", "events@vnisa.org.vn", "Xác nhận đăng ký Ngày An toàn thông tin Việt Nam 2025", text=text)


def hospital_notice(rng: random.Random, v: int) -> Mail:
    text = "\n".join(_vi(x, v) for x in [
        "Bệnh viện Đa khoa Đồng Nai thông báo lịch khám sức khỏe định kỳ năm 2025 cho cán bộ Văn phòng UBND tỉnh:",
        "Thời gian: 7h00 - 11h00 các ngày 22, 23/4/2025. Cán bộ nhịn ăn sáng để xét nghiệm máu.",
        "Kết quả khám được trả qua thư điện tử và ứng dụng của Bệnh viện.",
    ])
    return Mail("Bệnh viện Đa khoa Đồng Nai", "khamsuckhoe@bvdkdongnai.vn", _vi("Lịch khám sức khỏe định kỳ năm 2025", v), text=text)


def school_notice(rng: random.Random, v: int) -> Mail:
    text = "\n".join(_vi(x, v) for x in [
        "Kính gửi Quý phụ huynh,",
        "Nhà trường thông báo lịch họp phụ huynh học kỳ II vào 7h30 sáng Chủ nhật 20/4/2025 tại các phòng học.",
        "Học phí học kỳ II nộp qua tài khoản của trường hoặc ví điện tử theo thông báo riêng, không nộp qua tài khoản cá nhân.",
        "Trân trọng,",
        "Trường THCS Trần Hưng Đạo",
    ])
    return Mail("THCS Trần Hưng Đạo", "thcstranhungdao@bienhoa.edu.vn", _vi("Thông báo họp phụ huynh học kỳ II", v), text=text)


def group_digest(rng: random.Random, v: int) -> Mail:
    text = "\n".join([
        "Nhóm: Cán bộ CNTT các tỉnh Đông Nam Bộ",
        "3 chủ đề mới hôm nay:",
        "- Kinh nghiệm cấu hình DMARC cho tên miền .gov.vn (5 tin nhắn)",
        "- Có ai dùng được chữ ký số trên máy Linux chưa? (3 tin nhắn)",
        "- Cảnh báo: thư giả mạo \"hộp thư sắp đầy\" lại xuất hiện (7 tin nhắn)",
        "Xem tất cả chủ đề: https://groups.google.com/g/cntt-dongnambo",
        "Bạn nhận được thư này vì bạn đã đăng ký nhận thông báo từ nhóm Google Groups \"Cán bộ CNTT các tỉnh Đông Nam Bộ\".",
    ])
    return Mail("Cán bộ CNTT các tỉnh Đông Nam Bộ", "cntt-dongnambo+noreply@googlegroups.com", "Bản tóm tắt - 3 thông báo trong 3 chủ đề", text=text,
                envelope="cntt-dongnambo+bncBDsomething@googlegroups.com", headers={"List-Id": "<cntt-dongnambo.googlegroups.com>"})


def court_schedule(rng: random.Random, v: int) -> Mail:
    text = "\n".join([
        "Kính gửi: Sở Tài nguyên và Môi trường tỉnh Đồng Nai",
        "Tòa án nhân dân tỉnh Đồng Nai thông báo lịch mở phiên tòa sơ thẩm vụ án hành chính khiếu kiện quyết định thu hồi đất, trong đó Sở là người có quyền lợi, nghĩa vụ liên quan.",
        "Thời gian: 8h00 ngày 24/4/2025 tại trụ sở Tòa án nhân dân tỉnh. Đề nghị Sở cử đại diện tham dự; giấy triệu tập bản giấy đã được tống đạt theo quy định.",
    ])
    return Mail("Tòa án nhân dân tỉnh Đồng Nai", "vanthu.tand@toaan.gov.vn", "Thông báo lịch mở phiên tòa vụ án hành chính", text=text)


def plugin_update(rng: random.Random, v: int) -> Mail:
    text = "\n".join([
        "Cục Chứng thực số và Bảo mật thông tin thông báo phát hành phiên bản mới của phần mềm ký số vSignPDF.",
        "Quản trị viên các cơ quan tải bộ cài từ trang chính thức https://ca.gov.vn/pages/cong-cu-ho-tro.aspx và kiểm tra chữ ký số của tệp cài đặt trước khi triển khai.",
        "Cục không gửi tệp cài đặt qua thư điện tử.",
    ])
    return Mail("Cục Chứng thực số và Bảo mật thông tin", "hotro@ca.gov.vn", "Phát hành phiên bản mới phần mềm ký số vSignPDF", text=text)


def procurement(rng: random.Random, v: int) -> Mail:
    text = "\n".join([
        "Hệ thống mạng đấu thầu quốc gia thông báo: gói thầu \"Mua sắm máy chủ và thiết bị lưu trữ năm 2025\" của Văn phòng UBND tỉnh Đồng Nai đã được đăng tải.",
        f"Số TBMT: IB25{rng.randrange(10000000, 99999999)}. Thời điểm đóng thầu: 09h00 ngày 05/5/2025.",
        "Xem chi tiết: https://muasamcong.mpi.gov.vn",
    ])
    return Mail("Hệ thống mạng đấu thầu quốc gia", "thongbao@muasamcong.mpi.gov.vn", "Thông báo mời thầu đã đăng tải", text=text)


def ms_webinar(rng: random.Random, v: int) -> Mail:
    body = paras([
        "Microsoft Việt Nam trân trọng kính mời Quý cơ quan tham dự hội thảo trực tuyến \"Bảo mật danh tính và phòng chống tấn công giả mạo cho khu vực công\".",
        "Thời gian: 9h00 - 11h00, Thứ Năm 24/4/2025.",
    ]) + button("https://events.microsoft.com/vi-vn/public-sector-security-2025", "Đăng ký tham dự", "#0078d4") + footer(
        ["Microsoft Vietnam, Tầng 11, tòa nhà Capital Place, Hà Nội"], [("https://privacy.microsoft.com", "Quyền riêng tư"), ("https://account.microsoft.com/unsubscribe", "Hủy đăng ký")])
    return Mail("Microsoft Việt Nam", "events@microsoft.com", "Thư mời hội thảo: Bảo mật danh tính cho khu vực công", html=page(body),
                envelope="bounce@email.microsoft.com")


def ham_templates() -> list[Template]:
    return [award_decision, meeting_postponed, portal_news, bank_fee_notice, momo_receipt, fine_warning, license_fee,
            bhxh_result, cert_training, vneid_license, mail_maintenance, ms_invoice, dhl_delivered, telecom_bill,
            power_schedule, lottery_regulation, front_relief, master_admission, internship, website_quote, itu_news,
            journal_invite, progress_report, short_en, company_card, eticket, hotel_booking, registration_confirm,
            hospital_notice, school_notice, group_digest, court_schedule, plugin_update, procurement, ms_webinar]
