"""Settings of the storage package (the ``[storage]`` config section)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class StorageSettings:
    url: str = field(
        default="",
        metadata={
            "help": "SQLAlchemy async URL of the index: sqlite+aiosqlite:///PATH or\n"
            "postgresql+asyncpg://USER@HOST:PORT/DB. Empty: SQLite at <data_dir>/mailserver.db."
        },
    )
    maildir: str = field(
        default="", metadata={"help": "Root of the Maildir message files. Empty: <data_dir>/maildir."}
    )
    quota: int = field(
        default=0, metadata={"help": "Storage quota per account in octets (RFC 9208); 0 means unlimited."}
    )
