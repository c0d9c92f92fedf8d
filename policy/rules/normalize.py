"""Text as the spam rules compare it, undoing what spammers do to dodge
word lists (Unicode TR #36 "Unicode Security Considerations" section 2, TR #39
"Unicode Security Mechanisms" section 4 confusables).

``fold`` turns a text into two aligned strings:

1. NFKC (compatibility forms: full-width Ｖｉｅｔ, mathematical 𝐕𝐢𝐞𝐭,
   ligatures become plain letters), then NFC;
2. format characters (general category Cf: zero-width space, joiners, word
   joiner, soft hyphen, bidi marks) are dropped;
3. Cyrillic and Greek letters drawn like Latin ones ("Vіetcombаnk") become
   the Latin letters (``CONFUSABLES``, the subset of TR #39 confusables.txt
   that phishing kits use);
4. case folding;
5. combining marks that compose with no letter are dropped;
6. ``plain``: the same text without Vietnamese diacritics (đ as d), so that
   "trung thuong" written without marks matches "trúng thưởng", with
   ``index`` mapping each position of ``plain`` back to ``accented``
   (one character each: marks of NFC letters are dropped with their letter).

``Folded`` also counts the evasions themselves -- format characters inside
words, words mixing Latin with Cyrillic/Greek -- which are signals of their
own: Vietnamese is written in Latin letters only, and ordinary text has no
zero-width characters inside words.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final

CONFUSABLES: Final[dict[str, str]] = {
    # Cyrillic (TR #39 confusables.txt, "MA" table entries to Latin)
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "і": "i", "ї": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w",
    "һ": "h", "ӏ": "l", "ɡ": "g",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T",
    "У": "Y", "Х": "X", "І": "I", "Ј": "J", "Ѕ": "S",
    # Greek
    "α": "a", "ο": "o", "ρ": "p", "ν": "v", "κ": "k", "ι": "i", "τ": "t", "υ": "u", "ε": "e",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O",
    "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
}  # fmt: skip
CONFUSABLE_TABLE: Final = str.maketrans(dict(CONFUSABLES.items()))
_WORD: Final = re.compile(r"[^\W\d_]+")


def _is_format(char: str) -> bool:
    return unicodedata.category(char) == "Cf"


def _script(char: str) -> str:
    """``latin``, ``cyrillic``, ``greek`` or ``other`` (by Unicode name)."""
    if char.isascii():
        return "latin"
    name = unicodedata.name(char, "")
    for script in ("LATIN", "CYRILLIC", "GREEK"):
        if name.startswith(script):
            return script.lower()
    return "other"


def _strip_char(char: str) -> str:
    if char in "đĐ":
        return "d"
    if char.isascii():
        return char
    base = "".join(c for c in unicodedata.normalize("NFD", char) if not unicodedata.combining(c))
    return base if len(base) == 1 else char


@dataclass(frozen=True, slots=True)
class Folded:
    accented: str
    """NFKC, no format characters, confusables mapped, case-folded, NFC."""
    plain: str
    """``accented`` without diacritics, one character per character of it."""
    hidden_in_words: int
    """Format characters found between two letters (zero-width evasion)."""
    mixed_words: tuple[str, ...]
    """Words written with Latin and Cyrillic/Greek letters together."""

    @property
    def has_marks(self) -> bool:
        """Whether the text is Vietnamese written with its diacritics (enough
        marked letters that a phrase without its marks is another phrase)."""
        letters = sum(1 for c in self.accented if c.isalpha())
        marked = sum(1 for a, p in zip(self.accented, self.plain, strict=True) if a != p)
        return letters > 0 and marked * 12 >= letters


def fold(text: str) -> Folded:
    text = unicodedata.normalize("NFKC", text)
    hidden = 0
    if any(_is_format(c) for c in text):
        kept: list[str] = []
        for i, char in enumerate(text):
            if _is_format(char):
                if 0 < i < len(text) - 1 and text[i - 1].isalpha() and text[i + 1].isalpha():
                    hidden += 1
                continue
            kept.append(char)
        text = "".join(kept)
    mixed: list[str] = []
    if not text.isascii():
        for word in _WORD.findall(text):
            scripts = {_script(c) for c in word}
            if "latin" in scripts and scripts & {"cyrillic", "greek"}:
                mixed.append(word)
        text = text.translate(CONFUSABLE_TABLE)
    accented = unicodedata.normalize("NFC", text.casefold())
    if not accented.isascii():
        # Marks that compose with nothing (strike-through letters, stacked accents) carry no letter.
        accented = "".join(c for c in accented if not unicodedata.combining(c))
    plain = accented if accented.isascii() else "".join(_strip_char(c) for c in accented)
    return Folded(accented, plain, hidden, tuple(mixed))


def plain(text: str) -> str:
    """``fold(text).plain``: case-folded, confusables mapped, no diacritics."""
    return fold(text).plain
