"""SQL schema of the mail index (SQLAlchemy 2.x declarative, SQLite and PostgreSQL).

What is stored, per RFC:

* folders carry UIDVALIDITY and UIDNEXT (RFC 9051 section 2.3.1.1), the highest
  modification sequence (RFC 7162 section 3.1) and the \\Recent watermark
  (RFC 3501 section 2.3.2: a message is \\Recent in exactly one session);
* messages carry UID, MODSEQ, flags, INTERNALDATE and RFC822.SIZE (RFC 9051
  section 2.3), the cached ENVELOPE and BODYSTRUCTURE (section 7.5.2) as JSON,
  and decoded lower-case header text for SEARCH (section 6.4.4);
* ``expunged`` keeps tombstones for QRESYNC VANISHED (RFC 7162 section 3.2.10).

Only generic types are used so one schema serves both databases; datetimes are
timezone-aware and stored in UTC. The migration in ``migrations/versions`` must
be kept equal to this module (a test compares them).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.expression import false
from sqlalchemy.types import TypeDecorator

__all__ = ["Account", "Base", "Expunged", "Folder", "Message", "UtcDateTime"]

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Deterministic constraint names, so migrations can refer to them."""


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out. SQLite has no time zones, so
    values are stored there as naive UTC; naive input is taken to be UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# SQLite only aliases the rowid for INTEGER PRIMARY KEY, so big ids use a variant.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Account(Base):
    __tablename__ = "accounts"
    # AUTOINCREMENT: ids are never reused, so a stale id can never reach a new account.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(320), unique=True)
    """Lower-case canonical address."""
    name: Mapped[str] = mapped_column(Text, default="")
    password_hash: Mapped[str] = mapped_column(Text)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=True)
    password_changed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    next_uidvalidity: Mapped[int] = mapped_column(BigInteger)
    """Lower bound of the next folder's UIDVALIDITY: strictly increasing per
    account, so a deleted and re-created folder never gets an old value
    (RFC 9051 section 2.3.1.1)."""
    quota_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    """STORAGE limit in octets (RFC 9208): None follows ``storage.quota``, 0 is
    unlimited (0006_quota)."""
    storage_used: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    """Sum of the sizes of the account's messages, kept by every transaction
    that adds or removes messages."""
    message_count: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    cert_login: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """May sign in with a TLS client certificate (SASL EXTERNAL; 0007_cert_login)."""


class Folder(Base):
    __tablename__ = "folders"
    __table_args__ = (
        UniqueConstraint("account_id", "name"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(Text)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uidnext: Mapped[int] = mapped_column(BigInteger, default=1)
    highestmodseq: Mapped[int] = mapped_column(BigInteger, default=1)
    recent_watermark: Mapped[int] = mapped_column(BigInteger, default=1)
    """UIDs >= this have not yet been claimed as \\Recent by any session."""
    special_use: Mapped[str | None] = mapped_column(String(32), nullable=True)
    subscribed: Mapped[bool] = mapped_column(Boolean, default=True)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("folder_id", "uid"),
        Index("ix_messages_folder_id_modseq", "folder_id", "modseq"),
        # SELECT reads these of every message: an index-only scan (0004_message_index).
        Index("ix_messages_folder_index", "folder_id", "uid", "seen", "flags"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    folder_id: Mapped[int] = mapped_column(ForeignKey("folders.id", ondelete="CASCADE"))
    uid: Mapped[int] = mapped_column(BigInteger)
    modseq: Mapped[int] = mapped_column(BigInteger)
    flags: Mapped[str] = mapped_column(Text, default="")
    """Space-separated, sorted; never contains \\Recent."""
    seen: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    internal_date: Mapped[datetime] = mapped_column(UtcDateTime)
    size: Mapped[int] = mapped_column(BigInteger)
    blob: Mapped[str] = mapped_column(Text)
    """Path of the message file relative to the Maildir root."""
    envelope: Mapped[str] = mapped_column(Text)
    bodystructure: Mapped[str] = mapped_column(Text)
    envelope_imap: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    """The ENVELOPE as IMAP sends it without UTF8=ACCEPT (storage.imapwire), made at delivery."""
    subject: Mapped[str] = mapped_column(Text, default="")
    from_: Mapped[str] = mapped_column("from_", Text, default="")
    to_: Mapped[str] = mapped_column("to_", Text, default="")
    cc: Mapped[str] = mapped_column(Text, default="")
    bcc: Mapped[str] = mapped_column(Text, default="")
    message_id: Mapped[str] = mapped_column(Text, default="")


class Expunged(Base):
    __tablename__ = "expunged"
    __table_args__ = (Index("ix_expunged_folder_id_modseq", "folder_id", "modseq"),)

    folder_id: Mapped[int] = mapped_column(ForeignKey("folders.id", ondelete="CASCADE"), primary_key=True)
    uid: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    modseq: Mapped[int] = mapped_column(BigInteger)
