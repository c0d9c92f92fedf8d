"""``storage.sql.groupcommit``: requests waiting together commit in one batch; a
failing batch is split so that only the bad request fails; a refusal result
fails its request alone; close commits what was submitted before it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from storage.sql.groupcommit import GroupCommit


class RefusedError(Exception):
    pass


async def test_batches_split_refusals_and_close() -> None:
    batches: list[list[int]] = []
    gate = asyncio.Event()

    async def commit(batch: list[int]) -> Sequence[str | BaseException]:
        batches.append(list(batch))
        if len(batches) == 1:
            await gate.wait()  # the first commit is slow: the others queue up meanwhile
        if 13 in batch and len(batch) > 1:
            raise RuntimeError("the batch holding 13 fails")
        if batch == [13]:
            raise RuntimeError("13 alone")
        return [RefusedError(n) if n % 5 == 0 else f"ok {n}" for n in batch]

    group: GroupCommit[int, str] = GroupCommit(
        commit, max_batch=4, name="test", closed_error=lambda: OSError("x")
    )
    group.start()
    first = asyncio.ensure_future(group.submit(1))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    rest = [asyncio.ensure_future(group.submit(n)) for n in (2, 5, 13, 7, 8)]
    await asyncio.sleep(0)
    gate.set()
    assert await first == "ok 1"
    results = await asyncio.gather(*rest, return_exceptions=True)
    assert results[0] == "ok 2" and results[3] == "ok 7"
    assert isinstance(results[1], RefusedError)  # a refusal fails its request alone
    assert isinstance(results[2], RuntimeError) and str(results[2]) == "13 alone"
    # 2, 5, 13, 7 waited together (max_batch 4): one batch, then each alone after it failed.
    assert batches[1] == [2, 5, 13, 7] and [2] in batches and [13] in batches
    assert results[4] == "ok 8"

    late = asyncio.ensure_future(group.submit(9))
    await asyncio.sleep(0)
    await group.close()
    assert await late == "ok 9"  # submitted before close: committed
    with pytest.raises(RuntimeError):
        await group.submit(10)
