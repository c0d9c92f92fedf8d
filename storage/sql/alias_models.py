"""SQL schema of agency aliases (``storage.directory.AgencyAlias``), on the shared metadata.

Extra names an agency is known by in documents ("Sở TTTT", "VP UBND tỉnh"),
added by operators. ``key`` is the name's normalised form (the caller's
``canon``), unique, so one name never stands for two agencies. Migration
``0006_agency_alias`` (branch ``agency_alias``) must stay equal to this module;
the contract test compares the migrated database with ``Base.metadata``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.sql.models import Base, UtcDateTime

__all__ = ["DirAgencyAlias"]


class DirAgencyAlias(Base):
    __tablename__ = "dir_agency_aliases"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("dir_agencies.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(Text)
    """As the operator wrote it, NFC."""
    key: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
