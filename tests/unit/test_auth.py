"""Password hashing, generated passwords and the login throttle."""

from __future__ import annotations

import re

import pytest

from mailserver.auth import Throttle, generate_password, hash_password, verify_password
from mailserver.config import AuthSettings


def test_hash_is_argon2id_and_verifies() -> None:
    encoded = hash_password("Mật-khẩu-dài-123")
    assert encoded.startswith("$argon2id$")
    assert "Mật-khẩu" not in encoded
    assert verify_password(encoded, "Mật-khẩu-dài-123")
    assert not verify_password(encoded, "Mật-khẩu-dài-124")


def test_garbage_hash_does_not_raise() -> None:
    assert not verify_password("not-a-hash", "x")


def test_generated_passwords_are_readable_and_distinct() -> None:
    seen = {generate_password() for _ in range(200)}
    assert len(seen) == 200
    for pw in seen:
        assert re.fullmatch(r"([a-zA-Z2-9]{4}-){3}[a-zA-Z2-9]{4}", pw)
        assert not set(pw) & set("0O1lI")


@pytest.mark.parametrize("key", ["ip:192.0.2.1", "user:annv@dongnai.gov.vn"])
def test_throttle_locks_after_max_failures(key: str) -> None:
    throttle = Throttle(AuthSettings(max_failures=3, failure_window=60, lockout=60))
    for _ in range(2):
        throttle.fail(key)
    assert not throttle.blocked(key)
    throttle.fail(key)
    assert throttle.blocked(key)
    assert not throttle.blocked("ip:198.51.100.7")


def test_success_resets_the_count() -> None:
    throttle = Throttle(AuthSettings(max_failures=3, failure_window=60, lockout=60))
    throttle.fail("k")
    throttle.fail("k")
    throttle.succeed("k")
    throttle.fail("k")
    assert not throttle.blocked("k")


def test_lockout_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    throttle = Throttle(AuthSettings(max_failures=1, failure_window=60, lockout=30))
    monkeypatch.setattr(throttle, "_now", lambda: now[0])
    throttle.fail("k")
    assert throttle.blocked("k")
    now[0] += 31
    assert not throttle.blocked("k")
