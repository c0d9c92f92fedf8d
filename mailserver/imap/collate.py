"""How SORT and THREAD compare names and subjects: i;unicode-casemap (RFC 5051)
with a Vietnamese alphabetical order in front of it.

RFC 5051 (i;unicode-casemap): every character mapped to its titlecase, the
result decomposed (NFKD), compared octet by octet in UTF-8. ``casemap`` is that
key. Used alone it sorts Vietnamese badly: ``Đ`` (U+0110, not decomposable) comes
after ``Z``, and a word's tone mark weighs more than the letters after it
(``àz`` before ``ab``, because the combining mark's octets are compared with the
next letter).

So the key is ``(vietnamese, casemap)``:

* ``vietnamese``: casemapped and decomposed as above, tone marks and all other
  diacritics dropped, except the vowel marks that make letters of the Vietnamese
  alphabet, which sort right after their base letter: a < ă < â < b < c < d < đ
  < e < ê < ... < o < ô < ơ < ... < u < ư < v (the order of Vietnamese
  dictionaries and of the national standard TCVN 5712's collation);
* ``casemap`` then breaks ties, which orders words that differ only in tone:
  none < huyền (grave) < sắc (acute) < ngã (tilde) < hỏi (hook) < nặng (dot
  below), the code point order of the combining marks.

Two strings equal under i;unicode-casemap are equal here, and for ASCII text the
order is exactly i;unicode-casemap's (titlecase of ASCII is upper case, and
nothing is dropped). For other scripts the primary key keeps the letters and
drops only combining marks, so Latin text with accents sorts by its letters
first, as readers expect. The server therefore does not claim I18NLEVEL=1
(RFC 5255), whose SORT must be i;unicode-casemap alone.
"""

from __future__ import annotations

import unicodedata
from typing import Final

__all__ = ["casemap", "sort_key"]

# Markers that sort after every letter: a letter followed by one sorts after
# the bare letter and before the next letter of the alphabet.
_BREVE: Final = "\U0010fff1"  # ă
_CIRCUMFLEX: Final = "\U0010fff2"  # â ê ô
_HORN: Final = "\U0010fff3"  # ơ ư
_STROKE: Final = "\U0010fff1"  # đ: D then a marker, after D and before E

_PRIMARY: Final[dict[int, str | None]] = {cp: None for cp in range(0x0300, 0x0370)}
"""Combining diacritical marks (U+0300-U+036F) removed from the primary key..."""
_PRIMARY.update({0x0306: _BREVE, 0x0302: _CIRCUMFLEX, 0x031B: _HORN, 0x0110: "D" + _STROKE})
"""...except the Vietnamese vowel marks (breve, circumflex, horn) and đ's stroke."""


def _titlecase(text: str) -> str:
    """RFC 5051 step 1: each character's titlecase mapping. Upper case is the same
    mapping for every character but the four Latin digraphs (U+01C4-U+01CC,
    U+01F1-U+01F3), handled one by one, and characters whose full mapping is
    longer (German sharp s, Greek iota subscripts), which keep the simple mapping."""
    upper = text.upper()
    if len(upper) == len(text) and not _DIGRAPHS.intersection(text):
        return upper
    chars = []
    for ch in text:
        t = ch.title()
        if len(t) != 1:
            t = ch.upper() if len(ch.upper()) == 1 else ch
        chars.append(t)
    return "".join(chars)


_DIGRAPHS: Final = frozenset("\u01c4\u01c5\u01c6\u01c7\u01c8\u01c9\u01ca\u01cb\u01cc\u01f1\u01f2\u01f3")


def casemap(text: str) -> bytes:
    """The i;unicode-casemap key of RFC 5051 section 2."""
    return unicodedata.normalize("NFKD", _titlecase(text)).encode("utf-8", "surrogatepass")


def sort_key(text: str) -> tuple[str, bytes]:
    """The comparison key of ``text`` for SORT (see the module docstring)."""
    mapped = unicodedata.normalize("NFKD", _titlecase(text))
    return mapped.translate(_PRIMARY), mapped.encode("utf-8", "surrogatepass")
