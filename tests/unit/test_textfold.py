"""storage.textfold: Vietnamese folding shared by the index, IMAP SEARCH/SORT and directory search."""

from __future__ import annotations

import pytest

from storage.textfold import exact, fold, has_marks, words


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Quyết định", "quyet dinh"),
        ("ĐỒNG NAI", "dong nai"),
        ("Đồng Nai", "dong nai"),
        ("đường", "duong"),
        ("Nguyễn Thị Ánh Tuyết", "nguyen thi anh tuyet"),
        ("123/QĐ-UBND", "123/qd-ubnd"),
        ("Straße", "strasse"),
        ("ǰ", "j"),  # casefold decomposes; the mark goes too
        ("Quye\u0302\u0301t", "quyet"),  # decomposed input (NFD from a Mac)
        ("한국", "한국"),  # NFD splits Hangul; folding recomposes it
        ("plain ascii", "plain ascii"),
        ("ÐỒNG ðồng", "dong dong"),  # eth typed for Đ (legacy keyboards)
        ("Tı", "ti"),
    ],
)
def test_fold(text: str, folded: str) -> None:
    assert fold(text) == folded


def test_exact_keeps_marks_and_composes() -> None:
    assert exact("Quye\u0302\u0301t ĐỊNH") == "quyết định"
    assert exact("ABC") == "abc"


def test_has_marks() -> None:
    assert has_marks("Đồng")
    assert has_marks("đ")
    assert not has_marks("Dong NAI")


def test_words_split_symbols_into_parts() -> None:
    assert words(fold("Số 123/QĐ-UBND, ngày 5.")) == ["so", "123", "qd", "ubnd", "ngay", "5"]
    assert words("a_b") == ["a", "b"]
