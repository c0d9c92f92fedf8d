"""SQL schema of the routing tables (``storage.routes``), on the shared metadata.

Migration ``0007_domains_aliases`` (branch ``domains_aliases``) must stay equal
to this module; the contract test compares the migrated database with
``Base.metadata``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.sql.models import Base, UtcDateTime

__all__ = ["DirAddressAlias", "DirDomain", "DirForward", "DirRouteSerial"]


class DirDomain(Base):
    __tablename__ = "dir_domains"

    name: Mapped[str] = mapped_column(String(253), primary_key=True)
    alias_of: Mapped[str | None] = mapped_column(String(253), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DirAddressAlias(Base):
    __tablename__ = "dir_address_aliases"
    __table_args__ = (UniqueConstraint("alias", "target"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alias: Mapped[str] = mapped_column(String(320), index=True)
    target: Mapped[str] = mapped_column(String(320), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DirForward(Base):
    __tablename__ = "dir_forwards"

    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    target: Mapped[str] = mapped_column(String(320))
    keep_copy: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DirRouteSerial(Base):
    """One row: bumped by every change, so servers reload their cache only then."""

    __tablename__ = "dir_route_serial"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    serial: Mapped[int] = mapped_column(Integer)
