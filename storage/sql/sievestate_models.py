"""SQL schema of the Sieve interpreter's memory (see ``storage.sievestate``).

``sieve_vacation``: one row per (mailbox, vacation handle, sender) replied to,
until ``expires`` (RFC 5230 section 4.2). ``sieve_duplicate``: one row per
(mailbox, tracking key) of the duplicate test (RFC 7352 section 3). The
owner is the mailbox address (lower case) rather than an account id: a
reply remembered survives nothing worse than the mailbox being renamed.

Migration ``0008_sieve_state`` (branch ``sieve_state``) must stay equal to this
module; the contract test compares the migrated database with ``Base.metadata``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.sql.models import Base, UtcDateTime

__all__ = ["SieveDuplicateRow", "SieveVacationRow"]


class SieveVacationRow(Base):
    __tablename__ = "sieve_vacation"
    __table_args__ = (Index("ix_sieve_vacation_expires", "expires"),)

    owner: Mapped[str] = mapped_column(String(320), primary_key=True)
    handle: Mapped[str] = mapped_column(String(128), primary_key=True)
    sender: Mapped[str] = mapped_column(String(320), primary_key=True)
    expires: Mapped[datetime] = mapped_column(UtcDateTime)


class SieveDuplicateRow(Base):
    __tablename__ = "sieve_duplicate"
    __table_args__ = (Index("ix_sieve_duplicate_expires", "expires"),)

    owner: Mapped[str] = mapped_column(String(320), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires: Mapped[datetime] = mapped_column(UtcDateTime)
