"""Base subject and sent date: what SORT and THREAD compare (RFC 5256 sections 2.1 and 2.2).

``base_subject`` follows the seven steps of RFC 5256 section 2.1 over the
decoded subject (RFC 2047 words are decoded first, step 1):

* trailing ``(fwd)`` and whitespace go (step 2, ``subj-trailer``);
* leading ``Re:``, ``Fw:``, ``Fwd:`` with their ``[blob]``s and whitespace go
  (step 3, ``subj-leader``), and a leading ``[blob]`` too when something is left
  after it (step 4), until nothing more matches (step 5);
* a subject wrapped in ``[fwd: ... ]`` is unwrapped and the steps run again (step 6).

Vietnamese reply and forward prefixes: mail clients localised in Vietnamese
write ``Trả lời:`` ("reply") and ``Chuyển tiếp:`` ("forward"); these are taken
like ``Re:`` and ``Fwd:`` (with or without their diacritics). The abbreviations
``TL:`` and ``CT:`` are NOT: in provincial correspondence ``TL.`` is the
"thừa lệnh" (by order of) signature block, ``TL`` also abbreviates "tài liệu"
(documents) and ``CT`` "chỉ thị" (directive, as in ``05/CT-UBND``), so treating
them as reply markers would merge unrelated letters' subjects. A false positive
here costs more (wrong threads) than a missed one (a reply sorted apart).

``sent_date`` is RFC 5256 section 2.2: the Date: header, else INTERNALDATE,
compared in UTC.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.utils import parsedate_to_datetime
from typing import Final

__all__ = ["base_subject", "sent_date", "subject_info"]

# subj-blob = "[" *BLOBCHAR "]" *WSP ; BLOBCHAR = %x01-5a / %x5c / %x5e-ff
_BLOB: Final = r"\[[^\[\]]*\][ \t]*"
# subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"  (plus the Vietnamese words, see above)
_REFWD: Final = rf"(?:re|fwd?|trả lời|tra loi|chuyển tiếp|chuyen tiep)[ \t]*(?:{_BLOB})?:"
# subj-leader = (*subj-blob subj-refwd) / WSP
_LEADER: Final = re.compile(rf"(?:{_BLOB})*{_REFWD}|[ \t]+", re.IGNORECASE)
_LEADING_BLOB: Final = re.compile(_BLOB)
# subj-trailer = "(fwd)" / WSP
_TRAILER: Final = re.compile(r"(?:\(fwd\)|[ \t])+\Z", re.IGNORECASE)
# subj-fwd-hdr = "[fwd:" ; subj-fwd-trl = "]"
_FWD_HDR: Final = re.compile(r"\[fwd:", re.IGNORECASE)
_WHITESPACE: Final = re.compile(r"[ \t\r\n]+")


def _decoded(subject: str) -> str:
    """Step 1: RFC 2047 words decoded, folding and runs of whitespace as one space."""
    if "=?" in subject:
        try:
            subject = str(make_header(decode_header(subject)))
        except (ValueError, LookupError, UnicodeError):
            pass  # not valid encoded-words: compared as written
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", subject))


def subject_info(subject: str | None) -> tuple[str, bool]:
    """(base subject, whether it was a reply or forward): the second is what
    RFC 5256 section 3 (REFERENCES step 5) asks of steps 2, 3 and 6."""
    text = _decoded(subject or "")
    reply = False
    while True:
        # Step 2: trailing "(fwd)" and whitespace.
        trailer = _TRAILER.search(text)
        if trailer is not None:
            reply = reply or "(" in trailer.group()
            text = text[: trailer.start()]
        # Steps 3 to 5: leaders and leading blobs, until neither matches.
        while True:
            leader = _LEADER.match(text)
            if leader is not None and leader.end() > 0:
                reply = reply or leader.group().strip() != ""
                text = text[leader.end() :]
                continue
            blob = _LEADING_BLOB.match(text)
            if blob is not None and text[blob.end() :].strip():
                text = text[blob.end() :]
                continue
            break
        # Step 6: "[fwd: ... ]" around the whole subject.
        if _FWD_HDR.match(text) and text.endswith("]"):
            text = text[5:-1]
            reply = True
            continue
        return text, reply


def base_subject(subject: str | None) -> str:
    """The base subject of RFC 5256 section 2.1."""
    return subject_info(subject)[0]


def sent_date(date_header: str | None, internal_date: datetime) -> datetime:
    """RFC 5256 section 2.2: the Date: header's moment in UTC; INTERNALDATE when the
    header is missing or cannot be parsed. A date without a zone (``-0000``) is
    taken as UTC."""
    if date_header:
        try:
            parsed = parsedate_to_datetime(date_header)
        except (TypeError, ValueError, IndexError, OverflowError):
            parsed = None
        if parsed is not None:
            if parsed.tzinfo is None:
                return parsed.replace(tzinfo=UTC)
            try:
                return parsed.astimezone(UTC)
            except (OverflowError, ValueError):
                pass
    if internal_date.tzinfo is None:
        return internal_date.replace(tzinfo=UTC)
    return internal_date.astimezone(UTC)
