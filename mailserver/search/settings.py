"""``[search]``: the full-text index and how queries compare diacritics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _help(text: str, default: Any) -> Any:
    return field(default=default, metadata={"help": text})


@dataclass(frozen=True, slots=True)
class SearchSettings:
    exact_diacritics: bool = _help(
        'false: a query matches with or without diacritics ("dong nai", "Đông Nai" and "Đồng Nai"\n'
        'all find "Đồng Nai"). true: a query typed with diacritics matches only those same\n'
        "diacritics; a query without any still matches every spelling.",
        False,
    )
    index: bool = _help(
        "Index new mail in the background (text, HTML, attachments) so SEARCH answers from the\n"
        "index. false: nothing is indexed and SEARCH reads the messages, as without an index.",
        True,
    )
    batch: int = _help("Messages the indexer takes from the work list at a time.", 64)
    processes: int = _help(
        "Worker processes extracting attachment text for the index (one keeps the other cores\n"
        "for SMTP and IMAP). 0: a thread of the server process.",
        1,
    )
    poll_interval: float = _help(
        "Seconds between looks at an empty work list (new mail waits at most this long to be\n"
        "indexed; until then SEARCH reads it).",
        1.0,
    )
