"""The address rule of Decision 70/2009/QĐ-UBND Điều 4 khoản 2 (mailserver.directory.naming)."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailserver.directory.naming import (
    MAX_LOCAL_PART,
    NamingError,
    agency_code,
    ascii_fold,
    local_part,
    numbered,
    search_key,
    split_full_name,
)

# (full name as an operator types it, expected local part)
NAMES: list[tuple[str, str]] = [
    ("Nguyễn Văn An", "annv"),
    ("Trần Thị Bích Ngọc", "ngocttb"),
    ("Lê Đình Đức", "ducld"),
    ("Lý Hùng", "hungl"),
    ("Điểu K'Lứt", "klutd"),
    ("Ka Huê", "huek"),
    ("Điểu Sang", "sangd"),
    ("H'Hen Niê", "nieh"),
    ("Y Moan Niê", "nieym"),
    ("K'Brơi", "kbroi"),
    ("Sang", "sang"),
    ("Phạm Minh Chính", "chinhpm"),
    ("Võ Văn Thưởng", "thuongvv"),
    ("Hồ Thị Kim Thoa", "thoahtk"),
    ("Đặng Thị Ngọc Thịnh", "thinhdtn"),
    ("Trương Tấn Sang", "sangtt"),
    ("Huỳnh Văn Nghệ", "nghehv"),
    ("Đinh Quốc Thái", "thaidq"),
    ("Cao Tiến Dũng", "dungct"),
    ("Thái Bảo", "baot"),
    ("Lương Thị Mơ", "molt"),
    ("Ưng Hoàng Phúc", "phucuh"),
    ("Dương Ngọc Hải", "haidn"),
    ("Bùi Thị Xuân", "xuanbt"),
    ("Tôn Nữ Thị Ninh", "ninhtnt"),
    ("Mai Phương Thúy", "thuymp"),
    ("Kiều Thị Thanh Hương", "huongktt"),
    ("Giàng Seo Phử", "phugs"),
    ("Sùng A Páo", "paosa"),
    ("Châu Văn Liêm", "liemcv"),
    ("Âu Dương Lân", "lanad"),
    ("Ông Ích Khiêm", "khiemoi"),
    ("Trịnh Công Sơn", "sontc"),
    ("Nguyễn Thị Minh Khai", "khaintm"),
    ("Lâm Thị Ngọc Ánh", "anhltn"),
    ("Nguyễn Trần Ánh Dương", "duongnta"),
    ("Lê Thị Hồng-Nhung", "hongnhunglt"),
    ("Ở Văn Ửng", "ungov"),
    ("Ðoàn Văn Toại", "toaidv"),  # U+00D0 LATIN CAPITAL LETTER ETH, not Đ U+0110
    ("ÐẶNG VĂN ðỨC", "ducdv"),  # eth in both cases, upper-case input
    ("NGUYỄN VĂN AN", "annv"),
    ("Nguyen Van An", "annv"),
    ("nguyen van an", "annv"),
    ("  Nguyễn   Văn\tAn  ", "annv"),
    ("Nguyễn Văn An 2", "annv"),  # a stray digit syllable has no letter and is dropped
    ("Trần  Thị  Bích  Ngọc ", "ngocttb"),
    ("Vương Đình Huệ", "huevd"),
    ("Hoàng Thị Thúy Nga", "ngahtt"),
]


@pytest.mark.parametrize(("name", "expected"), NAMES)
def test_full_name(name: str, expected: str) -> None:
    assert local_part(name) == expected


def test_table_is_large_enough() -> None:
    assert len(NAMES) >= 40
    assert len({n for n, _ in NAMES}) == len(NAMES)


@pytest.mark.parametrize(("name", "expected"), NAMES)
def test_nfd_input_gives_the_same_address(name: str, expected: str) -> None:
    assert local_part(unicodedata.normalize("NFD", name)) == expected
    assert local_part(unicodedata.normalize("NFKC", name)) == expected


@pytest.mark.parametrize(
    ("family", "middle", "given_name", "expected"),
    [
        ("Nguyễn Hoàng", "", "Bảo Ngọc", "baongocnh"),
        ("Nguyễn", "Hoàng", "Bảo Ngọc", "baongocnh"),
        ("Niê", "", "H'Hen", "hhenn"),
        ("Tôn Nữ", "Thị", "Ninh", "ninhtnt"),
        ("", "", "Sang", "sang"),
        ("Điểu", "", "K'Lứt", "klutd"),
        ("Trần", "Thị Bích", "Ngọc", "ngocttb"),
        ("Lê", "Nguyễn Minh", "Thư", "thulnm"),
        ("NGUYỄN", "VĂN", "AN", "annv"),
    ],
)
def test_separate_parts(family: str, middle: str, given_name: str, expected: str) -> None:
    assert local_part("ignored when given is set", family=family, middle=middle, given=given_name) == expected


def test_empty_given_falls_back_to_full_name() -> None:
    assert local_part("Nguyễn Văn An", family="", middle="", given="  ") == "annv"


@pytest.mark.parametrize("name", ["", "   ", "'''", "123 456", "-"])
def test_no_letters_is_an_error(name: str) -> None:
    with pytest.raises(NamingError):
        local_part(name)


def test_split_full_name() -> None:
    assert split_full_name(" Trần  Thị Bích Ngọc ") == ("Trần", "Thị Bích", "Ngọc")
    assert split_full_name("Lý Hùng") == ("Lý", "", "Hùng")
    assert split_full_name("Sang") == ("", "", "Sang")


def test_ascii_fold() -> None:
    assert ascii_fold("Đường Ðức ðạo ƯƠ ươ") == "duong duc dao uo uo"


def test_numbering_on_collision() -> None:
    taken = {"annv", "annv2"}
    assert numbered("annv", taken.__contains__) == "annv3"
    assert numbered("ngocttb", taken.__contains__) == "ngocttb"


def test_numbering_respects_the_length_limit() -> None:
    base = "a" * MAX_LOCAL_PART
    result = numbered(base, lambda local: local == base)
    assert result == "a" * (MAX_LOCAL_PART - 1) + "2"


def test_very_long_names_are_cut() -> None:
    assert len(local_part("Nguyễn " + "Văn " * 80 + "An")) == MAX_LOCAL_PART


@pytest.mark.parametrize(
    ("code", "expected"), [("STTTT", "stttt"), ("ubndBienHoa", "ubndbienhoa"), ("Sở1", "so1")]
)
def test_agency_code(code: str, expected: str) -> None:
    assert agency_code(code) == expected


@pytest.mark.parametrize("code", ["", "s", "1abc", "ubnd bien hoa", "a-b", "x" * 33])
def test_bad_agency_code(code: str) -> None:
    with pytest.raises(NamingError):
        agency_code(code)


def test_search_key() -> None:
    assert search_key("Nguyễn Văn An", "Chuyên viên") == "nguyen van an chuyen vien"


VIETNAMESE = "aăâbcdđeêghiklmnoôơpqrstuưvxyàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵÐð'"


@given(st.lists(st.text(alphabet=VIETNAMESE + VIETNAMESE.upper(), min_size=1, max_size=8), max_size=5))
def test_any_name_gives_ascii_or_a_clear_error(words: list[str]) -> None:
    name = " ".join(words)
    try:
        result = local_part(name)
    except NamingError:
        return
    assert re.fullmatch(r"[a-z]{1,64}", result)
    assert local_part(unicodedata.normalize("NFD", name)) == result
