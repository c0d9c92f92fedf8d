"""Password hashing, login checks and login throttling shared by IMAP and SMTP.

Passwords are hashed with Argon2id (argon2-cffi) and never logged. Hashing costs
tens of milliseconds of CPU, so it runs in a worker thread, never on the event
loop. Failed logins are answered after a delay and counted per client address
and per account; past ``auth.max_failures`` in ``auth.failure_window`` seconds
further attempts are refused without checking the password until ``auth.lockout``
has passed, which stops online guessing from one address or against one account.

Verified-credential cache (Dovecot's ``auth_cache``): after a successful Argon2
verification the authenticator remembers HMAC-SHA256(key, password), the key
being random per process, under (account id, stored hash), for
``auth.cache_ttl`` seconds. A later login of that account whose password gives
the same HMAC, while the stored hash is unchanged, is accepted without Argon2. A
password changed by ``mailserver passwd``, a reset or the web portal changes the
stored hash, so the old entry can never match again. Only successes are
remembered; the throttle and the failure delay apply as before. Concurrent
logins with the same credentials wait for one verification instead of each
running Argon2 (a client opening many connections at once).
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from mailserver.config import AuthSettings
from storage.api import Account, MailStore

_HASHER: Final = PasswordHasher()
# Argon2 (RFC 9106 defaults: 64 MiB per hash) is memory-hard by design: hashes
# run in this small pool, so a burst of 1,000 logins costs 2 x 64 MiB at a time,
# not one 64 MiB arena per default-executor thread.
_HASH_POOL: Final = ThreadPoolExecutor(max_workers=2, thread_name_prefix="argon2")
# A hash of a random password: verifying against it when the account does not
# exist keeps the timing of "no such user" equal to "wrong password".
_DUMMY_HASH: Final = _HASHER.hash(secrets.token_urlsafe(16))

# Readable alphabet: no 0/O, 1/l/I look-alikes, so an initial password read over
# the phone or copied from paper survives.
_ALPHABET: Final = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CREDENTIAL_CACHE_SIZE: Final = 10_000
"""Accounts whose verified password is remembered at once (least recently used
forgotten first); an entry takes a few hundred bytes."""
LOGIN_RECORD_INTERVAL: Final = timedelta(minutes=1)
"""``last_login_at`` is written at most this often per account: a client that
reconnects every few seconds need not cost a database write each time."""


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def generate_password(groups: int = 4, group_len: int = 4) -> str:
    """A strong, readable initial password like ``Kq7m-x3Tz-9bWe-hR4p`` (~90 bits)."""
    return "-".join(
        "".join(secrets.choice(_ALPHABET) for _ in range(group_len)) for _ in range(groups)
    )


def password_expires_at(account: Account, max_age_days: int) -> datetime | None:
    """When the account's password expires (Decision 70/2009 Điều 9 khoản 1: change
    passwords regularly); None when passwords do not expire (``max_age_days`` 0).
    A password never changed counts from the account's creation."""
    if max_age_days <= 0:
        return None
    return (account.password_changed_at or account.created_at) + timedelta(days=max_age_days)


class AuthStatus(enum.Enum):
    OK = "ok"
    FAILED = "failed"
    """Unknown user or wrong password (never told apart to the client)."""
    MUST_CHANGE = "must_change"
    """Right password, but it is an initial or expired one that must be changed first."""
    DISABLED = "disabled"
    THROTTLED = "throttled"


@dataclass(frozen=True, slots=True)
class AuthOutcome:
    status: AuthStatus
    account: Account | None = None

    @property
    def ok(self) -> bool:
        return self.status is AuthStatus.OK


# What a user reads when a correct but initial/expired password is refused;
# Vietnamese first, English beside it (staff read it in their client).
MUST_CHANGE_TEXT: Final = (
    "Mật khẩu ban đầu hoặc đã hết hạn, cần đổi trước khi dùng: "
    "mailserver passwd hoặc trang /password. "
    "Password must be changed before use: run `mailserver passwd` or visit /password."
)


def must_change_text(password_url: str) -> str:
    """``MUST_CHANGE_TEXT`` naming the portal's password page by its full URL
    (``web.public_url`` + ``/password``), which a user can open from the message."""
    return (
        f"Mật khẩu ban đầu hoặc đã hết hạn, cần đổi tại {password_url} trước khi dùng / "
        f"Password must be changed at {password_url} before use"
    )


class Throttle:
    """Sliding-window failure counter keyed by client address and by account."""

    def __init__(self, settings: AuthSettings) -> None:
        self._settings = settings
        self._failures: dict[str, deque[float]] = {}
        self._locked_until: dict[str, float] = {}

    def _now(self) -> float:
        return time.monotonic()

    def blocked(self, *keys: str) -> bool:
        now = self._now()
        for key in keys:
            until = self._locked_until.get(key)
            if until is not None:
                if until > now:
                    return True
                del self._locked_until[key]
        return False

    def fail(self, *keys: str) -> None:
        now = self._now()
        window = self._settings.failure_window
        for key in keys:
            hits = self._failures.setdefault(key, deque())
            hits.append(now)
            while hits and hits[0] < now - window:
                hits.popleft()
            if len(hits) >= self._settings.max_failures:
                self._locked_until[key] = now + self._settings.lockout
                hits.clear()
        # Bound memory under a spray of distinct addresses: forget stale keys.
        if len(self._failures) > 100_000:
            self._failures = {k: v for k, v in self._failures.items() if v and v[-1] > now - window}

    def succeed(self, *keys: str) -> None:
        for key in keys:
            self._failures.pop(key, None)


class CredentialCache:
    """Passwords verified recently, as keyed hashes (see the module docstring).

    Keyed by (account id, stored hash string): one entry per account, matched only
    while the account's stored hash is the one that was verified. The HMAC key is
    random per process and never leaves it, so the entries are useless elsewhere
    (no offline guessing from a memory dump beyond what Argon2 hashes allow).
    """

    def __init__(
        self, ttl: float, *, size: int = CREDENTIAL_CACHE_SIZE, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self._size = size
        self._clock = clock
        self._key = secrets.token_bytes(32)
        self._entries: OrderedDict[tuple[int, str], tuple[bytes, float]] = OrderedDict()

    def mac(self, password: str) -> bytes:
        return hmac.new(self._key, password.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()

    def check(self, account_id: int, stored_hash: str, mac: bytes) -> bool:
        """Was this password (``mac``) verified against this very stored hash lately?"""
        if self.ttl <= 0:
            return False
        key = (account_id, stored_hash)
        entry = self._entries.get(key)
        if entry is None:
            return False
        if entry[1] <= self._clock():
            del self._entries[key]
            return False
        self._entries.move_to_end(key)
        return hmac.compare_digest(entry[0], mac)

    def remember(self, account_id: int, stored_hash: str, mac: bytes) -> None:
        """Note a successful verification (never call it for a failure)."""
        if self.ttl <= 0:
            return
        key = (account_id, stored_hash)
        self._entries[key] = (mac, self._clock() + self.ttl)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class Authenticator:
    """Checks credentials against the store; shared by every protocol front end."""

    def __init__(self, store: MailStore, settings: AuthSettings, *, max_password_age_days: int = 0) -> None:
        self._store = store
        self._settings = settings
        self._max_password_age_days = max_password_age_days
        self.throttle = Throttle(settings)
        self.cache = CredentialCache(settings.cache_ttl)
        self._verifying: dict[tuple[str, bytes], asyncio.Future[bool]] = {}
        """Argon2 verifications running, by (stored hash, HMAC of the password):
        identical concurrent logins share one."""

    async def _verify(self, stored: str, password: str, mac: bytes) -> bool:
        key = (stored, mac)
        running = self._verifying.get(key)
        if running is not None:
            return await asyncio.shield(running)
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(_HASH_POOL, verify_password, stored, password)
        self._verifying[key] = future
        try:
            return await asyncio.shield(future)
        finally:
            if self._verifying.get(key) is future:
                del self._verifying[key]

    async def authenticate(self, username: str, password: str, remote_ip: str) -> AuthOutcome:
        address = username.strip().lower()
        ip_key, user_key = f"ip:{remote_ip}", f"user:{address}"
        if self.throttle.blocked(ip_key, user_key):
            await asyncio.sleep(self._settings.failure_delay)
            return AuthOutcome(AuthStatus.THROTTLED)
        account = await self._store.get_account(address) if address else None
        stored = account.password_hash if account is not None else _DUMMY_HASH
        mac = self.cache.mac(password)
        if account is not None and self.cache.check(account.id, stored, mac):
            good = True
        else:
            good = await self._verify(stored, password, mac)
        if account is None or not good:
            self.throttle.fail(ip_key, user_key)
            await asyncio.sleep(self._settings.failure_delay)
            return AuthOutcome(AuthStatus.FAILED)
        self.cache.remember(account.id, stored, mac)
        self.throttle.succeed(ip_key, user_key)
        if account.disabled:
            return AuthOutcome(AuthStatus.DISABLED, account)
        if account.must_change_password:
            return AuthOutcome(AuthStatus.MUST_CHANGE, account)
        expires = password_expires_at(account, self._max_password_age_days)
        if expires is not None and expires <= datetime.now(UTC):
            return AuthOutcome(AuthStatus.MUST_CHANGE, account)
        now = datetime.now(UTC)
        if account.last_login_at is None or now - account.last_login_at >= LOGIN_RECORD_INTERVAL:
            await self._store.record_login(account.id, now)
        return AuthOutcome(AuthStatus.OK, account)
