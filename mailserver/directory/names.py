"""Agency names as people write them, and search ranking: one normalisation that
dispatch ("Nơi nhận", "Kính gửi", articles of a decision), the CLI search and the
portal search all use, so "Sở TT&TT" means the same agency everywhere.

Theory of operation
-------------------
``canon(text)`` reduces a name to a key: diacritics dropped (NFD, combining
marks removed, đ -> d, naming.ascii_fold), lower case, punctuation to spaces,
``&`` read as "và", then the usual administrative abbreviations applied word
by word (``ABBREVIATIONS``: "Ủy ban nhân dân" -> ubnd, "thành phố" -> tp,
"huyện" -> h, "Văn phòng" -> vp, …). Both the names in the directory and the
text of a document go through it, so "UBND h. Long Thành", "UBND huyện Long
Thành" and "Ủy ban nhân dân huyện Long Thành" are one key.

``forms(name)`` adds the short forms of a name that canon cannot reach: the
initials after the head word ("Sở Thông tin và Truyền thông" -> so tt va tt,
so tttt, so tt tt -- which "Sở TT&TT", "Sở TTTT" and "Sở TT-TT" canon to),
the name without its unit word ("UBND Long Thành") and without the province
("UBND tỉnh"). A full name outranks a derived form, so a derived form shared
by two agencies never hides an exact name (``NameIndex``).

``strip_notes`` removes what follows a recipient in a "Nơi nhận" line: "(để
thực hiện)", "(b/c)", "(thay b/c)", "(để biết)" and the closing ";" or ".".

``rank`` orders search hits: the whole name > every query word a whole word
of the name > every query word a whole word somewhere > every query word the
start of a word > a mere substring (only shown when nothing better matched).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from mailserver.directory.naming import ascii_fold

__all__ = [
    "ABBREVIATIONS",
    "Ambiguous",
    "NameIndex",
    "Target",
    "canon",
    "fold",
    "forms",
    "rank",
    "strip_notes",
    "words",
]

ABBREVIATIONS: Final[tuple[tuple[str, str], ...]] = (
    ("uy ban nhan dan", "ubnd"),
    ("hoi dong nhan dan", "hdnd"),
    ("uy ban mat tran to quoc", "ubmttq"),
    ("mat tran to quoc", "mttq"),
    ("van phong", "vp"),
    ("thanh pho", "tp"),
    ("thi xa", "tx"),
    ("huyen", "h"),
    ("tinh", "t"),
)
"""Long form -> the short form canon writes (both folded), longest first. The
short forms people type ("UBND", "TP.", "h.", "VP") are already the key."""

_UNITS: Final = frozenset({"t", "h", "tp", "tx"})
"""Administrative units: the words a location follows ("UBND h Long Thành")."""
_PROVINCE: Final = "dong nai"
_HEADS: Final = frozenset({"so", "bo", "ban", "cuc", "chi", "vp", "tong", "vien", "toa", "hoi", "lien"})
"""First words of names whose rest people write as initials ("Sở TT&TT", "Ban QLDA")."""
_NOTE: Final = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")
_TRAIL: Final = re.compile(r"[\s;:,.\-–/]+$")


def fold(text: str) -> str:
    """Lower-case ASCII words: no diacritics, đ -> d, ``&`` -> ``va``, no punctuation."""
    text = ascii_fold(text).replace("&", " va ")
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())


def _abbreviate(folded: str) -> str:
    padded = f" {folded} "
    for long, short in ABBREVIATIONS:
        padded = padded.replace(f" {long} ", f" {short} ")
    return padded.strip()


def canon(text: str) -> str:
    """The key of a name (module docstring)."""
    return _abbreviate(fold(text))


def words(text: str) -> list[str]:
    """Folded words of a search query or field (no abbreviation applied)."""
    return fold(text).split()


def strip_notes(line: str) -> str:
    """A "Nơi nhận" / "Kính gửi" entry without its notes: "Bộ TT&TT (b/c);" -> "Bộ TT&TT"."""
    text = _NOTE.sub(" ", line)
    # An unclosed note at the end, as OCR or typing leaves it: "Sở TC (để biết".
    text = re.sub(r"\([^()]*$", " ", text)
    return _TRAIL.sub("", " ".join(text.split()))


def _initials(part: list[str]) -> str:
    return "".join(w[0] for w in part if w)


def forms(name: str) -> set[str]:
    """Every key of an agency or group name: canon and its derived short forms."""
    key = canon(name)
    out = {key}
    tokens = key.split()
    if tokens and tokens[-2:] == _PROVINCE.split() and len(tokens) > 2:
        out.add(" ".join(tokens[:-2]))  # "ubnd t dong nai" -> "ubnd t"
    for variant in list(out):
        parts = variant.split()
        for i, word in enumerate(parts[:-1]):
            # "ubnd h long thanh" -> "ubnd long thanh": the unit word dropped.
            if word in _UNITS and i > 0:
                out.add(" ".join(parts[:i] + parts[i + 1 :]))
    # Initials keep where the name had "và"/"&" and dashes: "Lao động - Thương binh
    # và Xã hội" -> ld tb va xh, ldtb va xh, ldtbxh, ld tb xh.
    marked = _abbreviate(" ".join(re.sub(r"[^a-z0-9|]+", " ", re.sub(
        r"\s*[-–—]\s*", " | ", ascii_fold(name).replace("&", " va "))).split()))
    parts = marked.split()
    if len(parts) >= 3 and parts[0] in _HEADS:
        out |= _initial_forms(parts[0], parts[1:])
    return {f for f in out if f}


def _initial_forms(head: str, rest: list[str]) -> set[str]:
    """"so" + "thong tin va truyen thong" -> so tt va tt, so tttt, so tt tt; a
    location tail stays written out ("bo chqs t" beside "bo chqst")."""
    out: set[str] = set()
    tails: list[tuple[list[str], list[str]]] = [(rest, [])]
    for i, word in enumerate(rest):
        if word in _UNITS and i > 0:
            tails.append((rest[:i], [w for w in rest[i:] if w != "|"]))
    for body, tail in tails:
        groups: list[tuple[str, list[str]]] = [("", [])]  # (separator before, words)
        for word in body:
            if word in ("va", "|"):
                groups.append((word, []))
            else:
                groups[-1][1].append(word)
        groups = [(sep, words) for sep, words in groups if words]
        letters = [(sep, _initials(words)) for sep, words in groups]
        if not letters or (len(letters) == 1 and len(letters[0][1]) == 1):
            continue
        suffix = (" " + " ".join(tail)) if tail else ""
        joined = "".join(x for _, x in letters)
        spaced = " ".join(x for _, x in letters)
        with_va = "".join((" va " if sep == "va" else "") + x for sep, x in letters)
        with_va_spaced = " ".join(("va " if sep == "va" else "") + x for sep, x in letters)
        for form in (joined, spaced, with_va, with_va_spaced):
            out.add(f"{head} {' '.join(form.split())}{suffix}")
    return out


@dataclass(frozen=True, slots=True)
class Target:
    """What a name resolves to: an agency or a distribution group, by code."""

    kind: str
    """``agency`` or ``group``."""
    code: str
    name: str


@dataclass(frozen=True, slots=True)
class Ambiguous:
    """A key two targets share at the same level: the operator must say which."""

    key: str
    targets: tuple[Target, ...]


@dataclass(slots=True)
class NameIndex:
    """Keys -> targets. Level 0: codes, full names, aliases (canon); level 1: the
    derived short forms of ``forms``. Lookup takes the lowest level that has the key."""

    _keys: dict[str, dict[int, list[Target]]] = field(default_factory=dict)

    def add(self, target: Target, names: Iterable[str], *, code_key: bool = True) -> None:
        if code_key:
            self._put(target.code.lower(), 0, target)
        for name in names:
            exact = canon(name)
            self._put(exact, 0, target)
            for form in forms(name) - {exact}:
                self._put(form, 1, target)

    def _put(self, key: str, level: int, target: Target) -> None:
        bucket = self._keys.setdefault(key, {}).setdefault(level, [])
        if target not in bucket:
            bucket.append(target)

    def lookup(self, text: str) -> Target | Ambiguous | None:
        key = canon(text)
        levels = self._keys.get(key)
        if not levels:
            return None
        found = levels[min(levels)]
        return found[0] if len(found) == 1 else Ambiguous(key, tuple(found))

    def scan(self, text: str) -> list[tuple[str, Target]]:
        """Names of the index inside running text (an article of a decision):
        (the words found, target), left to right, longest match first, matches
        never overlapping; keys of one word (codes, "ubnd") are ignored, and so
        are keys two targets share."""
        tokens = canon(text).split()
        keys = {
            tuple(k.split()): levels[min(levels)][0]
            for k, levels in self._keys.items()
            if " " in k and len(levels[min(levels)]) == 1
        }
        longest = max((len(k) for k in keys), default=0)
        found: list[tuple[str, Target]] = []
        i = 0
        while i < len(tokens):
            for size in range(min(longest, len(tokens) - i), 1, -1):
                target = keys.get(tuple(tokens[i : i + size]))
                if target is not None:
                    found.append((" ".join(tokens[i : i + size]), target))
                    i += size
                    break
            else:
                i += 1
        return found


def rank(query: str, name: str, others: Sequence[str] = (), keys: Iterable[str] = ()) -> int:
    """How well ``query`` matches an entry called ``name`` (other searchable
    fields in ``others``: position, address, agency; name keys in ``keys``):
    5 one of the keys (an agency's name or short form, canon), 4 the whole name,
    3 every word a whole word of the name, 2 every word a whole word somewhere,
    1 every word the start of some word, 0 every word inside some text, -1 no match."""
    wanted = words(query)
    if not wanted:
        return -1
    if canon(query) in set(keys):
        return 5
    name_words = words(name)
    if wanted == name_words:
        return 4
    if all(w in name_words for w in wanted):
        return 3
    every = name_words + [w for text in others for w in words(text)]
    if all(w in every for w in wanted):
        return 2
    if all(any(x.startswith(w) for x in every) for w in wanted):
        return 1
    joined = " ".join(every)
    return 0 if all(w in joined for w in wanted) else -1
