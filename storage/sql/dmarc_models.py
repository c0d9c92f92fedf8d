"""SQL schema of DMARC aggregate reporting (see ``storage.dmarc``).

``dmarc_pending``: evaluations of inbound mail not yet reported, one row per
distinct evaluation (``row_key``) with its count; the report for a domain
deletes its rows once queued. ``dmarc_received``: the rows of aggregate
reports other receivers sent to our ``rua``, one per report record.

Migration ``0008_dmarc_reports`` (branch ``dmarc_reports``) must stay equal to
this module; the contract test compares the migrated database with ``Base.metadata``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.sql.models import Base, BigId, UtcDateTime

__all__ = ["DmarcPendingRow", "DmarcReceivedRow"]


class DmarcPendingRow(Base):
    __tablename__ = "dmarc_pending"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    policy_domain: Mapped[str] = mapped_column(String(255), index=True)
    row_key: Mapped[str] = mapped_column(String(64), unique=True)
    """SHA-256 of the evaluation's identity (source IP, results, domains)."""
    evaluation: Mapped[str] = mapped_column(Text)
    """The evaluation as JSON (what the report's record is made of)."""
    count: Mapped[int] = mapped_column(Integer)
    first_seen: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen: Mapped[datetime] = mapped_column(UtcDateTime)


class DmarcReceivedRow(Base):
    __tablename__ = "dmarc_received"
    __table_args__ = (
        Index("ix_dmarc_received_reporter_report_id", "reporter", "report_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    reporter: Mapped[str] = mapped_column(String(255))
    """``org_name`` of the report."""
    report_id: Mapped[str] = mapped_column(String(255))
    email: Mapped[str] = mapped_column(String(255), default="")
    domain: Mapped[str] = mapped_column(String(255), index=True)
    """``policy_published/domain``: one of ours."""
    begin: Mapped[int] = mapped_column(BigInteger)
    end: Mapped[int] = mapped_column(BigInteger)
    source_ip: Mapped[str] = mapped_column(String(64))
    header_from: Mapped[str] = mapped_column(String(255))
    count: Mapped[int] = mapped_column(BigInteger)
    disposition: Mapped[str] = mapped_column(String(16))
    dkim: Mapped[str] = mapped_column(String(16))
    spf: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
