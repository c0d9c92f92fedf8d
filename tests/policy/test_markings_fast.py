"""``policy.markings.scan_text`` skips the field search on lines without
"mật" and the split into segments on lines without a tab, three spaces or a
bar: its markings must be the very ones of the version without those skips."""

from __future__ import annotations

import random

import pytest

from policy import markings
from policy.markings import Marking, scan_text


def general_scan_text(text: str, *, structural: bool, cells: bool = False) -> list[Marking]:
    """``scan_text`` as it was written before the skips."""
    m = markings
    found: list[Marking] = []
    if text.isascii():
        return found
    text = m.normalise(text)
    if "ậ" not in text and "Ậ" not in text:
        return found
    lines = [stripped for raw in text.splitlines() if (stripped := raw.strip())]
    for index, line in enumerate(lines):
        if "ậ" not in line and "Ậ" not in line:
            continue
        folded = m.fold(line)
        stamp = m._stamp(line)
        if stamp is not None:
            level, core = stamp
            previous = lines[index - 1] if index else ""
            wrapped = m._last_word(previous) in m._COMPOUND_BEFORE and not structural
            if wrapped or m._enumeration(lines, index, level):
                continue
            if m._is_upper(core) or (
                m._is_capitalised(core)
                and m._capitalised_stamp(lines, index, level, core, structural=structural, cells=cells)
            ):
                found.append(Marking(level, "stamp line", m._snippet(line)))
                continue
        for match in m._FIELD.finditer(folded):
            found.append(Marking(m._level(match.group("level")), "Độ mật field", m._snippet(line)))
        if not found or found[-1].snippet != m._snippet(line):
            segments = [s for s in m._SEGMENTS.split(line) if s.strip()]
            if len(segments) > 1:
                for segment in segments:
                    seg_stamp = m._stamp(segment)
                    if seg_stamp is not None and m._is_upper(seg_stamp[1]):
                        found.append(Marking(seg_stamp[0], "stamp in header line", m._snippet(line)))
                        break
    return found


PIECES = [
    "MẬT",
    "Mật",
    "mật",
    "TỐI MẬT",
    "Tuyệt mật",
    "M Ậ T",
    "KHẨN",
    "Độ mật: Tối mật",
    "độ mật:\tMật",
    "Mức độ mật: MẬT, số 12",
    "ĐỘ MẬT",
    "bảo mật",
    "mật khẩu",
    "cập nhật",
    "Số: 12/BC-UBND",
    "QUYẾT ĐỊNH",
    "\t",
    "   ",
    " | ",
    "|",
    "  ",
    " ",
    "Trân trọng,",
    "Nguyễn Văn",
    "a",
    "m\u1ea1\u0302t",  # "mật" decomposed
    "\u00a0",
]


@pytest.mark.parametrize("seed", range(6))
def test_skips_agree_with_the_general_scan(seed: int) -> None:
    rng = random.Random(seed)
    seen = 0
    for _ in range(1500):
        sizes = [rng.randint(1, 4) for _ in range(rng.randint(1, 8))]
        lines = ["".join(rng.choice(PIECES) for _ in range(size)) for size in sizes]
        text = "\n".join(lines)
        for structural, cells in ((False, False), (True, False), (True, True)):
            got = scan_text(text, structural=structural, cells=cells)
            assert got == general_scan_text(text, structural=structural, cells=cells), repr(text)
            seen += bool(got)
    assert seen > 1000
    forms = {m.form for m in scan_text("Độ mật: Tối mật\nBÁO CÁO\tMẬT", structural=False)}
    assert forms == {"Độ mật field", "stamp in header line"}
