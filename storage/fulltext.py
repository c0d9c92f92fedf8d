"""Full-text documents and queries, the same for both engines (``storage.sql.fulltext``).

A message becomes an ``IndexDoc``: its header words (subject, From/To/Cc/Bcc
names and addresses) and body words (text and HTML bodies, attachment text),
each folded (``storage.textfold.fold``) and exact (``storage.textfold.exact``).
Words are runs of letters and digits joined by one space, so the engines'
own tokenisers (FTS5 ``unicode61``, PostgreSQL's ``simple`` configuration) see
exactly the tokens chosen here and a query is tokenised the same way.

A query string becomes a phrase of its words whose last word is a prefix, as
Dovecot's FTS answers SEARCH: "quyet dinh" finds "Quyết định số", "123/qd-ub"
finds "123/QĐ-UBND". RFC 9051 section 6.4.4 asks for substrings; a word index
cannot find the middle of a word, so the IMAP layer scans for strings that are
too short or have no word at all (``indexable``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from storage.api import IndexDoc
from storage.textfold import exact, fold, joined_words, words

__all__ = ["MAX_TEXT", "MIN_QUERY", "build_doc", "field_text", "indexable", "query_words"]

MAX_TEXT: Final = 400_000
"""Characters of body text indexed per message: the first 400,000 (about 150
pages). PostgreSQL refuses a tsvector over 1 MB, and no search looks further."""
MIN_QUERY: Final = 3
"""Shorter strings (after folding) are scanned, not looked up (Dovecot's FTS
likewise leaves very short words to the slow path)."""

_SPACE: Final = re.compile(r"\s+")


def field_text(text: str) -> str:
    """Folded header text with whitespace runs collapsed (for substring matches)."""
    return _SPACE.sub(" ", fold(text)).strip()


def _joined(text: str) -> tuple[str, str]:
    """The folded and the exact words of ``text``, each joined by spaces. Text without
    diacritics (all ASCII text) has one form for both: cut into words once."""
    folded = fold(text)
    unfolded = exact(text)
    folded_words = joined_words(folded)
    return folded_words, folded_words if unfolded == folded else joined_words(unfolded)


def build_doc(
    message_id: int,
    *,
    subject: str,
    from_: str,
    to: str,
    cc: str,
    bcc: str,
    bodies: Iterable[str],
) -> IndexDoc:
    """The index entry of one message from its decoded header fields and texts."""
    header = "\n".join((subject, from_, to, cc, bcc))
    parts: list[str] = []
    size = 0
    for text in bodies:
        if size >= MAX_TEXT:
            break
        parts.append(text[: MAX_TEXT - size])
        size += len(parts[-1])
    body = "\n".join(parts)
    header_words, header_exact = _joined(header)
    body_words, body_exact = _joined(body)
    return IndexDoc(
        message_id=message_id,
        header=header_words,
        body=body_words,
        header_exact=header_exact,
        body_exact=body_exact,
        subject=field_text(subject),
        from_=field_text(from_),
        to=field_text(to),
        cc=field_text(cc),
        bcc=field_text(bcc),
    )


def query_words(text: str, *, exact_form: bool = False) -> list[str]:
    """The words of a query string, folded (or exact): a phrase, the last a prefix."""
    return words(exact(text) if exact_form else fold(text))


def indexable(text: str) -> bool:
    """Whether the index can answer a TEXT/BODY search for ``text``: it has a word,
    and at least ``MIN_QUERY`` letters or digits."""
    found = words(fold(text))
    return bool(found) and sum(len(w) for w in found) >= MIN_QUERY
