"""IMAP modified UTF-7 mailbox names (RFC 3501 section 5.1.3).

RFC 3501 section 5.1.3 encodes international mailbox names in 7-bit ASCII:

- printable US-ASCII (0x20-0x7e) except "&" represents itself;
- "&" is written "&-";
- any other run of characters becomes "&" + modified BASE64 of its UTF-16BE form
  + "-", where modified BASE64 is RFC 2045 base64 with "," instead of "/" and no
  "=" padding.

``decode`` is strict: it accepts only the canonical form ``encode`` produces, so
that a mailbox has exactly one wire name (RFC 3501 section 5.1.3: modified BASE64
"MUST NOT be used to represent any printing US-ASCII character which can
represent itself").  The caller answers BAD or NO on the ``ValueError``.
"""

from __future__ import annotations

from typing import Final

__all__ = ["decode", "encode"]

# RFC 3501 section 5.1.3: "," replaces "/" of RFC 2045 base64 so that the
# hierarchy separator "/" never appears inside an encoded run.
_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,"
_VALUE: Final[dict[str, int]] = {ch: i for i, ch in enumerate(_ALPHABET)}


def _is_direct(ch: str) -> bool:
    """Printable US-ASCII represents itself (RFC 3501 section 5.1.3)."""
    return "\x20" <= ch <= "\x7e"


def _b64_encode(run: str) -> str:
    # Astral characters become surrogate pairs here, as RFC 3501 section 5.1.3
    # encodes "16-bit Unicode" (UTF-16), not code points.  A lone surrogate in
    # ``run`` raises UnicodeEncodeError (a ValueError): it has no UTF-16 form.
    raw = run.encode("utf-16-be")
    out: list[str] = []
    for i in range(0, len(raw), 3):
        chunk = raw[i:i + 3]
        bits = int.from_bytes(chunk, "big") << (8 * (3 - len(chunk)))
        # Without "=" padding: 1 byte -> 2 chars, 2 bytes -> 3 chars, 3 -> 4.
        for k in range(len(chunk) + 1):
            out.append(_ALPHABET[(bits >> (18 - 6 * k)) & 0x3F])
    return "".join(out)


def encode(name: str) -> str:
    """Encode a mailbox name into modified UTF-7 (RFC 3501 section 5.1.3).

    The name is not Unicode-normalised: NFC and NFD names encode differently and
    each round-trips to itself.  Raises ``ValueError`` only for a lone surrogate.
    """
    out: list[str] = []
    run: list[str] = []
    for ch in name:
        if _is_direct(ch):
            if run:
                out.append("&" + _b64_encode("".join(run)) + "-")
                run.clear()
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    if run:
        out.append("&" + _b64_encode("".join(run)) + "-")
    return "".join(out)


def _b64_decode(run: str) -> str:
    """Decode one modified BASE64 run (the text between "&" and "-")."""
    acc = 0
    nbits = 0
    raw = bytearray()
    for ch in run:
        value = _VALUE.get(ch)
        if value is None:
            raise ValueError(f"invalid modified BASE64 character {ch!r}")
        acc = (acc << 6) | value
        nbits += 6
        if nbits >= 16:
            nbits -= 16
            raw += ((acc >> nbits) & 0xFFFF).to_bytes(2, "big")
            acc &= (1 << nbits) - 1
    # The encoder emits the fewest characters that hold the UTF-16 units, so
    # fewer than 6 bits may be left over and they must be zero; anything else
    # is a non-canonical or truncated encoding.
    if nbits >= 6 or acc != 0:
        raise ValueError("modified BASE64 run has trailing bits")
    if not raw:
        raise ValueError("empty modified BASE64 run")
    try:
        text = raw.decode("utf-16-be")
    except UnicodeDecodeError as exc:
        raise ValueError("modified BASE64 run is not valid UTF-16") from exc
    if any(_is_direct(ch) for ch in text):
        # RFC 3501 section 5.1.3: printable US-ASCII MUST represent itself.
        raise ValueError("modified BASE64 encodes printable US-ASCII")
    return text


def decode(name: str) -> str:
    """Decode a modified UTF-7 mailbox name (RFC 3501 section 5.1.3).

    Raises ``ValueError`` for anything ``encode`` would not produce: characters
    outside printable US-ASCII, an unterminated "&", an invalid or non-canonical
    BASE64 run (bad characters, trailing bits, printable ASCII inside, two runs
    back to back) and UTF-16 with unpaired surrogates.
    """
    out: list[str] = []
    i = 0
    n = len(name)
    prev_run_end = -1
    while i < n:
        ch = name[i]
        if not _is_direct(ch):
            raise ValueError(f"character {ch!r} at offset {i} is not printable US-ASCII")
        if ch != "&":
            out.append(ch)
            i += 1
            continue
        end = name.find("-", i + 1)
        if end < 0:
            raise ValueError(f"unterminated '&' at offset {i}")
        if end == i + 1:
            out.append("&")
        else:
            # Two adjacent runs would encode what one run encodes, giving a
            # second wire name for the same mailbox; the encoder never does it.
            if prev_run_end == i:
                raise ValueError(f"adjacent modified BASE64 runs at offset {i}")
            out.append(_b64_decode(name[i + 1:end]))
            prev_run_end = end + 1
        i = end + 1
    return "".join(out)
