"""SQL schema of the TLS-RPT tables (see ``storage.tlsrpt``), on the shared metadata.

The migration ``0008_tlsrpt`` (branch ``tlsrpt``) must be kept equal to this
module; the contract test compares the migrated database with ``Base.metadata``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.sql.models import Base, BigId, UtcDateTime

__all__ = ["TlsRptReceived", "TlsRptResult"]


class TlsRptResult(Base):
    __tablename__ = "tlsrpt_results"
    __table_args__ = (
        Index("ix_tlsrpt_results_reported_at_at", "reported_at", "at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    policy_domain: Mapped[str] = mapped_column(Text)
    policy_type: Mapped[str] = mapped_column(String(24))
    policy_strings: Mapped[str] = mapped_column(Text)
    """JSON list of strings."""
    mx_host: Mapped[str] = mapped_column(Text)
    receiving_ip: Mapped[str] = mapped_column(Text)
    result: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text)
    reported_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class TlsRptReceived(Base):
    __tablename__ = "tlsrpt_received"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    organization: Mapped[str] = mapped_column(Text)
    report_id: Mapped[str] = mapped_column(Text)
    start_at: Mapped[datetime] = mapped_column(UtcDateTime)
    end_at: Mapped[datetime] = mapped_column(UtcDateTime)
    policy_domains: Mapped[str] = mapped_column(Text)
    """Space-separated."""
    success: Mapped[int] = mapped_column(Integer)
    failure: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
