"""The fair queue of Argon2 verifications: a burst from one client address is
bounded and served in turn with the others, never ahead of them all."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from mailserver import auth
from mailserver.auth import QueueFull, VerifyQueue
from tests.conftest import eventually


@pytest.fixture
def gated(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[list[str], threading.Event]]:
    """Argon2 replaced by a check that records its password and waits for the gate."""
    started: list[str] = []
    gate = threading.Event()

    def verify(password_hash: str, password: str) -> bool:
        started.append(password)
        gate.wait(30)
        return password == "right"

    monkeypatch.setattr(auth, "verify_password", verify)
    yield started, gate
    gate.set()


async def test_burst_is_bounded_and_another_address_goes_next(
    gated: tuple[list[str], threading.Event],
) -> None:
    started, gate = gated
    with ThreadPoolExecutor(2) as pool:
        queue = VerifyQueue(workers=2, per_ip=2, queued=3, per_account=5, executor=pool)
        burst = [asyncio.ensure_future(queue.run("192.0.2.1", f"u{i}", "h", f"burst{i}")) for i in range(10)]
        await eventually(lambda: len(started) == 2)
        await eventually(lambda: sum(t.done() for t in burst) == 5)
        # 2 running + 3 waiting were admitted; the other five were refused at once.
        assert all(isinstance(t.exception(), QueueFull) for t in burst if t.done())
        assert queue.waiting == 3
        good = asyncio.ensure_future(queue.run("192.0.2.9", "annv", "h", "right"))
        await eventually(lambda: queue.waiting == 4)
        gate.set()
        assert await good is True
        await asyncio.gather(*burst, return_exceptions=True)
    # The other address's check started as soon as a worker was free.
    assert started.index("right") == 2
    assert len(started) == 6


async def test_one_account_runs_one_check_at_a_time(gated: tuple[list[str], threading.Event]) -> None:
    started, gate = gated
    with ThreadPoolExecutor(2) as pool:
        queue = VerifyQueue(workers=2, per_ip=2, queued=8, per_account=1, executor=pool)
        same = [asyncio.ensure_future(queue.run(f"192.0.2.{i}", "head", "h", f"guess{i}")) for i in range(4)]
        other = asyncio.ensure_future(queue.run("192.0.2.99", "annv", "h", "right"))
        await eventually(lambda: len(started) == 2)
        # A distributed burst against one account leaves the second worker to others.
        assert started == ["guess0", "right"]
        gate.set()
        await asyncio.gather(*same, other)
    assert len(started) == 5


async def test_cancelled_waiter_leaves_the_queue(gated: tuple[list[str], threading.Event]) -> None:
    started, gate = gated
    with ThreadPoolExecutor(1) as pool:
        queue = VerifyQueue(workers=1, per_ip=1, queued=2, per_account=5, executor=pool)
        first = asyncio.ensure_future(queue.run("192.0.2.1", "a", "h", "one"))
        second = asyncio.ensure_future(queue.run("192.0.2.1", "b", "h", "two"))
        await eventually(lambda: len(started) == 1 and queue.waiting == 1)
        second.cancel()
        await eventually(lambda: queue.waiting == 0)
        gate.set()
        assert await first is False
    assert started == ["one"]
