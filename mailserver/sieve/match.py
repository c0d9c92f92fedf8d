"""Comparators and match types (RFC 5228 sections 2.7.1 and 2.7.3, RFC 4790
section 9, RFC 5231 relational, RFC 5229 section 3.2 match variables).

Both sides are NFC already (``message.nfc`` and the compiler). Comparators:
``i;octet`` compares code points; ``i;ascii-casemap`` folds A-Z only, as RFC
4790 section 9.2 says (so "Á" and "á" differ under it); ``i;unicode-casemap``
folds every letter (NFC then ``str.casefold``), which is what a Vietnamese
rule such as ``:comparator "i;unicode-casemap" :contains "báo cáo"`` wants;
``i;ascii-numeric`` compares leading digits, a value without any being
greater than every number.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Final

__all__ = ["Matcher", "glob_regex", "matches"]

_ASCII_LOWER: Final = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_DIGITS: Final = re.compile(r"[0-9]*")


def _fold(comparator: str) -> Callable[[str], str]:
    if comparator == "i;ascii-casemap":
        return lambda s: s.translate(_ASCII_LOWER)
    if comparator == "i;unicode-casemap":
        return lambda s: unicodedata.normalize("NFC", s.casefold())
    return lambda s: s


def _numeric(value: str) -> float:
    digits = _DIGITS.match(value)
    return float(int(digits.group())) if digits and digits.group() else float("inf")


@lru_cache(maxsize=4096)
def glob_regex(pattern: str, comparator: str) -> re.Pattern[str]:
    """``*`` and ``?`` of :matches (``\\`` escapes them) as a regex with one
    group per wildcard; ``*`` is non-greedy so the groups are filled left to
    right with the shortest strings (RFC 5229 section 3.2)."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append("(.*?)" if c == "*" else "(.)" if c == "?" else re.escape(c))
        i += 1
    flags = re.DOTALL
    if comparator == "i;ascii-casemap":
        flags |= re.IGNORECASE | re.ASCII
    elif comparator == "i;unicode-casemap":
        flags |= re.IGNORECASE
    return re.compile("".join(out), flags)


def _relate(relation: str, c: int) -> bool:
    return {"gt": c > 0, "ge": c >= 0, "lt": c < 0, "le": c <= 0, "eq": c == 0, "ne": c != 0}[relation]


def _compare(comparator: str, a: str, b: str) -> int:
    if comparator == "i;ascii-numeric":
        x, y = _numeric(a), _numeric(b)
    else:
        fold = _fold(comparator)
        x, y = fold(a), fold(b)  # type: ignore[assignment]
    return (x > y) - (x < y)


class Matcher:
    """One test's match type and comparator; ``groups`` holds the match
    variables of the last successful :matches (``${0}`` the whole value)."""

    __slots__ = ("comparator", "fold", "groups", "match", "relation")

    def __init__(self, match: str, comparator: str, relation: str = "") -> None:
        self.match = match
        self.comparator = comparator
        self.relation = relation
        self.fold = _fold(comparator)
        self.groups: list[str] | None = None

    def test(self, values: Sequence[str], keys: Sequence[str]) -> bool:
        if self.match == "count":
            # RFC 5231 section 4.1: the number of values, compared as a number.
            count = str(len([v for v in values if v != ""]))
            return any(_relate(self.relation, _compare("i;ascii-numeric", count, k)) for k in keys)
        for value in values:
            for key in keys:
                if self.one(value, key):
                    return True
        return False

    def one(self, value: str, key: str) -> bool:
        match self.match:
            case "is":
                if self.comparator == "i;ascii-numeric":
                    return _numeric(value) == _numeric(key)
                return self.fold(value) == self.fold(key)
            case "contains":
                return self.fold(key) in self.fold(value)
            case "matches":
                m = glob_regex(key, self.comparator).fullmatch(value)
                if m is None:
                    return False
                self.groups = [m.group(0), *m.groups()]
                return True
            case "value":
                return _relate(self.relation, _compare(self.comparator, value, key))
        return False


def matches(
    match: str, comparator: str, values: Sequence[str], keys: Sequence[str], relation: str = ""
) -> bool:
    return Matcher(match, comparator, relation).test(values, keys)
