"""One message -> its full-text entry (``storage.api.IndexDoc``).

Headers: Subject and the From/To/Cc/Bcc fields decoded (RFC 2047 encoded
words, RFC 6532 raw UTF-8), names and addresses alike. Texts: what the policy's
extractor (``policy.extract.walk.Walker``) reads out of the message within the
policy's limits: text and HTML bodies (HTML to text), the text of attachments
(.docx .xlsx .pptx .odt .ods .pdf .rtf .txt .html), attached messages and zip
members, and attachment file names. It runs in a worker process
(``mailserver.search.indexer``), so a slow PDF never blocks the server.
"""

from __future__ import annotations

import email.message
import email.parser
import email.policy
import logging
from typing import Final

from policy.extract.walk import LimitExceeded, Limits, Walker, parse_message
from storage import headers
from storage.api import IndexDoc
from storage.fulltext import build_doc
from storage.mimeinfo import decode_words

log = logging.getLogger(__name__)

_ROLES: Final = frozenset({"body", "document", "title", "filename", "subject"})
_HEADERS: Final = ("subject", "from", "to", "cc", "bcc")


def _headers(data: bytes) -> dict[str, str]:
    head, _ = headers.split(data)
    found: dict[str, list[str]] = {name: [] for name in _HEADERS}
    for name, value in headers.fields(head):
        key = name.lower()
        if key in found:
            found[key].append(decode_words(value))
    return {name: ", ".join(values) for name, values in found.items()}


_HEADER_PARSER: Final = email.parser.BytesParser(policy=email.policy.compat32)


def _delimiters(body: bytes, separator: bytes) -> list[tuple[int, int, bool]] | None:
    """(start, end after its line break, closing?) of each delimiter line of a
    multipart body up to the closing one, as the ``email`` feed parser matches them:
    a line that is ``separator``, then ``--`` for the closing one, then only spaces
    and tabs. None when there is no closing delimiter, or when the feed parser, which
    also ends lines at a bare CR or LF, could see a delimiter line that CRLF lines
    do not show (``separator`` after a bare CR or LF, or one in a delimiter line)."""
    found: list[tuple[int, int, bool]] = []
    start = body.find(separator)
    while start >= 0:
        if start == 0 or body[start - 2 : start] == b"\r\n":
            line_end = body.find(b"\r\n", start)
            if line_end < 0:
                line_end = len(body)
            rest = body[start + len(separator) : line_end]
            if b"\r" in rest or b"\n" in rest:
                return None
            closing = rest.startswith(b"--")
            if not rest[2 if closing else 0 :].strip(b" \t"):
                found.append((start, min(line_end + 2, len(body)), closing))
                if closing:
                    return found
        elif body[start - 1] in b"\r\n":
            return None
        start = body.find(separator, start + 1)
    return None


_MAX_NESTING: Final = 20
"""Multiparts in multiparts the cut takes (deeper: the general parse, whose own
recursion goes further, and the walker stops at 50 levels keeping what it read)."""


def _parsed(data: bytes, depth: int = 0) -> email.message.Message | None:
    """``policy.extract.walk.parse_message(data)`` (the same tree, one header parse), and
    for a multipart message whose parts are leaves or multiparts of the same kind,
    without feeding every line of its attachments through the ``email`` feed parser
    (its line-by-line reading of a base64 attachment was ~2/3 of indexing a message
    with one): the body is cut at the delimiter lines and each part parsed on its own,
    which gives each the payload the feed parser gives it (the line break before a
    delimiter belongs to the delimiter, RFC 2046 section 5.1.1). None, for the general
    parse, for anything else: message/*, a header defect or no empty line after the
    header section (in a part too), a delimiter line not between CRLFs, no closing
    delimiter, an empty part (the feed parser skips repeated delimiters), message/*
    parts, multipart/digest (its parts default to message/rfc822).
    tests/unit/test_textfold_fast.py compares both parses."""
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        # For a type other than multipart/* and message/*, what follows the header
        # section is the payload as it is: the same as parsing the whole message.
        msg = _HEADER_PARSER.parsebytes(data[: end + 4], headersonly=True)
        if not msg.defects and msg.get_payload() == "":
            maintype = msg.get_content_maintype()
            if maintype not in ("multipart", "message"):
                msg.set_payload(data[end + 4 :].decode("ascii", "surrogateescape"))
                return msg
            if maintype == "multipart" and depth < _MAX_NESTING and _split(msg, data[end + 4 :], depth):
                return msg
    return None


def _split(msg: email.message.Message, body: bytes, depth: int) -> bool:
    """Give the multipart ``msg`` its parts from ``body``; False when the general parse
    must be taken."""
    boundary = msg.get_boundary()
    if not boundary or not boundary.isascii() or msg.get_content_subtype() == "digest":
        return False
    found = _delimiters(body, b"--" + boundary.encode("ascii"))
    if found is None or len(found) < 2:
        return False  # no closing delimiter, or no other before it (the body is then text)
    parts: list[email.message.Message | str] = []
    for (_, after, _), (start, _, _) in zip(found, found[1:], strict=False):
        if start <= after:
            return False
        part = _parsed(body[after : start - 2], depth + 1)
        if part is None or part.get_content_maintype() == "message":
            return False
        parts.append(part)
    msg.set_payload(parts)
    return True


def _texts(data: bytes, limits: Limits) -> list[str]:
    walker = Walker(limits)
    try:
        # Walker.message without the top-level subject, a header word already (decoding
        # it again with the email package cost ~5% of a plain message's indexing); its
        # depth check at depth 0 kept. Nested messages' subjects are body text.
        if limits.max_depth >= 0:
            walker.part(_parsed(data) or parse_message(data), "", 0)
    except (LimitExceeded, RecursionError):
        pass  # what was read within the limits is indexed
    units = walker.analysis.units
    return [u.text for u in units if u.role in _ROLES and u.where != "subject"]


MAX_TEXT: Final = 1024 * 1024
"""Characters of body and attachment text indexed per message (Dovecot's fts
plugins cut long texts too): a 10 MB log pasted into a mail is searchable by its
first megabyte, and the index and the indexer's memory stay bounded."""


def _capped(texts: list[str]) -> list[str]:
    kept: list[str] = []
    room = MAX_TEXT
    for text in texts:
        if room <= 0:
            break
        kept.append(text[:room])
        room -= len(kept[-1])
    return kept


def document(message_id: int, data: bytes, limits: Limits) -> IndexDoc:
    """The index entry of a message; never raises (a broken part adds no text)."""
    try:
        fields = _headers(data)
    except Exception:  # one broken header block must not stop the indexer
        log.warning("index: unreadable header in message %d", message_id, exc_info=True)
        fields = dict.fromkeys(_HEADERS, "")
    try:
        texts = _capped(_texts(data, limits))
    except Exception:  # an extractor bug on one message must not stop the indexer
        log.warning("index: text extraction failed for message %d", message_id, exc_info=True)
        texts = []
    return build_doc(
        message_id,
        subject=fields["subject"],
        from_=fields["from"],
        to=fields["to"],
        cc=fields["cc"],
        bcc=fields["bcc"],
        bodies=texts,
    )


def document_of_file(message_id: int, path: str, limits: Limits) -> IndexDoc | None:
    """``document`` of a message file; None when the file is gone (expunged meanwhile)."""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except FileNotFoundError:
        return None
    return document(message_id, data, limits)
