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

__all__ = ["exact", "fold", "has_marks", "joined_words", "words"]

_D: Final = (("đ", "d"), ("ð", "d"), ("ı", "i"))
"""Case-folded letters that are not base letter + marks in Unicode (no
decomposition): đ, and the look-alikes legacy fonts and keyboards put in its
place (eth, dotless i). ``str.replace`` each: far faster than ``translate``."""
_LATIN_MARKS: Final = re.compile("[\u0300-\u036f]+")
"""Combining Diacritical Marks: every Vietnamese tone and vowel mark after NFD."""
_NOT_LATIN_MARK: Final = re.compile("[^\x00-\x7f\u0300-\u036f]")
"""After NFD: a character that is neither ASCII nor a Combining Diacritical Mark.
Without one, removing ``_LATIN_MARKS`` is dropping every non-ASCII character, which
an ASCII encode does ~15x faster than the regex substitution (Vietnamese text)."""
_WORD: Final = re.compile(r"[^\W_]+")
"""A token: letters and digits (``_`` and punctuation separate, as in FTS5's unicode61)."""
_SEPARATORS: Final = bytes(c if c >= 0x80 or chr(c).isalnum() else 0x20 for c in range(256))
"""``bytes.translate`` table for UTF-8 text: every ASCII octet that is not a letter or
digit (``_WORD``'s separators among ASCII) becomes a space; letters, digits and
the octets of non-ASCII characters stay."""
_ASCII: Final = bytes(range(0x80))
_MANY_SEPARATORS: Final = 32
"""Distinct non-ASCII separator characters (punctuation, symbols, spaces) beyond
which ``joined_words`` leaves the text to the regex rather than replace each."""


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
    if not _NOT_LATIN_MARK.search(decomposed):
        return decomposed.encode("ascii", "ignore").decode("ascii")
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


def joined_words(text: str) -> str:
    """``" ".join(words(text))``, what the index stores, without a regex match per token.

    The octets of the UTF-8 text are cut at ASCII whitespace once every separator is a
    space: an ASCII one by ``bytes.translate``, a non-ASCII one (``"“"``, ``"–"``, a
    no-break space: anything not ``str.isalnum``, as ``\\W`` decides) by ``str.replace``
    first. Non-ASCII letters and digits are left whole, as the regex leaves them;
    ``tests/unit/test_textfold.py`` checks both against each other."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (a separator): rare, the regex handles it
        return " ".join(_WORD.findall(text))
    if not data.isascii():
        others = data.translate(None, _ASCII).decode("utf-8")
        if not others.isalnum():
            separators = [c for c in set(others) if not c.isalnum()]
            if len(separators) > _MANY_SEPARATORS:
                return " ".join(_WORD.findall(text))
            for separator in separators:
                text = text.replace(separator, " ")
            data = text.encode("utf-8")
    return b" ".join(data.translate(_SEPARATORS).split()).decode("utf-8")
