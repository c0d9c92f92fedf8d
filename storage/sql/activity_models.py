"""SQL schema of operations activity (see ``storage.activity``), on the shared metadata.

Migration ``0003_operations`` (branch ``operations``) must stay equal to this
module; the contract test compares the migrated database with ``Base.metadata``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer
from sqlalchemy.orm import Mapped, mapped_column

from storage.sql.models import Base, BigId, UtcDateTime

__all__ = ["OpsMailboxOpen"]


class OpsMailboxOpen(Base):
    """One open (IMAP SELECT/EXAMINE of INBOX, or the web) of an agency mailbox."""

    __tablename__ = "ops_mailbox_opens"
    __table_args__ = (
        Index("ix_ops_mailbox_opens_account_id_opened_at", "account_id", "opened_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    """The agency mailbox's account."""
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    by_account_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """Who opened it (head or delegate); no foreign key: the row outlives the person's account."""
