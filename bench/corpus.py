"""Deterministic benchmark corpus: realistic MIME (RFC 2045-2049), Vietnamese subjects
(RFC 2047 encoded-words), some with attachments. The same seed gives the same bytes,
so every run and both servers see the same messages and sha256 values.
"""

from __future__ import annotations

import base64
import hashlib
import random
from dataclasses import dataclass

SUBJECTS = [
    "Công văn số {n}/UBND-VP về việc triển khai thư điện tử",
    "Báo cáo tình hình thực hiện nhiệm vụ tháng {m}",
    "Giấy mời họp giao ban tuần {n}",
    "Thông báo lịch tiếp công dân quý {q}",
    "Kế hoạch chuyển đổi số năm 2024 (lần {n})",
    "Tờ trình phê duyệt dự toán kinh phí số {n}",
    "V/v góp ý dự thảo quyết định về an toàn thông tin",
    "Đề nghị cấp tài khoản thư điện tử cho cán bộ mới",
]
WORDS = ("đồng nai ủy ban nhân dân tỉnh sở thông tin truyền thông văn bản quyết định điều khoản "
         "cán bộ công chức viên chức hộp thư điện tử quản lý sử dụng trách nhiệm cơ quan đơn vị "
         "báo cáo kế hoạch triển khai thực hiện an toàn bảo mật dữ liệu hệ thống").split()
NAMES = ["Nguyễn Văn An", "Trần Thị Bích Ngọc", "Lê Hoàng Minh", "Phạm Thu Hà", "Điểu K'Lứt"]
SEARCH_WORD = "Công văn"
"""Subject term the SEARCH scenario looks for (1 in 8 subjects)."""
SINCE = "1-Mar-2024"
"""Half the INTERNALDATEs are before this, half on or after."""


@dataclass(frozen=True, slots=True)
class Message:
    data: bytes
    seen: bool
    internaldate: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _ew(text: str) -> str:
    return "=?UTF-8?B?" + base64.b64encode(text.encode()).decode() + "?="


def _b64_lines(data: bytes) -> str:
    encoded = base64.b64encode(data).decode()
    return "\r\n".join(encoded[i:i + 76] for i in range(0, len(encoded), 76))


def message(rng: random.Random, i: int) -> Message:
    subject = rng.choice(SUBJECTS).format(n=i, m=1 + i % 12, q=1 + i % 4)
    sender = rng.choice(NAMES)
    day = 1 + i % 28
    month = "Feb" if i % 2 else "Mar"
    date = f"{day:02d} {month} 2024 {8 + i % 10:02d}:{i % 60:02d}:00 +0700"
    text = "\r\n".join(" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(rng.randint(10, 80)))
    boundary = f"=_bench_{i}_{rng.getrandbits(32):08x}"
    headers = (
        f"From: {_ew(sender)} <vanthu{i % 50}@example.org>\r\n"
        f"To: {_ew('Hộp thư thử nghiệm')} <bench@dongnai.gov.vn>\r\n"
        f"Subject: {_ew(subject)}\r\n"
        f"Date: {['Mon', 'Tue', 'Wed', 'Thu', 'Fri'][i % 5]}, {date}\r\n"
        f"Message-ID: <bench.{i}@example.org>\r\n"
        "MIME-Version: 1.0\r\n"
    )
    body_part = (
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + _b64_lines(text.encode()) + "\r\n"
    )
    if i % 5 == 0:  # one in five carries an attachment of 10-200 KB
        blob = rng.randbytes(rng.randint(10_000, 200_000))
        name = _ew(f"Tài liệu {i}.pdf")
        data = (
            headers + f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
            f"--{boundary}\r\n{body_part}--{boundary}\r\n"
            f'Content-Type: application/pdf; name="{name}"\r\nContent-Transfer-Encoding: base64\r\n'
            f'Content-Disposition: attachment; filename="{name}"\r\n\r\n'
            + _b64_lines(b"%PDF-1.4\n" + blob) + f"\r\n--{boundary}--\r\n"
        )
    else:
        data = headers + body_part
    return Message(data.encode(), seen=i % 3 != 0, internaldate=f'"{day:02d}-{month}-2024 10:00:00 +0700"')


def build(count: int, seed: int = 70_2009) -> list[Message]:
    rng = random.Random(seed)
    return [message(rng, i) for i in range(count)]
