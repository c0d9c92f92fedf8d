"""SQL schema of operations activity (see ``storage.activity``), on the shared metadata.

Migrations ``0003_operations`` (branch ``operations``) and ``0006_shared_access``
(branch ``shared_access``) must stay equal to this module; the contract test
compares the migrated database with ``Base.metadata``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer
from sqlalchemy.orm import Mapped, mapped_column

from storage.sql.models import Base, BigId, UtcDateTime

__all__ = ["OpsMailboxOpen", "OpsSharedAccess"]


class OpsMailboxOpen(Base):
    """One counted check of an agency mailbox (Decision 70/2009 Điều 6 khoản 6): a
    person read a message body or changed a flag in it over IMAP, or the portal
    showed it; at most one per person and mailbox per hour (``storage.activity``)."""

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


class OpsSharedAccess(Base):
    """When a head or delegate last opened a folder of an agency mailbox through the
    shared namespace (``Shared/<code>/…``): one row per mailbox and person, so an
    agency mailbox its people use every day is never reported as unused."""

    __tablename__ = "ops_shared_access"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    """The agency mailbox's account."""
    by_account_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    """Who opened it; no foreign key: the row outlives the person's account."""
    last_at: Mapped[datetime] = mapped_column(UtcDateTime)
