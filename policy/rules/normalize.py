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
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
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


class _Table(dict[int, int | None]):
    """A ``str.translate`` table that deletes the characters ``drop`` accepts,
    filled as characters come (a C loop over the text, a Python call once per
    distinct character)."""

    def __init__(self, drop: Callable[[str], bool]) -> None:
        super().__init__()
        self._drop = drop

    def __missing__(self, key: int) -> int | None:
        value = None if self._drop(chr(key)) else key
        self[key] = value
        return value


_DROP_FORMAT: Final = _Table(lambda c: unicodedata.category(c) == "Cf")
_DROP_COMBINING: Final = _Table(lambda c: unicodedata.combining(c) != 0)

# ``str.translate`` looks every character up in the table (~100 ns each, a
# 200 KB text 20 ms): the passes below are skipped when a regex search (C
# speed) says they would change nothing, with identical results.
_CF_RANGES_14: Final = (
    (0xAD, 0xAD), (0x600, 0x605), (0x61C, 0x61C), (0x6DD, 0x6DD), (0x70F, 0x70F), (0x890, 0x891),
    (0x8E2, 0x8E2), (0x180E, 0x180E), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x2064),
    (0x2066, 0x206F), (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0x110BD, 0x110BD), (0x110CD, 0x110CD),
    (0x13430, 0x13438), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0001, 0xE0001), (0xE0020, 0xE007F),
)
"""The format characters (general category Cf) of Unicode 14.0 (Python 3.11's
``unicodedata``); tests/policy checks them against ``unicodedata``."""


def _cf_ranges() -> tuple[tuple[int, int], ...]:
    if unicodedata.unidata_version == "14.0.0":
        return _CF_RANGES_14
    found: list[tuple[int, int]] = []  # another Unicode version: ask unicodedata (once, ~0.5 s)
    for code in range(0x110000):
        if unicodedata.category(chr(code)) == "Cf":
            if found and found[-1][1] == code - 1:
                found[-1] = (found[-1][0], code)
            else:
                found.append((code, code))
    return tuple(found)


_FORMAT_CHAR_BMP: Final = re.compile(
    "[" + "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in _cf_ranges() if b <= 0xFFFF) + "]"
)
_FORMAT_CHAR_ASTRAL: Final = re.compile(
    "[" + "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in _cf_ranges() if b > 0xFFFF) + "]"
)
_ASTRAL: Final = re.compile("[\U00010000-\U0010ffff]")
"""(A class with the planes' ranges costs every character a test per range:
the BMP's are searched first, the others only in text with such characters.)"""


def has_format_char(text: str) -> bool:
    """Whether ``text`` holds a format character (category Cf)."""
    if _FORMAT_CHAR_BMP.search(text):
        return True
    return _ASTRAL.search(text) is not None and _FORMAT_CHAR_ASTRAL.search(text) is not None
_CONFUSABLE_CHAR: Final = re.compile("[" + re.escape("".join(CONFUSABLES)) + "]")
_NOT_SIMPLE: Final = re.compile("[^\x00-\x7f\u0300-\u034e\u0350-\u036f]")
"""After NFD: a character other than ASCII and the combining diacritical marks
(U+034F, a mark of class 0, excepted). A precomposed letter that decomposes into
ASCII and such marks has exactly one ASCII character, which is what ``_STRIP``
maps it to (checked for every code point in tests/policy)."""
_NOT_LETTER: Final = bytes(b for b in range(128) if not chr(b).isalpha())
_OTHER: Final = re.compile("([^\x00-\x7f\u0300-\u034e\u0350-\u036f])")
"""``_NOT_SIMPLE`` as a group: ``split`` keeps each such character."""
_MARK: Final = re.compile("[\u0300-\u034e\u0350-\u036f]")


def _strip_simple(accented: str) -> tuple[str, int] | None:
    """``accented.translate(_STRIP)`` and the letter count of ``accented``, by
    way of NFD when every character is ASCII or a letter with diacritics from
    the combining diacritical marks block (Vietnamese text), other characters
    (curly quotes, dashes, other scripts) kept as they are: None when a
    character decomposes otherwise, or when ``accented`` holds a combining
    mark of its own (then the caller's general path applies)."""
    decomposed = unicodedata.normalize("NFD", accented.replace("đ", "d").replace("Đ", "d"))
    if _NOT_SIMPLE.search(decomposed) is None:
        stripped = decomposed.encode("ascii", "ignore")
        if len(stripped) != len(accented):
            return None  # a mark that belonged to no letter
        # Each letter's base is a letter and each other character's is not (the same check).
        letters = len(stripped.translate(None, _NOT_LETTER))
        return stripped.decode("ascii"), letters
    # Runs of ASCII and marks, and between them the other characters, one each.
    pieces = _OTHER.split(decomposed)
    others = pieces[1::2]
    if any(map(unicodedata.combining, others)) or _MARK.search(accented):
        return None  # a mark outside the block (its own rules), or one that belonged to no letter
    pieces[0::2] = [run.encode("ascii", "ignore").decode("ascii") for run in pieces[0::2]]
    plain = "".join(pieces)
    # With no mark of its own, each character of ``accented`` gives one character
    # or more (Hangul syllables: several jamo); the same length means one each:
    # its base, which is what ``_STRIP`` maps it to, a letter if it is one
    # (tests/policy checks both for every code point).
    if len(plain) != len(accented):
        return None
    ascii_letters = len(plain.encode("ascii", "ignore").translate(None, _NOT_LETTER))
    letters = ascii_letters + sum(map(str.isalpha, others))
    return plain, letters


# Blocks of Greek and Cyrillic letters: a cheap test before looking at scripts word by word.
_GREEK_CYRILLIC: Final = re.compile("[\u0370-\u03ff\u0400-\u052f\u1c80-\u1c8f\u1f00-\u1fff\ua640-\ua69f]")


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


class _StripTable(dict[int, str]):
    """``str.translate`` table of ``_strip_char``, filled as characters come."""

    def __missing__(self, key: int) -> str:
        value = _strip_char(chr(key))
        self[key] = value
        return value


_STRIP: Final = _StripTable()


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
    has_marks: bool = False
    """Whether the text is Vietnamese written with its diacritics (enough
    marked letters that a phrase without its marks is another phrase)."""

    @classmethod
    def of_plain(cls, plain: str) -> Folded:
        """A text already folded and without diacritics."""
        return cls(plain, plain, 0, ())


_NFKC: Final = partial(unicodedata.normalize, "NFKC")
_NFC: Final = partial(unicodedata.normalize, "NFC")
_BY_LINES: Final = 256
"""Characters from which a text that is not ASCII is normalised a line at a time."""
_LINE_CHARACTERS: Final = 24
"""Characters a line has on average in text normalised a line at a time."""


def _normalized(normalize: Callable[[str], str], text: str) -> str:
    """``normalize(text)`` (``_NFKC`` or ``_NFC``), a line at a time for a long
    text: CPython answers at once for text its quick check passes, but as
    soon as one character fails it (a no-break space, a mark typed apart
    from its letter) rewrites the whole text (~60 ns a character). A line
    feed is a starter that composes with nothing and comes from no
    decomposition, so each line normalises alone to what it becomes in the
    text (tests/policy checks this on random text against the whole). Only
    for lines of ``_LINE_CHARACTERS`` on average: a call per line of a few
    characters would cost more than the whole text's quick check saves."""
    if len(text) < _BY_LINES or text.isascii():
        return normalize(text)
    lines = text.count("\n")
    if not lines or lines * _LINE_CHARACTERS > len(text):
        return normalize(text)
    return "\n".join(map(normalize, text.split("\n")))


def fold(text: str) -> Folded:
    text = _normalized(_NFKC, text)
    hidden = 0
    if not text.isascii() and has_format_char(text):
        kept: list[str] = []
        for i, char in enumerate(text):
            if unicodedata.category(char) == "Cf":
                if 0 < i < len(text) - 1 and text[i - 1].isalpha() and text[i + 1].isalpha():
                    hidden += 1
                continue
            kept.append(char)
        text = "".join(kept)
    mixed: list[str] = []
    if not text.isascii():
        if _GREEK_CYRILLIC.search(text):
            for word in _WORD.findall(text):
                scripts = {_script(c) for c in word}
                if "latin" in scripts and scripts & {"cyrillic", "greek"}:
                    mixed.append(word)
        if _CONFUSABLE_CHAR.search(text):
            text = text.translate(CONFUSABLE_TABLE)
    accented = _normalized(_NFC, text.casefold())
    if accented.isascii():
        return Folded(accented, accented, hidden, tuple(mixed))
    simple = _strip_simple(accented)
    if simple is not None:
        # No combining mark of its own (``_DROP_COMBINING`` would change nothing).
        plain, letters = simple
        marked = len(accented) - len(accented.encode("ascii", "ignore"))
        return Folded(accented, plain, hidden, tuple(mixed), letters > 0 and marked * 12 >= letters)
    # Marks that compose with nothing (strike-through letters, stacked accents) carry no letter.
    accented = accented.translate(_DROP_COMBINING)
    plain = accented.translate(_STRIP)
    letters = sum(map(str.isalpha, accented))
    marked = len(accented) - len(accented.encode("ascii", "ignore"))
    return Folded(accented, plain, hidden, tuple(mixed), letters > 0 and marked * 12 >= letters)


def plain(text: str) -> str:
    """``fold(text).plain``: case-folded, confusables mapped, no diacritics."""
    return fold(text).plain


class FoldMemo:
    """``fold`` for the texts of one message: a text that several readers fold
    (the rules and the Bayesian classifier each fold the body text and the
    subject) is folded once. Keyed on the text object itself, not its value:
    the readers pass the very string the analysis made (a slice or join that
    changes nothing returns it), and hashing a long text would cost part of
    what folding it again does. One per message: a memo kept across messages
    would hold their texts."""

    __slots__ = ("_done",)

    def __init__(self) -> None:
        self._done: dict[int, tuple[str, Folded]] = {}

    def __call__(self, text: str) -> Folded:
        done = self._done.get(id(text))
        if done is not None and done[0] is text:
            return done[1]
        folded = fold(text)
        # The entry holds the text: its id cannot be another string's meanwhile.
        self._done[id(text)] = (text, folded)
        return folded

    def peek(self, text: str) -> Folded | None:
        """``fold(text)`` if this memo has it already, else None."""
        done = self._done.get(id(text))
        return done[1] if done is not None and done[0] is text else None
