"""Password hashing, generated passwords and the login throttle."""

from __future__ import annotations

import asyncio
import re

import pytest

from mailserver.auth import Limiter, Throttle, generate_password, hash_password, verify_password
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


def _throttle(now: list[float], **settings: int) -> Throttle:
    values = {"max_failures": 3, "max_failures_per_ip": 100, "failure_window": 60, "lockout": 30,
              "max_lockout": 120, **settings}
    return Throttle(AuthSettings(**values), clock=lambda: now[0])  # type: ignore[arg-type]


def test_attempts_are_counted_before_they_are_verified() -> None:
    throttle = _throttle([1000.0])
    held = [throttle.reserve("annv@dongnai.gov.vn", "192.0.2.1") for _ in range(3)]
    assert all(r is not None for r in held)
    # Three attempts under way use the pair's three: a fourth is refused unchecked.
    assert throttle.reserve("annv@dongnai.gov.vn", "192.0.2.1") is None
    assert throttle.blocked("annv@dongnai.gov.vn", "192.0.2.1")
    # Not the same account from elsewhere, nor another account from here.
    assert throttle.reserve("annv@dongnai.gov.vn", "198.51.100.7") is not None
    assert throttle.reserve("binhtt@dongnai.gov.vn", "192.0.2.1") is not None
    held[0].release()  # ended without an answer (client gone): not a failure
    assert throttle.reserve("annv@dongnai.gov.vn", "192.0.2.1") is not None


async def test_a_busy_pair_waits_for_a_turn_a_locked_one_is_refused() -> None:
    throttle = _throttle([1000.0])
    held = [await throttle.acquire("k", "192.0.2.1") for _ in range(3)]
    assert all(r is not None for r in held) and not throttle.locked("k", "192.0.2.1")
    waiting = [asyncio.ensure_future(throttle.acquire("k", "192.0.2.1")) for _ in range(4)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiting)
    waiting[0].cancel()  # a client gone while waiting takes no turn
    held[0].succeed()  # one turn: the next waiter in line gets it
    await asyncio.sleep(0)
    assert waiting[1].done() and waiting[1].result() is not None
    assert not waiting[2].done() and not waiting[3].done()
    for reservation in (held[1], held[2], waiting[1].result()):
        reservation.fail()  # the third failure locks the pair: every waiter is refused
    assert [await w for w in waiting[2:]] == [None, None]
    assert throttle.locked("k", "192.0.2.1") and await throttle.acquire("k", "192.0.2.1") is None


async def test_a_woken_waiter_cancelled_passes_its_turn_on() -> None:
    throttle = _throttle([1000.0], max_failures=1)
    first = await throttle.acquire("k", "192.0.2.1")
    assert first is not None
    second = asyncio.ensure_future(throttle.acquire("k", "192.0.2.1"))
    third = asyncio.ensure_future(throttle.acquire("k", "192.0.2.1"))
    await asyncio.sleep(0)
    first.release()  # wakes the second ...
    second.cancel()  # ... which is gone before it runs: the third gets the turn
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert second.cancelled() and third.done() and third.result() is not None


def test_lockout_doubles_and_a_success_resets_the_pair() -> None:
    now = [1000.0]
    throttle = _throttle(now)
    for expected_wait in (30, 60, 120, 120):  # capped at max_lockout
        for _ in range(3):
            reservation = throttle.reserve("k", "192.0.2.1")
            assert reservation is not None
            reservation.fail()
        assert throttle.blocked("k", "192.0.2.1")
        now[0] += expected_wait - 1
        assert throttle.blocked("k", "192.0.2.1")
        now[0] += 1
        assert not throttle.blocked("k", "192.0.2.1")
    for _ in range(2):
        throttle.reserve("k", "192.0.2.1").fail()  # type: ignore[union-attr]
    throttle.reserve("k", "192.0.2.1").succeed()  # type: ignore[union-attr]
    for _ in range(3):
        throttle.reserve("k", "192.0.2.1").fail()  # type: ignore[union-attr]
    now[0] += 30  # back to the first, shortest wait
    assert not throttle.blocked("k", "192.0.2.1")


def test_failures_leave_the_window() -> None:
    now = [1000.0]
    throttle = _throttle(now)
    for _ in range(2):
        throttle.reserve("k", "192.0.2.1").fail()  # type: ignore[union-attr]
    now[0] += 61
    for _ in range(2):
        throttle.reserve("k", "192.0.2.1").fail()  # type: ignore[union-attr]
    assert not throttle.blocked("k", "192.0.2.1")


def test_address_limit_spans_accounts_and_survives_a_success() -> None:
    throttle = _throttle([1000.0], max_failures_per_ip=4)
    for n in range(3):
        throttle.reserve(f"user{n}@dongnai.gov.vn", "192.0.2.1").fail()  # type: ignore[union-attr]
    throttle.reserve("annv@dongnai.gov.vn", "192.0.2.1").succeed()  # type: ignore[union-attr]
    throttle.reserve("user9@dongnai.gov.vn", "192.0.2.1").fail()  # type: ignore[union-attr]
    assert throttle.reserve("annv@dongnai.gov.vn", "192.0.2.1") is None
    assert throttle.reserve("annv@dongnai.gov.vn", "192.0.2.2") is not None


def test_limiter_forgets_idle_keys_when_full(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    limiter = Limiter(2, window=10, lockout=10, max_lockout=10, clock=lambda: now[0])
    monkeypatch.setattr(Limiter, "MAX_KEYS", 3)
    for key in ("a", "b", "c"):
        limiter.fail(key)
    now[0] += 11
    limiter.fail("d")
    assert len(limiter) == 1
