"""Classified documents must not travel by e-mail.

Decision 70/2009/QĐ-UBND of the Đồng Nai People's Committee, Điều 6 khoản 2
("Được phép gửi, nhận ... các loại văn bản (trừ những văn bản mật)") and
khoản 8 ("trừ những văn bản mật"): a message whose subject, body or any
attachment (inside archives and attached messages too) carries a secrecy
marking -- MẬT, TỐI MẬT, TUYỆT MẬT, see ``policy.markings`` -- is refused with
``550 5.7.1``. The reason, logged and stored with a quarantined copy, names
the level and where it was found, in Vietnamese then English.

Exception: ``policy.classified.allow_senders`` lists senders exempted by a
documented decision (e.g. a secure gateway); they pass with
``classified=allowed`` in ``X-Policy``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from policy import codes, markings
from policy.checks import Check, MessageView, address_listed
from policy.context import PolicyContext
from policy.settings import ClassifiedOptions
from policy.verdict import Verdict, accept, reject

_VN_WHERE = (
    ("attachment", "tệp đính kèm"),
    ("subject", "tiêu đề"),
    ("body", "nội dung thư"),
    ("(title)", "(tên tài liệu)"),
    ("(properties)", "(thuộc tính)"),
    ("attached message", "thư đính kèm"),
)


def vietnamese_where(where: str) -> str:
    for english, vietnamese in _VN_WHERE:
        where = where.replace(english, vietnamese)
    return where


class ClassifiedCheck(Check[ClassifiedOptions]):
    name: ClassVar[str] = "classified"
    options_type: ClassVar[type[Any]] = ClassifiedOptions
    needs_analysis: ClassVar[bool] = True

    async def data(self, ctx: PolicyContext, message: MessageView) -> Verdict:
        allow = list(self.options.allow_senders)
        if ctx.envelope.mail_from and address_listed(ctx.envelope.mail_from, allow):
            return accept(self.name, "allowed", reason=f"sender {ctx.envelope.mail_from} allow-listed")
        # Found in the worker (policy.extract.walk.analyse) on the full texts.
        found = message.analysis.markings
        if not found:
            return accept(self.name)
        levels = sorted({m.level for _, m in found}, key=markings.LEVELS.index)
        vn = "; ".join(f'{vietnamese_where(where)}: "{m.snippet}"' for where, m in found[:5])
        en = "; ".join(f'{where}: {m.form} "{m.snippet}"' for where, m in found[:5])
        reason = (
            f"Văn bản mật ({', '.join(levels)}) không được gửi qua thư điện tử (QĐ 70/2009/QĐ-UBND, "
            f"Điều 6 khoản 2): dấu mật ở {vn}. / Classified marking ({', '.join(levels)}) found in {en}."
        )
        return reject(
            self.name,
            codes.S550_CLASSIFIED,
            reason,
            summary=f"fail/{levels[0]}".replace("TUYỆT MẬT", "tuyet-mat")
            .replace("TỐI MẬT", "toi-mat")
            .replace("MẬT", "mat"),
        )
