"""The verified-credential cache (Dovecot's auth_cache): a repeated login with the
same password skips Argon2; wrong passwords, changed passwords and expired
entries go through the full check; failures are never remembered."""

from __future__ import annotations

import asyncio

import pytest

from mailserver import auth
from mailserver.auth import Authenticator, AuthStatus, CredentialCache, hash_password
from mailserver.config import AuthSettings
from storage.api import Account, MailStore

ADDRESS = "annv@dongnai.gov.vn"
PASSWORD = "Mật-khẩu-dài-123"


@pytest.fixture
async def account(store: MailStore) -> Account:
    return await store.create_account(ADDRESS, "An", hash_password(PASSWORD), must_change_password=False)


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every Argon2 verification, by the password it checked."""
    calls: list[str] = []
    real = auth.verify_password

    def counting(password_hash: str, password: str) -> bool:
        calls.append(password)
        return real(password_hash, password)

    monkeypatch.setattr(auth, "verify_password", counting)
    return calls


def authenticator(store: MailStore, **settings: float) -> Authenticator:
    return Authenticator(store, AuthSettings(failure_delay=0, **settings))  # type: ignore[arg-type]


async def test_second_login_skips_argon2(
    store: MailStore, account: Account, verifications: list[str]
) -> None:
    authn = authenticator(store)
    assert (await authn.authenticate(ADDRESS, PASSWORD, "192.0.2.1")).status is AuthStatus.OK
    assert (await authn.authenticate(ADDRESS.upper(), PASSWORD, "192.0.2.2")).status is AuthStatus.OK
    assert verifications == [PASSWORD]


async def test_wrong_password_after_cached_right_one(
    store: MailStore, account: Account, verifications: list[str]
) -> None:
    authn = authenticator(store, max_failures=2)
    assert (await authn.authenticate(ADDRESS, PASSWORD, "192.0.2.1")).ok
    assert (await authn.authenticate(ADDRESS, PASSWORD + "x", "192.0.2.1")).status is AuthStatus.FAILED
    assert (await authn.authenticate(ADDRESS, "", "192.0.2.1")).status is AuthStatus.FAILED
    assert verifications == [PASSWORD, PASSWORD + "x", ""]
    # Failures still count: the throttle refuses even the right (cached) password now.
    assert (await authn.authenticate(ADDRESS, PASSWORD, "192.0.2.1")).status is AuthStatus.THROTTLED


async def test_failures_are_not_cached(store: MailStore, account: Account, verifications: list[str]) -> None:
    authn = authenticator(store)
    for _ in range(2):
        assert (await authn.authenticate(ADDRESS, "wrong-password", "192.0.2.1")).status is AuthStatus.FAILED
    assert verifications == ["wrong-password", "wrong-password"]
    assert len(authn.cache) == 0


async def test_password_change_invalidates(
    store: MailStore, account: Account, verifications: list[str]
) -> None:
    authn = authenticator(store)
    assert (await authn.authenticate(ADDRESS, PASSWORD, "192.0.2.1")).ok
    await store.set_password(account.id, hash_password("New-password-456"), must_change_password=False)
    assert (await authn.authenticate(ADDRESS, PASSWORD, "192.0.2.1")).status is AuthStatus.FAILED
    assert (await authn.authenticate(ADDRESS, "New-password-456", "192.0.2.1")).ok
    assert verifications == [PASSWORD, PASSWORD, "New-password-456"]
    # Even back to the old password: a new hash (new salt), so a new verification.
    await store.set_password(account.id, hash_password(PASSWORD), must_change_password=False)
    assert (await authn.authenticate(ADDRESS, PASSWORD, "192.0.2.1")).ok
    assert verifications[-1] == PASSWORD and len(verifications) == 4


async def test_disabled_account_refused_even_when_cached(
    store: MailStore, account: Account, verifications: list[str]
) -> None:
    authn = authenticator(store)
    assert (await authn.authenticate(ADDRESS, PASSWORD, "192.0.2.1")).ok
    await store.set_disabled(account.id, True)
    assert (await authn.authenticate(ADDRESS, PASSWORD, "192.0.2.1")).status is AuthStatus.DISABLED


async def test_ttl_zero_disables(store: MailStore, account: Account, verifications: list[str]) -> None:
    authn = authenticator(store, cache_ttl=0)
    for _ in range(2):
        assert (await authn.authenticate(ADDRESS, PASSWORD, "192.0.2.1")).ok
    assert verifications == [PASSWORD, PASSWORD]


async def test_concurrent_logins_share_one_verification(
    store: MailStore, account: Account, verifications: list[str]
) -> None:
    authn = authenticator(store)
    outcomes = await asyncio.gather(*(authn.authenticate(ADDRESS, PASSWORD, "192.0.2.1") for _ in range(5)))
    assert all(o.ok for o in outcomes)
    assert verifications == [PASSWORD]


def test_entries_expire_and_are_bounded() -> None:
    now = [100.0]
    cache = CredentialCache(60, size=2, clock=lambda: now[0])
    mac = cache.mac(PASSWORD)
    assert PASSWORD.encode() not in mac and len(mac) == 32
    cache.remember(1, "$hash1", mac)
    assert cache.check(1, "$hash1", mac)
    assert not cache.check(1, "$hash1", cache.mac("other"))
    assert not cache.check(1, "$hash2", mac)  # another stored hash: the password changed
    now[0] += 61
    assert not cache.check(1, "$hash1", mac)
    for account_id in (1, 2, 3):
        cache.remember(account_id, "$h", mac)
    assert len(cache) == 2 and not cache.check(1, "$h", mac) and cache.check(3, "$h", mac)
    # Another process (another key) computes another MAC for the same password.
    assert CredentialCache(60).mac(PASSWORD) != mac
