"""Legacy Vietnamese 8-bit encodings: TCVN3 (TCVN 5712:1993 "VN3", the ABC
fonts ``.VnTime``/``.VnTimeH``) and VNI (VNI-Windows, fonts ``VNI-Times``...),
decoded to Unicode (TCVN 6909:2001, which Decision 70/2009, Dieu 6 khoan 7,
requires for mail).

Documents typed with these fonts store the font's byte values, which Word,
PDF text layers and plain text files expose as Latin-1 / cp1252 characters:
TCVN3 "Céng hoµ x· héi" is "Cộng hoà xã hội", VNI "Coäng hoøa xaõ hoäi" the
same words. TCVN3 is one byte per letter and has no upper-case toned vowels
(capitals are drawn by the ``...H`` fonts from the lower-case codes), so a word
whose ASCII letters are all capitals is upper-cased after decoding ("MËT" ->
"MẬT"). VNI writes a base letter followed by a mark character ("MAÄT" ->
"MẬT").

Detection (``detect``) only considers text without any character above
U+00FF that is not a cp1252 symbol: genuine Unicode Vietnamese has letters
such as ạ ế ơ ư đ, so it is never "decoded" twice.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

# -- TCVN3 (ABC): byte -> Unicode letter ------------------------------------------
# Positions from TCVN 5712:1993 table VN3. Capitals Ă Â Ê Ô Ơ Ư Đ have their own
# codes; toned capitals do not (see module doc).
_TCVN3_BYTES: Final[dict[int, str]] = {
    0xA1: "Ă",
    0xA2: "Â",
    0xA3: "Ê",
    0xA4: "Ô",
    0xA5: "Ơ",
    0xA6: "Ư",
    0xA7: "Đ",
    0xA8: "ă",
    0xA9: "â",
    0xAA: "ê",
    0xAB: "ô",
    0xAC: "ơ",
    0xAD: "ư",
    0xAE: "đ",
    0xB5: "à",
    0xB6: "ả",
    0xB7: "ã",
    0xB8: "á",
    0xB9: "ạ",
    0xBB: "ằ",
    0xBC: "ẳ",
    0xBD: "ẵ",
    0xBE: "ắ",
    0xC6: "ặ",
    0xC7: "ầ",
    0xC8: "ẩ",
    0xC9: "ẫ",
    0xCA: "ấ",
    0xCB: "ậ",
    0xCC: "è",
    0xCE: "ẻ",
    0xCF: "ẽ",
    0xD0: "é",
    0xD1: "ẹ",
    0xD2: "ề",
    0xD3: "ể",
    0xD4: "ễ",
    0xD5: "ế",
    0xD6: "ệ",
    0xD7: "ì",
    0xD8: "ỉ",
    0xDC: "ĩ",
    0xDD: "í",
    0xDE: "ị",
    0xDF: "ò",
    0xE1: "ỏ",
    0xE2: "õ",
    0xE3: "ó",
    0xE4: "ọ",
    0xE5: "ồ",
    0xE6: "ổ",
    0xE7: "ỗ",
    0xE8: "ố",
    0xE9: "ộ",
    0xEA: "ờ",
    0xEB: "ở",
    0xEC: "ỡ",
    0xED: "ớ",
    0xEE: "ợ",
    0xEF: "ù",
    0xF1: "ủ",
    0xF2: "ũ",
    0xF3: "ú",
    0xF4: "ụ",
    0xF5: "ừ",
    0xF6: "ử",
    0xF7: "ữ",
    0xF8: "ứ",
    0xF9: "ự",
    0xFA: "ỳ",
    0xFB: "ỷ",
    0xFC: "ỹ",
    0xFD: "ý",
    0xFE: "ỵ",
}
TCVN3_TABLE: Final[dict[int, str]] = {byte: char for byte, char in _TCVN3_BYTES.items()}
"""``str.translate`` table: Latin-1 code point of the font byte -> Unicode."""

# Characters that are letters in TCVN3 but punctuation/symbols in Latin-1:
# seeing them glued to ASCII letters is strong evidence of TCVN3.
_TCVN3_SYMBOLS: Final = "".join(chr(b) for b in _TCVN3_BYTES if b < 0xC0 or b in (0xD7,))
_TCVN3_EVIDENCE: Final = re.compile(
    f"[A-Za-z][{re.escape(_TCVN3_SYMBOLS)}]|[{re.escape(_TCVN3_SYMBOLS)}][A-Za-z]"
)

# -- VNI: base letter + mark character --------------------------------------------
_TONES_LOWER: Final = {"ù": "\u0301", "ø": "\u0300", "û": "\u0309", "õ": "\u0303", "ï": "\u0323"}
_TONES_UPPER: Final = {"Ù": "\u0301", "Ø": "\u0300", "Û": "\u0309", "Õ": "\u0303", "Ï": "\u0323"}
_CIRC_LOWER: Final = {"â": "", "á": "\u0301", "à": "\u0300", "å": "\u0309", "ã": "\u0303", "ä": "\u0323"}
_CIRC_UPPER: Final = {"Â": "", "Á": "\u0301", "À": "\u0300", "Å": "\u0309", "Ã": "\u0303", "Ä": "\u0323"}
_BREVE_LOWER: Final = {"ê": "", "é": "\u0301", "è": "\u0300", "ú": "\u0309", "ü": "\u0303", "ë": "\u0323"}
_BREVE_UPPER: Final = {"Ê": "", "É": "\u0301", "È": "\u0300", "Ú": "\u0309", "Ü": "\u0303", "Ë": "\u0323"}
# Letters VNI draws with one character.
_VNI_SINGLE: Final = {
    "ô": "ơ",
    "ö": "ư",
    "ñ": "đ",
    "æ": "ỉ",
    "ó": "ĩ",
    "ò": "ị",
    "î": "ỵ",
    "Ô": "Ơ",
    "Ö": "Ư",
    "Ñ": "Đ",
    "Æ": "Ỉ",
    "Ó": "Ĩ",
    "Ò": "Ị",
    "Î": "Ỵ",
}


def _nfc(*parts: str) -> str:
    return unicodedata.normalize("NFC", "".join(parts))


def _vni_pairs() -> dict[str, str]:
    pairs: dict[str, str] = {}
    for bases, tones, circ, breve in (
        ("aeouy", _TONES_LOWER, _CIRC_LOWER, _BREVE_LOWER),
        ("AEOUY", _TONES_UPPER, _CIRC_UPPER, _BREVE_UPPER),
    ):
        for base in bases:
            for mark, tone in tones.items():
                pairs[base + mark] = _nfc(base, tone)
            if base.lower() in "aeo":
                for mark, tone in circ.items():
                    pairs[base + mark] = _nfc(base, "\u0302", tone)
            if base.lower() == "a":
                for mark, tone in breve.items():
                    pairs[base + mark] = _nfc(base, "\u0306", tone)
        # ơ and ư (one VNI character each) take the tone marks too.
        horn_bases = "ôö" if bases.islower() else "ÔÖ"
        for horn in horn_bases:
            for mark, tone in tones.items():
                pairs[horn + mark] = _nfc(_VNI_SINGLE[horn], tone)
    return pairs


VNI_PAIRS: Final[dict[str, str]] = _vni_pairs()
_VNI_RE: Final = re.compile(
    "|".join(re.escape(k) for k in sorted(VNI_PAIRS, key=len, reverse=True))
    + "|["
    + re.escape("".join(_VNI_SINGLE))
    + "]"
)
_VNI_EVIDENCE: Final = re.compile("|".join(re.escape(k) for k in VNI_PAIRS if k[0].isascii()))
# Characters of genuine Unicode Vietnamese (and anything else beyond Latin-1
# that a legacy 8-bit font cannot produce).
_BEYOND_LATIN1: Final = re.compile("[\u0100-\u024f\u1e00-\u1eff]")
_CP1252_SYMBOLS: Final = frozenset("€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ")

LEGACY_FONTS: Final = {
    ".vn": "tcvn3",  # .VnTime, .VnTimeH, .VnArial, .VnArialH, .VnCentury...
    "vni-": "vni",  # VNI-Times, VNI-Helve, VNI-Aptima...
    "vni ": "vni",
}


def font_encoding(font: str) -> str | None:
    """Legacy encoding of a font name (``.VnTime`` -> tcvn3, ``VNI-Times`` -> vni)."""
    name = font.strip().lower()
    for prefix, encoding in LEGACY_FONTS.items():
        if name.startswith(prefix):
            return encoding
    return None


_WORD: Final = re.compile(r"\S+")


def decode_tcvn3(text: str) -> str:
    decoded = text.translate(TCVN3_TABLE)
    # Words typed in capitals with a ...H font: capitalise the toned vowels too.

    def fix(match: re.Match[str]) -> str:
        word = match.group(0)
        original = text[match.start() : match.end()]
        if word == original:
            return word
        letters = [(i, c) for i, c in enumerate(original) if c.isascii() and c.isalpha()]
        if not letters or not all(c.isupper() for _, c in letters):
            return word
        # "MËT", "TèI": two capitals, or a capital after a toned vowel, mean the
        # word was typed in capitals; "Tù" (Tự) is only capitalised.
        if len(letters) >= 2 or letters[0][0] > 0:
            return word.upper()
        return word

    return _WORD.sub(fix, decoded) if decoded != text else decoded


def decode_vni(text: str) -> str:
    def repl(match: re.Match[str]) -> str:
        key = match.group(0)
        return VNI_PAIRS.get(key) or _VNI_SINGLE[key]

    return _VNI_RE.sub(repl, text)


def decode(text: str, encoding: str) -> str:
    if encoding == "tcvn3":
        return decode_tcvn3(text)
    if encoding == "vni":
        return decode_vni(text)
    return text


def detect(text: str, min_hits: int = 3) -> str | None:
    """``"tcvn3"``, ``"vni"`` or None for text read as Latin-1/cp1252."""
    if _BEYOND_LATIN1.search(text):
        stray = {c for c in _BEYOND_LATIN1.findall(text) if c not in _CP1252_SYMBOLS}
        if stray:
            return None
    sample = text[:200_000]
    tcvn = len(_TCVN3_EVIDENCE.findall(sample))
    vni = len(_VNI_EVIDENCE.findall(sample))
    if max(tcvn, vni) < min_hits:
        return None
    return "tcvn3" if tcvn > vni else "vni"


def decode_bytes_legacy(data: bytes) -> tuple[str, str | None]:
    """Bytes known not to be UTF-8: (Unicode text, legacy encoding or None)."""
    text = data.decode("cp1252", errors="replace").replace("\ufffd", "")
    latin = data.decode("latin-1")
    encoding = detect(latin)
    if encoding is not None:
        return decode(latin, encoding), encoding
    return text, None


def encode_tcvn3(text: str) -> bytes:
    """Unicode -> TCVN3 bytes (for tests and tools); capitals map to the
    lower-case codes, as typed with a ``...H`` font."""
    reverse = {char: byte for byte, char in _TCVN3_BYTES.items()}
    out = bytearray()
    for char in unicodedata.normalize("NFC", text):
        if char in reverse:
            out.append(reverse[char])
        elif char.lower() in reverse and not char.isascii():
            out.append(reverse[char.lower()])
        else:
            out += char.encode("latin-1", errors="replace")
    return bytes(out)


def encode_vni(text: str) -> bytes:
    """Unicode -> VNI bytes (for tests and tools)."""
    reverse = {v: k for k, v in VNI_PAIRS.items()}
    reverse.update({v: k for k, v in _VNI_SINGLE.items()})
    out = []
    for char in unicodedata.normalize("NFC", text):
        out.append(reverse.get(char, char))
    return "".join(out).encode("latin-1", errors="replace")
