"""Legacy Vietnamese encodings (TCVN3/ABC, VNI) are tagged, never refused.

Decision 70/2009/QĐ-UBND, Điều 6 khoản 7 asks for TCVN 6909:2001 (Unicode)
in mail. Text and attachments found in TCVN3 or VNI (``policy.extract.legacy``)
are decoded for the other checks and reported: header
``X-Legacy-Encoding: tcvn3; parts=2`` and the pipeline's counters, so the
provincial report can count them. ``action = "ignore"`` is the default of the
table only for refusals (there are none); set ``directions = []`` to disable.
"""

from __future__ import annotations

from typing import Any, ClassVar

from policy.checks import Check, MessageView
from policy.context import PolicyContext
from policy.settings import EncodingOptions
from policy.verdict import Verdict, accept, tag


class EncodingCheck(Check[EncodingOptions]):
    name: ClassVar[str] = "encoding"
    options_type: ClassVar[type[Any]] = EncodingOptions
    needs_analysis: ClassVar[bool] = True

    async def data(self, ctx: PolicyContext, message: MessageView) -> Verdict:
        counts = message.analysis.legacy_counts()
        if not counts:
            return accept(self.name, "unicode")
        names = ",".join(sorted(counts))
        parts = sum(counts.values())
        where = "; ".join(u.where for u in message.analysis.units if u.legacy)[:300]
        return tag(
            self.name,
            names,
            headers=(("X-Legacy-Encoding", f"{names}; parts={parts}"),),
            reason=f"legacy encoding {names} in {where} (QĐ 70/2009 Điều 6 khoản 7: TCVN 6909:2001)",
        )
