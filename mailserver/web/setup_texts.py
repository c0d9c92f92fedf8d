"""Texts of ``/setup`` (Vietnamese, English), merged into ``mailserver.web.i18n.TEXTS``.

Placeholders: ``{imap}``/``{smtp}`` are host names, ``{imap_port}``/``{smtp_port}`` ports.
"""

from __future__ import annotations

from typing import Final

SETUP_TEXTS: Final[dict[str, tuple[str, str]]] = {
    "nav_setup": ("Cài đặt thư", "Mail setup"),
    "setup_title": ("Cài đặt thư trên máy tính và điện thoại", "Set up mail on a computer or phone"),
    "setup_intro": (
        "Chương trình thư tự tìm cấu hình: thường chỉ cần nhập địa chỉ thư và mật khẩu. "
        "Dưới đây là các bước cho từng chương trình và thông số để nhập tay khi cần.",
        "Mail programs find the settings by themselves: usually the address and the password are all "
        "they need. Below are the steps for each program, and the settings to type in if asked.",
    ),
    "setup_address_label": ("Địa chỉ thư của Anh/Chị (không bắt buộc)", "Your email address (optional)"),
    "setup_address_submit": ("Điền sẵn vào hướng dẫn", "Fill it in below"),
    "setup_bad_address": (
        "Địa chỉ này không thuộc hệ thống thư của tỉnh.",
        "This address is not one of the province's mailboxes.",
    ),
    "setup_manual": ("Thông số máy chủ", "Server settings"),
    "setup_incoming": ("Thư đến (IMAP)", "Incoming (IMAP)"),
    "setup_outgoing": ("Thư đi (SMTP)", "Outgoing (SMTP)"),
    "setup_outgoing_starttls": ("Thư đi, cách khác (SMTP STARTTLS)", "Outgoing, alternative (SMTP STARTTLS)"),
    "setup_server": ("Máy chủ", "Server"),
    "setup_port": ("Cổng", "Port"),
    "setup_security": ("Bảo mật", "Security"),
    "setup_username": ("Tên đăng nhập", "User name"),
    "setup_username_value": ("địa chỉ thư đầy đủ", "the full email address"),
    "setup_auth": ("Xác thực", "Authentication"),
    "setup_auth_value": ("mật khẩu thường (qua kết nối mã hóa)", "normal password (over the encrypted link)"),
    "tb_title": ("Thunderbird (máy tính)", "Thunderbird (computer)"),
    "tb_1": (
        "Mở Thunderbird, chọn ☰ → Tài khoản → Thư điện tử (Thêm tài khoản thư).",
        "Open Thunderbird and choose ☰ → New Account → Email.",
    ),
    "tb_2": (
        "Nhập họ tên, địa chỉ thư và mật khẩu, bấm Tiếp tục: Thunderbird tự lấy cấu hình "
        "(IMAP {imap}, SMTP {smtp}).",
        "Type your name, address and password and press Continue: Thunderbird fetches the settings "
        "(IMAP {imap}, SMTP {smtp}).",
    ),
    "tb_3": ("Bấm Xong. Thư được tải về trong giây lát.", "Press Done. Your mail appears in a moment."),
    "ol_title": ("Outlook (máy tính)", "Outlook (computer)"),
    "ol_1": ("Trong Outlook chọn Tệp → Thêm tài khoản.", "In Outlook choose File → Add Account."),
    "ol_2": (
        "Nhập địa chỉ thư, bấm Kết nối: Outlook tự lấy cấu hình (Autodiscover). Nếu Outlook hỏi loại "
        "tài khoản, chọn IMAP và nhập thông số ở bảng trên.",
        "Type your address and press Connect: Outlook fetches the settings (Autodiscover). If it asks "
        "for the account type, choose IMAP and use the settings in the table above.",
    ),
    "ol_3": ("Nhập mật khẩu, bấm Kết nối rồi Xong.", "Type your password, press Connect, then Done."),
    "ios_title": ("iPhone, iPad", "iPhone, iPad"),
    "ios_1": (
        "Quét mã QR bằng ứng dụng Camera (hoặc mở liên kết bằng Safari) để tải hồ sơ cấu hình.",
        "Scan the QR code with the Camera app (or open the link in Safari) to download the profile.",
    ),
    "ios_2": (
        "Mở Cài đặt → Đã tải về hồ sơ → Cài đặt, rồi nhập mật khẩu thư khi được hỏi.",
        "Open Settings → Profile Downloaded → Install, and type your mail password when asked.",
    ),
    "ios_signed": (
        "Hồ sơ được ký bằng chứng thư số của Sở (cài ca.pem để máy hiện “Đã xác minh”).",
        "The profile is signed by the Department's CA (install ca.pem to see it as “Verified”).",
    ),
    "ios_link": ("Tải hồ sơ cấu hình", "Download the profile"),
    "android_title": ("Android (ứng dụng Gmail)", "Android (Gmail app)"),
    "android_1": (
        "Quét mã QR để mở trang này trên điện thoại, rồi mở ứng dụng Gmail → ☰ → Cài đặt → Thêm tài khoản "
        "→ Khác.",
        "Scan the QR code to open this page on the phone, then in the Gmail app: ☰ → Settings → Add "
        "account → Other.",
    ),
    "android_2": (
        "Nhập địa chỉ thư, chọn Thiết lập thủ công → Cá nhân (IMAP), nhập mật khẩu.",
        "Type your address, choose Manual setup → Personal (IMAP), type your password.",
    ),
    "android_3": (
        "Máy chủ thư đến: {imap}, cổng {imap_port}, bảo mật SSL/TLS.",
        "Incoming server: {imap}, port {imap_port}, security SSL/TLS.",
    ),
    "android_4": (
        "Máy chủ thư đi: {smtp}, cổng {smtp_port}, bảo mật SSL/TLS, bật “Yêu cầu đăng nhập”.",
        "Outgoing server: {smtp}, port {smtp_port}, security SSL/TLS, with “Require sign-in” on.",
    ),
    "qr_iphone": ("Mã QR: hồ sơ cấu hình cho iPhone", "QR code: the iPhone profile"),
    "qr_phone": ("Mã QR: mở trang này trên điện thoại", "QR code: open this page on the phone"),
}
