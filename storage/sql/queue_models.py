"""SQL schema of the outbound queue (see ``storage.queue``), on the shared metadata.

The migration ``0002_queue`` (branch ``queue``) must be kept equal to this
module; the contract test compares the migrated database with ``Base.metadata``,
which the migration module imports this module into.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.sql.models import Base, BigId, UtcDateTime

__all__ = ["OutboundMessage", "OutboundRecipient"]


class OutboundMessage(Base):
    __tablename__ = "outbound_messages"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sender: Mapped[str] = mapped_column(Text)
    """Envelope reverse-path, "" for the null sender."""
    blob: Mapped[str] = mapped_column(Text)
    """File name of the message inside the spool directory."""
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    origin: Mapped[str] = mapped_column(String(16))
    account: Mapped[str] = mapped_column(Text, default="")
    delay_warned: Mapped[bool] = mapped_column(Boolean, default=False)
    bounce_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    claimed_by: Mapped[str] = mapped_column(Text, default="", server_default="")
    """Node working on the message now (several nodes, one database), "" for none."""
    claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    """End of that node's lease: a node that dies mid-delivery loses the claim then."""


class OutboundRecipient(Base):
    __tablename__ = "outbound_recipients"
    __table_args__ = (
        Index("ix_outbound_recipients_state_next_attempt_at", "state", "next_attempt_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("outbound_messages.id", ondelete="CASCADE"), index=True
    )
    address: Mapped[str] = mapped_column(Text)
    domain: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="")
    remote_mta: Mapped[str] = mapped_column(Text, default="")
    notified: Mapped[bool] = mapped_column(Boolean, default=False)
