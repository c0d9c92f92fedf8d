"""Settings of the storage package (the ``[storage]`` config section), and
``setting``: the one way every settings dataclass of the server (storage,
policy, pki, mailserver) declares a field with its help text. It lives here
because storage is the package all the others may import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def setting(text: str, default: Any) -> Any:
    """A dataclass field with ``default`` (a list or dict is copied for each
    instance) and its help text, which ``conf/mailserver.toml`` is generated from."""
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata={"help": text})
    return field(default=default, metadata={"help": text})


@dataclass(frozen=True, slots=True)
class StorageSettings:
    url: str = setting(
        "SQLAlchemy async URL of the index: sqlite+aiosqlite:///PATH or\n"
        "postgresql+asyncpg://USER@HOST:PORT/DB. Empty: SQLite at <data_dir>/mailserver.db.",
        "",
    )
    maildir: str = setting("Root of the Maildir message files. Empty: <data_dir>/maildir.", "")
    quota: int = setting(
        "Default storage quota per account in octets (RFC 9208); 0 means unlimited.\n"
        "`mailserver account set-quota ADDRESS SIZE` sets an account's own.",
        0,
    )
    reconcile_budget: float = setting(
        "Seconds the start-up check of every Maildir against the index (crash leftovers to\n"
        "lost+found) may take before the listeners open; the rest continues in the background,\n"
        "and an interrupted check resumes where it stopped. 0: all in the background.",
        10.0,
    )
    orphan_min_age: int = setting(
        "Seconds a message file without an index row must have been left alone before the\n"
        "check moves it to <data_dir>/lost+found (a younger one may belong to a delivery still\n"
        "committing, here or on another node); younger ones are looked at again once old enough.",
        600,
    )


@dataclass(frozen=True, slots=True)
class RetentionSettings:
    """The ``[retention]`` section: how long deleted mail can be brought back."""

    deleted_days: int = setting(
        "Days an expunged message (or a message of a deleted folder) stays in its mailbox's\n"
        "deleted-mail vault, where `mailserver mail undelete` and the portal's \"Thư đã xóa\" page\n"
        "bring it back; then its file and row are removed. A mailbox under a hold\n"
        "(`mailserver hold set`) keeps its vault however old. Vaulted mail does not count against\n"
        "the quota. 0: removed at the next purge.",
        30,
    )
    purge_interval: int = setting(
        "Seconds between two purges of the vaults by the running server (one also runs at start).",
        3600,
    )

    def __post_init__(self) -> None:
        if self.deleted_days < 0:
            raise ValueError("retention.deleted_days must be 0 or more")
        if self.purge_interval < 1:
            raise ValueError("retention.purge_interval must be at least 1 second")
