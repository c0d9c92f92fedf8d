"""Vietnamese-aware text folding for search: one function for documents and queries.

Staff type on phones without diacritics ("quyet dinh" for "Quyết định", "dong nai"
for "Đồng Nai"), so search compares *folded* text: Unicode NFC (UAX #15), full
case folding (Unicode section 3.13, ``str.casefold``), then every tone and vowel
mark removed by decomposing (NFD) and dropping the combining marks, and finally
``đ``/``Đ`` -> ``d`` (U+0111 has no decomposition, which is why Dovecot's ICU
normalisation keeps it). The result is recomposed (NFC) so that scripts whose NFD
splits letters without marks (Hangul) come back whole.

``exact`` is the unfolded comparison form (NFC + casefold) that the
``search.exact_diacritics`` mode matches against, and ``words`` cuts either form
into the tokens both search engines index: runs of letters and digits, so a
document symbol "123/QĐ-UBND" is the token phrase ``123 qd ubnd`` whether typed
with or without diacritics (the whole symbol matches as a phrase, its parts alone).
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from typing import Final

__all__ = ["exact", "fold", "has_marks", "words"]

_D: Final = (("đ", "d"), ("ð", "d"), ("ı", "i"))
"""Case-folded letters that are not base letter + marks in Unicode (no
decomposition): đ, and the look-alikes legacy fonts and keyboards put in its
place (eth, dotless i). ``str.replace`` each: far faster than ``translate``."""
_LATIN_MARKS: Final = re.compile("[\u0300-\u036f]+")
"""Combining Diacritical Marks: every Vietnamese tone and vowel mark after NFD."""
_WORD: Final = re.compile(r"[^\W_]+")
"""A token: letters and digits (``_`` and punctuation separate, as in FTS5's unicode61)."""


@functools.cache
def _all_marks() -> re.Pattern[str]:
    """Every code point with a non-zero canonical combining class (built once)."""
    ranges: list[str] = []
    start = -1
    for code in range(0x300, sys.maxunicode + 2):
        marked = code <= sys.maxunicode and unicodedata.combining(chr(code)) != 0
        if marked and start < 0:
            start = code
        elif not marked and start >= 0:
            ranges.append(f"{re.escape(chr(start))}-{re.escape(chr(code - 1))}")
            start = -1
    return re.compile("[" + "".join(ranges) + "]+")


def exact(text: str) -> str:
    """``text`` in NFC and case-folded: the form compared when diacritics must match."""
    if text.isascii():
        return text.lower()
    # casefold may decompose (U+01F0 -> j + U+030C), so recompose afterwards.
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())


def fold(text: str) -> str:
    """``text`` case-folded without tone or vowel marks, đ -> d ("Đồng Nai" -> "dong nai")."""
    if text.isascii():
        return text.lower()
    folded = text.casefold()
    for letter, base in _D:
        if letter in folded:
            folded = folded.replace(letter, base)
    decomposed = unicodedata.normalize("NFD", folded)
    stripped = _LATIN_MARKS.sub("", decomposed)
    if stripped.isascii():
        return stripped
    return unicodedata.normalize("NFC", _all_marks().sub("", stripped))


def has_marks(text: str) -> bool:
    """True when folding changes ``text`` beyond case: it carries diacritics or đ."""
    return fold(text) != exact(text)


def words(text: str) -> list[str]:
    """The tokens of already folded (or exact) ``text``: runs of letters and digits."""
    return _WORD.findall(text)
