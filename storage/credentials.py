"""Per-device credentials and the login history of accounts (interface and value types).

Theory of operation
-------------------
An *app password* is a random secret the server generates for one device or
program ("Điện thoại", "Thunderbird ở nhà"): it is shown once, stored as an
Argon2id hash (never in clear), limited to the protocols of its ``scopes``
(``imap``, ``smtp``, ``managesieve``) and revoked on its own, without touching
the main password. Beside the hash a short *selector* is stored: the first
four hex digits of SHA-256 of the secret. A login tries only the app passwords
whose selector matches, so a wrong password costs no extra Argon2 check (16 of
the secret's ~90 bits are thereby public, which leaves ~74).

The *login history* keeps the last ``HISTORY_PER_ACCOUNT`` sign-ins of each
account (IMAP, SMTP submission, portal), successful or not. Rows are written in
batches by the authenticator's background writer (``mailserver.auth``), never
on the login's own path; a batch also prunes the accounts it touched.

Lifecycle: ``Storage.credentials`` (``storage.open_storage``), used after
``await storage.start()``; it shares the mail store's database, like the directory.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol

from storage.api import MailStore

SCOPES: Final = ("imap", "smtp", "managesieve")
"""Protocols an app password may be limited to."""
HISTORY_PER_ACCOUNT: Final = 100
"""Login history rows kept per account (older ones are pruned)."""


def selector(secret: str) -> str:
    """The public lookup key of an app password (see the module docstring)."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()[:4]


class DuplicateName(Exception):  # noqa: N818 - a refusal, not a bug
    """The account already has an app password of that name."""


@dataclass(frozen=True, slots=True)
class AppPassword:
    id: int
    account_id: int
    name: str
    scopes: tuple[str, ...]
    password_hash: str
    selector: str
    created_at: datetime
    last_used_at: datetime | None = None
    last_used_ip: str | None = None


@dataclass(frozen=True, slots=True)
class LoginEvent:
    """One sign-in attempt of an existing account."""

    account_id: int
    at: datetime
    remote_ip: str
    protocol: str
    """``imap``, ``smtp``, ``managesieve`` or ``web``."""
    success: bool
    client: str = ""
    """The client's name: IMAP ID ``name`` or the app password's name."""
    detail: str = ""
    """Why it failed (``password``, ``app-password-required``, ``disabled``…), or the method."""
    app_password_id: int | None = None
    """The app password used, whose ``last_used_at`` the same batch updates."""


@dataclass(frozen=True, slots=True)
class TotpState:
    """An account's TOTP (RFC 6238) enrolment: pending until a first code confirms it."""

    account_id: int
    secret: str
    """Base32, as authenticator apps show it; needed in clear to compute codes."""
    enabled: bool
    created_at: datetime
    last_step: int
    """The last time step accepted: a code of that step or an earlier one is refused."""
    recovery_left: int = 0


class CredentialStore(Protocol):
    """App passwords and login history. Coroutines on the store's loop."""

    async def add_app_password(
        self, account_id: int, name: str, scopes: tuple[str, ...], password_hash: str, selector: str,
        when: datetime,
    ) -> AppPassword:
        """Store a new app password; DuplicateName if the account has one so named."""
        ...

    async def list_app_passwords(self, account_id: int) -> list[AppPassword]:
        """The account's app passwords, oldest first."""
        ...

    async def revoke_app_password(self, account_id: int, name: str) -> bool:
        """Delete the named app password; False when there was none."""
        ...

    async def record_logins(self, events: list[LoginEvent], keep: int = HISTORY_PER_ACCOUNT) -> None:
        """Write a batch of login events in one transaction, update the last use of
        the app passwords they name, and keep only the ``keep`` newest rows of each
        account touched."""
        ...

    async def logins(self, account_id: int, limit: int = HISTORY_PER_ACCOUNT) -> list[LoginEvent]:
        """The account's latest logins, newest first."""
        ...

    async def totp(self, account_id: int) -> TotpState | None:
        """The account's TOTP enrolment (pending or enabled), or None."""
        ...

    async def start_totp(self, account_id: int, secret: str, when: datetime) -> None:
        """Begin (or restart) an enrolment: pending, no recovery codes."""
        ...

    async def enable_totp(self, account_id: int, step: int, recovery_hashes: list[str]) -> bool:
        """Confirm the pending enrolment with the step of a right code; store the
        recovery codes' hashes. False when nothing was pending."""
        ...

    async def accept_totp_step(self, account_id: int, step: int) -> bool:
        """Atomically take ``step`` if it is later than the last accepted one (each
        code usable once, RFC 6238 section 5.2, across processes too)."""
        ...

    async def use_recovery_code(self, account_id: int, code_hash: str, when: datetime) -> bool:
        """Spend an unused recovery code by its hash; False when none matches."""
        ...

    async def disable_totp(self, account_id: int) -> bool:
        """Remove the enrolment and its recovery codes; False when there was none."""
        ...


def credentials_for(store: MailStore) -> CredentialStore:
    """The credential store on the same database as ``store`` (``storage.storage_of``)."""
    from storage import storage_of

    return storage_of(store).credentials
