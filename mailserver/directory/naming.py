"""The address rule of Decision 70/2009/QĐ-UBND, Điều 4 khoản 2, as pure functions.

Điều 4: a personal address is ``Tencbcc@dongnai.gov.vn`` where *Tencbcc* is the
given name (Tên) followed by the first letter of the family name (họ) and of
every middle syllable (chữ lót) between family and given name. So
"Nguyễn Văn An" gives ``annv`` and "Trần Thị Bích Ngọc" gives ``ngocttb``. A
compound given name ("Bảo Ngọc") is kept whole when the parts are given
separately; from one full-name string the last syllable is taken as the given
name. When an address is already taken, Điều 4 lets the administrator append
characters: we append 2, 3, … (``annv2``). Agency addresses are
``<agency code>@domain`` (``stttt@``).

Letters are reduced to ASCII: combining marks are dropped after Unicode
decomposition (so ư -> u, ơ -> o, ế -> e) and đ/Đ, together with the
look-alike Icelandic eth Ð/ð (U+00D0/U+00F0) that Vietnamese keyboards and
old TCVN3 conversions produce, become d. Apostrophes, hyphens, digits and every
other non-letter are dropped ("K'Lứt" -> ``klut``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from typing import Final

from storage import textfold

__all__ = [
    "MAX_LOCAL_PART",
    "RESERVED_LOCAL_PARTS",
    "NamingError",
    "ascii_fold",
    "agency_code",
    "local_part",
    "numbered",
    "personal_local_part",
    "name_parts_for_password",
    "search_key",
    "split_full_name",
    "tokens",
]

MAX_LOCAL_PART: Final = 64
"""RFC 5321 section 4.5.3.1.1."""

RESERVED_LOCAL_PARTS: Final[frozenset[str]] = frozenset(
    {
        # RFC 2142 mailbox names and the usual system ones.
        "postmaster",
        "abuse",
        "hostmaster",
        "webmaster",
        "security",
        "noc",
        "info",
        "marketing",
        "sales",
        "support",
        "usenet",
        "news",
        "uucp",
        "www",
        "ftp",
        "root",
        "admin",
        "administrator",
        "noreply",
        "no-reply",
        "mailer-daemon",
        "nobody",
        "daemon",
        "mail",
        "email",
        "dmarc",
        "dkim",
        "bounce",
        "bounces",
        "list",
        "lists",
        "help",
        "system",
        "operator",
        "test",
        # Vietnamese administrative roles.
        "vanthu",
        "quantri",
        "hotro",
        "lienhe",
        "thongbao",
        "tiepnhan",
        "banbientap",
    }
)
"""Local parts never issued to a person: role addresses (RFC 2142) and
administrative ones of the provincial mail system."""

_AGENCY_CODE: Final = re.compile(r"^[a-z][a-z0-9]{1,31}$")


class NamingError(ValueError):
    """A name or code from which no address can be made."""


def ascii_fold(text: str) -> str:
    """Vietnamese text to lower-case ASCII: diacritics dropped, đ/Ð -> d.

    NFC and NFD input give the same result because the text is decomposed
    first; other characters are kept (callers filter them). This is the folding
    of mail search (``storage.textfold.fold``), so the directory, the portal and
    IMAP SEARCH agree on what "dong nai" matches."""
    return textfold.fold(text)


def _syllables(text: str) -> list[str]:
    """Syllables reduced to ``[a-z]``; syllables left empty are dropped."""
    out: list[str] = []
    for word in ascii_fold(text).split():
        letters = "".join(c for c in word if "a" <= c <= "z")
        if letters:
            out.append(letters)
    return out


def split_full_name(full_name: str) -> tuple[str, str, str]:
    """(family, middle, given) of a full name written family-first, taking the
    last syllable as the given name (the fallback of Điều 4 when the parts are
    not given separately). Whitespace is normalised; spelling is kept; NamingError
    when there is no word with a letter."""
    # Words without a letter (stray digits, dashes) are not name parts.
    words = [w for w in unicodedata.normalize("NFC", full_name).split() if any(c.isalpha() for c in w)]
    if not words:
        raise NamingError("empty name")
    if len(words) == 1:
        return "", "", words[0]
    return words[0], " ".join(words[1:-1]), words[-1]


def personal_local_part(family: str, middle: str, given: str) -> str:
    """Điều 4: given name (all its syllables) + the initial of every syllable of
    the family name, then of the middle name. Raises NamingError when the given
    name has no letter."""
    given_part = "".join(_syllables(given))
    if not given_part:
        raise NamingError(f"given name {given!r} has no letter to build an address from")
    initials = "".join(s[0] for s in _syllables(family) + _syllables(middle))
    return (given_part + initials)[:MAX_LOCAL_PART]


def local_part(
    full_name: str = "", *, family: str | None = None, middle: str | None = None, given: str | None = None
) -> str:
    """The base local part for a person: from the separate parts when ``given``
    is set, else from ``full_name`` with the last-syllable fallback."""
    if given is not None and given.strip():
        return personal_local_part(family or "", middle or "", given)
    fam, mid, giv = split_full_name(full_name)
    return personal_local_part(fam, mid, giv)


def numbered(base: str, is_taken: Callable[[str], bool], *, start: int = 2) -> str:
    """``base`` if free, else the first free ``base2``, ``base3``, … (Điều 4:
    the administrator appends characters to a name already issued)."""
    if not is_taken(base):
        return base
    n = start
    while True:
        suffix = str(n)
        candidate = base[: MAX_LOCAL_PART - len(suffix)] + suffix
        if not is_taken(candidate):
            return candidate
        n += 1


def agency_code(code: str) -> str:
    """Canonical agency code (Điều 4: ``tênCQ@dongnai.gov.vn``): accents folded,
    lower-case, 2-32 ASCII letters and digits starting with a letter."""
    folded = ascii_fold(code.strip())
    if not _AGENCY_CODE.match(folded):
        raise NamingError(
            f"agency code {code!r} must be 2-32 letters and digits starting with a letter (e.g. stttt)"
        )
    return folded


def search_key(*parts: str) -> str:
    """Accent-insensitive search text: folded, lower-case, single spaces."""
    return " ".join(" ".join(ascii_fold(p).split()) for p in parts if p).strip()


def tokens(text: str) -> list[str]:
    """Search tokens of a query (folded, split on whitespace)."""
    return search_key(text).split()


def name_parts_for_password(names: Iterable[str]) -> list[str]:
    """Folded syllables of a person's names, for the password rules."""
    out: list[str] = []
    for name in names:
        out.extend(_syllables(name))
    return out
