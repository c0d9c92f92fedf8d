"""``pipeline._bounded`` (a check under ``policy.check_timeout``, the timeout armed
only once the check suspends) against ``asyncio.timeout`` around the whole await,
what ``Pipeline._run`` did before: same results, same exceptions, same timeouts,
cancellation passed through."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from policy import pipeline
from policy.pipeline import _bounded


async def _general(awaitable: Awaitable[Any], timeout: float) -> Any:
    async with asyncio.timeout(timeout):
        return await awaitable


async def _outcome(way: Callable[[Awaitable[Any], float], Awaitable[Any]], make: Any, timeout: float) -> Any:
    try:
        return ("value", await way(make(), timeout))
    except Exception as exc:  # noqa: BLE001 - compared below
        return ("raised", type(exc), str(exc))


async def at_once() -> str:
    return "done"


async def raises_at_once() -> str:
    raise ValueError("bad at once")


async def yields_then_returns() -> str:
    for _ in range(3):
        await asyncio.sleep(0)
    return "after yields"


async def waits_for_a_future() -> int:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[int] = loop.create_future()
    loop.call_later(0.01, future.set_result, 42)
    return await future


async def raises_after_waiting() -> str:
    await asyncio.sleep(0.01)
    raise KeyError("bad later")


async def too_slow() -> str:
    await asyncio.sleep(5)
    return "never"


async def catches_its_own_error() -> str:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[int] = loop.create_future()
    loop.call_later(0.01, future.set_exception, OSError("from the future"))
    try:
        await future
    except OSError as exc:
        return f"caught {exc}"
    return "no"


class Thenable:
    """An awaitable that is no coroutine: the general path."""

    def __await__(self) -> Any:
        yield from asyncio.sleep(0).__await__()
        return "thenable"


@pytest.mark.parametrize(
    "make",
    [
        at_once,
        raises_at_once,
        yields_then_returns,
        waits_for_a_future,
        raises_after_waiting,
        too_slow,
        catches_its_own_error,
        Thenable,
    ],
)
async def test_same_outcome_as_a_timeout_around_the_await(make: Any) -> None:
    expected = await _outcome(_general, make, 0.2)
    assert await _outcome(_bounded, make, 0.2) == expected
    if make is too_slow:
        assert expected[:2] == ("raised", TimeoutError)


async def test_no_timeout_armed_for_a_check_that_does_not_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    armed: list[float] = []
    real = asyncio.timeout_at

    def counting(when: float | None) -> Any:
        armed.append(when or 0.0)
        return real(when)

    monkeypatch.setattr(pipeline.asyncio, "timeout_at", counting)
    assert await _bounded(at_once(), 1) == "done"
    assert armed == []
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await _bounded(yields_then_returns(), 1) == "after yields"
    assert len(armed) == 1 and start <= armed[0] - 1 <= loop.time()  # counted from the call


async def test_cancellation_reaches_the_check() -> None:
    seen: list[str] = []
    started = asyncio.Event()

    async def check() -> str:
        try:
            started.set()
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        finally:
            seen.append("finally")
        return "never"

    task = asyncio.create_task(_bounded(check(), 10))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["cancelled", "finally"]
