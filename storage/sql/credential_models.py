"""SQL schema of app passwords and login history (see ``storage.credentials``).

Migration ``0007_app_passwords`` (branch ``app_passwords``) must stay equal to
this module; the contract test compares the migrated database with ``Base.metadata``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.sql.models import Base, BigId, UtcDateTime

__all__ = ["AppPasswordRow", "LoginHistoryRow", "RecoveryCodeRow", "TotpRow"]


class AppPasswordRow(Base):
    """One device's password of an account (Argon2id hash, never the secret)."""

    __tablename__ = "app_passwords"
    __table_args__ = (UniqueConstraint("account_id", "name"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    scopes: Mapped[str] = mapped_column(String(100))
    """Comma-separated protocols (``imap,smtp,managesieve``)."""
    password_hash: Mapped[str] = mapped_column(Text)
    selector: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_used_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)


class LoginHistoryRow(Base):
    """One sign-in attempt of an account; the newest 100 per account are kept."""

    __tablename__ = "login_history"
    __table_args__ = (
        Index("ix_login_history_account_id_id", "account_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    remote_ip: Mapped[str] = mapped_column(String(64))
    protocol: Mapped[str] = mapped_column(String(16))
    client: Mapped[str] = mapped_column(String(200), default="")
    success: Mapped[bool] = mapped_column(Boolean)
    detail: Mapped[str] = mapped_column(String(64), default="")


class TotpRow(Base):
    """An account's TOTP enrolment (migration ``0007_totp``)."""

    __tablename__ = "account_totp"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    secret: Mapped[str] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_step: Mapped[int] = mapped_column(BigInteger)


class RecoveryCodeRow(Base):
    """One recovery code of an account, as SHA-256 of the code (random, ~60 bits)."""

    __tablename__ = "totp_recovery_codes"
    __table_args__ = (UniqueConstraint("account_id", "code_hash"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

