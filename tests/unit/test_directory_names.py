"""mailserver/directory/names.py: the short forms agencies are written with, the
notes after a "Nơi nhận" entry, and the search ranking (table-driven)."""

from __future__ import annotations

import pytest

from mailserver.directory.names import Ambiguous, NameIndex, Target, canon, forms, rank, strip_notes

AGENCIES = {
    "stttt": "Sở Thông tin và Truyền thông",
    "skhdt": "Sở Kế hoạch và Đầu tư",
    "sldtbxh": "Sở Lao động - Thương binh và Xã hội",
    "ubndlongthanh": "Ủy ban nhân dân huyện Long Thành",
    "ubndbienhoa": "Ủy ban nhân dân thành phố Biên Hòa",
    "ubndlongkhanh": "Ủy ban nhân dân thành phố Long Khánh",
    "ubndtinh": "Ủy ban nhân dân tỉnh Đồng Nai",
    "vpubnd": "Văn phòng Ủy ban nhân dân tỉnh",
    "bchqs": "Bộ Chỉ huy Quân sự tỉnh",
}


@pytest.fixture(scope="module")
def index() -> NameIndex:
    idx = NameIndex()
    for code, name in AGENCIES.items():
        idx.add(Target("agency", code, name), [name])
    return idx


@pytest.mark.parametrize(("written", "code"), [
    ("Sở TTTT", "stttt"), ("Sở TT&TT", "stttt"), ("Sở TT & TT", "stttt"), ("Sở TT-TT", "stttt"),
    ("SỞ THÔNG TIN VÀ TRUYỀN THÔNG", "stttt"), ("Sở Thông tin & Truyền thông", "stttt"),
    ("Sở KHĐT", "skhdt"), ("Sở KH&ĐT", "skhdt"), ("Sở LĐTBXH", "sldtbxh"), ("Sở LĐ-TB&XH", "sldtbxh"),
    ("UBND h. Long Thành", "ubndlongthanh"), ("UBND huyện Long Thành", "ubndlongthanh"),
    ("UBND Long Thành", "ubndlongthanh"), ("UBND tp. Biên Hòa", "ubndbienhoa"),
    ("UBND TP Biên Hoà", "ubndbienhoa"), ("UBND thành phố Biên Hòa", "ubndbienhoa"),
    ("UBND tỉnh", "ubndtinh"), ("UBND tỉnh Đồng Nai", "ubndtinh"), ("VP UBND tỉnh", "vpubnd"),
    ("Văn phòng UBND tỉnh", "vpubnd"), ("Bộ CHQS tỉnh", "bchqs"), ("stttt", "stttt"),
])
def test_short_forms(index: NameIndex, written: str, code: str) -> None:
    found = index.lookup(written)
    assert isinstance(found, Target) and found.code == code


def test_unknown_and_ambiguous(index: NameIndex) -> None:
    assert index.lookup("Bộ TT&TT") is None
    assert index.lookup("Sở Tài chính") is None
    both = NameIndex()
    both.add(Target("agency", "stc", "Sở Tài chính"), ["Sở Tài chính"])
    both.add(Target("agency", "stnmt", "Sở Tài nguyên và Môi trường"), ["Sở Tài nguyên và Môi trường"])
    both.add(Target("agency", "stcx", "Sở Thể chế"), ["Sở Thể chế"])
    found = both.lookup("Sở TC")  # two derived forms alike: the operator must say which
    assert isinstance(found, Ambiguous) and {t.code for t in found.targets} == {"stc", "stcx"}
    exact = both.lookup("Sở Tài chính")  # a full name is never ambiguous with a short form
    assert isinstance(exact, Target) and exact.code == "stc"


@pytest.mark.parametrize(("line", "entry"), [
    ("UBND huyện Nhơn Trạch (để thực hiện);", "UBND huyện Nhơn Trạch"),
    ("Bộ TT&TT (b/c);", "Bộ TT&TT"),
    ("Sở Tài chính (để biết).", "Sở Tài chính"),
    ("Chủ tịch, các PCT UBND tỉnh (thay b/c);", "Chủ tịch, các PCT UBND tỉnh"),
    ("Sở TC (để biết", "Sở TC"),
    ("Lưu: VT, KGVX.", "Lưu: VT, KGVX"),
])
def test_notes_removed(line: str, entry: str) -> None:
    assert strip_notes(line) == entry


def test_scan_an_article(index: NameIndex) -> None:
    text = ("Điều 3. Chánh Văn phòng UBND tỉnh, Giám đốc Sở Kế hoạch và Đầu tư, Chủ tịch UBND huyện "
            "Long Thành và Thủ trưởng các cơ quan liên quan chịu trách nhiệm thi hành Quyết định này./.")
    assert [t.code for _, t in index.scan(text)] == ["vpubnd", "skhdt", "ubndlongthanh"]


@pytest.mark.parametrize(("query", "name", "others", "score"), [
    ("nguyen van an", "Nguyễn Văn An", [], 4),
    ("an nguyen van", "Nguyễn Văn An", [], 3),
    ("nguyen van an", "Nguyễn Văn Anh", [], 1),
    ("nguyen van an", "Nguyễn Thị Ơn", ["Chuyên viên Văn phòng"], 0),
    ("an", "Trần Văn Toàn", [], 0),
    ("an", "Lê Thị Lan", ["lanlt@dongnai.gov.vn"], 0),
    ("giam doc", "Nguyễn Văn An", ["Giám đốc"], 2),
    ("annv", "Nguyễn Văn An", ["annv@dongnai.gov.vn"], 2),
    ("xyz", "Nguyễn Văn An", [], -1),
])
def test_rank(query: str, name: str, others: list[str], score: int) -> None:
    assert rank(query, name, others) == score


def test_rank_by_key() -> None:
    keys = forms("Sở Thông tin và Truyền thông")
    assert rank("Sở TT&TT", "Sở Thông tin và Truyền thông", [], keys) == 5
    assert canon("Ủy ban nhân dân thành phố Biên Hòa") == "ubnd tp bien hoa"
