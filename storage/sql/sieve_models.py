"""SQL schema of per-account Sieve scripts (see ``storage.sieve``).

Migration ``0008_sieve`` (branch ``sieve``) must stay equal to this module; the
contract test compares the migrated database with ``Base.metadata``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.sieve import NAME_MAX
from storage.sql.models import Base, UtcDateTime

__all__ = ["SieveScriptRow"]


class SieveScriptRow(Base):
    """One named script of an account; at most one row per account is active."""

    __tablename__ = "sieve_scripts"
    __table_args__ = (UniqueConstraint("account_id", "name"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    text: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
