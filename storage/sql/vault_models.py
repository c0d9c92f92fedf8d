"""SQL schema of the deleted-mail vault and of legal holds, on the shared metadata.

``vault``: one row per expunged message kept for ``retention.deleted_days``
(``storage.sql.vault``). The message file stays in the account's Maildir under
``..vault/cur/`` (``storage.maildir.vault_path``); ``blob`` is its path. The row
keeps what listing and restoring need: the folder it came from (its id while
the folder exists, its name always), the original UID, flags, INTERNALDATE,
size, and the decoded subject and sender for display. Vaulted messages do not
count against the quota (as Dovecot's lazy_expunge).

``holds``: a legal hold on one mailbox (``account_id``) or on an agency
(``agency_id``: its own mailbox and every mailbox of its persons). While a
hold covers a mailbox its vault is never emptied and the mailbox is never
deleted.

Migration ``0007_vault`` (branch ``vault``) must stay equal to this module; the
contract test compares the migrated database with ``Base.metadata``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.sql.models import Base, BigId, UtcDateTime

__all__ = ["MailHold", "VaultEntry"]


class VaultEntry(Base):
    __tablename__ = "vault"
    __table_args__ = (
        Index("ix_vault_account_id_deleted_at", "account_id", "deleted_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    folder_id: Mapped[int | None] = mapped_column(
        ForeignKey("folders.id", ondelete="SET NULL"), index=True, nullable=True
    )
    """The folder it was expunged from, while that folder exists."""
    folder_name: Mapped[str] = mapped_column(Text)
    """The folder's name when the message was expunged (restored there if the folder is gone)."""
    uid: Mapped[int] = mapped_column(BigInteger)
    blob: Mapped[str] = mapped_column(Text)
    flags: Mapped[str] = mapped_column(Text, default="")
    internal_date: Mapped[datetime] = mapped_column(UtcDateTime)
    size: Mapped[int] = mapped_column(BigInteger)
    subject: Mapped[str] = mapped_column(Text, default="")
    """Decoded (RFC 2047) subject, as written: for listing."""
    from_: Mapped[str] = mapped_column("from_", Text, default="")
    """Decoded first sender, ``Name <addr>``: for listing."""
    deleted_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class MailHold(Base):
    __tablename__ = "holds"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), unique=True, nullable=True
    )
    agency_id: Mapped[int | None] = mapped_column(
        ForeignKey("dir_agencies.id", ondelete="CASCADE"), unique=True, nullable=True
    )
    reason: Mapped[str] = mapped_column(Text)
    set_by: Mapped[str] = mapped_column(Text, default="")
    set_at: Mapped[datetime] = mapped_column(UtcDateTime)
