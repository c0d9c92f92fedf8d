"""The CLI's error lines, Vietnamese first with English beside it, as the rest of
what operators and staff read (GUIDE: Vietnamese first, English beside it).

Messages written bilingually where they are raised ("không có tệp / no such
file: x") pass unchanged. The others, English ones from the directory, the
stores, argparse and the operating system, get the Vietnamese meaning put in
front: by the kind of refusal when it is one of the directory's
(``describe``), else by the first phrase of ``PHRASES`` the text contains,
else a plain "lỗi / error". Each stays on one line, printed once by ``main``.
"""

from __future__ import annotations

import re
from typing import Final

from mailserver.directory.naming import NamingError
from storage.directory import (
    AddressTaken,
    AgencyExists,
    AliasTaken,
    DirectoryError,
    NoSuchAgency,
    NoSuchEntry,
    NoSuchPerson,
    PersonHasMailbox,
)

__all__ = ["PHRASES", "bilingual", "describe", "usage_error"]

KINDS: Final[tuple[tuple[type[Exception], str, str], ...]] = (
    (NoSuchAgency, "không có cơ quan", "no such agency"),
    (AgencyExists, "cơ quan đã có", "agency exists"),
    (AliasTaken, "tên này đã dùng", "name in use"),
    (PersonHasMailbox, "người này đã có hộp thư (Điều 4 khoản 2)", "already has a mailbox"),
    (AddressTaken, "địa chỉ đã cấp hoặc dành riêng", "address taken"),
    (NoSuchPerson, "không có người này", "no such person"),
    (NoSuchEntry, "không có trong danh bạ", "not in the directory"),
    (NamingError, "tên hoặc mã không hợp lệ", "invalid name or code"),
    (DirectoryError, "danh bạ từ chối", "refused"),
)
"""Kinds of refusal, most specific first: (type, Vietnamese, English)."""

PHRASES: Final[tuple[tuple[str, str], ...]] = (
    # staff import, one line of the file
    (r"unknown column", "cột không rõ"),
    (r"missing column|need column", "thiếu cột"),
    (r"named twice", "một cột có hai lần"),
    (r"fields, the header has", "số ô khác dòng tiêu đề"),
    (r"not UTF-8", "tệp không phải UTF-8"),
    (r"empty file|no data rows|empty workbook", "tệp trống"),
    (r"bad CSV", "CSV sai cú pháp"),
    (r"xlsx", "không đọc được tệp Excel"),
    (r"ma_co_quan is empty", "thiếu mã cơ quan"),
    (r"no name|without ten", "thiếu tên"),
    (r"not a telephone number", "số điện thoại không hợp lệ"),
    (r"not a valid local part", "tên hộp thư không hợp lệ"),
    (r"is also on line", "trùng người ở dòng khác"),
    (r"already has", "người này đã có hộp thư (Điều 4 khoản 2)"),
    (r"no agency", "không có cơ quan"),
    # directory and accounts
    (r"is a reserved role name", "tên dành riêng cho hộp thư chức năng"),
    (r"already issued or retired", "địa chỉ đã cấp hoặc đã thu hồi, không cấp lại (Điều 4)"),
    (r"exists outside the directory", "đã có tài khoản ngoài danh bạ"),
    (r"nothing imported", "tệp có lỗi, chưa nhập gì"),
    (r"has left", "người này đã nghỉ"),
    (r"is not an active person", "người này không còn công tác"),
    (r"is already head of", "đã là thủ trưởng"),
    (r"holds no delegation", "không được ủy quyền"),
    (r"no active mailbox|no mailbox", "không có hộp thư"),
    (r"cannot be delegated to itself", "không thể ủy quyền cho chính hộp thư cơ quan"),
    (r"rights", "quyền không hợp lệ"),
    (r"give --name", "cần --name, hoặc --given"),
    (r"not a valid address", "địa chỉ không hợp lệ"),
    (r"is not a local domain", "không phải tên miền của hệ thống"),
    (r"never issued again", "địa chỉ đã thu hồi, không cấp lại"),
    (r"account exists", "tài khoản đã có"),
    (r"no such account", "không có tài khoản"),
    (r"no password on standard input", "không có mật khẩu ở đầu vào chuẩn"),
    (r"password too short", "mật khẩu quá ngắn"),
    (r"passwords differ", "hai mật khẩu mới không khớp"),
    (r"expected two lines on standard input", "cần hai dòng ở đầu vào chuẩn: mật khẩu cũ, rồi mật khẩu mới"),
    (r"password not changed", "mật khẩu chưa được đổi"),
    # queue, quarantine, spam, operations
    (r"no queued message", "không có thư này trong hàng đợi"),
    (r"no such quarantine entry", "không có thư cách ly này"),
    (r"no local recipient left", "không còn người nhận nội bộ"),
    (r"no message with id", "không có thư mang mã này"),
    (r"give --spam", "cần --spam và/hoặc --ham"),
    (r"not a directory", "không phải thư mục"),
    (r"cannot read|unreadable", "không đọc được"),
    (r"backup failed|backup", "lỗi sao lưu"),
    (r"restore failed|restore", "lỗi khôi phục"),
    (r"not an ISO date", "ngày không hợp lệ (YYYY-MM-DD)"),
    (r"--header must be", "--header phải có dạng TÊN:GIÁ TRỊ"),
    (r"must not be empty", "không được để trống"),
    # PKI, DKIM
    (r"certificate", "lỗi chứng thư số"),
    (r"passphrase", "lỗi mật khẩu của khóa bí mật"),
    (r"\bCA\b", "lỗi tổ chức chứng thực (CA)"),
    (r"DKIM|selector", "lỗi khóa DKIM"),
    # operating system, input
    (r"permission denied", "không có quyền truy cập"),
    (r"no such file|not found", "không tìm thấy"),
    (r"connect|refused|unreachable", "không kết nối được"),
    (r"^usage:", "cách dùng"),
)
"""(regular expression, Vietnamese) over an English message, first match wins."""

_COMPILED: Final = tuple((re.compile(p, re.IGNORECASE), vi) for p, vi in PHRASES)
_ARGPARSE: Final = (
    (re.compile(r"the following arguments are required"), "thiếu tham số bắt buộc"),
    (re.compile(r"unrecognized arguments"), "tham số không nhận ra"),
    (re.compile(r"invalid choice"), "lựa chọn không hợp lệ"),
    (re.compile(r"expected \w+ arguments?"), "thiếu giá trị của tham số"),
    (re.compile(r"invalid \w+ value"), "giá trị không hợp lệ"),
    (re.compile(r"not allowed with"), "hai tham số không dùng chung được"),
)


def is_vietnamese_first(text: str) -> bool:
    """A bilingual message of this code base: Vietnamese (non-ASCII letters)
    before the first " / "."""
    head, sep, _ = text.partition(" / ")
    return bool(sep) and any(not c.isascii() and c.isalpha() for c in head)


def bilingual(text: str) -> str:
    """``text`` with its Vietnamese meaning in front, if it has none."""
    text = " ".join(text.split()) or "lỗi không rõ / unknown error"
    if is_vietnamese_first(text):
        return text
    for pattern, vi in _COMPILED:
        if pattern.search(text):
            return f"{vi} / {text}"
    return f"lỗi / error: {text}"


def describe(exc: BaseException) -> str:
    """One line for a refusal of the directory or the stores (its kind first)."""
    text = " ".join(str(exc).split())
    if is_vietnamese_first(text):
        return text
    for kind, vi, en in KINDS:
        if isinstance(exc, kind):
            # A bare code or address ("ubnd") says nothing by itself.
            detail = text if " " in text else f"{en}: {text}" if text else en
            return f"{vi} / {detail}"
    return bilingual(text or type(exc).__name__)


def usage_error(message: str) -> str:
    """argparse's complaint about the command line, Vietnamese first."""
    for pattern, vi in _ARGPARSE:
        if pattern.search(message):
            return f"lỗi cú pháp lệnh: {vi} / usage error: {message}"
    return f"lỗi cú pháp lệnh / usage error: {message}"
