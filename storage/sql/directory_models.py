"""SQL schema of the directory (danh bạ điện tử), on the mail index's ``Base``.

Tables (prefix ``dir_``): agencies, persons, the address namespace (every
address ever issued, with tombstones), delegations of agency mailboxes
(RFC 4314 rights), password history, sent notices and the audit log. See
``storage.directory`` for the semantics. Migration
``migrations/versions/0002_directory.py`` must stay equal to this module (a test
compares them).

``dir_agencies.head_person_id`` has no foreign key on purpose: agencies and
persons would reference each other, which SQLite cannot add after the fact.
Persons are never deleted once they have been issued an address, so the
reference cannot dangle.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.sql.models import Base, BigId, UtcDateTime

__all__ = [
    "DirAddress",
    "DirAgency",
    "DirAudit",
    "DirDelegation",
    "DirNotice",
    "DirPasswordHistory",
    "DirPerson",
]


class DirAgency(Base):
    __tablename__ = "dir_agencies"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(Text)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("dir_agencies.id"), nullable=True)
    head_person_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    search_text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DirPerson(Base):
    __tablename__ = "dir_persons"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    full_name: Mapped[str] = mapped_column(Text)
    family: Mapped[str] = mapped_column(Text, default="")
    middle: Mapped[str] = mapped_column(Text, default="")
    given: Mapped[str] = mapped_column(Text, default="")
    agency_id: Mapped[int] = mapped_column(ForeignKey("dir_agencies.id"), index=True)
    position: Mapped[str] = mapped_column(Text, default="")
    phone: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(16))
    search_text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    left_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class DirAddress(Base):
    """The namespace: one row per address ever issued; never deleted once issued."""

    __tablename__ = "dir_addresses"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(320), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    # Unique: one personal address per person (Decision 70/2009 Điều 4 khoản 2),
    # one mailbox per agency. NULLs do not collide in SQLite or PostgreSQL.
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("dir_persons.id", ondelete="CASCADE"), unique=True, nullable=True
    )
    agency_id: Mapped[int | None] = mapped_column(
        ForeignKey("dir_agencies.id", ondelete="CASCADE"), unique=True, nullable=True
    )
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True, nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    offboarded_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    purge_after: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    retired_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    archive: Mapped[str | None] = mapped_column(Text, nullable=True)


class DirDelegation(Base):
    __tablename__ = "dir_delegations"

    agency_id: Mapped[int] = mapped_column(
        ForeignKey("dir_agencies.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    rights: Mapped[str] = mapped_column(String(16))
    """RFC 4314 letters in canonical order."""
    may_send: Mapped[bool] = mapped_column(Boolean)
    granted_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DirPasswordHistory(Base):
    __tablename__ = "dir_password_history"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    password_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DirNotice(Base):
    __tablename__ = "dir_notices"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DirAudit(Base):
    __tablename__ = "dir_audit"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(320), index=True)
    decision: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[str] = mapped_column(Text, default="{}")
    """JSON object."""
