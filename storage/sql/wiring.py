"""The SQL stores of one database, built around one ``Database`` (``storage.open_storage``)."""

from __future__ import annotations

from pathlib import Path

from storage import Storage
from storage.sql.activity import SqlActivityStore
from storage.sql.credentials import SqlCredentialStore
from storage.sql.database import Database
from storage.sql.directory import SqlDirectoryStore
from storage.sql.dmarc import SqlDmarcStore
from storage.sql.queue import SqlOutboundQueue
from storage.sql.routes import SqlRoutesStore
from storage.sql.sieve import SqlSieveScripts
from storage.sql.sievestate import SqlSieveState
from storage.sql.store import SqlMailStore
from storage.sql.tlsrpt import SqlTlsRptStore

__all__ = ["sql_storage"]


def sql_storage(
    url: str,
    maildir: Path,
    *,
    quota_bytes: int | None = None,
    spool_dir: Path | None = None,
    own: bool = True,
) -> Storage:
    """``own``: the ``Storage`` starts and closes the database; otherwise the mail
    store does (``storage.open_store``)."""
    if own:
        db = Database(url)
        mail = SqlMailStore(db, maildir, quota_bytes=quota_bytes)
    else:
        mail = SqlMailStore(url, maildir, quota_bytes=quota_bytes)
        db = mail.db
    return Storage(
        mail=mail,
        directory=SqlDirectoryStore(db),
        activity=SqlActivityStore(db),
        routes=SqlRoutesStore(db),
        credentials=SqlCredentialStore(db),
        dmarc=SqlDmarcStore(db),
        sieve=SqlSieveScripts(db),
        sieve_state=SqlSieveState(db),
        tlsrpt=SqlTlsRptStore(db),
        queue=SqlOutboundQueue(db, spool_dir) if spool_dir is not None else None,
        database=db if own else None,
    )
