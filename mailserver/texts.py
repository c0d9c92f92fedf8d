"""Human-readable protocol text in ASCII.

RFC 5321 section 4.2 makes SMTP reply text US-ASCII; RFC 6531 section 3.7.4
allows UTF-8 in replies only inside an SMTPUTF8 transaction (IMAP: RFC 9051
section 7.1 and RFC 6855 section 3 likewise, unless UTF8=ACCEPT). Raw UTF-8
Vietnamese garbles in clients that assume ASCII (Python's imaplib and smtplib
raise on it), so texts written in Vietnamese go out without diacritics:
"Mật khẩu" becomes "Mat khau", which every Vietnamese reader understands.
"""

from __future__ import annotations

import unicodedata
from typing import Final

_LETTERS: Final = str.maketrans({"đ": "d", "Đ": "D"})
"""Letters that are not a base letter plus marks in Unicode (no decomposition)."""


def ascii_text(text: str) -> str:
    """``text`` without diacritics (NFD, marks dropped; đ -> d); anything still
    not ASCII becomes ``?``. ASCII text is returned as is."""
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFD", text.translate(_LETTERS))
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return stripped.encode("ascii", "replace").decode("ascii")

