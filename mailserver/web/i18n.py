"""Interface texts: Vietnamese first (the staff's language), English beside it.

The language is chosen by ``?lang=en`` / ``?lang=vi`` (remembered in a cookie);
Vietnamese is the default. Texts are keyed by short English identifiers; a
missing key shows the key itself rather than failing the page.
"""

from __future__ import annotations

from typing import Final

from mailserver.web.setup_texts import SETUP_TEXTS

LANGS: Final = ("vi", "en")

TEXTS: Final[dict[str, tuple[str, str]]] = {
    "site": ("Thư điện tử tỉnh Đồng Nai", "Dong Nai provincial mail"),
    "skip": ("Bỏ qua, đến nội dung chính", "Skip to main content"),
    "nav_password": ("Đổi mật khẩu", "Change password"),
    "nav_directory": ("Danh bạ", "Directory"),
    "nav_deleted": ("Thư đã xóa", "Deleted mail"),
    "nav_vacation": ("Vắng mặt", "Out of office"),
    "nav_admin": ("Quản trị", "Administration"),
    **SETUP_TEXTS,
    "lang_switch": ("English", "Tiếng Việt"),
    "footer": (
        "Sở Thông tin và Truyền thông tỉnh Đồng Nai — Quyết định 70/2009/QĐ-UBND",
        "Department of Information and Communications, Dong Nai — Decision 70/2009/QD-UBND",
    ),
    # /password
    "pw_title": ("Đổi mật khẩu hộp thư", "Change your mailbox password"),
    "pw_intro": (
        "Theo Điều 9 khoản 1 Quyết định 70/2009/QĐ-UBND, Anh/Chị phải thay mật khẩu ban đầu và thay "
        "đổi mật khẩu thường xuyên. Mật khẩu ban đầu do Sở cấp cũng dùng được ở đây.",
        "Decision 70/2009, Article 9(1): replace the initial password and change it regularly. "
        "The initial password issued to you works here too.",
    ),
    "address": ("Địa chỉ thư", "Email address"),
    "current_password": ("Mật khẩu hiện tại", "Current password"),
    "new_password": ("Mật khẩu mới", "New password"),
    "confirm_password": ("Nhập lại mật khẩu mới", "Repeat the new password"),
    "pw_rules": ("Yêu cầu đối với mật khẩu mới", "Rules for the new password"),
    "rule_length": ("Ít nhất {n} ký tự", "At least {n} characters"),
    "rule_classes": (
        "Có 3 trong 4 loại: chữ thường, chữ hoa, chữ số, ký hiệu",
        "3 of 4 kinds: lower-case, upper-case, digits, symbols",
    ),
    "rule_name": (
        "Không chứa tên hộp thư hay họ tên của Anh/Chị",
        "Must not contain your mailbox name or your name",
    ),
    "rule_history": ("Không trùng {n} mật khẩu gần nhất", "Not one of your last {n} passwords"),
    "pw_submit": ("Đổi mật khẩu", "Change password"),
    "pw_done": (
        "Đã đổi mật khẩu. Từ bây giờ hãy dùng mật khẩu mới trong chương trình thư (IMAP/SMTP).",
        "Password changed. Use the new password in your mail client (IMAP/SMTP) from now on.",
    ),
    "pw_mismatch": ("Hai lần nhập mật khẩu mới không giống nhau", "The two new passwords differ"),
    "pw_missing": ("Hãy điền đủ các ô", "Please fill in every field"),
    "throttled": (
        "Quá nhiều lần thử sai. Hãy thử lại sau ít phút.",
        "Too many failed attempts. Try again in a few minutes.",
    ),
    "csrf": (
        "Phiên làm việc đã hết hạn hoặc yêu cầu không hợp lệ. Hãy tải lại trang và thử lại.",
        "The form expired or the request is not valid. Reload the page and try again.",
    ),
    "error": ("Có lỗi", "There is a problem"),
    # /deleted
    "del_title": ("Thư đã xóa", "Deleted mail"),
    "del_intro": (
        "Thư Anh/Chị đã xóa (kể cả thư trong thư mục đã xóa) được giữ {days} ngày; trong thời gian đó "
        "có thể khôi phục về thư mục cũ, giữ nguyên nội dung và cờ.",
        "Mail you deleted (including mail of deleted folders) is kept for {days} days; until then it can "
        "be put back in its folder, unchanged, with its flags.",
    ),
    "del_held": (
        "Hộp thư đang được giữ nguyên trạng: thư đã xóa được giữ đến khi có quyết định khác.",
        "This mailbox is on hold: deleted mail is kept until the hold ends.",
    ),
    "del_sign_in": (
        "Đăng nhập bằng địa chỉ và mật khẩu hộp thư", "Sign in with your mailbox address and password"
    ),
    "del_login_failed": ("Sai địa chỉ hoặc mật khẩu.", "Wrong address or password."),
    "del_folder": ("Thư mục", "Folder"),
    "del_date": ("Ngày thư", "Date"),
    "del_deleted_at": ("Xóa lúc", "Deleted at"),
    "del_restore": ("Khôi phục thư đã chọn", "Restore selected"),
    "del_choose": ("Chọn", "Select"),
    "del_empty": ("Không có thư đã xóa nào.", "No deleted mail."),
    "del_restored": ("Đã khôi phục {n} thư về thư mục cũ.", "{n} message(s) put back in their folders."),
    "del_not_found": (
        "Không tìm thấy thư đã chọn (có thể đã được khôi phục hoặc đã hết hạn lưu).",
        "The selected mail was not found (maybe already restored or past its keeping time).",
    ),
    "del_none": ("Chưa chọn thư nào.", "No message selected."),
    "del_bad_id": ("Yêu cầu không hợp lệ.", "Invalid request."),
    "del_signed_in_as": ("Hộp thư: {address}", "Mailbox: {address}"),
    # /directory
    "dir_title": ("Danh bạ thư điện tử các cơ quan", "Directory of agency mailboxes"),
    "dir_intro": (
        "Địa chỉ thư điện tử công khai theo Điều 5 khoản 5 Quyết định 70/2009/QĐ-UBND.",
        "Addresses published under Decision 70/2009, Article 5(5).",
    ),
    "search": ("Tìm kiếm (gõ có dấu hoặc không dấu)", "Search (with or without accents)"),
    "search_button": ("Tìm", "Search"),
    "name": ("Tên", "Name"),
    "parent": ("Cơ quan cấp trên", "Parent agency"),
    "agency": ("Cơ quan", "Agency"),
    "position": ("Chức vụ", "Position"),
    "kind": ("Loại", "Kind"),
    "kind_agency": ("Cơ quan", "Agency"),
    "kind_person": ("Cá nhân", "Person"),
    "no_results": ("Không tìm thấy địa chỉ nào.", "No address found."),
    "results": ("{n} địa chỉ", "{n} addresses"),
    "downloads": ("Tải về", "Download"),
    # /admin
    "admin_login": ("Đăng nhập quản trị", "Operator sign-in"),
    "admin_password": ("Mật khẩu", "Password"),
    "totp": ("Mã xác thực 6 chữ số (nếu được cấp)", "6-digit authenticator code (if enrolled)"),
    "sign_in": ("Đăng nhập", "Sign in"),
    "sign_out": ("Đăng xuất", "Sign out"),
    "login_failed": (
        "Sai địa chỉ, mật khẩu hoặc mã xác thực, hoặc tài khoản không có quyền quản trị.",
        "Wrong address, password or code, or the account is not an operator.",
    ),
    "login_must_change": (
        "Mật khẩu ban đầu hoặc đã hết hạn: hãy đổi mật khẩu trước (trang Đổi mật khẩu).",
        "Initial or expired password: change it first (Change password page).",
    ),
    "dashboard": ("Tổng quan", "Dashboard"),
    "queue": ("Hàng đợi gửi đi", "Outbound queue"),
    "quarantine": ("Thư bị giữ lại", "Quarantine"),
    "reports": ("Báo cáo", "Reports"),
    "audit": ("Nhật ký thay đổi", "Audit log"),
    "connections": ("Kết nối đang mở", "Open connections"),
    "queue_messages": ("Thư trong hàng đợi", "Queued messages"),
    "queue_waiting": ("Người nhận đang chờ", "Recipients waiting"),
    "quarantined": ("Thư bị giữ", "Held messages"),
    "accounts": ("Hộp thư", "Mailboxes"),
    "deliveries_chart": (
        "Thư nhận vào hộp thư, 24 giờ qua (theo giờ, giờ Việt Nam UTC{zone})",
        "Deliveries, last 24 hours (per hour, province time UTC{zone})",
    ),
    "time_zone": ("Thời điểm (UTC{zone})", "Time (UTC{zone})"),
    "live_note": ("Số liệu tự cập nhật mỗi 10 giây.", "Figures refresh every 10 seconds."),
    "id": ("Mã", "ID"),
    "sender": ("Người gửi", "Sender"),
    "recipients": ("Người nhận", "Recipients"),
    "created": ("Thời điểm", "Time"),
    "size": ("Dung lượng", "Size"),
    "state": ("Trạng thái", "State"),
    "reason": ("Lý do", "Reason"),
    "subject": ("Tiêu đề", "Subject"),
    "actions": ("Thao tác", "Actions"),
    "retry": ("Gửi lại ngay", "Retry now"),
    "bounce": ("Trả về người gửi", "Return to sender"),
    "delete": ("Xóa", "Delete"),
    "release": ("Chuyển vào hộp thư", "Release"),
    "empty": ("Không có mục nào.", "Nothing here."),
    "done": ("Đã thực hiện.", "Done."),
    "not_found": ("Không tìm thấy mục này (có thể đã được xử lý).", "No such entry (maybe already handled)."),
    "actor": ("Người thực hiện", "Actor"),
    "action": ("Hành động", "Action"),
    "decision": ("Quyết định", "Decision"),
    "detail": ("Chi tiết", "Detail"),
    "pki": ("Chứng thư số", "Certificates"),
    "period_start": ("Từ ngày", "From"),
    "period_end": ("Đến ngày", "To"),
    "check_day": ("Ngày kiểm tra hộp thư cơ quan", "Mailbox-check day"),
    "show": ("Xem", "Show"),
    "checks_title": (
        "Hộp thư cơ quan chưa được kiểm tra đủ {n} lần trong ngày (Điều 6 khoản 6)",
        "Agency mailboxes not checked {n} times that day (Article 6(6))",
    ),
    "not_working_day": ("Không phải ngày làm việc.", "Not a working day."),
    "opens": ("Số lần kiểm tra", "Checks"),
    # /admin/dispatches
    "dispatches": ("Văn bản đã gửi", "Dispatches"),
    "dmarc": ("Báo cáo DMARC", "DMARC reports"),
    "dmarc_intro": ("Ai gửi thư dưới tên miền của tỉnh, theo các báo cáo tổng hợp DMARC mà các máy chủ "
                    "nhận thư gửi về", "Who sends mail as the province's domains, according to the DMARC "
                    "aggregate reports other receivers sent us"),
    "header_from": ("Tên miền người gửi (From)", "Author domain (From)"),
    "source_ip": ("Địa chỉ IP gửi", "Source IP"),
    "messages": ("Số thư", "Messages"),
    "dmarc_pass": ("Đạt", "Pass"),
    "dmarc_fail": ("Không đạt", "Fail"),
    "reporters": ("Nơi báo cáo", "Reported by"),
    "document": ("Văn bản", "Document"),
    "mail_signature": ("Chữ ký thư (S/MIME)", "Mail signature (S/MIME)"),
    "pdf_signature": ("Chữ ký số trong tệp PDF", "Signature inside the PDF"),
    "signed": ("đã ký", "signed"),
    "not_signed": ("không ký", "not signed"),
    "signer": ("Người ký", "Signer"),
    "signed_at": ("Thời gian ký", "Signed at"),
    "timestamped": ("có dấu thời gian", "time-stamped"),
    "pdf_valid": ("hợp lệ", "valid"),
    "pdf_invalid": ("không hợp lệ", "invalid"),
    "pdf_revoked": ("chứng thư đã bị thu hồi", "certificate revoked"),
    "pdf_untrusted": ("không xác minh được nguồn gốc", "untrusted"),
    "pdf_unsigned": ("không có chữ ký số", "unsigned"),
}


def pick_lang(query: str | None, cookie: str | None) -> str:
    for candidate in (query, cookie):
        if candidate in LANGS:
            return candidate
    return "vi"


def translate(key: str, lang: str, **values: object) -> str:
    pair = TEXTS.get(key)
    if pair is None:
        return key
    text = pair[1] if lang == "en" else pair[0]
    return text.format(**values) if values else text
