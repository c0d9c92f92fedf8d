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


def _texts(data: bytes, limits: Limits) -> list[str]:
    walker = Walker(limits)
    try:
        # Walker.message without the top-level subject, a header word already (decoding
        # it again with the email package cost ~5% of a plain message's indexing); its
        # depth check at depth 0 kept. Nested messages' subjects are body text.
        if limits.max_depth >= 0:
            walker.part(parse_message(data), "", 0)
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
