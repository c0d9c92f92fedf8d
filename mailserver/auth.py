"""Password hashing, login checks and login throttling shared by IMAP, SMTP and the portal.

Passwords are hashed with Argon2id (argon2-cffi) and never logged. Hashing costs
tens of milliseconds of CPU, so it runs in a small worker pool, never on the
event loop.

Throttling (``Throttle``): every attempt is counted *before* its password is
checked. It reserves a slot of its (account, client address) pair and of its
client address; a reserved slot counts as a failure until the attempt ends, so
300 concurrent LOGINs get no more checks than ``auth.max_failures``, exactly as
300 sequential ones. An attempt finding every slot taken by attempts still
under way waits for one of them to end (``Throttle.acquire``) instead of being
refused: 300 concurrent LOGINs with the right password (a client, or an office
behind one NAT address, opening many connections at once) all succeed, while
300 wrong ones still get ``auth.max_failures`` checks, the rest being refused
when the pair locks. A pair that used up its attempts in ``auth.failure_window``
waits ``auth.lockout`` seconds, twice as long at each further lockout (up to
``auth.max_lockout``); an address gets ``auth.max_failures_per_ip`` failures
whatever the accounts. The account alone is never locked: wrong passwords from
one address do not keep the owner, elsewhere, out.

Fair verification (``VerifyQueue``): Argon2 checks wait per client address and
start round-robin over the addresses, with at most
``auth.max_concurrent_per_ip`` running per address and
``auth.max_concurrent_per_account`` per account, and at most
``auth.max_queued_per_ip`` waiting per address (more are refused at once). A
burst of bad logins from one address thus delays another address's login by
one turn of the rotation, not by the whole burst.

Verified-credential cache (Dovecot's ``auth_cache``): after a successful Argon2
verification the authenticator remembers HMAC-SHA256(key, password), the key
being random per process, under (account id, stored hash), for
``auth.cache_ttl`` seconds. A later login of that account whose password gives
the same HMAC, while the stored hash is unchanged, is accepted without Argon2. A
password changed by ``mailserver passwd``, a reset or the web portal changes the
stored hash, so the old entry can never match again. Only successes are
remembered, and a cached check is admitted by the throttle like any other (a
throttled pair is refused before the cache is looked at). Concurrent logins with
the same credentials wait for one verification instead of each running Argon2
(a client opening many connections at once); each still counts as an attempt.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import hmac
import secrets
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from mailserver.config import AuthSettings
from mailserver.loginlog import LoginRecorder
from storage.api import Account, MailStore
from storage.credentials import SCOPES, AppPassword, CredentialStore, LoginEvent, credentials_for, selector

_HASHER: Final = PasswordHasher()
# Argon2 (RFC 9106 defaults: 64 MiB per hash) is memory-hard by design: hashes
# run in this small pool, so a burst of 1,000 logins costs 2 x 64 MiB at a time,
# not one 64 MiB arena per default-executor thread.
_HASH_WORKERS: Final = 2
_HASH_POOL: Final = ThreadPoolExecutor(max_workers=_HASH_WORKERS, thread_name_prefix="argon2")
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
    APP_PASSWORD_REQUIRED = "app_password_required"  # noqa: S105 - a status name
    """Right main password on IMAP/SMTP while ``accounts.require_app_passwords``:
    it signs in to the portal only."""


@dataclass(frozen=True, slots=True)
class AuthOutcome:
    status: AuthStatus
    account: Account | None = None
    app_password: str | None = None
    """The name of the app password that signed in, None for the main password."""

    @property
    def ok(self) -> bool:
        return self.status is AuthStatus.OK


class AuthObserver(Protocol):
    """Told of every ``Authenticator.authenticate`` by the authenticator itself
    (metrics observe through it instead of replacing the method). Called on the
    event loop; must be quick and never raise."""

    def authenticated(self, outcome: AuthOutcome, seconds: float) -> None:
        """A sign-in ended with ``outcome``, ``seconds`` after it began."""
        ...


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


APP_ONLY_TEXT: Final = (
    "Tài khoản này chỉ đăng nhập thư bằng mật khẩu ứng dụng: tạo một mật khẩu tại trang "
    "/app-passwords hoặc nhờ quản trị (mailserver account app-password add). "
    "This account signs in to mail with app passwords only: create one on the /app-passwords "
    "page or ask an operator; the main password works on the portal only."
)
"""What IMAP and SMTP answer to a right main password when app passwords are required."""


class _Counter:
    """Failures and attempts in progress of one throttle key (see ``Limiter``)."""

    __slots__ = ("failures", "in_flight", "last", "locked_until", "strikes")

    def __init__(self) -> None:
        self.failures: deque[float] = deque()
        self.in_flight = 0
        self.strikes = 0
        """Lockouts so far: each one lasts twice as long as the one before."""
        self.locked_until = 0.0
        self.last = 0.0


class Limiter:
    """Failure counters with reservations and exponential back-off, by key.

    Theory of operation: an attempt first ``reserve``s a slot of its key; the
    reservation counts as a failure until the attempt resolves, so ``limit``
    attempts can be under way or failed at once in ``window`` seconds, however
    many arrive together (the check and the count are one synchronous step on
    the event loop: nothing runs between them). An attempt that finds the key
    ``busy`` (every slot taken, some by attempts under way) may ``wait`` for a
    turn: each settled attempt wakes as many waiters as there are free slots,
    a lockout wakes them all (to be refused). The ``limit``-th failure locks
    the key for ``lockout`` seconds, the next lockout of the same key for twice
    that, and so on up to ``max_lockout``. A success forgets the key's failures
    and lockouts when ``success_resets``.
    """

    MAX_KEYS: Final = 100_000
    """Beyond this many keys the idle ones are forgotten (a spray of addresses)."""

    def __init__(
        self,
        limit: int,
        *,
        window: float,
        lockout: float,
        max_lockout: float,
        success_resets: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = max(1, limit)
        self.window = window
        self.lockout = lockout
        self.max_lockout = max(max_lockout, lockout)
        self.success_resets = success_resets
        self._clock = clock
        self._counters: dict[str, _Counter] = {}
        self._waiters: dict[str, deque[asyncio.Future[None]]] = {}
        """Attempts waiting for a slot of a busy key, in arrival order."""

    def _current(self, key: str, now: float) -> _Counter | None:
        counter = self._counters.get(key)
        if counter is not None:
            while counter.failures and counter.failures[0] <= now - self.window:
                counter.failures.popleft()
        return counter

    def blocked(self, key: str) -> bool:
        """Would ``admit`` refuse ``key`` now? (Nothing is counted.)"""
        now = self._clock()
        counter = self._current(key, now)
        if counter is None:
            return False
        return counter.locked_until > now or len(counter.failures) + counter.in_flight >= self.limit

    def locked(self, key: str) -> bool:
        """Is ``key`` locked out (refused whatever ends), as opposed to merely busy?"""
        now = self._clock()
        counter = self._current(key, now)
        return counter is not None and (counter.locked_until > now or len(counter.failures) >= self.limit)

    def free(self, key: str) -> int:
        """Slots ``admit`` could grant now (0 when locked)."""
        now = self._clock()
        counter = self._current(key, now)
        if counter is None:
            return self.limit
        if counter.locked_until > now:
            return 0
        return max(0, self.limit - len(counter.failures) - counter.in_flight)

    async def wait(self, key: str, *, front: bool = False) -> None:
        """Until an attempt of ``key`` ends (or the key locks); ``front`` keeps the
        place of a waiter woken before whose turn was taken."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._waiters.setdefault(key, deque())
        if front:
            queue.appendleft(future)
        else:
            queue.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.wake(key)  # woken, then cancelled: pass the turn on
            elif future in queue:
                queue.remove(future)
                if not queue and self._waiters.get(key) is queue:
                    del self._waiters[key]
            raise

    def wake(self, key: str) -> None:
        """Wake as many waiters of ``key`` as it has free slots (all when locked)."""
        queue = self._waiters.get(key)
        if not queue:
            return
        turns = len(queue) if self.locked(key) else self.free(key)
        while queue and turns > 0:
            future = queue.popleft()
            if not future.done():
                future.set_result(None)
                turns -= 1
        if not queue:
            del self._waiters[key]

    def admit(self, key: str) -> None:
        """Count an attempt under way; call only when ``blocked`` was False just before."""
        now = self._clock()
        counter = self._counters.get(key)
        if counter is None:
            if len(self._counters) >= self.MAX_KEYS:
                self._sweep(now)
            counter = self._counters[key] = _Counter()
        counter.in_flight += 1
        counter.last = now

    def settle(self, key: str, outcome: bool | None) -> None:
        """End an admitted attempt: True succeeded, False failed, None neither
        (cancelled, or refused for another reason)."""
        counter = self._counters.get(key)
        if counter is None:
            return
        counter.in_flight = max(0, counter.in_flight - 1)
        if outcome is False:
            self._fail(counter)
        elif outcome and self.success_resets:
            counter.failures.clear()
            counter.strikes = 0
            counter.locked_until = 0.0
        self.wake(key)

    def fail(self, key: str) -> None:
        """Count a failure that had no reservation."""
        counter = self._counters.get(key)
        if counter is None:
            self.admit(key)
            self.settle(key, False)
            return
        self._fail(counter)
        self.wake(key)

    def _fail(self, counter: _Counter) -> None:
        now = self._clock()
        counter.last = now
        counter.failures.append(now)
        while counter.failures and counter.failures[0] <= now - self.window:
            counter.failures.popleft()
        if len(counter.failures) >= self.limit:
            counter.strikes += 1
            wait = min(self.lockout * 2 ** min(counter.strikes - 1, 32), self.max_lockout)
            counter.locked_until = max(counter.locked_until, now + wait)
            counter.failures.clear()

    def _sweep(self, now: float) -> None:
        horizon = now - max(self.window, self.max_lockout)
        self._counters = {
            key: c
            for key, c in self._counters.items()
            if c.in_flight or c.locked_until > now or c.last > horizon
        }
        if len(self._counters) >= self.MAX_KEYS:
            # Still full of live keys: keep the locked and busy ones only.
            self._counters = {k: c for k, c in self._counters.items() if c.in_flight or c.locked_until > now}

    def __len__(self) -> int:
        return len(self._counters)


class Reservation:
    """One login attempt admitted by the ``Throttle``; settle it exactly once
    (``succeed``/``fail``), or ``release`` it when it ends otherwise."""

    __slots__ = ("_keys", "_throttle")

    def __init__(self, throttle: Throttle, keys: tuple[str, str]) -> None:
        self._throttle: Throttle | None = throttle
        self._keys = keys

    def _settle(self, outcome: bool | None) -> None:
        throttle, self._throttle = self._throttle, None
        if throttle is not None:
            throttle.pairs.settle(self._keys[0], outcome)
            throttle.addresses.settle(self._keys[1], outcome)

    def succeed(self) -> None:
        self._settle(True)

    def fail(self) -> None:
        self._settle(False)

    def release(self) -> None:
        self._settle(None)


class Throttle:
    """Login throttling per (account, client address) and per client address.

    The account alone is never a key: ten wrong passwords from one address must
    not keep the account's owner, elsewhere, out (an agency head could be
    locked out for good by anyone who knows the address). A pair gets
    ``auth.max_failures`` attempts per ``auth.failure_window``, then waits
    ``auth.lockout`` seconds, doubled at each further lockout up to
    ``auth.max_lockout``; its right password resets it. A client address gets
    ``auth.max_failures_per_ip`` failures whatever the accounts (password
    spraying), and a success does not reset that count (else one valid account
    would reset the address's budget).
    """

    def __init__(self, settings: AuthSettings, *, clock: Callable[[], float] = time.monotonic) -> None:
        common = {"window": settings.failure_window, "lockout": settings.lockout,
                  "max_lockout": settings.max_lockout, "clock": clock}
        self.pairs = Limiter(settings.max_failures, **common)  # type: ignore[arg-type]
        self.addresses = Limiter(settings.max_failures_per_ip, success_resets=False, **common)  # type: ignore[arg-type]

    @staticmethod
    def _keys(account: str, ip: str) -> tuple[str, str]:
        return f"{account}\0{ip}", ip

    def blocked(self, account: str, ip: str) -> bool:
        pair, address = self._keys(account, ip)
        return self.pairs.blocked(pair) or self.addresses.blocked(address)

    def locked(self, account: str, ip: str) -> bool:
        """Is the pair or the address locked out (a login refused unchecked, not
        merely waiting for attempts under way)?"""
        pair, address = self._keys(account, ip)
        return self.pairs.locked(pair) or self.addresses.locked(address)

    async def acquire(self, account: str, ip: str) -> Reservation | None:
        """Admit one attempt like ``reserve``, but when the pair or the address is
        only busy (its slots taken by attempts under way) wait for a turn; None
        when either is locked out, at once or after the attempts ahead failed."""
        pair, address = self._keys(account, ip)
        woken: tuple[Limiter, str] | None = None
        try:
            while True:
                if self.pairs.locked(pair) or self.addresses.locked(address):
                    return None
                if not self.pairs.blocked(pair) and not self.addresses.blocked(address):
                    self.pairs.admit(pair)
                    self.addresses.admit(address)
                    return Reservation(self, (pair, address))
                limiter, key = (self.pairs, pair) if self.pairs.blocked(pair) else (self.addresses, address)
                front = woken is not None
                if woken is not None:
                    # The turn we were woken for may be of use to the next waiter.
                    woken[0].wake(woken[1])
                    woken = None
                await limiter.wait(key, front=front)
                woken = (limiter, key)
        finally:
            if woken is not None:
                woken[0].wake(woken[1])

    def reserve(self, account: str, ip: str) -> Reservation | None:
        """Admit one attempt (counted as a failure until settled), or None when
        the pair or the address has no attempt left (see ``acquire``)."""
        keys = self._keys(account, ip)
        if self.pairs.blocked(keys[0]) or self.addresses.blocked(keys[1]):
            return None
        self.pairs.admit(keys[0])
        self.addresses.admit(keys[1])
        return Reservation(self, keys)

    def fail(self, account: str, ip: str) -> None:
        """Count a failed sign-in that had no reservation (the portal refusing a
        right password for another reason)."""
        pair, address = self._keys(account, ip)
        self.pairs.fail(pair)
        self.addresses.fail(address)


class QueueFull(Exception):  # noqa: N818 - a refusal, not a bug
    """The client address already has ``auth.max_queued_per_ip`` checks waiting."""


@dataclass(slots=True)
class _Job:
    ip: str
    account: str
    stored: str
    password: str
    future: asyncio.Future[bool]


class VerifyQueue:
    """Argon2 verifications, run in the small hash pool in a fair order.

    Jobs wait per client address and are started round-robin over the
    addresses, at most ``per_ip`` running for one address and ``per_account``
    for one account; an address may have ``queued`` more waiting, beyond which
    ``run`` raises ``QueueFull`` at once. So a burst from one address (or
    against one account) costs everyone else at most one turn of the rotation:
    a login from another address waits behind the checks already running and
    at most one per other waiting address, never behind the whole burst.
    """

    def __init__(
        self, *, workers: int, per_ip: int, queued: int, per_account: int, executor: ThreadPoolExecutor
    ) -> None:
        self.workers = max(1, workers)
        self.per_ip = max(1, per_ip)
        self.queued = max(0, queued)
        self.per_account = max(1, per_account)
        self._executor = executor
        self._waiting: dict[str, deque[_Job]] = {}
        """Waiting jobs by address; dict order is the rotation order."""
        self._running = 0
        self._running_ip: Counter[str] = Counter()
        self._running_account: Counter[str] = Counter()
        self.started = 0
        """Verifications started so far (metrics)."""

    @property
    def waiting(self) -> int:
        return sum(len(q) for q in self._waiting.values())

    async def run(self, ip: str, account: str, stored: str, password: str) -> bool:
        waiting = self._waiting.get(ip)
        if self._running_ip[ip] + (len(waiting) if waiting else 0) >= self.per_ip + self.queued:
            raise QueueFull(ip)
        job = _Job(ip, account, stored, password, asyncio.get_running_loop().create_future())
        self._waiting.setdefault(ip, deque()).append(job)
        self._pump()
        try:
            return await job.future
        except asyncio.CancelledError:
            queue = self._waiting.get(ip)
            if queue is not None and job in queue:
                queue.remove(job)
                if not queue:
                    del self._waiting[ip]
            raise

    def _next(self) -> _Job | None:
        """The next job to start: of the eligible addresses, one with the fewest
        checks running, the first in rotation order among those."""
        chosen: str | None = None
        fewest = self.per_ip
        for ip, queue in self._waiting.items():
            running = self._running_ip[ip]
            if running < fewest and self._running_account[queue[0].account] < self.per_account:
                chosen, fewest = ip, running
                if running == 0:
                    break
        if chosen is None:
            return None
        queue = self._waiting.pop(chosen)
        job = queue.popleft()
        if queue:
            self._waiting[chosen] = queue  # to the end of the rotation
        return job

    def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        while self._running < self.workers:
            job = self._next()
            if job is None:
                return
            self._running += 1
            self._running_ip[job.ip] += 1
            self._running_account[job.account] += 1
            self.started += 1
            # verify_password is looked up at call time (tests count the calls).
            done = loop.run_in_executor(self._executor, _verify_password, job.stored, job.password)
            done.add_done_callback(lambda f, job=job: self._finished(job, f))  # type: ignore[misc]

    def _finished(self, job: _Job, done: asyncio.Future[bool]) -> None:
        self._running -= 1
        for counter, key in ((self._running_ip, job.ip), (self._running_account, job.account)):
            counter[key] -= 1
            if counter[key] <= 0:
                del counter[key]
        if not job.future.done():
            if done.cancelled():
                job.future.cancel()
            elif (exc := done.exception()) is not None:
                job.future.set_exception(exc)
            else:
                job.future.set_result(done.result())
        self._pump()


def _verify_password(password_hash: str, password: str) -> bool:
    return verify_password(password_hash, password)


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
    """Checks credentials against the store; shared by every protocol front end
    (IMAP LOGIN/AUTHENTICATE, submission AUTH, the portal).

    Order of one check: the throttle admits the attempt (``Throttle.acquire``:
    counted before anything is verified, waiting for a turn while the pair's or
    the address's slots are all taken by attempts under way), the credential cache may answer,
    otherwise the password is verified in the fair ``VerifyQueue``; the
    reservation is then settled as a success or a failure. A refused attempt
    (throttled, or the address's queue full) and a failed one are answered
    after ``auth.failure_delay``.
    """

    def __init__(
        self, store: MailStore, settings: AuthSettings, *, max_password_age_days: int = 0,
        require_app_passwords: bool = False, history: LoginRecorder | None = None,
        credentials: CredentialStore | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._max_password_age_days = max_password_age_days
        self.require_app_passwords = require_app_passwords
        self._credentials = credentials
        self._observers: list[AuthObserver] = []
        """App passwords and login history (``Storage.credentials``); when not given,
        looked up once for ``store`` (``credentials_for``)."""
        self.history = history
        """The batched login history writer (``mailserver.loginlog``); None: not kept."""
        self.throttle = Throttle(settings)
        self.cache = CredentialCache(settings.cache_ttl)
        self.queue = VerifyQueue(
            workers=_HASH_WORKERS,
            per_ip=settings.max_concurrent_per_ip,
            queued=settings.max_queued_per_ip,
            per_account=settings.max_concurrent_per_account,
            executor=_HASH_POOL,
        )
        self._verifying: dict[tuple[str, bytes], asyncio.Future[bool]] = {}
        """Argon2 verifications running, by (stored hash, HMAC of the password):
        identical concurrent logins share one."""

    @property
    def failure_delay(self) -> float:
        return self._settings.failure_delay

    def throttled(self, username: str, remote_ip: str) -> bool:
        """Would a login of ``username`` from ``remote_ip`` be refused unchecked now?
        (Not when it would only wait for attempts under way.)"""
        return self.throttle.locked(username.strip().lower(), remote_ip)

    def count_failure(self, username: str, remote_ip: str) -> None:
        """Count a sign-in refused after a right password (the portal's /admin for
        a non-operator), so that form cannot be used to test passwords freely."""
        self.throttle.fail(username.strip().lower(), remote_ip)

    async def _verify(self, remote_ip: str, address: str, stored: str, password: str, mac: bytes) -> bool:
        key = (stored, mac)
        running = self._verifying.get(key)
        if running is not None:
            return await asyncio.shield(running)
        task = asyncio.ensure_future(self.queue.run(remote_ip, address, stored, password))
        self._verifying[key] = task
        try:
            return await asyncio.shield(task)
        finally:
            if self._verifying.get(key) is task:
                del self._verifying[key]

    @property
    def credentials(self) -> CredentialStore | None:
        """App passwords and login history, when the store has them (SQL stores)."""
        if self._credentials is None:
            try:
                self._credentials = credentials_for(self._store)
            except TypeError:
                return None
        return self._credentials

    def record(
        self, account: Account, remote_ip: str, protocol: str, *, success: bool, client: str = "",
        detail: str = "", app: AppPassword | None = None,
    ) -> None:
        """Note one sign-in attempt of ``account`` in the login history (written in
        the background; never delays or fails the login)."""
        history = self.history
        if history is None:
            return
        history.record(LoginEvent(
            account.id, datetime.now(UTC), remote_ip, protocol, success,
            client or (app.name if app is not None else ""), detail,
            app.id if app is not None else None,
        ))

    async def _app_password(
        self, account: Account, password: str, remote_ip: str, protocol: str, mac: bytes
    ) -> AppPassword | None:
        """The app password of ``account`` that ``password`` is, valid for ``protocol``.
        Only candidates whose selector matches are verified (``storage.credentials``)."""
        credentials = self.credentials
        if credentials is None:
            return None
        wanted = selector(password)
        for app in await credentials.list_app_passwords(account.id):
            if app.selector != wanted or protocol not in app.scopes:
                continue
            if self.cache.check(account.id, app.password_hash, mac) or await self._verify(
                remote_ip, account.address, app.password_hash, password, mac
            ):
                self.cache.remember(account.id, app.password_hash, mac)
                return app
        return None

    def observe(self, observer: AuthObserver) -> None:
        """Call ``observer`` on every ``authenticate`` from now on."""
        self._observers.append(observer)

    async def authenticate(
        self, username: str, password: str, remote_ip: str, *, protocol: str = "web", client: str = ""
    ) -> AuthOutcome:
        """Check a sign-in. ``protocol`` is ``imap``, ``smtp``, ``managesieve`` (where
        app passwords are accepted) or ``web``; ``client`` names the client program
        (IMAP ID) for the login history."""
        started = time.monotonic()
        outcome = await self._authenticate(username, password, remote_ip, protocol, client)
        for observer in self._observers:
            observer.authenticated(outcome, time.monotonic() - started)
        return outcome

    async def _authenticate(
        self, username: str, password: str, remote_ip: str, protocol: str, client: str
    ) -> AuthOutcome:
        address = username.strip().lower()
        reservation = await self.throttle.acquire(address, remote_ip)
        if reservation is None:
            await asyncio.sleep(self._settings.failure_delay)
            return AuthOutcome(AuthStatus.THROTTLED)
        app: AppPassword | None = None
        try:
            account = await self._store.get_account(address) if address else None
            stored = account.password_hash if account is not None else _DUMMY_HASH
            mac = self.cache.mac(password)
            try:
                if account is not None and protocol in SCOPES:
                    app = await self._app_password(account, password, remote_ip, protocol, mac)
                # A cached verification is admitted by the throttle like any other:
                # a throttled pair never reaches this line, right password or not.
                if app is not None or (account is not None and self.cache.check(account.id, stored, mac)):
                    good = True
                else:
                    good = await self._verify(remote_ip, address, stored, password, mac)
            except QueueFull:
                reservation.release()
                await asyncio.sleep(self._settings.failure_delay)
                return AuthOutcome(AuthStatus.THROTTLED)
            if account is None or not good:
                reservation.fail()
                if account is not None:
                    self.record(account, remote_ip, protocol, success=False, client=client, detail="password")
                await asyncio.sleep(self._settings.failure_delay)
                return AuthOutcome(AuthStatus.FAILED)
            reservation.succeed()
        finally:
            reservation.release()  # cancelled or failed unexpectedly: not a failure
        if app is None:
            self.cache.remember(account.id, stored, mac)
        if account.disabled:
            self.record(
                account, remote_ip, protocol, success=False, client=client, detail="disabled", app=app
            )
            return AuthOutcome(AuthStatus.DISABLED, account)
        if app is None and protocol in SCOPES and self.require_app_passwords:
            self.record(account, remote_ip, protocol, success=False, client=client,
                        detail="app-password-required")
            return AuthOutcome(AuthStatus.APP_PASSWORD_REQUIRED, account)
        if app is None:
            # An app password is its own credential: the main password's expiry
            # does not stop the devices that use one.
            expires = password_expires_at(account, self._max_password_age_days)
            if account.must_change_password or (expires is not None and expires <= datetime.now(UTC)):
                self.record(account, remote_ip, protocol, success=False, client=client, detail="must-change")
                return AuthOutcome(AuthStatus.MUST_CHANGE, account)
        self.record(account, remote_ip, protocol, success=True, client=client,
                    detail="app-password" if app is not None else "password", app=app)
        now = datetime.now(UTC)
        if account.last_login_at is None or now - account.last_login_at >= LOGIN_RECORD_INTERVAL:
            await self._store.record_login(account.id, now)
        return AuthOutcome(AuthStatus.OK, account, app.name if app is not None else None)

