# ruff: noqa: E501, RUF001 - sample mail reads best one sentence per line; homoglyphs are the point
"""The TUNING set of realistic mail: spam as Vietnamese state staff receive it
and ordinary administrative mail with the hard negatives, written as senders
write them. The spam rules (``policy/spamrules``) were tuned on this set; the
figures that count are those of ``realmail_heldout`` (other templates, other
wording, other seed), which the rules were not tuned on.

Each template is ``f(rng, variant) -> Mail``; ``variant`` 1 applies the
evasions a spammer would (no diacritics, homoglyphs, zero-width characters).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from tests.policy.mailgen import (
    RECIPIENT_NAME,
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


# == spam ===================================================================================
def vneid(rng: random.Random, v: int) -> Mail:
    host = lookalike(rng, rng.choice(["vneid", "dichvucong", "bocongan"]))
    link = f"https://{host}/dinh-danh?ma={token(rng)}"
    lines = [
        "Kính gửi Ông/Bà,",
        "Hệ thống định danh và xác thực điện tử (VNeID) - Bộ Công an thông báo: tài khoản định danh điện tử mức 2 của Ông/Bà chưa được đồng bộ dữ liệu với Cơ sở dữ liệu quốc gia về dân cư.",
        "Để tránh bị khóa tài khoản và gián đoạn các dịch vụ công trực tuyến, đề nghị Ông/Bà cập nhật thông tin định danh trước 17h00 ngày hôm nay.",
        "Vui lòng truy cập đường dẫn dưới đây, đăng nhập bằng số CCCD và mật khẩu VNeID, sau đó nhập mã OTP được gửi về điện thoại.",
        "Trân trọng,",
        "Trung tâm dữ liệu quốc gia về dân cư - C06",
    ]
    lines = [_vi(x, v) for x in lines]
    if v:
        lines = [x.replace("VNeID", homoglyphs("VNeID", rng, 0.7)) for x in lines]
    body = logo(f"https://{host}/assets/logo-vneid.png", "VNeID") + paras(lines[:4]) + button(link, _vi("CẬP NHẬT NGAY", v), "#c8102e") + paras(lines[4:]) + pixel(f"https://{host}/o.gif?u={token(rng)}")
    return Mail(_vi("Bộ Công an - VNeID", v), f"thongbao@{rng.choice(['vneid-gov.com', 'dinhdanh-vn.net', host])}",
                _vi("[VNeID] Thông báo đồng bộ tài khoản định danh điện tử mức 2", v), html=page(body, title="VNeID"),
                envelope=f"bounce-{token(rng, 5)}@{foreign(rng)}")


def tax_refund(rng: random.Random, v: int) -> Mail:
    host = lookalike(rng, rng.choice(["thuedientu", "gdt", "tongcucthue"]))
    money = amount(rng, 2_000_000, 9_000_000)
    text = "\n".join(_vi(x, v) for x in [
        "TỔNG CỤC THUẾ - CỤC THUẾ TỈNH ĐỒNG NAI",
        "THÔNG BÁO HOÀN THUẾ THU NHẬP CÁ NHÂN NĂM 2024",
        f"Qua kết quả quyết toán thuế TNCN, Ông/Bà được hoàn số tiền thuế nộp thừa là {money} VNĐ.",
        "Khoản hoàn thuế sẽ bị hủy nếu Ông/Bà không xác nhận thông tin tài khoản ngân hàng nhận tiền trong vòng 48 giờ.",
        f"Xác nhận hồ sơ hoàn thuế tại: https://{host}/hoan-thue/xac-nhan?hs={token(rng)}",
        "Lưu ý: chuẩn bị ảnh CCCD hai mặt và thẻ ngân hàng để xác thực.",
        "Đây là thư tự động, vui lòng không trả lời thư này.",
    ])
    return Mail(_vi("Cục Thuế tỉnh Đồng Nai", v), f"hoanthue@{rng.choice(['gdt-gov.vn.com', 'thue-vn.org', 'mail.' + foreign(rng)])}",
                _vi(f"Thông báo hoàn thuế TNCN - Mã hồ sơ HT{rng.randrange(100000, 999999)}", v), text=text)


def summons(rng: random.Random, v: int) -> Mail:
    case = f"{rng.randrange(100, 999)}/2025/CSĐT"
    site = foreign(rng)
    lines = [_vi(x, v) for x in [
        "CÔNG AN THÀNH PHỐ HÀ NỘI - CƠ QUAN CẢNH SÁT ĐIỀU TRA",
        f"GIẤY TRIỆU TẬP (Lần 2) - Số: {case}",
        f"Cơ quan Cảnh sát điều tra triệu tập ông/bà {person(rng)} có liên quan đến vụ án đường dây rửa tiền và lừa đảo chiếm đoạt tài sản đang được điều tra.",
        "Tài khoản ngân hàng của ông/bà có dấu hiệu nhận tiền từ đường dây trên và sẽ bị phong tỏa để phục vụ điều tra.",
        "Nếu không thể có mặt, ông/bà phải liên hệ ngay cán bộ thụ lý để được hướng dẫn làm việc trực tuyến, không được tiết lộ nội dung vụ án cho người thân.",
        f"Xem toàn văn giấy triệu tập và lệnh phong tỏa: https://{site}/giay-trieu-tap/{token(rng)}.html",
        f"Cán bộ thụ lý: Đại úy {person(rng)} - ĐT/Zalo: {phone(rng)}",
    ]]
    return Mail(_vi("Cơ quan CSĐT - Công an TP Hà Nội", v), f"congan.hanoi.{rng.randrange(10, 99)}@gmail.com",
                _vi(f"GIẤY TRIỆU TẬP KHẨN - VỤ ÁN SỐ {case}", v), text="\n".join(lines),
                reply_to=f"canbothuly{rng.randrange(10, 99)}@outlook.com")


def bhxh(rng: random.Random, v: int) -> Mail:
    host = lookalike(rng, rng.choice(["baohiemxahoi", "vssid", "bhxh"]))
    link = f"https://{host}/tra-cuu?cccd=&ref={token(rng)}"
    lines = [
        "BẢO HIỂM XÃ HỘI VIỆT NAM",
        "Thông báo về việc chi trả chế độ hỗ trợ một lần",
        f"Theo Nghị quyết mới của Chính phủ, người tham gia BHXH được nhận khoản hỗ trợ {amount(rng, 3_000_000, 12_000_000)} đồng.",
        "Để nhận tiền hỗ trợ, Quý vị cần cập nhật thông tin sổ BHXH và số tài khoản ngân hàng trên ứng dụng VssID trước ngày 30/6.",
        "Hồ sơ không cập nhật đúng hạn sẽ bị hủy quyền lợi.",
    ]
    lines = [_vi(x, v) for x in lines]
    body = logo(f"https://{host}/img/bhxh.png", "BHXH") + paras(lines) + button(link, _vi("Nhận hỗ trợ", v), "#005baa") + footer(["© Bảo hiểm xã hội Việt Nam"])
    return Mail(_vi("BHXH Việt Nam", v), f"no-reply@{host}", _vi("BHXH: Quý vị được nhận hỗ trợ chi trả một lần", v),
                html=page(body), envelope=f"mailer@{foreign(rng)}")


def cayeu(rng: random.Random, v: int) -> Mail:
    host = lookalike(rng, rng.choice(["bcy", "cayeu", "chungthuso"]))
    lines = [_vi(x, v) for x in [
        "Kính gửi Quý cơ quan,",
        "Ban Cơ yếu Chính phủ - Cục Chứng thực số và Bảo mật thông tin thông báo chứng thư số (chữ ký số) của Quý cơ quan sẽ hết hạn trong 3 ngày tới.",
        "Sau thời hạn trên, chứng thư số sẽ bị thu hồi và Quý cơ quan không thể ký số văn bản điện tử.",
        "Đề nghị cán bộ văn thư tải công cụ gia hạn chứng thư số và đăng nhập bằng tài khoản hộp thư công vụ để xác thực.",
    ]]
    body = paras(lines) + button(f"https://{host}/gia-han?token={token(rng, 16)}", _vi("Gia hạn chứng thư số", v), "#8b0000") + paras([_vi("Ban Cơ yếu Chính phủ", v)])
    return Mail(_vi("Ban Cơ yếu Chính phủ", v), f"chungthuso@{rng.choice(['bcy-gov.vn.net', host])}",
                _vi("Chứng thư số của Quý cơ quan sắp hết hạn - gia hạn ngay", v), html=page(body), text_alternative=False)


def bank(rng: random.Random, v: int) -> Mail:
    brand = rng.choice(["vietcombank", "bidv", "techcombank", "vietinbank", "agribank", "mbbank"])
    shown = {"vietcombank": "Vietcombank", "bidv": "BIDV", "techcombank": "Techcombank", "vietinbank": "VietinBank",
             "agribank": "Agribank", "mbbank": "MB Bank"}[brand]
    host = lookalike(rng, brand)
    link = f"https://{host}/ibanking/xac-thuc-sinh-trac-hoc?sid={token(rng, 12)}"
    lines = [
        "Kính gửi Quý khách hàng,",
        "Theo quy định của Ngân hàng Nhà nước, từ ngày 01/7 các tài khoản chưa cập nhật xác thực sinh trắc học sẽ bị tạm ngừng giao dịch trực tuyến.",
        f"Hệ thống {shown} ghi nhận tài khoản của Quý khách chưa hoàn tất xác thực.",
        "Quý khách vui lòng cập nhật ngay để tránh bị gián đoạn giao dịch chuyển tiền.",
    ]
    lines = [_vi(x, v) for x in lines]
    visible = f"https://www.{brand}.com.vn/xac-thuc"
    body = logo(f"https://{host}/static/logo.png", shown) + paras(lines) + row(f'<a href="{link}">{visible}</a>') + button(link, _vi("Xác thực ngay", v)) + footer([f"{shown} - Hotline 1900 545413"])
    name = homoglyphs(shown, rng, 0.6) if v else shown
    return Mail(name, f"ebanking@{rng.choice([host, brand + '-vn.com', 'notice.' + foreign(rng)])}",
                _vi(f"{shown}: Cập nhật xác thực sinh trắc học trước 01/07", v), html=page(body))


def ewallet(rng: random.Random, v: int) -> Mail:
    brand, shown = rng.choice([("momo", "Ví MoMo"), ("zalopay", "ZaloPay"), ("viettelmoney", "Viettel Money"), ("shopeepay", "ShopeePay")])
    link = shortener(rng) if v else f"https://{lookalike(rng, brand)}/nhan-qua"
    lines = [_vi(x, v) for x in [
        f"🎁 {shown} tri ân khách hàng thân thiết!",
        f"Tài khoản của bạn đã được chọn nhận hoàn tiền {amount(rng, 500_000, 2_000_000)}đ từ chương trình Mừng sinh nhật {shown}.",
        "Ưu đãi chỉ còn hiệu lực đến 23h59 hôm nay. Bấm vào nút bên dưới, đăng nhập ví và nhập mã OTP để nhận tiền về ví.",
    ]]
    body = paras(lines) + button(link, _vi("NHẬN TIỀN NGAY", v), "#a50064") + footer(["Bạn nhận được email này vì đã đăng ký ví."], [(link, "Hủy đăng ký")])
    return Mail(shown, f"uudai@{brand}-khuyenmai.{rng.choice(['com', 'net', 'vip'])}", _vi(f"💰 Bạn được hoàn {amount(rng, 500_000, 2_000_000)}đ vào {shown}!", v), html=page(body))


def webmail_quota(rng: random.Random, v: int) -> Mail:
    host = foreign(rng)
    link = f"https://{host}/owa/dongnai.gov.vn/?email=nhan@dongnai.gov.vn"
    text = "\n".join(_vi(x, v) for x in [
        "Thông báo từ Quản trị hệ thống thư điện tử",
        "Hộp thư nhan@dongnai.gov.vn của bạn đã sử dụng 99% dung lượng (4.98 GB / 5 GB).",
        "Các thư mới gửi đến sẽ bị trả lại và hộp thư sẽ bị tạm khóa trong 24 giờ tới.",
        f"Để tăng dung lượng miễn phí, vui lòng xác nhận tài khoản tại: {link}",
        "Bộ phận Quản trị mail - Sở Thông tin và Truyền thông",
    ])
    return Mail(_vi("Quản trị hệ thống Mail", v), f"admin@{rng.choice(['mail-dongnai.com', 'dongnai-gov.vn.net', host])}",
                _vi("Cảnh báo: Hộp thư của bạn đã đầy - hành động ngay", v), text=text)


def password_expiry(rng: random.Random, v: int) -> Mail:
    host = rng.choice(["dongnai.gov.vn." + lookalike(rng, "mail"), "webmail-dongnai-gov.vn." + rng.choice(["top", "xyz"])])
    link = f"https://{host}/keep-password"
    body = row("<b>dongnai.gov.vn</b>") + paras([_vi(x, v) for x in [
        "Mật khẩu hộp thư nhan@dongnai.gov.vn sẽ hết hạn hôm nay.",
        "Nếu bạn muốn giữ nguyên mật khẩu hiện tại, hãy bấm vào nút bên dưới. Nếu không, hệ thống sẽ tự động đăng xuất bạn.",
    ]]) + button(link, _vi("Giữ nguyên mật khẩu", v), "#1a73e8") + footer(["Email Administrator © 2025"])
    return Mail("dongnai.gov.vn", f"no-reply@{host}", _vi("Mật khẩu của bạn sẽ hết hạn trong 24 giờ", v), html=page(body),
                envelope=f"root@{foreign(rng)}")


def prize(rng: random.Random, v: int) -> Mail:
    prize_name = rng.choice(["xe máy Honda SH 150i", "iPhone 16 Pro Max", "sổ tiết kiệm 100 triệu đồng"])
    site = lookalike(rng, rng.choice(["shopee", "lazada", "tiki"]))
    lines = [_vi(x, v) for x in [
        "CHÚC MỪNG QUÝ KHÁCH!",
        f"Trong chương trình quay số may mắn tri ân khách hàng năm 2025, mã số {token(rng, 6).upper()} của Quý khách đã trúng giải Nhất: 01 {prize_name}.",
        f"Để nhận thưởng, Quý khách vui lòng hoàn tất thủ tục và nộp phí trước bạ, vận chuyển {amount(rng, 1_500_000, 3_500_000)}đ theo hướng dẫn tại {site}.",
        f"Hotline hỗ trợ nhận giải: {phone(rng)} (Zalo)",
    ]]
    subject = _vi(f"CHÚC MỪNG BẠN ĐÃ TRÚNG THƯỞNG {prize_name.upper()}!!!", v)
    body = row('<img src="https://' + site + '/banner-trung-thuong.jpg" width="600" alt="">', "padding:0") + paras(lines) + button(f"https://{site}/nhan-giai", _vi("NHẬN GIẢI", v), "#ff5722")
    return Mail(_vi("Ban tổ chức chương trình", v), f"giaithuong@{site}", subject, html=page(body))


def loan(rng: random.Random, v: int) -> Mail:
    text = "\n".join(zero_width(_vi(x, v), rng) if v else x for x in [
        f"Chào anh/chị {rng.choice(['Nhân', ''])},",
        f"✅ Hỗ trợ VAY TIỀN NHANH tới {rng.choice(['50', '80', '100'])} triệu chỉ cần CCCD, không thẩm định, không cần thế chấp.",
        "✅ Giải ngân trong 15 phút, lãi suất chỉ từ 0,9%/tháng, nợ xấu vẫn hỗ trợ.",
        "✅ Cán bộ công chức, viên chức được ưu tiên hạn mức cao.",
        f"Đăng ký ngay: {shortener(rng)}",
        f"Hoặc nhắn Zalo: {phone(rng)} - Ms {rng.choice(['Linh', 'Trang', 'Vy'])} tư vấn 24/7",
    ])
    return Mail(_vi("Tài chính nhanh 24h", v), f"hotro{rng.randrange(100, 999)}@{rng.choice(['gmail.com', 'yahoo.com', foreign(rng)])}",
                _vi("Vay nhanh 50 triệu - giải ngân trong ngày - chỉ cần CCCD", v), text=text)


def casino(rng: random.Random, v: int) -> Mail:
    brand = rng.choice(["8xbet", "fb88", "hi88", "kubet", "sv388", "789bet"])
    site = f"{brand}{rng.choice(['vn', 'vip', 'club', '.link'])}.{rng.choice(['com', 'net', 'tv'])}".replace("..", ".")
    lines = [_vi(x, v) for x in [
        f"{brand.upper()} - NHÀ CÁI UY TÍN SỐ 1 CHÂU Á",
        "🎰 Tặng ngay 100K khi đăng ký, thưởng nạp đầu 200% lên tới 20 triệu.",
        "⚽ Cá cược bóng đá, casino trực tuyến, nổ hũ, bắn cá, tài xỉu - rút tiền siêu tốc 3 phút.",
        "Hoàn trả không giới hạn mỗi ngày. Link chính thức không bị chặn:",
    ]]
    body = row(f'<a href="https://{site}/?ref={token(rng, 5)}"><img src="https://{site}/banner.gif" width="600" alt="{brand}"></a>', "padding:0") + paras(lines) + button(f"https://{site}/dang-ky", _vi("ĐĂNG KÝ NHẬN 100K", v), "#ffb300")
    return Mail(brand.upper(), f"vip@{foreign(rng)}", _vi(f"🎁 {brand.upper()} tặng 100K cho thành viên mới - nạp đầu x2", v), html=page(body))


def seo(rng: random.Random, v: int) -> Mail:
    text = "\n".join([
        "Chào bạn,",
        "Mình là Tuấn, bên dịch vụ SEO tổng thể và backlink chất lượng cao.",
        "Bên mình cung cấp: backlink báo lớn (VnExpress, Dân trí, 24h...), guest post DA 50+, backlink .edu .gov, entity social, PBN.",
        "Cam kết đẩy từ khóa lên top 1 Google sau 30 ngày, tăng traffic thật, không hiệu quả hoàn tiền 100%.",
        "Website dongnai.gov.vn của bạn đang mất nhiều traffic vì thiếu backlink. Mình có thể gửi bảng giá chi tiết?",
        f"Zalo/Telegram: {phone(rng)}",
        "Thanks & Best regards,",
        "Tuấn SEO",
    ])
    if v:
        text = "Hi,\nWe are a professional SEO agency. We provide high DA backlinks, guest posts on news sites and link building packages to rank your website dongnai.gov.vn on the first page of Google.\nOur packages start from $99/month. Reply YES for a free SEO audit and price list.\nBest regards,\nDavid - SEO Expert"
    return Mail("Tuấn SEO" if not v else "David Miller", f"seo.backlink{rng.randrange(10, 99)}@gmail.com",
                "Báo giá dịch vụ backlink & SEO top Google cho dongnai.gov.vn" if not v else "Rank dongnai.gov.vn on page 1 of Google",
                text=text)


def degree(rng: random.Random, v: int) -> Mail:
    text = "\n".join(_vi(x, v) for x in [
        "NHẬN LÀM BẰNG ĐẠI HỌC, CAO ĐẲNG, TRUNG CẤP - PHÔI THẬT 100%",
        "Bằng có hồ sơ gốc, tra cứu được trên hệ thống, không cần thi, không cần đi học.",
        "Nhận làm chứng chỉ tiếng Anh, tin học, bằng thạc sĩ phục vụ thi nâng ngạch, bổ nhiệm.",
        "Bảo mật thông tin tuyệt đối. Giao bằng tận nơi, nhận bằng mới thanh toán.",
        f"Liên hệ: {phone(rng)} (Zalo/Telegram)",
    ])
    return Mail(_vi("Dịch vụ văn bằng", v), f"lambang{rng.randrange(10, 99)}@{rng.choice(['gmail.com', foreign(rng)])}",
                _vi("Làm bằng đại học phôi thật - không cần thi - hỗ trợ nâng ngạch", v), text=text)


def job(rng: random.Random, v: int) -> Mail:
    shop = rng.choice(["Shopee", "Tiki", "Lazada", "TikTok Shop"])
    lines = [_vi(x, v) for x in [
        f"{shop} TUYỂN CỘNG TÁC VIÊN ONLINE",
        "💼 Việc nhẹ lương cao, làm tại nhà bằng điện thoại, chỉ 1-2 giờ mỗi ngày.",
        f"💵 Thu nhập {rng.choice(['500k - 1 triệu', '300k - 800k'])} mỗi ngày, nhận hoa hồng ngay sau mỗi nhiệm vụ.",
        "Công việc: chốt đơn, like sản phẩm, đánh giá shop. Không cần kinh nghiệm, không mất phí.",
        f"Nhận việc qua Telegram: @{token(rng, 6)}_hr hoặc Zalo {phone(rng)}",
    ]]
    body = paras(lines) + button(f"https://t.me/{token(rng, 8)}", _vi("NHẬN VIỆC NGAY", v), "#ee4d2d")
    subject = _vi(f"[{shop}] Tuyển CTV làm việc tại nhà - thu nhập 500K/ngày", v)
    return Mail(f"{shop} Tuyển dụng", f"tuyendung.{ascii_slug(shop)}@{rng.choice(['gmail.com', 'hotmail.com'])}", subject, html=page(body))


def ascii_slug(text: str) -> str:
    return "".join(c for c in no_marks(text).lower() if c.isalnum())


def data_sale(rng: random.Random, v: int) -> Mail:
    text = "\n".join(_vi(x, v) for x in [
        "Cung cấp DATA KHÁCH HÀNG chất lượng cao năm 2025:",
        "- Data chủ doanh nghiệp mới thành lập (tên, SĐT, email, mã số thuế)",
        "- Data khách hàng bất động sản, bảo hiểm, chứng khoán, spa, ô tô",
        "- Data cán bộ công chức, giáo viên, người có thu nhập cao theo tỉnh",
        "Lọc theo khu vực, ngành nghề, độ tuổi. Bảo hành số điện thoại sai. Giá chỉ từ 500đ/số.",
        f"Liên hệ mua data: {phone(rng)} (Zalo) - Telegram @data{token(rng, 4)}",
    ])
    return Mail(_vi("Kho Data Việt", v), f"khodata{rng.randrange(10, 99)}@{rng.choice(['gmail.com', foreign(rng)])}",
                _vi("Bán data khách hàng mới nhất 2025 - data chủ doanh nghiệp, data BĐS", v), text=text)


def advance_fee(rng: random.Random, v: int) -> Mail:
    text = "\n".join([
        "Dear Friend,",
        "I am Barrister James Williams, the personal attorney to late Mr. Robert Nguyen, a foreign contractor who died with his family in a car accident.",
        f"He left a deposit of US$ {rng.choice(['8.5', '10.5', '12.7'])} Million with a bank here and no next of kin has come forward.",
        "I am contacting you to stand as the beneficiary since you share the same surname. The funds will be shared 60/40 and this transaction is 100% risk free.",
        "Please reply with your full name, phone number and address to my private email for more details.",
        "Regards,",
        "Barrister James Williams (Esq.)",
    ])
    return Mail("Barrister James Williams", f"j.williams.chambers{rng.randrange(10, 99)}@{rng.choice(['gmail.com', 'outlook.com', 'yahoo.co.uk'])}",
                "URGENT: Inheritance Fund - Your Response Needed", text=text,
                reply_to=f"jwilliams.esq{rng.randrange(100, 999)}@protonmail.com")


def parcel(rng: random.Random, v: int) -> Mail:
    carrier, brand = rng.choice([("DHL Express", "dhl"), ("FedEx", "fedex"), ("VNPost", "vnpost")])
    host = lookalike(rng, brand)
    fee = rng.choice(["$2.99", "1.99 USD", "25.000 VNĐ"])
    lines = [
        "Your parcel is on hold",
        f"We were unable to deliver your package (tracking number {token(rng, 10).upper()}) because the customs fee of {fee} has not been paid.",
        "Please pay the fee and confirm your delivery address within 48 hours, otherwise the parcel will be returned to the sender.",
    ]
    if brand == "vnpost" or v:
        lines = ["Bưu phẩm của bạn đang bị giữ lại", f"Bưu gửi số {token(rng, 10).upper()} giao không thành công do chưa thanh toán phí vận chuyển {fee}.",
                 "Vui lòng thanh toán và xác nhận lại địa chỉ trong vòng 48 giờ, quá thời hạn bưu phẩm sẽ được hoàn trả."]
    body = logo(f"https://{host}/logo.svg", carrier) + paras(lines) + button(f"https://{host}/pay?id={token(rng)}", "Pay now / Thanh toán", "#d40511")
    return Mail(carrier, f"noreply@{rng.choice([host, 'delivery-' + foreign(rng)])}", rng.choice([f"{carrier}: Delivery failed - action required", f"{carrier}: Giao hàng không thành công"]), html=page(body))


def m365(rng: random.Random, v: int) -> Mail:
    host = rng.choice([f"{token(rng, 6)}.{rng.choice(['web.app', 'firebaseapp.com', 'workers.dev', 'glitch.me'])}", lookalike(rng, "microsoft")])
    link = f"https://{host}/common/oauth2/?login_hint=nhan@dongnai.gov.vn"
    body = row('<span style="font-size:20px;color:#0078d4">Microsoft 365</span>') + paras([
        "Your password for nhan@dongnai.gov.vn expires today.",
        "To keep using Outlook, Teams and OneDrive without interruption, keep your current password or change it now.",
    ]) + button(link, "Keep Same Password", "#0078d4") + footer(["Microsoft Corporation, One Microsoft Way, Redmond, WA 98052"])
    if v:
        body = row('<span style="font-size:18px">SharePoint</span>') + paras([
            f"{person(rng)} shared a file with you: \"Bang luong thang 3.xlsx\"",
            "This link will only work for nhan@dongnai.gov.vn. Sign in with your Microsoft account to view the document.",
        ]) + button(link, "Open", "#0078d4")
    return Mail("Microsoft 365" if not v else "SharePoint Online", f"no-reply@{rng.choice(['microsoft-365-mail.com', foreign(rng)])}",
                "Password expiry notice for nhan@dongnai.gov.vn" if not v else "A document has been shared with you", html=page(body))


def crypto(rng: random.Random, v: int) -> Mail:
    site = f"{rng.choice(['usdt', 'btc', 'binance', 'crypto'])}-{rng.choice(['airdrop', 'profit', 'earn'])}.{rng.choice(['io', 'app', 'xyz'])}"
    lines = [
        "Bitcoin is going to $200,000 and our AI trading bot earns 3-5% profit every day.",
        "Join 25,000 investors who doubled their money in 30 days. Minimum deposit only $250, withdraw any time.",
        "Claim your free 100 USDT airdrop bonus today - offer ends in 24 hours!",
    ]
    if v:
        lines = ["Đầu tư tiền ảo USDT, lợi nhuận 30% mỗi tháng, rút tiền bất cứ lúc nào.", "Nhóm Telegram VIP có chuyên gia phân tích tín hiệu, cam kết không lỗ.", "Tặng ngay 50 USDT khi đăng ký hôm nay."]
    body = paras(lines) + button(f"https://{site}/register?ref={token(rng, 6)}", "CLAIM BONUS", "#f0b90b")
    return Mail("Crypto Profit Club", f"team@{site}", "💰 Earn $5,000/week with Bitcoin - free 100 USDT bonus" if not v else "Đầu tư USDT lợi nhuận 30%/tháng", html=page(body))


def pharmacy(rng: random.Random, v: int) -> Mail:
    site = f"{rng.choice(['rx', 'meds', 'pharma', 'pills'])}{rng.choice(['shop', 'online', 'direct'])}{rng.randrange(10, 99)}.{rng.choice(['com', 'net', 'ru'])}"
    text = "\n".join([
        "Viagra 100mg - $0.89 per pill",
        "Cialis 20mg - $1.15 per pill",
        "No prescription needed! Discreet worldwide shipping, 100% satisfaction guaranteed.",
        "Lose weight fast with our FDA approved pills.",
        f"Order now: http://{site}/?id={token(rng, 5)}",
    ])
    return Mail(rng.choice(["Online Pharmacy", "Canadian Meds"]), f"sales@{site}", rng.choice(["Cheap V1agra & C1alis - no prescription", "Best prices on meds - 80% OFF"]), text=text)


def sextortion(rng: random.Random, v: int) -> Mail:
    wallet = "bc1q" + token(rng, 38)
    text = "\n".join([
        "Hello,",
        "I have to share bad news with you. A few months ago I gained access to your device through a malware on an adult website you visited.",
        "I recorded a video of you through your webcam and I have copies of all your contacts and emails.",
        f"If you want me to delete the video, send $1450 in Bitcoin to this wallet: {wallet}",
        "You have 48 hours. If I do not receive the payment, the video will be sent to all your colleagues and family.",
        "Do not reply to this email, it is not monitored.",
    ])
    return Mail("", "nhan@dongnai.gov.vn" if v else f"{token(rng, 8)}@{foreign(rng)}", "Your account has been hacked" if not v else "nhan@dongnai.gov.vn - security alert", text=text,
                envelope=f"{token(rng, 6)}@{foreign(rng)}")


def investment(rng: random.Random, v: int) -> Mail:
    lines = [_vi(x, v) for x in [
        "Mời anh/chị tham gia nhóm Zalo phân tích chứng khoán miễn phí của chuyên gia",
        "Mỗi tuần 2-3 mã cổ phiếu tiềm năng, lợi nhuận kỳ vọng 20-30%, cam kết hoàn tiền nếu thua lỗ.",
        "Đã có hơn 3.000 nhà đầu tư tham gia và có lãi. Số lượng thành viên có hạn!",
    ]]
    link = f"https://zalo.me/g/{token(rng, 8)}"
    body = paras(lines) + button(link, _vi("VÀO NHÓM NGAY", v))
    return Mail(_vi("Chuyên gia chứng khoán", v), f"{token(rng, 6)}@{foreign(rng)}", _vi("Cổ phiếu tăng trần tuần tới - vào nhóm nhận mã miễn phí", v), html=page(body))


def invoice_phish(rng: random.Random, v: int) -> Mail:
    host = foreign(rng)
    form = (
        f'<html><head><title>Hóa đơn điện tử</title></head><body><h3>Đăng nhập để xem hóa đơn</h3>'
        f'<form action="https://{host}/post.php" method="post"><input type="email" name="email" value="nhan@dongnai.gov.vn">'
        '<input type="password" name="pass" placeholder="Mật khẩu email"><button type="submit">Xem hóa đơn</button></form></body></html>'
    )
    text = _vi(f"Kính gửi Quý khách hàng,\nCông ty gửi Quý khách hóa đơn điện tử số {rng.randrange(1000, 9999)} tháng 3/2025.\nVui lòng mở tệp đính kèm để xem chi tiết hóa đơn.\nTrân trọng.", v)
    return Mail(_vi("Hóa đơn điện tử", v), f"hoadon@{foreign(rng)}", _vi(f"Hóa đơn điện tử số {rng.randrange(1000, 9999)} - vui lòng kiểm tra", v),
                text=text, attachments=[(f"HoaDon_{rng.randrange(1000, 9999)}.html", form.encode(), "text/html")])


def domain_renewal(rng: random.Random, v: int) -> Mail:
    host = lookalike(rng, "vnnic")
    text = "\n".join(_vi(x, v) for x in [
        "TRUNG TÂM INTERNET VIỆT NAM - VNNIC",
        "THÔNG BÁO: Tên miền dongnai.gov.vn sắp hết hạn sử dụng.",
        "Nếu không gia hạn trước ngày 15/4/2025, tên miền sẽ bị tạm ngừng và toàn bộ email, website sẽ ngừng hoạt động.",
        f"Phí duy trì: {amount(rng, 450_000, 900_000)} đồng/năm. Thanh toán trực tuyến tại: https://{host}/gia-han",
    ])
    return Mail(_vi("VNNIC - Trung tâm Internet Việt Nam", v), f"tenmien@{host}", _vi("Khẩn: Tên miền dongnai.gov.vn sắp hết hạn", v), text=text)


def image_only(rng: random.Random, v: int) -> Mail:
    site = foreign(rng)
    markup = (f'<html><body><center><a href="https://{site}/?c={token(rng, 6)}"><img src="https://{site}/img/{token(rng, 6)}.jpg" '
              'width="600" height="800" alt="Khuyen mai"></a><br>'
              f'<a href="https://{site}/unsub" style="font-size:9px;color:#999">unsubscribe</a></center></body></html>')
    return Mail(rng.choice(["Ưu đãi hôm nay", "Deal Hot"]), f"promo@{site}", rng.choice(["Ưu đãi cuối tuần - giảm đến 70%", "Chỉ hôm nay!!!"]),
                html=markup, text_alternative=False)


def spam_templates() -> list[Template]:
    return [vneid, tax_refund, summons, bhxh, cayeu, bank, ewallet, webmail_quota, password_expiry, prize, loan,
            casino, seo, degree, job, data_sale, advance_fee, parcel, m365, crypto, pharmacy, sextortion,
            investment, invoice_phish, domain_renewal, image_only]


# == ordinary administrative mail (ham) =======================================================
AGENCIES = [("Sở Tài chính tỉnh Bình Dương", "stc.binhduong.gov.vn"), ("UBND huyện Long Thành", "longthanh.gov.vn"),
            ("Sở Nội vụ tỉnh Bà Rịa - Vũng Tàu", "snv.baria-vungtau.gov.vn"), ("Văn phòng Bộ Nội vụ", "moha.gov.vn"),
            ("Sở Giáo dục và Đào tạo TP Hồ Chí Minh", "hcm.edu.vn"), ("Cục Thống kê tỉnh Bình Phước", "gso.gov.vn")]


def official_letter(rng: random.Random, v: int) -> Mail:
    from tests.policy import corpus

    agency, domain = AGENCIES[rng.randrange(len(AGENCIES))]
    number = f"{rng.randrange(100, 2000)}/{rng.choice(['STC-NS', 'UBND-VP', 'SNV-TCBC', 'BNV-VP'])}"
    subject = rng.choice(["V/v đề nghị cung cấp số liệu phục vụ báo cáo quý I năm 2025", "V/v góp ý dự thảo Quy chế quản lý, sử dụng hệ thống thư điện tử"])
    text = "\n".join([
        "Kính gửi: Văn phòng UBND tỉnh Đồng Nai",
        f"{agency} gửi kèm theo Công văn số {number} ngày {rng.randrange(1, 28)}/3/2025 {subject[4:].lower()}.",
        "Đề nghị Quý cơ quan xem xét, phản hồi bằng văn bản trước ngày 15/4/2025 và gửi bản điện tử về địa chỉ thư điện tử này.",
        "Văn bản điện tử có giá trị như bản giấy theo quy định; bản giấy không gửi qua đường bưu điện.",
        "Trân trọng./.",
        f"Văn thư - {agency}",
        f"ĐT: 0251.{rng.randrange(3800000, 3899999)}",
    ])
    doc = corpus.docx(["ỦY BAN NHÂN DÂN", f"Số: {number}", subject, "Kính gửi: Văn phòng UBND tỉnh Đồng Nai",
                       "Thực hiện chỉ đạo của UBND tỉnh về việc bảo đảm an toàn, bảo mật thông tin trong cơ quan nhà nước, đề nghị Quý cơ quan phối hợp."])
    return Mail(f"Văn thư {agency}", f"vanthu@{domain}", subject, text=text, attachments=[(f"CV{number.split('/')[0]}.docx", doc, corpus.DOCX)])


def meeting(rng: random.Random, v: int) -> Mail:
    when = f"{rng.choice(['08 giờ 00', '14 giờ 00', '09 giờ 30'])} ngày {rng.randrange(2, 28)}/4/2025"
    text = "\n".join(_vi(x, v) for x in [
        "GIẤY MỜI",
        "Họp triển khai kế hoạch chuyển đổi số năm 2025",
        f"Thời gian: {when}.",
        "Địa điểm: Phòng họp số 2, Trụ sở Sở Thông tin và Truyền thông, số 2 Nguyễn Văn Trị, TP Biên Hòa.",
        "Thành phần: Lãnh đạo và chuyên viên phụ trách công nghệ thông tin của các sở, ban, ngành.",
        "Đề nghị đại biểu đăng ký tham dự trước ngày họp và mang theo tài liệu được gửi kèm.",
        "Trân trọng kính mời./.",
    ])
    if v:
        text += "\nLink đăng ký: https://forms.gle/" + token(rng, 10)
    return Mail("Văn phòng Sở TT&TT Bình Dương", "vanphong.stttt@binhduong.gov.vn", _vi("Giấy mời họp triển khai kế hoạch chuyển đổi số năm 2025", v), text=text)


def newsletter(rng: random.Random, v: int) -> Mail:
    esp = rng.choice(["list-manage.com", "sendgrid.net", "mailchimpapp.net"])
    track = f"https://{token(rng, 5)}.{esp}/track/click?u={token(rng, 16)}&id="
    items = [("Đồng Nai đẩy mạnh giải ngân vốn đầu tư công quý II", "https://baodongnai.com.vn/kinh-te/202504/giai-ngan"),
             ("Khởi công dự án cao tốc Biên Hòa - Vũng Tàu đoạn qua Long Thành", "https://baodongnai.com.vn/thoi-su/cao-toc"),
             ("Cảnh báo thủ đoạn lừa đảo qua mạng dịp cuối năm", "https://baodongnai.com.vn/phap-luat/canh-bao-lua-dao"),
             ("Lịch cắt điện tuần tới tại các huyện", "https://baodongnai.com.vn/xa-hoi/lich-cat-dien")]
    inner = logo("https://baodongnai.com.vn/images/logo.png", "Báo Đồng Nai")
    for title, _url in items:
        inner += row(f'<a href="{track}{token(rng, 6)}" style="font-size:16px;color:#0b6e4f;font-weight:bold">{esc(title)}</a>'
                     f'<p>{esc(title)} - chi tiết trên baodongnai.com.vn.</p><img src="https://baodongnai.com.vn/thumb/{token(rng, 6)}.jpg" width="560" alt="">')
    inner += footer(["Báo Đồng Nai điện tử - Cơ quan của Đảng bộ Đảng Cộng sản Việt Nam tỉnh Đồng Nai",
                     "Bạn nhận được bản tin này vì đã đăng ký trên baodongnai.com.vn."],
                    [(f"{track}unsub", "Hủy đăng ký"), ("https://baodongnai.com.vn", "baodongnai.com.vn")]) + pixel(f"https://{token(rng, 5)}.{esp}/open.gif")
    return Mail("Báo Đồng Nai", "bantin@baodongnai.com.vn", f"Bản tin sáng {rng.randrange(1, 28)}/4: Đồng Nai đẩy mạnh giải ngân vốn đầu tư công",
                html=page(inner, preheader="Tin nổi bật trong ngày"), envelope=f"bounce-{token(rng, 6)}@{esp}",
                headers={"List-Unsubscribe": f"<{track}unsub>", "List-Id": "<bantin.baodongnai.com.vn>", "Precedence": "bulk"})


def bank_notice(rng: random.Random, v: int) -> Mail:
    money = amount(rng, 5_000_000, 25_000_000)
    body = logo("https://www.vietcombank.com.vn/-/media/logo.png", "Vietcombank") + paras([
        "Kính gửi Quý khách,",
        f"Vietcombank trân trọng thông báo tài khoản 0071000{rng.randrange(100000, 999999)} vừa phát sinh giao dịch:",
        f"Số tiền: +{money} VND. Nội dung: KBNN DONG NAI CHUYEN LUONG THANG 3/2025.",
        f"Số dư cuối: {amount(rng, 10_000_000, 60_000_000)} VND.",
        "Vietcombank không bao giờ yêu cầu Quý khách cung cấp mật khẩu, mã OTP qua email, điện thoại hay đường link. Tuyệt đối không truy cập các đường link lạ.",
    ]) + footer(["Ngân hàng TMCP Ngoại thương Việt Nam - Hotline 1900 54 54 13"], [("https://www.vietcombank.com.vn", "www.vietcombank.com.vn")])
    return Mail("Vietcombank", "VCBDigibank@info.vietcombank.com.vn", "Thông báo biến động số dư tài khoản", html=page(body))


def police_warning(rng: random.Random, v: int) -> Mail:
    text = "\n".join([
        "CÔNG AN TỈNH ĐỒNG NAI",
        "CẢNH BÁO CÁC THỦ ĐOẠN LỪA ĐẢO CHIẾM ĐOẠT TÀI SẢN QUA KHÔNG GIAN MẠNG",
        "Thời gian gần đây, các đối tượng giả danh cơ quan Công an gửi giấy triệu tập giả qua email, Zalo, yêu cầu người dân chuyển tiền để \"phục vụ điều tra\" hoặc tránh bị phong tỏa tài khoản.",
        "Đối tượng còn giả danh Cục Thuế thông báo hoàn thuế thu nhập cá nhân, giả danh BHXH chi trả hỗ trợ, giả danh nhân viên ngân hàng yêu cầu cập nhật sinh trắc học, gửi đường link đến các trang web giả mạo để đánh cắp mật khẩu, mã OTP.",
        "Ngoài ra, các đối tượng hướng dẫn cài đặt ứng dụng VNeID giả, tuyển cộng tác viên \"việc nhẹ lương cao\", mời tham gia đầu tư tiền ảo, cá cược trực tuyến.",
        "Công an tỉnh khuyến cáo: Cơ quan Công an không làm việc qua điện thoại, email; không yêu cầu chuyển tiền; không gửi đường link yêu cầu đăng nhập. Người dân chỉ cài đặt VNeID từ App Store, Google Play.",
        "Khi phát hiện dấu hiệu lừa đảo, đề nghị báo ngay cho Công an nơi gần nhất.",
        "Phòng An ninh mạng và phòng, chống tội phạm sử dụng công nghệ cao - Công an tỉnh Đồng Nai",
    ])
    return Mail("Công an tỉnh Đồng Nai", "pa05@congan.gov.vn", "Cảnh báo thủ đoạn giả danh cơ quan Công an, Cục Thuế, BHXH để lừa đảo", text=text)


def tax_notice(rng: random.Random, v: int) -> Mail:
    body = paras([
        "CỤC THUẾ TỈNH ĐỒNG NAI",
        "Thông báo về việc quyết toán thuế thu nhập cá nhân năm 2024",
        "Cục Thuế tỉnh đề nghị các cơ quan, đơn vị chi trả thu nhập thực hiện quyết toán thuế TNCN thay cho người lao động có ủy quyền trước ngày 31/3/2025.",
        "Cá nhân trực tiếp quyết toán có số thuế nộp thừa đề nghị hoàn thuế qua Cổng thông tin thuế điện tử; tiền hoàn thuế được chuyển vào tài khoản đã đăng ký trên tờ khai.",
        "Cục Thuế không gửi thư yêu cầu cung cấp mật khẩu hoặc thông tin thẻ ngân hàng.",
    ]) + row('<a href="https://thuedientu.gdt.gov.vn">https://thuedientu.gdt.gov.vn</a> | <a href="https://canhan.gdt.gov.vn">canhan.gdt.gov.vn</a>')
    return Mail("Cục Thuế tỉnh Đồng Nai", "ctdongnai@gdt.gov.vn", "Thông báo quyết toán thuế TNCN năm 2024 và hoàn thuế nộp thừa", html=page(body))


def bhxh_notice(rng: random.Random, v: int) -> Mail:
    text = "\n".join(_vi(x, v) for x in [
        "Kính gửi: Các cơ quan, đơn vị sử dụng lao động",
        "Bảo hiểm xã hội tỉnh Đồng Nai đề nghị đơn vị thực hiện đối chiếu quá trình đóng BHXH, BHYT, BHTN năm 2024 cho người lao động.",
        "Người lao động có thể tra cứu quá trình tham gia bảo hiểm trên ứng dụng VssID hoặc tại https://baohiemxahoi.gov.vn.",
        "Mọi vướng mắc liên hệ Phòng Quản lý thu, số điện thoại 0251.3822xxx.",
        "Trân trọng.",
    ])
    return Mail("BHXH tỉnh Đồng Nai", "thu@dongnai.baohiemxahoi.gov.vn", _vi("Đề nghị đối chiếu quá trình đóng BHXH năm 2024", v), text=text)


def cert_notice(rng: random.Random, v: int) -> Mail:
    text = "\n".join([
        "Kính gửi: Văn phòng UBND tỉnh Đồng Nai",
        "Cục Chứng thực số và Bảo mật thông tin - Ban Cơ yếu Chính phủ thông báo: 12 chứng thư số cấp cho cá nhân thuộc Quý cơ quan sẽ hết hạn trong tháng 5/2025 (danh sách kèm theo).",
        "Đề nghị Quý cơ quan lập hồ sơ đề nghị gia hạn theo mẫu tại Thông tư 185/2019/TT-BQP, gửi về Cục qua hệ thống quản lý văn bản.",
        "Việc gia hạn không thu phí. Cục không gửi đường link yêu cầu đăng nhập hay tải phần mềm qua thư điện tử.",
        "Thông tin chi tiết: https://ca.gov.vn",
    ])
    from tests.policy import corpus

    sheet = corpus.xlsx([["STT", "Họ và tên", "Đơn vị", "Ngày hết hạn"], ["1", person(rng), "Văn phòng UBND tỉnh", "15/5/2025"], ["2", person(rng), "Sở Nội vụ", "20/5/2025"]])
    return Mail("Cục Chứng thực số và Bảo mật thông tin", "vanthu@ca.gov.vn", "Thông báo chứng thư số sắp hết hạn tháng 5/2025",
                text=text, attachments=[("DanhSach_CTS_HetHan.xlsx", sheet, corpus.XLSX)])


def vneid_guide(rng: random.Random, v: int) -> Mail:
    text = "\n".join(_vi(x, v) for x in [
        "Thực hiện Đề án 06 của Chính phủ, đề nghị 100% cán bộ, công chức, viên chức hoàn thành kích hoạt tài khoản định danh điện tử mức 2 trước ngày 30/4/2025.",
        "Hướng dẫn: tải ứng dụng VNeID từ App Store hoặc Google Play, đăng ký tại Công an cấp xã nơi cư trú và kích hoạt theo tin nhắn nhận được.",
        "Tuyệt đối không cài ứng dụng từ đường link lạ, không cung cấp mật khẩu, mã kích hoạt cho bất kỳ ai.",
        "Đơn vị tổng hợp danh sách cán bộ đã kích hoạt gửi về Văn phòng trước ngày 05/5/2025.",
        "Trân trọng./.",
    ])
    return Mail("Công an huyện Trảng Bom", "doiqlhc@trangbom.congan.gov.vn", _vi("Đôn đốc kích hoạt tài khoản định danh điện tử mức 2 (Đề án 06)", v), text=text)


def it_notice(rng: random.Random, v: int) -> Mail:
    text = "\n".join([
        "Kính gửi các đơn vị,",
        "Trung tâm Giám sát an toàn không gian mạng quốc gia ghi nhận chiến dịch thư giả mạo thông báo \"hộp thư đã đầy\", \"mật khẩu sắp hết hạn\" nhắm vào hộp thư công vụ.",
        "Đề nghị cán bộ không bấm vào đường link trong các thư này, không nhập mật khẩu trên trang lạ; định kỳ thay đổi mật khẩu hộp thư tại trang quản trị chính thức của cơ quan.",
        "Danh sách tên miền giả mạo đã ghi nhận được gửi kèm để quản trị viên chặn trên tường lửa.",
        "Trân trọng.",
        "Trung tâm Giám sát an toàn không gian mạng quốc gia (NCSC)",
    ])
    return Mail("NCSC - Cục An toàn thông tin", "canhbao@ais.gov.vn", "Cảnh báo chiến dịch thư giả mạo nhắm vào hộp thư công vụ",
                text=text, attachments=[("ten-mien-gia-mao.txt", b"mail-dongnai.com\nwebmail-dongnai-gov.vn.top\nvneid-gov.com\n", "text/plain")])


def recruitment(rng: random.Random, v: int) -> Mail:
    text = "\n".join([
        "THÔNG BÁO TUYỂN DỤNG VIÊN CHỨC NĂM 2025",
        "Trung tâm Dịch vụ việc làm tỉnh Đồng Nai thông báo tuyển dụng 05 viên chức làm việc tại các phòng chuyên môn.",
        "Điều kiện: tốt nghiệp đại học chuyên ngành phù hợp, có chứng chỉ tin học, ngoại ngữ theo quy định. Hồ sơ nộp trực tiếp tại Trung tâm.",
        "Thời gian nhận hồ sơ: từ ngày 01/4 đến hết ngày 30/4/2025 (trong giờ hành chính).",
        "Thông tin chi tiết xem tại https://vieclamdongnai.gov.vn",
    ])
    return Mail("Trung tâm Dịch vụ việc làm Đồng Nai", "tuyendung@vieclamdongnai.gov.vn", "Thông báo tuyển dụng viên chức năm 2025", text=text)


def training(rng: random.Random, v: int) -> Mail:
    body = paras([
        "Kính gửi Quý cơ quan,",
        "Trường Đại học Khoa học Tự nhiên, ĐHQG-HCM tổ chức khóa bồi dưỡng \"An toàn thông tin cho cán bộ quản trị hệ thống\" từ ngày 12 đến 16/5/2025.",
        "Học phí: 3.500.000 đồng/học viên (đã bao gồm tài liệu). Học viên hoàn thành được cấp chứng chỉ.",
        "Đăng ký trực tuyến trước ngày 05/5/2025:",
    ]) + row('<a href="https://bit.ly/attt-hcmus-2025">https://bit.ly/attt-hcmus-2025</a>') + footer(["Phòng Đào tạo - ĐT: 028 3835 xxxx"])
    return Mail("Phòng Đào tạo HCMUS", "daotao@hcmus.edu.vn", "Thư mời tham gia khóa bồi dưỡng An toàn thông tin năm 2025", html=page(body))


def quote(rng: random.Random, v: int) -> Mail:
    from tests.policy import corpus

    total = amount(rng, 40_000_000, 200_000_000)
    text = "\n".join(_vi(x, v) for x in [
        "Kính gửi: Phòng Hành chính - Quản trị",
        f"Công ty TNHH Thiết bị Tin học Phương Nam xin gửi báo giá máy tính, máy in theo yêu cầu của Quý cơ quan, tổng giá trị {total} đồng (đã gồm VAT 10%).",
        "Báo giá có hiệu lực 30 ngày. Bảo hành 24 tháng tại nơi sử dụng, giao hàng miễn phí trong tỉnh.",
        f"Mọi thông tin xin liên hệ: {person(rng)} - {phone(rng)}",
        "Trân trọng cảm ơn!",
    ])
    return Mail("Phương Nam IT", "kinhdoanh@phuongnamit.com.vn", _vi("Báo giá thiết bị tin học - Văn phòng UBND tỉnh", v), text=text,
                attachments=[("BaoGia_PhuongNam.pdf", corpus.pdf([f"BÁO GIÁ - tổng cộng {total} VNĐ", "Máy tính để bàn Dell: 15.900.000 đ"]), "application/pdf")])


def colleague(rng: random.Random, v: int) -> Mail:
    name = person(rng)
    text = rng.choice([
        "Chao anh Nhan,\nEm gui anh file tong hop so lieu quy 1 nhu anh dan. Anh xem giup em bang so 3 co can chinh gi khong a.\nEm cam on anh!\n" + name.split()[-1],
        "Anh Nhân ơi, chiều nay họp lúc 3h hay 4h vậy anh? Em đang ở dưới huyện, gọi anh không được.\nEm " + name.split()[-1],
    ])
    if v:
        text = no_marks(text)
    return Mail(name, f"{ascii_slug(name)}{rng.randrange(80, 99)}@gmail.com", rng.choice(["So lieu quy 1", "Họp chiều nay", "Re: bao cao"]), text=text)


def reply_thread(rng: random.Random, v: int) -> Mail:
    name = person(rng)
    text = "\n".join([
        "Dạ em đã nhận được văn bản, em sẽ trình lãnh đạo và phản hồi anh trong tuần.",
        "",
        f"Vào Th 2, 7 thg 4, 2025 lúc 09:12 {RECIPIENT_NAME} <nhan@dongnai.gov.vn> đã viết:",
        "> Chào em,",
        "> Anh gửi em dự thảo kế hoạch tổ chức hội nghị, em góp ý giúp anh nhé.",
        "> Lưu ý chưa ban hành nên em không chia sẻ ra ngoài.",
    ])
    return Mail(name, f"{ascii_slug(name)}@snv.dongthap.gov.vn", "Re: Dự thảo kế hoạch tổ chức hội nghị", text=text,
                headers={"In-Reply-To": f"<{token(rng, 10)}@dongnai.gov.vn>"})


def partner_en(rng: random.Random, v: int) -> Mail:
    text = "\n".join([
        "Dear Mr. Nhan,",
        "Thank you for the productive meeting last week. As agreed, please find below the link to register for the regional workshop on digital government services, to be held in Da Nang on 20-21 May 2025.",
        "Registration: https://www.undp.org/vietnam/events/digital-government-workshop",
        "UNDP will cover travel and accommodation for two participants from your office. Please send us their names and passport details by 30 April.",
        "Best regards,",
        "Sarah Johnson",
        "Programme Analyst, UNDP Viet Nam",
    ])
    return Mail("Sarah Johnson", "sarah.johnson@undp.org", "Invitation: Regional workshop on digital government, Da Nang 20-21 May", text=text)


def vnpost_notice(rng: random.Random, v: int) -> Mail:
    text = "\n".join([
        f"Bưu gửi số EB{rng.randrange(100000000, 999999999)}VN của Quý khách đã được phát thành công.",
        f"Người nhận: Văn phòng UBND tỉnh Đồng Nai. Thời gian phát: {rng.randrange(1, 28)}/4/2025 10:35.",
        "Tra cứu hành trình bưu gửi tại https://www.vnpost.vn/tra-cuu-hanh-trinh/buu-pham",
        "Cảm ơn Quý khách đã sử dụng dịch vụ của Bưu điện Việt Nam.",
    ])
    return Mail("Bưu điện Việt Nam", "noreply@vnpost.vn", "Thông báo phát thành công bưu gửi", text=text)


def lottery_company(rng: random.Random, v: int) -> Mail:
    text = "\n".join([
        "Kính gửi: Sở Tài chính tỉnh Đồng Nai",
        "Công ty TNHH MTV Xổ số kiến thiết Đồng Nai báo cáo kết quả kinh doanh xổ số quý I năm 2025:",
        "Doanh thu phát hành vé xổ số truyền thống đạt 1.250 tỷ đồng; trả thưởng các giải đặc biệt, giải nhất cho khách hàng trúng thưởng theo đúng quy định.",
        "Công ty đã nộp ngân sách 310 tỷ đồng. Chi tiết tại báo cáo đính kèm.",
        "Trân trọng./.",
    ])
    return Mail("Xổ số kiến thiết Đồng Nai", "vanthu@xosodongnai.com.vn", "Báo cáo kết quả kinh doanh xổ số quý I năm 2025", text=text)


def policy_bank(rng: random.Random, v: int) -> Mail:
    text = "\n".join([
        "Kính gửi: UBND các huyện, thành phố",
        "Ngân hàng Chính sách xã hội tỉnh Đồng Nai thông báo triển khai cho vay hộ nghèo, hộ cận nghèo và học sinh sinh viên năm 2025.",
        "Mức cho vay tối đa 100 triệu đồng/hộ, lãi suất ưu đãi 6,6%/năm; thời hạn giải ngân theo kế hoạch vốn được giao.",
        "Đề nghị UBND các xã rà soát, lập danh sách đối tượng có nhu cầu vay vốn gửi về Phòng giao dịch trước ngày 20/4/2025.",
    ])
    return Mail("NHCSXH tỉnh Đồng Nai", "dongnai@vbsp.org.vn", "Triển khai cho vay hộ nghèo, hộ cận nghèo năm 2025", text=text)


def gambling_directive(rng: random.Random, v: int) -> Mail:
    text = "\n".join(_vi(x, v) for x in [
        "Thực hiện Chỉ thị của UBND tỉnh về tăng cường phòng, chống tội phạm cờ bạc, cá độ bóng đá qua mạng,",
        "đề nghị các đơn vị quán triệt cán bộ, công chức không tham gia đánh bạc, cá cược trực tuyến, không truy cập các trang casino, nhà cái trái phép.",
        "Các trang web cờ bạc thường quảng cáo \"tặng tiền khi đăng ký\", \"hoàn trả không giới hạn\" để lôi kéo người chơi.",
        "Báo cáo kết quả thực hiện về Công an tỉnh trước ngày 30/6/2025.",
    ])
    return Mail("Văn phòng UBND tỉnh", "vanphong@ubnd.baria-vungtau.gov.vn", _vi("Tăng cường phòng, chống cờ bạc, cá độ bóng đá qua mạng", v), text=text)


def degree_review(rng: random.Random, v: int) -> Mail:
    text = "\n".join([
        "Kính gửi: Các sở, ban, ngành",
        "Sở Nội vụ đề nghị các cơ quan rà soát văn bằng, chứng chỉ của cán bộ, công chức; phát hiện và xử lý nghiêm trường hợp sử dụng bằng đại học, chứng chỉ giả, mua bán văn bằng.",
        "Việc xác minh văn bằng thực hiện qua cơ sở đào tạo cấp bằng, không sử dụng dịch vụ trung gian.",
        "Kết quả rà soát gửi về Sở Nội vụ trước ngày 15/5/2025.",
    ])
    return Mail("Sở Nội vụ Bình Dương", "tcbc@snv.binhduong.gov.vn", "Rà soát văn bằng, chứng chỉ của cán bộ, công chức", text=text)


def data_protection(rng: random.Random, v: int) -> Mail:
    body = paras([
        "Bộ Công an hướng dẫn thực hiện Nghị định 13/2023/NĐ-CP về bảo vệ dữ liệu cá nhân.",
        "Nghiêm cấm mua bán dữ liệu cá nhân, thu thập trái phép danh sách số điện thoại, email của khách hàng và cán bộ.",
        "Các cơ quan nhà nước có trách nhiệm bảo mật thông tin cá nhân của người dân khi giải quyết thủ tục hành chính.",
        "Tài liệu hướng dẫn và biểu mẫu đánh giá tác động xử lý dữ liệu cá nhân tải tại cổng thông tin của Bộ.",
    ]) + row('<a href="https://bocongan.gov.vn/van-ban/nghi-dinh-13">bocongan.gov.vn/van-ban/nghi-dinh-13</a>')
    return Mail("Cục A05 - Bộ Công an", "a05@bocongan.gov.vn", "Hướng dẫn thực hiện Nghị định 13/2023/NĐ-CP về bảo vệ dữ liệu cá nhân", html=page(body))


def zoom_invite(rng: random.Random, v: int) -> Mail:
    meeting_id = f"{rng.randrange(800, 999)} {rng.randrange(1000, 9999)} {rng.randrange(1000, 9999)}"
    text = "\n".join([
        f"{person(rng)} is inviting you to a scheduled Zoom meeting.",
        "Topic: Họp trực tuyến sơ kết công tác chuyển đổi số quý I",
        "Time: Apr 10, 2025 02:00 PM Hanoi",
        f"Join Zoom Meeting: https://us06web.zoom.us/j/{meeting_id.replace(' ', '')}?pwd={token(rng, 20)}",
        f"Meeting ID: {meeting_id}",
        f"Passcode: {rng.randrange(100000, 999999)}",
    ])
    return Mail("Zoom", "no-reply@zoom.us", "Mời họp trực tuyến: Sơ kết chuyển đổi số quý I", text=text,
                reply_to="phongcntt@sotttt.binhduong.gov.vn")


def e_invoice(rng: random.Random, v: int) -> Mail:
    from tests.policy import corpus

    number = rng.randrange(1000, 99999)
    body = paras([
        "Kính gửi Quý khách hàng: VĂN PHÒNG UBND TỈNH ĐỒNG NAI",
        f"Công ty Điện lực Đồng Nai gửi Quý khách hóa đơn điện tử tiền điện kỳ 3/2025, số hóa đơn {number}, tổng tiền thanh toán {amount(rng, 2_000_000, 30_000_000)} đồng.",
        "Quý khách có thể tra cứu và tải hóa đơn tại trang tra cứu của EVNSPC:",
    ]) + row('<a href="https://hddt.evnspc.vn/TraCuu">https://hddt.evnspc.vn/TraCuu</a>') + footer(["Tổng công ty Điện lực miền Nam - CSKH 19001006"])
    return Mail("EVNSPC - Hóa đơn điện tử", "hddt@evnspc.vn", f"Hóa đơn điện tử tiền điện kỳ 3/2025 - số {number}", html=page(body),
                attachments=[(f"HD_{number}.pdf", corpus.pdf([f"HÓA ĐƠN GTGT (TIỀN ĐIỆN) số {number}", "Tổng cộng tiền thanh toán"]), "application/pdf")])


def conference_cfp(rng: random.Random, v: int) -> Mail:
    text = "\n".join([
        "Dear colleagues,",
        "We are pleased to invite you to submit papers to the International Conference on E-Government and Smart Cities (ICEGOV-SC 2025), Ho Chi Minh City, 10-12 October 2025.",
        "Topics include digital public services, cybersecurity in government, open data and AI for public administration.",
        "Submission deadline: 15 June 2025. Details: https://icegov-sc.org/2025/call-for-papers",
        "Kind regards,",
        "Organizing Committee",
    ])
    return Mail("ICEGOV-SC 2025", "info@icegov-sc.org", "Call for Papers: ICEGOV-SC 2025, Ho Chi Minh City", text=text, envelope="bounces@mail.icegov-sc.org")


def software_notice(rng: random.Random, v: int) -> Mail:
    body = paras([
        "Kính gửi Quý khách hàng,",
        "MISA thông báo phát hành bản cập nhật phần mềm kế toán hành chính sự nghiệp MISA Mimosa theo Thông tư 24/2024/TT-BTC.",
        "Quý khách vui lòng cập nhật trong menu Trợ giúp > Cập nhật phiên bản mới. Bản cập nhật miễn phí đối với khách hàng còn hạn bảo trì.",
        "Hướng dẫn chi tiết:",
    ]) + row('<a href="https://www.misa.vn/mimosa/cap-nhat">https://www.misa.vn/mimosa/cap-nhat</a>') + footer(["Công ty Cổ phần MISA - Tổng đài 1900 8677"], [("https://www.misa.vn/unsubscribe", "Từ chối nhận email")])
    return Mail("MISA JSC", "cskh@misa.com.vn", "Thông báo cập nhật phần mềm MISA Mimosa theo Thông tư 24/2024", html=page(body), envelope="bounce@mail.misa.com.vn")


def job_fair(rng: random.Random, v: int) -> Mail:
    text = "\n".join(_vi(x, v) for x in [
        "Trung tâm Dịch vụ việc làm tỉnh tổ chức Phiên giao dịch việc làm định kỳ ngày 15/4/2025.",
        "Hơn 40 doanh nghiệp tham gia tuyển dụng 2.500 lao động phổ thông và kỹ thuật, mức lương từ 7 đến 15 triệu đồng/tháng.",
        "Đề nghị UBND các xã thông báo rộng rãi để người lao động biết, tham gia.",
    ])
    return Mail("Trung tâm DVVL Đồng Nai", "sanvieclam@vieclamdongnai.gov.vn", _vi("Thông báo phiên giao dịch việc làm ngày 15/4/2025", v), text=text)


def weekly_schedule(rng: random.Random, v: int) -> Mail:
    rows = "".join(f"<tr><td>{d}</td><td>{esc(t)}</td><td>{esc(p)}</td></tr>" for d, t, p in [
        ("Thứ Hai 14/4", "8h00: Giao ban Ban Giám đốc", "Phòng họp A"),
        ("Thứ Ba 15/4", "14h00: Làm việc với Đoàn kiểm tra cải cách hành chính", "Hội trường"),
        ("Thứ Tư 16/4", "Cả ngày: Đi cơ sở tại huyện Xuân Lộc", ""),
        ("Thứ Năm 17/4", "9h00: Họp Hội đồng thi đua khen thưởng", "Phòng họp B"),
    ])
    body = paras(["LỊCH CÔNG TÁC TUẦN 16/2025 CỦA BAN GIÁM ĐỐC SỞ"]) + row(f'<table border="1" cellpadding="4">{rows}</table>') + paras(["Lịch có thể thay đổi, đề nghị các phòng theo dõi trên Cổng thông tin điện tử của Sở."])
    return Mail("Văn phòng Sở Tài nguyên và Môi trường", "vanphong@stnmt.binhduong.gov.vn", "Lịch công tác tuần 16/2025", html=page(body))


def ics_invite(rng: random.Random, v: int) -> Mail:
    ics = "\r\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Google Inc//Google Calendar 70.9054//EN", "METHOD:REQUEST", "BEGIN:VEVENT",
                        "DTSTART:20250422T020000Z", "DTEND:20250422T040000Z", f"UID:{token(rng, 20)}@google.com",
                        "SUMMARY:Họp nhóm triển khai hệ thống thư điện tử", "LOCATION:Phòng họp tầng 3", "END:VEVENT", "END:VCALENDAR", ""])
    text = "Bạn đã được mời tham gia sự kiện sau.\nHọp nhóm triển khai hệ thống thư điện tử\nThời gian: Thứ Ba 22 thg 4, 2025 9am – 11am (ICT)\nĐịa điểm: Phòng họp tầng 3\nTham gia bằng Google Meet: https://meet.google.com/abc-defg-hij\nLời mời từ Google Lịch"
    return Mail(person(rng), f"{token(rng, 6)}@gmail.com", "Lời mời: Họp nhóm triển khai hệ thống thư điện tử @ Thứ Ba 22 thg 4, 2025",
                text=text, attachments=[("invite.ics", ics.encode(), "text/calendar")])


def holiday_card(rng: random.Random, v: int) -> Mail:
    markup = ('<html><body><center><img src="https://www.vnpt.vn/Media/thiep/chuc-mung-30-4.jpg" width="640" alt="Chúc mừng kỷ niệm 50 năm Ngày Giải phóng miền Nam">'
              '<p style="font-size:12px">Tập đoàn Bưu chính Viễn thông Việt Nam</p></center></body></html>')
    return Mail("VNPT Đồng Nai", "vnptdongnai@vnpt.vn", "Thư chúc mừng kỷ niệm 50 năm Ngày Giải phóng miền Nam, thống nhất đất nước", html=markup, text_alternative=False)


def survey(rng: random.Random, v: int) -> Mail:
    text = "\n".join(_vi(x, v) for x in [
        "Kính gửi anh/chị,",
        "Nhằm đánh giá hiệu quả hệ thống thư điện tử công vụ, Sở Thông tin và Truyền thông đề nghị anh/chị dành 5 phút trả lời phiếu khảo sát trực tuyến:",
        f"https://forms.gle/{token(rng, 12)}",
        "Phiếu khảo sát không thu thập mật khẩu hay thông tin đăng nhập. Hạn trả lời: 25/4/2025.",
        "Trân trọng cảm ơn.",
    ])
    return Mail("Phòng CNTT - Sở TT&TT Bình Dương", "cntt@sotttt.binhduong.gov.vn", _vi("Khảo sát mức độ hài lòng về hệ thống thư điện tử công vụ", v), text=text)


def wb_newsletter(rng: random.Random, v: int) -> Mail:
    track = f"https://click.email.worldbank.org/?qs={token(rng, 24)}"
    inner = row('<span style="font-size:22px;color:#002244">World Bank East Asia & Pacific Update</span>') + paras([
        "Vietnam's economy grew by 7.1 percent in 2024, driven by a rebound in exports and public investment.",
        "The April 2025 Economic Update discusses the outlook and the reforms needed to sustain growth.",
    ]) + button(track + "1", "Read the report", "#002244") + paras(["Webinar: Digital public infrastructure in East Asia, 29 April 2025, 9:00 AM Bangkok time."]) + button(track + "2", "Register", "#002244") + footer(
        ["The World Bank, 1818 H Street NW, Washington, DC 20433"], [(track + "u", "Unsubscribe"), (track + "p", "Privacy notice")]) + pixel("https://click.email.worldbank.org/open.aspx?" + token(rng, 10))
    return Mail("The World Bank", "worldbank@email.worldbank.org", "East Asia & Pacific Economic Update, April 2025", html=page(inner),
                envelope=f"bounce-{token(rng, 8)}@email.worldbank.org", headers={"List-Unsubscribe": f"<{track}u>"})


def bank_statement(rng: random.Random, v: int) -> Mail:
    from tests.policy import corpus

    text = "\n".join([
        "Kính gửi Quý khách hàng,",
        "BIDV gửi Quý khách sao kê tài khoản tháng 3/2025 trong tệp đính kèm.",
        "Để bảo mật, tệp sao kê được đặt mật khẩu: mật khẩu mở tệp là ngày sinh của Quý khách theo định dạng ddmmyyyy.",
        "BIDV không bao giờ gửi đường link yêu cầu Quý khách đăng nhập hoặc cung cấp mã OTP.",
        "Trân trọng,",
        "Ngân hàng TMCP Đầu tư và Phát triển Việt Nam (BIDV) - Hotline 19009247",
    ])
    return Mail("BIDV", "saoke@bidv.com.vn", "Sao kê tài khoản tháng 03/2025", text=text,
                attachments=[("SaoKe_032025.pdf", corpus.pdf(["SAO KÊ TÀI KHOẢN", "Số dư đầu kỳ: 12.500.000 VND"]), "application/pdf")])


def forum_digest(rng: random.Random, v: int) -> Mail:
    text = "\n".join([
        "VNISA - Bản tin An toàn thông tin số 14/2025",
        "1. Microsoft phát hành bản vá tháng 4 cho 120 lỗ hổng, trong đó có lỗ hổng Outlook bị khai thác.",
        "2. Xu hướng lừa đảo giả mạo thông báo Microsoft 365 \"mật khẩu hết hạn\" gia tăng tại các cơ quan nhà nước.",
        "3. Hội thảo Ngày An toàn thông tin Việt Nam 2025 mở đăng ký.",
        "Xem chi tiết: https://vnisa.org.vn/ban-tin/14-2025",
        "Để ngừng nhận bản tin, trả lời thư này với tiêu đề \"Hủy đăng ký\".",
    ])
    return Mail("VNISA", "bantin@vnisa.org.vn", "[VNISA] Bản tin An toàn thông tin số 14/2025", text=text, envelope="owner-bantin@lists.vnisa.org.vn",
                headers={"List-Id": "<bantin.lists.vnisa.org.vn>", "Precedence": "list"})


def portal_maintenance(rng: random.Random, v: int) -> Mail:
    text = "\n".join(_vi(x, v) for x in [
        "Cổng Dịch vụ công quốc gia thông báo tạm dừng hệ thống để nâng cấp từ 22h00 ngày 19/4 đến 06h00 ngày 20/4/2025.",
        "Trong thời gian này, người dân và doanh nghiệp không thể nộp hồ sơ trực tuyến và đăng nhập bằng tài khoản VNeID.",
        "Xin lỗi vì sự bất tiện. Thông tin hỗ trợ: https://dichvucong.gov.vn - Tổng đài 18001096.",
    ])
    return Mail("Cổng Dịch vụ công quốc gia", "hotro@dichvucong.gov.vn", _vi("Thông báo tạm dừng hệ thống Cổng Dịch vụ công quốc gia để nâng cấp", v), text=text)


def ham_templates() -> list[Template]:
    return [official_letter, meeting, newsletter, bank_notice, police_warning, tax_notice, bhxh_notice, cert_notice,
            vneid_guide, it_notice, recruitment, training, quote, colleague, reply_thread, partner_en, vnpost_notice,
            lottery_company, policy_bank, gambling_directive, degree_review, data_protection, zoom_invite, e_invoice,
            conference_cfp, software_notice, job_fair, weekly_schedule, ics_invite, holiday_card, survey, wb_newsletter,
            bank_statement, forum_digest, portal_maintenance]
